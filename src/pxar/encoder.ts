// Streaming pxar encoder (spec §8.4–§8.7): v1 unified archives and v2 split archives (.mpxar + .ppxar).
import { PbsError } from '../errors.js';
import {
  PXAR_DEVICE, PXAR_FILENAME, PXAR_FORMAT_VERSION, PXAR_HARDLINK, PXAR_PAYLOAD, PXAR_PAYLOAD_REF,
  PXAR_PAYLOAD_START_MARKER, PXAR_PAYLOAD_TAIL_MARKER, PXAR_PRELUDE, PXAR_SYMLINK, encodeCString, encodeDevice,
  encodeHardlink, encodeHeader, encodeItem, encodeMetadataItems, encodePayloadRef, encodeU64, fileType, hashFilename,
  S_IFDIR, S_IFIFO, S_IFSOCK,
  type Device, type Metadata,
} from './format.js';
import { encodeGoodbye, type GoodbyeItem } from './goodbye.js';
import { checkName, checkRelativePath, toNameBytes } from './names.js';

export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

export type Contents = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const BUFFER_SIZE = 64 * 1024;

/** Coalesces small items into larger writes and counts the bytes. */
class CountingSink {
  private buf = new Uint8Array(BUFFER_SIZE);
  private used = 0;
  position = 0;

  constructor(private readonly sink: ByteSink) {}

  async write(b: Uint8Array): Promise<void> {
    this.position += b.length;
    if (this.used + b.length <= this.buf.length) {
      this.buf.set(b, this.used);
      this.used += b.length;
      return;
    }
    await this.flush();
    if (b.length >= this.buf.length) await this.sink.write(b);
    else {
      this.buf.set(b, 0);
      this.used = b.length;
    }
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.buf.subarray(0, this.used);
    // The sink may keep the bytes, so hand over this buffer and start a fresh one.
    this.buf = new Uint8Array(BUFFER_SIZE);
    this.used = 0;
    await this.sink.write(out);
  }
}

interface OpenDir {
  /** Offset of the directory's ENTRY (archive start for the root). */
  entryStart: number;
  filenameOffset: number | null;
  name: Uint8Array | null;
  /** Children with absolute FILENAME offsets. */
  children: GoodbyeItem[];
}

export interface EncoderOptions {
  /** Payload sink: makes a v2 split archive (this sink receives the .ppxar). */
  payload?: ByteSink;
  /** v2 only: PRELUDE item contents (spec §8.5). */
  prelude?: Uint8Array;
}

/**
 * Writes one archive. Entries are added in archive order; directories are opened with createDirectory() and
 * closed with finishDirectory(); finish() closes the root. Only the open directories' child lists (hash, offset,
 * size) are kept in memory. Methods returning a number return the entry's FILENAME offset (a hardlink target).
 */
export class PxarEncoder {
  private readonly out: CountingSink;
  private readonly payload: CountingSink | null;
  private readonly dirs: OpenDir[] = [];
  private lastPayloadRef = 0;
  private broken: PbsError | null = null;
  private busy = false;

  private constructor(sink: ByteSink, payload: ByteSink | undefined) {
    this.out = new CountingSink(sink);
    this.payload = payload ? new CountingSink(payload) : null;
  }

  static async create(sink: ByteSink, rootMetadata: Metadata, opts: EncoderOptions = {}): Promise<PxarEncoder> {
    if (opts.prelude && !opts.payload) throw new PbsError('EINVAL', 'a PRELUDE is only written in split (v2) archives');
    checkMode(rootMetadata, S_IFDIR, 'root directory');
    const e = new PxarEncoder(sink, opts.payload);
    await e.run(async () => {
      if (e.payload) {
        await e.out.write(encodeItem(PXAR_FORMAT_VERSION, encodeU64(2)));
        if (opts.prelude) await e.out.write(encodeItem(PXAR_PRELUDE, opts.prelude));
        await e.payload.write(encodeHeader(PXAR_PAYLOAD_START_MARKER, 0));
      }
      await e.writeMetadata(rootMetadata);
      e.dirs.push({ entryStart: 0, filenameOffset: null, name: null, children: [] });
    });
    return e;
  }

  /** Bytes written to the (metadata) archive so far. */
  get position(): number {
    return this.out.position;
  }

  /** Bytes written to (or skipped in) the payload archive so far; 0 for v1. */
  get payloadPosition(): number {
    return this.payload?.position ?? 0;
  }

  get isSplit(): boolean {
    return this.payload !== null;
  }

