import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import zstd from 'zstd-napi';
import { describe, expect, it } from 'vitest';
import { decodeBlob, encodeBlob, MAX_BLOB_SIZE, parseBlobHeader, verifyBlobCrc, type BlobKind } from '../../src/format/blob.js';
import { codecs } from './codecs.js';
import { expectPbsError } from './expect-error.js';

const KEY = Uint8Array.from(randomBytes(32));
const OTHER_KEY = Uint8Array.from(randomBytes(32));

// Magics recomputed from the spec's strings (§1.1), not copied from the implementation.
const magic = (s: string): string => createHash('sha256').update(s).digest().subarray(0, 8).toString('hex');
const MAGIC_OF: Record<BlobKind, string> = {
  uncompressed: magic('Proxmox Backup uncompressed blob v1.0'),
  compressed: magic('Proxmox Backup zstd compressed blob v1.0'),
  encrypted: magic('Proxmox Backup encrypted blob v1.0'),
  'encrypted-compressed': magic('Proxmox Backup zstd compressed encrypted blob v1.0'),
};

/** Independent reader over the spec's offsets (§1.2, §1.3): node:crypto, zlib and zstd-napi directly. */
function independentDecode(blob: Uint8Array, key?: Uint8Array): { kind: BlobKind; data: Buffer } {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const m = Buffer.from(blob.subarray(0, 8)).toString('hex');
  const kind = (Object.keys(MAGIC_OF) as BlobKind[]).find((k) => MAGIC_OF[k] === m);
  if (!kind) throw new Error('unknown magic');
  const enc = kind.startsWith('encrypted');
  const hs = enc ? 44 : 12;
  expect(crc32(blob.subarray(hs))).toBe(dv.getUint32(8, true));
  let payload = Buffer.from(blob.subarray(hs));
  if (enc) {
    const d = createDecipheriv('aes-256-gcm', key!, blob.subarray(12, 28));
    d.setAuthTag(blob.subarray(28, 44));
    payload = Buffer.concat([d.update(payload), d.final()]);
  }
  const data = kind === 'compressed' || kind === 'encrypted-compressed' ? zstd.decompress(payload) : payload;
  return { kind, data };
}


/** A zstd frame whose header lacks the content-size field (as [3.x] streaming writers made). */
function frameWithoutContentSize(data: Uint8Array): Uint8Array {
  const c = new zstd.Compressor();
  c.setParameters({ compressionLevel: 1, contentSizeFlag: false });
  const frame = new Uint8Array(c.compress(data));
  expect(Buffer.from(frame.subarray(0, 4)).toString('hex')).toBe('28b52ffd');
  const fhd = frame[4];
  // Frame_Content_Size_flag (bits 7-6) zero and Single_Segment_flag (bit 5) clear => no FCS field at all.
  expect(fhd >> 6).toBe(0);
  expect(fhd & 0x20).toBe(0);
  return frame;
}

function rawBlob(kind: BlobKind, payload: Uint8Array, iv?: Uint8Array, tag?: Uint8Array): Uint8Array {
  const hs = iv ? 44 : 12;
  const out = new Uint8Array(hs + payload.length);
  out.set(Buffer.from(MAGIC_OF[kind], 'hex'), 0);
  if (iv && tag) {
    out.set(iv, 12);
    out.set(tag, 28);
  }
  out.set(payload, hs);
  new DataView(out.buffer).setUint32(8, crc32(payload), true);
  return out;
}

const compressible = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 13);

