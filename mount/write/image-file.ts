// A regular file created in a group directory: a new snapshot (time = now) with one image archive, finished when
// the last handle on it is released. One writer per group; the file is listed in the group until it is finished.
import { validateArchiveName } from '../../src/datastore/names.js';
import { PbsError } from '../../src/errors.js';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import type { GroupRef } from '../../src/types.js';
import { LIVE_TTL_MS, msTimestamp, type MountNode, type NodeStat, S_IFREG, type WriteHandle } from '../node.js';
import type { MountContext, OpenStore } from '../stores.js';
import { ImageIngest } from './image-ingest.js';
import { forgetWrite, recordWrite } from './write-journal.js';

/** `disk.raw` → `disk.raw.img.fidx`, `disk.img` → `disk.img.fidx` (issue 5). */
const RELEASE_WAIT_MS = 2000;

export function imageArchiveName(fileName: string): string {
  const base = fileName.endsWith('.img') ? fileName : `${fileName}.img`;
  validateArchiveName(`${base}.fidx`);
  return `${base}.fidx`;
}

export class ImageFileNode implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  private handles = 0;
  private finished?: Promise<void>;
  private readonly createdMs = Date.now();
  /** Flushed (closed once) and not written since. */
  private flushed = false;
  private releaseWaiters: Array<() => void> = [];

  private constructor(
    private readonly ctx: MountContext,
    private readonly store: OpenStore,
    private readonly group: GroupRef,
    readonly name: string,
    private readonly ingest: ImageIngest,
    private readonly writer: SnapshotWriter,
  ) {}

  /** Starts the snapshot; EBUSY when the group has a writer already (here or in another process). */
  static async begin(ctx: MountContext, store: OpenStore, group: GroupRef, name: string): Promise<ImageFileNode> {
    const key = store.ds.groupPath(group);
    if (store.writers.has(key)) throw new PbsError('EBUSY', `a write into this group is in progress (${store.writers.get(key)!.name})`, { path: key });
    const archive = imageArchiveName(name);
    const placeholder = { name, finishing: Promise.resolve() };
    store.writers.set(key, placeholder);
    try {
      const last = await store.ds.lastFinishedSnapshot(group);
      // Two copies within one second still get distinct, increasing snapshot times.
      const time = Math.max(Math.floor(Date.now() / 1000), last ? last.ref.time + 1 : 0);
      const writer = await SnapshotWriter.begin(store.ds, group, {
        codec: ctx.codec, pool: ctx.pool, time, cryptMode: ctx.crypt ? 'encrypt' : 'none', crypt: ctx.crypt, threadPoolDigest: true,
      });
      await recordWrite(store.ds, writer.ref).catch(async (e: unknown) => {
        await writer.abort();
        throw e;
      });
      await writer.previousIndex(archive);
      const ingest = new ImageIngest(writer, archive, store.chunks, Math.max(4, ctx.pool.capacity * 2));
      const node = new ImageFileNode(ctx, store, group, name, ingest, writer);
      store.writers.set(key, node);
      ctx.log.info(`write ${name}: new snapshot ${writer.dir}`);
      return node;
    } catch (e) {
      store.writers.delete(key);
      throw e;
    }
  }

  /**
   * Resolves once the snapshot is finished or discarded, so `cp` then `ls` shows it. close() returns before the
   * kernel's release reaches us: after a flush with no write since, listings wait a moment for that release.
   */
  get finishing(): Promise<void> {
    if (this.finished) return this.finished;
    if (!this.flushed) return Promise.resolve();
    return new Promise<void>((res) => {
      const t = setTimeout(res, RELEASE_WAIT_MS);
      this.releaseWaiters.push(() => {
        clearTimeout(t);
        res();
      });
    });
  }

  async stat(): Promise<NodeStat> {
    if (this.finished) throw new PbsError('ENOENT', `${this.name} was finished as a snapshot`);
    return { mode: S_IFREG | 0o644, uid: 0, gid: 0, size: this.ingest.currentSize, nlink: 1, ino: this.ctx.inodes.get(this.writer.dir), rdev: 0, mtime: msTimestamp(this.createdMs) };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.ingest.read(offset, length);
  }

  async truncate(size: number): Promise<void> {
    this.assertOpen();
    await this.ingest.truncate(size);
  }

  /** Attributes of an image are not kept (an image archive has none): accepted so `cp -p` works. */
  async setattr(): Promise<void> {
    this.assertOpen();
  }

  async openWrite(): Promise<WriteHandle> {
    this.assertOpen();
    this.handles++;
    let released = false;
    return {
      node: this,
      write: (data, offset) => {
        this.flushed = false;
        return this.ingest.write(data, offset);
      },
      read: (offset, length) => this.ingest.read(offset, length),
      truncate: (size) => this.ingest.truncate(size),
      flush: async () => {
        await this.ingest.flush();
        this.flushed = true;
      },
      release: async () => {
        if (released) return;
        released = true;
        if (--this.handles === 0) await this.finish();
      },
    };
  }

  private assertOpen(): void {
    if (this.finished) throw new PbsError('EBUSY', `${this.name} is being finished as a snapshot`);
  }

  private finish(): Promise<void> {
    const key = this.store.ds.groupPath(this.group);
    this.finished = (async () => {
      try {
        await this.ingest.finish();
        await this.writer.finish();
        this.ctx.log.info(`write ${this.name}: finished snapshot ${this.writer.dir} (${this.ingest.currentSize} bytes)`);
      } catch (e) {
        this.ctx.log.error(`write ${this.name}: snapshot discarded: ${(e as Error).message}`);
        await this.ingest.discard();
        await this.writer.abort();
        throw e;
      } finally {
        await forgetWrite(this.store.ds, this.writer.ref).catch(() => undefined);
        this.store.writers.delete(key);
      }
    })();
    this.finished.catch(() => undefined);
    for (const wake of this.releaseWaiters.splice(0)) void this.finished.finally(wake).catch(() => undefined);
    return this.finished;
  }
}
