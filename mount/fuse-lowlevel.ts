// The libfuse 3 low-level binding of the native addon (native/src/fuse-ll.c) and one mounted session: options,
// stale-mount replacement, unmount with fusermount3, and the end of the mount however it came (the kernel
// reports an outside unmount on the session fd).
import { execFile } from 'node:child_process';
import { stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { PbsError } from '../src/errors.js';
import { nativeAddon } from '../src/native.js';
import type { Logger } from './log.js';

const run = promisify(execFile);
const UNMOUNT_TRIES = 5;
const UNMOUNT_RETRY_MS = 200;

/** Operation numbers passed to the dispatcher (the enum in fuse-ll.c). */
export enum Op {
  LOOKUP = 1, FORGET, GETATTR, SETATTR, READLINK, MKNOD, MKDIR, UNLINK, RMDIR, SYMLINK, RENAME, LINK, OPEN, READ,
  WRITE, FLUSH, RELEASE, FSYNC, OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, STATFS, SETXATTR, GETXATTR, LISTXATTR,
  REMOVEXATTR, CREATE, GONE,
}

/** Fields of an attribute record (a Float64Array slice), the layout fuse-ll.c reads. */
export enum A {
  INO, MODE, NLINK, UID, GID, RDEV, SIZE, BLKSIZE, ATIME_S, ATIME_NS, MTIME_S, MTIME_NS, CTIME_S, CTIME_NS,
  ATTR_TIMEOUT, ENTRY_TIMEOUT, FIELDS,
}

/** Open reply flags. */
export enum OpenFlag {
  DIRECT_IO = 1, KEEP_CACHE = 2, CACHE_DIR = 4, NONSEEKABLE = 8, NOFLUSH = 16,
}

/** setattr's `toSet` bits (FUSE_SET_ATTR_*), after the *_NOW ones were resolved to times. */
export enum SetAttr {
  MODE = 1, UID = 2, GID = 4, SIZE = 8, ATIME = 16, MTIME = 32,
}

/** What the session may answer about a kept node without asking JS (bits of keepNode's flags). */
export enum NodeFact {
  ATTRS = 1, NO_XATTRS = 2, READ_OPEN = 4, NO_SELINUX = 8, NO_ACLS = 16,
}

/** The session's table of nodes that never change (see native/src/fuse-node-cache.h). */
export interface NodeFacts {
  keep(attrs: Float64Array, index: number, flags: number): void;
  drop(ino: number): void;
  answeredHere(): number[];
}

/** A request id; every reply function answers it at most once (later calls return 1 and do nothing). */
export type Req = number;
export type Dispatch = (op: Op, req: Req, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown) => void;

export interface FuseBinding {
  mount(mountpoint: string, args: string[], maxWrite: number, maxReadahead: number, readdirplus: 0 | 1 | 2, dispatch: Dispatch, spinMicros: number): unknown;
  close(session: unknown): void;
  /** Record `index` of `attrs` is final; `flags` (NodeFact) say which requests the session answers by itself. */
  keepNode(session: unknown, attrs: Float64Array, index: number, flags: number): void;
  dropNode(session: unknown, ino: number): void;
  /** Requests answered without JS, indexed by op number. */
  answeredHere(session: unknown): number[];
  replyErr(req: Req, errno: number): number;
  /** Answers with record `index` of `attrs`. */
  replyEntry(req: Req, attrs: Float64Array, index: number): number;
  replyCreate(req: Req, attrs: Float64Array, fh: number, flags: number): number;
  replyAttr(req: Req, attrs: Float64Array, index: number): number;
  replyOpen(req: Req, fh: number, flags: number): number;
  replyData(req: Req, data: Uint8Array): number;
  replyWrite(req: Req, count: number): number;
  replyReadlink(req: Req, target: string): number;
  replyXattrSize(req: Req, size: number): number;
  replyStatfs(req: Req, values: Float64Array): number;
  /** Directory entries from `offset` that fit in `size` bytes; returns how many were sent (-1: answered already). */
  replyDir(req: Req, plus: boolean, size: number, offset: number, names: readonly string[], attrs: Float64Array): number;
  /** The kernel drops a node's cached attributes (0, or a negative errno). */
  notifyInvalInode(session: unknown, ino: number): number;
}

export function fuseBinding(): FuseBinding {
  return nativeAddon<{ fuse: FuseBinding }>().fuse;
}

/** Request and buffer sizes: 1 MiB reads and writes (libfuse turns max_write into the kernel's max_pages). */
export const MAX_IO = 1024 * 1024;

/**
 * Polling window after each batch of requests. Measured here (2-vCPU VM whose idle vCPUs halt without polling): a
 * request/reply pair costs ~60 µs across CPUs when the daemon sleeps between requests, ~20 µs when it polls. Clients
 * that walk a tree send their next request within 50 µs, but `cp -a` reads its next source file in between: cold
 * copy of the bench tree 22-27 s with 50 µs, 16-18 s with 300 µs (runs without host steal). Longer windows gained
 * nothing more and drew host steal time. PBSFS_FUSE_SPIN_US overrides it (0 turns it off, at most 1000).
 */
export const DEFAULT_SPIN_US = 300;

function spinFromEnv(): number {
  const v = Number(process.env.PBSFS_FUSE_SPIN_US);
  return process.env.PBSFS_FUSE_SPIN_US !== undefined && Number.isFinite(v) && v >= 0 ? Math.min(v, 1000) : DEFAULT_SPIN_US;
}

export interface SessionOptions {
  mountpoint: string;
  dispatch: Dispatch;
  log: Logger;
  allowOther?: boolean;
  /** The kernel refuses every change (EROFS) before it reaches the daemon. */
  readOnly?: boolean;
  /** 0: plain readdir, 1: always readdirplus, 2: the kernel's adaptive choice. */
  readdirplus?: 0 | 1 | 2;
  /** How long the daemon polls for the next request after answering before it sleeps (0: never; see DEFAULT_SPIN_US). */
  spinMicros?: number;
  /** Called once when the mount is gone, whoever unmounted it. */
  onGone?: () => void;
}

/** A previous daemon that died leaves "transport endpoint is not connected": lazily unmount it. */
export async function clearStaleMount(mountpoint: string, log: Logger): Promise<void> {
  try {
    // statfs is never answered from the kernel's caches: a dead daemon's mount fails it with ENOTCONN at once.
    await statfs(mountpoint);
    const [st, parent] = await Promise.all([stat(mountpoint), stat(dirname(mountpoint))]);
    if (!st.isDirectory()) throw new PbsError('EINVAL', 'mount point is not a directory', { path: mountpoint });
    if (st.dev !== parent.dev) throw new PbsError('EBUSY', 'something is already mounted here (pbsfs umount it first)', { path: mountpoint });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTCONN') {
      if (code === 'ENOENT') throw new PbsError('ENOENT', 'mount point does not exist', { path: mountpoint });
      throw e;
    }
    log.info(`replacing stale mount at ${mountpoint}`);
    await run('fusermount3', ['-uz', mountpoint]).catch((err: Error) => {
      throw new PbsError('EBUSY', `cannot remove the stale mount: ${err.message}`, { path: mountpoint });
    });
  }
}

