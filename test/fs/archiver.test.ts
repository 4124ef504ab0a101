// Archiver policy on a real filesystem: .pxarexclude and CLI excludes, .pxarexclude-cli / PRELUDE, mount points,
// vanished files, payload reuse.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArchive, type ArchiverOptions } from '../../src/fs/archiver.js';
import type { PxarEntry } from '../../src/pxar/format.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { decodeAll, MemorySink, once } from '../pxar/tree.js';

const isRoot = process.getuid?.() === 0;

/** Entries of a metadata archive without reading any contents. */
async function listOnly(bytes: Uint8Array) {
  const d = await PxarDecoder.open(once(bytes));
  const entries: { entry: PxarEntry; contents?: Uint8Array }[] = [];
  for await (const entry of d) entries.push({ entry });
  return { version: d.version, prelude: d.prelude, entries };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pbsfs-arch-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, content = rel): void {
  const p = join(dir, 'src', rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
}

async function archive(opts: ArchiverOptions & { split?: boolean; withoutContents?: boolean } = {}) {
  const sink = new MemorySink();
  const payload = opts.split ? new MemorySink() : undefined;
  const warnings: string[] = [];
  const stats = await createArchive(join(dir, 'src'), sink, { ...opts, payload, onWarning: (w) => warnings.push(w) });
  const decoded = opts.withoutContents ? await listOnly(sink.bytes()) : await decodeAll(sink.bytes(), payload?.bytes());
  const paths = decoded.entries.map((t) => Buffer.from(t.entry.path).toString());
  const byPath = (p: string) => decoded.entries.find((t) => Buffer.from(t.entry.path).toString() === p);
  return { stats, warnings, decoded, paths, byPath };
}

describe('exclude patterns while archiving', () => {
  beforeEach(() => {
    write('.pxarexclude', '# excludes\n*.log\n!keep.log\n/build/\n\n');
    write('a.log');
    write('keep.log');
    write('build/x');
    write('x.tmp');
    write('sub/build/y');
    write('sub/.pxarexclude', '!*.log\n');
    write('sub/c.log');
    write('sub/d.tmp');
    write('excluded-dir/.pxarexclude', '!*\n');
    write('excluded-dir/z');
    write('.pxarexclude-cli', 'stale file in the source');
  });

  it('v1: applies .pxarexclude files and CLI patterns, appends .pxarexclude-cli last', async () => {
    const r = await archive({ excludes: ['*.tmp', '/excluded-dir'] });
    expect(r.warnings).toEqual([]);
    expect(r.paths).toEqual([
      '/', '/.pxarexclude', '/keep.log', '/sub', '/sub/.pxarexclude', '/sub/build', '/sub/build/y', '/sub/c.log', '/.pxarexclude-cli',
    ]);
    const cli = r.byPath('/.pxarexclude-cli')!;
    expect(Buffer.from(cli.contents!).toString()).toBe('*.tmp\n/excluded-dir\n');
    expect(cli.entry.metadata.stat.mode).toBe(0o100600);
    expect(cli.entry.metadata.stat.mtime).toEqual({ secs: 0, nanos: 0 });
    expect(cli.entry.metadata.stat.uid).toBe(process.getuid!());
    expect(r.decoded.prelude).toBeNull();
  });

  it('v2: stores CLI patterns as a PRELUDE and writes no .pxarexclude-cli', async () => {
    const r = await archive({ excludes: ['*.tmp', '!keep/', '/excluded-dir'], split: true });
    expect(r.decoded.version).toBe(2);
    expect(JSON.parse(Buffer.from(r.decoded.prelude!).toString())).toEqual({ 'exclude-patterns': '*.tmp\n!keep/\n/excluded-dir\n' });
    expect(r.paths).not.toContain('/.pxarexclude-cli');
    expect(r.paths).toContain('/sub/c.log');
  });

  it('without CLI patterns writes neither, and still leaves out a source .pxarexclude-cli', async () => {
    const r = await archive({});
    expect(r.paths).not.toContain('/.pxarexclude-cli');
    expect(r.paths).toContain('/excluded-dir/z');
    expect(r.paths).not.toContain('/a.log');
  });

  it('reports bad .pxarexclude lines and keeps the good ones', async () => {
    write('.pxarexclude', '[broken\n*.log\n');
    const r = await archive({});
    expect(r.warnings).toEqual([expect.stringMatching(/\.pxarexclude.*\[broken/)]);
    expect(r.paths).not.toContain('/keep.log');
  });

  it('rejects a bad CLI pattern', async () => {
    await expect(archive({ excludes: ['[x'] })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('walk policy', () => {
  it('warns about and skips a file that vanishes before it is read; reuses payloads on a hit', async () => {
    write('a', 'aaaa');
    write('b', 'bbbb');
    write('c', 'cccc');
    const asked: string[] = [];
    let reusedAt = -1;
    const flushes: number[] = [];
    const r = await archive({
      flushReused: (enc) => {
        if (reusedAt >= 0 && enc.payloadPosition === reusedAt) enc.advancePayload(16 + 4); // the caller's injected copy
        flushes.push(enc.payloadPosition);
      },
      split: true,
      withoutContents: true,
      lookupPrevious: (path, meta, size, enc) => {
        asked.push(Buffer.from(path).toString());
        expect(meta.stat.mode & 0o170000).toBe(0o100000);
        expect(size).toBe(4);
        if (Buffer.from(path).toString() === 'b') unlinkSync(join(dir, 'src', 'b'));
        if (Buffer.from(path).toString() === 'c') {
          reusedAt = enc.payloadPosition;
          return { payloadOffset: reusedAt };
        }
        return undefined;
      },
    });
    expect(asked).toEqual(['a', 'b', 'c']);
    expect(r.warnings).toEqual([expect.stringContaining('vanished')]);
    expect(r.paths).toEqual(['/', '/a', '/c']);
    expect(r.stats.reused).toBe(1);
    const c = r.byPath('/c')!.entry;
    expect([c.kind, c.size, c.payloadOffset]).toEqual(['file', 4, reusedAt]);
    // before a's payload (after the 16-byte start marker), then at the end, after placing c's reused bytes
    expect(flushes).toEqual([16, reusedAt + 20]);
  });

  it('archives directories whose only files are empty (nothing to read ahead with the listing)', async () => {
    write('only-empty/a', '');
    write('empty-pair/x', '');
    write('empty-pair/y', '');
    write('mixed/e', '');
    write('mixed/f', 'data');
    for (const split of [false, true]) {
      const r = await archive({ split });
      expect(r.paths).toEqual(expect.arrayContaining(['/only-empty/a', '/empty-pair/x', '/empty-pair/y', '/mixed/e', '/mixed/f']));
      for (const p of ['/only-empty/a', '/empty-pair/y', '/mixed/e']) expect(r.byPath(p)?.contents?.length).toBe(0);
      expect(Buffer.from(r.byPath('/mixed/f')!.contents!).toString()).toBe('data');
    }
  });

  it('refuses a source that is not a directory', async () => {
    write('f');
    await expect(createArchive(join(dir, 'src', 'f'), new MemorySink())).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(createArchive(join(dir, 'nope'), new MemorySink())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe.skipIf(!isRoot)('mount points', () => {
  let mnt: string;
  beforeEach(() => {
    write('before');
    mnt = join(dir, 'src', 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', 'pbsfs-test', mnt]);
    writeFileSync(join(mnt, 'inside'), 'on another filesystem');
  });
  afterEach(() => {
    execFileSync('umount', [mnt]);
  });

  it('skips a mount point by default, keeping the directory itself', async () => {
    const r = await archive({});
    expect(r.paths).toEqual(['/', '/before', '/mnt']);
    expect(r.warnings).toEqual([expect.stringContaining('skipping mount point: /mnt')]);
  });

  it('includes it with --include-dev or --all-file-systems', async () => {
    for (const opts of [{ includeDev: [mnt] }, { allFileSystems: true }]) {
      const r = await archive(opts);
      expect(r.paths).toEqual(['/', '/before', '/mnt', '/mnt/inside']);
      expect(r.warnings).toEqual([]);
    }
  });
});

