// What the fixed and dynamic index formats share: the 4096-byte header frame, u64/i64 fields, the running csum (spec §3).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';

export const INDEX_HEADER_SIZE = 4096;
export const INDEX_CSUM_OFFSET = 32;

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a u64 that must fit in a JS number (sizes and offsets beyond 2^53 are refused). */
export function readU64(bytes: Uint8Array, offset: number, what: string, path?: string): number {
  const v = view(bytes).getBigUint64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new PbsError('EUNSUPPORTED', `${what} ${v} is beyond 2^53`, { path, offset });
  }
  return Number(v);
}

export function readI64(bytes: Uint8Array, offset: number, what: string, path?: string): number {
  const v = view(bytes).getBigInt64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new PbsError('EUNSUPPORTED', `${what} ${v} is beyond 2^53`, { path, offset });
  }
  return Number(v);
}

export function checkSafeUint(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new PbsError('EINVAL', `${what} must be a non-negative safe integer, got ${n}`);
}

export function checkBytes(b: Uint8Array, len: number, what: string): void {
  if (b.length !== len) throw new PbsError('EINVAL', `${what} must be ${len} bytes, got ${b.length}`);
}

/** Magic, uuid, ctime and csum: the first 64 bytes common to both index kinds. spec §3.1, §3.2 */
export function encodeCommonHeader(magic: Uint8Array, uuid: Uint8Array, ctime: number, indexCsum: Uint8Array): Uint8Array {
  checkBytes(uuid, 16, 'index uuid');
  checkBytes(indexCsum, 32, 'index csum');
  if (!Number.isSafeInteger(ctime)) throw new PbsError('EINVAL', `index ctime must be a safe integer, got ${ctime}`);
  const out = new Uint8Array(INDEX_HEADER_SIZE);
  out.set(magic, 0);
  out.set(uuid, 8);
  view(out).setBigInt64(24, BigInt(ctime), true);
  out.set(indexCsum, INDEX_CSUM_OFFSET);
  return out;
}

/** Checks length and magic; returns uuid, ctime, csum. */
export function parseCommonHeader(
  bytes: Uint8Array,
  magic: Uint8Array,
  kind: string,
  path?: string,
): { uuid: Uint8Array; ctime: number; indexCsum: Uint8Array } {
  if (bytes.length < INDEX_HEADER_SIZE) {
    throw new PbsError('ECORRUPT', `${kind} index too short for its header: ${bytes.length} bytes`, { path });
  }
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== magic[i]) {
      const hex = Buffer.from(bytes.subarray(0, 8)).toString('hex');
      throw new PbsError('ECORRUPT', `wrong ${kind} index magic ${hex}`, { path, offset: 0 });
    }
  }
  return {
    uuid: bytes.slice(8, 24),
    ctime: readI64(bytes, 24, 'index ctime', path),
    indexCsum: bytes.slice(INDEX_CSUM_OFFSET, INDEX_CSUM_OFFSET + 32),
  };
}

/**
 * Incremental index_csum for writers that append entries and patch the header at offset 32 on close
 * (spec §3.3). Feed exactly the entry bytes as written after the header.
 */
export class IndexCsumHasher {
  private readonly h: { update(data: Uint8Array): void; digest(): Uint8Array };

  constructor(codec: Codec) {
    this.h = codec.sha256Stream();
  }

  update(bytes: Uint8Array): void {
    this.h.update(bytes);
  }

  digest(): Uint8Array {
    return this.h.digest();
  }
}
