// Sealing a staged tree without FUSE in between: the tree with every entry kind is staged through the same tree
// operations the mount calls (creation in reverse name order, file bytes written back to front, metadata through
// setattr/setxattr), encoded, and decoded next to the archiver's split (data mode) encoding of the same directory:
// every entry, its metadata (ns mtimes included) and its contents are equal.
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createArchive } from '../../src/fs/archiver.js';
import { nativeFs } from '../../src/fs/native-fs.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';
import { InodeTable } from '../../mount/node.js';
import type { MountContext } from '../../mount/stores.js';
import { encodeStagedTree } from '../../mount/write/pxar-seal.js';
import { Spool } from '../../mount/write/spool.js';
import { ROOT_ID, StagedTree, type TreeOwner } from '../../mount/write/staged-tree.js';
import { StagingState } from '../../mount/write/staging-state.js';
import { buildTree, NON_UTF8 } from '../fs/tree.js';
import { MemorySink } from '../pxar/tree.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function decode(meta: Uint8Array, payload: Uint8Array): Promise<Array<Record<string, unknown>>> {
  const d = await PxarDecoder.open((async function* () { yield meta; })(), { payload: bytesReadAt(payload) });
  const out: Array<Record<string, unknown>> = [];
  for (let e = await d.next(); e; e = await d.next()) {
    const { filenameOffset: _f, contentOffset: _c, payloadOffset: _p, ...rest } = e;
    // Inode flags (chattr) cannot be set through FUSE: not part of the comparison.
    const row: Record<string, unknown> = { ...rest, path: Buffer.from(e.path).toString('latin1'), metadata: { ...e.metadata, stat: { ...e.metadata.stat, flags: 0 } } };
    if (e.kind === 'file') {
      const h = createHash('sha256');
      for await (const piece of d.contents()) h.update(piece);
      row.sha256 = h.digest('hex');
    }
    out.push(row);
  }
  return out;
}

/** Stages `src` into `tree` the way cp -a would through the mount, in an unfriendly order. */
function stage(tree: StagedTree, src: string, dirId: number): void {
  const fsx = nativeFs();
  const links = new Map<bigint, number>();
  const walk = (abs: string, id: number): void => {
    for (const name of readdirSync(abs).sort().reverse()) {
      const p = join(abs, name);
      const st = lstatSync(p, { bigint: true });
      const mode = Number(st.mode);
      const children = tree.inode(id).children!;
      if (st.isFile() && st.nlink > 1n && links.has(st.ino)) {
        tree.link(id, name, links.get(st.ino)!);
        continue;
      }
      if (st.isDirectory()) tree.mkdir(id, name, mode);
      else if (st.isFile()) {
        const i = tree.create(id, name, mode);
        const data = readFileSync(p);
        // Back to front in 1 MiB pieces, then a rewrite of the first bytes.
        for (let at = Math.floor((data.length - 1) / 1048576) * 1048576; at >= 0; at -= 1048576) tree.write(i.id, data.subarray(at, at + 1048576), at);
        if (data.length) tree.write(i.id, data.subarray(0, 1), 0);
        tree.truncate(i.id, data.length);
        i.complete = true;
        if (st.nlink > 1n) links.set(st.ino, i.id);
      } else if (st.isSymbolicLink()) tree.symlink(id, name, readlinkSync(p));
      else tree.mknod(id, name, mode, Number(st.rdev));
      const child = children.get(name)!;
      if (!st.isSymbolicLink()) {
        for (const x of fsx.llistxattr(p)) tree.setxattr(child, x.toString('latin1'), fsx.lgetxattr(p, x)!, 0);
        tree.setattr(child, { mode: mode & 0o7777 });
      }
      tree.setattr(child, { uid: Number(st.uid), gid: Number(st.gid) });
      if (st.isDirectory()) walk(p, child);
      tree.setattr(child, { mtime: { secs: Number(st.mtimeNs / 1_000_000_000n) - (st.mtimeNs < 0n ? 1 : 0), nanos: Number(((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n) } });
    }
  };
  walk(src, dirId);
  const st = lstatSync(src, { bigint: true });
  for (const x of fsx.llistxattr(src)) tree.setxattr(dirId, x.toString('latin1'), fsx.lgetxattr(src, x)!, 0);
  tree.setattr(dirId, { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtime: { secs: Number(st.mtimeNs / 1_000_000_000n), nanos: Number(st.mtimeNs % 1_000_000_000n) } });
}

describe('sealing a staged tree', () => {
  it('decodes exactly like the archiver’s data-mode archive of the same directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pbsfs-seal-'));
    dirs.push(dir);
    const src = join(dir, 'src');
    buildTree(src);
    rmSync(Buffer.concat([Buffer.from(`${src}/`), NON_UTF8])); // names reach the mount as strings
    const state = await StagingState.open(join(dir, 'state'));
    await state.writeInfo({ ns: [], type: 'host', id: 'x', time: 1, name: 'src.pxar', kind: 'pxar' });
    const spool = Spool.open(join(dir, 'spool'));
    const ctx = { inodes: new InodeTable() } as MountContext;
    const owner: TreeOwner = { ctx, key: 'test', assertOpen: () => undefined, touch: () => undefined, opened: () => undefined, released: () => undefined, fileClosed: () => undefined };
    const tree = StagedTree.create(owner, state, spool, false, 0o755);
    stage(tree, src, ROOT_ID);
    const [m1, p1, m2, p2] = [new MemorySink(), new MemorySink(), new MemorySink(), new MemorySink()];
    await encodeStagedTree(tree, ROOT_ID, m1, p1);
    await createArchive(src, m2, { payload: p2 });
    const staged = await decode(m1.bytes(), p1.bytes());
    const archived = await decode(m2.bytes(), p2.bytes());
    expect(staged.length).toBeGreaterThan(5000);
    expect(staged).toEqual(archived);

    // The state holds the same tree: restored from it (as after a crash), it encodes the same archive again.
    await state.flush();
    const loaded = await state.load();
    const again = StagedTree.restore(owner, state, spool, false, loaded.inodes, loaded.entries);
    expect(again.dropped).toBe(0);
    const [m3, p3] = [new MemorySink(), new MemorySink()];
    await encodeStagedTree(again.tree, ROOT_ID, m3, p3);
    expect(Buffer.from(m3.bytes()).equals(Buffer.from(m1.bytes()))).toBe(true);
    expect(Buffer.from(p3.bytes()).equals(Buffer.from(p1.bytes()))).toBe(true);
    spool.close();
    await state.close();
  }, 120_000);
});
