// A snapshot being staged in the mount: a directory made in a group (`mkdir new`: a container of `*.img` images,
// `*.pxar` directories and blob files) or one `NAME.pxar` directory made directly in a group. It is listed under
// that name only; sealing (`pbsfs seal`, the user.pbsfs.seal xattr, or --seal-after seconds of quiet with nothing
// open) encodes its pxar trees, writes its blobs and then the manifest, and the snapshot appears under its time.
// Its state lives in `<store>/.pbsfs-writes/stage-*/` (LevelDB + spool), so a daemon crash resumes it.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BuzhashChunker } from '../../src/chunker/buzhash.js';
import { PayloadPlacer } from '../../src/backup/payload-placer.js';
import { PXAR_CHUNK_AVG } from '../../src/backup/pxar-backup.js';
import { SnapshotWriter, type SnapshotWriterOptions } from '../../src/backup/snapshot-writer.js';
import { validateArchiveName } from '../../src/datastore/names.js';
import { PbsError } from '../../src/errors.js';
import { digestToHex } from '../../src/types.js';
import type { GroupRef } from '../../src/types.js';
import { EROFS, Errno, ErrnoError, LIVE_TTL_MS, type Maybe, msTimestamp, type MountNode, type NodeStat, S_IFMT, S_IFREG, type WriteHandle } from '../node.js';
import type { MountContext, OpenStore } from '../stores.js';
import { ClosedFilesStream } from './closed-files-stream.js';
import { ImageIngest } from './image-ingest.js';
import { encodeStagedTree } from './pxar-seal.js';
import { readExtents, Spool } from './spool.js';
import { ROOT_ID, StagedNode, StagedTree, type TreeOwner } from './staged-tree.js';
import { type FinishedArchive, type LoadedState, StagingState, type StagingInfo } from './staging-state.js';
import { stageDir } from './write-journal.js';

/** The xattr whose setting seals a staging snapshot (what `pbsfs seal PATH` sets). */
export const SEAL_XATTR = 'user.pbsfs.seal';
export const DEFAULT_SEAL_AFTER_MS = 60_000;
const QUIET_CHECK_MS = 500;
const RELEASE_WAIT_MS = 2000;

/** `disk.img` → `disk.img.fidx` (images in a staging snapshot must be named *.img). */
function imageArchive(name: string): string {
  validateArchiveName(`${name}.fidx`);
  return `${name}.fidx`;
}

/** `qemu-server.conf` → `qemu-server.conf.blob` (shown under its plain name in the finished snapshot). */
function blobArchive(name: string): string {
  const file = name.endsWith('.blob') ? name : `${name}.blob`;
  validateArchiveName(file);
  if (file === 'index.json.blob') throw new ErrnoError(Errno.EPERM, 'index.json is the manifest');
  return file;
}

function pxarBase(name: string): string {
  validateArchiveName(`${name.slice(0, -'.pxar'.length)}.mpxar.didx`);
  return name.slice(0, -'.pxar'.length);
}

/** The tree's view of its staging snapshot, which is made after the tree (it needs the tree). */
function treeOwner(ctx: MountContext, snapshot: () => StagingSnapshot): TreeOwner {
  return {
    ctx,
    get key() {
      return snapshot().key;
    },
    assertOpen: () => snapshot().assertOpen(),
    touch: () => snapshot().touch(),
    opened: () => snapshot().opened(),
    released: () => snapshot().released(),
    fileClosed: (id) => snapshot().fileClosed(id),
  };
}

/** Inode-table keys of staging snapshots: short, unique for the life of the daemon. */
let stagingCount = 0;

export class StagingSnapshot implements TreeOwner {
  readonly key: string;
  private handles = 0;
  private lastChange = Date.now();
  private sealing?: Promise<void>;
  private readonly images = new Map<string, StagedImage>();
  /** Per pxar archive (its directory's inode): file payloads stored as they close. */
  private readonly streams = new Map<number, ClosedFilesStream>();
  private readonly timer: NodeJS.Timeout;
  /** The node listed in the group. */
  readonly node: StagingRoot;

  private constructor(
    readonly ctx: MountContext,
    private readonly store: OpenStore,
    readonly info: StagingInfo,
    readonly writer: SnapshotWriter,
    readonly state: StagingState,
    readonly tree: StagedTree,
    private readonly stateDir: string,
    finished: readonly FinishedArchive[],
  ) {
    this.key = `stage:${++stagingCount}`;
    for (const a of finished) {
      const name = a.filename.slice(0, -'.fidx'.length);
      this.images.set(name, StagedImage.finished(this, name, a.size));
    }
    this.node = new StagingRoot(this);
    tree.adopt(ROOT_ID, this.node);
    const sealAfter = ctx.sealAfterMs ?? DEFAULT_SEAL_AFTER_MS;
    this.timer = setInterval(() => {
      if (!this.sealing && this.handles === 0 && Date.now() - this.lastChange >= sealAfter) {
        void this.seal('quiet').catch(() => undefined);
      }
    }, Math.min(QUIET_CHECK_MS, sealAfter));
    this.timer.unref();
  }

