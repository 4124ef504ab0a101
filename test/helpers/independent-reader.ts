// A reader of the spec'd fields written only from pbs-formats.md, sharing no code with src/, so that a
// symmetric bug in our encoder and decoder cannot hide.
import { createDecipheriv, createHash, pbkdf2Sync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import zstd from 'zstd-napi';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const MAGIC = {
  plain: '42ab3807be8370a1',
  zstd: '31b958426fb6a37f',
  enc: '7b6785be222d4cf0',
  encZstd: 'e6591bbf0bbfd80b',
  fidx: '2f7f41ed91fd0fcd',
  didx: '1c914ea519bab3cd',
};

function crc32(b: Uint8Array): number {
  return (zlib as unknown as { crc32(d: Uint8Array): number }).crc32(b);
}

/** spec §1: returns the plain payload, checking magic and CRC. */
export function readBlob(bytes: Uint8Array, key?: Uint8Array): { kind: string; data: Uint8Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = hex(buf.subarray(0, 8));
  const crc = buf.readUInt32LE(8);
  const encrypted = magic === MAGIC.enc || magic === MAGIC.encZstd;
  const compressed = magic === MAGIC.zstd || magic === MAGIC.encZstd;
  if (!encrypted && magic !== MAGIC.plain && magic !== MAGIC.zstd) throw new Error(`bad magic ${magic}`);
  const header = encrypted ? 44 : 12;
  if (crc32(buf.subarray(header)) !== crc) throw new Error('crc mismatch');
  let payload: Uint8Array = buf.subarray(header);
  if (encrypted) {
    if (!key) throw new Error('encrypted');
    const d = createDecipheriv('aes-256-gcm', key, buf.subarray(12, 28));
    d.setAuthTag(buf.subarray(28, 44));
    payload = Buffer.concat([d.update(payload), d.final()]);
  }
  const data = compressed ? zstd.decompress(Buffer.from(payload)) : payload;
  return { kind: magic, data };
}

/** spec §3.1 */
export function readFidx(bytes: Uint8Array): { size: number; chunkSize: number; csum: string; digests: string[] } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (hex(buf.subarray(0, 8)) !== MAGIC.fidx) throw new Error('not a fidx');
  const size = Number(buf.readBigUInt64LE(64));
  const chunkSize = Number(buf.readBigUInt64LE(72));
  const n = Math.ceil(size / chunkSize);
  if (buf.byteLength !== 4096 + 32 * n) throw new Error('fidx length');
  if (buf.subarray(80, 4096).some((b) => b !== 0)) throw new Error('reserved bytes not zero');
  const digests = Array.from({ length: n }, (_, i) => hex(buf.subarray(4096 + 32 * i, 4128 + 32 * i)));
  return { size, chunkSize, csum: hex(buf.subarray(32, 64)), digests };
}

/** spec §3.2 */
export function readDidx(bytes: Uint8Array): { csum: string; entries: { end: number; digest: string }[] } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (hex(buf.subarray(0, 8)) !== MAGIC.didx) throw new Error('not a didx');
  const entries = [];
  for (let off = 4096; off < buf.byteLength; off += 40) entries.push({ end: Number(buf.readBigUInt64LE(off)), digest: hex(buf.subarray(off + 8, off + 40)) });
  return { csum: hex(buf.subarray(32, 64)), entries };
}

export function sha256hex(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** spec §2: id_key = PBKDF2(K, "_id_key", 10, 32) */
export function idKey(key: Uint8Array): Buffer {
  return pbkdf2Sync(key, '_id_key', 10, 32, 'sha256');
}

export function chunkFile(store: string, digest: string): Buffer {
  return readFileSync(join(store, '.chunks', digest.slice(0, 4), digest));
}
