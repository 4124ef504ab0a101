// Metadata change detection (spec §8.7): unchanged files reference the previous snapshot's `.ppxar` payload by
// injecting the previous chunks that hold it, instead of reading and uploading the file again.
import type { IndexReader } from '../io/index-reader.js';
import { PxarAccessor, type PxarDirectory } from '../pxar/accessor.js';
import type { PxarEncoder } from '../pxar/encoder.js';
import type { Metadata, PxarEntry } from '../pxar/format.js';
import type { PreviousPayload } from '../fs/archiver.js';
import type { EntryStat } from '../fs/scan-dir.js';
import type { DynamicArchiveWriter, InjectedChunk } from './dynamic-archive-writer.js';
import type { SnapshotWriter } from './snapshot-writer.js';

/** spec §8.7: reuse is abandoned once padding (injected bytes no file refers to) passes 10 %. */
export const CHUNK_PADDING_THRESHOLD = 0.1;
const PAYLOAD_HEADER = 16;
const DIR_CACHE = 64;

/** A run of consecutive previous chunks that will be injected together; files in it are already referenced. */
interface Run {
  first: number;
  last: number;
  /** New payload position where chunk `first` will start. */
  startPos: number;
  /** End (previous-stream offset) of the last file referenced, so references stay in stream order. */
  lastEnd: number;
  used: number;
}

export class PayloadReuse {
  private run: Run | undefined;
  private injected = 0;
  private used = 0;
  private abandoned = false;
  /** Children of recently visited previous directories, by parent path. */
  private readonly dirs = new Map<string, Map<string, PxarEntry>>();
  reusedFiles = 0;

  private constructor(
    private readonly previous: PxarAccessor,
    private readonly previousPayload: IndexReader,
    private readonly payload: DynamicArchiveWriter,
  ) {}

  /** Opens the group's previous split archive `BASE.mpxar`/`.ppxar`; undefined when there is none to reuse. */
  static async open(session: SnapshotWriter, base: string, payload: DynamicArchiveWriter): Promise<PayloadReuse | undefined> {
    const meta = await session.previousArchive(`${base}.mpxar.didx`);
    const pay = await session.previousArchive(`${base}.ppxar.didx`);
    if (!meta || !pay) return undefined;
    try {
      const accessor = await PxarAccessor.open(meta.readAt, { payload: pay.readAt });
      return new PayloadReuse(accessor, pay.index, payload);
    } catch {
      return undefined; // an unreadable previous archive only costs reuse
    }
  }

  /** The archiver asks before reading a file: a hit returns where its payload will be in the new stream. */
  async lookup(path: Uint8Array, metadata: Metadata, size: number, encoder: PxarEncoder): Promise<PreviousPayload | undefined> {
    if (this.abandoned) return undefined;
    const prev = await this.previousEntry(path);
    if (!prev || prev.kind !== 'file' || prev.size !== size || prev.payloadOffset === undefined) return undefined;
    if (!sameMetadata(prev.metadata, metadata)) return undefined;
    const start = prev.payloadOffset;
    const end = start + PAYLOAD_HEADER + size;
    if (end > this.previousPayload.size) return undefined;
    const first = this.previousPayload.chunkAt(start);
    const last = this.previousPayload.chunkAt(end - 1);
    const run = this.run;
    if (!run || start < run.lastEnd || first > run.last + 1 || first < run.first) {
      await this.flush(encoder);
      this.run = { first, last, startPos: encoder.payloadPosition, lastEnd: end, used: 0 };
    } else {
      run.last = Math.max(run.last, last);
      run.lastEnd = end;
    }
    const r = this.run!;
    r.used += end - start;
    this.reusedFiles++;
    return { payloadOffset: r.startPos + (start - this.previousPayload.chunk(r.first).start) };
  }

