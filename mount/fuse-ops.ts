// FUSE calls → tree nodes: path resolution through a bounded path cache, open-file handles, errno mapping.
// Every operation is wrapped, so no error (of ours or unexpected) ever reaches the binding or crashes the daemon.
import type { FuseOps, FuseStat } from 'fuse-native';
import { isPbsError } from '../src/errors.js';
import type { Logger } from './log.js';
import { EROFS, ErrnoError, IMMUTABLE, msTimestamp, type MountNode, type NodeStat, type WriteHandle } from './node.js';

const ERRNO: Record<string, number> = {
  EPERM: -1, ENOENT: -2, EIO: -5, EBADF: -9, EACCES: -13, EBUSY: -16, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, EFBIG: -27, ENOSPC: -28,
  EROFS: -30, ERANGE: -34, ENODATA: -61, ENOTSUP: -95, EDQUOT: -122,
};
/** Errors of the datastore's own filesystem that the writing process must see as they are. */
const PASSED_THROUGH = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG']);
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

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

/**
 * A bounded map in two generations, each holding at most half the budget (counted in `weight` units); a hit in the
 * old generation moves to the current one, and when the current one fills up the old one is dropped. (Moving
 * entries within one Map on every hit leaves V8 tombstones that make it slow.) Entries may also expire.
 */
export class Generations<V> {
  private cur = new Map<string, { value: V; weight: number; expires: number }>();
  private old = new Map<string, { value: V; weight: number; expires: number }>();
  private curWeight = 0;
  constructor(private readonly budget: number) {}
  get(key: string, now: number): V | undefined {
    let c = this.cur.get(key);
    if (!c) {
      c = this.old.get(key);
      if (c && c.expires >= now) this.put(key, c);
    }
    return c && c.expires >= now ? c.value : undefined;
  }
  delete(key: string): void {
    this.cur.delete(key);
    this.old.delete(key);
  }
  set(key: string, value: V, weight: number, now: number, ttlMs = Number.POSITIVE_INFINITY): void {
    this.put(key, { value, weight, expires: now + ttlMs });
  }
  private put(key: string, c: { value: V; weight: number; expires: number }): void {
    if (this.curWeight + c.weight > this.budget / 2) {
      this.old = this.cur;
      this.cur = new Map();
      this.curWeight = 0;
    }
    this.cur.set(key, c);
    this.curWeight += c.weight;
  }
}

/** Path → node; live (datastore-level) nodes expire after their ttl. */
export class PathCache {
  private readonly g: Generations<MountNode>;
  constructor(max: number) {
    this.g = new Generations(max);
  }
  get(path: string, now: number): MountNode | undefined {
    return this.g.get(path, now);
  }
  set(path: string, node: MountNode, now: number): void {
    this.g.set(path, node, 1, now, node.ttlMs);
  }
  /** A name that went away or moved (its cached descendants fail the ancestor check from then on). */
  forget(path: string): void {
    this.g.delete(path);
  }
}

export interface TreeOpsOptions {
  root: MountNode;
  log: Logger;
  /** Checked before every operation (e.g. the datastore of the path is not offline). */
  guard?: (path: string) => Promise<void>;
  cacheEntries?: number;
}

function toFuseStat(s: NodeStat): FuseStat {
  const ms = s.mtime.secs * 1000 + Math.floor(s.mtime.nanos / 1e6);
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino: s.ino, rdev: s.rdev,
    blksize: 4096, blocks: Math.ceil(s.size / 512), atime: ms, mtime: ms, ctime: ms,
  };
}

export class TreeOps {
  private readonly cache: PathCache;
  private readonly listings: Generations<Array<[string, MountNode]>>;
  private readonly handles = new Map<number, { node: MountNode; w?: WriteHandle }>();
  private nextFd = 1;

  constructor(private readonly opts: TreeOpsOptions) {
    this.cache = new PathCache(opts.cacheEntries ?? 200_000);
    this.listings = new Generations(opts.cacheEntries ?? 200_000);
  }

  /** Walks up to the nearest cached ancestor; parents are always re-validated, so a vanished snapshot takes its subtree with it. */
  async resolve(path: string): Promise<MountNode> {
    return this.cachedChain(path) ?? this.resolveSlow(path);
  }

