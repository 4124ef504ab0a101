// Index files as one random-access shape: chunk i covers [start, end) of the archive and has a digest.
import { readFile } from 'node:fs/promises';
import { PbsError, withPath } from '../errors.js';
import { parseDynamicIndex } from '../format/dynamic-index.js';
import { parseFixedIndex } from '../format/fixed-index.js';
import type { Digest } from '../types.js';

export interface ChunkSlot {
  index: number;
  start: number;
  end: number;
  digest: Digest;
}

export interface IndexReader {
  readonly kind: 'fixed' | 'dynamic';
  readonly size: number;
  readonly chunkCount: number;
  readonly digests: readonly Digest[];
  chunk(i: number): ChunkSlot;
  /** Index of the chunk holding byte `offset` (0 <= offset < size). */
  chunkAt(offset: number): number;
}

export class FixedIndexReader implements IndexReader {
  readonly kind = 'fixed';
  readonly chunkCount: number;
  constructor(readonly size: number, readonly chunkSize: number, readonly digests: readonly Digest[]) {
    this.chunkCount = digests.length;
  }
  chunk(i: number): ChunkSlot {
    const start = i * this.chunkSize;
    return { index: i, start, end: Math.min(start + this.chunkSize, this.size), digest: this.digests[i]! };
  }
  chunkAt(offset: number): number {
    return Math.floor(offset / this.chunkSize);
  }
}

export class DynamicIndexReader implements IndexReader {
  readonly kind = 'dynamic';
  readonly size: number;
  readonly chunkCount: number;
  readonly digests: readonly Digest[];
  constructor(private readonly ends: readonly number[], digests: readonly Digest[]) {
    this.size = ends.length ? ends[ends.length - 1]! : 0;
    this.chunkCount = ends.length;
    this.digests = digests;
  }
  chunk(i: number): ChunkSlot {
    return { index: i, start: i === 0 ? 0 : this.ends[i - 1]!, end: this.ends[i]!, digest: this.digests[i]! };
  }
  chunkAt(offset: number): number {
    // First chunk whose end lies beyond offset (spec §3.2: binary search over `end`).
    let lo = 0;
    let hi = this.ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

export function indexFromBytes(bytes: Uint8Array, path: string): IndexReader {
  if (path.endsWith('.fidx')) {
    const { header, digests } = parseFixedIndex(bytes, path);
    return new FixedIndexReader(header.size, header.chunkSize, digests);
  }
  if (path.endsWith('.didx')) {
    const { entries } = parseDynamicIndex(bytes, path);
    return new DynamicIndexReader(
      entries.map((e) => e.end),
      entries.map((e) => e.digest),
    );
  }
  throw new PbsError('EINVAL', 'not an index file (expected .fidx or .didx)', { path });
}

export async function openIndex(path: string): Promise<IndexReader> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw withPath(e, path);
  }
  return indexFromBytes(bytes, path);
}
