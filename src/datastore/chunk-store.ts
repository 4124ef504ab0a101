// The chunk store: `.chunks/<4 hex>/<64 hex>` files holding DataBlob bytes (spec §4), with the
// server's insert rules for chunks that already exist (spec §4.1).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PbsError, withPath } from '../errors.js';
import { digestToHex, type Digest } from '../types.js';
import { ENCRYPTED_HEADER_SIZE, MAX_BLOB_SIZE as MAX_BLOB_PAYLOAD, parseBlobHeader, type BlobHeader } from '../format/blob.js';
import type { SyncLevel } from './config.js';
import { nativeLocks } from './native-locks.js';

export const CHUNK_DIR = '.chunks';
/** Largest chunk file: the largest blob payload (spec §1.4) plus the encrypted header. */
export const MAX_CHUNK_FILE_SIZE = MAX_BLOB_PAYLOAD + ENCRYPTED_HEADER_SIZE;
const PREFIX_COUNT = 0x10000;
const MKDIR_BATCH = 512;

export interface InsertResult {
  /** True when the store already had a usable copy (it was touched, not rewritten). */
  duplicate: boolean;
  /** Size of the chunk file that is now on disk. */
  compressedSize: number;
}

function prefixName(i: number): string {
  return i.toString(16).padStart(4, '0');
}

