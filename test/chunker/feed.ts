// Test helpers: feed a buffer to chunkStream in pieces and describe the chunks the way the vector files do.
import { createHash } from 'node:crypto';
import { chunkStream } from '../../src/chunker/chunk-stream.js';
import type { Chunker } from '../../src/chunker/chunker.js';

export async function* pieces(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length];
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

/** `[end_offset, sha256_hex]` per chunk, as in the chunker-*.json vectors. */
export async function chunkList(data: Uint8Array, chunker: Chunker, sizes: readonly number[]): Promise<[number, string][]> {
  const out: [number, string][] = [];
  let end = 0;
  for await (const chunk of chunkStream(pieces(data, sizes), chunker)) {
    end += chunk.length;
    out.push([end, createHash('sha256').update(chunk).digest('hex')]);
  }
  return out;
}
