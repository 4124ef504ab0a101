// Dynamic index `.didx`: header plus (end offset, digest) per variable-size chunk (spec §3.2).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';
import type { Digest } from '../types.js';
import { INDEX_HEADER_SIZE, checkBytes, checkSafeUint, encodeCommonHeader, parseCommonHeader, readU64, view } from './index-common.js';

export { INDEX_CSUM_OFFSET, INDEX_HEADER_SIZE, IndexCsumHasher } from './index-common.js';

// spec §3.2: SHA-256("Proxmox Backup dynamic sized chunk index v1.0")[0..8]
export const DYNAMIC_INDEX_MAGIC: Uint8Array = Uint8Array.of(0x1c, 0x91, 0x4e, 0xa5, 0x19, 0xba, 0xb3, 0xcd);
export const DYNAMIC_ENTRY_SIZE = 40;

export interface DynamicIndexHeader {
  uuid: Uint8Array;
  ctime: number;
  indexCsum: Uint8Array;
}

export interface DynamicEntry {
  /** Exclusive end offset of the chunk in the archive = cumulative size. */
  end: number;
  digest: Digest;
}

/** The 4096-byte header. spec §3.2 */
export function encodeDynamicIndexHeader(h: DynamicIndexHeader): Uint8Array {
  return encodeCommonHeader(DYNAMIC_INDEX_MAGIC, h.uuid, h.ctime, h.indexCsum);
}

/** `end u64 LE || digest[32]`. spec §3.2 */
export function encodeDynamicEntry(e: DynamicEntry): Uint8Array {
  checkSafeUint(e.end, 'dynamic index entry end');
  checkBytes(e.digest, 32, 'dynamic index entry digest');
  const out = new Uint8Array(DYNAMIC_ENTRY_SIZE);
  view(out).setBigUint64(0, BigInt(e.end), true);
  out.set(e.digest, 8);
  return out;
}

/** Checks magic, (len − 4096) % 40 == 0 and non-decreasing ends. spec §3.2 */
export function parseDynamicIndex(bytes: Uint8Array, path?: string): { header: DynamicIndexHeader; entries: DynamicEntry[] } {
  const header = parseCommonHeader(bytes, DYNAMIC_INDEX_MAGIC, 'dynamic', path);
  const body = bytes.length - INDEX_HEADER_SIZE;
  if (body % DYNAMIC_ENTRY_SIZE !== 0) {
    throw new PbsError('ECORRUPT', `dynamic index length ${bytes.length} is not 4096 + a multiple of 40`, { path });
  }
  const count = body / DYNAMIC_ENTRY_SIZE;
  // One copy of the entry table; each digest is a view into it.
  const table = bytes.slice(INDEX_HEADER_SIZE);
  const entries: DynamicEntry[] = new Array(count);
  let prev = 0;
  for (let i = 0; i < count; i++) {
    const at = i * DYNAMIC_ENTRY_SIZE;
    const end = readU64(table, at, `dynamic index entry ${i} end`, path);
    if (end < prev) {
      throw new PbsError('ECORRUPT', `dynamic index entry ${i} ends at ${end}, before the previous end ${prev}`, {
        path,
        offset: INDEX_HEADER_SIZE + at,
      });
    }
    prev = end;
    entries[i] = { end, digest: table.subarray(at + 8, at + DYNAMIC_ENTRY_SIZE) as Digest };
  }
  return { header, entries };
}

function encodeEntries(entries: readonly DynamicEntry[]): Uint8Array {
  const out = new Uint8Array(DYNAMIC_ENTRY_SIZE * entries.length);
  let prev = 0;
  entries.forEach((e, i) => {
    if (e.end < prev) throw new PbsError('EINVAL', `dynamic index entry ${i} ends at ${e.end}, before the previous end ${prev}`);
    prev = e.end;
    out.set(encodeDynamicEntry(e), i * DYNAMIC_ENTRY_SIZE);
  });
  return out;
}

/** SHA-256 over all `end_le8 || digest` pairs. spec §3.2 */
export function dynamicIndexCsum(codec: Codec, entries: readonly DynamicEntry[]): Uint8Array {
  return codec.sha256(encodeEntries(entries));
}

/** A complete `.didx` file; the csum is computed from the entries. spec §3.2 */
export function encodeDynamicIndex(
  codec: Codec,
  h: Omit<DynamicIndexHeader, 'indexCsum'>,
  entries: readonly DynamicEntry[],
): Uint8Array {
  const body = encodeEntries(entries);
  const header = encodeDynamicIndexHeader({ ...h, indexCsum: codec.sha256(body) });
  const out = new Uint8Array(INDEX_HEADER_SIZE + body.length);
  out.set(header, 0);
  out.set(body, INDEX_HEADER_SIZE);
  return out;
}
