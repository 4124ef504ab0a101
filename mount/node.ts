// The mount's tree model: every path resolves to a MountNode; the FUSE layer only translates calls to these.
import type { Timestamp } from '../src/pxar/format.js';

export interface NodeStat {
  /** Full st_mode: file type bits and permissions. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  /** Seconds + nanoseconds (pxar's resolution; the FUSE binding may carry less). */
  mtime: Timestamp;
}

/** The SELinux label's xattr name (asked by ls -l for every file). */
export const XATTR_SELINUX = 'security.selinux';
/** File capabilities (pxar keeps them apart from the other xattrs; a write drops them). */
export const XATTR_CAPS = 'security.capability';

/**
 * A value now or later: nodes that answer from memory (staged trees) return plain values, so the FUSE layer replies
 * in the same turn as the request; the others return promises.
 */
export type Maybe<T> = T | Promise<T>;

export interface MountNode {
  stat(): Maybe<NodeStat>;
  /** Directories: children with their nodes, so one listing also answers the stats that follow it. */
  readdir?(): Promise<Array<[string, MountNode]>>;
  lookup?(name: string): Maybe<MountNode | null>;
  /** Regular files: up to `length` bytes at `offset` (fewer only at the end). */
  read?(offset: number, length: number): Maybe<Uint8Array>;
  readlink?(): Maybe<string>;
  xattrs?(): Maybe<ReadonlyMap<string, Uint8Array>>;
  /** True when the node certainly has no xattrs (so getxattr is answered without asking xattrs()). */
  readonly noXattrs?: boolean;
  /**
   * True when the node's filesystem has no xattr of this name's kind at all (an archive without SELinux labels or
   * POSIX ACLs): getxattr answers EOPNOTSUPP rather than ENODATA, and ls -l stops asking for every file.
   */
  xattrUnsupported?(name: string): boolean;
  /** How long the node may be reused from the path cache: datastore-level nodes change, archive contents never do. */
  readonly ttlMs: number;
  // The write side: a node without the method is read-only there (EROFS).
  mkdir?(name: string, mode: number): Maybe<void>;
  rmdir?(name: string): Maybe<void>;
  create?(name: string, mode: number): Maybe<WriteHandle>;
  /** Another open for writing of a file that is being written. */
  openWrite?(): Maybe<WriteHandle>;
  truncate?(size: number): Maybe<void>;
  /** chmod/chown/utimens. */
  setattr?(change: { mode?: number; uid?: number; gid?: number; mtime?: Timestamp }): Maybe<void>;
  symlink?(name: string, target: string): Maybe<void>;
  /** `mode` has the file type (char/block device, fifo, socket, regular file); `rdev` the packed device number. */
  mknod?(name: string, mode: number, rdev: number): Maybe<void>;
  /** A new name for `target` (a node of the same tree) in this directory. */
  link?(name: string, target: MountNode): Maybe<void>;
  unlink?(name: string): Maybe<void>;
  rename?(name: string, newParent: MountNode, newName: string): Maybe<void>;
  /** Resolves true when the xattr changed the node's mode too (an access ACL does). */
  setxattr?(name: string, value: Uint8Array, flags: number): Maybe<boolean>;
  removexattr?(name: string): Maybe<void>;
}

/** One open-for-writing of a file. */
export interface WriteHandle {
  readonly node: MountNode;
  /** Failures are reported by writes (and sealing), not by close(): the kernel sends no FLUSH request per close. */
  readonly flushless?: boolean;
  /**
   * Writes all of `data` at `offset`; resolves with its length. `data` is the handle's to keep until then (the FUSE
   * binding copies every request's bytes into a buffer of their own), so it need not be copied again.
   */
  write(data: Uint8Array, offset: number): Maybe<number>;
  /**
   * Before each write by `uid`: drops what a write takes from a file, as the kernel does for cached writes (it leaves
   * that to the file system for direct I/O ones): file capabilities, and setuid/setgid unless root writes. Returns
   * whether the mode changed.
   */
  killPriv?(uid: number): boolean;
  read(offset: number, length: number): Maybe<Uint8Array>;
  truncate(size: number): Maybe<void>;
  /** close()/fsync(): reports failures of writes so far. */
  flush(): Promise<void>;
  release(): Promise<void>;
}

/** A filesystem answer that has no PbsError code (the mount or a finished snapshot is read-only). */
export class ErrnoError extends Error {
  constructor(
    /** Negative errno. */
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}
export const EROFS = -30;
/** Negative errnos of ordinary answers of the writable trees. */
export const Errno = {
  EPERM: -1, ENOENT: -2, EEXIST: -17, EXDEV: -18, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, EFBIG: -27, ENOTEMPTY: -39, ENODATA: -61,
} as const;
export const S_IFMT = 0o170000;

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const IMMUTABLE = Number.POSITIVE_INFINITY;
/** Datastore-level nodes are reused this long; listings below them change as backups run and prune. */
export const LIVE_TTL_MS = 1000;

/** Stable inode numbers: one per key for the life of the mount (hardlinks share their target's key). */
export class InodeTable {
  private readonly map = new Map<string, number>();
  private next = 2;
  get(key: string): number {
    let ino = this.map.get(key);
    if (ino === undefined) {
      ino = this.next++;
      this.map.set(key, ino);
    }
    return ino;
  }
  /** A fresh number, for parts that keep their own key → number map (pxar archives, by entry offset). */
  allocate(): number {
    return this.next++;
  }
}

/** Linux dev_t packing of major/minor (glibc makedev), kept within the 32 bits the binding passes. */
export function makeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Milliseconds since the epoch as a Timestamp. */
export function msTimestamp(ms: number): Timestamp {
  const secs = Math.floor(ms / 1000);
  return { secs, nanos: Math.round((ms - secs * 1000) * 1e6) };
}
