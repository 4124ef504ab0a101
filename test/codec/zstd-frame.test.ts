import { describe, expect, it } from 'vitest';
import { isPbsError } from '../../src/errors.js';
import { encodeRawZstdFrame, scanZstdFrames, ZSTD_MAX_BLOCK } from '../../src/codec/zstd-frame.js';
import { pseudoRandom, zstdOneShot, zstdStreamed } from './helpers.js';

function errorOf(f: () => unknown): { code: string; offset?: number } | undefined {
  try {
    f();
  } catch (e) {
    if (isPbsError(e)) return { code: e.code, offset: e.offset };
    throw e;
  }
  return undefined;
}

describe('scanZstdFrames', () => {
  it('reads content size, window and output bound of libzstd frames', () => {
    const data = pseudoRandom(500_000, 1, 4);
    const [oneShot] = scanZstdFrames(zstdOneShot(data));
    expect(oneShot.contentSize).toBe(500_000);
    expect(oneShot.maxOutput).toBeGreaterThanOrEqual(500_000);
    const streamedBytes = zstdStreamed(data, { checksum: true });
    const [streamed] = scanZstdFrames(streamedBytes);
    expect(streamed.contentSize).toBeNull();
    expect(streamed.length).toBe(streamedBytes.length);
    expect(streamed.windowSize).toBeGreaterThanOrEqual(ZSTD_MAX_BLOCK);
    expect(streamed.maxOutput).toBeGreaterThanOrEqual(500_000);
  });

  it('lists several frames with their offsets', () => {
    const a = encodeRawZstdFrame(Uint8Array.of(1, 2, 3));
    const skip = Uint8Array.of(0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0);
    const b = encodeRawZstdFrame(new Uint8Array(300));
    const frames = scanZstdFrames(new Uint8Array(Buffer.concat([a, skip, b])));
    expect(frames.map((f) => [f.offset, f.skippable, f.contentSize])).toEqual([
      [0, false, 3],
      [a.length, true, 0],
      [a.length + 8, false, 300],
    ]);
  });

  it('names the offset of what is wrong', () => {
    const good = encodeRawZstdFrame(new Uint8Array(10));
    const two = new Uint8Array(Buffer.concat([good, good.subarray(0, good.length - 2)]));
    expect(errorOf(() => scanZstdFrames(two))).toEqual({ code: 'ECORRUPT', offset: good.length + 6 }); // the block header of frame 2
    const badType = good.slice();
    badType[6] |= 0b110; // block type 3 (reserved)
    expect(errorOf(() => scanZstdFrames(badType))).toEqual({ code: 'ECORRUPT', offset: 6 });
    const dict = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 0, 1, 0, 0);
    expect(errorOf(() => scanZstdFrames(dict))?.code).toBe('EUNSUPPORTED');
  });

  it('refuses a block larger than the window allows', () => {
    // Single segment, content size 16, but one raw block claiming 17 bytes.
    const f = new Uint8Array(4 + 1 + 1 + 3 + 17);
    f.set([0x28, 0xb5, 0x2f, 0xfd, 0x20, 16], 0);
    const bh = (17 << 3) | 1;
    f.set([bh & 0xff, bh >> 8, 0], 6);
    expect(errorOf(() => scanZstdFrames(f))?.code).toBe('ECORRUPT');
  });
});
