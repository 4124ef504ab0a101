import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { BuzhashChunker } from '../../src/chunker/buzhash.js';
import { chunkList } from './feed.js';
import { prng } from './gen-inputs.js';

const KiB = 1024;

describe('BuzhashChunker', () => {
  test.each([0, 32 * KiB, 96 * KiB, 8192 * KiB, 64 * KiB + 0.5])('rejects average size %s', (avg) => {
    expect(() => new BuzhashChunker(avg)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  test('parameters: min avg/4, max avg*4', () => {
    const c = new BuzhashChunker(4096 * KiB);
    expect([c.avgSize, c.minSize, c.maxSize]).toEqual([4 << 20, 1 << 20, 16 << 20]);
  });

  test('zeros never match the threshold: cuts exactly at max, last chunk is the rest', async () => {
    const ends = (await chunkList(new Uint8Array(3 * 256 * KiB + 10), new BuzhashChunker(64 * KiB), [100_000])).map(([e]) => e);
    expect(ends).toEqual([256 * KiB, 512 * KiB, 768 * KiB, 768 * KiB + 10]);
  });

  test('scan returns an offset within the given buffer, 0 until a boundary, and reset starts a new chunk', () => {
    const data = prng('scan-api', 512 * KiB);
    const whole = new BuzhashChunker(64 * KiB).scan(data);
    expect(whole).toBeGreaterThanOrEqual(16 * KiB);

    const c = new BuzhashChunker(64 * KiB);
    expect(c.scan(data.subarray(0, whole - 1))).toBe(0);
    expect(c.scan(data.subarray(whole - 1))).toBe(1);

    c.scan(data.subarray(0, 1000));
    c.reset();
    expect(c.scan(data)).toBe(whole);
  });

  test('the hash depends on the last 64 bytes only; a match cuts from min on, never before', () => {
    const avg = 64 * KiB;
    const source = prng('early', 256 * KiB);
    const b = new BuzhashChunker(avg).scan(source);
    const matching = source.subarray(b - 64, b);
    const filler = prng('filler', 40 * KiB);

    const late = filler.slice();
    late.set(matching, 20_000 - 64);
    expect(new BuzhashChunker(avg).scan(late)).toBe(20_000);

    const early = filler.slice();
    early.set(matching, 1000 - 64);
    expect(new BuzhashChunker(avg).scan(early)).toBe(new BuzhashChunker(avg).scan(filler));
  });

  test('boundaries do not depend on how the input is split into buffers (property)', async () => {
    // Random, zero and repeated regions; tiny pieces exercise the window ring, large ones the hot loop.
    const random = prng('prop', 700 * KiB);
    const data = new Uint8Array(900 * KiB);
    data.set(random.subarray(0, 300 * KiB), 0);
    data.set(random.subarray(0, 200 * KiB), 400 * KiB);
    data.set(random.subarray(300 * KiB, 600 * KiB), 600 * KiB);
    const avg = 64 * KiB;
    const expected = await chunkList(data, new BuzhashChunker(avg), [data.length]);
    expect(expected.length).toBeGreaterThan(5);

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.integer({ min: 1, max: 130 }), fc.integer({ min: 131, max: 300 * KiB })), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 300 * KiB }),
        async (sizes, offset) => {
          // Starting mid-input shifts every piece edge relative to the chunk boundaries.
          const part = data.subarray(offset);
          const want = await chunkList(part, new BuzhashChunker(avg), [part.length]);
          expect(await chunkList(part, new BuzhashChunker(avg), sizes)).toEqual(want);
        },
      ),
      { numRuns: 60 },
    );
  });
});
