// Real filesystem: synthetic tree → createArchive (v1 and split v2, with catalog) → decoder → extractArchive,
// comparing every attribute pxar carries, plus item order, catalog contents and vector-equal metadata mapping.
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArchive } from '../../src/fs/archiver.js';
import { extractArchive } from '../../src/fs/extractor.js';
import { createFileSink, fileChunks, openFileReadAt } from '../../src/fs/file-io.js';
import { CatalogReader, CatalogWriter } from '../../src/format/catalog.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { ACL_NO_MASK, type PxarEntry } from '../../src/pxar/format.js';
import { nameToJson } from '../../src/pxar/names.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';
import { MemorySink } from '../pxar/tree.js';
import { BIG_DIR_ENTRIES, buildTree, linkGroups, snapshot, type Snap } from './tree.js';

const isRoot = process.getuid?.() === 0;
const VECTORS = '/work/shared/vectors';

/** Expected archive order: depth-first, each directory's children sorted by raw name bytes (memcmp). */
function expectedOrder(snap: Map<string, Snap>): string[] {
  const children = new Map<string, string[]>();
  for (const path of snap.keys()) {
    if (path === '') continue;
    const cut = path.lastIndexOf('/');
    const parent = cut < 0 ? '' : path.slice(0, cut);
    children.set(parent, [...(children.get(parent) ?? []), path]);
  }
  const name = (p: string) => Buffer.from(p.slice(p.lastIndexOf('/') + 1), 'latin1');
  const out: string[] = [];
  const visit = (p: string) => {
    out.push(p);
    for (const c of (children.get(p) ?? []).sort((a, b) => Buffer.compare(name(a), name(b)))) visit(c);
  };
  visit('');
  return out;
}

async function decodeListing(meta: string, payload?: string): Promise<PxarEntry[]> {
  const pay = payload ? await openFileReadAt(payload) : undefined;
  try {
    const d = await PxarDecoder.open(fileChunks(meta), { payload: pay });
    const out: PxarEntry[] = [];
    for await (const e of d) out.push(e);
    return out;
  } finally {
    await pay?.close();
  }
}

const key = (e: PxarEntry) => Buffer.from(e.path.subarray(1)).toString('latin1');

