// Random access over an indexed archive (fixed or dynamic index + ChunkReader), with read-ahead for sequential readers.
import { PbsError, withPath } from '../errors.js';
import type { ReadAt } from '../pxar/read-at.js';
import type { ChunkReader } from './chunk-reader.js';
import type { IndexReader } from './index-reader.js';

/** Caps background chunk decodes across every open archive, so prefetch never floods the worker pool. */
export class PrefetchBudget {
  private used = 0;
  constructor(readonly max: number) {}
  tryAcquire(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }
  release(): void {
    this.used--;
  }
}

export interface IndexReadAtOptions {
  /** Named in error messages (the index file or archive). */
  path?: string;
  /** Chunks decoded ahead of a sequential reader (0 disables read-ahead). */
  readAhead?: number;
  /**
   * Bytes decoded ahead of a reader at most (default: no limit). Keep it well below the chunk cache: an LRU evicts the
   * oldest prefetched chunk first, which is the very next one the reader needs, so an overfull window decodes twice.
   */
  readAheadBytes?: number;
  /** Shared limit on prefetches in flight; default: a private budget of `readAhead`. */
  budget?: PrefetchBudget;
  /**
   * Return small reads as views of the decoded chunk instead of copies (default false). For readers that copy what
   * they keep themselves, such as a restore writing file contents out.
   */
  views?: boolean;
}

/** One detected reader position; several readers of the same archive each keep their own. */
interface Cursor {
  end: number;
  hits: number;
  /** First chunk not yet requested ahead of this reader. */
  prefetchedTo: number;
  used: number;
}

const MAX_CURSORS = 8;
// Kernel read-ahead and FUSE worker threads deliver neighbouring reads slightly out of order.
const SEQ_SLACK = 4 * 1024 * 1024;
const SMALL_READ = 64 * 1024;

export class IndexReadAt implements ReadAt {
  readonly size: number;
  private readonly cursors: Cursor[] = [];
  private readonly readAhead: number;
  private readonly readAheadBytes: number;
  private readonly budget: PrefetchBudget;
  private tick = 0;

  constructor(
    private readonly index: IndexReader,
    private readonly reader: ChunkReader,
    private readonly opts: IndexReadAtOptions = {},
  ) {
    this.size = index.size;
    this.readAhead = Math.max(0, opts.readAhead ?? 4);
    this.readAheadBytes = opts.readAheadBytes ?? Infinity;
    this.budget = opts.budget ?? new PrefetchBudget(this.readAhead);
  }

  /**
   * As readAt(), for a caller that is done with the bytes before this event-loop turn ends (it awaits nothing while
   * using them, e.g. a FUSE reply): the chunk's buffer may be reused later (ChunkReader.readTransient).
   */
  readTransient(offset: number, length: number): Promise<Uint8Array> {
    return this.readAt(offset, length, true);
  }

  async readAt(offset: number, length: number, transient = false): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new PbsError('EINVAL', `read of ${length} bytes at ${offset} lies outside the archive (${this.size} bytes)`, { path: this.opts.path, offset });
    }
    if (length === 0) return new Uint8Array(0);
    const first = this.index.chunkAt(offset);
    const last = this.index.chunkAt(offset + length - 1);
    this.track(offset, offset + length, last);
    try {
      if (first === last) {
        const slot = this.index.chunk(first);
        const size = slot.end - slot.start;
        // Small reads are metadata that callers may keep (names, xattrs): a view would pin the whole chunk, so they get
        // a copy, made before this turn ends (the chunk's buffer stays reusable). A transient reader keeps nothing.
        const copy = length <= SMALL_READ && !this.opts.views && !transient;
        const from = offset - slot.start;
        if (!transient && !copy) return await this.reader.readSlice(slot.digest, size, from, from + length);
        const view = (await this.reader.readTransient(slot.digest, size)).subarray(from, from + length);
        return copy ? view.slice() : view;
      }
      // Every part is copied out in the turn its read resolves in, so the chunks' buffers stay reusable; the later
      // parts start decoding at once.
      for (let k = first + 1; k <= last; k++) {
        const slot = this.index.chunk(k);
        this.reader.readTransient(slot.digest, slot.end - slot.start).catch(() => undefined);
      }
      const out = new Uint8Array(length);
      for (let k = first; k <= last; k++) {
        const slot = this.index.chunk(k);
        const data = await this.reader.readTransient(slot.digest, slot.end - slot.start);
        const from = Math.max(offset, slot.start);
        const to = Math.min(offset + length, slot.end);
        out.set(data.subarray(from - slot.start, to - slot.start), from - offset);
      }
      return out;
    } catch (e) {
      throw this.opts.path ? withPath(e, this.opts.path) : e;
    }
  }

  /** Finds the reader this request continues; from the second sequential hit on, decodes chunks ahead of it. */
  private track(start: number, end: number, lastChunk: number): void {
    if (this.readAhead === 0) return;
    let c = this.cursors.find((k) => start >= k.end - SEQ_SLACK && start <= k.end + SEQ_SLACK);
    if (!c) {
      c = { end, hits: 0, prefetchedTo: lastChunk + 1, used: 0 };
      if (this.cursors.length >= MAX_CURSORS) this.cursors.sort((a, b) => b.used - a.used).pop();
      this.cursors.push(c);
    } else {
      c.hits++;
      c.end = Math.max(c.end, end);
    }
    c.used = ++this.tick;
    if (c.hits < 1) return;
    const from = Math.max(c.prefetchedTo, lastChunk + 1);
    const to = Math.min(this.index.chunkCount, lastChunk + 1 + this.readAhead);
    const readerAt = this.index.chunk(lastChunk).end;
    for (let i = from; i < to; i++) {
      const slot = this.index.chunk(i);
      if (slot.end - readerAt > this.readAheadBytes || !this.budget.tryAcquire()) break;
      // Errors surface when the reader gets there; a prefetch only warms the cache (and keeps no bytes).
      this.reader.readTransient(slot.digest, slot.end - slot.start).then(
        () => this.budget.release(),
        () => this.budget.release(),
      );
      c.prefetchedTo = i + 1;
    }
  }
}