export class ChunkStore {
  readonly basePath: string;
  readonly chunkDir: string;
  readonly syncLevel: SyncLevel;
  /** In-process serialisation of inserts per digest, so the §4.1 check-then-write is not raced. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(basePath: string, opts: { syncLevel?: SyncLevel } = {}) {
    this.basePath = basePath;
    this.chunkDir = join(basePath, CHUNK_DIR);
    this.syncLevel = opts.syncLevel ?? 'filesystem';
  }

  /** Creates `.chunks` and its 65536 prefix dirs (spec §4); existing dirs are fine, so it can resume. */
  static async create(basePath: string): Promise<void> {
    const chunkDir = join(basePath, CHUNK_DIR);
    try {
      await mkdir(chunkDir, { recursive: true, mode: 0o750 });
    } catch (e) {
      throw withPath(e, chunkDir);
    }
    for (let start = 0; start < PREFIX_COUNT; start += MKDIR_BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < start + MKDIR_BATCH; i++) {
        const dir = join(chunkDir, prefixName(i));
        batch.push(
          mkdir(dir, { mode: 0o750 }).then(
            () => undefined,
            (e: NodeJS.ErrnoException) => {
              if (e.code !== 'EEXIST') throw withPath(e, dir);
            },
          ),
        );
      }
      await Promise.all(batch);
    }
  }

  chunkPath(digest: Uint8Array): string {
    const hex = this.checkDigest(digest);
    return join(this.chunkDir, hex.slice(0, 4), hex);
  }

  private checkDigest(digest: Uint8Array): string {
    if (!(digest instanceof Uint8Array) || digest.length !== 32) {
      throw new PbsError('EINVAL', `chunk digest must be 32 bytes, got ${digest instanceof Uint8Array ? digest.length : typeof digest}`);
    }
    return digestToHex(digest);
  }

  /** Stores a chunk following spec §4.1; `encrypted` must agree with the blob's magic. */
  async insert(digest: Digest, blob: Uint8Array, encrypted: boolean): Promise<InsertResult> {
    const hex = this.checkDigest(digest);
    const kind = parseBlobHeader(blob, { digest: hex });
    if (kind.encrypted !== encrypted) {
      throw new PbsError('EINVAL', `chunk blob is ${kind.encrypted ? '' : 'not '}encrypted but was submitted as ${encrypted ? '' : 'un'}encrypted`, { digest: hex });
    }
    if (blob.length > MAX_CHUNK_FILE_SIZE) throw new PbsError('ETOOBIG', `chunk blob of ${blob.length} bytes exceeds ${MAX_CHUNK_FILE_SIZE}`, { digest: hex });
    const prev = this.pending.get(hex) ?? Promise.resolve();
    const run = prev.then(
      () => this.insertNow(hex, blob, kind),
      () => this.insertNow(hex, blob, kind),
    );
    this.pending.set(hex, run);
    try {
      return await run;
    } finally {
      if (this.pending.get(hex) === run) this.pending.delete(hex);
    }
  }

  private async insertNow(hex: string, blob: Uint8Array, kind: BlobHeader): Promise<InsertResult> {
    const path = join(this.chunkDir, hex.slice(0, 4), hex);
    let oldSize: number | undefined;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new PbsError('ECORRUPT', 'chunk path exists but is not a regular file', { path, digest: hex });
      oldSize = st.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e instanceof PbsError ? e : withPath(e, path);
    }
    if (oldSize !== undefined) {
      const keep = (): InsertResult => {
        this.touchPath(path);
        return { duplicate: true, compressedSize: oldSize! };
      };
      if (oldSize === blob.length) return keep();
      if (oldSize !== 0) {
        if (kind.encrypted) {
          const existing = await this.existingKind(path, hex);
          if (existing && !existing.encrypted) {
            throw new PbsError('EPERM', 'refusing to overwrite an unencrypted chunk with an encrypted chunk of the same digest', { digest: hex });
          }
          if (existing?.encrypted && !existing.compressed && !kind.compressed) {
            throw new PbsError('EPERM', 'refusing to overwrite an existing encrypted chunk with a different-sized encrypted chunk', { digest: hex });
          }
          // compressed sizes may differ between zstd versions: the first upload wins
          return keep();
        }
        if (oldSize < blob.length) return keep();
      }
      // existing copy is empty or larger: replace it
    }
    await this.writeAtomically(path, blob, hex);
    return { duplicate: false, compressedSize: blob.length };
  }

  /** Header of the stored copy; undefined when it is not a readable blob header (then PBS keeps it too). */
  private async existingKind(path: string, hex: string): Promise<BlobHeader | undefined> {
    const buf = new Uint8Array(ENCRYPTED_HEADER_SIZE);
    let bytesRead: number;
    try {
      const fh = await open(path, 'r');
      try {
        ({ bytesRead } = await fh.read(buf, 0, buf.length, 0));
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new PbsError('EIO', `cannot read existing chunk: ${(e as Error).message}`, { path, digest: hex, cause: e });
    }
    try {
      return parseBlobHeader(buf.subarray(0, bytesRead));
    } catch {
      return undefined;
    }
  }

  private async writeAtomically(path: string, blob: Uint8Array, hex: string): Promise<void> {
    const tmp = `${path}.tmp_${randomBytes(3).toString('hex')}`;
    try {
      const fh = await open(tmp, 'wx', 0o640);
      try {
        await fh.writeFile(blob);
        if (this.syncLevel === 'file') await fh.sync();
        // For 'filesystem' the final syncfs waits for all chunks: start their writeback now, while hashing goes on.
        else if (this.syncLevel === 'filesystem') nativeLocks().startWriteback(fh.fd);
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new PbsError('EIO', `inserting chunk failed: ${(e as Error).message}`, { path, digest: hex, cause: e });
    }
    if (this.syncLevel === 'file') await this.fsyncDir(dirname(path), hex);
  }

  /** Persists the rename itself (sync-level=file). */
  private async fsyncDir(dir: string, hex: string): Promise<void> {
    try {
      const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new PbsError('EIO', `fsync of chunk directory failed: ${(e as Error).message}`, { path: dir, digest: hex, cause: e });
    }
  }

  async has(digest: Digest): Promise<boolean> {
    const path = this.chunkPath(digest);
    try {
      return (await stat(path)).isFile();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw withPath(e, path);
    }
  }

  /** Sets atime to now and leaves mtime alone (GC mark, spec §4.2); false when the chunk is missing. */
  async touch(digest: Digest): Promise<boolean> {
    const path = this.chunkPath(digest);
    try {
      // Off the event loop: after a cold start each chunk directory lookup is a disk read.
      return await nativeLocks().touchAtimeAsync(path);
    } catch (e) {
      if (e instanceof PbsError) throw e;
      throw new PbsError('EIO', `updating chunk atime failed: ${(e as Error).message}`, { path, cause: e });
    }
  }

  private touchPath(path: string): boolean {
    try {
      return nativeLocks().touchAtime(path);
    } catch (e) {
      if (e instanceof PbsError) throw e;
      throw new PbsError('EIO', `updating chunk atime failed: ${(e as Error).message}`, { path, cause: e });
    }
  }

  /** Raw chunk file bytes (a DataBlob); ENOENT when missing, ETOOBIG past the blob size limit. */
  async read(digest: Digest): Promise<Uint8Array> {
    const hex = this.checkDigest(digest);
    const path = this.chunkPath(digest);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PbsError('ENOENT', 'chunk not found in store', { path, digest: hex });
      throw new PbsError('EIO', `cannot open chunk: ${(e as Error).message}`, { path, digest: hex, cause: e });
    }
    try {
      const { size } = await fh.stat();
      if (size > MAX_CHUNK_FILE_SIZE) throw new PbsError('ETOOBIG', `chunk file of ${size} bytes exceeds ${MAX_CHUNK_FILE_SIZE}`, { path, digest: hex });
      const buf = new Uint8Array(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === size ? buf : buf.subarray(0, off);
    } catch (e) {
      if (e instanceof PbsError) throw e;
      throw new PbsError('EIO', `cannot read chunk: ${(e as Error).message}`, { path, digest: hex, cause: e });
    } finally {
      await fh.close();
    }
  }

  /** sync-level=filesystem: syncfs(2) on the store's filesystem; the other levels need nothing here. */
  async syncFs(): Promise<void> {
    if (this.syncLevel !== 'filesystem') return;
    // syncfs can take seconds: the addon runs it on the libuv thread pool
    const fh = await open(this.basePath, constants.O_RDONLY | constants.O_DIRECTORY).catch((e: unknown) => {
      throw withPath(e, this.basePath);
    });
    try {
      await nativeLocks().syncfs(fh.fd);
    } catch (e) {
      throw new PbsError('EIO', `syncfs failed: ${(e as Error).message}`, { path: this.basePath, cause: e });
    } finally {
      await fh.close();
    }
  }
}
