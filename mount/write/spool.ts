// The data log of one staging snapshot: every write to a staged file is appended here and the file keeps a list of
// extents (file offset, length, log offset). So any write order, overlapping rewrites and several files written at
// once cost one append each; sealing reads each file back in archive order. Writes are synchronous pwrite()s: the
// caller's buffer is only valid during the call, and for page-cache writes this is cheaper than a thread hop.
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { withPath } from '../../src/errors.js';

/** [file offset, length, spool offset], sorted by file offset, never overlapping. */
export type Extent = [number, number, number];

export class Spool {
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

  /** Appends `data`; returns where it went. */
  append(data: Uint8Array): number {
    const at = this.end;
    try {
      for (let done = 0; done < data.byteLength; ) done += writeSync(this.fd, data, done, data.byteLength - done, at + done);
    } catch (e) {
      throw withPath(e, this.path);
    }
    this.end += data.byteLength;
    return at;
  }

  read(into: Uint8Array, at: number): void {
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

  close(): void {
    if (this.fd < 0) return;
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