describe.skipIf(!isRoot)('archive → extract round trip on a real filesystem', () => {
  let dir: string;
  let src: string;
  let before: Map<string, Snap>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pbsfs-fs-'));
    src = join(dir, 'src');
    buildTree(src);
    before = snapshot(src);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const split of [false, true]) {
    it(`${split ? 'split v2' : 'v1'}: restores every attribute, in client order, with a matching catalog`, async () => {
      const name = split ? 'tree' : 'tree-v1';
      const meta = join(dir, split ? `${name}.mpxar` : `${name}.pxar`);
      const payload = split ? join(dir, `${name}.ppxar`) : undefined;
      const sink = await createFileSink(meta);
      const paySink = payload ? await createFileSink(payload) : undefined;
      const catSink = new MemorySink();
      const catalog = new CatalogWriter(catSink);
      catalog.startDirectory('root.pxar.didx');
      const warnings: string[] = [];
      const stats = await createArchive(src, sink, { payload: paySink, catalog, onWarning: (w) => warnings.push(w) });
      await catalog.endDirectory();
      await catalog.finish();
      await sink.close();
      await paySink?.close();
      expect(warnings).toEqual([]);
      expect(stats.entries).toBe(before.size);

      // The archive decodes, in the order the PBS client writes: sorted children, first hardlink name is the file.
      const listing = await decodeListing(meta, payload);
      expect(listing.map(key)).toEqual(expectedOrder(before));
      const seenInodes = new Set<bigint>();
      for (const e of listing) {
        const s = before.get(key(e))!;
        if (s.type !== 0o100000) continue;
        expect(e.kind).toBe(seenInodes.has(s.ino) ? 'hardlink' : 'file');
        seenInodes.add(s.ino);
      }
      const many = listing.filter((e) => key(e).startsWith('many/'));
      expect(many).toHaveLength(BIG_DIR_ENTRIES);

      // The catalog lists the same entries with the same kinds.
      const cat = await CatalogReader.open(bytesReadAt(catSink.bytes()));
      const catEntries: [string, string][] = [];
      for await (const { path, entry } of cat.walk()) catEntries.push([Buffer.from(path).toString('latin1'), entry.type]);
      const kindChar: Record<string, string> = { dir: 'd', file: 'f', symlink: 'l', hardlink: 'h', fifo: 'p', socket: 's' };
      const expectedCat = listing.map((e): [string, string] => {
        const k = e.kind === 'device' ? ((e.metadata.stat.mode & 0o170000) === 0o060000 ? 'b' : 'c') : kindChar[e.kind]!;
        return [e.filenameOffset === null ? '/root.pxar.didx' : `/root.pxar.didx/${key(e)}`, k];
      });
      expect(catEntries.sort()).toEqual(expectedCat.sort());

      // Extract and compare every attribute.
      const out = join(dir, `out-${name}`);
      const pay = payload ? await openFileReadAt(payload) : undefined;
      const xwarn: string[] = [];
      try {
        const d = await PxarDecoder.open(fileChunks(meta), { payload: pay });
        await extractArchive(d, out, { onWarning: (w) => xwarn.push(w) });
      } finally {
        await pay?.close();
      }
      expect(xwarn).toEqual([]);
      const after = snapshot(out);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [path, s] of before) {
        const { ino: _a, ...want } = s;
        const { ino: _b, ...got } = after.get(path)!;
        expect({ path, ...got }).toEqual({ path, ...want });
      }
      expect(linkGroups(after)).toEqual(linkGroups(before));
      expect(linkGroups(after)).toHaveLength(2);
      const sparse = lstatSync(join(out, 'sparse'));
      expect(sparse.size).toBe(48 * 1024 * 1024);
      expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
    });
  }

  it('maps real xattrs, ACLs and fcaps to the same items as the reference vectors', async () => {
    const meta = join(dir, 'tree-v1.pxar');
    const listing = await decodeListing(meta);
    const vec = readFileSync(join(VECTORS, 'synth.pxar.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const want = vec.find((v) => v.path === '/all-metadata')!;
    const got = listing.find((e) => key(e) === 'all-metadata')!;
    const m = got.metadata;
    expect((m.stat.mode).toString(8)).toBe(want.mode);
    expect([m.stat.uid, m.stat.gid]).toEqual([want.uid, want.gid]);
    const acl = want.acl as { users: number[][]; groups: number[][]; group_obj: number };
    expect(m.acl.users.map((u) => [u.id, Number(u.permissions)])).toEqual(acl.users);
    expect(m.acl.groups.map((g) => [g.id, Number(g.permissions)])).toEqual(acl.groups);
    expect(Number(m.acl.groupObj)).toBe(acl.group_obj);
    expect(m.acl.default).toBeNull();
    const xattrs = m.xattrs.map((x) => ({ name: nameToJson(x.name), value_hex: Buffer.from(x.value).toString('hex') }));
    const byName = (a: { name: unknown }, b: { name: unknown }) => String(a.name).localeCompare(String(b.name));
    expect(xattrs.sort(byName)).toEqual((want.xattrs as { name: string }[]).sort(byName));
    expect(Buffer.from(m.fcaps!).toString('hex').slice(8)).toBe((want.fcaps_hex as string).slice(8));
    // chattr NODUMP on disk → pxar NODUMP bit
    expect(m.stat.flags).toBe(0x100000);
    // Default ACL: the kernel requires a mask once named entries exist, so the vector's NO_MASK cannot occur on disk.
    const dirAcl = listing.find((e) => key(e) === 'dir-acl')!.metadata.acl;
    expect(dirAcl.default).toEqual({ userObj: 7n, groupObj: 5n, other: 0n, mask: 7n });
    expect(dirAcl.default!.mask).not.toBe(ACL_NO_MASK);
    expect(dirAcl.defaultUsers).toEqual([{ id: 1000, permissions: 7n }]);
    expect(dirAcl.defaultGroups).toEqual([{ id: 100, permissions: 5n }]);
    // access ACL with a mask: GROUP_OBJ kept
    expect(dirAcl.users).toEqual([{ id: 33, permissions: 5n }]);
    expect(dirAcl.groupObj).toBe(5n);
    // special files carry no xattrs/ACLs
    const fifo = listing.find((e) => key(e) === 'dir-acl/fifo')!;
    expect(fifo.kind).toBe('fifo');
    expect(fifo.metadata.xattrs).toEqual([]);
    expect(listing.find((e) => key(e) === 'chardev')!.device).toEqual({ major: 1, minor: 3 });
  });

  it('refuses to overwrite existing files unless asked, and then replaces them', async () => {
    const meta = join(dir, 'tree-v1.pxar');
    const out = join(dir, 'out-tree-v1');
    await expect(extractArchive(await PxarDecoder.open(fileChunks(meta)), out)).rejects.toMatchObject({ code: 'EEXIST' });
    await extractArchive(await PxarDecoder.open(fileChunks(meta)), out, { overwrite: true });
    const again = snapshot(out);
    for (const [path, s] of before) expect(again.get(path)?.sha256).toBe(s.sha256);
  });

  it('restores owners exactly into a set-group-ID target, whose group new entries would inherit', async () => {
    const meta = join(dir, 'tree-v1.pxar');
    const out = join(dir, 'out-setgid');
    mkdirSync(out);
    chownSync(out, 0, 4321);
    chmodSync(out, 0o2775);
    const warnings: string[] = [];
    await extractArchive(await PxarDecoder.open(fileChunks(meta)), out, { onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    const after = snapshot(out);
    for (const [path, s] of before) expect({ path, uid: after.get(path)?.uid, gid: after.get(path)?.gid }).toEqual({ path, uid: s.uid, gid: s.gid });
  });

  it('restores only what selection patterns match, creating parent directories', async () => {
    const meta = join(dir, 'tree-v1.pxar');
    const out = join(dir, 'out-selected');
    const warnings: string[] = [];
    await extractArchive(await PxarDecoder.open(fileChunks(meta)), out, {
      patterns: ['many/f00[0-1]?', '/links/', '!links/b'],
      onWarning: (w) => warnings.push(w),
    });
    const got = [...snapshot(out).keys()].sort();
    const manyFiles = Array.from({ length: 20 }, (_, i) => `many/f${String(i).padStart(4, '0')}`);
    expect(got).toEqual(['', 'links', 'links/a', 'many', ...manyFiles].sort());
    // links/third-name is a hardlink to /all-metadata, which the selection left out
    expect(warnings).toEqual([expect.stringContaining('links/third-name')]);
  });
});
