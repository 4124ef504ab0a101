// The pieces under the mount without FUSE: IndexReadAt (random access, bounds, read-ahead), the POSIX ACL xattr
// encoding, the path cache and errno mapping.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { PbsError } from '../../src/errors.js';
import { ChunkReader } from '../../src/io/chunk-reader.js';
import { ChunkDirSource } from '../../src/io/chunk-source.js';
import { IndexReadAt, PrefetchBudget } from '../../src/io/index-read-at.js';
import { openIndex } from '../../src/io/index-reader.js';
import { ACL_NO_MASK, emptyAcl } from '../../src/pxar/format.js';
import type { Digest } from '../../src/types.js';
import { errnoOf } from '../../mount/fuse-ops.js';
import { KernelNodes, ROOT_ID } from '../../mount/kernel-nodes.js';
import { IMMUTABLE, type MountNode } from '../../mount/node.js';
import { accessAclXattr as accessAcl, defaultAclXattr as defaultAcl } from '../../src/fs/posix-acl.js';
const accessAclXattr = (acl: Parameters<typeof accessAcl>[0], mode: number) => accessAcl(acl, mode, '/x');
const defaultAclXattr = (acl: Parameters<typeof defaultAcl>[0]) => defaultAcl(acl, '/x');
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { makeImage, MiB } from '../helpers/images.js';

/** The real chunk directory, counting which chunks were fetched. */
class CountingSource extends ChunkDirSource {
  reads = 0;
  override async readChunk(digest: Digest): Promise<Uint8Array> {
    this.reads++;
    return super.readChunk(digest);
  }
}

