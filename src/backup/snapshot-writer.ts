// A backup session: locks the group, creates the snapshot directory, takes archives, and writes the manifest last.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Codec } from '../codec/codec.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import { type Datastore, type SnapshotInfo } from '../datastore/datastore.js';
import { type Lock, lockGroup, lockSnapshot, lockStoreShared } from '../datastore/locks.js';
import { formatBackupTime, validateArchiveName } from '../datastore/names.js';
import { MAX_CHUNK_SIZE, encodeBlob } from '../format/blob.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { type BackupManifest, type ManifestFile, encodeManifest, signManifest } from '../format/manifest.js';
import { PbsError, withPath } from '../errors.js';
import type { CryptMode, Digest, GroupRef, SnapshotRef } from '../types.js';
import { digestToHex } from '../types.js';
import type { Chunker } from '../chunker/chunker.js';
import { ChunkList } from './chunk-list.js';
import { ChunkWriter } from './chunk-writer.js';
import { DynamicArchiveWriter } from './dynamic-archive-writer.js';
import { type ClosedIndex, DynamicIndexWriter, FixedIndexWriter } from './index-writer.js';
import { loadManifest } from './manifest-io.js';
import { type ChunkReader, localChunkReader } from '../io/chunk-reader.js';
import { IndexReadAt } from '../io/index-read-at.js';
import { type IndexReader, openIndex } from '../io/index-reader.js';

export interface SnapshotWriterOptions {
  codec: Codec;
  pool: WorkerPool;
  /** Backup time in unix seconds; default now. Must be newer than the group's last finished snapshot. */
  time?: number;
  owner?: string;
  cryptMode: CryptMode;
  /** Required for `encrypt` and `sign-only`. */
  crypt?: CryptConfig;
  /** Bytes of `rsa-encrypted.key.blob` payload (spec §6.2), added to the snapshot when given. */
  wrappedKey?: Uint8Array;
  /** Unencrypted chunk digests on the libuv thread pool instead of the worker pool (the mount's write path). */
  threadPoolDigest?: boolean;
}

export class SnapshotWriter {
  readonly chunks: ChunkWriter;
  private readonly files: ManifestFile[] = [];
  /** Archives opened in this session (a name may be used once). */
  private readonly opening = new Set<string>();
  private done = false;

  private constructor(
    readonly ds: Datastore,
    readonly ref: SnapshotRef,
    readonly dir: string,
    private readonly opts: SnapshotWriterOptions,
    private readonly locks: Lock[],
    /** The previous finished snapshot's manifest, when its chunks may be reused (same key). */
    private readonly previous: { info: SnapshotInfo; manifest: BackupManifest } | undefined,
    /** This session made the group, so a failed first backup removes it again. */
    private readonly createdGroup: boolean,
  ) {
    const chunkCrypt = opts.cryptMode === 'encrypt' ? opts.crypt : undefined;
    this.chunks = new ChunkWriter(ds.chunks, opts.pool, opts.codec, chunkCrypt, { threadPoolDigest: opts.threadPoolDigest });
  }

  static async begin(ds: Datastore, group: GroupRef, opts: SnapshotWriterOptions): Promise<SnapshotWriter> {
    if (opts.cryptMode !== 'none' && !opts.crypt) {
      throw new PbsError('EACCES', `crypt mode '${opts.cryptMode}' needs a key file (--keyfile)`);
    }
    const locks: Lock[] = [];
    let createdGroup = false;
    let dir: string | undefined;
    try {
      locks.push(lockStoreShared(ds));
      const { created } = await ds.createGroup(group, opts.owner ?? 'root@pam');
      createdGroup = created;
      locks.push(await lockGroup(ds, group, 'exclusive', 'backup'));
      const last = await ds.lastFinishedSnapshot(group);
      const time = opts.time ?? Math.floor(Date.now() / 1000);
      if (last && time <= last.ref.time) {
        throw new PbsError(
          'EINVAL',
          `backup time ${formatBackupTime(time)} is not newer than the last snapshot ${formatBackupTime(last.ref.time)} of ${group.type}/${group.id}`,
        );
      }
      const ref: SnapshotRef = { ...group, time };
      dir = await ds.createSnapshotDir(ref);
      // Held for the whole session, so nobody forgets or verifies a snapshot that is still being written.
      locks.push(await lockSnapshot(ds, ref, 'exclusive', 'backup'));
      const previous = last ? await reusablePrevious(ds, last, opts) : undefined;
      return new SnapshotWriter(ds, ref, dir, opts, locks, previous, createdGroup);
    } catch (e) {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (createdGroup) await removeEmptyGroup(ds, group);
      for (const l of locks.reverse()) l.release();
      throw e;
    }
  }

