// Random access to a pxar archive (spec §8.8): goodbye-table lookups, reading only the bytes needed.
import { PbsError } from '../errors.js';
import {
  GOODBYE_ITEM_SIZE, HEADER_SIZE, PXAR_FILENAME, PXAR_FORMAT_VERSION, PXAR_GOODBYE, PXAR_GOODBYE_TAIL_MARKER,
  PXAR_PRELUDE, copyBytes, dv, hashFilename, parseFilename, parseHeader, typeName, type PxarEntry,
} from './format.js';
import { parseGoodbyeItem, type GoodbyeItem } from './goodbye.js';
import { checkPayloadHeader, payloadContents, readContent, readEntryAt, readHeader, verifyPayloadHeader } from './decoder.js';
import { bytesEqual, joinPath, splitPath, toNameBytes } from './names.js';
import { rangePullReader, readRange, type ReadAt } from './read-at.js';
import { SeqReader } from './seq-reader.js';

export type { ReadAt } from './read-at.js';

const ROOT_PATH = new Uint8Array([0x2f]);
const CONTENT_PIECE = 1 << 20;

/** What reading a file's contents needs of its entry (a mount node keeps its entry without the path). */
export type FileFields = Pick<PxarEntry, 'kind' | 'size' | 'contentOffset' | 'payloadOffset'>;

export interface EntryRange {
  start: number;
  end: number;
}

export interface AccessorEntry {
  entry: PxarEntry;
  /**
   * As the reference accessor computes it: from just after the FILENAME item to FILENAME + goodbye size.
   * The root spans the whole archive. (For fresh v2 files `end` includes the payload length, spec §8.6.)
   */
  range: EntryRange;
  /** Position in the parent's goodbye table; null for the root and for followed hardlinks. */
  goodbyeIndex: number | null;
}

export interface PxarDirectory {
  entry: AccessorEntry;
  goodbyeStart: number;
  /** Number of children. */
  count: number;
}

export interface AccessorOptions {
  /** The `.ppxar` of a split archive; needed only for file contents. */
  payload?: ReadAt;
}

export class PxarAccessor {
  private constructor(
    private readonly archive: ReadAt,
    private readonly payload: ReadAt | undefined,
    /** 1 unified, 2 split. */
    readonly version: 1 | 2,
    readonly prelude: Uint8Array | null,
  ) {}

  /** Reads the archive start (version, prelude) to know how to decode entries. */
  static async open(archive: ReadAt, opts: AccessorOptions = {}): Promise<PxarAccessor> {
    if (archive.size < HEADER_SIZE + GOODBYE_ITEM_SIZE) throw new PbsError('ECORRUPT', `archive of ${archive.size} bytes is too small`, { offset: 0 });
    const r = new SeqReader(rangePullReader(archive, 0, archive.size));
    let h = await readHeader(r, 'first item');
    let version: 1 | 2 = 1;
    let prelude: Uint8Array | null = null;
    if (h.htype === PXAR_FORMAT_VERSION) {
      const v = dv(await readContent(r, h)).getBigUint64(0, true);
      if (v !== 2n) throw new PbsError('EUNSUPPORTED', `unsupported pxar format version ${v}`, { offset: 0 });
      version = 2;
      h = await readHeader(r, 'root entry');
      if (h.htype === PXAR_PRELUDE) prelude = copyBytes(await readContent(r, h), 0);
    }
    return new PxarAccessor(archive, opts.payload, version, prelude);
  }

