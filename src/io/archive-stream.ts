// Streams a byte range of an indexed archive in order, keeping a bounded number of chunk decodes in flight.
import type { ChunkReader } from './chunk-reader.js';
import type { IndexReader } from './index-reader.js';

export interface RangeOptions {
  start?: number;
  end?: number;
  /** Chunks decoded ahead of the consumer (bounded memory: readAhead x chunk size). */
  readAhead?: number;
}

export async function* readArchiveRange(
  reader: ChunkReader,
  index: IndexReader,
  opts: RangeOptions = {},
): AsyncGenerator<{ offset: number; data: Uint8Array; digestIndex: number }> {
  const start = opts.start ?? 0;
  const end = Math.min(opts.end ?? index.size, index.size);
  if (start >= end) return;
  const first = index.chunkAt(start);
  const last = index.chunkAt(end - 1);
  const ahead = Math.max(1, opts.readAhead ?? 4);
  const pending: Promise<Uint8Array>[] = [];
  let next = first;
  const fill = (): void => {
    while (next <= last && pending.length < ahead) {
      const slot = index.chunk(next++);
      const p = reader.read(slot.digest, slot.end - slot.start);
      p.catch(() => undefined); // consumed below; avoid unhandled rejection while queued
      pending.push(p);
    }
  };
  for (let i = first; i <= last; i++) {
    fill();
    const data = await pending.shift()!;
    const slot = index.chunk(i);
    const from = Math.max(start, slot.start) - slot.start;
    const to = Math.min(end, slot.end) - slot.start;
    yield { offset: slot.start + from, data: from === 0 && to === data.byteLength ? data : data.subarray(from, to), digestIndex: i };
  }
}