  get name(): string {
    return this.info.name;
  }

  /** Group listings wait for a seal in progress, so the snapshot shows once it is done. */
  get finishing(): Promise<void> {
    return this.sealing?.catch(() => undefined) ?? Promise.resolve();
  }

  private static writerOptions(ctx: MountContext, time?: number): SnapshotWriterOptions {
    return { codec: ctx.codec, pool: ctx.pool, time, cryptMode: ctx.crypt ? 'encrypt' : 'none', crypt: ctx.crypt, threadPoolDigest: true };
  }

  /** `mkdir NAME` in a group: EBUSY when the group has a writer already (here or in another process). */
  static async begin(ctx: MountContext, store: OpenStore, group: GroupRef, name: string, mode: number): Promise<StagingSnapshot> {
    const kind = name.endsWith('.pxar') ? 'pxar' : 'staging';
    if (kind === 'pxar') pxarBase(name);
    const key = store.ds.groupPath(group);
    if (store.writers.has(key)) throw new PbsError('EBUSY', `a write into this group is in progress (${store.writers.get(key)!.name})`, { path: key });
    store.writers.set(key, { name, finishing: Promise.resolve() });
    let writer: SnapshotWriter | undefined;
    let stateDir: string | undefined;
    try {
      const last = await store.ds.lastFinishedSnapshot(group);
      const time = Math.max(Math.floor(Date.now() / 1000), last ? last.ref.time + 1 : 0);
      writer = await SnapshotWriter.begin(store.ds, group, StagingSnapshot.writerOptions(ctx, time));
      stateDir = stageDir(store.ds, writer.ref);
      await rm(stateDir, { recursive: true, force: true });
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      const state = await StagingState.open(join(stateDir, 'state'));
      const info: StagingInfo = { ns: [...writer.ref.ns], type: writer.ref.type, id: writer.ref.id, time: writer.ref.time, name, kind };
      await state.writeInfo(info);
      const spool = Spool.open(join(stateDir, 'spool'));
      let s!: StagingSnapshot;
      const tree = StagedTree.create(treeOwner(ctx, () => s), state, spool, kind === 'staging', mode);
      s = new StagingSnapshot(ctx, store, info, writer, state, tree, stateDir, []);
      store.writers.set(key, s);
      ctx.log.info(`staging snapshot ${name}: new snapshot ${writer.dir}, state in ${stateDir}`);
      return s;
    } catch (e) {
      store.writers.delete(key);
      await writer?.abort();
      if (stateDir) await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** After a daemon crash: the staged snapshot as its state holds it (files still open at the crash are dropped). */
  static async resume(ctx: MountContext, store: OpenStore, stateDir: string, state: StagingState, loaded: LoadedState, writer: SnapshotWriter): Promise<StagingSnapshot> {
    const spool = Spool.open(join(stateDir, 'spool'));
    let s!: StagingSnapshot;
    const { tree, dropped } = StagedTree.restore(treeOwner(ctx, () => s), state, spool, loaded.info.kind === 'staging', loaded.inodes, loaded.entries);
    s = new StagingSnapshot(ctx, store, loaded.info, writer, state, tree, stateDir, loaded.archives);
    await state.flush();
    store.writers.set(store.ds.groupPath(writer.ref), s);
    ctx.log.info(`resumed staging snapshot ${loaded.info.name} (${writer.dir}) after a daemon crash: ${tree.inodes.size} entries kept, ${dropped} unfinished dropped`);
    return s;
  }

  assertOpen(): void {
    if (this.sealing) throw new ErrnoError(EROFS, `${this.name} is sealed`);
  }

  touch(): void {
    this.lastChange = Date.now();
  }

  opened(): void {
    this.handles++;
    this.touch();
  }

  released(): void {
    this.handles--;
    this.touch();
  }

  fileClosed(id: number): void {
    if (this.sealing) return;
    const root = this.tree.archiveOf(id);
    if (root === undefined) return;
    let stream = this.streams.get(root);
    if (!stream) {
      const name = this.info.kind === 'pxar' ? this.name : `${this.name}/${this.tree.inode(root).name}`;
      stream = new ClosedFilesStream(this.tree, name, this.writer, new BuzhashChunker(PXAR_CHUNK_AVG), this.ctx.log);
      this.streams.set(root, stream);
    }
    stream.closed(id);
  }

  image(name: string): StagedImage | undefined {
    return this.images.get(name);
  }

  imageEntries(): Array<[string, MountNode]> {
    return [...this.images];
  }

  /** `*.img` in a staging snapshot: an image archive, stored as it is written and finished at its last close. */
  async createImage(name: string): Promise<WriteHandle> {
    this.assertOpen();
    if (this.images.has(name) || this.tree.inode(ROOT_ID).children!.has(name)) throw new ErrnoError(Errno.EEXIST, `${name} exists`);
    const archive = imageArchive(name);
    await this.writer.previousIndex(archive);
    const img = new StagedImage(this, name, new ImageIngest(this.writer, archive, this.store.chunks, Math.max(4, this.ctx.pool.capacity * 2)));
    this.images.set(name, img);
    this.touch();
    return img.openWrite();
  }

  /** An image's last close: its index is written now and remembered in the state. */
  async imageFinished(a: FinishedArchive): Promise<void> {
    this.state.putArchive(a);
    await this.state.flush();
  }

  imageFailed(name: string): void {
    this.images.delete(name);
  }

  /**
   * Encodes the pxar trees, writes the blobs and the manifest. EBUSY while a file is open; a failure discards the
   * staged snapshot (logged) and reaches the caller.
   */
  async seal(why: 'request' | 'quiet'): Promise<void> {
    // close() returns before the kernel's release reaches us: a seal right after a copy waits a moment for it.
    for (let waited = 0; !this.sealing && this.handles > 0 && waited < RELEASE_WAIT_MS; waited += 20) await new Promise((r) => setTimeout(r, 20));
    if (this.sealing) return this.sealing;
    if (this.handles > 0) throw new PbsError('EBUSY', `${this.name} has open files`);
    this.sealing = this.doSeal(why);
    return this.sealing;
  }

  private async doSeal(why: string): Promise<void> {
    clearInterval(this.timer);
    const root = this.tree.inode(ROOT_ID);
    try {
      await this.state.flush();
      let entries = 0;
      let placed = 0;
      const trees = this.info.kind === 'pxar' ? [[this.info.name, ROOT_ID] as const] : [...root.children!].filter(([, id]) => this.tree.inode(id).children);
      for (const [name, id] of [...trees].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])))) {
        const base = pxarBase(name);
        const meta = await this.writer.openDynamicArchive(`${base}.mpxar.didx`, new BuzhashChunker(PXAR_CHUNK_AVG));
        const payload = await this.writer.openDynamicArchive(`${base}.ppxar.didx`, new BuzhashChunker(PXAR_CHUNK_AVG));
        const streamed = await this.streams.get(id)?.finish();
        const ahead = streamed && { offsetOf: streamed.offsetOf, placer: new PayloadPlacer(streamed.source, payload, { counted: true, rewriteInjected: true }) };
        const done = await encodeStagedTree(this.tree, id, meta, payload, ahead);
        entries += done.entries;
        placed += done.placed;
        await meta.close();
        await payload.close();
      }
      if (this.info.kind === 'staging') {
        for (const [name, id] of root.children!) {
          const i = this.tree.inode(id);
          if ((i.mode & S_IFMT) !== S_IFREG) continue;
          await this.writer.addBlob(blobArchive(name), readExtents(this.tree.spool, i.extents, i.size, 0, i.size));
        }
      }
      await this.writer.finish();
      this.ctx.log.info(`sealed staging snapshot ${this.name} (${why}) as ${this.writer.dir}: ${entries} pxar entries (${placed} files stored as they closed), ${this.images.size} images`);
    } catch (e) {
      const empty = root.children!.size === 0 && this.images.size === 0;
      if (empty) this.ctx.log.info(`staging snapshot ${this.name} is empty: discarded (${why})`);
      else this.ctx.log.error(`sealing staging snapshot ${this.name} failed, discarded: ${(e as Error).message}`);
      await this.writer.abort();
      if (!empty || why === 'request') throw e;
    } finally {
      await this.cleanup();
    }
  }

  /** `rmdir` of the staging directory (empty) or of its container: drops everything staged. */
  async discard(why: string): Promise<void> {
    if (this.sealing) throw new ErrnoError(EROFS, `${this.name} is sealed`);
    if (this.handles > 0) throw new PbsError('EBUSY', `${this.name} has open files`);
    this.sealing = (async () => {
      clearInterval(this.timer);
      await this.writer.abort();
      await this.cleanup();
      this.ctx.log.info(`discarded staging snapshot ${this.name} (${why})`);
    })();
    return this.sealing;
  }

  private async cleanup(): Promise<void> {
    // Streams not sealed (a removed archive directory, a failed seal, a discard): their chunks are left to GC.
    await Promise.allSettled([...this.streams.values()].map((s) => s.abort()));
    this.tree.spool.close();
    await this.state.close().catch(() => undefined);
    await rm(this.stateDir, { recursive: true, force: true }).catch(() => undefined);
    const key = this.store.ds.groupPath(this.writer.ref);
    if (this.store.writers.get(key) === this) this.store.writers.delete(key);
  }
}

