// One image file being written into the mount: bytes at any offset become fixed 4 MiB chunks (spec §3.1), each
// stored as soon as it is complete. Incomplete chunks stay in memory up to a few, then wait in a sparse spill file
// in the (unlisted) snapshot directory; unwritten ranges are zeros. finish() stores the rest and writes the index.
import { type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClosedIndex } from '../../src/backup/index-writer.js';
import type { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { PbsError, withPath } from '../../src/errors.js';
import { FIXED_CHUNK_SIZE } from '../../src/format/fixed-index.js';
import { ChunkBuffers } from '../../src/io/chunk-buffers.js';
import type { ChunkReader } from '../../src/io/chunk-reader.js';
import type { Digest } from '../../src/types.js';
import { CoveredRanges } from './covered-ranges.js';

const CHUNK = FIXED_CHUNK_SIZE;
/** Incomplete chunks kept in memory; more are spilled to disk (random writers, many files in parallel). */
const MAX_RESIDENT = 6;

interface Pending {
  /** Chunk bytes while resident; undefined once spilled. */
  buf?: Uint8Array;
  ranges: CoveredRanges;
}

export class ImageIngest {
  private size = 0;
  private readonly digests: Array<Digest | undefined> = [];
  /** Length each stored chunk was stored with: a short last chunk stored at a close may not be the last later. */
  private readonly storedLen: number[] = [];
  /** Chunks not yet stored (or changed again after they were), resident ones in least-recently-used order. */
  private readonly pending = new Map<number, Pending>();
  private resident = 0;
  /** Stores in flight by slot. */
  private readonly storing = new Map<number, Promise<void>>();
  private readonly zeroDigests = new Map<number, Promise<Digest>>();
  private spill?: FileHandle;
  /** The first failed store: every later call reports it (ENOSPC, EIO reach the writer). */
  private failed?: unknown;
  private queue: Promise<unknown> = Promise.resolve();
  /** Chunk buffers, used again when the writer gives them back (chunks that needed no write) or they were spilled. */
  private readonly chunkBuffers = new ChunkBuffers();

  constructor(
    private readonly writer: SnapshotWriter,
    readonly archiveName: string,
    /** Reads back chunks that were stored and then written again. */
    private readonly reader: ChunkReader,
    private readonly maxInFlight: number,
  ) {}

  get currentSize(): number {
    return this.size;
  }

  private get spillPath(): string {
    return join(this.writer.dir, `.${this.archiveName}.spill`);
  }

  /** Operations run one at a time: each may move a chunk between memory, spill file and store. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.failed) throw this.failed;
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `data` stays the caller's and unchanged until this settles (the FUSE binding gives every request its own copy). */
  write(data: Uint8Array, offset: number): Promise<number> {
    return this.serial(async () => {
      let pos = 0;
      while (pos < data.byteLength) {
        const at = offset + pos;
        const slot = Math.floor(at / CHUNK);
        const within = at - slot * CHUNK;
        const n = Math.min(data.byteLength - pos, CHUNK - within);
        const p = await this.load(slot);
        p.buf!.set(data.subarray(pos, pos + n), within);
        const wasComplete = p.ranges.covers(CHUNK);
        p.ranges.add(within, within + n);
        pos += n;
        this.size = Math.max(this.size, at + n);
        // Stored as soon as its last byte arrives; a stored chunk written again waits for finish().
        if (!wasComplete && p.ranges.covers(CHUNK)) await this.store(slot, p.buf!);
        else await this.limitResident(slot);
      }
      return data.byteLength;
    });
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.serial(async () => {
      const end = Math.min(this.size, offset + length);
      const out = new Uint8Array(Math.max(0, end - offset));
      for (let at = offset; at < end; ) {
        const slot = Math.floor(at / CHUNK);
        const within = at - slot * CHUNK;
        const n = Math.min(end - at, CHUNK - within);
        const bytes = await this.peek(slot);
        if (bytes) out.set(bytes.subarray(within, within + n), at - offset);
        at += n;
      }
      return out;
    });
  }

  truncate(newSize: number): Promise<void> {
    return this.serial(async () => {
      if (newSize < this.size) {
        const keep = Math.ceil(newSize / CHUNK);
        for (const slot of [...this.pending.keys()]) if (slot >= keep) this.drop(slot);
        await Promise.all([...this.storing].filter(([s]) => s >= keep).map(([, p]) => p.catch(() => undefined)));
        this.digests.length = Math.min(this.digests.length, keep);
        this.storedLen.length = Math.min(this.storedLen.length, keep);
        const tail = newSize % CHUNK;
        if (tail && this.hasData(keep - 1)) {
          // The cut chunk keeps its head; past the end of a file there are only zeros.
          const p = await this.load(keep - 1);
          p.buf!.fill(0, tail);
          p.ranges.clip(tail);
          await this.limitResident(keep - 1);
        }
      }
      this.size = newSize;
    });
  }

  /**
   * close(): stores the chunks still incomplete too (the last one, ranges not written yet as zeros) and waits for
   * every store, so that a failing one (ENOSPC) fails the close and not only the snapshot after the writer has gone.
   * A later write to such a chunk stores it again.
   */
  flush(): Promise<void> {
    return this.serial(async () => {
      for (const slot of [...this.pending.keys()]) await this.storeAsIs(slot);
      await Promise.all(this.storing.values());
      if (this.failed) throw this.failed;
    });
  }

  /** Stores what is left (incomplete chunks padded with zeros, holes as zero chunks) and adds the archive. */
  finish(): Promise<ClosedIndex> {
    return this.serial(async () => {
      const slots = Math.ceil(this.size / CHUNK);
      for (let slot = 0; slot < slots; slot++) {
        if (this.pending.has(slot) || (this.hasData(slot) && this.storedLen[slot] !== this.slotLength(slot))) {
          await this.storeAsIs(slot);
        } else if (!this.digests[slot] && !this.storing.has(slot)) {
          const len = this.slotLength(slot);
          this.digests[slot] = await this.zeroDigest(len);
          this.storedLen[slot] = len;
        }
        if (this.failed) throw this.failed;
      }
      await Promise.all(this.storing.values());
      await this.closeSpill();
      const digests: Digest[] = [];
      for (let slot = 0; slot < slots; slot++) {
        const d = this.digests[slot];
        if (!d) throw new PbsError('EIO', `image chunk ${slot} was never stored`, { path: join(this.writer.dir, this.archiveName), offset: slot * CHUNK });
        digests.push(d);
      }
      return this.writer.addFixedArchiveDigests(this.archiveName, this.size, digests);
    });
  }

  /** Drops spill state (the snapshot directory itself is removed by the writer's abort). */
  async discard(): Promise<void> {
    await this.queue;
    await Promise.allSettled(this.storing.values());
    await this.closeSpill();
  }

  private async closeSpill(): Promise<void> {
    if (!this.spill) return;
    await this.spill.close().catch(() => undefined);
    this.spill = undefined;
    await rm(this.spillPath, { force: true });
  }

  /** Bytes of a slot in the image as it is now: CHUNK but for the last one. */
  private slotLength(slot: number): number {
    return Math.min(CHUNK, this.size - slot * CHUNK);
  }

  /** Stores a slot's current bytes (unwritten ranges as zeros). */
  private async storeAsIs(slot: number): Promise<void> {
    const len = this.slotLength(slot);
    if (len <= 0) return;
    const p = await this.load(slot);
    await this.store(slot, len === CHUNK ? p.buf! : p.buf!.slice(0, len));
  }

  private hasData(slot: number): boolean {
    return this.pending.has(slot) || this.storing.has(slot) || this.digests[slot] !== undefined;
  }

  private drop(slot: number): void {
    const p = this.pending.get(slot);
    if (p?.buf) this.resident--;
    this.pending.delete(slot);
  }

  /** The chunk's bytes in memory for change: from memory, the spill file, the store, or zeros. */
  private async load(slot: number): Promise<Pending> {
    let p = this.pending.get(slot);
    if (p) {
      this.pending.delete(slot); // re-inserted last: most recently used
      this.pending.set(slot, p);
      if (!p.buf) {
        p.buf = await this.readSpill(slot);
        this.resident++;
      }
      return p;
    }
    const stored = await this.storedBytes(slot);
    p = { buf: this.zeroedBuffer(), ranges: new CoveredRanges() };
    if (stored) {
      p.buf!.set(stored);
      p.ranges.add(0, CHUNK);
    }
    this.pending.set(slot, p);
    this.resident++;
    return p;
  }

  /** Current bytes of a slot for reading, without changing where it lives; undefined = zeros. */
  private async peek(slot: number): Promise<Uint8Array | undefined> {
    const p = this.pending.get(slot);
    if (p) return p.buf ?? this.readSpill(slot);
    return this.storedBytes(slot);
  }

  private async storedBytes(slot: number): Promise<Uint8Array | undefined> {
    await this.storing.get(slot);
    if (this.failed) throw this.failed;
    const d = this.digests[slot];
    return d ? this.reader.read(d, this.storedLen[slot]) : undefined;
  }

  /** Spills the least recently used incomplete chunks beyond the memory budget (never `keep`). */
  private async limitResident(keep: number): Promise<void> {
    for (const [slot, p] of this.pending) {
      if (this.resident <= MAX_RESIDENT) return;
      if (slot === keep || !p.buf) continue;
      await this.writeSpill(slot, p.buf);
      this.chunkBuffers.giveBack(p.buf);
      p.buf = undefined;
      this.resident--;
    }
  }

  /** A chunk buffer of zeros (unwritten ranges of an image read as zeros). */
  private zeroedBuffer(): Uint8Array {
    return this.chunkBuffers.take(CHUNK).fill(0);
  }

  private async spillFile(): Promise<FileHandle> {
    if (this.spill) return this.spill;
    try {
      const fh = await open(this.spillPath, 'w+', 0o600);
      this.spill = fh;
      return fh;
    } catch (e) {
      throw withPath(e, this.spillPath);
    }
  }

  private async writeSpill(slot: number, buf: Uint8Array): Promise<void> {
    const fh = await this.spillFile();
    await fh.write(buf, 0, CHUNK, slot * CHUNK).catch((e) => Promise.reject(withPath(e, this.spillPath)));
  }

  private async readSpill(slot: number): Promise<Uint8Array> {
    const fh = await this.spillFile();
    const buf = this.zeroedBuffer();
    // Sparse file: a short read means zeros (never past the chunk, the file is at least this long).
    await fh.read(buf, 0, CHUNK, slot * CHUNK).catch((e) => Promise.reject(withPath(e, this.spillPath)));
    return buf;
  }

  /** Hands the bytes to the chunk writer (they move to a worker); waits when too many stores are in flight. */
  private async store(slot: number, data: Uint8Array): Promise<void> {
    this.drop(slot);
    this.digests[slot] = undefined;
    this.storedLen[slot] = data.byteLength;
    const prev = this.storing.get(slot);
    if (prev) await prev.catch(() => undefined);
    // A chunk buffer comes back from the chunk writer (after the codec worker, or at once when known): only we had it.
    // A short tail is a copy of its own and goes to the GC.
    const release = (b: Uint8Array): void => {
      if (b.byteLength === CHUNK) this.chunkBuffers.giveBackMoved(b);
    };
    const run = this.writer.chunks.add(data, false, release).then(
      (d) => {
        this.digests[slot] = d;
      },
      (e: unknown) => {
        this.failed ??= e;
      },
    );
    const tracked = run.finally(() => {
      if (this.storing.get(slot) === tracked) this.storing.delete(slot);
    });
    this.storing.set(slot, tracked);
    if (this.storing.size >= this.maxInFlight) await Promise.race(this.storing.values());
    if (this.failed) throw this.failed;
  }

  /** All-zero chunks cost one hash per length and are stored once (ranges nobody wrote). */
  private zeroDigest(len: number): Promise<Digest> {
    let d = this.zeroDigests.get(len);
    if (!d) {
      d = this.writer.chunks.add(new Uint8Array(len));
      this.zeroDigests.set(len, d);
    } else {
      void d.then(() => this.writer.chunks.noteReused(len), () => undefined);
    }
    return d;
  }
}
