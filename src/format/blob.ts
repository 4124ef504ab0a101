// DataBlob: the container of every chunk file and every *.blob file (spec §1).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';

export type BlobKind = 'uncompressed' | 'compressed' | 'encrypted' | 'encrypted-compressed';

export const MAX_BLOB_SIZE = 128 * 1024 * 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

export const UNENCRYPTED_HEADER_SIZE = 12;
export const ENCRYPTED_HEADER_SIZE = 44;

// spec §1.1
export const BLOB_MAGICS: Readonly<Record<BlobKind, Uint8Array>> = {
  uncompressed: Uint8Array.of(66, 171, 56, 7, 190, 131, 112, 161),
  compressed: Uint8Array.of(49, 185, 88, 66, 111, 182, 163, 127),
  encrypted: Uint8Array.of(123, 103, 133, 190, 34, 45, 76, 240),
  'encrypted-compressed': Uint8Array.of(230, 89, 27, 191, 11, 191, 216, 11),
};

export interface BlobHeader {
  kind: BlobKind;
  encrypted: boolean;
  compressed: boolean;
  crc: number;
  headerSize: 12 | 44;
  iv?: Uint8Array;
  tag?: Uint8Array;
}

export interface BlobContext {
  path?: string;
  digest?: string;
}

function kindOf(blob: Uint8Array): BlobKind | undefined {
  for (const kind of Object.keys(BLOB_MAGICS) as BlobKind[]) {
    const m = BLOB_MAGICS[kind];
    let same = true;
    for (let i = 0; i < 8; i++) if (blob[i] !== m[i]) same = false;
    if (same) return kind;
  }
  return undefined;
}

/** Reads magic, CRC and (for encrypted blobs) IV and tag. spec §1.1, §1.2 */
export function parseBlobHeader(blob: Uint8Array, ctx: BlobContext = {}): BlobHeader {
  if (blob.length < UNENCRYPTED_HEADER_SIZE) {
    throw new PbsError('ECORRUPT', `blob too short for a header: ${blob.length} bytes`, ctx);
  }
  const kind = kindOf(blob);
  if (kind === undefined) {
    const hex = Buffer.from(blob.subarray(0, 8)).toString('hex');
    throw new PbsError('ECORRUPT', `wrong blob magic ${hex}`, { ...ctx, offset: 0 });
  }
  const crc = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(8, true);
  const encrypted = kind === 'encrypted' || kind === 'encrypted-compressed';
  const compressed = kind === 'compressed' || kind === 'encrypted-compressed';
  if (!encrypted) return { kind, encrypted, compressed, crc, headerSize: UNENCRYPTED_HEADER_SIZE };
  if (blob.length < ENCRYPTED_HEADER_SIZE) {
    throw new PbsError('ECORRUPT', `encrypted blob too short for its header: ${blob.length} bytes`, ctx);
  }
  return {
    kind,
    encrypted,
    compressed,
    crc,
    headerSize: ENCRYPTED_HEADER_SIZE,
    iv: blob.slice(12, 28),
    tag: blob.slice(28, 44),
  };
}

/** Checks the CRC-32 over everything after the header. spec §1.3 */
export function verifyBlobCrc(codec: Codec, blob: Uint8Array, ctx: BlobContext = {}): void {
  checkCrc(codec, blob, parseBlobHeader(blob, ctx), ctx);
}