for (const codec of codecs) {
  describe(`blob (${codec.name} codec)`, () => {
    const cases: [string, { compress: boolean; cryptKey?: Uint8Array }, BlobKind][] = [
      ['uncompressed', { compress: false }, 'uncompressed'],
      ['compressed', { compress: true }, 'compressed'],
      ['encrypted', { compress: false, cryptKey: KEY }, 'encrypted'],
      ['encrypted-compressed', { compress: true, cryptKey: KEY }, 'encrypted-compressed'],
    ];
    // The pure-JS backend writes stored zstd frames, which are never smaller, so it keeps data uncompressed.
    const shrinks = codec.zstdCompress(compressible(100_000), 1).length < 100_000;
    it('native compresses; the JS backend never emits a frame larger than its input', () => {
      expect(shrinks).toBe(codec.name === 'native');
    });

    for (const [name, opts, kind] of cases) {
      it(`round-trips ${name} through an independent reader`, () => {
        const data = compressible(100_000);
        const blob = encodeBlob(codec, data, opts);
        const h = parseBlobHeader(blob);
        const want = shrinks ? kind : opts.cryptKey ? 'encrypted' : 'uncompressed';
        expect(h.kind).toBe(want);
        expect(h.headerSize).toBe(opts.cryptKey ? 44 : 12);
        const ind = independentDecode(blob, opts.cryptKey);
        expect(ind.kind).toBe(want);
        expect(Buffer.compare(ind.data, data)).toBe(0);
        expect(decodeBlob(codec, blob, { cryptKey: opts.cryptKey })).toEqual(data);
      });
    }

    it('uses a fresh 16-byte IV per encryption and keeps the GCM tag in the header', () => {
      const a = parseBlobHeader(encodeBlob(codec, compressible(10), { compress: false, cryptKey: KEY }));
      const b = parseBlobHeader(encodeBlob(codec, compressible(10), { compress: false, cryptKey: KEY }));
      expect(a.iv!.length).toBe(16);
      expect(a.tag!.length).toBe(16);
      expect(a.iv).not.toEqual(b.iv);
    });

    for (const size of [0, 1]) {
      it(`handles ${size}-byte inputs in all four kinds`, () => {
        const data = new Uint8Array(size).fill(0x5a);
        for (const [, opts] of cases) {
          const blob = encodeBlob(codec, data, opts);
          expect(Buffer.compare(independentDecode(blob, opts.cryptKey).data, data)).toBe(0);
          expect(decodeBlob(codec, blob, { cryptKey: opts.cryptKey })).toEqual(data);
        }
      });
    }

    it('handles a 16 MiB chunk', () => {
      const data = compressible(16 * 1024 * 1024);
      for (const [, opts] of cases) {
        const blob = encodeBlob(codec, data, opts);
        expect(Buffer.compare(independentDecode(blob, opts.cryptKey).data, data)).toBe(0);
        expect(Buffer.compare(decodeBlob(codec, blob, { cryptKey: opts.cryptKey }), data)).toBe(0);
      }
    });

    it('keeps the compressed form only if it is not larger ([4.x] rule)', () => {
      const random = Uint8Array.from(randomBytes(4096));
      expect(parseBlobHeader(encodeBlob(codec, random, { compress: true })).kind).toBe('uncompressed');
      expect(parseBlobHeader(encodeBlob(codec, random, { compress: true, cryptKey: KEY })).kind).toBe('encrypted');
      if (!shrinks) return;
      // Equal length counts as "not larger": find a tiny input whose frame is exactly its own size.
      let equal: Uint8Array | undefined;
      for (let n = 1; n < 64 && !equal; n++) {
        const d = Uint8Array.from(randomBytes(n));
        if (codec.zstdCompress(d, 1).length === n) equal = d;
        const z = new Uint8Array(n);
        if (!equal && codec.zstdCompress(z, 1).length === n) equal = z;
      }
      expect(equal).toBeDefined();
      expect(parseBlobHeader(encodeBlob(codec, equal!, { compress: true })).kind).toBe('compressed');
    });

    it('decodes zstd frames without the content-size field', () => {
      const data = compressible(300_000);
      const frame = frameWithoutContentSize(data);
      expect(decodeBlob(codec, rawBlob('compressed', frame))).toEqual(data);
      const iv = Uint8Array.from(randomBytes(16));
      const { ciphertext, tag } = codec.aesGcmEncrypt(KEY, iv, frame);
      expect(decodeBlob(codec, rawBlob('encrypted-compressed', ciphertext, iv, tag), { cryptKey: KEY })).toEqual(data);
    });

    it('refuses input over 128 MiB and output over maxSize', () => {
      expect(() => encodeBlob(codec, new Uint8Array(MAX_BLOB_SIZE + 1), { compress: false })).toThrow(/exceeds/);
      const blob = encodeBlob(codec, compressible(5000), { compress: true });
      expectPbsError(() => decodeBlob(codec, blob, { maxSize: 4999, path: 'x.blob' }), 'ETOOBIG', /x\.blob/);
      const plain = encodeBlob(codec, compressible(5000), { compress: false });
      expectPbsError(() => decodeBlob(codec, plain, { maxSize: 4999, path: 'x.blob' }), 'ETOOBIG', /x\.blob/);
    });

    describe('corrupt input', () => {
      const path = '/ds/.chunks/abcd/abcd0000';
      const digest = 'ab'.repeat(32);
      const enc = encodeBlob(codec, compressible(1000), { compress: true, cryptKey: KEY });
      const plain = encodeBlob(codec, compressible(1000), { compress: true });

      it('truncated header', () => {
        expectPbsError(() => decodeBlob(codec, plain.subarray(0, 11), { path }), 'ECORRUPT', /too short.*path \/ds/);
        expectPbsError(() => decodeBlob(codec, enc.subarray(0, 43), { path, digest, cryptKey: KEY }), 'ECORRUPT', /too short.*chunk abab/);
      });
      it('wrong magic', () => {
        const b = plain.slice();
        b[0] ^= 1;
        expectPbsError(() => decodeBlob(codec, b, { path }), 'ECORRUPT', /magic.*path \/ds/);
      });
      it('flipped CRC byte', () => {
        const b = plain.slice();
        b[9] ^= 0x40;
        expectPbsError(() => verifyBlobCrc(codec, b, { path }), 'ECORRUPT', /CRC.*path \/ds/);
        expectPbsError(() => decodeBlob(codec, b, { path }), 'ECORRUPT', /CRC/);
      });
      it('flipped payload byte (CRC catches it)', () => {
        const b = plain.slice();
        b[20] ^= 1;
        expectPbsError(() => decodeBlob(codec, b, { path }), 'ECORRUPT', /CRC/);
      });
      it('flipped ciphertext byte with a fixed-up CRC (GCM tag catches it)', () => {
        const b = enc.slice();
        b[50] ^= 1;
        new DataView(b.buffer).setUint32(8, crc32(b.subarray(44)), true);
        expectPbsError(() => decodeBlob(codec, b, { path, cryptKey: KEY }), 'EACCES', /wrong key or corrupt.*path \/ds/);
      });
      it('wrong key', () => {
        expectPbsError(() => decodeBlob(codec, enc, { path, digest, cryptKey: OTHER_KEY }), 'EACCES', /wrong key.*chunk abab/);
      });
      it('missing key', () => {
        expectPbsError(() => decodeBlob(codec, enc, { path }), 'EACCES', /encrypted.*needs a key.*path \/ds/);
      });
      it('garbage zstd payload with a valid CRC', () => {
        const b = rawBlob('compressed', Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]));
        expectPbsError(() => decodeBlob(codec, b, { path }), 'ECORRUPT', /zstd.*path \/ds/);
      });
    });
  });
}

describe('blobs cross between backends', () => {
  const [a, b] = codecs;
  it('each backend decodes what the other encoded, all four kinds', () => {
    const data = compressible(200_000);
    for (const [from, to] of [[a, b], [b, a]]) {
      for (const opts of [{ compress: false }, { compress: true }, { compress: false, cryptKey: KEY }, { compress: true, cryptKey: KEY }]) {
        expect(decodeBlob(to, encodeBlob(from, data, opts), { cryptKey: opts.cryptKey })).toEqual(data);
      }
    }
  });
});
