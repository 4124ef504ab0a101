// Sequential pxar decoder (spec §8.4–§8.7): entries in archive order, contents streamed or skipped.
import { PbsError } from '../errors.js';
import {
  GOODBYE_ITEM_SIZE, HEADER_SIZE, MAX_PRELUDE_SIZE, PXAR_DEVICE, PXAR_ENTRY, PXAR_ENTRY_V1, PXAR_FILENAME,
  PXAR_FORMAT_VERSION, PXAR_GOODBYE, PXAR_GOODBYE_TAIL_MARKER, PXAR_HARDLINK, PXAR_PAYLOAD, PXAR_PAYLOAD_REF,
  PXAR_PRELUDE, PXAR_SYMLINK, PXAR_XATTR, PXAR_ACL_USER, PXAR_ACL_GROUP, PXAR_ACL_GROUP_OBJ, PXAR_ACL_DEFAULT,
  PXAR_ACL_DEFAULT_USER, PXAR_ACL_DEFAULT_GROUP, PXAR_FCAPS, PXAR_QUOTA_PROJID, STAT_SIZE, STAT_V1_SIZE, applyAttribute, emptyMetadata, kindWithoutContent, metadataOf,
  parseDevice, parseFilename, parseHardlink, parseHeader, parsePayloadRef, parseStat, parseStatV1, parseSymlink,
  copyBytes, dv, parseHeaderAt, typeName, type Metadata, type PositionedHeader, type PxarEntry,
} from './format.js';
import { parseGoodbyeItem } from './goodbye.js';
import { joinPath } from './names.js';
import { readRange, type ReadAt } from './read-at.js';
import { SeqReader, type ByteSource } from './seq-reader.js';

const ROOT_PATH = new Uint8Array([0x2f]);
const ATTRIBUTE_TYPES = new Set<bigint>([
  PXAR_XATTR, PXAR_ACL_USER, PXAR_ACL_GROUP, PXAR_ACL_GROUP_OBJ, PXAR_ACL_DEFAULT, PXAR_ACL_DEFAULT_USER,
  PXAR_ACL_DEFAULT_GROUP, PXAR_FCAPS, PXAR_QUOTA_PROJID,
]);
const CONTENT_PIECE = 1 << 20;

export type { PositionedHeader };

/** The next item header when it is buffered already; undefined: read it with readHeaderOrEof. */
function bufferedHeader(r: SeqReader): PositionedHeader | undefined {
  const pos = r.position;
  const b = r.takeBuffered(HEADER_SIZE);
  return b === null ? undefined : parseHeaderAt(b, 0, pos);
}

export async function readHeaderOrEof(r: SeqReader): Promise<PositionedHeader | null> {
  const pos = r.position;
  const b = await r.readExactOrEof(HEADER_SIZE, 'item header');
  return b === null ? null : parseHeaderAt(b, 0, pos);
}

export async function readHeader(r: SeqReader, what: string): Promise<PositionedHeader> {
  const h = bufferedHeader(r) ?? (await readHeaderOrEof(r));
  if (h === null) throw new PbsError('ECORRUPT', `archive truncated: expected ${what}`, { offset: r.position });
  return h;
}

/** The content of a kept item when it is buffered already (null: read it with readContent). */
function bufferedContent(r: SeqReader, h: PositionedHeader): Uint8Array | null {
  const size = h.fullSize - HEADER_SIZE;
  return size > MAX_PRELUDE_SIZE ? null : r.takeBuffered(size);
}

/** Content of an item that is kept in memory; every such type has a small size limit (spec §8.4). */
export async function readContent(r: SeqReader, h: PositionedHeader): Promise<Uint8Array> {
  const size = h.fullSize - HEADER_SIZE;
  if (size > MAX_PRELUDE_SIZE) throw new PbsError('ECORRUPT', `${typeName(h.htype)} item of ${size} bytes is too large`, { offset: h.pos });
  return r.readExact(size, typeName(h.htype));
}

export interface DecodedEntry {
  entry: PxarEntry;
  /** The header that ended the entry's attributes (FILENAME/GOODBYE of a directory, fifo or socket), if any. */
  pending: PositionedHeader | null;
}

/**
 * Decodes one entry starting at header `h` (ENTRY, ENTRY_V1 or HARDLINK). Consumes attributes and the content
 * header (PAYLOAD header only: the contents stay unread). `eofOk` lets a fifo/socket end at end of input
 * (the accessor decodes bounded ranges).
 */
