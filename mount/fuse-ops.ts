// FUSE calls → tree nodes: path resolution through a bounded path cache, open-file handles, errno mapping.
// Every operation is wrapped, so no error (of ours or unexpected) ever reaches the binding or crashes the daemon.
import type { FuseOps, FuseStat } from 'fuse-native';
import { isPbsError } from '../src/errors.js';
import type { Logger } from './log.js';
import { IMMUTABLE, type MountNode, type NodeStat } from './node.js';

const ERRNO: Record<string, number> = {
  EPERM: -1, ENOENT: -2, EIO: -5, EACCES: -13, EBUSY: -16, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, ERANGE: -34, ENODATA: -61,
};

/** An ordinary filesystem answer (no such name, not a directory, no such attribute), not a failure to log. */
class FsAnswer {
  constructor(readonly errno: number) {}
}

/** PbsError codes as errnos: format damage and anything unexpected is EIO. */
export function errnoOf(e: unknown): number {
  if (e instanceof FsAnswer) return e.errno;
  if (isPbsError(e)) {
    if (e.code === 'ECORRUPT' || e.code === 'ETOOBIG' || e.code === 'EUNSUPPORTED' || e.code === 'EEXIST') return ERRNO.EIO!;
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
}

export interface TreeOpsOptions {
  root: MountNode;
  log: Logger;
  /** Checked before every operation (e.g. the datastore of the path is not offline). */
  guard?: (path: string) => Promise<void>;
  cacheEntries?: number;
}

function toFuseStat(s: NodeStat): FuseStat {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino: s.ino, rdev: s.rdev,
    blksize: 4096, blocks: Math.ceil(s.size / 512), atime: s.mtimeMs, mtime: s.mtimeMs, ctime: s.mtimeMs,
  };
}

export class TreeOps {
  private readonly cache: PathCache;
  private readonly listings: Generations<Array<[string, MountNode]>>;
  private readonly handles = new Map<number, MountNode>();
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
        if (!(e instanceof FsAnswer) && (errno === ERRNO.EIO || errno === ERRNO.EACCES || !isPbsError(e))) {
          this.opts.log.error(`${op} ${path}: ${isPbsError(e) ? e.message : ((e as Error)?.stack ?? String(e))}`);
        }
        done(errno);
      },
    );
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
      open: (path, _flags, cb) =>
        this.run('open', path, async () => {
          const node = await this.resolve(path);
          if (!node.read) throw new FsAnswer(ERRNO.EISDIR!);
          const fd = this.nextFd++;
          this.handles.set(fd, node);
          return fd;
        }, cb),
      release: (_path, fd, cb) => {
        this.handles.delete(fd);
        cb(0);
      },
      read: (path, fd, buf, len, pos, cb) =>
        this.run('read', path, async () => {
          const node = this.handles.get(fd) ?? (await this.resolve(path));
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
