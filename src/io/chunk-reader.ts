// Read path core: digest -> raw blob (ChunkSource) -> decrypt/decompress/verify on the worker pool -> bytes, with a byte-bounded LRU.
import { PbsError } from '../errors.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { MAX_CHUNK_SIZE } from '../format/blob.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import { type Digest, type DigestHex, digestToHex } from '../types.js';
import { join } from 'node:path';
import { ChunkDirSource, type ChunkSource } from './chunk-source.js';
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
}

export class ChunkReader {
  private readonly cache: ByteLru<DigestHex, Uint8Array>;
  /** Joins concurrent reads of the same chunk into one decode. */
  private readonly inflight = new Map<DigestHex, Promise<Uint8Array>>();
  /** The local chunk directory whose plain chunks decode on the libuv thread pool (threadPoolDecode). */
  private readonly threadPool?: ChunkDirSource;

  constructor(
    private readonly source: ChunkSource,
    private readonly pool: WorkerPool,
    private readonly opts: ChunkReaderOptions = {},
  ) {
    this.cache = new ByteLru(opts.cacheBytes ?? 64 * 1024 * 1024);
    if (opts.threadPoolDecode && source instanceof ChunkDirSource && nativeChunkDecodeAvailable()) this.threadPool = source;
  }

  /** Decoded, digest-verified bytes of one chunk. `expectedSize` is checked when given. */
  async read(digest: Digest, expectedSize?: number): Promise<Uint8Array> {
    const hex = digestToHex(digest);
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
      const data = await decodeChunkFile(this.threadPool.pathOf(hex), digest, hex, expectedSize);
      if (data) {
        this.cache.set(hex, data);
        return data;
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
}

/** A ChunkReader over a local datastore's `.chunks` directory. */
export function localChunkReader(storePath: string, pool: WorkerPool, opts: ChunkReaderOptions = {}): ChunkReader {
  return new ChunkReader(new ChunkDirSource(join(storePath, '.chunks')), pool, opts);
}