  /**
   * Continues a session whose process ended before the manifest (the mount's staging snapshots after a crash): the
   * snapshot directory exists, `files` are the archives already complete in it. EBUSY while another process holds it.
   */
  static async resume(ds: Datastore, ref: SnapshotRef, opts: SnapshotWriterOptions, files: readonly Omit<ManifestFile, 'crypt-mode'>[]): Promise<SnapshotWriter> {
    const locks: Lock[] = [];
    try {
      locks.push(lockStoreShared(ds));
      locks.push(await lockGroup(ds, ref, 'exclusive', 'resume a backup'));
      locks.push(await lockSnapshot(ds, ref, 'exclusive', 'resume a backup'));
      const dir = ds.snapshotPath(ref);
      const w = new SnapshotWriter(ds, ref, dir, opts, locks, undefined, false);
      for (const f of files) {
        w.opening.add(f.filename);
        w.files.push({ filename: f.filename, 'crypt-mode': opts.cryptMode, size: f.size, csum: f.csum });
      }
      return w;
    } catch (e) {
      for (const l of locks.reverse()) l.release();
      throw e;
    }
  }

  /** The session's worker pool (hashing, compression, bulk file reads). */
  get pool(): WorkerPool {
    return this.opts.pool;
  }

  private get fsyncEach(): boolean {
    return this.ds.chunks.syncLevel === 'file';
  }



  /** The previous snapshot's index of the same archive; its chunks become known to this session. */
  async previousIndex(fileName: string): Promise<IndexReader | undefined> {
    if (!this.previous?.manifest.files.some((f) => f.filename === fileName)) return undefined;
    try {
      const index = await openIndex(join(this.previous.info.path, fileName));
      this.chunks.addKnown(index.digests);
      return index;
    } catch {
      return undefined; // a damaged previous index only costs deduplication
    }
  }

  /**
   * An archive of the previous snapshot (for metadata-mode reuse), read sequentially (`reader` + `index`) or at
   * random (`readAt`); its chunks become known.
   */
  async previousArchive(fileName: string): Promise<{ index: IndexReader; reader: ChunkReader; readAt: IndexReadAt } | undefined> {
    const index = await this.previousIndex(fileName);
    if (!index) return undefined;
    const crypt = this.opts.cryptMode === 'encrypt' ? this.opts.crypt : undefined;
    const reader = localChunkReader(this.ds.path, this.opts.pool, { crypt, cacheBytes: 16 * 1024 * 1024 });
    return { index, reader, readAt: new IndexReadAt(index, reader, { path: join(this.previous!.info.path, fileName), readAhead: 2 }) };
  }

  /** Adds an archive to the manifest: indexes with data size and index_csum, blobs with file size and SHA-256. */
  private listFile(fileName: string, size: number, csum: Uint8Array): void {
    this.files.push({ filename: fileName, 'crypt-mode': this.opts.cryptMode, size, csum: digestToHex(csum) });
  }

  private checkName(fileName: string, suffix: string): void {
    this.assertOpen();
    validateArchiveName(fileName);
    if (!fileName.endsWith(suffix)) throw new PbsError('EINVAL', `archive name must end in ${suffix}: ${fileName}`);
    if (this.opening.has(fileName)) throw new PbsError('EEXIST', `archive ${fileName} given twice`);
    this.opening.add(fileName);
  }