describe('IndexReadAt', () => {
  let sb: Sandbox;
  let image: Buffer;
  let fidx: string;
  const pool = new WorkerPool({ size: 0 });

  beforeAll(async () => {
    sb = sandbox('pbsfs-readat-');
    image = makeImage(join(sb.dir, 'disk.raw'), 6, 'ra', 5000);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-id', 'x', '--backup-time', '1700000000']);
    fidx = join(sb.dir, 'store/host/x/2023-11-14T22:13:20Z/disk.img.fidx');
  });
  afterAll(() => sb?.cleanup());

  const open = async (readAhead: number, readAheadBytes?: number) => {
    const source = new CountingSource(join(sb.dir, 'store/.chunks'));
    const reader = new ChunkReader(source, pool, { cacheBytes: 64 * MiB });
    return { source, r: new IndexReadAt(await openIndex(fidx), reader, { path: fidx, readAhead, readAheadBytes, budget: new PrefetchBudget(8) }) };
  };

  it('returns exactly the bytes asked for, inside and across chunk boundaries', async () => {
    const { r } = await open(0);
    expect(r.size).toBe(image.length);
    for (const [off, len] of [[0, 1], [4 * MiB - 10, 20], [MiB, 9 * MiB], [image.length - 5000, 5000], [123, 0], [0, image.length]] as const) {
      expect(Buffer.from(await r.readAt(off, len)).equals(image.subarray(off, off + len))).toBe(true);
    }
  });

  it('rejects reads outside the archive with a PbsError naming the file', async () => {
    const { r } = await open(0);
    await expect(r.readAt(image.length - 1, 2)).rejects.toMatchObject({ code: 'EINVAL', path: fidx });
    await expect(r.readAt(-1, 1)).rejects.toBeInstanceOf(PbsError);
  });

  it('reads ahead of a sequential reader only', async () => {
    const seq = await open(2);
    for (let off = 0; off < 2 * MiB; off += 128 * 1024) await seq.r.readAt(off, 128 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    expect(seq.source.reads).toBe(2); // chunk 0 is all zeros (answered without a read), then chunks 1 and 2 ahead
    const rnd = await open(2);
    await rnd.r.readAt(0, 10);
    await rnd.r.readAt(5 * 4 * MiB, 10);
    await new Promise((r) => setTimeout(r, 50));
    expect(rnd.source.reads).toBe(1); // chunk 5 only (chunk 0 is zeros)
  });

  it('keeps the read-ahead within its byte bound', async () => {
    const seq = await open(4, 6 * MiB);
    for (let off = 0; off < 2 * MiB; off += 128 * 1024) await seq.r.readAt(off, 128 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    expect(seq.source.reads).toBe(1); // chunk 1 only: chunk 2 would end 8 MiB past the reader's chunk
  });

  it('names the missing chunk (digest and file) as ENOENT', async () => {
    const index = await openIndex(fidx);
    const reader = new ChunkReader(new ChunkDirSource(join(sb.dir, 'nowhere')), pool);
    const r = new IndexReadAt(index, reader, { path: fidx });
    const second = index.chunk(1).digest; // chunk 0 is all zeros: answered without its file
    await expect(r.readAt(4 * MiB, 10)).rejects.toMatchObject({ code: 'ENOENT', digest: Buffer.from(second).toString('hex') });
  });
});

/** A real worker pool (inline) that counts the decodes it is given. */
class CountingPool extends WorkerPool {
  runs = 0;
  override run(...args: Parameters<WorkerPool['run']>): ReturnType<WorkerPool['run']> {
    this.runs++;
    return super.run(...args);
  }
}

describe('ChunkReader decoding on the thread pool (native addon)', () => {
  let sb: Sandbox;
  let image: Buffer;
  let fidx: string;
  let chunks: string;

  beforeAll(async () => {
    sb = sandbox('pbsfs-tpdecode-');
    image = makeImage(join(sb.dir, 'disk.raw'), 6, 'tp', 5000);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-id', 'x', '--backup-time', '1700000000']);
    fidx = join(sb.dir, 'store/host/x/2023-11-14T22:13:20Z/disk.img.fidx');
    chunks = join(sb.dir, 'store/.chunks');
  });
  afterAll(() => sb?.cleanup());

  const reader = (dir = chunks) => {
    const pool = new CountingPool({ size: 0 });
    return { pool, reader: new ChunkReader(new ChunkDirSource(dir), pool, { cacheBytes: 0, threadPoolDecode: true }) };
  };

  it('decodes raw and zstd chunks without the worker pool, byte for byte', async () => {
    const index = await openIndex(fidx);
    const { pool, reader: r } = reader();
    for (let i = 0; i < index.chunkCount; i++) {
      const slot = index.chunk(i);
      const data = await r.read(slot.digest, slot.end - slot.start);
      expect(Buffer.from(data).equals(image.subarray(slot.start, slot.end))).toBe(true);
    }
    expect(pool.runs).toBe(0);
  });

  it('decodes into buffers the cache dropped, never into one handed out by read()', async () => {
    const index = await openIndex(fidx);
    const r = new ChunkReader(new ChunkDirSource(chunks), new WorkerPool({ size: 0 }), { cacheBytes: 4 * MiB, threadPoolDecode: true });
    const [s1, s2, s5] = [index.chunk(1), index.chunk(2), index.chunk(5)];
    const nextTurn = () => new Promise((res) => setImmediate(res));
    const kept = await r.read(s1.digest, 4 * MiB); // the caller may keep it
    const keptCopy = Buffer.from(kept);
    const t2 = await r.readTransient(s2.digest, 4 * MiB); // pushes chunk 1 out of the one-chunk cache
    await nextTurn();
    await r.readTransient(s5.digest, 4 * MiB); // pushes chunk 2 out: its buffer is free from the next turn on
    await nextTurn();
    const t1 = await r.readTransient(s1.digest, 4 * MiB);
    expect(t1.buffer).toBe(t2.buffer);
    expect(Buffer.from(t1).equals(image.subarray(s1.start, s1.end))).toBe(true);
    expect(Buffer.from(kept).equals(keptCopy)).toBe(true);
  });

  it('with an arena: decodes into its ranges, reuses them once the cache drops them, copies what read() hands out', async () => {
    const index = await openIndex(fidx);
    const r = new ChunkReader(new ChunkDirSource(chunks), new WorkerPool({ size: 0 }), { cacheBytes: 4 * MiB, threadPoolDecode: true, arenaBytes: 8 * MiB });
    const [s1, s2, s3, s5] = [index.chunk(1), index.chunk(2), index.chunk(3), index.chunk(5)];
    const nextTurn = () => new Promise((res) => setImmediate(res));
    const same = (data: Uint8Array, s: { start: number; end: number }) => Buffer.from(data).equals(image.subarray(s.start, s.end));
    const t1 = await r.readTransient(s1.digest, 4 * MiB);
    const t2 = await r.readTransient(s2.digest, 4 * MiB); // the cache holds one chunk: chunk 1's range goes back
    expect(t2.buffer).toBe(t1.buffer);
    expect(t2.byteOffset).not.toBe(t1.byteOffset);
    await nextTurn();
    const t3 = await r.readTransient(s3.digest, 4 * MiB);
    expect(t3.buffer).toBe(t1.buffer);
    expect(t3.byteOffset).toBe(t1.byteOffset);
    expect(same(t3, s3)).toBe(true);
    // read() callers may keep the bytes: they get a copy, and the range is reused all the same.
    const kept = await r.read(s3.digest, 4 * MiB);
    expect(kept.buffer).not.toBe(t1.buffer);
    await nextTurn();
    const t5 = await r.readTransient(s5.digest, 4 * MiB);
    await nextTurn();
    await r.readTransient(s1.digest, 4 * MiB);
    expect(same(kept, s3)).toBe(true);
    expect(same(t5, s5)).toBe(true);
  });

  it('with a full arena: the cache gives up its oldest chunk, whose range the next chunk gets a turn later', async () => {
    const index = await openIndex(fidx);
    const r = new ChunkReader(new ChunkDirSource(chunks), new WorkerPool({ size: 0 }), { cacheBytes: 8 * MiB, threadPoolDecode: true, arenaBytes: 8 * MiB });
    const [s1, s2, s3] = [index.chunk(1), index.chunk(2), index.chunk(3)];
    const t1 = await r.readTransient(s1.digest, 4 * MiB);
    const t2 = await r.readTransient(s2.digest, 4 * MiB);
    expect(t2.buffer).toBe(t1.buffer);
    const t3 = await r.readTransient(s3.digest, 4 * MiB);
    expect(t3.buffer).toBe(t1.buffer);
    expect(t3.byteOffset).toBe(t1.byteOffset);
    expect(Buffer.from(t3).equals(image.subarray(s3.start, s3.end))).toBe(true);
    // Chunk 2 stayed cached and intact.
    expect(Buffer.from(await r.readTransient(s2.digest, 4 * MiB)).equals(image.subarray(s2.start, s2.end))).toBe(true);
  });

  it('fails a damaged chunk with ECORRUPT naming the digest, a missing one with ENOENT', async () => {
    const index = await openIndex(fidx);
    const copy = join(sb.dir, 'damaged');
    const hexOf = (i: number) => Buffer.from(index.chunk(i).digest).toString('hex');
    const fileOf = (i: number, dir = copy) => join(dir, hexOf(i).slice(0, 4), hexOf(i));
    const last = index.chunkCount - 1;
    // Only the chunks read below (a whole chunk store is 65,536 directories); chunk 5 (random) stays missing.
    for (const i of [1, 2, 3, last]) cpSync(fileOf(i, chunks), fileOf(i), { recursive: true });
    // chunk 1 is random (stored raw), chunk 2 text (zstd): flip a payload byte in each, cut the tail chunk short.
    for (const i of [1, 2]) {
      const bytes = readFileSync(fileOf(i));
      bytes[bytes.length - 100] ^= 1;
      writeFileSync(fileOf(i), bytes);
    }
    writeFileSync(fileOf(last), readFileSync(fileOf(last)).subarray(0, 200));
    const { reader: r } = reader(copy);
    const read = (i: number) => r.read(index.chunk(i).digest, index.chunk(i).end - index.chunk(i).start);
    await expect(read(1)).rejects.toMatchObject({ code: 'ECORRUPT', digest: hexOf(1), message: expect.stringMatching(/hashes to/) });
    await expect(read(2)).rejects.toMatchObject({ code: 'ECORRUPT', digest: hexOf(2) });
    await expect(read(last)).rejects.toMatchObject({ code: 'ECORRUPT', digest: hexOf(last) });
    await expect(read(5)).rejects.toMatchObject({ code: 'ENOENT', digest: hexOf(5) });
    // An all-zero chunk (0, 4) needs no file.
    expect(Buffer.from(await read(0)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    // The index's size is checked too.
    await expect(r.read(index.chunk(3).digest, 4 * MiB - 1)).rejects.toMatchObject({ code: 'ECORRUPT' });
  });
});

describe('POSIX ACL xattrs', () => {
  const hex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString('hex') : null);

  it('has no access ACL for a plain mode', () => {
    expect(accessAclXattr(emptyAcl(), 0o100644)).toBeNull();
    expect(defaultAclXattr(emptyAcl())).toBeNull();
  });

  it('rebuilds user_obj, mask and other from the mode, entries sorted by tag and id', () => {
    const acl = { ...emptyAcl(), users: [{ id: 1000, permissions: 5n }, { id: 7, permissions: 4n }], groupObj: 4n };
    // version 2; USER_OBJ rw-; USER 7 r--; USER 1000 r-x; GROUP_OBJ r--; MASK r-x (mode group bits); OTHER r--
    expect(hex(accessAclXattr(acl, 0o100654))).toBe(
      '02000000' + '01000600ffffffff' + '0200040007000000' + '02000500e8030000' + '04000400ffffffff' + '10000500ffffffff' + '20000400ffffffff',
    );
  });

  it('encodes a default ACL, with a mask only when one was stored', () => {
    const acl = { ...emptyAcl(), default: { userObj: 7n, groupObj: 5n, other: 0n, mask: ACL_NO_MASK }, defaultGroups: [{ id: 100, permissions: 6n }] };
    expect(hex(defaultAclXattr(acl))).toBe('02000000' + '01000700ffffffff' + '04000500ffffffff' + '0800060064000000' + '20000000ffffffff');
    expect(hex(defaultAclXattr({ ...acl, default: { ...acl.default, mask: 7n } }))).toContain('10000700ffffffff');
  });
});

describe('inode table and errno mapping', () => {
  const node = (ttlMs: number): MountNode => ({ ttlMs, stat: async () => ({ mode: 0, uid: 0, gid: 0, size: 0, nlink: 1, ino: 1, rdev: 0, mtime: { secs: 0, nanos: 0 } }) });

  it('holds a node while the kernel has lookups on it and frees it when they are forgotten', () => {
    const t = new KernelNodes(node(1000));
    const root = t.get(ROOT_ID)!;
    const store = t.ref(10, node(1000), root, 'store1');
    expect(store.top).toBe('store1');
    const fixed = node(IMMUTABLE);
    const file = t.ref(11, fixed, store, 'f');
    expect(file.top).toBe('store1');
    expect(t.ref(11, node(IMMUTABLE), store, 'hardlink').node).toBe(fixed); // an immutable node keeps its first object
    const fresh = node(1000);
    expect(t.ref(10, fresh, root, 'store1').node).toBe(fresh); // a live one is replaced by the newer lookup
    expect(t.size).toBe(3);
    t.forget(11, 1);
    expect(t.get(11)).toBeDefined();
    t.forget(11, 1);
    expect(t.get(11)).toBeUndefined();
    t.forget(10, 5);
    t.forget(ROOT_ID, 1);
    expect(t.size).toBe(1);
    expect(t.get(ROOT_ID)).toBe(root);
  });

  it('maps errors to errnos: damage is EIO, a missing key EACCES, anything unexpected EIO', () => {
    expect(errnoOf(new PbsError('ECORRUPT', 'x'))).toBe(-5);
    expect(errnoOf(new PbsError('EACCES', 'x'))).toBe(-13);
    expect(errnoOf(new PbsError('ENOENT', 'x'))).toBe(-2);
    expect(errnoOf(new TypeError('boom'))).toBe(-5);
  });
});
