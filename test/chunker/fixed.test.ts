import { describe, expect, test } from 'vitest';
import { FixedChunker, MAX_FIXED_CHUNK_SIZE } from '../../src/chunker/fixed.js';
import { PbsError } from '../../src/errors.js';
import { chunkList } from './feed.js';

const ends = async (len: number, size: number, pieces: number[]) =>
  (await chunkList(new Uint8Array(len).map((_, i) => i * 7), new FixedChunker(size), pieces)).map(([e]) => e);

describe('FixedChunker', () => {
  test('cuts every chunkSize bytes and leaves a short last chunk', async () => {
    expect(await ends(10, 4, [10])).toEqual([4, 8, 10]);
    expect(await ends(10, 4, [3])).toEqual([4, 8, 10]);
    expect(await ends(10, 4, [1])).toEqual([4, 8, 10]);
  });

  test('exact multiple: no empty trailing chunk', async () => {
    expect(await ends(12, 4, [5])).toEqual([4, 8, 12]);
    expect(await ends(4, 4, [4])).toEqual([4]);
  });

  test('empty stream yields nothing; shorter than one chunk yields one', async () => {
    expect(await ends(0, 4, [4])).toEqual([]);
    expect(await ends(3, 4, [1])).toEqual([3]);
  });

  test('chunk size 1', async () => {
    expect(await ends(3, 1, [2])).toEqual([1, 2, 3]);
  });

  test('4 MiB chunks over uneven pieces keep their content', async () => {
    const size = 4 << 20;
    const list = await chunkList(new Uint8Array(size * 2 + 5).fill(9), new FixedChunker(size), [1_000_003]);
    expect(list.map(([e]) => e)).toEqual([size, 2 * size, 2 * size + 5]);
    expect(list[0][1]).toBe(list[1][1]);
  });

  test('scan: boundary offset within the buffer, 0 when none, state carries across calls', () => {
    const c = new FixedChunker(5);
    expect(c.scan(new Uint8Array(3))).toBe(0);
    expect(c.scan(new Uint8Array(4))).toBe(2);
    expect(c.scan(new Uint8Array(0))).toBe(0);
    expect(c.scan(new Uint8Array(5))).toBe(5);
    expect(c.scan(new Uint8Array(2))).toBe(0);
    c.reset();
    expect(c.scan(new Uint8Array(5))).toBe(5);
  });

  test.each([0, -1, 1.5, Number.NaN, MAX_FIXED_CHUNK_SIZE + 1])('rejects chunk size %s', (size) => {
    expect(() => new FixedChunker(size)).toThrow(PbsError);
    expect(() => new FixedChunker(size)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
