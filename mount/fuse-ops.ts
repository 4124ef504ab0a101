// FUSE low-level requests → tree nodes: the inode table, open handles, directory listings, errno mapping. Each
// operation is one entry of the `ops` table, which wires it to its MountNode method. Answers come at once from
// cached state where there is some (immutable nodes) and from nodes that answer with plain values (staged trees);
// promises are awaited, and every handler is wrapped so no error (of ours or unexpected) ever reaches the binding
// or crashes the daemon.
import { isPbsError } from '../src/errors.js';
import { XATTR_ACL_ACCESS } from '../src/fs/posix-acl.js';
import { A, type FuseBinding, fuseBinding, NodeFact, type NodeFacts, Op, OpenFlag, type Req, SetAttr } from './fuse-lowlevel.js';
import { type Inode, KernelNodes, type Listing, ROOT_ID } from './kernel-nodes.js';
import type { Logger } from './log.js';
import { EROFS, ErrnoError, IMMUTABLE, LIVE_TTL_MS, type Maybe, type MountNode, type NodeStat, S_IFDIR, S_IFMT, S_IFREG, type WriteHandle, XATTR_SELINUX } from './node.js';

const ERRNO: Record<string, number> = {
  EPERM: -1, ENOENT: -2, EIO: -5, EBADF: -9, EACCES: -13, EBUSY: -16, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, EFBIG: -27, ENOSPC: -28,
  EROFS: -30, ERANGE: -34, ENOSYS: -38, ENODATA: -61, ENOTSUP: -95, EDQUOT: -122, ESTALE: -116,
};
/** Errors of the datastore's own filesystem that the writing process must see as they are. */
const PASSED_THROUGH = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG']);
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
/** rename(2) flags: RENAME_NOREPLACE is honoured; RENAME_EXCHANGE is not offered. */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
/** Kernel cache lifetime of entries and attributes inside finished snapshots, which never change. */
const IMMUTABLE_TIMEOUT_S = 86400;
/** st_blksize: cp and other writers size their buffers by it, and 1 MiB is what one FUSE request carries. */
const BLKSIZE = 1024 * 1024;
const NO_XATTRS: ReadonlyMap<string, Uint8Array> = new Map();
const STATFS = new Float64Array([4096, 4096, 0, 0, 0, 0, 0, 0, 255]);

/** Goes on with a node's answer: in this turn when it is a plain value, when it settles when it is a promise. */
function then<T>(v: Maybe<T>, next: (v: T) => Maybe<void>): Maybe<void> {
  return v instanceof Promise ? v.then(next) : next(v);
}

/** The errno of an OS error somewhere in the cause chain, when it is one the writer must see. */
function osErrno(e: unknown): number | undefined {
  for (let c = e, depth = 0; c && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && PASSED_THROUGH.has(code)) return ERRNO[code];
  }
  return undefined;
}

/** An ordinary filesystem answer (no such name, not a directory, no such attribute), not a failure to log. */
class FsAnswer {
  constructor(readonly errno: number) {}
}

/** PbsError codes as errnos: format damage and anything unexpected is EIO. */
export function errnoOf(e: unknown): number {
  if (e instanceof FsAnswer || e instanceof ErrnoError) return e.errno;
  const os = osErrno(e);
  if (os !== undefined) return os;
  if (isPbsError(e)) {
    if (e.code === 'ECORRUPT' || e.code === 'EUNSUPPORTED') return ERRNO.EIO!;
    if (e.code === 'ETOOBIG') return ERRNO.EFBIG!;
    return ERRNO[e.code] ?? ERRNO.EIO!;
  }
  return ERRNO.EIO!;
}

const immutable = (node: MountNode): boolean => node.ttlMs === IMMUTABLE;

/**
 * Files open for writing are direct I/O: each write goes to the daemon as it is, without a copy into the page cache,
 * and the kernel skips the security.capability lookup it makes before the first cached write of every file (a
 * `cp -a` makes five blocking round trips per file instead of six). The cost: no shared writable mmap of a file being
 * written.
 */