  /** The node when it and every ancestor are cached and fresh: the common case, answered without awaiting. */
  private cachedChain(path: string): MountNode | undefined {
    if (path === '/') return this.opts.root;
    const now = Date.now();
    const node = this.cache.get(path, now);
    if (!node) return undefined;
    for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) {
      if (!this.cache.get(path.slice(0, end), now)) return undefined;
    }
    return node;
  }

  private async resolveSlow(path: string): Promise<MountNode> {
    if (path === '/') return this.opts.root;
    const slash = path.lastIndexOf('/');
    const parent = await this.resolve(slash === 0 ? '/' : path.slice(0, slash));
    const now = Date.now();
    const hit = this.cache.get(path, now);
    if (hit) return hit;
    if (!parent.lookup) throw new FsAnswer(ERRNO.ENOTDIR!);
    const node = await parent.lookup(path.slice(slash + 1));
    if (!node) throw new FsAnswer(ERRNO.ENOENT!);
    this.cache.set(path, node, now);
    return node;
  }

  private run<T>(op: string, path: string, fn: () => Promise<T>, done: (err: number, value?: T) => void): void {
    (async () => {
      if (this.opts.guard) await this.opts.guard(path);
      return fn();
    })().then(
      (v) => done(0, v),
      (e: unknown) => {
        const errno = errnoOf(e);
        if (!(e instanceof FsAnswer) && !(e instanceof ErrnoError) && (errno === ERRNO.EIO || errno === ERRNO.EACCES || !isPbsError(e))) {
          this.opts.log.error(`${op} ${path}: ${isPbsError(e) ? e.message : ((e as Error)?.stack ?? String(e))}`);
        }
        done(errno);
      },
    );
  }

  private addHandle(node: MountNode, w?: WriteHandle): number {
    const fd = this.nextFd++;
    this.handles.set(fd, { node, w });
    return fd;
  }

  private async parentOf(path: string): Promise<{ parent: MountNode; name: string }> {
    const slash = path.lastIndexOf('/');
    return { parent: await this.resolve(slash === 0 ? '/' : path.slice(0, slash)), name: path.slice(slash + 1) };
  }

  private async settable(path: string): Promise<MountNode> {
    const node = await this.resolve(path);
    if (!node.setattr) throw new FsAnswer(EROFS);
    return node;
  }

  /** EROFS for an existing path (ENOENT where there is nothing to change). */
  private async readOnly(path: string): Promise<never> {
    await this.resolve(path).catch((e: unknown) => {
      if (!(e instanceof FsAnswer)) throw e;
    });
    throw new FsAnswer(EROFS);
  }

  ops(): FuseOps {
    return {
      getattr: (path, cb) => this.run('getattr', path, async () => toFuseStat(await (await this.resolve(path)).stat()), cb),
      readdir: (path, cb) =>
        this.run('readdir', path, async () => {
          const node = await this.resolve(path);
          if (!node.readdir) throw new FsAnswer(ERRNO.ENOTDIR!);
          const now = Date.now();
          let entries = this.listings.get(path, now);
          if (!entries) {
            entries = await node.readdir();
            // Immutable listings are kept (ls -R and tar list every directory again on each pass).
            if (node.ttlMs === IMMUTABLE) this.listings.set(path, entries, entries.length, now);
          }
          const prefix = path === '/' ? '/' : `${path}/`;
          for (const [name, child] of entries) this.cache.set(prefix + name, child, now);
          return ['.', '..', ...entries.map(([name]) => name)];
        }, cb),
      open: (path, flags, cb) =>
        this.run('open', path, async () => {
          const node = await this.resolve(path);
          if (!node.read) throw new FsAnswer(ERRNO.EISDIR!);
          let w: WriteHandle | undefined;
          if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) {
            if (!node.openWrite) throw new FsAnswer(EROFS);
            w = await node.openWrite();
            if (flags & O_TRUNC) await w.truncate(0);
          }
          return this.addHandle(node, w);
        }, cb),
      create: (path, mode, cb) =>
        this.run('create', path, async () => {
          const { parent, name } = await this.parentOf(path);
          if (!parent.create) throw new FsAnswer(EROFS);
          const w = await parent.create(name, mode);
          this.cache.set(path, w.node, Date.now());
          return this.addHandle(w.node, w);
        }, cb),
      release: (path, fd, cb) => {
        const h = this.handles.get(fd);
        this.handles.delete(fd);
        // close() has returned already (flush reported its errors); a failure here can only be logged.
        if (h?.w) this.run('release', path, () => h.w!.release(), () => undefined);
        cb(0);
      },
      flush: (path, fd, cb) => this.run('flush', path, async () => this.handles.get(fd)?.w?.flush(), cb),
      fsync: (path, _datasync, fd, cb) => this.run('fsync', path, async () => this.handles.get(fd)?.w?.flush(), cb),
      write: (path, fd, buf, len, pos, cb) =>
        this.run('write', path, async () => {
          const w = this.handles.get(fd)?.w;
          if (!w) throw new FsAnswer(ERRNO.EBADF!);
          return w.write(buf.subarray(0, len), pos);
        }, (err, n) => cb(err < 0 ? err : (n ?? 0))),
      truncate: (path, size, cb) =>
        this.run('truncate', path, async () => {
          const node = await this.resolve(path);
          if (!node.truncate) throw new FsAnswer(EROFS);
          await node.truncate(size);
        }, cb),
      ftruncate: (path, fd, size, cb) =>
        this.run('ftruncate', path, async () => {
          const w = this.handles.get(fd)?.w;
          if (!w) throw new FsAnswer(EROFS);
          await w.truncate(size);
        }, cb),
      mkdir: (path, mode, cb) =>
        this.run('mkdir', path, async () => {
          const { parent, name } = await this.parentOf(path);
          if (!parent.mkdir) throw new FsAnswer(EROFS);
          await parent.mkdir(name, mode);
        }, cb),
      rmdir: (path, cb) =>
        this.run('rmdir', path, async () => {
          const { parent, name } = await this.parentOf(path);
          if (!parent.rmdir) throw new FsAnswer(EROFS);
          await parent.rmdir(name);
          this.cache.forget(path);
        }, cb),
      chmod: (path, mode, cb) => this.run('chmod', path, async () => (await this.settable(path)).setattr!({ mode }), cb),
      chown: (path, uid, gid, cb) => this.run('chown', path, async () => (await this.settable(path)).setattr!({ uid, gid }), cb),
      utimens: (path, _atime, mtime, cb) => this.run('utimens', path, async () => (await this.settable(path)).setattr!({ mtime: msTimestamp(mtime >= 2 ** 63 ? mtime - 2 ** 64 : mtime) }), cb),
      // The rest of the tree changes: where the node has the method (staged trees), else EROFS.
      unlink: (path, cb) => this.run('unlink', path, async () => {
        const { parent, name } = await this.parentOf(path);
        if (!parent.unlink) return this.readOnly(path);
        await parent.unlink(name);
        this.cache.forget(path);
      }, cb),
      rename: (src, dest, cb) => this.run('rename', src, async () => {
        const [from, to] = await Promise.all([this.parentOf(src), this.parentOf(dest)]);
        if (!from.parent.rename) return this.readOnly(src);
        await from.parent.rename(from.name, to.parent, to.name);
        this.cache.forget(src);
        this.cache.forget(dest);
      }, cb),
      symlink: (target, path, cb) => this.run('symlink', path, async () => {
        const { parent, name } = await this.parentOf(path);
        if (!parent.symlink) throw new FsAnswer(EROFS);
        await parent.symlink(name, target);
      }, cb),
      link: (src, path, cb) => this.run('link', path, async () => {
        const [target, { parent, name }] = await Promise.all([this.resolve(src), this.parentOf(path)]);
        if (!parent.link) throw new FsAnswer(EROFS);
        await parent.link(name, target);
      }, cb),
      mknod: (path, mode, dev, cb) => this.run('mknod', path, async () => {
        const { parent, name } = await this.parentOf(path);
        if (!parent.mknod) throw new FsAnswer(EROFS);
        await parent.mknod(name, mode, dev);
      }, cb),
      setxattr: (path, name, value, _position, flags, cb) => this.run('setxattr', path, async () => {
        const node = await this.resolve(path);
        if (!node.setxattr) throw new FsAnswer(EROFS);
        await node.setxattr(name, value, flags);
      }, cb),
      removexattr: (path, name, cb) => this.run('removexattr', path, async () => {
        const node = await this.resolve(path);
        if (!node.removexattr) throw new FsAnswer(EROFS);
        await node.removexattr(name);
      }, cb),
      read: (path, fd, buf, len, pos, cb) =>
        this.run('read', path, async () => {
          const h = this.handles.get(fd);
          const node = h?.w ?? h?.node ?? (await this.resolve(path));
          if (!node.read) throw new FsAnswer(ERRNO.EISDIR!);
          const data = await node.read(pos, len);
          buf.set(data.subarray(0, len));
          return Math.min(data.byteLength, len);
        }, (err, n) => cb(err < 0 ? err : (n ?? 0))),
      readlink: (path, cb) =>
        this.run('readlink', path, async () => {
          const node = await this.resolve(path);
          if (!node.readlink) throw new FsAnswer(ERRNO.EINVAL!);
          return node.readlink();
        }, cb),
      getxattr: (path, name, _position, cb) =>
        this.run('getxattr', path, async () => {
          const node = await this.resolve(path);
          const value = (await node.xattrs?.())?.get(name);
          if (value === undefined) throw new FsAnswer(ERRNO.ENODATA!);
          return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        }, cb),
      listxattr: (path, cb) =>
        this.run('listxattr', path, async () => [...((await (await this.resolve(path)).xattrs?.())?.keys() ?? [])], cb),
      statfs: (path, cb) =>
        this.run('statfs', path, async () => ({ bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 }), cb),
    };
  }
}