/**
 * The kernel reads ahead at most the device's read_ahead_kb (128 KiB) per FUSE request, whatever max_readahead
 * the daemon offers; 1 MiB requests for sequential readers (dd, cp, tar of big files) need the sysfs knob of the
 * mount's bdi (root only: otherwise reads stay at 128 KiB).
 */
async function raiseReadahead(mountpoint: string, log: Logger): Promise<void> {
  try {
    // Served by this process's event loop: the stat must not be synchronous.
    const dev = (await stat(mountpoint)).dev;
    const major = Math.floor(dev / 256) & 0xfff;
    const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
    await writeFile(`/sys/class/bdi/${major}:${minor}/read_ahead_kb`, String(MAX_IO / 1024));
  } catch (e) {
    log.info(`read-ahead stays at the kernel's default: ${(e as Error).message}`);
  }
}

/**
 * The kernel checks modes and owners (`default_permissions`) unless only root can reach the mount: without
 * allow_other the kernel lets only processes of the daemon's user in, and for root every check passes anyway. The
 * checks are not free: the kernel drops a directory's attributes on every create in it and asks for them again
 * (one GETATTR) before the next path walk through it, about one request in ten of a `cp -a` into the mount.
 */
export function needsPermissionChecks(allowOther: boolean | undefined, uid = process.getuid?.() ?? -1): boolean {
  return allowOther === true || uid !== 0;
}

