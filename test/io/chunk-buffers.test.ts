import { describe, expect, it } from 'vitest';
import { ChunkBuffers, residentBytes } from '../../src/io/chunk-buffers.js';

const MiB = 1024 * 1024;
const nextTurn = () => new Promise((res) => setImmediate(res));

describe('ChunkBuffers', () => {
  it('gives a dynamic chunk a free buffer of its capacity class or the next one', async () => {
    const pool = new ChunkBuffers();
    const a = pool.take(3_300_000);
    expect(a.byteLength).toBe(3_300_000);
    expect(residentBytes(a)).toBe(4 * MiB);
    pool.giveBack(a);
    // Not in the same turn: a reader that got it in this turn may still be using it.
    expect(pool.take(3_600_000).buffer).not.toBe(a.buffer);
    await nextTurn();
    const b = pool.take(3_600_000);
    expect(b.buffer).toBe(a.buffer);
    pool.giveBack(b);
    await nextTurn();
    // Two classes smaller would leave most of it unused: a new buffer.
    expect(pool.take(1_600_000).buffer).not.toBe(a.buffer);
    // A chunk of the next class down still takes it.
    expect(pool.take(2_600_000).buffer).toBe(a.buffer);
  });

  it('keeps at most 16 MiB of free buffers, dropping the oldest', async () => {
    const pool = new ChunkBuffers();
    const bufs = [pool.take(6 * MiB), pool.take(6 * MiB), pool.take(6 * MiB)];
    for (const b of bufs) pool.giveBack(b);
    await nextTurn();
    const got = [pool.take(6 * MiB), pool.take(6 * MiB)].map((b) => b.buffer);
    expect(got).not.toContain(bufs[0]!.buffer);
    expect(got).toContain(bufs[1]!.buffer);
    expect(got).toContain(bufs[2]!.buffer);
  });

  it('ignores buffers it did not make and views that do not start its buffer', async () => {
    const pool = new ChunkBuffers();
    const own = pool.take(MiB);
    pool.giveBack(new Uint8Array(MiB));
    pool.giveBack(own.subarray(16));
    await nextTurn();
    expect(pool.take(MiB).buffer).not.toBe(own.buffer);
  });
});

describe('ChunkBuffers.giveBackMoved', () => {
  it('takes back a buffer that returned from a worker as a new ArrayBuffer', async () => {
    const pool = new ChunkBuffers();
    const a = pool.take(4 * MiB);
    // What a transfer to a worker and back yields: the same bytes behind another ArrayBuffer object.
    const back = new Uint8Array(structuredClone(a.buffer, { transfer: [a.buffer] }));
    pool.giveBackMoved(back);
    await nextTurn();
    expect(pool.take(4 * MiB).buffer).toBe(back.buffer);
  });
});