const writeOpenFlags = (w: WriteHandle): number => OpenFlag.DIRECT_IO | (w.flushless ? OpenFlag.NOFLUSH : 0);
/** The kernel cache lifetime of a node's entry and attributes, read before its stat (a node may become immutable). */
const timeoutOf = (node: MountNode): number => (immutable(node) ? IMMUTABLE_TIMEOUT_S : node.ttlMs / 1000);
/** Record `at` describes a node that never changes: it may be cached here too. */
const final = (rec: Float64Array, at = 0): boolean => rec[at * A.FIELDS + A.ATTR_TIMEOUT] === IMMUTABLE_TIMEOUT_S;

/** Fills record `at` of `out` with a node's attributes and cache lifetime (nanosecond times). */
export function writeAttrs(out: Float64Array, at: number, st: NodeStat, timeout: number): void {
  const o = at * A.FIELDS;
  out[o + A.INO] = st.ino;
  out[o + A.MODE] = st.mode;
  out[o + A.NLINK] = st.nlink;
  out[o + A.UID] = st.uid;
  out[o + A.GID] = st.gid;
  out[o + A.RDEV] = st.rdev;
  out[o + A.SIZE] = st.size;
  out[o + A.BLKSIZE] = BLKSIZE;
  out[o + A.ATIME_S] = out[o + A.MTIME_S] = out[o + A.CTIME_S] = st.mtime.secs;
  out[o + A.ATIME_NS] = out[o + A.MTIME_NS] = out[o + A.CTIME_NS] = st.mtime.nanos;
  out[o + A.ATTR_TIMEOUT] = out[o + A.ENTRY_TIMEOUT] = timeout;
}

interface Handle {
  node: MountNode;
  w?: WriteHandle;
  listing?: Listing;
}

export interface FuseOpsOptions {
  root: MountNode;
  log: Logger;
  /**
   * Checked before every operation that reaches the tree, with the datastore's path (`/<store>`; `/` at the root):
   * undefined when the check passed at once, else a promise that rejects when the operation must fail.
   */
  guard?: (path: string) => Promise<void> | undefined;
  binding?: FuseBinding;
}

type Handler = (req: Req, ...args: never[]) => void;

export class FuseOps {
  readonly inodes: KernelNodes;
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private readonly f: FuseBinding;
  /** One attribute record for single replies (the binding copies it before returning). */
  private readonly rec = new Float64Array(A.FIELDS);
  /** Requests by operation number, for the daemon's SIGUSR2 report. */
  private readonly perOp = new Uint32Array(Op.GONE + 1);
  /** The mounted session, once there is one: for attribute changes no reply carries. */
  private session?: { invalidateAttrs(ino: number): void };
  /** The session's table of final node facts. */
  private facts?: NodeFacts;

  constructor(private readonly opts: FuseOpsOptions) {
    this.inodes = new KernelNodes(opts.root);
    this.f = opts.binding ?? fuseBinding();
    // An array indexed by operation number: the dispatcher's lookup on every request.
    for (const [op, handler] of Object.entries(this.table)) this.ops[Number(op)] = handler;
  }

  /** The dispatcher the session calls for every request (always with six arguments after the request id). */
  readonly dispatch = (op: Op, req: Req, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): void => {
    this.perOp[op]++;
    const handler = this.ops[op] as ((req: Req, ...args: unknown[]) => void) | undefined;
    if (!handler) {
      this.f.replyErr(req, ERRNO.ENOSYS!);
      return;
    }
    try {
      handler(req, a, b, c, d, e, f);
    } catch (err) {
      this.fail(Op[op] ?? String(op), req, undefined, err);
    }
  };

  /** The session this serves (mounted after the dispatcher exists), with its table of final node facts. */
  attach(session: { invalidateAttrs(ino: number): void; facts: NodeFacts }): void {
    this.session = session;
    this.facts = session.facts;
  }

  /** Requests so far by operation: [name, all of them, those the session answered without JS]. */
  counts(): Array<[string, number, number]> {
    const here = this.facts?.answeredHere() ?? [];
    return [...this.perOp].flatMap((n, op) => {
      const native = here[op] ?? 0;
      return n + native ? [[(Op[op] ?? String(op)).toLowerCase(), n + native, native] as [string, number, number]] : [];
    });
  }

