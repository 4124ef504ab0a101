// Write path core: bytes -> digest (keyed when encrypted) -> known? -> compress/encrypt on the pool -> chunk store.
import type { Codec } from '../codec/codec.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import type { ChunkStore } from '../datastore/chunk-store.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { type Digest, type DigestHex, digestToHex } from '../types.js';
import { ZeroDigests } from './zero-chunk.js';

export interface UploadStats {
  /** Chunks referenced by the archives written. */
  count: number;
  /** Plain bytes of all referenced chunks. */
  size: number;
  /** Encoded bytes of chunks actually written to the store. */
  compressed_size: number;
  /** Referenced chunks that needed no write (known from the previous snapshot, this session, or the store). */
  duplicates: number;
}

export interface AddedChunk {
  digest: Digest;
  /** Resolves once the chunk is durable in the store (or known to be there already). */
  stored: Promise<void>;
}

export class ChunkWriter {
  readonly stats: UploadStats = { count: 0, size: 0, compressed_size: 0, duplicates: 0 };
  private readonly known = new Set<DigestHex>();
  private readonly pending = new Map<DigestHex, Promise<void>>();

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    private readonly codec: Codec,
    private readonly crypt?: CryptConfig,
  ) {}

  get encrypted(): boolean {
    return this.crypt !== undefined;
  }

  /** Digests of chunks that are known to be in the store already (e.g. the previous snapshot's index). */
  addKnown(digests: Iterable<Uint8Array>): void {
    for (const d of digests) this.known.add(digestToHex(d));
  }

  digestOf(data: Uint8Array): Digest {
    return (this.crypt ? this.crypt.computeDigest(data) : this.codec.sha256(data)) as Digest;
  }

  private readonly zeros = new ZeroDigests((d) => this.digestOf(d));

  /**
   * Adds one chunk. The digest is computed at once on this thread (the index needs it in order);
   * encoding and storing run on the worker pool. `data` must not be modified afterwards: it may be
   * transferred to a worker.
   */
  add(data: Uint8Array): AddedChunk {
    const digest = (this.zeros.lookup(data) ?? this.digestOf(data)) as Digest;
    const hex = digestToHex(digest);
    this.stats.count++;
    this.stats.size += data.byteLength;
    if (this.known.has(hex)) {
      this.stats.duplicates++;
      return { digest, stored: this.pending.get(hex) ?? Promise.resolve() };
    }
    this.known.add(hex);
    const stored = this.write(digest, data);
    this.pending.set(hex, stored);
    stored.then(
      () => this.pending.delete(hex),
      () => this.known.delete(hex), // a failed write must not make later references look stored
    );
    return { digest, stored };
  }

  private async write(digest: Digest, data: Uint8Array): Promise<void> {
    // A chunk already in the store (another group, an older snapshot) is only touched so GC keeps it.
    if (await this.store.touch(digest)) {
      this.stats.duplicates++;
      return;
    }
    const tight = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
    const { blob } = await this.pool.run(
      'encodeChunk',
      { data: tight, compress: true, cryptKey: this.crypt?.key },
      [tight.buffer as ArrayBuffer],
    );
    const res = await this.store.insert(digest, blob, this.encrypted);
    if (res.duplicate) this.stats.duplicates++;
    else this.stats.compressed_size += blob.byteLength;
  }
}
