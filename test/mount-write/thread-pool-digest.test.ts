// ChunkWriter with digests on the libuv thread pool (the mount's write path): same digests and chunk files as the
// worker path, only new chunks reach the worker pool, and every chunk's buffer comes back (after encoding, or at once
// when the chunk needed no write).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkWriter } from '../../src/backup/chunk-writer.js';
import { nativeCodec } from '../../src/codec/index.js';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { ChunkStore } from '../../src/datastore/chunk-store.js';

class CountingPool extends WorkerPool {
  tasks: string[] = [];
  override run(...args: Parameters<WorkerPool['run']>): ReturnType<WorkerPool['run']> {
    this.tasks.push(args[0]);
    return super.run(...args);
  }
}

describe('ChunkWriter with thread-pool digests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbsfs-tpdigest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores what the worker path stores and gives every buffer back', async () => {
    const data = new Uint8Array(randomBytes(4 * 1024 * 1024));
    const expected = createHash('sha256').update(data).digest('hex');
    // Only the one prefix directory this chunk needs (a full ChunkStore.create makes 65536 of them).
    mkdirSync(join(dir, '.chunks', expected.slice(0, 4)), { recursive: true });
    const store = new ChunkStore(dir);
    const pool = new CountingPool({ size: 0 });
    const released: Uint8Array[] = [];
    const release = (b: Uint8Array) => released.push(b);

    const w = new ChunkWriter(store, pool, nativeCodec(), undefined, { threadPoolDigest: true });
    const d1 = await w.add(data.slice(), false, release);
    expect(Buffer.from(d1).toString('hex')).toBe(expected);
    expect(existsSync(join(dir, '.chunks', expected.slice(0, 4), expected))).toBe(true);
    expect(pool.tasks).toEqual(['encodeChunk']); // hashed on the thread pool, encoded on the worker pool
    // Written: its buffer went to the encoder and came back.
    expect(released).toHaveLength(1);
    const first = released[0]!;
    expect(Buffer.from(first).equals(Buffer.from(data))).toBe(true);

    const again = data.slice();
    await w.add(again, false, release); // known to this writer
    expect(released).toHaveLength(2);
    expect(released[1]!.buffer).toBe(again.buffer);

    const other = new ChunkWriter(store, pool, nativeCodec(), undefined, { threadPoolDigest: true });
    const third = data.slice();
    expect(Buffer.from(await other.add(third, false, release)).toString('hex')).toBe(expected); // in the store: touched
    expect(released).toHaveLength(3);
    expect(released[2]!.buffer).toBe(third.buffer);
    expect(pool.tasks).toEqual(['encodeChunk']);

    const worker = new ChunkWriter(store, pool, nativeCodec());
    expect(Buffer.from(await worker.add(data.slice())).toString('hex')).toBe(expected);
    expect(pool.tasks).toEqual(['encodeChunk', 'digestChunk']);
  });
});
