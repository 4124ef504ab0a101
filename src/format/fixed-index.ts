// Fixed index `.fidx`: header plus one digest per fixed-size chunk (spec §3.1).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';
import type { Digest } from '../types.js';
import {
  INDEX_HEADER_SIZE,
  checkBytes,
  checkSafeUint,
  encodeCommonHeader,
  parseCommonHeader,
  readU64,
  view,
} from './index-common.js';

export { INDEX_CSUM_OFFSET, INDEX_HEADER_SIZE, IndexCsumHasher } from './index-common.js';

// spec §3.1: SHA-256("Proxmox Backup fixed sized chunk index v1.0")[0..8]
export const FIXED_INDEX_MAGIC: Uint8Array = Uint8Array.of(0x2f, 0x7f, 0x41, 0xed, 0x91, 0xfd, 0x0f, 0xcd);
export const FIXED_CHUNK_SIZE = 4 * 1024 * 1024;
export const FIXED_DIGEST_SIZE = 32;

export interface FixedIndexHeader {
  uuid: Uint8Array;
  ctime: number;
  indexCsum: Uint8Array;
  size: number;
  chunkSize: number;
}

function isPowerOfTwo(n: number): boolean {
  // Works beyond 2^31 where bit operators would truncate.
  return n >= 1 && Number.isSafeInteger(n) && 2 ** Math.round(Math.log2(n)) === n;
}

/** ceil(size / chunkSize): the number of digests the index must hold. spec §3.1 */
export function fixedChunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

function checkGeometry(size: number, chunkSize: number): void {
  checkSafeUint(size, 'fixed index size');
  if (!isPowerOfTwo(chunkSize)) throw new PbsError('EINVAL', `fixed index chunk size ${chunkSize} is not a power of two`);
}

/** The 4096-byte header. spec §3.1 */
export function encodeFixedIndexHeader(h: FixedIndexHeader): Uint8Array {
  checkGeometry(h.size, h.chunkSize);
  const out = encodeCommonHeader(FIXED_INDEX_MAGIC, h.uuid, h.ctime, h.indexCsum);
  const dv = view(out);
  dv.setBigUint64(64, BigInt(h.size), true);
  dv.setBigUint64(72, BigInt(h.chunkSize), true);
  return out;
}

/** Checks magic, power-of-two chunk size and length == 4096 + 32·ceil(size/cs). spec §3.1 */
export function parseFixedIndex(bytes: Uint8Array, path?: string): { header: FixedIndexHeader; digests: Digest[] } {
  const common = parseCommonHeader(bytes, FIXED_INDEX_MAGIC, 'fixed', path);
  const size = readU64(bytes, 64, 'fixed index size', path);
  const chunkSize = readU64(bytes, 72, 'fixed index chunk size', path);
  if (!isPowerOfTwo(chunkSize)) {
    throw new PbsError('ECORRUPT', `fixed index chunk size ${chunkSize} is not a power of two`, { path, offset: 72 });
  }
  const count = fixedChunkCount(size, chunkSize);
  const expected = INDEX_HEADER_SIZE + FIXED_DIGEST_SIZE * count;
  if (bytes.length !== expected) {
    throw new PbsError(
      'ECORRUPT',
      `fixed index length ${bytes.length} does not match size ${size} / chunk size ${chunkSize} (expected ${expected})`,
      { path },
    );
  }
  // One copy of the digest table; each digest is a view into it.
  const table = bytes.slice(INDEX_HEADER_SIZE);
  const digests: Digest[] = new Array(count);
  for (let i = 0; i < count; i++) digests[i] = table.subarray(i * 32, i * 32 + 32) as Digest;
  return { header: { ...common, size, chunkSize }, digests };
}

/** SHA-256 over the concatenated digests. spec §3.1 */
export function fixedIndexCsum(codec: Codec, digests: readonly Uint8Array[]): Uint8Array {
  digests.forEach((d, i) => checkBytes(d, 32, `digest ${i}`));
  return codec.sha256Parts(digests);
}

/** A complete `.fidx` file; the csum is computed from the digests. spec §3.1 */
export function encodeFixedIndex(
  codec: Codec,
  h: Omit<FixedIndexHeader, 'indexCsum'>,
  digests: readonly Uint8Array[],
): Uint8Array {
  checkGeometry(h.size, h.chunkSize);
  const count = fixedChunkCount(h.size, h.chunkSize);
  if (digests.length !== count) {
    throw new PbsError('EINVAL', `fixed index of size ${h.size} with chunk size ${h.chunkSize} needs ${count} digests, got ${digests.length}`);
  }
  const header = encodeFixedIndexHeader({ ...h, indexCsum: fixedIndexCsum(codec, digests) });
  const out = new Uint8Array(INDEX_HEADER_SIZE + FIXED_DIGEST_SIZE * count);
  out.set(header, 0);
  digests.forEach((d, i) => out.set(d, INDEX_HEADER_SIZE + 32 * i));
  return out;
}