  private readonly ops: Handler[] = [];
  /** The operations: each maps one FUSE request to the MountNode method that answers it. */
  private readonly table: Partial<Record<Op, Handler>> = {
    [Op.LOOKUP]: (req, parent: number, name: string) => this.lookup(req, this.inode(parent), name),
    [Op.FORGET]: (_req, pairs: Float64Array) => {
      for (let k = 0; k < pairs.length; k += 2) this.forget(pairs[k]!, pairs[k + 1]!);
    },
    [Op.GETATTR]: (req, ino: number) => this.getattr(req, this.inode(ino)),
    [Op.SETATTR]: (req, ino: number, v: Float64Array, toSet: number, fh: number) => this.setattr(req, this.inode(ino), v, toSet, fh),
    [Op.READLINK]: (req, ino: number) =>
      this.later('readlink', req, this.inode(ino), (i) => {
        if (!i.node.readlink) throw new FsAnswer(ERRNO.EINVAL!);
        return then(i.node.readlink(), (target) => void this.f.replyReadlink(req, target));
      }),
    [Op.OPEN]: (req, ino: number, flags: number) => this.open(req, this.inode(ino), flags),
    [Op.READ]: (req, ino: number, size: number, off: number, fh: number) =>
      this.later('read', req, this.inode(ino), (i) => {
        const h = this.handles.get(fh);
        const src = h?.w ?? h?.node ?? i.node;
        if (!src.read) throw new FsAnswer(ERRNO.EISDIR!);
        return then(src.read(off, size), (data) => void this.f.replyData(req, data.byteLength > size ? data.subarray(0, size) : data));
      }),
    [Op.WRITE]: (req, ino: number, data: Uint8Array, off: number, fh: number, uid: number) =>
      this.later('write', req, this.inode(ino), () => {
        const w = this.handles.get(fh)?.w;
        if (!w) throw new FsAnswer(ERRNO.EBADF!);
        // The mode the kernel cached is stale then (the write reply carries no attributes).
        if (w.killPriv?.(uid)) this.session?.invalidateAttrs(ino);
        return then(w.write(data, off), (n) => void this.f.replyWrite(req, n));
      }),
    [Op.FLUSH]: (req, ino: number, fh: number) => this.flush('flush', req, this.inode(ino), fh),
    [Op.FSYNC]: (req, ino: number, fh: number) => this.flush('fsync', req, this.inode(ino), fh),
    [Op.RELEASE]: (req, ino: number, fh: number) => {
      const h = this.handles.get(fh);
      this.handles.delete(fh);
      this.f.replyErr(req, 0);
      // close() has returned already (flush reported its errors); a failure here can only be logged.
      if (h?.w) h.w.release().catch((e: unknown) => this.log('release', this.inodes.get(ino), e));
    },
    [Op.OPENDIR]: (req, ino: number) => this.opendir(req, this.inode(ino)),
    [Op.READDIR]: (req, ino: number, size: number, off: number, fh: number) => this.readdir(req, this.inode(ino), size, off, fh, false),
    [Op.READDIRPLUS]: (req, ino: number, size: number, off: number, fh: number) => this.readdir(req, this.inode(ino), size, off, fh, true),
    [Op.RELEASEDIR]: (req, _ino: number, fh: number) => {
      this.handles.delete(fh);
      this.f.replyErr(req, 0);
    },
    [Op.STATFS]: (req) => this.f.replyStatfs(req, STATFS),
    [Op.GETXATTR]: (req, ino: number, name: string, size: number) => {
      const i = this.inode(ino);
      if (i.node.xattrUnsupported?.(name)) return void this.f.replyErr(req, ERRNO.ENOTSUP!);
      this.xattrs(req, i, (x) => {
        // Asked for every file by ls -l (security.selinux, system.posix_acl_access): answered without a throw.
        const value = x.get(name);
        if (value === undefined) this.f.replyErr(req, ERRNO.ENODATA!);
        else this.replySized(req, value, size);
      });
    },
    [Op.LISTXATTR]: (req, ino: number, size: number) =>
      this.xattrs(req, this.inode(ino), (x) => this.replySized(req, Buffer.from([...x.keys()].map((n) => `${n}\0`).join(''), 'utf8'), size)),
    // The write side: what a node has no method for is read-only there.
    [Op.MKDIR]: (req, parent: number, name: string, mode: number) =>
      this.later('mkdir', req, this.inode(parent), (p) => {
        if (!p.node.mkdir) throw new FsAnswer(EROFS);
        return then(p.node.mkdir(name, mode), () => this.replyNew(req, p, name));
      }),
    [Op.RMDIR]: (req, parent: number, name: string) =>
      this.later('rmdir', req, this.inode(parent), (p) => {
        if (!p.node.rmdir) throw new FsAnswer(EROFS);
        return then(p.node.rmdir(name), () => void this.f.replyErr(req, 0));
      }),
    [Op.CREATE]: (req, parent: number, name: string, mode: number) => this.create(req, this.inode(parent), name, mode),
    // The rest of the tree changes: where the node has the method (staged trees), else EROFS.
    [Op.MKNOD]: (req, parent: number, name: string, mode: number, rdev: number) =>
      this.later('mknod', req, this.inode(parent), (p) => {
        if (!p.node.mknod) throw new FsAnswer(EROFS);
        return then(p.node.mknod(name, mode, rdev), () => this.replyNew(req, p, name));
      }),
    [Op.SYMLINK]: (req, parent: number, name: string, target: string) =>
      this.later('symlink', req, this.inode(parent), (p) => {
        if (!p.node.symlink) throw new FsAnswer(EROFS);
        return then(p.node.symlink(name, target), () => this.replyNew(req, p, name));
      }),
    [Op.LINK]: (req, ino: number, newParent: number, name: string) => {
      const target = this.inode(ino);
      this.later('link', req, this.inode(newParent), (p) => {
        if (!p.node.link) throw new FsAnswer(EROFS);
        return then(p.node.link(name, target.node), () => this.replyNew(req, p, name));
      });
    },
    [Op.UNLINK]: (req, parent: number, name: string) =>
      this.later('unlink', req, this.inode(parent), (p) => {
        if (!p.node.unlink) throw new FsAnswer(EROFS);
        return then(p.node.unlink(name), () => void this.f.replyErr(req, 0));
      }),
    [Op.RENAME]: (req, parent: number, name: string, newParent: number, newName: string, flags: number) => {
      const to = this.inode(newParent);
      this.later('rename', req, this.inode(parent), (p) => {
        const rename = p.node.rename?.bind(p.node);
        if (!rename) throw new FsAnswer(EROFS);
        if (flags & RENAME_EXCHANGE) throw new FsAnswer(ERRNO.EINVAL!);
        return then(flags & RENAME_NOREPLACE ? to.node.lookup?.(newName) : null, (existing) => {
          if (existing) throw new FsAnswer(ERRNO.EEXIST!);
          return then(rename(name, to.node, newName), () => void this.f.replyErr(req, 0));
        });
      });
    },
    [Op.SETXATTR]: (req, ino: number, name: string, value: Uint8Array, flags: number) =>
      this.later('setxattr', req, this.inode(ino), (i) => {
        if (!i.node.setxattr) throw new FsAnswer(EROFS);
        return then(i.node.setxattr(name, value, flags), (modeChanged) => {
          // An access ACL may set the mode, and the setxattr reply carries no attributes: without this the kernel
          // keeps showing the old mode (ls -l right after setfacl) until its cached attributes expire. Before the
          // reply, so the caller's next stat already asks. Only then: cp -a sets every file's ACL to its mode.
          if (modeChanged) this.session?.invalidateAttrs(i.id);
          this.f.replyErr(req, 0);
        });
      }),
    [Op.REMOVEXATTR]: (req, ino: number, name: string) =>
      this.later('removexattr', req, this.inode(ino), (i) => {
        if (!i.node.removexattr) throw new FsAnswer(EROFS);
        return then(i.node.removexattr(name), () => void this.f.replyErr(req, 0));
      }),
  };

