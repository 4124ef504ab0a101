import { PbsError } from '../errors.js';
import type { Chunker } from './chunker.js';

/**
 * Splits a byte stream into chunks, in order. A chunk that lies inside one input buffer is yielded as a view of it
 * (no copy), so the source must not reuse a buffer after yielding it. Bytes of a chunk that spans buffers are staged
 * in one reused buffer (at most one chunk long) and yielded as an exact-size copy. An empty stream yields nothing;
 * whatever follows the last boundary is the final chunk (spec §7.1).
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, chunker: Chunker): AsyncGenerator<Uint8Array> {
  chunker.reset();
  let staged: Uint8Array = new Uint8Array(0);
  let stagedLen = 0;

  for await (const buf of source) {
    let pos = 0;
    while (pos < buf.length) {
      const rest = buf.subarray(pos);
      const k = chunker.scan(rest);
      if (!Number.isInteger(k) || k < 0 || k > rest.length) {
        throw new PbsError('EINVAL', `chunker returned boundary ${k} outside 0..${rest.length}`, { offset: pos });
      }
      if (k === 0) {
        staged = stage(staged, stagedLen, rest);
        stagedLen += rest.length;
        break;
      }
      if (stagedLen === 0) {
        yield rest.subarray(0, k);
      } else {
        const chunk = new Uint8Array(stagedLen + k);
        chunk.set(staged.subarray(0, stagedLen));
        chunk.set(rest.subarray(0, k), stagedLen);
        stagedLen = 0;
        yield chunk;
      }
      pos += k;
    }
  }
  if (stagedLen > 0) yield staged.slice(0, stagedLen);
}

/** Appends `bytes` after `len` used bytes of `buf`, growing it geometrically; returns the buffer now in use. */
function stage(buf: Uint8Array, len: number, bytes: Uint8Array): Uint8Array {
  let out = buf;
  if (len + bytes.length > buf.length) {
    out = new Uint8Array(Math.max(len + bytes.length, buf.length * 2, 64 * 1024));
    out.set(buf.subarray(0, len));
  }
  out.set(bytes, len);
  return out;
}
