// Write path core: bytes -> digest (keyed when encrypted) -> known? -> compress/encrypt -> chunk store.
// Hashing and encoding run on the worker pool, so both cores work while this thread reads and writes.
import type { Codec } from '../codec/codec.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import type { ChunkStore } from '../datastore/chunk-store.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { type Digest, type DigestHex, digestToHex } from '../types.js';
import { threadPoolSha256 } from '../codec/thread-pool-sha256.js';
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

export class ChunkWriter {
  readonly stats: UploadStats = { count: 0, size: 0, compressed_size: 0, duplicates: 0 };
  private readonly known = new Set<DigestHex>();
  /** Chunks being written right now: a second reference waits for the first write instead of repeating it. */
  private readonly pending = new Map<DigestHex, Promise<void>>();
  private readonly zeros = new ZeroDigests((d) => this.digestOfSync(d));
  /** Plain (unkeyed) digests computed on the libuv thread pool instead of a worker (opts.threadPoolDigest). */
  private readonly sha256Async: ((data: Uint8Array) => Promise<Uint8Array>) | null;

  constructor(
    private readonly store: ChunkStore,
    private readonly pool: WorkerPool,
    private readonly codec: Codec,
    private readonly crypt?: CryptConfig,
    opts: { threadPoolDigest?: boolean } = {},
  ) {
    this.sha256Async = opts.threadPoolDigest && !crypt ? threadPoolSha256() : null;
  }

  get encrypted(): boolean {
    return this.crypt !== undefined;
  }

  /** Digests of chunks that are known to be in the store already (e.g. the previous snapshot's index). */
  addKnown(digests: Iterable<Uint8Array>): void {
    for (const d of digests) this.known.add(digestToHex(d));
  }

  /** Counts a chunk referenced without passing through add() (injected from the previous snapshot). */
  noteReused(size: number): void {
    this.stats.count++;
    this.stats.size += size;
    this.stats.duplicates++;
  }

  private digestOfSync(data: Uint8Array): Digest {
    return (this.crypt ? this.crypt.computeDigest(data) : this.codec.sha256(data)) as Digest;
  }

  /**
   * Stores one chunk (unless known) and resolves with its digest once it is durable in the store.
   * `data` must not be used by the caller afterwards: it is moved to a worker thread. With `ownsBuffer` the
   * caller hands over the whole ArrayBuffer behind `data` (slack after it included), which saves a copy.
   * `release` gets that buffer back, for reuse, once the chunk is encoded or found to need no write.
   */
  async add(data: Uint8Array, ownsBuffer = false, release?: (buffer: Uint8Array) => void): Promise<Digest> {
    const size = data.byteLength;
    let digest = this.zeros.lookup(data) as Digest | undefined;
    /** Whether data is the offset-0 view of a buffer only this chunk uses (moved back from the worker). */
    let owned = false;
    if (!digest && this.sha256Async) {
      // The chunk stays here: only a new chunk moves to a worker, to be encoded.
      digest = (await this.sha256Async(data)) as Digest;
      owned = data.byteOffset === 0 && data.buffer instanceof ArrayBuffer && (ownsBuffer || data.byteLength === data.buffer.byteLength);
    } else if (!digest) {
      const moved = ownsBuffer && data.byteOffset === 0 && data.buffer instanceof ArrayBuffer ? data : ownBuffer(data);
      const res = await this.pool.run('digestChunk', { data: moved, digestKey: this.crypt?.idKey }, [moved.buffer as ArrayBuffer]);
      digest = res.digest as Digest;
      data = res.data.subarray(0, size); // the whole buffer that was moved, slack included
      owned = true;
    }
    const hex = digestToHex(digest);
    this.stats.count++;
    this.stats.size += size;
    if (this.known.has(hex)) {
      this.stats.duplicates++;
      if (owned && release) release(new Uint8Array(data.buffer as ArrayBuffer));
      await this.pending.get(hex);
      return digest;
    }
    this.known.add(hex);
    const stored = this.write(digest, data, owned, release);
    this.pending.set(hex, stored);
    try {
      await stored;
    } catch (e) {
      this.known.delete(hex); // a failed write must not make later references look stored
      throw e;
    } finally {
      this.pending.delete(hex);
    }
    return digest;
  }

  private async write(digest: Digest, data: Uint8Array, owned: boolean, release?: (buffer: Uint8Array) => void): Promise<void> {
    // A chunk already in the store (another group, an older snapshot) is only touched so GC keeps it.
    if (await this.store.touch(digest)) {
      this.stats.duplicates++;
      if (owned && release) release(new Uint8Array(data.buffer as ArrayBuffer));
      return;
    }
    const moved = owned ? data : ownBuffer(data);
    const reuse = owned && release !== undefined;
    const { blob, data: back } = await this.pool.run('encodeChunk', { data: moved, compress: true, cryptKey: this.crypt?.key, returnData: reuse }, [moved.buffer as ArrayBuffer]);
    if (reuse && back) release(new Uint8Array(back.buffer as ArrayBuffer));
    const res = await this.store.insert(digest, blob, this.encrypted);
    if (res.duplicate) this.stats.duplicates++;
    else this.stats.compressed_size += blob.byteLength;
  }
}

/** The bytes as the only view of their ArrayBuffer, so moving them to a worker detaches nothing else. Keys are copied, never moved. */
function ownBuffer(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data : data.slice();
}