  private inode(id: number): Inode {
    const i = this.inodes.get(id);
    if (!i) throw new FsAnswer(ERRNO.ESTALE!);
    return i;
  }

  /**
   * Runs an answer that needs the node (after the guard): at once when the guard passes at once and the node answers
   * with plain values, else when they settle. Failures, thrown or rejected, become the errno reply.
   */
  private later(op: string, req: Req, i: Inode, fn: (i: Inode) => Maybe<void>): void {
    try {
      const guarded = this.opts.guard?.(`/${i.top}`);
      const done = guarded ? guarded.then(() => fn(i)) : fn(i);
      if (done instanceof Promise) done.catch((e: unknown) => this.fail(op, req, i, e));
    } catch (e) {
      this.fail(op, req, i, e);
    }
  }

  private fail(op: string, req: Req, i: Inode | undefined, e: unknown): void {
    const errno = errnoOf(e);
    if (!(e instanceof FsAnswer) && !(e instanceof ErrnoError) && (errno === ERRNO.EIO || errno === ERRNO.EACCES || !isPbsError(e))) this.log(op, i, e);
    this.f.replyErr(req, errno);
  }

  private log(op: string, i: Inode | undefined, e: unknown): void {
    this.opts.log.error(`${op} ${i ? this.pathOf(i) : '?'}: ${isPbsError(e) ? e.message : ((e as Error)?.stack ?? String(e))}`);
  }

