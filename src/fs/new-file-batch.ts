// Small plain files collected for one native writeNewFiles job (native/src/writefile.c): paths, contents and
// parameters packed into three buffers, so a batch crosses into C with three arguments, and each file's contents
// are copied once, from the archive's chunk straight into the batch.
import { PbsError } from '../errors.js';
import type { Timestamp } from '../pxar/format.js';
import { nativeFs, type NewFileWarnings } from './native-fs.js';

const FIELDS = 7; // per file: length, mode, uid, gid, chmodMode, mtimeSec, mtimeNsec

/** How a new file is created: creation mode, owner to set (-1: keep ours), mode to set after chown (-1: none). */
export interface NewFileParams {
  mode: number;
  uid: number;
  gid: number;
  chmodMode: number;
  mtime: Timestamp;
}

export class NewFileBatch {
  private data: Buffer;
  private dataLen = 0;
  private paths: Buffer;
  private pathsLen = 0;
  private params: Float64Array;
  private files = 0;
  /** Start of the contents being collected by reserve() and not yet added. */
  private reserved = -1;

  constructor(dataCapacity: number, fileCapacity: number) {
    this.data = Buffer.allocUnsafe(dataCapacity);
    this.paths = Buffer.allocUnsafe(fileCapacity * 128);
    this.params = new Float64Array(fileCapacity * FIELDS);
  }

  get count(): number {
    return this.files;
  }

  get bytes(): number {
    return this.dataLen;
  }

  /** Room for the next file's `size` bytes of contents: fill the returned view, then add() or drop() it. */
  reserve(size: number): Buffer {
    if (this.dataLen + size > this.data.length) this.data = grow(this.data, this.dataLen, this.dataLen + size);
    this.reserved = this.dataLen;
    return this.data.subarray(this.dataLen, this.dataLen + size);
  }

  /** Forgets the reserved contents (the file is written another way). */
  drop(): void {
    this.reserved = -1;
  }

  /** Adds the file at `path` whose contents were written into the last reserve()d view. */
  add(path: Uint8Array, size: number, p: NewFileParams): void {
    if (this.reserved !== this.dataLen) throw new PbsError('EINVAL', 'NewFileBatch.add without reserve');
    this.reserved = -1;
    this.dataLen += size;
    const need = this.pathsLen + path.length + 1;
    if (need > this.paths.length) this.paths = grow(this.paths, this.pathsLen, need);
    this.paths.set(path, this.pathsLen);
    this.paths[need - 1] = 0;
    this.pathsLen = need;
    if ((this.files + 1) * FIELDS > this.params.length) {
      const more = new Float64Array(this.params.length * 2);
      more.set(this.params);
      this.params = more;
    }
    const at = this.files * FIELDS;
    const q = this.params;
    q[at] = size;
    q[at + 1] = p.mode;
    q[at + 2] = p.uid;
    q[at + 3] = p.gid;
    q[at + 4] = p.chmodMode;
    q[at + 5] = p.mtime.secs;
    q[at + 6] = p.mtime.nanos;
    this.files++;
  }

  /** Empties the batch (after its job finished) for reuse. */
  reset(): void {
    this.dataLen = 0;
    this.pathsLen = 0;
    this.files = 0;
    this.reserved = -1;
  }

  /** Path of file `i`, for messages. */
  path(i: number): string {
    let start = 0;
    for (let k = 0; k < i; k++) start = this.paths.indexOf(0, start) + 1;
    return this.paths.toString('utf8', start, this.paths.indexOf(0, start));
  }

  /** Creates the files in one thread-pool job; resolves the metadata calls that failed, per file. */
  write(): Promise<(NewFileWarnings | undefined)[]> {
    return nativeFs().writeNewFiles(this.paths.subarray(0, this.pathsLen), this.data.subarray(0, this.dataLen), this.params.subarray(0, this.files * FIELDS));
  }
}

function grow(b: Buffer, used: number, need: number): Buffer {
  const n = Buffer.allocUnsafe(Math.max(need, b.length * 2));
  b.copy(n, 0, 0, used);
  return n;
}
