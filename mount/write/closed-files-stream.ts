// One staged pxar archive's file payloads stored as the files close: each closed file goes, as a PAYLOAD item
// (spec §8.7), into a payload stream of its own whose chunks reach the store at once, in close order. Sealing
// encodes the archive in name order and references a file's bytes there by injecting those chunks (PayloadPlacer,
// like metadata change detection) when the file is unchanged since; everything else is read from the spool then.
// That pays off when files close in archive order (tar -x of a name-sorted tar, files copied one at a time in name
// order); writers in another order (cp -a follows the source's inode order, rsync a directory's files before its
// subdirectories) would only pay twice, so streaming stops once the close order strays from the archive order.
import type { Chunker } from '../../src/chunker/chunker.js';
import type { DynamicArchiveWriter } from '../../src/backup/dynamic-archive-writer.js';
import { CHUNK_PADDING_THRESHOLD, PAYLOAD_HEADER } from '../../src/backup/payload-placer.js';
import { PXAR_CHUNK_AVG } from '../../src/backup/pxar-backup.js';
import { walkOrder } from '../../src/pxar/names.js';
import type { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import type { IndexReader } from '../../src/io/index-reader.js';
import { PXAR_PAYLOAD, encodeHeader } from '../../src/pxar/format.js';
import type { Logger } from '../log.js';
import { S_IFMT, S_IFREG } from '../node.js';
import { type Extent, extentContents } from './spool.js';
import type { StagedTree } from './staged-tree.js';
import type { StagedInode } from './staging-state.js';

/** File bytes go from the spool to the stream in pieces of this size. */
const SCRATCH_SIZE = 1024 * 1024;
/** The close order is judged once this much was streamed. */
const JUDGE_AFTER = 8 * 1024 * 1024;
/**
 * What one file out of archive order costs the seal, at least: the placed run breaks there, and about half a chunk
 * is padding or written again (a writer that visits directories in another order breaks it once per directory).
 */
const STRAY_COST = PXAR_CHUNK_AVG / 2;

/** Where a closed file's PAYLOAD item lies in the stream, and the file as it was then. */
interface Streamed {
  offset: number;
  size: number;
  extents: Extent[];
}

/** The payloads stored ahead, for sealing. */
export interface ClosedPayloads {
  /** The stream's chunks. */
  source: IndexReader;
  /** Where the file's PAYLOAD item starts in `source`, if its bytes there are still its contents. */
  offsetOf(i: StagedInode): number | undefined;
}

export class ClosedFilesStream {
  private readonly streamed = new Map<number, Streamed>();
  /** Closed files waiting to be stored (a file closed twice meanwhile is stored once, as it is then). */
  private readonly queued = new Set<number>();
  private work: Promise<void> = Promise.resolve();
  /** Why nothing more is streamed. */
  private stopped?: string;
  private failed = false;
  /** The last two files queued: whether they are in archive order is judged one close later (rsync renames then). */
  private prev?: number;
  private next?: number;
  private prevPath?: Uint8Array;
  private bytes = 0;
  private strayBytes = 0;
  private readonly scratch = new Uint8Array(SCRATCH_SIZE);
  /** Until the stream ends: then its chunk buffers go (a stream stopped early holds no memory until the seal). */
  private writer?: DynamicArchiveWriter<IndexReader>;
  /** The stream's chunks, once it ended. */
  private source?: IndexReader;

  constructor(
    private readonly tree: StagedTree,
    private readonly name: string,
    session: SnapshotWriter,
    chunker: Chunker,
    private readonly log: Logger,
  ) {
    this.writer = session.openChunkStream(`${name} (closed files)`, chunker);
  }

  /** The file `id` of this archive was closed after writing: its payload is queued. */
  closed(id: number): void {
    if (this.stopped) return;
    const i = this.tree.inodes.get(id);
    if (!i || (i.mode & S_IFMT) !== S_IFREG || this.queued.has(id) || this.offsetOf(i) !== undefined) return;
    this.judgeOrder(id, PAYLOAD_HEADER + i.size);
    if (this.stopped) return;
    this.queued.add(id);
    this.work = this.work.then(() => this.store(id)).catch((e: Error) => {
      this.failed = true;
      this.stop(`storing a closed file failed (the seal reads it again): ${e.message}`);
    });
  }

  private judgeOrder(id: number, bytes: number): void {
    if (this.prev !== undefined && this.next !== undefined) {
      // prev's path was taken as next's in the last judgement (after its rename, if it had one).
      const a = this.prevPath;
      const b = this.tree.archivePath(this.next);
      if (!a || !b || walkOrder(a, b) >= 0) this.strayBytes += Math.max(STRAY_COST, PAYLOAD_HEADER + (this.tree.inodes.get(this.next)?.size ?? 0));
      this.prevPath = b;
    } else if (this.next !== undefined) {
      this.prevPath = this.tree.archivePath(this.next);
    }
    this.prev = this.next;
    this.next = id;
    this.bytes += bytes;
    if (this.bytes > JUDGE_AFTER && this.strayBytes / this.bytes > CHUNK_PADDING_THRESHOLD) {
      this.stop('files close in another order than the archive lists them: the rest is stored when sealing');
    }
  }

  private stop(why: string): void {
    if (this.stopped) return;
    this.stopped = why;
    this.log.info(`${this.name}: ${why}`);
    this.work = this.work.then(() => this.end());
  }

  /** Ends the stream after what is queued: its last chunk stored, or everything dropped after a failure. */
  private async end(): Promise<void> {
    const w = this.writer;
    if (!w) return;
    this.writer = undefined;
    if (this.failed) return w.abort();
    try {
      this.source = await w.close();
    } catch (e) {
      this.failed = true;
      this.log.info(`${this.name}: storing a closed file failed (the seal reads it again): ${(e as Error).message}`);
    }
  }

  private async store(id: number): Promise<void> {
    this.queued.delete(id);
    const w = this.writer;
    const i = this.tree.inodes.get(id);
    // Open again meanwhile: its next close queues it again.
    if (!w || this.failed || !i || this.tree.isOpen(id)) return;
    const size = i.size;
    const extents = i.extents.map((e) => [...e] as Extent);
    const offset = w.position;
    await w.write(encodeHeader(PXAR_PAYLOAD, size));
    // The spool only ever grows, so these extents keep their bytes even if the file is written again meanwhile.
    for (const piece of extentContents(this.tree.spool, extents, size, this.scratch)) await w.write(piece);
    this.streamed.set(id, { offset, size, extents });
  }

  /** Sealing: the stream is complete; undefined when storing it failed. */
  async finish(): Promise<ClosedPayloads | undefined> {
    this.stopped ??= 'sealing';
    this.work = this.work.then(() => this.end());
    await this.work;
    const source = this.source;
    return this.failed || !source ? undefined : { source, offsetOf: (i) => this.offsetOf(i) };
  }

  /** The archive is not sealed (discarded, removed, or its seal failed): chunks stored so far are left to GC. */
  async abort(): Promise<void> {
    this.stopped ??= 'discarded';
    await this.work;
    this.failed = true;
    await this.end();
  }

  private offsetOf(i: StagedInode): number | undefined {
    const s = this.streamed.get(i.id);
    if (!s || s.size !== i.size || s.extents.length !== i.extents.length) return undefined;
    for (let k = 0; k < s.extents.length; k++) {
      const a = s.extents[k]!;
      const b = i.extents[k]!;
      if (a[0] !== b[0] || a[1] !== b[1] || a[2] !== b[2]) return undefined;
    }
    return s.offset;
  }
}