  async createDirectory(name: Uint8Array | string, metadata: Metadata): Promise<number> {
    return this.run(async () => {
      checkMode(metadata, S_IFDIR, 'directory');
      const n = toNameBytes(name);
      const filenameOffset = await this.writeFilename(n);
      const entryStart = this.out.position;
      await this.writeMetadata(metadata);
      this.dirs.push({ entryStart, filenameOffset, name: n, children: [] });
      return filenameOffset;
    });
  }

  async finishDirectory(): Promise<void> {
    await this.run(async () => {
      if (this.dirs.length < 2) throw new PbsError('EINVAL', 'finishDirectory() without an open subdirectory (use finish() for the root)');
      const dir = await this.closeDir();
      const parent = this.openDir();
      parent.children.push({ hash: hashFilename(dir.name!), offset: dir.filenameOffset!, size: this.out.position - dir.filenameOffset! });
    });
  }

  /** A regular file whose `size` bytes come from `contents` (streamed, never buffered whole). */
  async addFile(metadata: Metadata, name: Uint8Array | string, size: number, contents: Contents): Promise<number> {
    return this.run(async () => {
      checkSize(size);
      const n = toNameBytes(name);
      const start = await this.writeFilename(n);
      await this.writeMetadata(metadata);
      if (this.payload) {
        if (this.payload.position < this.lastPayloadRef) {
          throw new PbsError('EINVAL', `payload position ${this.payload.position} is below an earlier payload reference ${this.lastPayloadRef}`);
        }
        const payloadOffset = this.payload.position;
        await this.out.write(encodeItem(PXAR_PAYLOAD_REF, encodePayloadRef({ offset: payloadOffset, size })));
        await this.payload.write(encodeHeader(PXAR_PAYLOAD, size));
        await copyContents(this.payload, contents, size);
        this.lastPayloadRef = payloadOffset;
        // spec §8.6 quirk: the goodbye size of a fresh v2 file includes its payload length.
        this.addChild(n, start, this.out.position - start + size);
      } else {
        await this.out.write(encodeHeader(PXAR_PAYLOAD, size));
        await copyContents(this.out, contents, size);
        this.addChild(n, start, this.out.position - start);
      }
      return start;
    });
  }

  /**
   * v2 only: a file whose PAYLOAD already sits at `payloadOffset` in the payload stream (reused from a previous
   * archive, spec §8.7). The offset may not lie below the current payload position.
   */
  async addPayloadRef(metadata: Metadata, name: Uint8Array | string, size: number, payloadOffset: number): Promise<number> {
    return this.run(async () => {
      if (!this.payload) throw new PbsError('EINVAL', 'payload references need a split (v2) archive');
      checkSize(size);
      if (!Number.isSafeInteger(payloadOffset) || payloadOffset < this.payload.position || payloadOffset < this.lastPayloadRef) {
        throw new PbsError('EINVAL', `payload reference ${payloadOffset} lies below the current payload position ${this.payload.position}`);
      }
      const n = toNameBytes(name);
      const start = await this.writeFilename(n);
      await this.writeMetadata(metadata);
      await this.out.write(encodeItem(PXAR_PAYLOAD_REF, encodePayloadRef({ offset: payloadOffset, size })));
      this.lastPayloadRef = payloadOffset;
      this.addChild(n, start, this.out.position - start);
      return start;
    });
  }

  /** Hands buffered payload bytes to the payload sink, so bytes placed there directly come after them. */
  async flushPayload(): Promise<void> {
    await this.payload?.flush();
  }

  /** Counts `bytes` placed in the payload sink by the caller (reused chunks); call flushPayload() first. */
  advancePayload(bytes: number): void {
    if (!this.payload) throw new PbsError('EINVAL', 'advancePayload() needs a split (v2) archive');
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new PbsError('EINVAL', `cannot advance the payload by ${bytes}`);
    this.payload.position += bytes;
  }

  async addSymlink(metadata: Metadata, name: Uint8Array | string, target: Uint8Array | string): Promise<number> {
    const t = toNameBytes(target);
    if (t.length === 0 || t.includes(0) || t.length > 4096) throw new PbsError('EINVAL', 'symlink target must be 1..4096 bytes without NUL');
    return this.addSimple(metadata, name, encodeItem(PXAR_SYMLINK, encodeCString(t)));
  }

  async addDevice(metadata: Metadata, name: Uint8Array | string, device: Device): Promise<number> {
    return this.addSimple(metadata, name, encodeItem(PXAR_DEVICE, encodeDevice(device)));
  }

