// Typed view of the filesystem-metadata part of the N-API addon (native/src/fsmeta.c): xattrs without following
// symlinks, mknod, utimensat with nanoseconds, chattr flags and quota project ids, which Node does not expose.
import { nativeAddon } from '../native.js';

/** Paths are raw bytes (Buffer) or UTF-8 strings. All calls are synchronous and throw an Error with `code`. */
export type FsPath = Uint8Array | string;

export interface NativeFs {
  llistxattr(path: FsPath): Buffer[];
  /** null when the attribute does not exist. */
  lgetxattr(path: FsPath, name: FsPath): Buffer | null;
  lsetxattr(path: FsPath, name: FsPath, value: Uint8Array): void;
  /** `mode` includes the file type bits; `dev` is a Linux dev_t. */
  mknod(path: FsPath, mode: number, dev: number | bigint): void;
  utimensat(path: FsPath, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, nofollow: boolean): void;
  /** Raw FS_*_FL bits of a regular file or directory; null where the filesystem (or file type) has none. */
  getFlags(path: FsPath): number | null;
  /** false where the filesystem (or file type) has no flags. */
  setFlags(path: FsPath, flags: number): boolean;
  /** getFlags and getProjid in one open: [flags, projid], each null where unsupported. */
  getInodeAttrs(path: FsPath): [number | null, number | null];
  getProjid(path: FsPath): number | null;
  setProjid(path: FsPath, projid: number): boolean;
  /**
   * Creates each file (O_EXCL, O_NOFOLLOW) with its data and sets owner (uid -1: keep), mode (chmodMode -1: the
   * creation mode is final) and mtime, in order, in one thread-pool job. `paths` holds each path followed by a NUL,
   * `datas` the contents back to back, `params` 7 numbers per file: length, mode, uid, gid, chmodMode, mtimeSec,
   * mtimeNsec (see new-file-batch.ts). Resolves a sparse array of the metadata calls that failed per file; rejects
   * with the errno error of the first file that could not be created or written (its `index` set).
   */
  writeNewFiles(paths: Uint8Array, datas: Uint8Array, params: Float64Array): Promise<(NewFileWarnings | undefined)[]>;
  /** linux/fs.h bit of each chattr flag pxar maps. */
  readonly FS_FL: Readonly<Record<'APPEND' | 'NOATIME' | 'COMPR' | 'NOCOW' | 'NODUMP' | 'DIRSYNC' | 'IMMUTABLE' | 'SYNC' | 'NOCOMP' | 'PROJINHERIT', number>>;
}

export interface NewFileWarnings {
  owner?: Error;
  mode?: Error;
  times?: Error;
}

let fsApi: NativeFs | undefined;

/** The addon's calls; getFlags/getProjid are the two halves of its one-open getInodeAttrs. */
export function nativeFs(): NativeFs {
  if (!fsApi) {
    const raw = nativeAddon<Omit<NativeFs, 'getFlags' | 'getProjid'>>();
    fsApi = { ...raw, getFlags: (p) => raw.getInodeAttrs(p)[0], getProjid: (p) => raw.getInodeAttrs(p)[1] };
  }
  return fsApi;
}