  /**
   * Whether `path` is likely to be reused, from lstat alone (size, mode, owner, mtime), without waiting for
   * anything: a directory not looked at yet counts as "likely", so nothing is read that might not be needed.
   */
  predict(path: Uint8Array, st: EntryStat): boolean {
    if (this.abandoned) return false;
    const slash = path.lastIndexOf(0x2f);
    const children = this.dirs.get(Buffer.from(slash < 0 ? new Uint8Array(0) : path.subarray(0, slash)).toString('latin1'));
    if (!children) return true;
    const prev = children.get(Buffer.from(path.subarray(slash + 1)).toString('latin1'));
    if (!prev || prev.kind !== 'file') return false;
    const s = prev.metadata.stat;
    return prev.size === st.size && s.mode === st.mode && s.uid === st.uid && s.gid === st.gid &&
      s.mtime.secs === st.mtime.secs && s.mtime.nanos === st.mtime.nanos;
  }

  /**
   * The previous archive's entry at `path`. Files arrive directory by directory, so each previous directory is
   * read once (one goodbye-table walk) and its children are kept while the walk is in it.
   */
  private async previousEntry(path: Uint8Array): Promise<PxarEntry | undefined> {
    const slash = path.lastIndexOf(0x2f);
    const parent = slash < 0 ? new Uint8Array(0) : path.subarray(0, slash);
    const name = Buffer.from(path.subarray(slash + 1)).toString('latin1');
    const key = Buffer.from(parent).toString('latin1');
    let children = this.dirs.get(key);
    if (!children) {
      children = await this.readPreviousDir(parent).catch(() => new Map<string, PxarEntry>());
      if (this.dirs.size >= DIR_CACHE) this.dirs.delete(this.dirs.keys().next().value!);
      this.dirs.set(key, children);
    }
    return children.get(name);
  }

  private async readPreviousDir(parent: Uint8Array): Promise<Map<string, PxarEntry>> {
    const out = new Map<string, PxarEntry>();
    const dir = parent.length === 0 ? await this.previous.root() : await this.openPrevious(parent);
    if (!dir) return out;
    for await (const child of this.previous.readDir(dir, { order: 'archive' })) {
      const e = child.entry;
      out.set(Buffer.from(e.path.subarray(e.path.lastIndexOf(0x2f) + 1)).toString('latin1'), e);
    }
    return out;
  }

  private async openPrevious(path: Uint8Array): Promise<PxarDirectory | undefined> {
    const found = await this.previous.lookup(path);
    return found?.entry.kind === 'dir' ? this.previous.openDirectory(found) : undefined;
  }

  /** Places the pending run's chunks in the payload stream (before a freshly read file, and at the end). */
  async flush(encoder: PxarEncoder): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const chunks: InjectedChunk[] = [];
    let bytes = 0;
    for (let i = run.first; i <= run.last; i++) {
      const slot = this.previousPayload.chunk(i);
      chunks.push({ digest: slot.digest, size: slot.end - slot.start });
      bytes += slot.end - slot.start;
    }
    await encoder.flushPayload();
    await this.payload.inject(chunks);
    encoder.advancePayload(bytes);
    this.injected += bytes;
    this.used += run.used;
    // Past a couple of chunks, a padding ratio above the threshold means files are changing in between
    // the unchanged ones; from here on reading them is cheaper than dragging old chunks along.
    if (this.injected > 8 * 1024 * 1024 && (this.injected - this.used) / this.injected > CHUNK_PADDING_THRESHOLD) this.abandoned = true;
  }
}

/** Stat, xattrs, ACLs, fcaps and project id equal (spec §8.7: what makes a file reusable). */
export function sameMetadata(a: Metadata, b: Metadata): boolean {
  const s = a.stat;
  const t = b.stat;
  if (s.mode !== t.mode || s.flags !== t.flags || s.uid !== t.uid || s.gid !== t.gid) return false;
  if (s.mtime.secs !== t.mtime.secs || s.mtime.nanos !== t.mtime.nanos) return false;
  if (a.quotaProjectId !== b.quotaProjectId) return false;
  if (!bytesEq(a.fcaps, b.fcaps)) return false;
  if (a.xattrs.length !== b.xattrs.length) return false;
  const key = (x: { name: Uint8Array; value: Uint8Array }) => `${Buffer.from(x.name).toString('hex')}=${Buffer.from(x.value).toString('hex')}`;
  const ax = a.xattrs.map(key).sort();
  const bx = b.xattrs.map(key).sort();
  if (ax.some((v, i) => v !== bx[i])) return false;
  return JSON.stringify(a.acl, bigintSafe) === JSON.stringify(b.acl, bigintSafe);
}

function bytesEq(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
