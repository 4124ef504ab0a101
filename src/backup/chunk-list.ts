// A dynamic index kept in memory (spec §3.2 without the file): the chunks of a stream stored ahead of the archive
// that will reference them, appended as they are stored and then read like an index file (IndexReader).
import { PbsError } from '../errors.js';
import { type ChunkSlot, DynamicIndexReader, type IndexReader } from '../io/index-reader.js';
import type { Digest } from '../types.js';
import type { ChunkIndexSink } from './dynamic-archive-writer.js';

export class ChunkList implements ChunkIndexSink<IndexReader>, IndexReader {
  readonly kind = 'dynamic';
  private readonly ends: number[] = [];
  readonly digests: Digest[] = [];
  private reader = new DynamicIndexReader(this.ends, this.digests);
  private closed = false;

  constructor(readonly finalPath: string) {}

  get size(): number {
    return this.reader.size;
  }

  get chunkCount(): number {
    return this.ends.length;
  }

  chunk(i: number): ChunkSlot {
    return this.reader.chunk(i);
  }

  chunkAt(offset: number): number {
    return this.reader.chunkAt(offset);
  }

  async append(chunkSize: number, digest: Digest): Promise<void> {
    if (this.closed) throw new PbsError('EINVAL', 'chunk list already closed', { path: this.finalPath });
    this.ends.push(this.size + chunkSize);
    this.digests.push(digest);
    // The reader keeps its size from construction: a new one sees the appended chunk (cheap: it shares the arrays).
    this.reader = new DynamicIndexReader(this.ends, this.digests);
  }

  async close(): Promise<IndexReader> {
    this.closed = true;
    return this;
  }

  async abort(): Promise<void> {
    this.closed = true;
  }
}