  /** The root directory: its tail is the last goodbye item of the archive. */
  async root(): Promise<PxarDirectory> {
    const r = new SeqReader(rangePullReader(this.archive, 0, this.archive.size));
    let h = await readHeader(r, 'root entry');
    if (h.htype === PXAR_FORMAT_VERSION) {
      await readContent(r, h);
      h = await readHeader(r, 'root entry');
      if (h.htype === PXAR_PRELUDE) {
        await r.skip(h.fullSize - HEADER_SIZE, 'PRELUDE');
        h = await readHeader(r, 'root entry');
      }
    }
    const d = await readEntryAt(r, h, ROOT_PATH, null, this.version === 2, true);
    if (d.entry.kind !== 'dir') throw new PbsError('ECORRUPT', 'archive root is not a directory', { offset: h.pos });
    return this.openDirectory({ entry: d.entry, range: { start: 0, end: this.archive.size }, goodbyeIndex: null });
  }

  /** Locates a directory's goodbye table from the tail item in the last 24 bytes of its range. */
  async openDirectory(e: AccessorEntry): Promise<PxarDirectory> {
    if (e.entry.kind !== 'dir') throw new PbsError('EINVAL', 'not a directory');
    const { start, end } = e.range;
    const tailPos = end - GOODBYE_ITEM_SIZE;
    if (tailPos < start) throw new PbsError('ECORRUPT', 'directory range too small for a goodbye table', { offset: start });
    const tail = parseGoodbyeItem(await readRange(this.archive, tailPos, GOODBYE_ITEM_SIZE, 'goodbye tail'), 0, tailPos);
    const goodbyeStart = end - tail.size;
    if (
      tail.hash !== PXAR_GOODBYE_TAIL_MARKER || tail.size < HEADER_SIZE + GOODBYE_ITEM_SIZE ||
      (tail.size - HEADER_SIZE) % GOODBYE_ITEM_SIZE !== 0 || goodbyeStart < start || goodbyeStart - tail.offset !== start
    ) {
      throw new PbsError('ECORRUPT', 'goodbye tail item does not match its directory', { offset: tailPos });
    }
    const gh = parseHeader(await readRange(this.archive, goodbyeStart, HEADER_SIZE, 'goodbye header'), 0, goodbyeStart);
    if (gh.htype !== PXAR_GOODBYE || gh.fullSize !== tail.size) {
      throw new PbsError('ECORRUPT', `expected the GOODBYE item, found ${typeName(gh.htype)}`, { offset: goodbyeStart });
    }
    return { entry: e, goodbyeStart, count: (tail.size - HEADER_SIZE) / GOODBYE_ITEM_SIZE - 1 };
  }

  private async goodbyeItem(dir: PxarDirectory, index: number): Promise<GoodbyeItem> {
    const pos = dir.goodbyeStart + HEADER_SIZE + index * GOODBYE_ITEM_SIZE;
    return parseGoodbyeItem(await readRange(this.archive, pos, GOODBYE_ITEM_SIZE, 'goodbye item'), 0, pos);
  }

  /**
   * Children in goodbye-table (stored) order. Sibling entries must not overlap (distinct FILENAME positions, none
   * inside a sibling directory), so walking a whole tree visits every byte range once, even in a hostile archive.
   */
  /**
   * The children of `dir`: in goodbye-table order (the reference accessor's `read_dir` order), or with
   * `order: 'archive'` in the order they are stored, which reads the archive front to back (much faster
   * through a chunk cache on large directories; callers that sort anyway should use it).
   */
  async *readDir(dir: PxarDirectory, opts: { order?: 'goodbye' | 'archive' } = {}): AsyncGenerator<AccessorEntry> {
    const tablePos = dir.goodbyeStart + HEADER_SIZE;
    const table = await readRange(this.archive, tablePos, dir.count * GOODBYE_ITEM_SIZE, 'goodbye table');
    const items: GoodbyeItem[] = [];
    for (let i = 0; i < dir.count; i++) items.push(parseGoodbyeItem(table, i * GOODBYE_ITEM_SIZE, tablePos + i * GOODBYE_ITEM_SIZE));
    const starts = Float64Array.from(items, (it) => dir.goodbyeStart - it.offset).sort();
    for (let i = 1; i < starts.length; i++) {
      if (starts[i] === starts[i - 1]) throw new PbsError('ECORRUPT', 'two goodbye items point at the same entry', { offset: tablePos });
    }
    const order = items.map((_, i) => i);
    if (opts.order === 'archive') order.sort((a, b) => items[b]!.offset - items[a]!.offset); // larger distance back = earlier
    for (const i of order) {
      const child = await this.decodeChild(dir, items[i]!, i);
      if (child.entry.kind === 'dir') {
        const pos = child.entry.filenameOffset!;
        const next = firstAbove(starts, pos);
        if (next < starts.length && starts[next]! < child.range.end) {
          throw new PbsError('ECORRUPT', 'a goodbye item points inside a sibling directory', { offset: pos });
        }
      }
      yield child;
    }
  }

