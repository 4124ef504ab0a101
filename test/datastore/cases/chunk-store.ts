// Chunk store cases (spec §4, §4.1), run by store.test.ts against its shared datastore.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore } from '../../../src/datastore/chunk-store.js';
import type { Datastore } from '../../../src/datastore/datastore.js';
import { digestToHex } from '../../../src/types.js';
import { digest, fakeBlob } from '../fixtures.js';

export function chunkStoreCases(getStore: () => Datastore): void {
  let ds: Datastore;
  let store: ChunkStore;
  let nextByte = 1;
  /** A fresh digest per test, so tests share the store without seeing each other's chunks. */
  const fresh = () => digest(nextByte++, 0x42);

  beforeAll(() => {
    ds = getStore();
    store = ds.chunks;
  });

  /** Puts an old atime/mtime on the chunk file so touches are visible. */
  function age(path: string): { atimeNs: bigint; mtimeNs: bigint } {
    utimesSync(path, 1_000_000, 1_000_000);
    const st = statSync(path, { bigint: true });
    return { atimeNs: st.atimeNs, mtimeNs: st.mtimeNs };
  }

  function tmpLeftovers(): string[] {
    const out: string[] = [];
    for (const p of readdirSync(store.chunkDir)) {
      for (const f of readdirSync(join(store.chunkDir, p))) if (f.includes('.tmp')) out.push(f);
    }
    return out;
  }

  describe('chunk store', () => {
    it('creates all 65536 prefix dirs and is idempotent', async () => {
      const dirs = readdirSync(store.chunkDir);
      expect(dirs).toHaveLength(65536);
      expect(dirs).toContain('0000');
      expect(dirs).toContain('ffff');
      expect(dirs).toContain('a342');
      await ChunkStore.create(ds.path);
      expect(readdirSync(store.chunkDir)).toHaveLength(65536);
    });

    it('chunk path is .chunks/<4 hex>/<64 hex>', () => {
      const d = digest(0xab, 0xcd);
      expect(store.chunkPath(d)).toBe(join(ds.path, '.chunks', 'abcd', digestToHex(d)));
      expect(() => store.chunkPath(new Uint8Array(31))).toThrow(/32 bytes/);
    });

    it('inserts new chunks, reads them back, has() and touch()', async () => {
      const d = fresh();
      const blob = fakeBlob('zstd', 100);
      expect(await store.has(d)).toBe(false);
      expect(await store.touch(d)).toBe(false);
      expect(await store.insert(d, blob, false)).toEqual({ duplicate: false, compressedSize: blob.length });
      expect(await store.has(d)).toBe(true);
      expect(await store.read(d)).toEqual(blob);
      expect(readFileSync(store.chunkPath(d))).toEqual(Buffer.from(blob));
      const before = age(store.chunkPath(d));
      expect(await store.touch(d)).toBe(true);
      const after = statSync(store.chunkPath(d), { bigint: true });
      expect(after.atimeNs > before.atimeNs).toBe(true);
      expect(after.mtimeNs).toBe(before.mtimeNs);
    });

    it('missing chunk: ENOENT naming the digest', async () => {
      const d = fresh();
      await expect(store.read(d)).rejects.toMatchObject({ code: 'ENOENT', digest: digestToHex(d) });
    });

    it('duplicate of the same size: atime touched, mtime and content unchanged', async () => {
      const d = fresh();
      await store.insert(d, fakeBlob('plain', 64, 1), false);
      const path = store.chunkPath(d);
      const before = age(path);
      const ino = statSync(path).ino;
      const res = await store.insert(d, fakeBlob('plain', 64, 2), false);
      expect(res).toEqual({ duplicate: true, compressedSize: 76 });
      const after = statSync(path, { bigint: true });
      expect(after.atimeNs > before.atimeNs).toBe(true);
      expect(after.mtimeNs).toBe(before.mtimeNs);
      expect(statSync(path).ino).toBe(ino);
      expect((await store.read(d))[20]).toBe(1);
    });

    it('an existing empty chunk file is overwritten', async () => {
      const d = fresh();
      writeFileSync(store.chunkPath(d), '');
      const blob = fakeBlob('zstd', 10);
      expect(await store.insert(d, blob, false)).toEqual({ duplicate: false, compressedSize: blob.length });
      expect(await store.read(d)).toEqual(blob);
    });

    it('unencrypted: the smaller copy is kept', async () => {
      const d = fresh();
      const big = fakeBlob('plain', 200);
      const small = fakeBlob('zstd', 50);
      await store.insert(d, big, false);
      expect(await store.insert(d, small, false)).toEqual({ duplicate: false, compressedSize: small.length });
      expect(await store.read(d)).toEqual(small);
      const before = age(store.chunkPath(d));
      expect(await store.insert(d, big, false)).toEqual({ duplicate: true, compressedSize: small.length });
      expect(await store.read(d)).toEqual(small);
      expect(statSync(store.chunkPath(d), { bigint: true }).atimeNs > before.atimeNs).toBe(true);
    });

    it('encrypted over an unencrypted chunk of the same digest is refused', async () => {
      const d = fresh();
      await store.insert(d, fakeBlob('plain', 100), false);
      await expect(store.insert(d, fakeBlob('zstd-encrypted', 10), true)).rejects.toMatchObject({ code: 'EPERM', digest: digestToHex(d) });
      await expect(store.insert(d, fakeBlob('encrypted', 10), true)).rejects.toMatchObject({ code: 'EPERM' });
      expect((await store.read(d)).length).toBe(112);
    });

    it('encrypted + uncompressed on both sides with different sizes is refused', async () => {
      const d = fresh();
      await store.insert(d, fakeBlob('encrypted', 100), true);
      await expect(store.insert(d, fakeBlob('encrypted', 90), true)).rejects.toMatchObject({ code: 'EPERM' });
    });

    it('encrypted with compression involved: the first copy wins, even if larger', async () => {
      const d = fresh();
      const first = fakeBlob('zstd-encrypted', 100);
      await store.insert(d, first, true);
      expect(await store.insert(d, fakeBlob('zstd-encrypted', 80), true)).toEqual({ duplicate: true, compressedSize: first.length });
      expect(await store.insert(d, fakeBlob('encrypted', 80), true)).toEqual({ duplicate: true, compressedSize: first.length });
      expect(await store.read(d)).toEqual(first);
    });

    it('unencrypted over an encrypted copy follows the size rule', async () => {
      const d = fresh();
      await store.insert(d, fakeBlob('encrypted', 100), true);
      const small = fakeBlob('zstd', 20);
      expect(await store.insert(d, small, false)).toEqual({ duplicate: false, compressedSize: small.length });
    });

    it('refuses non-blobs, a wrong encrypted flag, and non-file chunk paths', async () => {
      const d = fresh();
      await expect(store.insert(d, new Uint8Array(100), false)).rejects.toMatchObject({ code: 'ECORRUPT' });
      await expect(store.insert(d, fakeBlob('encrypted', 0).subarray(0, 20), true)).rejects.toMatchObject({ code: 'ECORRUPT' });
      await expect(store.insert(d, fakeBlob('zstd', 10), true)).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(store.insert(d, fakeBlob('encrypted', 10), false)).rejects.toMatchObject({ code: 'EINVAL' });
      const dirDigest = fresh();
      mkdirSync(store.chunkPath(dirDigest));
      await expect(store.insert(dirDigest, fakeBlob('plain', 1), false)).rejects.toMatchObject({ code: 'ECORRUPT' });
      expect(existsSync(store.chunkPath(d))).toBe(false);
    });

    it('concurrent inserts of one digest settle to one copy', async () => {
      const d = fresh();
      const sizes = [300, 100, 200, 100, 50, 400];
      await Promise.all(sizes.map((n) => store.insert(d, fakeBlob('zstd', n), false)));
      expect((await store.read(d)).length).toBe(12 + 50);
    });

    it('sync levels: file fsyncs each insert, filesystem runs syncfs', async () => {
      const fileStore = new ChunkStore(ds.path, { syncLevel: 'file' });
      const d = fresh();
      expect((await fileStore.insert(d, fakeBlob('plain', 5), false)).duplicate).toBe(false);
      await fileStore.syncFs();
      await new ChunkStore(ds.path, { syncLevel: 'filesystem' }).syncFs();
      await new ChunkStore(ds.path, { syncLevel: 'none' }).syncFs();
      await expect(new ChunkStore(join(ds.path, 'missing'), { syncLevel: 'filesystem' }).syncFs()).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('leaves no temporary files behind', () => {
      expect(tmpLeftovers()).toEqual([]);
    });
  });
}
