// Mutated and random inputs: every parser either returns or throws a PbsError, never anything else.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { PbsError } from '../../src/errors.js';
import { decodeBlob, encodeBlob } from '../../src/format/blob.js';
import { encodeDynamicIndex, parseDynamicIndex } from '../../src/format/dynamic-index.js';
import { encodeFixedIndex, parseFixedIndex } from '../../src/format/fixed-index.js';
import { parseKeyConfig } from '../../src/format/key-file.js';
import { encodeManifest, parseManifest } from '../../src/format/manifest.js';
import type { Digest } from '../../src/types.js';
import { codecs } from './codecs.js';

function onlyPbsErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PbsError)) throw e;
  }
}

/** A valid file with a few bytes overwritten, truncated, or extended. */
const mutated = (valid: Uint8Array) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.integer({ min: -64, max: 64 }),
    )
    .map(([edits, lenDelta]) => {
      const out = new Uint8Array(Math.max(0, valid.length + lenDelta));
      out.set(valid.subarray(0, out.length));
      for (const [at, v] of edits) if (at < out.length) out[at] = v;
      return out;
    });

const KEY = Uint8Array.from(randomBytes(32));
const digest = (i: number): Digest => new Uint8Array(32).fill(i) as Digest;

for (const codec of codecs) {
  describe(`hostile input (${codec.name} codec)`, () => {
    it('blobs', () => {
      const blobs = [
        encodeBlob(codec, new Uint8Array(3000).fill(7), { compress: true }),
        encodeBlob(codec, new Uint8Array(3000).fill(7), { compress: true, cryptKey: KEY }),
      ];
      for (const valid of blobs) {
        fc.assert(fc.property(mutated(valid), (b) => onlyPbsErrors(() => decodeBlob(codec, b, { cryptKey: KEY }))), { numRuns: 300 });
      }
      fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => onlyPbsErrors(() => decodeBlob(codec, b))), { numRuns: 300 });
    });

    it('indexes', () => {
      const fidx = encodeFixedIndex(codec, { uuid: new Uint8Array(16), ctime: 1, size: 3 * 4096, chunkSize: 4096 }, [1, 2, 3].map(digest));
      const didx = encodeDynamicIndex(codec, { uuid: new Uint8Array(16), ctime: 1 }, [1, 2, 3].map((i) => ({ end: i * 100, digest: digest(i) })));
      fc.assert(fc.property(mutated(fidx), (b) => onlyPbsErrors(() => parseFixedIndex(b))), { numRuns: 300 });
      fc.assert(fc.property(mutated(didx), (b) => onlyPbsErrors(() => parseDynamicIndex(b))), { numRuns: 300 });
      const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
      fc.assert(
        fc.property(u64, fc.nat(2), (end, i) => {
          const b = didx.slice();
          new DataView(b.buffer).setBigUint64(4096 + 40 * i, end, true);
          onlyPbsErrors(() => parseDynamicIndex(b));
        }),
        { numRuns: 300 },
      );
      fc.assert(
        fc.property(u64, u64, (size, cs) => {
          const b = fidx.slice();
          const dv = new DataView(b.buffer);
          dv.setBigUint64(64, size, true);
          dv.setBigUint64(72, cs, true);
          onlyPbsErrors(() => parseFixedIndex(b));
        }),
        { numRuns: 300 },
      );
    });
  });
}

describe('hostile JSON', () => {
  it('manifests and key files', () => {
    const manifest = encodeManifest({
      'backup-type': 'vm',
      'backup-id': '100',
      'backup-time': 1,
      files: [{ filename: 'a.blob', 'crypt-mode': 'none', size: 1, csum: 'ab'.repeat(32) }],
      unprotected: {},
      signature: null,
    });
    const key = new TextEncoder().encode(
      '{"kdf":{"PBKDF2":{"iter":65535,"salt":"AAAA"}},"created":"2024-05-01T12:00:00+02:00","modified":"2024-05-01T12:00:00+02:00","data":"AAAA"}',
    );
    fc.assert(fc.property(mutated(manifest), (b) => onlyPbsErrors(() => parseManifest(b))), { numRuns: 500 });
    fc.assert(fc.property(mutated(key), (b) => onlyPbsErrors(() => parseKeyConfig(b))), { numRuns: 500 });
    fc.assert(fc.property(fc.json(), (j) => onlyPbsErrors(() => parseManifest(j))), { numRuns: 300 });
    fc.assert(fc.property(fc.json(), (j) => onlyPbsErrors(() => parseKeyConfig(j))), { numRuns: 300 });
  });
});