/** The staging directory (or the `NAME.pxar` directory) as listed in the group. */
export class StagingRoot extends StagedNode {
  constructor(private readonly s: StagingSnapshot) {
    super(s.tree, ROOT_ID);
  }

  override get readdir(): MountNode['readdir'] {
    const base = super.readdir!;
    return async () => [...(await base()), ...this.s.imageEntries()];
  }

  override get lookup(): MountNode['lookup'] {
    const base = super.lookup!;
    return (name) => this.s.image(name) ?? base(name);
  }

  override create(name: string, mode: number): Maybe<WriteHandle> {
    if (this.s.info.kind === 'staging' && name.endsWith('.img')) return this.s.createImage(name);
    if (this.s.image(name)) throw new ErrnoError(Errno.EEXIST, `${name} exists`);
    // Names that cannot become an archive are refused now, not when sealing.
    if (this.s.info.kind === 'staging') blobArchive(name);
    return super.create(name, mode);
  }

  override mkdir(name: string, mode: number): void {
    if (this.s.info.kind === 'staging' && name.endsWith('.pxar')) pxarBase(name);
    return super.mkdir(name, mode);
  }

  /** Setting user.pbsfs.seal seals (and waits for it); everything else is a staged xattr of the root. */
  override setxattr(name: string, value: Uint8Array, flags: number): Maybe<boolean> {
    if (name === SEAL_XATTR) return this.s.seal('request').then(() => false);
    return super.setxattr(name, value, flags);
  }

