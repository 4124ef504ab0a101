// Hostile archives never make the extractor write outside its target: crafted names and hardlink targets are
// rejected by the decoder, and symlinks (from the archive or already on disk) are never followed.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPbsError } from '../../src/errors.js';
import { extractArchive } from '../../src/fs/extractor.js';
import { nativeFs } from '../../src/fs/native-fs.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { PxarEncoder } from '../../src/pxar/encoder.js';
import {
  PXAR_FILENAME, PXAR_HARDLINK, PXAR_PAYLOAD, S_IFDIR, S_IFLNK, S_IFREG, encodeCString, encodeHardlink, encodeHeader, encodeItem,
  encodeMetadataItems, hashFilename, metadataOf, type Metadata,
} from '../../src/pxar/format.js';
import { encodeGoodbye, type GoodbyeItem } from '../../src/pxar/goodbye.js';
import { MemorySink, once } from '../pxar/tree.js';

const meta = (mode: number): Metadata => metadataOf({ mode, flags: 0, uid: 0, gid: 0, mtime: { secs: 1, nanos: 0 } });

let dir: string;
let target: string;
let outside: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pbsfs-evil-'));
  target = join(dir, 'target');
  outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'do not touch');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Raw archive bytes: root dir holding the given child items (each FILENAME + rest), with a goodbye table. */
function rawArchive(children: { name: Uint8Array; rest: (filenameStart: number) => Uint8Array[] }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let pos = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    pos += b.length;
  };
  for (const item of encodeMetadataItems(meta(S_IFDIR | 0o755))) push(item);
  const items: GoodbyeItem[] = [];
  for (const c of children) {
    const start = pos;
    push(encodeItem(PXAR_FILENAME, encodeCString(c.name)));
    for (const b of c.rest(start)) push(b);
    items.push({ hash: hashFilename(c.name), offset: start, size: pos - start });
  }
  push(encodeGoodbye(items, pos, 0));
  return new Uint8Array(Buffer.concat(parts));
}

const fileItems = (content: string) => () => [
  ...encodeMetadataItems(meta(S_IFREG | 0o644)), encodeHeader(PXAR_PAYLOAD, content.length), Buffer.from(content),
];

async function extract(archive: Uint8Array, overwrite = false) {
  const warnings: string[] = [];
  const run = extractArchive(await PxarDecoder.open(once(archive)), target, { overwrite, onWarning: (w) => warnings.push(w) });
  return { run, warnings };
}

function outsideUntouched(): void {
  expect(readdirSync(outside)).toEqual(['secret']);
  expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('do not touch');
  expect(lstatSync(join(outside, 'secret')).nlink).toBe(1);
  expect(existsSync(join(dir, 'evil'))).toBe(false);
  expect(existsSync(join(dir, 'x'))).toBe(false);
}

describe('malicious archives', () => {
  it.each([
    ['a name with /', '../evil'],
    ['a name with / inside', 'sub/../../evil'],
    ['the name ..', '..'],
    ['the name .', '.'],
  ])('rejects %s with ECORRUPT', async (_, name) => {
    const bytes = rawArchive([{ name: Buffer.from(name), rest: fileItems('pwned') }]);
    const { run } = await extract(bytes);
    await expect(run).rejects.toSatisfy((e: unknown) => isPbsError(e, 'ECORRUPT'));
    outsideUntouched();
  });

  it('rejects a hardlink to ../x (the encoder refuses it, so the bytes are crafted)', async () => {
    await expect((await PxarEncoder.create(new MemorySink(), meta(S_IFDIR | 0o755))).addHardlink('l', '../x', 0)).rejects.toThrow();
    const bytes = rawArchive([
      { name: Buffer.from('a'), rest: fileItems('first') },
      { name: Buffer.from('l'), rest: (start) => [encodeItem(PXAR_HARDLINK, encodeHardlink({ offset: start - 100, target: Buffer.from('../x') }))] },
    ]);
    const { run } = await extract(bytes);
    await expect(run).rejects.toSatisfy((e: unknown) => isPbsError(e, 'ECORRUPT'));
    outsideUntouched();
  });

  it('never follows a symlink from the archive, to link or to write', async () => {
    const sink = new MemorySink();
    const enc = await PxarEncoder.create(sink, meta(S_IFDIR | 0o755));
    const link = await enc.addSymlink(meta(S_IFLNK | 0o777), 's', outside);
    await enc.addHardlink('h', 's/secret', link); // hardlink through the symlink
    await enc.createDirectory('s', meta(S_IFDIR | 0o755)); // a directory of the same name as the symlink
    await enc.addFile(meta(S_IFREG | 0o644), 'pwned', 5, [Buffer.from('pwned')]);
    await enc.finishDirectory();
    await enc.finish();
    const first = await extract(sink.bytes());
    await expect(first.run).rejects.toMatchObject({ code: 'EEXIST' });
    expect(first.warnings).toEqual([expect.stringContaining('hardlink /h')]);
    outsideUntouched();
    rmSync(target, { recursive: true });
    const second = await extract(sink.bytes(), true);
    await second.run;
    outsideUntouched();
    expect(lstatSync(join(target, 's')).isDirectory()).toBe(true);
    expect(readFileSync(join(target, 's', 'pwned'), 'utf8')).toBe('pwned');
  });

  it('replaces, never writes through, a symlink already in the target', async () => {
    mkdirSync(target);
    symlinkSync(join(outside, 'secret'), join(target, 'f'));
    symlinkSync(outside, join(target, 'd'));
    const sink = new MemorySink();
    const enc = await PxarEncoder.create(sink, meta(S_IFDIR | 0o755));
    await enc.createDirectory('d', meta(S_IFDIR | 0o755));
    await enc.addFile(meta(S_IFREG | 0o644), 'new', 3, [Buffer.from('new')]);
    await enc.finishDirectory();
    await enc.addFile(meta(S_IFREG | 0o644), 'f', 5, [Buffer.from('pwned')]);
    await enc.finish();
    await expect((await extract(sink.bytes())).run).rejects.toMatchObject({ code: 'EEXIST' });
    outsideUntouched();
    await (await extract(sink.bytes(), true)).run;
    outsideUntouched();
    expect(readFileSync(join(target, 'f'), 'utf8')).toBe('pwned');
    expect(readFileSync(join(target, 'd', 'new'), 'utf8')).toBe('new');
  });

  it('reports metadata the filesystem cannot take and carries on', async () => {
    const sink = new MemorySink();
    const enc = await PxarEncoder.create(sink, meta(S_IFDIR | 0o755));
    const m = meta(S_IFREG | 0o600);
    m.quotaProjectId = 4242;
    m.xattrs = [{ name: Buffer.from('bogus.namespace'), value: Buffer.from('v') }];
    await enc.addFile(m, 'f', 1, [Buffer.from('x')]);
    await enc.finish();
    const r = await extract(sink.bytes());
    await r.run;
    expect(readFileSync(join(target, 'f'), 'utf8')).toBe('x');
    expect(r.warnings).toContainEqual(expect.stringContaining('extended attributes'));
    if (nativeFs().getProjid(join(target, 'f')) !== 4242) expect(r.warnings).toContainEqual(expect.stringContaining('quota project id'));
  });
});
