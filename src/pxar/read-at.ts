// Random-access byte source used by the accessor and for split-archive payloads.
import { PbsError } from '../errors.js';
import type { PullReader } from './seq-reader.js';

export interface ReadAt {
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset` (callers stay within `size`). */
  readAt(offset: number, length: number): Promise<Uint8Array>;
  /**
   * As readAt(), for a caller done with the bytes before this event-loop turn ends (it awaits nothing while using
   * them, e.g. a FUSE reply), so the source may reuse their buffer afterwards. Sources without buffers to reuse omit it.
   */
  readTransient?(offset: number, length: number): Promise<Uint8Array>;
}

/** A ReadAt over bytes already in memory. */
export function bytesReadAt(bytes: Uint8Array): ReadAt {
  return {
    size: bytes.length,
    readAt: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** Reads [offset, offset+length), checking it lies inside `limit` (default: the source size); `transient` as in ReadAt. */
export async function readRange(src: ReadAt, offset: number, length: number, what: string, limit = src.size, transient = false): Promise<Uint8Array> {
  if (offset < 0 || length < 0 || offset + length > limit) {
    throw new PbsError('ECORRUPT', `${what} at ${offset}+${length} lies beyond the end (${limit})`, { offset });
  }
  const out = await (transient && src.readTransient ? src.readTransient(offset, length) : src.readAt(offset, length));
  if (out.length !== length) throw new PbsError('EIO', `short read of ${what}: ${out.length} of ${length} bytes`, { offset });
  return out;
}

/**
 * Sequential view of [start, end) of a ReadAt. Reads start small and grow, so decoding one entry of a big
 * directory does not pull in its neighbours.
 */
export function rangePullReader(src: ReadAt, start: number, end: number, firstRead = 512, maxRead = 64 * 1024): PullReader {
  let pos = start;
  let want = firstRead;
  return {
    async read() {
      if (pos >= end) return null;
      const n = Math.min(want, end - pos);
      const out = await readRange(src, pos, n, 'archive range');
      pos += n;
      want = Math.min(want * 4, maxRead);
      return out;
    },
  };
}
