import { describe, expect, it } from 'vitest';
import { isPbsError } from '../../src/errors.js';
import { jsCodec, nativeCodec } from '../../src/codec/index.js';
import { encodeRawZstdFrame, scanZstdFrames, ZSTD_MAX_BLOCK } from '../../src/codec/zstd-frame.js';
import { hasContentSize, hex, pseudoRandom, zstdOneShot, zstdStreamed } from './helpers.js';

const native = nativeCodec();
const js = jsCodec();
const backends = [native, js];
const MiB = 1024 * 1024;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isPbsError(e)) return e.code;
    throw e;
  }
  return undefined;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

const inputs: [string, Uint8Array][] = [
  ['empty', new Uint8Array(0)],
  ['one byte', Uint8Array.of(42)],
  ['zeros 1 MiB', new Uint8Array(MiB)],
  ['compressible 4 MiB', pseudoRandom(4 * MiB, 1, 4)],
  ['incompressible 300 KiB', pseudoRandom(300 * 1024, 2)],
];

describe('zstd frames decode the same in both backends', () => {
  it.each(inputs)('%s: zstd-napi one-shot frames (content size present) decode with both', (_, data) => {
    const frame = native.zstdCompress(data, 1);
    expect(hasContentSize(frame)).toBe(true);
    for (const c of backends) expect(hex(c.zstdDecompress(frame, data.length))).toBe(hex(data));
  });

  it.each(inputs)('%s: streamed frames without content size decode with both', (_, data) => {
    for (const frame of [zstdStreamed(data), zstdStreamed(data, { checksum: true })]) {
      expect(hasContentSize(frame)).toBe(false);
      for (const c of backends) expect(hex(c.zstdDecompress(frame, data.length))).toBe(hex(data));
    }
  });

  it.each(inputs)('%s: js raw-block frames decode with zstd-napi and fzstd', (_, data) => {
    const frame = js.zstdCompress(data, 1);
    expect(frame.length).toBeGreaterThan(data.length); // so encodeBlob keeps the plain bytes
    expect(hasContentSize(frame)).toBe(true);
    for (const c of backends) expect(hex(c.zstdDecompress(frame, data.length))).toBe(hex(data));
  });

  it('raw-block frames pick the right content-size field width and split into 128 KiB blocks', () => {
    for (const n of [0, 255, 256, 65_791, 65_792, ZSTD_MAX_BLOCK, ZSTD_MAX_BLOCK + 1, 3 * ZSTD_MAX_BLOCK]) {
      const data = pseudoRandom(n, n + 9);
      const frame = encodeRawZstdFrame(data);
      const [f] = scanZstdFrames(frame);
      expect(f.contentSize).toBe(n);
      expect(f.length).toBe(frame.length);
      expect(hex(native.zstdDecompress(frame, n))).toBe(hex(data));
    }
  });

  it('concatenated frames and skippable frames are accepted by both', () => {
    const a = pseudoRandom(200_000, 3, 5);
    const b = pseudoRandom(70_000, 4, 3);
    const skippable = Uint8Array.of(0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9);
    const payload = concat(zstdOneShot(a), skippable, zstdStreamed(b), js.zstdCompress(a, 1));
    const want = hex(concat(a, b, a));
    for (const c of backends) expect(hex(c.zstdDecompress(payload, 470_000))).toBe(want);
  });

  it('frames of libzstd at other levels and windows decode with both', () => {
    const data = pseudoRandom(256 * 1024, 8, 3);
    for (const frame of [zstdOneShot(data, 19), zstdOneShot(data, -5), zstdStreamed(data, { windowLog: 10 })]) {
      for (const c of backends) expect(hex(c.zstdDecompress(frame, data.length))).toBe(hex(data));
    }
  });
});

describe.each(backends)('$name zstd limits and corrupt input', (codec) => {
  const data = pseudoRandom(MiB, 5, 4);
  const oneShot = native.zstdCompress(data, 1);
  const streamed = zstdStreamed(data);

  it('ETOOBIG past maxSize, with and without a content size, and at the exact limit it is fine', () => {
    expect(codeOf(() => codec.zstdDecompress(oneShot, MiB - 1))).toBe('ETOOBIG');
    expect(codeOf(() => codec.zstdDecompress(streamed, MiB - 1))).toBe('ETOOBIG');
    expect(codeOf(() => codec.zstdDecompress(js.zstdCompress(data, 1), 1000))).toBe('ETOOBIG');
    expect(codec.zstdDecompress(oneShot, MiB).length).toBe(MiB);
    expect(codec.zstdDecompress(streamed, MiB).length).toBe(MiB);
    expect(codeOf(() => codec.zstdDecompress(oneShot, -1))).toBe('EINVAL');
  });

  it('a zip bomb without content size stops at the limit', () => {
    const bomb = zstdStreamed(new Uint8Array(64 * MiB));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(codeOf(() => codec.zstdDecompress(bomb, 4 * MiB))).toBe('ETOOBIG');
  });

  it('a header that declares a huge content size is refused before anything is allocated', () => {
    // Frame_Content_Size of 2^40 in an 8-byte field, then one empty raw block.
    const huge = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0);
    expect(codeOf(() => codec.zstdDecompress(huge, 128 * MiB))).toBe('ETOOBIG');
    // A 2 GiB window (descriptor exponent 21) is beyond libzstd's default limit too.
    const wide = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 1, 0, 0);
    expect(codeOf(() => codec.zstdDecompress(wide, 128 * MiB))).toBe('ETOOBIG');
  });

  it('truncated, bit-flipped or foreign input gives ECORRUPT', () => {
    expect(codeOf(() => codec.zstdDecompress(new Uint8Array(0), 10))).toBe('ECORRUPT');
    expect(codeOf(() => codec.zstdDecompress(new TextEncoder().encode('definitely not zstd'), 100))).toBe('ECORRUPT');
    for (const frame of [oneShot, streamed]) {
      for (const cut of [3, 9, frame.length >> 1, frame.length - 1]) {
        expect(codeOf(() => codec.zstdDecompress(frame.subarray(0, cut), MiB)), `cut at ${cut}`).toBe('ECORRUPT');
      }
      expect(codeOf(() => codec.zstdDecompress(concat(frame, Uint8Array.of(1, 2, 3)), 2 * MiB))).toBe('ECORRUPT');
    }
    const reserved = oneShot.slice();
    reserved[4] |= 0x08;
    expect(codeOf(() => codec.zstdDecompress(reserved, MiB))).toBe('ECORRUPT');
  });

  it('random corruption never crashes or hangs: result is the data, a PbsError, or wrong bytes', () => {
    const small = native.zstdCompress(pseudoRandom(50_000, 6, 3), 1);
    for (let i = 0; i < 200; i++) {
      const bad = small.slice();
      const at = 4 + ((i * 7919) % (bad.length - 4));
      bad[at] ^= 1 << i % 8;
      try {
        const out = codec.zstdDecompress(bad, 100_000);
        expect(out.length).toBeLessThanOrEqual(100_000);
      } catch (e) {
        expect(isPbsError(e), String(e)).toBe(true);
      }
    }
  });

  it('a raw frame whose blocks disagree with its declared size is ECORRUPT', () => {
    const frame = js.zstdCompress(pseudoRandom(1000, 1), 1);
    frame[5] ^= 1; // 2-byte FCS field: now declares 1001 or 999 bytes
    expect(codeOf(() => codec.zstdDecompress(frame, 5000))).toBe('ECORRUPT');
  });
});
