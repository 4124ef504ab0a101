// Every bad input: a clear message naming the file or digest, a non-zero exit, and nothing stored changed.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { makeImage } from '../helpers/images.js';
import { readFidx } from '../helpers/independent-reader.js';

const T0 = 1_700_000_000;
const SNAP = 'host/h1/2023-11-14T22:13:20Z';

/** Hash of every file (name, size, bytes) below dir, to prove that a failed command changed nothing. */
function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (p.endsWith('.chunks')) {
          for (const sub of readdirSync(p).sort()) for (const f of readdirSync(join(p, sub)).sort()) h.update(`${sub}/${f}:`).update(readFileSync(join(p, sub, f)));
          continue;
        }
        h.update(`dir ${relative(dir, p)}\n`);
        walk(p);
      } else h.update(`${relative(dir, p)}:${statSync(p).size}:`).update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

describe('bad input', () => {
  let sb: Sandbox;
  let store: string;
  let img: string;

  beforeAll(async () => {
    sb = sandbox();
    store = join(sb.dir, 'store');
    img = join(sb.dir, 'disk.raw');
    makeImage(img, 2, 'bad');
    await sb.ok(['datastore', 'create', 'st1', store]);
    await sb.ok(['backup', 'disk.img:' + img, '--store', 'st1', '--backup-id', 'h1', '--backup-time', String(T0)]);
  });
  afterAll(() => sb?.cleanup());

  const backup = (...extra: string[]) => sb.run(['backup', 'disk.img:' + img, '--store', 'st1', '--backup-time', String(T0 + 100), ...extra]);

  it.each([
    [['--backup-id', '../x'], /backup id|invalid/i],
    [['--backup-id', 'a/b'], /backup id|invalid/i],
    [['--backup-id', '.hidden'], /backup id|invalid/i],
    [['--backup-id', 'x'.repeat(300)], /backup id|long|invalid/i],
    [['--backup-id', 'ok', '--backup-type', 'pc'], /type/i],
    [['--backup-id', 'ok', '--ns', 'a/b/c/d/e/f/g/h'], /namespace|depth/i],
    [['--backup-id', 'ok', '--ns', '../up'], /namespace/i],
    [['--backup-id', 'ok', '--ns', 'missing'], /namespace|exist/i],
    [['--backup-id', 'ok', '--store', 'nope'], /datastore 'nope' does not exist/],
    [['--backup-id', 'h1', '--backup-time', String(T0)], /not newer/],
  ])('rejects %j', async (args, message) => {
    const before = treeHash(store);
    const r = await backup(...(args as string[]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(treeHash(store)).toBe(before);
  });

  it('rejects bad specs and missing sources', async () => {
    for (const spec of ['disk.iso:' + img, 'noext:' + img, '../x.img:' + img, 'disk.img:' + join(sb.dir, 'missing.raw')]) {
      const before = treeHash(store);
      const r = await sb.run(['backup', spec, '--store', 'st1', '--backup-id', 'spec', '--backup-time', String(T0 + 5)]);
      expect(r.code, spec).not.toBe(0);
      expect(r.stderr).toMatch(/spec|archive|no such file|missing/i);
      expect(treeHash(store)).toBe(before);
    }
  });

  it('names the digest of a corrupt chunk and keeps it in place', async () => {
    const snapDir = join(store, 'host', 'h1', '2023-11-14T22:13:20Z');
    const digest = readFidx(readFileSync(join(snapDir, 'disk.img.fidx'))).digests[1]!;
    const path = join(store, '.chunks', digest.slice(0, 4), digest);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 0xff;
    writeFileSync(path, bad);
    try {
      const r = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'out.raw'), '--store', 'st1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(digest);
      expect(r.stderr).toMatch(/crc|corrupt/i);
      expect(readFileSync(path).equals(bad)).toBe(true);
    } finally {
      writeFileSync(path, good);
    }
  });

  it('names a missing chunk', async () => {
    const snapDir = join(store, 'host', 'h1', '2023-11-14T22:13:20Z');
    const digest = readFidx(readFileSync(join(snapDir, 'disk.img.fidx'))).digests[1]!;
    const path = join(store, '.chunks', digest.slice(0, 4), digest);
    const good = readFileSync(path);
    const { unlinkSync } = await import('node:fs');
    unlinkSync(path);
    try {
      const r = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'out2.raw'), '--store', 'st1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(digest);
    } finally {
      writeFileSync(path, good);
    }
  });

  it('names a truncated index and a damaged manifest', async () => {
    const snapDir = join(store, 'host', 'h1', '2023-11-14T22:13:20Z');
    const idx = join(snapDir, 'disk.img.fidx');
    const good = readFileSync(idx);
    truncateSync(idx, good.length - 7);
    try {
      const r = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'o.raw'), '--store', 'st1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('disk.img.fidx');
    } finally {
      writeFileSync(idx, good);
    }
    const man = join(snapDir, 'index.json.blob');
    const goodMan = readFileSync(man);
    const bad = Buffer.from(goodMan);
    bad[0] ^= 1;
    writeFileSync(man, bad);
    try {
      const r = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'o.raw'), '--store', 'st1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/index\.json\.blob/);
      expect(r.stderr).toMatch(/magic/);
    } finally {
      writeFileSync(man, goodMan);
    }
  });

  it('rejects unknown snapshots, archives and bad snapshot names', async () => {
    for (const [args, msg] of [
      [['restore', 'host/h1/2020-01-01T00:00:00Z', 'disk.img', '-'], /does not exist|unfinished/],
      [['restore', SNAP, 'other.img', '-'], /not in this snapshot/],
      [['restore', 'host/h1/yesterday', 'disk.img', '-'], /time|snapshot/i],
      [['restore', 'host/../x/2020-01-01T00:00:00Z', 'disk.img', '-'], /invalid|backup id|snapshot/i],
    ] as const) {
      const r = await sb.run([...args, '--store', 'st1']);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('never lists an unfinished snapshot', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(store, 'host', 'h1', '2030-01-01T00:00:00Z'));
    const list = JSON.parse((await sb.ok(['snapshot', 'list', '--store', 'st1', '--output-format', 'json'])).stdout);
    expect(list.map((s: { snapshot: string }) => s.snapshot)).toEqual([SNAP]);
  });

  it('refuses to create a datastore over a non-empty directory or with a bad name', async () => {
    writeFileSync(join(sb.dir, 'junk'), 'x');
    expect((await sb.run(['datastore', 'create', 'junkstore', sb.dir])).code).not.toBe(0);
    expect((await sb.run(['datastore', 'create', 'a', join(sb.dir, 'short')])).code).not.toBe(0);
    expect((await sb.run(['datastore', 'create', 'st1', join(sb.dir, 'dup')])).stderr).toMatch(/exists/);
  });
});