  /** The node's path as far as the kernel still holds its parents (for log lines). */
  private pathOf(i: Inode): string {
    const parts: string[] = [];
    for (let c: Inode | undefined = i, n = 0; c && c.id !== ROOT_ID && n < 64; c = this.inodes.get(c.parent), n++) parts.push(c.name);
    return `/${parts.reverse().join('/')}`;
  }

  /** Answers with a child's entry; the kernel holds one more reference unless the request was gone already. */
  private replyEntry(req: Req, p: Inode, name: string, node: MountNode | null | undefined): Maybe<void> {
    if (!node) throw new FsAnswer(ERRNO.ENOENT!);
    const timeout = timeoutOf(node);
    return then(node.stat(), (st) => {
      writeAttrs(this.rec, 0, st, timeout);
      const i = this.inodes.ref(st.ino, node, p, name);
      if (final(this.rec)) this.keepAttrs(i, this.rec.slice(), 0);
      if (this.f.replyEntry(req, this.rec, 0) !== 0) this.forget(i.id, 1);
    });
  }

  /** Answers mkdir/mknod/symlink/link with the entry just made. */
  private replyNew(req: Req, p: Inode, name: string): Maybe<void> {
    return then(p.node.lookup?.(name), (node) => this.replyEntry(req, p, name, node));
  }

  /**
   * Keeps record `k` of `attrs` as the node's attributes when it describes a node that never changes, and hands
   * the session what it can answer about the node by itself from now on.
   */
  private keepAttrs(i: Inode, attrs: Float64Array, k: number): void {
    if (i.attrs || !final(attrs, k)) return;
    i.attrs = attrs;
    i.attrsAt = k;
    if (i.node.noXattrs) i.xattrs = NO_XATTRS;
    this.facts?.keep(attrs, k, this.factsOf(i));
  }

  private factsOf(i: Inode): number {
    const mode = i.attrs![i.attrsAt * A.FIELDS + A.MODE]!;
    return (
      NodeFact.ATTRS |
      (i.xattrs === NO_XATTRS ? NodeFact.NO_XATTRS : 0) |
      ((mode & S_IFMT) === S_IFREG && i.node.read ? NodeFact.READ_OPEN : 0) |
      (i.node.xattrUnsupported?.(XATTR_SELINUX) ? NodeFact.NO_SELINUX : 0) |
      (i.node.xattrUnsupported?.(XATTR_ACL_ACCESS) ? NodeFact.NO_ACLS : 0)
    );
  }

  private forget(id: number, n: number): void {
    if (this.inodes.forget(id, n)) this.facts?.drop(id);
  }

  private lookup(req: Req, p: Inode, name: string): void {
    const l = p.listing;
    if (l) {
      // A cached listing is complete: the answer is in it, or the name does not exist.
      l.byName ??= new Map(l.names.map((n, k) => [n, k]));
      const k = l.byName.get(name);
      if (k === undefined || k < 2) return void this.f.replyErr(req, ERRNO.ENOENT!);
      const i = this.inodes.ref(l.attrs[k * A.FIELDS + A.INO]!, l.nodes[k - 2]!, p, name);
      this.keepAttrs(i, l.attrs, k);
      if (this.f.replyEntry(req, l.attrs, k) !== 0) this.forget(i.id, 1);
      return;
    }
    this.later('lookup', req, p, () => {
      if (!p.node.lookup) throw new FsAnswer(ERRNO.ENOTDIR!);
      // No such name: the kernel asks this before every create, so it is answered without a throw.
      return then(p.node.lookup(name), (node) => (node ? this.replyEntry(req, p, name, node) : void this.f.replyErr(req, ERRNO.ENOENT!)));
    });
  }