function checkCrc(codec: Codec, blob: Uint8Array, h: BlobHeader, ctx: BlobContext): void {
  const actual = codec.crc32(blob.subarray(h.headerSize));
  if (actual !== h.crc) {
    throw new PbsError('ECORRUPT', `blob CRC mismatch: stored ${hex32(h.crc)}, computed ${hex32(actual)}`, { ...ctx, offset: 8 });
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export interface EncodeBlobOptions {
  compress: boolean;
  cryptKey?: Uint8Array;
}

/** Builds a blob: zstd level 1 kept iff not larger, then AES-256-GCM, then magic + CRC. spec §1.4 ([4.x] rule) */
export function encodeBlob(codec: Codec, data: Uint8Array, opts: EncodeBlobOptions): Uint8Array {
  if (data.length > MAX_BLOB_SIZE) {
    throw new PbsError('ETOOBIG', `blob data of ${data.length} bytes exceeds the ${MAX_BLOB_SIZE}-byte limit`);
  }
  let payload = data;
  let compressed = false;
  if (opts.compress) {
    const z = codec.zstdCompress(data, 1);
    if (z.length <= data.length) {
      payload = z;
      compressed = true;
    }
  }
  if (opts.cryptKey === undefined) {
    const out = new Uint8Array(UNENCRYPTED_HEADER_SIZE + payload.length);
    out.set(BLOB_MAGICS[compressed ? 'compressed' : 'uncompressed'], 0);
    out.set(payload, UNENCRYPTED_HEADER_SIZE);
    writeCrc(codec, out, UNENCRYPTED_HEADER_SIZE);
    return out;
  }
  if (opts.cryptKey.length !== 32) {
    throw new PbsError('EINVAL', `encryption key must be 32 bytes, got ${opts.cryptKey.length}`);
  }
  const iv = codec.randomBytes(16);
  const { ciphertext, tag } = codec.aesGcmEncrypt(opts.cryptKey, iv, payload);
  const out = new Uint8Array(ENCRYPTED_HEADER_SIZE + ciphertext.length);
  out.set(BLOB_MAGICS[compressed ? 'encrypted-compressed' : 'encrypted'], 0);
  out.set(iv, 12);
  out.set(tag, 28);
  out.set(ciphertext, ENCRYPTED_HEADER_SIZE);
  writeCrc(codec, out, ENCRYPTED_HEADER_SIZE);
  return out;
}

function writeCrc(codec: Codec, out: Uint8Array, headerSize: number): void {
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(8, codec.crc32(out.subarray(headerSize)), true);
}

export interface DecodeBlobOptions extends BlobContext {
  cryptKey?: Uint8Array;
  /** Largest plaintext accepted; defaults to MAX_BLOB_SIZE. */
  maxSize?: number;
}

/** Checks magic and CRC, decrypts, decompresses. spec §1.5 */
export function decodeBlob(codec: Codec, blob: Uint8Array, opts: DecodeBlobOptions = {}): Uint8Array {
  const ctx: BlobContext = { path: opts.path, digest: opts.digest };
  const maxSize = opts.maxSize ?? MAX_BLOB_SIZE;
  const h = parseBlobHeader(blob, ctx);
  checkCrc(codec, blob, h, ctx);
  let payload = blob.subarray(h.headerSize);
  if (h.encrypted) {
    if (opts.cryptKey === undefined) {
      throw new PbsError('EACCES', 'blob is encrypted and needs a key to decode', ctx);
    }
    if (opts.cryptKey.length !== 32) {
      throw new PbsError('EINVAL', `encryption key must be 32 bytes, got ${opts.cryptKey.length}`, ctx);
    }
    try {
      payload = codec.aesGcmDecrypt(opts.cryptKey, h.iv!, payload, h.tag!);
    } catch (e) {
      throw new PbsError('EACCES', 'blob decryption failed: wrong key or corrupt data', { ...ctx, cause: e });
    }
  }
  if (!h.compressed) {
    if (payload.length > maxSize) {
      throw new PbsError('ETOOBIG', `blob payload of ${payload.length} bytes exceeds ${maxSize}`, ctx);
    }
    // Unencrypted payloads are views into the input; copy so callers own their result.
    return h.encrypted ? payload : payload.slice();
  }
  try {
    return codec.zstdDecompress(payload, maxSize);
  } catch (e) {
    if (e instanceof PbsError && e.code === 'ETOOBIG') {
      throw new PbsError('ETOOBIG', `decompressed blob exceeds ${maxSize} bytes`, { ...ctx, cause: e });
    }
    const why = e instanceof Error ? e.message : String(e);
    throw new PbsError('ECORRUPT', `blob zstd payload does not decompress: ${why}`, { ...ctx, offset: h.headerSize, cause: e });
  }
}
