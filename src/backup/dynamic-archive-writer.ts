// Push-style dynamic archive: bytes written here are cut by a chunker, stored through the session's ChunkWriter
// and indexed in order. Known chunks can be injected whole (metadata change detection, spec §8.7).
import type { Chunker } from '../chunker/chunker.js';
import { PbsError } from '../errors.js';
import type { ByteSink } from '../pxar/encoder.js';
import { ChunkBuffers } from '../io/chunk-buffers.js';
import type { Digest } from '../types.js';
import type { ChunkWriter } from './chunk-writer.js';
import type { ClosedIndex } from './index-writer.js';

export interface InjectedChunk {
  digest: Digest;
  size: number;
}

/** Where the chunks go, in stream order: a dynamic index file (DynamicIndexWriter) or a list kept in memory. */
export interface ChunkIndexSink<Closed> {
  readonly finalPath: string;
  append(chunkSize: number, digest: Digest): Promise<void>;
  close(): Promise<Closed>;
  abort(): Promise<void>;
}

const STAGE_SIZE = 256 * 1024;
/** First size of a chunk's buffer: most chunks (4 MiB average) fit without growing. */
const CHUNK_BUF_START = 4 * 1024 * 1024;

export class DynamicArchiveWriter<Closed = ClosedIndex> implements ByteSink {
  /** Bytes of the chunk being collected (the first partsBytes of chunkBuf); cut at the chunker's boundary. */
  private chunkBuf = new Uint8Array(0);
  /** Chunk buffers come back once stored or found known, and are used again (fresh ones cost page faults). */
  private readonly buffers = new ChunkBuffers();
  private partsBytes = 0;
  private written = 0;
  private readonly stage = new Uint8Array(STAGE_SIZE);
  private staged = 0;
  /** Chunks on their way to the store, oldest first; the index gets them in this order. */
  private readonly window: Promise<InjectedChunk>[] = [];
  private failed: unknown;
  private closed = false;

  constructor(
    private readonly chunks: ChunkWriter,
    private readonly index: ChunkIndexSink<Closed>,
    private readonly chunker: Chunker,
    private readonly maxInFlight: number,
    private readonly onClose: (closed: Closed) => void,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    chunker.reset();
  }

  /** Archive bytes written or injected so far. */
  get position(): number {
    return this.written;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    // The pxar encoder writes many tiny items; scanning them one by one costs more than the scan itself,
    // so small writes are gathered first.
    if (bytes.byteLength < STAGE_SIZE / 4) {
      if (this.staged + bytes.byteLength > STAGE_SIZE) await this.flushStage();
      this.stage.set(bytes, this.staged);
      this.staged += bytes.byteLength;
      this.written += bytes.byteLength;
      return;
    }
    await this.flushStage();
    await this.process(bytes);
    this.written += bytes.byteLength;
  }

  private async flushStage(): Promise<void> {
    if (this.staged === 0) return;
    const n = this.staged;
    this.staged = 0;
    await this.process(this.stage.subarray(0, n));
  }

  private async process(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.byteLength > 0) {
      const cut = this.chunker.scan(rest);
      if (cut === 0) {
        this.keep(rest);
        break;
      }
      this.keep(rest.subarray(0, cut));
      rest = rest.subarray(cut);
      await this.emit();
    }
  }

  /** Ends the current chunk here, even if the chunker would not (a file start, before injected chunks). */
  async cut(): Promise<void> {
    this.assertOpen();
    await this.flushStage();
    if (this.partsBytes > 0) await this.emit();
    this.chunker.reset();
  }

  /**
   * Appends chunks known to be in the store (e.g. from the previous snapshot) without their bytes. `counted`:
   * this session stored them already (a stream written ahead), so the upload stats have them.
   */
  async inject(list: readonly InjectedChunk[], counted = false): Promise<void> {
    await this.cut();
    for (const c of list) {
      if (!counted) this.chunks.noteReused(c.size);
      await this.enqueue(Promise.resolve(c));
      this.written += c.size;
    }
  }

  async close(): Promise<Closed> {
    this.assertOpen();
    try {
      await this.flushStage();
      if (this.partsBytes > 0) await this.emit();
      while (this.window.length) await this.appendNext();
      this.closed = true;
      const closed = await this.index.close();
      this.onClose(closed);
      return closed;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.window);
    await this.index.abort();
  }

  private keep(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    // Callers may reuse their buffers after write() returns, so the pending bytes are copied, once, into the
    // buffer that becomes the chunk (it grows by doubling; its capacity travels with it to the worker).
    const need = this.partsBytes + piece.byteLength;
    if (need > this.chunkBuf.byteLength) {
      const grown = this.buffers.take(Math.max(need, CHUNK_BUF_START, this.chunkBuf.byteLength * 2));
      grown.set(this.chunkBuf.subarray(0, this.partsBytes));
      if (this.chunkBuf.byteLength) this.buffers.giveBack(this.chunkBuf);
      this.chunkBuf = grown;
    }
    this.chunkBuf.set(piece, this.partsBytes);
    this.partsBytes = need;
  }

  private async emit(): Promise<void> {
    const size = this.partsBytes;
    const data = this.chunkBuf.subarray(0, size);
    this.chunkBuf = new Uint8Array(0);
    this.partsBytes = 0;
    // The buffer comes back from the codec worker (encoded, or hashed and known): only this writer had it.
    const release = (b: Uint8Array): void => this.buffers.giveBackMoved(b);
    await this.enqueue(this.chunks.add(data, true, release).then((digest) => ({ digest, size })));
  }

  private async enqueue(p: Promise<InjectedChunk>): Promise<void> {
    p.catch((e) => (this.failed ??= e));
    this.window.push(p);
    if (this.window.length >= this.maxInFlight) await this.appendNext();
  }

  private async appendNext(): Promise<void> {
    const { digest, size } = await this.window.shift()!;
    await this.index.append(size, digest);
    this.onProgress?.(size);
  }

  private assertOpen(): void {
    if (this.closed) throw new PbsError('EINVAL', 'archive writer already closed', { path: this.index.finalPath });
    if (this.failed) throw this.failed;
  }
}