export class FuseSession {
  private gone = false;
  private handle: unknown;

  private constructor(
    readonly mountpoint: string,
    private readonly opts: SessionOptions,
  ) {}

  static async mount(opts: SessionOptions): Promise<FuseSession> {
    const mountpoint = resolve(opts.mountpoint);
    await clearStaleMount(mountpoint, opts.log);
    const session = new FuseSession(mountpoint, opts);
    // auto_unmount: fusermount3 takes the mount down when the daemon dies (the session fd closes).
    const options = ['fsname=pbsfs', 'subtype=pbsfs', 'auto_unmount', `max_read=${MAX_IO}`];
    if (opts.allowOther) options.push('allow_other');
    if (needsPermissionChecks(opts.allowOther)) options.push('default_permissions');
    if (opts.readOnly !== false) options.push('ro');
    const dispatch: Dispatch = (op, req, a, b, c, d, e, f) => (op === Op.GONE ? session.markGone() : opts.dispatch(op, req, a, b, c, d, e, f));
    try {
      session.handle = fuseBinding().mount(mountpoint, ['pbsfs', '-o', options.join(',')], MAX_IO, MAX_IO, opts.readdirplus ?? 1, dispatch, opts.spinMicros ?? spinFromEnv());
    } catch (e) {
      throw new PbsError('EIO', `mount failed: ${(e as Error).message}`, { path: mountpoint, cause: e });
    }
    await raiseReadahead(mountpoint, opts.log);
    opts.log.info(`mounted at ${mountpoint}`);
    return session;
  }

  /** The session's own answers for nodes that never change. */
  readonly facts: NodeFacts = {
    keep: (attrs, index, flags) => {
      if (!this.gone) fuseBinding().keepNode(this.handle, attrs, index, flags);
    },
    drop: (ino) => {
      if (!this.gone) fuseBinding().dropNode(this.handle, ino);
    },
    answeredHere: () => (this.gone ? [] : fuseBinding().answeredHere(this.handle)),
  };

  /** The kernel asks for the node's attributes again at its next stat (for changes no reply carried). */
  invalidateAttrs(ino: number): void {
    if (!this.gone) fuseBinding().notifyInvalInode(this.handle, ino);
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    fuseBinding().close(this.handle);
    this.opts.log.info(`unmounted ${this.mountpoint}`);
    this.opts.onGone?.();
  }

  /**
   * Unmounts (EBUSY while files are open, after a few tries: the kernel may still be finishing the releases of
   * files just closed); the kernel then ends the session, which calls onGone.
   */
  async unmount(): Promise<void> {
    for (let attempt = 1; !this.gone; attempt++) {
      try {
        await run('fusermount3', ['-u', this.mountpoint]);
        return;
      } catch (err) {
        if (this.gone) return;
        if (attempt === UNMOUNT_TRIES) throw new PbsError('EBUSY', `unmount failed: ${(err as Error).message.trim()}`, { path: this.mountpoint, cause: err });
        await delay(UNMOUNT_RETRY_MS);
      }
    }
  }
}