export async function readEntryAt(
  r: SeqReader, h: PositionedHeader, path: Uint8Array, filenameOffset: number | null, split: boolean, eofOk: boolean,
): Promise<DecodedEntry> {
  if (h.htype === PXAR_HARDLINK) {
    if (filenameOffset === null) throw new PbsError('ECORRUPT', 'archive root is a hardlink', { offset: h.pos });
    const link = parseHardlink(bufferedContent(r, h) ?? (await readContent(r, h)), h.pos);
    if (link.offset === 0 || link.offset > filenameOffset) {
      throw new PbsError('ECORRUPT', `hardlink offset ${link.offset} points forward or outside the archive`, { offset: h.pos });
    }
    const entry: PxarEntry = { path, kind: 'hardlink', metadata: emptyMetadata(), filenameOffset, linkTarget: link.target, hardlinkOffset: link.offset };
    return { entry, pending: null };
  }
  let metadata: Metadata;
  if (h.htype === PXAR_ENTRY) {
    metadata = metadataOf(parseStat(r.takeBuffered(STAT_SIZE) ?? (await r.readExact(STAT_SIZE, 'ENTRY')), h.pos));
  } else if (h.htype === PXAR_ENTRY_V1) {
    metadata = metadataOf(parseStatV1(await r.readExact(STAT_V1_SIZE, 'ENTRY_V1'), h.pos));
  } else {
    throw new PbsError('ECORRUPT', `expected ENTRY, found ${typeName(h.htype)}`, { offset: h.pos });
  }
  const entry: PxarEntry = { path, kind: 'dir', metadata, filenameOffset };
  for (;;) {
    const item = bufferedHeader(r) ?? (await readHeaderOrEof(r));
    if (item === null) {
      if (!eofOk) throw new PbsError('ECORRUPT', 'archive truncated inside an entry', { offset: r.position });
      entry.kind = kindWithoutContent(metadata.stat.mode, h.pos);
      return { entry, pending: null };
    }
    switch (item.htype) {
      case PXAR_PAYLOAD:
        if (split) throw new PbsError('ECORRUPT', 'inline PAYLOAD in a split (v2) metadata archive', { offset: item.pos });
        entry.kind = 'file';
        entry.size = item.fullSize - HEADER_SIZE;
        entry.contentOffset = r.position;
        return { entry, pending: null };
      case PXAR_PAYLOAD_REF: {
        if (!split) throw new PbsError('ECORRUPT', 'PAYLOAD_REF in a unified (v1) archive', { offset: item.pos });
        entry.contentOffset = r.position; // as the reference reports it: just after the PAYLOAD_REF header
        const ref = parsePayloadRef(bufferedContent(r, item) ?? (await readContent(r, item)), item.pos);
        entry.kind = 'file';
        entry.size = ref.size;
        entry.payloadOffset = ref.offset;
        return { entry, pending: null };
      }
      case PXAR_SYMLINK:
        entry.kind = 'symlink';
        entry.linkTarget = parseSymlink(bufferedContent(r, item) ?? (await readContent(r, item)), item.pos);
        return { entry, pending: null };
      case PXAR_DEVICE:
        entry.kind = 'device';
        entry.device = parseDevice(bufferedContent(r, item) ?? (await readContent(r, item)), item.pos);
        return { entry, pending: null };
      case PXAR_FILENAME:
      case PXAR_GOODBYE:
        entry.kind = kindWithoutContent(metadata.stat.mode, h.pos);
        return { entry, pending: item };
      default:
        if (!ATTRIBUTE_TYPES.has(item.htype)) {
          throw new PbsError('ECORRUPT', `unexpected ${typeName(item.htype)} item inside an entry`, { offset: item.pos });
        }
        applyAttribute(metadata, item.htype, bufferedContent(r, item) ?? (await readContent(r, item)), item.pos);
    }
  }
}

/** Checks that a payload reference points at a PAYLOAD item of the expected size (spec §8.7). */
export async function checkPayloadHeader(payload: ReadAt, payloadOffset: number, size: number): Promise<void> {
  verifyPayloadHeader(await readRange(payload, payloadOffset, HEADER_SIZE, 'PAYLOAD header'), payloadOffset, size);
}

/** Checks the PAYLOAD header at the start of `b`, read at `payloadOffset`, against the reference's size (spec §8.7). */
export function verifyPayloadHeader(b: Uint8Array, payloadOffset: number, size: number): void {
  const h = parseHeader(b, 0, payloadOffset);
  if (h.htype !== PXAR_PAYLOAD) {
    throw new PbsError('ECORRUPT', `payload reference points at ${typeName(h.htype)}, not PAYLOAD`, { offset: payloadOffset });
  }
  if (h.fullSize - HEADER_SIZE !== size) {
    throw new PbsError('ECORRUPT', `PAYLOAD holds ${h.fullSize - HEADER_SIZE} bytes, reference says ${size}`, { offset: payloadOffset });
  }
}

