import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DYNAMIC_INDEX_MAGIC,
  dynamicIndexCsum,
  encodeDynamicEntry,
  encodeDynamicIndex,
  encodeDynamicIndexHeader,
  IndexCsumHasher,
  parseDynamicIndex,
  type DynamicEntry,
} from '../../src/format/dynamic-index.js';
import {
  encodeFixedIndex,
  encodeFixedIndexHeader,
  FIXED_CHUNK_SIZE,
  FIXED_INDEX_MAGIC,
  fixedIndexCsum,
  INDEX_HEADER_SIZE,
  parseFixedIndex,
} from '../../src/format/fixed-index.js';
import type { Digest } from '../../src/types.js';
import { codecs } from './codecs.js';
import { expectPbsError } from './expect-error.js';

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();
const digest = (i: number): Digest => Uint8Array.from(sha(`chunk ${i}`)) as Digest;
const UUID = Uint8Array.from(randomBytes(16));


it('magics are the first 8 bytes of SHA-256 of the spec strings', () => {
  expect(Buffer.from(FIXED_INDEX_MAGIC)).toEqual(sha('Proxmox Backup fixed sized chunk index v1.0').subarray(0, 8));
  expect(Buffer.from(DYNAMIC_INDEX_MAGIC)).toEqual(sha('Proxmox Backup dynamic sized chunk index v1.0').subarray(0, 8));
});

