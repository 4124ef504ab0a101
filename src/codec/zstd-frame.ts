// The zstd frame container (RFC 8878 §3.1): walks frame and block headers without decoding, and writes
// raw-block frames. Both backends check a payload here first, so they accept and reject the same inputs.
import { PbsError } from '../errors.js';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Largest block content (RFC 8878 §3.1.1.2.4). */
export const ZSTD_MAX_BLOCK = 128 * 1024;
/** libzstd refuses larger windows unless told otherwise (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27); so do we. */
export const ZSTD_WINDOW_LIMIT = 2 ** 27;

export interface ZstdFrame {
  /** Position of the frame's magic in the payload, and its length including an optional checksum. */
  offset: number;
  length: number;
  skippable: boolean;
  /** Frame_Content_Size when the header carries it. */
  contentSize: number | null;
  windowSize: number;
  /** Most bytes the frame can decode to, from its block headers. */
  maxOutput: number;
}

function corrupt(msg: string, offset: number): PbsError {
  return new PbsError('ECORRUPT', `zstd: ${msg}`, { offset });
}

function u32(d: Uint8Array, p: number): number {
  return (d[p] | (d[p + 1] << 8) | (d[p + 2] << 16) | (d[p + 3] << 24)) >>> 0;
}

function uintLE(d: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + d[p + i];
  return v;
}

/**
 * Lists the frames of a zstd payload (one or more frames, skippable frames allowed) and checks that
 * every header and block fits. Offsets in errors are relative to the payload.
 */
export function scanZstdFrames(data: Uint8Array): ZstdFrame[] {
  if (data.length === 0) throw corrupt('empty payload, expected a frame', 0);
  const frames: ZstdFrame[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data.length - pos < 8) throw corrupt('truncated frame header', pos);
    const magic = u32(data, pos);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      const end = pos + 8 + u32(data, pos + 4);
      if (end > data.length) throw corrupt('truncated skippable frame', pos);
      frames.push({ offset: pos, length: end - pos, skippable: true, contentSize: 0, windowSize: 0, maxOutput: 0 });
      pos = end;
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt(`bad frame magic 0x${magic.toString(16).padStart(8, '0')}`, pos);
    frames.push(scanFrame(data, pos));
    pos += frames[frames.length - 1].length;
  }
  return frames;
}

function scanFrame(data: Uint8Array, start: number): ZstdFrame {
  const fhd = data[start + 4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const hasChecksum = (fhd >> 2) & 1;
  const dictIdBytes = [0, 1, 2, 4][fhd & 3];
  if (fhd & 0x08) throw corrupt('reserved bit set in frame header', start + 4);
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  let p = start + 5;
  const headerEnd = p + (singleSegment ? 0 : 1) + dictIdBytes + fcsBytes;
  if (headerEnd > data.length) throw corrupt('truncated frame header', start);
  let windowSize = 0;
  if (!singleSegment) {
    const wd = data[p++];
    const base = 2 ** (10 + (wd >> 3));
    windowSize = base + (base / 8) * (wd & 7);
  }
  if (dictIdBytes > 0) {
    // A dictionary id of 0 means "none"; PBS never uses dictionaries.
    if (uintLE(data, p, dictIdBytes) !== 0) throw new PbsError('EUNSUPPORTED', 'zstd: frame needs a dictionary', { offset: start });
    p += dictIdBytes;
  }
  let contentSize: number | null = null;
  if (fcsBytes > 0) contentSize = uintLE(data, p, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
  if (singleSegment) windowSize = contentSize ?? 0;
  if (windowSize > ZSTD_WINDOW_LIMIT) {
    throw new PbsError('ETOOBIG', `zstd: window of ${windowSize} bytes exceeds the ${ZSTD_WINDOW_LIMIT}-byte limit`, { offset: start });
  }
  const blockMax = Math.min(windowSize, ZSTD_MAX_BLOCK);
  p = headerEnd;
  let maxOutput = 0;
  let exact = true; // raw and RLE blocks tell their decoded size; compressed ones only a bound
  for (let last = 0; !last; ) {
    if (data.length - p < 3) throw corrupt('truncated block header', p);
    const bh = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16);
    last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw corrupt('reserved block type', p);
    if (size > blockMax) throw corrupt(`block of ${size} bytes exceeds the ${blockMax}-byte block maximum`, p);
    const stored = type === 1 ? 1 : size;
    if (data.length - p - 3 < stored) throw corrupt('truncated block', p);
    maxOutput += type === 2 ? blockMax : size;
    if (type === 2) exact = false;
    p += 3 + stored;
  }
  if (hasChecksum) {
    if (data.length - p < 4) throw corrupt('truncated content checksum', p);
    p += 4;
  }
  if (contentSize !== null && (exact ? maxOutput !== contentSize : maxOutput < contentSize)) {
    throw corrupt(`blocks do not add up to the declared content size ${contentSize}`, start);
  }
  return { offset: start, length: p - start, skippable: false, contentSize, windowSize, maxOutput };
}

/**
 * A valid zstd frame holding `data` in raw (stored) blocks, with the content size in the header.
 * It is larger than `data`, so a "keep compression only if not larger" rule keeps the plain bytes.
 */
export function encodeRawZstdFrame(data: Uint8Array): Uint8Array {
  const n = data.length;
  // Single_Segment with the smallest Frame_Content_Size field that holds n (RFC 8878 §3.1.1.1.4).
  const fcsFlag = n < 256 ? 0 : n < 65536 + 256 ? 1 : n < 2 ** 32 ? 2 : 3;
  const fcsBytes = fcsFlag === 0 ? 1 : 1 << fcsFlag;
  const blocks = Math.max(1, Math.ceil(n / ZSTD_MAX_BLOCK));
  const out = new Uint8Array(5 + fcsBytes + 3 * blocks + n);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, ZSTD_MAGIC, true);
  out[4] = (fcsFlag << 6) | 0x20;
  let fcs = fcsFlag === 1 ? n - 256 : n;
  for (let i = 0; i < fcsBytes; i++, fcs = Math.floor(fcs / 256)) out[5 + i] = fcs & 0xff;
  let p = 5 + fcsBytes;
  for (let b = 0; b < blocks; b++) {
    const from = b * ZSTD_MAX_BLOCK;
    const size = Math.min(ZSTD_MAX_BLOCK, n - from);
    const bh = (size << 3) | (b === blocks - 1 ? 1 : 0); // Block_Type 0 = Raw
    out[p] = bh & 0xff;
    out[p + 1] = (bh >> 8) & 0xff;
    out[p + 2] = (bh >> 16) & 0xff;
    out.set(data.subarray(from, from + size), p + 3);
    p += 3 + size;
  }
  return out;
}
