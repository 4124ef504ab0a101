// A dynamic index kept in memory (spec §3.2 without the file): the chunks of a stream stored ahead of the archive
// that will reference them, appended as they are stored; closing it gives them to read like an index file.
import { PbsError } from '../errors.js';
import { DynamicIndexReader, type IndexReader } from '../io/index-reader.js';
import type { Digest } from '../types.js';
import type { ChunkIndexSink } from './dynamic-archive-writer.js';

export class ChunkList implements ChunkIndexSink<IndexReader> {
  private readonly ends: number[] = [];
  private readonly digests: Digest[] = [];
  private end = 0;
  private closed = false;

  constructor(readonly finalPath: string) {}

  async append(chunkSize: number, digest: Digest): Promise<void> {
    if (this.closed) throw new PbsError('EINVAL', 'chunk list already closed', { path: this.finalPath });
    this.end += chunkSize;
    this.ends.push(this.end);
    this.digests.push(digest);
  }

  async close(): Promise<IndexReader> {
    this.closed = true;
    return new DynamicIndexReader(this.ends, this.digests);
  }

  async abort(): Promise<void> {
    this.closed = true;
  }
}
