// Buffered sequential reader with position tracking over an async byte source (stream or read(n) reader).
import { PbsError } from '../errors.js';

/** A pull reader: returns up to `max` bytes, or null / an empty array at end of input. */
export interface PullReader {
  read(max: number): Promise<Uint8Array | null>;
}

export type ByteSource = AsyncIterable<Uint8Array> | PullReader;

const PULL_SIZE = 64 * 1024;

export class SeqReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkPos = 0;
  private eof = false;
  private readonly next: () => Promise<Uint8Array | null>;
  /** Archive offset of the next unread byte. */
  position = 0;

  constructor(source: ByteSource, private readonly label = 'archive', startPosition = 0) {
    this.position = startPosition;
    if (Symbol.asyncIterator in source) {
      const it = source[Symbol.asyncIterator]();
      this.next = async () => {
        for (;;) {
          const r = await it.next();
          if (r.done) return null;
          if (r.value.length > 0) return r.value; // empty stream chunks carry nothing
        }
      };
    } else {
      this.next = async () => {
        const c = await source.read(PULL_SIZE);
        return c === null || c.length === 0 ? null : c;
      };
    }
  }

  /** Makes at least one unread byte available; false at end of input. */
  private async fill(): Promise<boolean> {
    if (this.chunkPos < this.chunk.length) return true;
    if (this.eof) return false;
    const c = await this.next();
    if (c === null) {
      this.eof = true;
      return false;
    }
    this.chunk = c;
    this.chunkPos = 0;
    return true;
  }

  private truncated(what: string, at: number): PbsError {
    return new PbsError('ECORRUPT', `${this.label} truncated while reading ${what}`, { offset: at });
  }

  /**
   * Exactly n bytes if they are already buffered (a view), else null: decoding then goes on without an await,
   * which costs more than the decoding itself for small items. Callers fall back to readExact.
   */
  takeBuffered(n: number): Uint8Array | null {
    const at = this.chunkPos;
    if (this.chunk.length - at < n) return null;
    this.chunkPos = at + n;
    this.position += n;
    return this.chunk.subarray(at, at + n);
  }

  /** Exactly n bytes, or null when the input ends before the first byte. Partial data is an error. */
  async readExactOrEof(n: number, what: string): Promise<Uint8Array | null> {
    const start = this.position;
    if (!(await this.fill())) {
      if (n === 0) return new Uint8Array(0);
      return null;
    }
    const avail = this.chunk.length - this.chunkPos;
    if (avail >= n) {
      const out = this.chunk.subarray(this.chunkPos, this.chunkPos + n);
      this.chunkPos += n;
      this.position += n;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) throw this.truncated(what, start);
      const take = Math.min(n - got, this.chunk.length - this.chunkPos);
      out.set(this.chunk.subarray(this.chunkPos, this.chunkPos + take), got);
      this.chunkPos += take;
      this.position += take;
      got += take;
    }
    return out;
  }

  async readExact(n: number, what: string): Promise<Uint8Array> {
    const at = this.position;
    const out = await this.readExactOrEof(n, what);
    if (out === null) throw this.truncated(what, at);
    return out;
  }

  /** Yields the next n bytes as they arrive (views into the source's buffers). */
  async *stream(n: number, what: string): AsyncGenerator<Uint8Array> {
    const start = this.position;
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw this.truncated(what, start);
      const take = Math.min(left, this.chunk.length - this.chunkPos);
      const piece = this.chunk.subarray(this.chunkPos, this.chunkPos + take);
      this.chunkPos += take;
      this.position += take;
      left -= take;
      yield piece;
    }
  }

  /** Discards n bytes without keeping them. */
  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.stream(n, what)) {
      // discarded
    }
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}
