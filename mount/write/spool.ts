// The data log of one staging snapshot: every write to a staged file is appended here and the file keeps a list of
// extents (file offset, length, log offset). So any write order, overlapping rewrites and several files written at
// once cost one append each; sealing reads each file back in archive order. Appends are synchronous (the caller's
// buffer is only valid during the call, and for page-cache writes this is cheaper than a thread hop); small ones
// (a `cp -a` writes most files in one small piece) are gathered in memory and written together, one pwrite() per
// GATHER_SIZE instead of one per file. The owner writes what is gathered before it records files as complete
// (flush()), so a daemon crash never leaves a complete file without its bytes.
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { withPath } from '../../src/errors.js';

/** [file offset, length, spool offset], sorted by file offset, never overlapping. */
export type Extent = [number, number, number];

/** Appends up to this size are gathered. */
const GATHER_MAX = 64 * 1024;
const GATHER_SIZE = 1024 * 1024;

export class Spool {
  /** Appends not written yet: they belong at [end - gathered, end). */
  private readonly gather = Buffer.allocUnsafe(GATHER_SIZE);
  private gathered = 0;
  /** A failed write of gathered appends: those bytes are lost, so every later append and read fails with it. */
  private failed?: Error;

  private constructor(
    readonly path: string,
    private fd: number,
    private end: number,
  ) {}

  /** Opens (or creates) the log; appends go after whatever it holds already (a resumed staging snapshot). */
  static open(path: string): Spool {
    try {
      // Not O_APPEND: positional writes must land where `end` says, also after a failed (partial) append.
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
      return new Spool(path, fd, fstatSync(fd).size);
    } catch (e) {
      throw withPath(e, path);
    }
  }

  /** Appends `data`; returns where it went. A failure to write it, or gathered bytes before it, throws (ENOSPC …). */
  append(data: Uint8Array): number {
    if (this.failed) throw this.failed;
    const at = this.end;
    if (data.byteLength <= GATHER_MAX) {
      if (this.gathered + data.byteLength > GATHER_SIZE) this.flush();
      this.gather.set(data, this.gathered);
      this.gathered += data.byteLength;
      this.end += data.byteLength;
      return at;
    }
    this.flush();
    this.writeAt(data, at);
    this.end += data.byteLength;
    return at;
  }

  /** Writes the gathered appends. */
  flush(): void {
    if (this.failed) throw this.failed;
    if (this.gathered === 0) return;
    const n = this.gathered;
    this.gathered = 0;
    try {
      this.writeAt(this.gather.subarray(0, n), this.end - n);
    } catch (e) {
      this.failed = e as Error;
      throw e;
    }
  }

  private writeAt(data: Uint8Array, at: number): void {
    try {
      for (let done = 0; done < data.byteLength; ) done += writeSync(this.fd, data, done, data.byteLength - done, at + done);
    } catch (e) {
      throw withPath(e, this.path);
    }
  }

  read(into: Uint8Array, at: number): void {
    if (this.failed) throw this.failed;
    if (at + into.byteLength > this.end - this.gathered) this.flush();
    try {
      for (let done = 0; done < into.byteLength; ) {
        const n = readSync(this.fd, into, done, into.byteLength - done, at + done);
        if (n === 0) throw new Error(`spool ends at ${at + done}`);
        done += n;
      }
    } catch (e) {
      throw withPath(e, this.path);
    }
  }

  /** Writes what is gathered and closes the log (the snapshot is sealed or discarded by now: nothing to report). */
  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } catch {
      // The snapshot this belongs to is finished or discarded by now.
    }
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** Records that file bytes [off, off+len) now live at spool offset `at`: later writes win over earlier ones. */
export function addExtent(list: Extent[], off: number, len: number, at: number): void {
  if (len === 0) return;
  const last = list[list.length - 1];
  // Sequential writer: the common case extends the last extent or appends one.
  if (!last || last[0] + last[1] <= off) {
    if (last && last[0] + last[1] === off && last[2] + last[1] === at) last[1] += len;
    else list.push([off, len, at]);
    return;
  }
  const end = off + len;
  const out: Extent[] = [];
  for (const e of list) {
    const [s, l, p] = e;
    const eEnd = s + l;
    if (eEnd <= off || s >= end) {
      out.push(e);
      continue;
    }
    if (s < off) out.push([s, off - s, p]);
    if (eEnd > end) out.push([end, eEnd - end, p + (end - s)]);
  }
  out.push([off, len, at]);
  out.sort((a, b) => a[0] - b[0]);
  list.splice(0, list.length, ...out);
}

/** Drops everything at or past `size`. */
export function truncateExtents(list: Extent[], size: number): void {
  const out: Extent[] = [];
  for (const [s, l, p] of list) if (s < size) out.push([s, Math.min(l, size - s), p]);
  list.splice(0, list.length, ...out);
}

/** Bytes [offset, offset+length) of a file of `size` bytes into `out` (zeros where never written). */
function readInto(spool: Spool, list: readonly Extent[], offset: number, out: Uint8Array): void {
  out.fill(0);
  const end = offset + out.byteLength;
  for (const [s, l, p] of list) {
    const a = Math.max(s, offset);
    const b = Math.min(s + l, end);
    if (a < b) spool.read(out.subarray(a - offset, b - offset), p + (a - s));
  }
}

/** Bytes [offset, offset+length) of a file of `size` bytes; never-written ranges are zeros. */
export function readExtents(spool: Spool, list: readonly Extent[], size: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, Math.min(size, offset + length) - offset));
  readInto(spool, list, offset, out);
  return out;
}

/**
 * The whole file in pieces of at most 1 MiB, all in the one `scratch` buffer: each piece is valid until the next is
 * asked for (the archive writers copy what they keep), so sealing makes no garbage per file.
 */
export function* extentContents(spool: Spool, list: readonly Extent[], size: number, scratch: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < size; at += scratch.byteLength) {
    const piece = scratch.subarray(0, Math.min(scratch.byteLength, size - at));
    readInto(spool, list, at, piece);
    yield piece;
  }
}
