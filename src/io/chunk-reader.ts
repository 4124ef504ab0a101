// Read path core: digest -> raw blob (ChunkSource) -> decrypt/decompress/verify on the worker pool -> bytes, with a byte-bounded LRU.
import { PbsError } from '../errors.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { MAX_CHUNK_SIZE } from '../format/blob.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import { type Digest, type DigestHex, digestToHex } from '../types.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ChunkDirSource, type ChunkSource } from './chunk-source.js';
import { ChunkArena } from './chunk-arena.js';
import { ChunkBuffers, residentBytes } from './chunk-buffers.js';
import { ByteLru } from './lru-cache.js';
import { decodeChunkFile, nativeChunkDecodeAvailable } from './native-chunk-decode.js';

export interface ChunkReaderOptions {
  /** Key for encrypted chunks; without it an encrypted chunk fails with EACCES. */
  crypt?: CryptConfig;
  /** Decoded-chunk cache size in bytes (0 disables). */
  cacheBytes?: number;
  /**
   * Decode unencrypted chunks of a local `.chunks` directory on the libuv thread pool (native addon) when the size is
   * known, instead of on the worker pool: no worker isolate's memory, and every core (the mount's read path).
   */
  threadPoolDecode?: boolean;
  /**
   * Decode those chunks into ranges of one long-lived buffer of this many bytes (default 0: none) before falling back
   * to buffers of their own (ChunkArena). Room for the cache and the read-ahead in flight suits a long-running reader.
   */
  arenaBytes?: number;
}

export class ChunkReader {
  private readonly cache: ByteLru<DigestHex, Uint8Array>;
  /** Joins concurrent reads of the same chunk into one decode. */
  private readonly inflight = new Map<DigestHex, Promise<Uint8Array>>();
  /** The local chunk directory whose plain chunks decode on the libuv thread pool (threadPoolDecode). */
  private readonly threadPool?: ChunkDirSource;
  private readonly buffers: ChunkBuffers;
  private readonly arena?: ChunkArena;
  /** Chunks handed out by read(): callers may keep them, so they are never reused. */
  private readonly lent = new WeakSet<Uint8Array>();

  constructor(
    private readonly source: ChunkSource,
    private readonly pool: WorkerPool,
    private readonly opts: ChunkReaderOptions = {},
  ) {
    this.cache = new ByteLru(
      opts.cacheBytes ?? 64 * 1024 * 1024,
      (data) => this.giveBack(data),
      (data) => (this.arena?.holds(data) ? this.arena.footprint(data) : residentBytes(data)),
    );
    if (opts.threadPoolDecode && source instanceof ChunkDirSource && nativeChunkDecodeAvailable()) {
      this.threadPool = source;
      if (opts.arenaBytes) this.arena = new ChunkArena(opts.arenaBytes);
    }
    // With an arena, buffers of their own are the rare chunk that found no room there: not worth keeping.
    this.buffers = new ChunkBuffers(this.arena ? 0 : undefined);
  }

  /** Decoded, digest-verified bytes of one chunk. `expectedSize` is checked when given. */
  async read(digest: Digest, expectedSize?: number): Promise<Uint8Array> {
    const data = await this.get(digest, expectedSize);
    // The caller may keep them: an arena range is reused once the cache drops it, so it gets a copy.
    if (this.arena?.holds(data)) return data.slice();
    this.lent.add(data);
    return data;
  }

  /**
   * Bytes [from, to) of one chunk, for a caller that may keep them: a view of a chunk it then never reuses, or a copy
   * of just that part when the chunk lives in the arena (read() would copy all of it).
   */
  async readSlice(digest: Digest, expectedSize: number, from: number, to: number): Promise<Uint8Array> {
    const data = await this.get(digest, expectedSize);
    if (this.arena?.holds(data)) return data.slice(from, to);
    this.lent.add(data);
    return data.subarray(from, to);
  }

  /**
   * As read(), for a caller that is done with the bytes before this event-loop turn ends (it awaits nothing else
   * while using them, e.g. a FUSE reply): the buffer may then be reused for another chunk once the cache drops it.
   */
  readTransient(digest: Digest, expectedSize: number): Promise<Uint8Array> {
    return this.get(digest, expectedSize);
  }