  override unlink(name: string): void {
    if (this.s.image(name)) throw new ErrnoError(Errno.EPERM, `${name}: a staged image cannot be removed; rmdir the staging directory to drop it all`);
    return super.unlink(name);
  }

  override rename(name: string, newParent: MountNode, newName: string): void {
    if (this.s.image(name) || this.s.image(newName)) throw new ErrnoError(Errno.EPERM, 'staged images cannot be renamed');
    if (this.s.info.kind === 'staging' && newParent === this) {
      if (newName.endsWith('.pxar')) pxarBase(newName);
      else blobArchive(newName);
    }
    return super.rename(name, newParent, newName);
  }
}

/** An image in a staging snapshot (while written, and once finished). */
class StagedImage implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  private handles = 0;
  private finishing?: Promise<void>;
  private finalSize?: number;
  private readonly createdMs = Date.now();

  constructor(
    private readonly s: StagingSnapshot,
    readonly name: string,
    private readonly ingest: ImageIngest | undefined,
  ) {}

  /** One finished before a daemon crash: only its size is known here. */
  static finished(s: StagingSnapshot, name: string, size: number): StagedImage {
    const img = new StagedImage(s, name, undefined);
    img.finalSize = size;
    img.finishing = Promise.resolve();
    return img;
  }

  async stat(): Promise<NodeStat> {
    return {
      mode: S_IFREG | 0o644, uid: 0, gid: 0, size: this.finalSize ?? this.ingest?.currentSize ?? 0, nlink: 1,
      ino: this.s.ctx.inodes.get(`${this.s.key}:img:${this.name}`), rdev: 0, mtime: msTimestamp(this.createdMs),
    };
  }

  get read(): MountNode['read'] {
    const ingest = this.ingest;
    return ingest && (async (offset, length) => ingest.read(offset, length));
  }

  async setattr(): Promise<void> {
    this.s.assertOpen();
  }

  async openWrite(): Promise<WriteHandle> {
    this.s.assertOpen();
    const ingest = this.ingest;
    if (!ingest || this.finishing) throw new ErrnoError(EROFS, `${this.name} is finished (an image is written in one go)`);
    this.handles++;
    this.s.opened();
    let released = false;
    return {
      node: this,
      write: (data, offset) => {
        this.s.touch();
        return ingest.write(data, offset);
      },
      read: (offset, length) => ingest.read(offset, length),
      truncate: (size) => ingest.truncate(size),
      flush: () => ingest.flush(),
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (--this.handles === 0) await this.finish(ingest);
        } finally {
          this.s.released();
        }
      },
    };
  }

  private finish(ingest: ImageIngest): Promise<void> {
    this.finishing = (async () => {
      try {
        const closed = await ingest.finish();
        this.finalSize = ingest.currentSize;
        await this.s.imageFinished({ filename: ingest.archiveName, size: closed.size, csum: digestToHex(closed.csum) });
      } catch (e) {
        this.s.ctx.log.error(`staging snapshot ${this.s.name}: image ${this.name} dropped: ${(e as Error).message}`);
        await ingest.discard();
        this.s.imageFailed(this.name);
        throw e;
      }
    })();
    return this.finishing;
  }
}