  private getattr(req: Req, i: Inode): void {
    if (i.attrs) return void this.f.replyAttr(req, i.attrs, i.attrsAt);
    this.later('getattr', req, i, () => {
      // The root's attributes are cached for at most a second: every path walk into the mount checks the root's
      // permissions, and an uncached root costs one request per path-based syscall; a second later a stat of the
      // mount point of a dead daemon shows ENOTCONN. Stale-mount detection asks statfs, which is never cached.
      const timeout = i.id === ROOT_ID ? Math.min(timeoutOf(i.node), LIVE_TTL_MS / 1000) : timeoutOf(i.node);
      return then(i.node.stat(), (st) => {
        const rec = new Float64Array(A.FIELDS);
        writeAttrs(rec, 0, st, timeout);
        this.keepAttrs(i, rec, 0);
        this.f.replyAttr(req, rec, 0);
      });
    });
  }

  /** chmod/chown/utimens → MountNode.setattr, truncate → the open handle's or the node's truncate. */
  private setattr(req: Req, i: Inode, v: Float64Array, toSet: number, fh: number): void {
    this.later('setattr', req, i, () => {
      const node = i.node;
      let truncated: Maybe<void> = undefined;
      if (toSet & SetAttr.SIZE) {
        const w = this.handles.get(fh)?.w;
        if (w) truncated = w.truncate(v[3]!);
        else if (node.truncate) truncated = node.truncate(v[3]!);
        else throw new FsAnswer(EROFS);
      }
      return then(truncated, () => {
        let changed: Maybe<void> = undefined;
        if (toSet & (SetAttr.MODE | SetAttr.UID | SetAttr.GID | SetAttr.ATIME | SetAttr.MTIME)) {
          if (!node.setattr) throw new FsAnswer(EROFS);
          const change: Parameters<NonNullable<MountNode['setattr']>>[0] = {};
          if (toSet & SetAttr.MODE) change.mode = v[0]!;
          if (toSet & SetAttr.UID) change.uid = v[1]!;
          if (toSet & SetAttr.GID) change.gid = v[2]!;
          if (toSet & SetAttr.MTIME) change.mtime = { secs: v[6]!, nanos: v[7]! };
          // atime is not kept anywhere: a change of it alone has nothing to do.
          if (Object.keys(change).length) changed = node.setattr(change);
        }
        return then(changed, () =>
          then(node.stat(), (st) => {
            const rec = new Float64Array(A.FIELDS);
            writeAttrs(rec, 0, st, timeoutOf(node));
            this.f.replyAttr(req, rec, 0);
          }),
        );
      });
    });
  }

  private addHandle(h: Handle): number {
    const fh = this.nextFh++;
    this.handles.set(fh, h);
    return fh;
  }

  private open(req: Req, i: Inode, flags: number): void {
    const node = i.node;
    if (!node.read) throw new FsAnswer(ERRNO.EISDIR!);
    if ((flags & O_ACCMODE) === 0 && !(flags & O_TRUNC)) {
      // Contents of finished snapshots never change: the kernel keeps their pages across opens.
      // Nothing to flush for a reader: no FLUSH request on every close (tar opens tens of thousands of files).
      const fh = this.addHandle({ node });
      if (this.f.replyOpen(req, fh, OpenFlag.NOFLUSH | (immutable(node) ? OpenFlag.KEEP_CACHE : 0)) !== 0) this.handles.delete(fh);
      return;
    }
    this.later('open', req, i, () => {
      if (!node.openWrite) throw new FsAnswer(EROFS);
      return then(node.openWrite(), (w) => {
        const reply = (): Maybe<void> => {
          const fh = this.addHandle({ node, w });
          if (this.f.replyOpen(req, fh, writeOpenFlags(w)) === 0) return;
          this.handles.delete(fh);
          return w.release();
        };
        if (!(flags & O_TRUNC)) return reply();
        // A failed truncate leaves no open handle behind.
        const failed = (e: unknown): Promise<void> => w.release().then(() => Promise.reject(e));
        let truncated: Maybe<void>;
        try {
          truncated = w.truncate(0);
        } catch (e) {
          return failed(e);
        }
        return truncated instanceof Promise ? truncated.then(reply, failed) : reply();
      });
    });
  }