  async addFifo(metadata: Metadata, name: Uint8Array | string): Promise<number> {
    checkMode(metadata, S_IFIFO, 'fifo');
    return this.addSimple(metadata, name, null);
  }

  async addSocket(metadata: Metadata, name: Uint8Array | string): Promise<number> {
    checkMode(metadata, S_IFSOCK, 'socket');
    return this.addSimple(metadata, name, null);
  }

  /** Second and later names of a regular file: `targetPath` is archive-relative, `targetOffset` from addFile(). */
  async addHardlink(name: Uint8Array | string, targetPath: Uint8Array | string, targetOffset: number): Promise<number> {
    return this.run(async () => {
      const target = toNameBytes(targetPath);
      checkRelativePath(target, 'EINVAL');
      const n = toNameBytes(name);
      checkName(n, 'EINVAL');
      const start = this.out.position;
      if (!Number.isSafeInteger(targetOffset) || targetOffset < 0 || targetOffset >= start) {
        throw new PbsError('EINVAL', `hardlink target offset ${targetOffset} is not before the link at ${start}`);
      }
      await this.writeFilename(n);
      await this.out.write(encodeItem(PXAR_HARDLINK, encodeHardlink({ offset: start - targetOffset, target })));
      this.addChild(n, start, this.out.position - start);
      return start;
    });
  }

  /** Closes the root directory, ends the payload stream and flushes both sinks. */
  async finish(): Promise<void> {
    await this.run(async () => {
      if (this.dirs.length !== 1) throw new PbsError('EINVAL', `finish() with ${this.dirs.length - 1} subdirectories still open`);
      await this.closeDir();
      await this.out.flush();
      if (this.payload) {
        await this.payload.write(encodeHeader(PXAR_PAYLOAD_TAIL_MARKER, 0));
        await this.payload.flush();
      }
      this.broken = new PbsError('EINVAL', 'archive already finished');
    });
  }

  private async addSimple(metadata: Metadata, name: Uint8Array | string, content: Uint8Array | null): Promise<number> {
    return this.run(async () => {
      const n = toNameBytes(name);
      const start = await this.writeFilename(n);
      await this.writeMetadata(metadata);
      if (content) await this.out.write(content);
      this.addChild(n, start, this.out.position - start);
      return start;
    });
  }

  /** Serialises calls and poisons the encoder after a failure: a half-written entry cannot be continued. */
  private async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.broken) throw this.broken;
    if (this.busy) throw new PbsError('EINVAL', 'encoder call while another one is still running');
    this.busy = true;
    try {
      return await f();
    } catch (e) {
      if (!this.broken) this.broken = new PbsError('EINVAL', 'encoder unusable after an earlier error', { cause: e });
      throw e;
    } finally {
      this.busy = false;
    }
  }

  private openDir(): OpenDir {
    const d = this.dirs[this.dirs.length - 1];
    if (!d) throw new PbsError('EINVAL', 'archive already finished');
    return d;
  }

  private async writeFilename(name: Uint8Array): Promise<number> {
    checkName(name, 'EINVAL');
    this.openDir();
    const start = this.out.position;
    await this.out.write(encodeItem(PXAR_FILENAME, encodeCString(name)));
    return start;
  }

  private async writeMetadata(m: Metadata): Promise<void> {
    for (const item of encodeMetadataItems(m)) await this.out.write(item);
  }

  private addChild(name: Uint8Array, filenameOffset: number, size: number): void {
    this.openDir().children.push({ hash: hashFilename(name), offset: filenameOffset, size });
  }

  private async closeDir(): Promise<OpenDir> {
    const dir = this.dirs.pop()!;
    await this.out.write(encodeGoodbye(dir.children, this.out.position, dir.entryStart));
    return dir;
  }
}

/** Directories, fifos and sockets are told apart by mode alone when decoding (spec §8.4), so it must match. */
function checkMode(m: Metadata, type: number, what: string): void {
  if (fileType(m.stat.mode) !== type) throw new PbsError('EINVAL', `${what} metadata has mode ${m.stat.mode.toString(8)}`);
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new PbsError('EINVAL', `invalid file size ${size}`);
}

async function copyContents(sink: CountingSink, contents: Contents, size: number): Promise<void> {
  let written = 0;
  for await (const piece of contents) {
    if (written + piece.length > size) throw new PbsError('EINVAL', `file contents exceed the announced size ${size}`);
    await sink.write(piece);
    written += piece.length;
  }
  if (written !== size) throw new PbsError('EINVAL', `file contents ended after ${written} of ${size} bytes`);
}