for (const codec of codecs) {
  describe(`fixed index (${codec.name} codec)`, () => {
    const size = 2 * FIXED_CHUNK_SIZE + 12345;
    const digests = [0, 1, 2].map(digest);
    const bytes = encodeFixedIndex(codec, { uuid: UUID, ctime: 1_700_000_000, size, chunkSize: FIXED_CHUNK_SIZE }, digests);

    it('writes the spec layout (independent DataView reader)', () => {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(bytes.length).toBe(4096 + 32 * 3);
      expect(Buffer.from(bytes.subarray(0, 8)).toString('hex')).toBe('2f7f41ed91fd0fcd');
      expect(Buffer.from(bytes.subarray(8, 24))).toEqual(Buffer.from(UUID));
      expect(dv.getBigInt64(24, true)).toBe(1_700_000_000n);
      const csum = createHash('sha256');
      digests.forEach((d) => csum.update(d));
      expect(Buffer.from(bytes.subarray(32, 64))).toEqual(csum.digest());
      expect(dv.getBigUint64(64, true)).toBe(BigInt(size));
      expect(dv.getBigUint64(72, true)).toBe(BigInt(FIXED_CHUNK_SIZE));
      expect(bytes.subarray(80, 4096).every((b) => b === 0)).toBe(true);
      digests.forEach((d, i) => expect(bytes.subarray(4096 + 32 * i, 4128 + 32 * i)).toEqual(d));
    });

    it('parses what it wrote', () => {
      const { header, digests: got } = parseFixedIndex(bytes);
      expect(header.size).toBe(size);
      expect(header.chunkSize).toBe(FIXED_CHUNK_SIZE);
      expect(header.ctime).toBe(1_700_000_000);
      expect(header.uuid).toEqual(UUID);
      expect(header.indexCsum).toEqual(fixedIndexCsum(codec, digests));
      expect(got).toEqual(digests);
      expect(encodeFixedIndexHeader(header)).toEqual(bytes.subarray(0, INDEX_HEADER_SIZE));
    });

    it('streams the csum with IndexCsumHasher', () => {
      const h = new IndexCsumHasher(codec);
      digests.forEach((d) => h.update(d));
      expect(h.digest()).toEqual(fixedIndexCsum(codec, digests));
    });

    it('handles an empty image and an exact multiple of the chunk size', () => {
      const empty = encodeFixedIndex(codec, { uuid: UUID, ctime: 0, size: 0, chunkSize: FIXED_CHUNK_SIZE }, []);
      expect(empty.length).toBe(4096);
      expect(parseFixedIndex(empty).digests).toEqual([]);
      const exact = encodeFixedIndex(codec, { uuid: UUID, ctime: 0, size: 2 * 65536, chunkSize: 65536 }, [digest(0), digest(1)]);
      expect(parseFixedIndex(exact).digests).toHaveLength(2);
    });

    it('refuses a digest count that does not match the size', () => {
      expect(() => encodeFixedIndex(codec, { uuid: UUID, ctime: 0, size: 1, chunkSize: 4096 }, [])).toThrow(/needs 1 digests/);
    });

    describe('corrupt input', () => {
      const path = '/ds/vm/100/2024-01-01T00:00:00Z/drive-scsi0.img.fidx';
      it('truncated header', () => {
        expectPbsError(() => parseFixedIndex(bytes.subarray(0, 4000), path), 'ECORRUPT', /too short.*drive-scsi0/);
      });
      it('wrong magic', () => {
        const b = bytes.slice();
        b[3] ^= 1;
        expectPbsError(() => parseFixedIndex(b, path), 'ECORRUPT', /magic.*drive-scsi0/);
      });
      it('truncated digest table', () => {
        expectPbsError(() => parseFixedIndex(bytes.subarray(0, bytes.length - 1), path), 'ECORRUPT', /length.*drive-scsi0/);
      });
      it('length not matching size', () => {
        const b = bytes.slice();
        new DataView(b.buffer).setBigUint64(64, BigInt(4 * FIXED_CHUNK_SIZE), true);
        expectPbsError(() => parseFixedIndex(b, path), 'ECORRUPT', /does not match size.*drive-scsi0/);
      });
      it('chunk size not a power of two, or zero', () => {
        const b = bytes.slice();
        new DataView(b.buffer).setBigUint64(72, 3_000_000n, true);
        expectPbsError(() => parseFixedIndex(b, path), 'ECORRUPT', /power of two.*drive-scsi0/);
        new DataView(b.buffer).setBigUint64(72, 0n, true);
        expectPbsError(() => parseFixedIndex(b, path), 'ECORRUPT', /power of two/);
      });
      it('size beyond 2^53', () => {
        const b = bytes.slice();
        new DataView(b.buffer).setBigUint64(64, 1n << 60n, true);
        expectPbsError(() => parseFixedIndex(b, path), 'EUNSUPPORTED', /2\^53.*drive-scsi0/);
      });
    });
  });

  describe(`dynamic index (${codec.name} codec)`, () => {
    const entries: DynamicEntry[] = [
      { end: 1000, digest: digest(0) },
      { end: 70_000, digest: digest(1) },
      { end: 70_000, digest: digest(2) },
      { end: 2 ** 40, digest: digest(3) },
    ];
    const bytes = encodeDynamicIndex(codec, { uuid: UUID, ctime: -5 }, entries);

    it('writes the spec layout (independent DataView reader)', () => {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(bytes.length).toBe(4096 + 40 * entries.length);
      expect(Buffer.from(bytes.subarray(0, 8)).toString('hex')).toBe('1c914ea519bab3cd');
      expect(dv.getBigInt64(24, true)).toBe(-5n);
      expect(bytes.subarray(64, 4096).every((b) => b === 0)).toBe(true);
      const csum = createHash('sha256');
      entries.forEach((e, i) => {
        expect(dv.getBigUint64(4096 + 40 * i, true)).toBe(BigInt(e.end));
        expect(bytes.subarray(4104 + 40 * i, 4136 + 40 * i)).toEqual(e.digest);
        const le = Buffer.alloc(8);
        le.writeBigUInt64LE(BigInt(e.end));
        csum.update(le).update(e.digest);
      });
      expect(Buffer.from(bytes.subarray(32, 64))).toEqual(csum.digest());
    });

    it('parses what it wrote, and header + entries assemble the same file', () => {
      const { header, entries: got } = parseDynamicIndex(bytes);
      expect(got).toEqual(entries);
      expect(header.ctime).toBe(-5);
      expect(header.indexCsum).toEqual(dynamicIndexCsum(codec, entries));
      const streamed = Buffer.concat([encodeDynamicIndexHeader(header), ...entries.map(encodeDynamicEntry)]);
      expect(Buffer.compare(streamed, bytes)).toBe(0);
      const h = new IndexCsumHasher(codec);
      entries.forEach((e) => h.update(encodeDynamicEntry(e)));
      expect(h.digest()).toEqual(header.indexCsum);
    });

    it('accepts an empty index', () => {
      expect(parseDynamicIndex(encodeDynamicIndex(codec, { uuid: UUID, ctime: 0 }, [])).entries).toEqual([]);
    });

    it('refuses to write decreasing ends or ends beyond 2^53', () => {
      expect(() => encodeDynamicIndex(codec, { uuid: UUID, ctime: 0 }, [entries[1], entries[0]])).toThrow(/before the previous/);
      expect(() => encodeDynamicEntry({ end: 2 ** 53, digest: digest(0) })).toThrow(/safe integer/);
    });

    describe('corrupt input', () => {
      const path = '/ds/ct/101/2024-01-01T00:00:00Z/root.pxar.didx';
      it('truncated header', () => {
        expectPbsError(() => parseDynamicIndex(bytes.subarray(0, 100), path), 'ECORRUPT', /too short.*root\.pxar/);
      });
      it('wrong magic', () => {
        expectPbsError(() => parseDynamicIndex(encodeFixedIndex(codec, { uuid: UUID, ctime: 0, size: 0, chunkSize: 4096 }, []), path), 'ECORRUPT', /magic.*root\.pxar/);
      });
      it('truncated entry table', () => {
        expectPbsError(() => parseDynamicIndex(bytes.subarray(0, bytes.length - 7), path), 'ECORRUPT', /multiple of 40.*root\.pxar/);
      });
      it('non-monotonic ends', () => {
        const b = bytes.slice();
        new DataView(b.buffer).setBigUint64(4096 + 40, 999n, true);
        expectPbsError(() => parseDynamicIndex(b, path), 'ECORRUPT', /entry 1 ends at 999.*root\.pxar.*offset 4136/);
      });
      it('end beyond 2^53', () => {
        const b = bytes.slice();
        new DataView(b.buffer).setBigUint64(4096 + 120, 1n << 62n, true);
        expectPbsError(() => parseDynamicIndex(b, path), 'EUNSUPPORTED', /2\^53.*root\.pxar/);
      });
    });
  });
}