  private async get(digest: Digest, expectedSize?: number): Promise<Uint8Array> {
    const hex = digestToHex(digest);
    if (expectedSize !== undefined) {
      const zero = zeroChunk(hex, expectedSize);
      if (zero) return zero;
    }
    const cached = this.cache.get(hex);
    if (cached) return cached;
    let p = this.inflight.get(hex);
    if (!p) {
      p = this.load(digest, hex, expectedSize).finally(() => this.inflight.delete(hex));
      this.inflight.set(hex, p);
    }
    const data = await p;
    if (expectedSize !== undefined && data.byteLength !== expectedSize) {
      throw new PbsError('ECORRUPT', `chunk has ${data.byteLength} bytes, index expects ${expectedSize}`, { digest: hex });
    }
    return data;
  }

  private async load(digest: Digest, hex: DigestHex, expectedSize: number | undefined): Promise<Uint8Array> {
    if (this.threadPool && expectedSize !== undefined && expectedSize <= MAX_CHUNK_SIZE) {
      const out = (await this.arenaRange(expectedSize)) ?? this.buffers.take(expectedSize);
      let done = false;
      try {
        done = await decodeChunkFile(this.threadPool.pathOf(hex), digest, hex, out);
      } finally {
        if (!done) this.giveBack(out);
      }
      if (done) {
        this.cache.set(hex, out);
        // An arena range too big for the cache goes back after this turn: whoever waits for this decode gets it in
        // this turn, and read() copies it.
        if (!this.cache.has(hex)) this.arena?.giveBack(out);
        return out;
      }
    }
    const blob = await this.source.readChunk(digest);
    const { data } = await this.pool.run(
      'decodeChunk',
      {
        blob,
        cryptKey: this.opts.crypt?.key,
        digestKey: this.opts.crypt?.idKey,
        expectedDigest: digest,
        maxSize: MAX_CHUNK_SIZE,
      },
      [blob.buffer as ArrayBuffer],
    );
    this.cache.set(hex, data);
    return data;
  }

  /**
   * Room for a chunk in the arena. When it is full, the cache gives up its oldest chunks first (as it would when the
   * chunk arrives), and their ranges are free from the next turn on: a full arena is the normal state, and a chunk
   * of up to 16 MiB needs a hole that large. A chunk over half the arena gets a buffer of its own at once: emptying
   * the cache for it would not promise a hole.
   */
  private async arenaRange(size: number): Promise<Uint8Array | undefined> {
    if (!this.arena) return undefined;
    const out = this.arena.take(size);
    if (out || size > this.arena.bytes / 2) return out;
    this.cache.trim(this.cache.heldBytes - size);
    await new Promise((resolve) => setImmediate(resolve));
    return this.arena.take(size);
  }

  /** A decoded chunk's buffer nobody reads any more (dropped by the cache, or a failed decode) goes back for reuse. */
  private giveBack(data: Uint8Array): void {
    if (this.lent.has(data)) return;
    if (!this.arena?.giveBack(data)) this.buffers.giveBack(data);
  }
}

/**
 * Fixed-index images are full of all-zero chunks (unallocated disk), one digest per chunk size: such a chunk is
 * answered without reading or decoding it, from one shared buffer (decoded chunks are never written to). Only
 * power-of-two sizes (the fixed chunk sizes) are remembered, so dynamic chunks do not each cost a hash.
 */
const zeroChunks = new Map<number, { hex: DigestHex; data: Uint8Array }>();
function zeroChunk(hex: DigestHex, size: number): Uint8Array | undefined {
  if (size < 4096 || size > MAX_CHUNK_SIZE || (size & (size - 1)) !== 0) return undefined;
  let z = zeroChunks.get(size);
  if (!z) {
    const data = new Uint8Array(size);
    z = { hex: createHash('sha256').update(data).digest('hex') as DigestHex, data };
    zeroChunks.set(size, z);
  }
  return z.hex === hex ? z.data : undefined;
}

/** A ChunkReader over a local datastore's `.chunks` directory. */
export function localChunkReader(storePath: string, pool: WorkerPool, opts: ChunkReaderOptions = {}): ChunkReader {
  return new ChunkReader(new ChunkDirSource(join(storePath, '.chunks')), pool, opts);
}