  /** One child by name: binary search over the hash tree, names compared on hash collisions. */
  async lookupChild(dir: PxarDirectory, name: Uint8Array | string): Promise<AccessorEntry | null> {
    const want = toNameBytes(name);
    const hash = hashFilename(want);
    const search = async (i: number): Promise<AccessorEntry | null> => {
      while (i < dir.count) {
        const item = await this.goodbyeItem(dir, i);
        if (hash < item.hash) i = 2 * i + 1;
        else if (hash > item.hash) i = 2 * i + 2;
        else {
          const e = await this.decodeChild(dir, item, i);
          if (bytesEqual(lastComponent(e.entry.path), want)) return e;
          // Equal hashes may sit in both subtrees of a collision.
          return (await search(2 * i + 1)) ?? (await search(2 * i + 2));
        }
      }
      return null;
    };
    return search(0);
  }

  /** Absolute or root-relative path lookup; null when a component is missing or not a directory. */
  async lookup(path: Uint8Array | string): Promise<AccessorEntry | null> {
    const bytes = toNameBytes(path);
    let dir = await this.root();
    let current: AccessorEntry = dir.entry;
    const parts = splitPath(bytes);
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) {
        if (current.entry.kind !== 'dir') return null;
        dir = await this.openDirectory(current);
      }
      const child = await this.lookupChild(dir, parts[i]!);
      if (child === null) return null;
      current = child;
    }
    return current;
  }

  /** Decodes the child a goodbye item points at; its range must lie inside the directory's contents. */
  async decodeChild(dir: PxarDirectory, item: GoodbyeItem, index: number): Promise<AccessorEntry> {
    const filenamePos = dir.goodbyeStart - item.offset;
    if (item.offset <= 0 || filenamePos <= dir.entry.range.start) {
      throw new PbsError('ECORRUPT', `goodbye item ${index} points outside its directory`, { offset: dir.goodbyeStart });
    }
    const end = filenamePos + item.size;
    // v2 file sizes may include their payload (spec §8.6), so only the bytes before the goodbye table are read.
    const bound = Math.min(end, dir.goodbyeStart);
    const e = await this.decodeAt(filenamePos, bound, dir.entry.entry.path);
    if (e.entry.kind === 'dir' && end > dir.goodbyeStart) {
      throw new PbsError('ECORRUPT', `goodbye item ${index} gives a directory size beyond its parent`, { offset: filenamePos });
    }
    return { entry: e.entry, range: { start: e.start, end }, goodbyeIndex: index };
  }

  /** FILENAME + entry within [filenamePos, bound). */
  private async decodeAt(filenamePos: number, bound: number, parentPath: Uint8Array): Promise<{ entry: PxarEntry; start: number }> {
    const r = new SeqReader(rangePullReader(this.archive, filenamePos, bound), 'entry', filenamePos);
    const fh = await readHeader(r, 'FILENAME');
    if (fh.htype !== PXAR_FILENAME) throw new PbsError('ECORRUPT', `expected FILENAME, found ${typeName(fh.htype)}`, { offset: filenamePos });
    const name = parseFilename(await readContent(r, fh), filenamePos);
    const start = r.position;
    const h = await readHeader(r, 'ENTRY or HARDLINK');
    const d = await readEntryAt(r, h, joinPath(parentPath, name), filenamePos, this.version === 2, true);
    return { entry: d.entry, start };
  }

  /** The file a hardlink refers to (spec §8.4: a regular file earlier in the archive). */
  async followHardlink(e: AccessorEntry): Promise<AccessorEntry> {
    const link = e.entry;
    if (link.kind !== 'hardlink' || link.filenameOffset === null) throw new PbsError('EINVAL', 'not a hardlink');
    const targetPos = link.filenameOffset - link.hardlinkOffset!;
    const slash = link.linkTarget!.lastIndexOf(0x2f);
    const parent = slash < 0 ? ROOT_PATH : joinPath(ROOT_PATH, link.linkTarget!.subarray(0, slash));
    const t = await this.decodeAt(targetPos, link.filenameOffset, parent);
    if (t.entry.kind !== 'file') {
      throw new PbsError('ECORRUPT', `hardlink points at a ${t.entry.kind}, not a regular file`, { offset: link.filenameOffset });
    }
    // Reported like the reference: the end is where the contents end (v2: relative to the PAYLOAD_REF).
    return { entry: t.entry, range: { start: t.start, end: t.entry.contentOffset! + t.entry.size! }, goodbyeIndex: null };
  }

  /** The whole contents of a file entry, streamed in pieces. */
  contents(e: AccessorEntry | PxarEntry): AsyncIterable<Uint8Array> {
    const f = fileOf(e);
    if (this.version === 2) {
      if (!this.payload) throw new PbsError('EINVAL', 'split archive: no payload (.ppxar) reader given');
      return payloadContents(this.payload, f.payloadOffset!, f.size!);
    }
    return this.inlineContents(f.contentOffset!, f.size!);
  }

  /**
   * `length` bytes of a file's contents from `offset` (clamped to the file size). With `transient` the caller is done
   * with them before this event-loop turn ends (see ReadAt.readTransient).
   */
  async read(e: AccessorEntry | FileFields, offset: number, length: number, transient = false): Promise<Uint8Array> {
    const f = fileOf(e);
    const n = Math.max(0, Math.min(length, f.size! - offset));
    if (offset < 0 || n === 0) return new Uint8Array(0);
    if (this.version === 1) return readRange(this.archive, f.contentOffset! + offset, n, 'file contents', this.archive.size, transient);
    if (!this.payload) throw new PbsError('EINVAL', 'split archive: no payload (.ppxar) reader given');
    if (offset === 0) {
      // Most files are read in one piece from the start: their PAYLOAD header comes with the bytes, in one read.
      const b = await readRange(this.payload, f.payloadOffset!, HEADER_SIZE + n, 'payload contents', this.payload.size, transient);
      verifyPayloadHeader(b, f.payloadOffset!, f.size!);
      return b.subarray(HEADER_SIZE);
    }
    await checkPayloadHeader(this.payload, f.payloadOffset!, f.size!);
    return readRange(this.payload, f.payloadOffset! + HEADER_SIZE + offset, n, 'payload contents', this.payload.size, transient);
  }

  private async *inlineContents(start: number, size: number): AsyncGenerator<Uint8Array> {
    for (let done = 0; done < size; ) {
      const n = Math.min(CONTENT_PIECE, size - done);
      yield await readRange(this.archive, start + done, n, 'file contents');
      done += n;
    }
  }
}

function fileOf(e: AccessorEntry | FileFields): FileFields {
  const f = 'range' in e ? e.entry : e;
  if (f.kind !== 'file') throw new PbsError('EINVAL', `contents of a ${f.kind}: only regular files have contents`);
  return f;
}

/** Index of the first value greater than v in an ascending array. */
function firstAbove(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lastComponent(path: Uint8Array): Uint8Array {
  return path.subarray(path.lastIndexOf(0x2f) + 1);
}