/** Streams a v2 file's contents from the payload archive after checking its PAYLOAD header. */
export async function* payloadContents(payload: ReadAt, payloadOffset: number, size: number): AsyncGenerator<Uint8Array> {
  await checkPayloadHeader(payload, payloadOffset, size);
  const start = payloadOffset + HEADER_SIZE;
  for (let done = 0; done < size; ) {
    const n = Math.min(CONTENT_PIECE, size - done);
    yield await readRange(payload, start + done, n, 'payload contents');
    done += n;
  }
}

interface OpenDir {
  pathLength: number;
  /** Where the tail item must point: the directory's ENTRY (v2 root: archive start). */
  entryStart: number;
  children: number;
}

export interface DecoderOptions {
  /** The `.ppxar` of a split archive; needed only to read file contents. */
  payload?: ReadAt;
}

/**
 * Sequential decoder. `next()` yields entries in archive order; after a file entry, `contents()` streams its bytes
 * (otherwise they are skipped without being kept).
 */
export class PxarDecoder implements AsyncIterable<PxarEntry> {
  private readonly dirs: OpenDir[] = [];
  private path: Uint8Array = ROOT_PATH;
  private pending: PositionedHeader | null = null;
  private started = false;
  private finished = false;
  private lastPayloadOffset = 0;
  /** Inline payload bytes of the last entry still unread (v1). */
  private inlineLeft = 0;
  private current: PxarEntry | null = null;
  private contentsTaken = false;

  private constructor(
    private readonly r: SeqReader,
    /** 1 for unified archives, 2 for split ones. */
    readonly version: 1 | 2,
    readonly prelude: Uint8Array | null,
    private readonly payload: ReadAt | undefined,
  ) {}

