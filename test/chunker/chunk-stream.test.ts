import { describe, expect, test } from 'vitest';
import { chunkStream } from '../../src/chunker/chunk-stream.js';
import type { Chunker } from '../../src/chunker/chunker.js';
import { FixedChunker } from '../../src/chunker/fixed.js';

async function* from(bufs: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* bufs;
}

async function collect(bufs: Uint8Array[], chunker: Chunker): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunkStream(from(bufs), chunker)) out.push(c);
  return out;
}

describe('chunkStream', () => {
  test('chunks inside one buffer are views of it, spanning chunks are fresh copies', async () => {
    const a = Uint8Array.from([1, 2, 3, 4, 5, 6, 7]);
    const b = Uint8Array.from([8, 9, 10]);
    const chunks = await collect([a, b], new FixedChunker(3));
    expect(chunks.map((c) => [...c])).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]);
    expect(chunks[0].buffer).toBe(a.buffer);
    expect(chunks[1].buffer).toBe(a.buffer);
    expect(chunks[2].buffer).not.toBe(a.buffer);
    expect(chunks[2].buffer).not.toBe(b.buffer);
    expect(chunks[2].byteLength).toBe(chunks[2].buffer.byteLength);
  });

  test('empty stream and empty buffers yield nothing', async () => {
    expect(await collect([], new FixedChunker(3))).toEqual([]);
    expect(await collect([new Uint8Array(0), new Uint8Array(0)], new FixedChunker(3))).toEqual([]);
  });

  test('many tiny buffers are staged without losing or reordering bytes', async () => {
    const bufs = Array.from({ length: 300_000 }, (_, i) => Uint8Array.of(i & 255));
    const chunks = await collect(bufs, new FixedChunker(100_000));
    expect(chunks.map((c) => c.length)).toEqual([100_000, 100_000, 100_000]);
    for (const [k, c] of chunks.entries()) {
      for (let i = 0; i < c.length; i += 9973) expect(c[i]).toBe((k * 100_000 + i) & 255);
    }
  });

  test('a yielded spanning chunk is not overwritten by later staging', async () => {
    const chunks = await collect([new Uint8Array(2).fill(1), new Uint8Array(2).fill(2), new Uint8Array(3).fill(3)], new FixedChunker(3));
    expect(chunks.map((c) => [...c])).toEqual([[1, 1, 2], [2, 3, 3], [3]]);
  });

  test('resets the chunker at the start of a stream', async () => {
    const c = new FixedChunker(4);
    c.scan(new Uint8Array(3));
    const chunks = await collect([new Uint8Array(8)], c);
    expect(chunks.map((x) => x.length)).toEqual([4, 4]);
  });

  test('a chunker answering outside the buffer is reported, not followed', async () => {
    const bad: Chunker = { scan: (d) => d.length + 1, reset: () => {} };
    await expect(collect([new Uint8Array(5)], bad)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('source errors propagate', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(2);
      throw new Error('read failed');
    }
    const run = async () => {
      for await (const _ of chunkStream(failing(), new FixedChunker(4))) void _;
    };
    await expect(run()).rejects.toThrow('read failed');
  });
});