  private create(req: Req, p: Inode, name: string, mode: number): void {
    this.later('create', req, p, () => {
      if (!p.node.create) throw new FsAnswer(EROFS);
      return then(p.node.create(name, mode), (w) =>
        then(w.node.stat(), (st) => {
          const rec = new Float64Array(A.FIELDS);
          writeAttrs(rec, 0, st, timeoutOf(w.node));
          const i = this.inodes.ref(st.ino, w.node, p, name);
          const fh = this.addHandle({ node: w.node, w });
          if (this.f.replyCreate(req, rec, fh, writeOpenFlags(w)) === 0) return;
          this.handles.delete(fh);
          this.forget(i.id, 1);
          return w.release();
        }),
      );
    });
  }

  private flush(op: string, req: Req, i: Inode, fh: number): void {
    const w = this.handles.get(fh)?.w;
    if (!w) return void this.f.replyErr(req, 0);
    this.later(op, req, i, async () => {
      await w.flush();
      this.f.replyErr(req, 0);
    });
  }

  /** '.', '..' and the children, each with its attributes (readdirplus sends them all in one go). */
  private async listing(i: Inode): Promise<Listing> {
    const node = i.node;
    const timeout = timeoutOf(node);
    const [entries, self] = await Promise.all([node.readdir!(), node.stat()]);
    const timeouts = entries.map(([, child]) => timeoutOf(child));
    const stats = await Promise.all(entries.map(([, child]) => child.stat()));
    const attrs = new Float64Array((entries.length + 2) * A.FIELDS);
    writeAttrs(attrs, 0, self, timeout);
    writeAttrs(attrs, 1, { ...self, ino: i.parent, mode: S_IFDIR | 0o555 }, timeout);
    stats.forEach((st, k) => writeAttrs(attrs, k + 2, st, timeouts[k]!));
    return { names: ['.', '..', ...entries.map(([name]) => name)], nodes: entries.map(([, child]) => child), attrs };
  }

  private opendir(req: Req, i: Inode): void {
    if (!i.node.readdir) throw new FsAnswer(ERRNO.ENOTDIR!);
    const flags = immutable(i.node) ? OpenFlag.KEEP_CACHE | OpenFlag.CACHE_DIR : 0;
    const reply = (listing: Listing): void => {
      const fh = this.addHandle({ node: i.node, listing });
      if (this.f.replyOpen(req, fh, flags) !== 0) this.handles.delete(fh);
    };
    if (i.listing) return reply(i.listing);
    this.later('opendir', req, i, async () => {
      const listing = await this.listing(i);
      // Immutable listings are kept: lookups in the directory are then answered from them.
      if (immutable(i.node) && listing.nodes.every((_, k) => final(listing.attrs, k + 2))) i.listing = listing;
      reply(listing);
    });
  }

  private readdir(req: Req, i: Inode, size: number, off: number, fh: number, plus: boolean): void {
    const l = this.handles.get(fh)?.listing;
    if (!l) throw new FsAnswer(ERRNO.EBADF!);
    const sent = this.f.replyDir(req, plus, size, off, l.names, l.attrs);
    if (!plus) return;
    // Every readdirplus entry but '.' and '..' is a lookup the kernel now holds.
    for (let k = Math.max(off, 2); k < off + sent; k++) {
      const child = this.inodes.ref(l.attrs[k * A.FIELDS + A.INO]!, l.nodes[k - 2]!, i, l.names[k]!);
      this.keepAttrs(child, l.attrs, k);
    }
  }

  /** getxattr/listxattr: from the node's cached map when it never changes, else asked for. */
  private xattrs(req: Req, i: Inode, answer: (x: ReadonlyMap<string, Uint8Array>) => void): void {
    if (i.xattrs) return answer(i.xattrs);
    this.later('xattr', req, i, () =>
      then(i.node.xattrs?.() ?? NO_XATTRS, (x) => {
        // Most entries have none: one shared empty map instead of a Map per held node (~0.3 KiB each).
        if (immutable(i.node)) {
          i.xattrs = x.size === 0 ? NO_XATTRS : x;
          if (i.attrs && x.size === 0) this.facts?.keep(i.attrs, i.attrsAt, this.factsOf(i));
        }
        answer(x);
      }),
    );
  }

  /** An xattr value or list: its size when asked with size 0, ERANGE when it does not fit. */
  private replySized(req: Req, value: Uint8Array, size: number): void {
    if (size === 0) this.f.replyXattrSize(req, value.byteLength);
    else if (value.byteLength > size) this.f.replyErr(req, ERRNO.ERANGE!);
    else this.f.replyData(req, value);
  }
}