  /** Reads the archive start (spec §8.5): optional FORMAT_VERSION and PRELUDE. */
  static async open(source: ByteSource, opts: DecoderOptions = {}): Promise<PxarDecoder> {
    const r = new SeqReader(source);
    let first = await readHeader(r, 'first item');
    let version: 1 | 2 = 1;
    let prelude: Uint8Array | null = null;
    if (first.htype === PXAR_FORMAT_VERSION) {
      const v = dv(await readContent(r, first)).getBigUint64(0, true);
      if (v !== 2n) throw new PbsError('EUNSUPPORTED', `unsupported pxar format version ${v}`, { offset: first.pos });
      version = 2;
      first = await readHeader(r, 'root entry');
      if (first.htype === PXAR_PRELUDE) {
        prelude = copyBytes(await readContent(r, first), 0);
        first = await readHeader(r, 'root entry');
      }
    }
    const d = new PxarDecoder(r, version, prelude, opts.payload);
    d.pending = first;
    return d;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<PxarEntry> {
    for (let e = await this.next(); e !== null; e = await this.next()) yield e;
  }

  /** The next entry, or null after the root's goodbye table. */
  async next(): Promise<PxarEntry | null> {
    if (this.finished) return null;
    const r = this.r;
    if (this.inlineLeft > 0) {
      await r.skip(this.inlineLeft, 'file contents');
      this.inlineLeft = 0;
    }
    this.current = null;
    if (!this.started) {
      this.started = true;
      const h = this.takePending() ?? (await readHeader(r, 'root entry'));
      const d = await readEntryAt(r, h, ROOT_PATH, null, this.version === 2, false);
      if (d.entry.kind !== 'dir') throw new PbsError('ECORRUPT', 'archive root is not a directory', { offset: h.pos });
      return this.accept(d, 0);
    }
    for (;;) {
      const h = this.takePending() ?? bufferedHeader(r) ?? (await readHeader(r, 'FILENAME or GOODBYE'));
      const dir = this.dirs[this.dirs.length - 1];
      if (dir === undefined) throw new PbsError('ECORRUPT', 'item outside the root directory', { offset: h.pos });
      if (h.htype === PXAR_GOODBYE) {
        const checking = this.checkGoodbye(h, dir);
        if (checking) await checking;
        this.dirs.pop();
        this.path = this.path.subarray(0, this.dirs.length > 0 ? this.dirs[this.dirs.length - 1]!.pathLength : 1);
        if (this.dirs.length === 0) {
          if (!(await r.atEnd())) throw new PbsError('ECORRUPT', 'data after the root goodbye table', { offset: r.position });
          this.finished = true;
          return null;
        }
        continue;
      }
      if (h.htype !== PXAR_FILENAME) {
        throw new PbsError('ECORRUPT', `expected FILENAME or GOODBYE, found ${typeName(h.htype)}`, { offset: h.pos });
      }
      const name = parseFilename(bufferedContent(r, h) ?? (await readContent(r, h)), h.pos);
      dir.children++;
      const parentPath = this.path.subarray(0, dir.pathLength);
      const entryHeader = bufferedHeader(r) ?? (await readHeader(r, 'ENTRY or HARDLINK'));
      const d = await readEntryAt(r, entryHeader, joinPath(parentPath, name), h.pos, this.version === 2, false);
      return this.accept(d, entryHeader.pos);
    }
  }

  private takePending(): PositionedHeader | null {
    const p = this.pending;
    this.pending = null;
    return p;
  }

  private accept(d: DecodedEntry, entryStart: number): PxarEntry {
    const e = d.entry;
    this.pending = d.pending;
    if (e.kind === 'dir') {
      // The tail of the root goodbye table points at the archive start (the FORMAT_VERSION item in v2).
      this.dirs.push({ pathLength: e.path.length, entryStart: this.dirs.length === 0 ? 0 : entryStart, children: 0 });
      this.path = e.path;
    }
    if (e.kind === 'file') {
      if (this.version === 1) this.inlineLeft = e.size!;
      else {
        if (e.payloadOffset! < this.lastPayloadOffset) {
          throw new PbsError('ECORRUPT', `payload offset ${e.payloadOffset} goes backwards`, { offset: e.contentOffset! - HEADER_SIZE });
        }
        this.lastPayloadOffset = e.payloadOffset!;
      }
    }
    this.current = e;
    this.contentsTaken = false;
    return e;
  }

  /**
   * Only the tail item is checked; the child items serve random access, which validates them itself. Returns a
   * promise only when the table is not buffered yet.
   */
  private checkGoodbye(h: PositionedHeader, dir: OpenDir): Promise<void> | undefined {
    const n = (h.fullSize - HEADER_SIZE) / GOODBYE_ITEM_SIZE - 1;
    if (n !== dir.children) {
      throw new PbsError('ECORRUPT', `goodbye table lists ${n} entries, directory has ${dir.children}`, { offset: h.pos });
    }
    const table = this.r.takeBuffered((n + 1) * GOODBYE_ITEM_SIZE);
    if (table !== null) {
      this.checkGoodbyeTail(h, dir, table.subarray(n * GOODBYE_ITEM_SIZE), this.r.position - GOODBYE_ITEM_SIZE);
      return undefined;
    }
    return (async () => {
      await this.r.skip(n * GOODBYE_ITEM_SIZE, 'goodbye table');
      const tailPos = this.r.position;
      this.checkGoodbyeTail(h, dir, await this.r.readExact(GOODBYE_ITEM_SIZE, 'goodbye tail'), tailPos);
    })();
  }

  private checkGoodbyeTail(h: PositionedHeader, dir: OpenDir, bytes: Uint8Array, tailPos: number): void {
    const tail = parseGoodbyeItem(bytes, 0, tailPos);
    if (tail.hash !== PXAR_GOODBYE_TAIL_MARKER || tail.size !== h.fullSize || tail.offset !== h.pos - dir.entryStart) {
      throw new PbsError('ECORRUPT', 'goodbye table tail item does not match its directory', { offset: tailPos });
    }
  }

  /** Contents of the file entry last returned by next(); call at most once, before the next next(). */
  contents(): AsyncIterable<Uint8Array> {
    const e = this.current;
    if (e === null || e.kind !== 'file') throw new PbsError('EINVAL', 'contents() needs a file entry from next()');
    if (this.contentsTaken) throw new PbsError('EINVAL', 'contents() already taken for this entry');
    this.contentsTaken = true;
    if (this.version === 1) return this.inlineContents(e.size!);
    if (this.payload === undefined) throw new PbsError('EINVAL', 'split archive: no payload (.ppxar) reader given');
    return payloadContents(this.payload, e.payloadOffset!, e.size!);
  }

  private async *inlineContents(size: number): AsyncGenerator<Uint8Array> {
    const startLeft = this.inlineLeft;
    if (startLeft !== size) throw new PbsError('EINVAL', 'contents() of an entry already skipped');
    for await (const piece of this.r.stream(size, 'file contents')) {
      this.inlineLeft -= piece.length;
      yield piece;
    }
  }
}