  /**
   * Adds an image archive (`NAME.img.fidx`) of `size` bytes read from `chunks`, which yields consecutive
   * pieces of exactly 4 MiB (the last may be shorter).
   */
  async addFixedArchive(fileName: string, size: number, chunks: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<ClosedIndex> {
    this.checkName(fileName, '.fidx');
    await this.previousIndex(fileName);
    const writer = await FixedIndexWriter.create(join(this.dir, fileName), size, this.opts.codec, this.fsyncEach);
    return this.pump(writer, chunks, fileName, onProgress);
  }

  /**
   * Adds an image archive whose chunks are already stored, one digest per 4 MiB slot in image order (writers that
   * fill slots in any order, like the mount, collect them first). Call previousIndex(fileName) before storing chunks.
   */
  async addFixedArchiveDigests(fileName: string, size: number, digests: readonly Digest[]): Promise<ClosedIndex> {
    this.checkName(fileName, '.fidx');
    const writer = await FixedIndexWriter.create(join(this.dir, fileName), size, this.opts.codec, this.fsyncEach);
    try {
      for (const d of digests) await writer.append(d);
      const closed = await writer.close();
      this.listFile(fileName, closed.size, closed.csum);
      return closed;
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  /**
   * Opens a dynamic archive (`NAME.pxar.didx`, `.mpxar.didx`, `.ppxar.didx`, `catalog.pcat1.didx`): write its bytes,
   * the chunker cuts them; close() adds it to the manifest.
   */
  async openDynamicArchive(fileName: string, chunker: Chunker, onProgress?: (bytes: number) => void): Promise<DynamicArchiveWriter> {
    this.checkName(fileName, '.didx');
    await this.previousIndex(fileName);
    const index = await DynamicIndexWriter.create(join(this.dir, fileName), this.opts.codec, this.fsyncEach);
    // Dynamic chunks average 4 MiB but may reach 16 MiB: fewer in flight than for images keeps memory flat.
    const maxInFlight = Math.max(2, this.opts.pool.size);
    return new DynamicArchiveWriter(this.chunks, index, chunker, maxInFlight, (closed) => {
      this.listFile(fileName, closed.size, closed.csum);
    }, onProgress);
  }

  /**
   * A byte stream chunked and stored ahead of the archive that will reference it (the mount stores files as they
   * close): its chunks go to the store now, their list stays in memory (close() returns it); an archive injects
   * them later (DynamicArchiveWriter.inject, `counted`).
   */
  openChunkStream(name: string, chunker: Chunker): DynamicArchiveWriter<IndexReader> {
    const maxInFlight = Math.max(2, this.opts.pool.size);
    return new DynamicArchiveWriter(this.chunks, new ChunkList(name), chunker, maxInFlight, () => undefined);
  }

  /** Adds a dynamic archive from chunks that are already cut. */
  async addDynamicArchive(fileName: string, chunks: AsyncIterable<Uint8Array>): Promise<ClosedIndex> {
    const writer = await this.openDynamicArchive(fileName, { scan: () => 0, reset: () => undefined });
    try {
      for await (const chunk of chunks) {
        await writer.write(chunk);
        await writer.cut();
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    return writer.close();
  }

  private async pump(
    writer: FixedIndexWriter,
    chunks: AsyncIterable<Uint8Array>,
    fileName: string,
    onProgress?: (bytes: number) => void,
  ): Promise<ClosedIndex> {
    // Chunks are hashed and stored on the pool, several at a time; the index gets them back in order,
    // each only once it is durable. The window bounds memory to a few chunks.
    const window: Promise<{ digest: Digest; size: number }>[] = [];
    const maxInFlight = Math.max(4, this.opts.pool.capacity * 2);
    const appendNext = async (): Promise<void> => {
      const { digest, size } = await window.shift()!;
      await writer.append(digest);
      onProgress?.(size);
    };
    try {
      for await (const data of chunks) {
        const size = data.byteLength;
        const p = this.chunks.add(data).then((digest) => ({ digest, size }));
        p.catch(() => undefined); // awaited in order below
        window.push(p);
        if (window.length >= maxInFlight) await appendNext();
      }
      while (window.length) await appendNext();
      const closed = await writer.close();
      this.listFile(fileName, closed.size, closed.csum);
      return closed;
    } catch (e) {
      await Promise.allSettled(window);
      await writer.abort();
      throw e;
    }
  }

  /** Adds a blob archive (`NAME.blob`, at most 16 MiB): configs, logs. */
  async addBlob(fileName: string, data: Uint8Array): Promise<void> {
    this.checkName(fileName, '.blob');
    if (data.byteLength > MAX_CHUNK_SIZE) {
      throw new PbsError('ETOOBIG', `blob ${fileName} has ${data.byteLength} bytes, more than the 16 MiB limit; back it up as an image (.img)`);
    }
    const encrypt = this.opts.cryptMode === 'encrypt' ? this.opts.crypt?.key : undefined;
    const blob = encodeBlob(this.opts.codec, data, { compress: true, cryptKey: encrypt });
    await this.writeFile(fileName, blob);
    this.listFile(fileName, blob.byteLength, this.opts.codec.sha256(blob));
  }

  private async writeFile(fileName: string, bytes: Uint8Array): Promise<void> {
    const path = join(this.dir, fileName);
    try {
      await writeFile(path, bytes, { flag: 'wx', mode: 0o644 });
    } catch (e) {
      throw withPath(e, path);
    }
  }

  /** Writes `rsa-encrypted.key.blob` (if any) and the manifest; the snapshot is listed from then on. */
  async finish(extra: { notes?: string } = {}): Promise<BackupManifest> {
    this.assertOpen();
    try {
      if (this.files.length === 0) throw new PbsError('EINVAL', 'a backup needs at least one archive');
      if (this.opts.wrappedKey) {
        // Spec §6.2: unencrypted, uncompressed blob, listed with the backup's crypt mode.
        const blob = encodeBlob(this.opts.codec, this.opts.wrappedKey, { compress: false });
        await this.writeFile('rsa-encrypted.key.blob', blob);
        this.listFile('rsa-encrypted.key.blob', blob.byteLength, this.opts.codec.sha256(blob));
      }
      let manifest: BackupManifest = {
        'backup-type': this.ref.type,
        'backup-id': this.ref.id,
        'backup-time': this.ref.time,
        files: this.files,
        unprotected: { chunk_upload_stats: { ...this.chunks.stats } },
        signature: null,
      };
      if (extra.notes) manifest.unprotected.notes = extra.notes;
      if (this.opts.crypt && this.opts.cryptMode !== 'none') manifest = signManifest(manifest, this.opts.crypt);
      if (this.ds.chunks.syncLevel !== 'none') await this.ds.chunks.syncFs();
      // Manifest blobs are never encrypted (spec §5.1).
      await this.writeFile('index.json.blob', encodeBlob(this.opts.codec, encodeManifest(manifest), { compress: true }));
      if (this.ds.chunks.syncLevel !== 'none') await this.ds.chunks.syncFs();
      this.done = true;
      return manifest;
    } catch (e) {
      await this.abort();
      throw e;
    } finally {
      this.releaseLocks();
    }
  }

  /** Removes the unfinished snapshot directory; nothing that existed before is touched. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    if (this.createdGroup) await removeEmptyGroup(this.ds, this.ref);
    this.releaseLocks();
  }

  private releaseLocks(): void {
    for (const l of this.locks.splice(0).reverse()) l.release();
  }

  private assertOpen(): void {
    if (this.done) throw new PbsError('EINVAL', 'backup session already finished');
  }
}

/** Removes a group directory that holds nothing but its owner file. */
async function removeEmptyGroup(ds: Datastore, group: GroupRef): Promise<void> {
  const dir = ds.groupPath(group);
  const entries = await readdir(dir).catch(() => ['?']);
  if (entries.every((e) => e === 'owner')) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

async function reusablePrevious(
  ds: Datastore,
  last: SnapshotInfo,
  opts: SnapshotWriterOptions,
): Promise<{ info: SnapshotInfo; manifest: BackupManifest } | undefined> {
  try {
    const manifest = await loadManifest(ds, last.ref, { codec: opts.codec });
    const verify = manifest.unprotected.verify_state as { state?: string } | undefined;
    if (verify?.state === 'failed') return undefined; // spec §10.3: a failed snapshot is no base
    const fp = manifest.unprotected['key-fingerprint'];
    const ours = opts.cryptMode === 'encrypt' ? opts.crypt?.fingerprintText() : undefined;
    // Keyed digests only match under the same key; unencrypted chunks only match unencrypted ones.
    const theirsEncrypted = manifest.files.some((f) => f['crypt-mode'] === 'encrypt');
    if (ours ? fp !== ours : theirsEncrypted) return undefined;
    return { info: last, manifest };
  } catch {
    return undefined;
  }
}
