// A tree being staged in the mount: directories, files, symlinks, devices, fifos, sockets and hardlinks with their
// metadata (mode, owner, ns mtime, xattrs incl. ACLs and fcaps), every change mirrored into the staging state.
// File bytes go to the spool. Used for `*.pxar` directories and, with a container root, for a staging snapshot's
// blobs and `*.pxar` directories. Sealing reads the tree back in archive order (pxar-seal.ts).
import { PbsError } from '../../src/errors.js';
import { MAX_CHUNK_SIZE } from '../../src/format/blob.js';
import type { Timestamp } from '../../src/pxar/format.js';
import { Errno, ErrnoError, LIVE_TTL_MS, type Maybe, type MountNode, type NodeStat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISGID, S_ISUID, type WriteHandle, XATTR_CAPS } from '../node.js';
import type { MountContext } from '../stores.js';
import { addExtent, readExtents, type Spool, truncateExtents } from './spool.js';
import type { StagedInode, StagingState } from './staging-state.js';
import { parsePosixAcl, type PosixAclEntry, XATTR_ACL_ACCESS } from '../../src/fs/posix-acl.js';

export const ROOT_ID = 1;
const NO_XATTRS: ReadonlyMap<string, Uint8Array> = new Map();
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** What the staging snapshot that owns a tree provides. */
export interface TreeOwner {
  readonly ctx: MountContext;
  /** Unique per staging snapshot: inode-table keys. */
  readonly key: string;
  /** Throws once the snapshot is sealed or being sealed (EROFS). */
  assertOpen(): void;
  /** A write-side operation happened (the quiet-period timer starts again). */
  touch(): void;
  opened(): void;
  released(): void;
  /** A regular file's last write handle was released. */
  fileClosed(id: number): void;
}

function fail(errno: number, what: string): never {
  throw new ErrnoError(errno, what);
}

/** rwx bits of owner, group (the mask when there is one) and other from an access ACL. */
function aclModeBits(entries: PosixAclEntry[], mode: number): number {
  const perm = (tag: number): number | undefined => entries.find((e) => e.tag === tag)?.perm;
  const user = perm(0x01) ?? (mode >> 6) & 7;
  const group = perm(0x10) ?? perm(0x04) ?? (mode >> 3) & 7;
  const other = perm(0x20) ?? mode & 7;
  return (user << 6) | (group << 3) | other;
}

/** Removes one xattr of an inode (no map once none is left); false when it had none of that name. */
function deleteXattr(i: StagedInode, name: string): boolean {
  if (!i.xattrs?.delete(name)) return false;
  if (i.xattrs.size === 0) i.xattrs = undefined;
  return true;
}

/** Names collected from a file up to its archive's root, as the archive-relative path `a/b/c`. */
function utf8Path(reversed: string[]): Uint8Array {
  return Buffer.from(reversed.reverse().join('/'), 'utf8');
}

function now(): Timestamp {
  const ms = Date.now();
  return { secs: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export class StagedTree {
  readonly inodes = new Map<number, StagedInode>();
  private nextId = ROOT_ID + 1;
  private readonly nodes = new Map<number, StagedNode>();
  /** Unlinked files that are still open. */
  private readonly orphans = new Map<number, StagedInode>();

  constructor(
    readonly owner: TreeOwner,
    readonly state: StagingState,
    readonly spool: Spool,
    /** The root holds archives (a staging snapshot): only `*.pxar` directories and blob files there. */
    readonly containerRoot: boolean,
  ) {
    // A file the state records as complete has its bytes in the spool file, not only in its gathered appends.
    state.setBeforeBatch(() => spool.flush());
  }

  /** A fresh tree with its root directory. */
  static create(owner: TreeOwner, state: StagingState, spool: Spool, containerRoot: boolean, rootMode: number): StagedTree {
    const t = new StagedTree(owner, state, spool, containerRoot);
    t.newInode(S_IFDIR | (rootMode & 0o7777), ROOT_ID);
    return t;
  }

  /**
   * The tree as the state holds it after a crash: entries whose inode is missing or was still being written are
   * dropped (with their names), so only files that were closed come back. Returns the names dropped.
   */
  static restore(owner: TreeOwner, state: StagingState, spool: Spool, containerRoot: boolean, inodes: Map<number, StagedInode>, entries: Array<{ parent: number; name: string; child: number }>): { tree: StagedTree; dropped: number } {
    const t = new StagedTree(owner, state, spool, containerRoot);
    let dropped = 0;
    for (const i of inodes.values()) {
      if ((i.mode & S_IFMT) === S_IFDIR) i.children = new Map();
      t.inodes.set(i.id, i);
      t.nextId = Math.max(t.nextId, i.id + 1);
    }
    if (!t.inodes.has(ROOT_ID)) throw new PbsError('ECORRUPT', 'staging state has no root directory', { path: state.path });
    for (const e of entries) {
      const parent = t.inodes.get(e.parent);
      const child = t.inodes.get(e.child);
      if (!parent?.children || !child || ((child.mode & S_IFMT) === S_IFREG && !child.complete)) {
        state.deleteEntry(e.parent, e.name);
        dropped++;
        continue;
      }
      parent.children.set(e.name, e.child);
      t.named(child, e.parent, e.name);
    }
    // Unreachable inodes (dropped files, directories whose parent went) leave the state too.
    const reachable = new Set<number>();
    const walk = (id: number): void => {
      reachable.add(id);
      for (const c of t.inodes.get(id)!.children?.values() ?? []) if (!reachable.has(c)) walk(c);
    };
    walk(ROOT_ID);
    for (const id of [...t.inodes.keys()]) {
      if (!reachable.has(id)) {
        t.inodes.delete(id);
        state.deleteInode(id);
      }
    }
    return { tree: t, dropped };
  }

  /** The node to show for `id` (the staging snapshot's root has its own). */
  adopt(id: number, node: StagedNode): void {
    this.nodes.set(id, node);
  }

  node(id: number): StagedNode {
    let n = this.nodes.get(id);
    if (!n) {
      n = new StagedNode(this, id);
      this.nodes.set(id, n);
    }
    return n;
  }

  inode(id: number): StagedInode {
    const i = this.inodes.get(id) ?? this.orphans.get(id);
    if (!i) fail(Errno.ENOENT, `staged inode ${id} is gone`);
    return i;
  }

  /** Top-level blob files of a staging snapshot: limited to what one blob holds. */
  isBlob(id: number): boolean {
    if (!this.containerRoot) return false;
    for (const c of this.inode(ROOT_ID).children!.values()) if (c === id) return true;
    return false;
  }

  private newInode(mode: number, id = this.nextId++): StagedInode {
    const i: StagedInode = {
      id, mode, uid: 0, gid: 0, mtime: now(), rdev: 0, size: 0, extents: [],
      complete: (mode & S_IFMT) !== S_IFREG, nlink: 0,
    };
    if ((mode & S_IFMT) === S_IFDIR) i.children = new Map();
    this.inodes.set(id, i);
    this.state.putInode(i);
    return i;
  }

  private dir(id: number): Map<string, number> {
    const c = this.inode(id).children;
    if (!c) fail(Errno.ENOTDIR, 'not a directory');
    return c;
  }

  private checkNew(parent: number, name: string, type: number): Map<string, number> {
    this.owner.assertOpen();
    const children = this.dir(parent);
    if (children.has(name)) fail(Errno.EEXIST, `${name} exists`);
    if (name.length === 0 || name.includes('/') || name === '.' || name === '..') fail(Errno.EINVAL, `bad name ${name}`);
    if (this.containerRoot && parent === ROOT_ID) {
      // A staging snapshot holds archives: `*.pxar` directories and files (blobs); images are taken before this.
      if (type === S_IFDIR && !name.endsWith('.pxar')) fail(Errno.EPERM, `${name}: directories in a staging snapshot are pxar archives and must be named *.pxar`);
      if (type !== S_IFDIR && type !== S_IFREG) fail(Errno.EPERM, `${name}: a staging snapshot holds only *.img, *.pxar and blob files`);
    }
    return children;
  }

  /** `child` got the name `name` in `parent`: one more link; parent and name are kept while it is the only one. */
  private named(child: StagedInode, parent: number, name: string): void {
    if (++child.nlink === 1) {
      child.parent = parent;
      child.name = name;
    } else {
      child.parent = child.name = undefined;
    }
  }

  private attach(parent: number, name: string, child: StagedInode): void {
    this.dir(parent).set(name, child.id);
    this.named(child, parent, name);
    this.state.putEntry(parent, name, child.id);
    this.touchDir(parent);
  }

  /** A directory whose entries changed gets a new mtime, as on a real filesystem (cp -a sets it again last). */
  private touchDir(id: number): void {
    const d = this.inode(id);
    d.mtime = now();
    this.state.putInode(d);
    this.owner.touch();
  }

  mkdir(parent: number, name: string, mode: number): void {
    this.checkNew(parent, name, S_IFDIR);
    this.attach(parent, name, this.newInode(S_IFDIR | (mode & 0o7777)));
  }

  create(parent: number, name: string, mode: number): StagedInode {
    this.checkNew(parent, name, S_IFREG);
    const i = this.newInode(S_IFREG | (mode & 0o7777));
    this.attach(parent, name, i);
    return i;
  }

  symlink(parent: number, name: string, target: string): void {
    this.checkNew(parent, name, S_IFLNK);
    if (target.length === 0) fail(Errno.EINVAL, 'empty symlink target');
    const i = this.newInode(S_IFLNK | 0o777);
    i.target = target;
    i.size = Buffer.byteLength(target);
    this.attach(parent, name, i);
  }

  mknod(parent: number, name: string, mode: number, rdev: number): void {
    const type = mode & S_IFMT;
    if (type === S_IFREG) {
      const i = this.create(parent, name, mode);
      i.complete = true;
      this.state.putInode(i);
      return;
    }
    this.checkNew(parent, name, type);
    if (![0o020000, 0o060000, 0o010000, 0o140000].includes(type)) fail(Errno.EINVAL, `mknod of file type 0o${type.toString(8)}`);
    const i = this.newInode(mode);
    i.rdev = rdev;
    this.attach(parent, name, i);
  }

  link(parent: number, name: string, target: number): void {
    const t = this.inode(target);
    if (t.children) fail(Errno.EPERM, 'hardlinks to directories');
    this.checkNew(parent, name, t.mode & S_IFMT);
    if (this.containerRoot && (parent === ROOT_ID || this.isBlob(target))) fail(Errno.EPERM, 'blobs cannot be hardlinked');
    this.attach(parent, name, t);
  }

  private detach(parent: number, name: string): StagedInode {
    const children = this.dir(parent);
    const id = children.get(name);
    if (id === undefined) fail(Errno.ENOENT, `${name} does not exist`);
    const child = this.inode(id);
    children.delete(name);
    this.state.deleteEntry(parent, name);
    this.touchDir(parent);
    // With a name left, which one it is would take a search: unknown (only hardlinked files get here).
    child.parent = child.name = undefined;
    if (--child.nlink === 0) this.forget(child);
    return child;
  }

  /**
   * The last name went: the inode leaves the tree and the state (its spool bytes stay until the snapshot is sealed).
   * A file still open stays writable until its last close, as on a real filesystem, but is not archived.
   */
  private forget(i: StagedInode): void {
    if (i.children) for (const c of i.children.values()) {
      const ci = this.inodes.get(c);
      if (ci && --ci.nlink === 0) this.forget(ci);
    }
    this.inodes.delete(i.id);
    if (this.nodes.get(i.id)?.isOpen) this.orphans.set(i.id, i);
    else this.nodes.delete(i.id);
    this.state.deleteInode(i.id);
  }

  /** An open file's last close: an unlinked one is gone for good now. */
  closed(id: number): void {
    if (this.orphans.delete(id)) this.nodes.delete(id);
  }

  unlink(parent: number, name: string): void {
    this.owner.assertOpen();
    const id = this.dir(parent).get(name);
    if (id === undefined) fail(Errno.ENOENT, `${name} does not exist`);
    if (this.inode(id).children) fail(Errno.EISDIR, `${name} is a directory`);
    this.detach(parent, name);
  }

  rmdir(parent: number, name: string): void {
    this.owner.assertOpen();
    const id = this.dir(parent).get(name);
    if (id === undefined) fail(Errno.ENOENT, `${name} does not exist`);
    const c = this.inode(id).children;
    if (!c) fail(Errno.ENOTDIR, `${name} is not a directory`);
    if (c.size) fail(Errno.ENOTEMPTY, `${name} is not empty`);
    this.detach(parent, name);
  }

  rename(parent: number, name: string, newParent: number, newName: string): void {
    this.owner.assertOpen();
    const id = this.dir(parent).get(name);
    if (id === undefined) fail(Errno.ENOENT, `${name} does not exist`);
    if (parent === newParent && name === newName) return;
    const moving = this.inode(id);
    if (this.containerRoot && (parent === ROOT_ID) !== (newParent === ROOT_ID)) fail(Errno.EPERM, 'archives of a staging snapshot stay at its top level');
    if (this.containerRoot && parent === ROOT_ID && moving.children && !newName.endsWith('.pxar')) fail(Errno.EPERM, `${newName}: pxar archives must be named *.pxar`);
    // A directory may not move below itself.
    if (moving.children) {
      for (let p: number | undefined = newParent; p !== undefined; p = this.parentOf(p)) if (p === id) fail(Errno.EINVAL, 'rename of a directory into itself');
    }
    const existing = this.dir(newParent).get(newName);
    if (existing !== undefined) {
      if (existing === id) return;
      const e = this.inode(existing);
      if (e.children && !moving.children) fail(Errno.EISDIR, `${newName} is a directory`);
      if (!e.children && moving.children) fail(Errno.ENOTDIR, `${newName} is not a directory`);
      if (e.children?.size) fail(Errno.ENOTEMPTY, `${newName} is not empty`);
      this.detach(newParent, newName);
    }
    moving.nlink++; // kept alive between detach and attach
    this.detach(parent, name);
    moving.nlink--;
    this.attach(newParent, newName, moving);
  }

  /** Directories have exactly one name, so their parent is always known. */
  private parentOf(id: number): number | undefined {
    return id === ROOT_ID ? undefined : this.inode(id).parent;
  }

  /**
   * The pxar archive an inode with one name belongs to: the directory that is the archive (the tree's root, or a
   * `*.pxar` directory at a staging snapshot's top level); undefined for blobs, hardlinked or unlinked files.
   */
  archiveOf(id: number): number | undefined {
    let at = this.inodes.get(id);
    if (!at || at.id === ROOT_ID) return undefined;
    while (at && at.parent !== undefined) {
      if (at.parent === ROOT_ID) return this.containerRoot ? (at.id === id ? undefined : at.id) : ROOT_ID;
      at = this.inodes.get(at.parent);
    }
    return undefined;
  }

  /** The path of an inode with one name within its archive (`a/b/c`, see archiveOf). */
  archivePath(id: number): Uint8Array | undefined {
    const names: string[] = [];
    let at = this.inodes.get(id);
    while (at && at.id !== ROOT_ID) {
      if (at.parent === undefined || at.name === undefined) return undefined;
      if (this.containerRoot && at.parent === ROOT_ID) return names.length ? utf8Path(names) : undefined;
      names.push(at.name);
      at = this.inodes.get(at.parent);
    }
    return at && !this.containerRoot ? utf8Path(names) : undefined;
  }

  isOpen(id: number): boolean {
    return this.nodes.get(id)?.isOpen ?? false;
  }

  setattr(id: number, change: { mode?: number; uid?: number; gid?: number; mtime?: Timestamp }): void {
    this.owner.assertOpen();
    const i = this.inode(id);
    if (change.mode !== undefined) i.mode = (i.mode & S_IFMT) | (change.mode & 0o7777);
    if (change.uid !== undefined && change.uid !== -1 && change.uid !== 0xffffffff) i.uid = change.uid;
    if (change.gid !== undefined && change.gid !== -1 && change.gid !== 0xffffffff) i.gid = change.gid;
    if (change.mtime) {
      const { secs, nanos } = change.mtime;
      if (!Number.isSafeInteger(secs) || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) fail(Errno.EINVAL, `bad mtime ${secs}.${nanos}`);
      i.mtime = change.mtime;
    }
    this.state.putInode(i);
    this.owner.touch();
  }

  /** Returns whether the mode changed (an access ACL sets it). */
  setxattr(id: number, name: string, value: Uint8Array, flags: number): boolean {
    this.owner.assertOpen();
    const i = this.inode(id);
    if (flags & XATTR_CREATE && i.xattrs?.has(name)) fail(Errno.EEXIST, `xattr ${name} exists`);
    if (flags & XATTR_REPLACE && !i.xattrs?.has(name)) fail(Errno.ENODATA, `no xattr ${name}`);
    const xattrs = (i.xattrs ??= new Map());
    const mode = i.mode;
    if (name === XATTR_ACL_ACCESS) {
      // As the kernel does: an access ACL sets the mode's permission bits (the mask stands for the group), and one
      // that the mode says completely (owner, group, other only) is not kept as an ACL.
      let entries: PosixAclEntry[];
      try {
        entries = parsePosixAcl(value, name);
      } catch (e) {
        fail(Errno.EINVAL, (e as Error).message);
      }
      i.mode = (i.mode & ~0o777) | aclModeBits(entries, i.mode);
      if (entries.every((e) => e.tag === 0x01 || e.tag === 0x04 || e.tag === 0x20)) xattrs.delete(name);
      else xattrs.set(name, new Uint8Array(value));
    } else {
      xattrs.set(name, new Uint8Array(value));
    }
    if (xattrs.size === 0) i.xattrs = undefined;
    this.state.putInode(i);
    this.owner.touch();
    return i.mode !== mode;
  }

  removexattr(id: number, name: string): void {
    this.owner.assertOpen();
    const i = this.inode(id);
    if (!deleteXattr(i, name)) fail(Errno.ENODATA, `no xattr ${name}`);
    this.state.putInode(i);
    this.owner.touch();
  }

  write(id: number, data: Uint8Array, offset: number): number {
    this.owner.assertOpen();
    const i = this.inode(id);
    const end = offset + data.byteLength;
    if (end > MAX_CHUNK_SIZE && this.isBlob(id)) {
      throw new PbsError('ETOOBIG', `a blob holds at most 16 MiB; name the file *.img to store it as an image`);
    }
    addExtent(i.extents, offset, data.byteLength, this.spool.append(data));
    if (end > i.size) i.size = end;
    this.owner.touch();
    return data.byteLength;
  }

  /** See WriteHandle.killPriv; setgid goes only with group execute (without it, it marks mandatory locking). */
  killPriv(id: number, uid: number): boolean {
    this.owner.assertOpen();
    const i = this.inode(id);
    const mode = i.mode;
    const caps = deleteXattr(i, XATTR_CAPS);
    if (uid !== 0) {
      if (mode & S_ISUID) i.mode &= ~S_ISUID;
      if (mode & S_ISGID && mode & 0o010) i.mode &= ~S_ISGID;
    }
    if (caps || i.mode !== mode) this.state.putInode(i);
    return i.mode !== mode;
  }

  truncate(id: number, size: number): void {
    this.owner.assertOpen();
    const i = this.inode(id);
    if (size > MAX_CHUNK_SIZE && this.isBlob(id)) throw new PbsError('ETOOBIG', 'a blob holds at most 16 MiB');
    truncateExtents(i.extents, size);
    i.size = size;
    this.state.putInode(i);
    this.owner.touch();
  }

  read(id: number, offset: number, length: number): Uint8Array {
    const i = this.inode(id);
    return readExtents(this.spool, i.extents, i.size, offset, length);
  }
}

/** The mount's view of one staged inode (hardlinked names share it). Answers from memory, with plain values. */
export class StagedNode implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  private handles = 0;
  /** The mount's inode number, looked up once. */
  private ino?: number;

  constructor(
    readonly tree: StagedTree,
    readonly id: number,
  ) {}

  private get inode(): StagedInode {
    return this.tree.inode(this.id);
  }

  get isOpen(): boolean {
    return this.handles > 0;
  }

  stat(): NodeStat {
    const i = this.inode;
    return {
      mode: i.mode, uid: i.uid, gid: i.gid, size: i.children ? 0 : i.size, nlink: i.children ? 2 : i.nlink,
      ino: (this.ino ??= this.tree.owner.ctx.inodes.get(`${this.tree.owner.key}:${i.id}`)), rdev: i.rdev, mtime: i.mtime,
    };
  }

  get readdir(): MountNode['readdir'] {
    if (!this.inode.children) return undefined;
    return async () => [...this.inode.children!].map(([name, id]) => [name, this.tree.node(id)]);
  }

  get lookup(): MountNode['lookup'] {
    if (!this.inode.children) return undefined;
    return (name) => {
      const id = this.inode.children!.get(name);
      return id === undefined ? null : this.tree.node(id);
    };
  }

  get read(): MountNode['read'] {
    if ((this.inode.mode & S_IFMT) !== S_IFREG) return undefined;
    return (offset, length) => this.tree.read(this.id, offset, length);
  }

  get readlink(): MountNode['readlink'] {
    const t = this.inode.target;
    return t === undefined ? undefined : () => t;
  }

  xattrs(): ReadonlyMap<string, Uint8Array> {
    return this.inode.xattrs ?? NO_XATTRS;
  }

  mkdir(name: string, mode: number): void {
    this.tree.mkdir(this.id, name, mode);
  }

  create(name: string, mode: number): Maybe<WriteHandle> {
    const i = this.tree.create(this.id, name, mode);
    return this.tree.node(i.id).openWrite();
  }

  symlink(name: string, target: string): void {
    this.tree.symlink(this.id, name, target);
  }

  mknod(name: string, mode: number, rdev: number): void {
    this.tree.mknod(this.id, name, mode, rdev);
  }

  link(name: string, target: MountNode): void {
    if (!(target instanceof StagedNode) || target.tree !== this.tree) fail(Errno.EXDEV, 'hardlinks only within one staged tree');
    this.tree.link(this.id, name, target.id);
  }

  unlink(name: string): void {
    this.tree.unlink(this.id, name);
  }

  rmdir(name: string): void {
    this.tree.rmdir(this.id, name);
  }

  rename(name: string, newParent: MountNode, newName: string): void {
    if (!(newParent instanceof StagedNode) || newParent.tree !== this.tree) fail(Errno.EXDEV, 'rename only within one staged tree');
    this.tree.rename(this.id, name, newParent.id, newName);
  }

  setattr(change: { mode?: number; uid?: number; gid?: number; mtime?: Timestamp }): void {
    this.tree.setattr(this.id, change);
  }

  setxattr(name: string, value: Uint8Array, flags: number): Maybe<boolean> {
    return this.tree.setxattr(this.id, name, value, flags);
  }

  removexattr(name: string): void {
    this.tree.removexattr(this.id, name);
  }

  truncate(size: number): void {
    if ((this.inode.mode & S_IFMT) !== S_IFREG) fail(Errno.EISDIR, 'not a regular file');
    this.tree.truncate(this.id, size);
  }

  openWrite(): WriteHandle {
    this.tree.owner.assertOpen();
    const i = this.inode;
    if ((i.mode & S_IFMT) !== S_IFREG) fail(Errno.EISDIR, 'not a regular file');
    if (this.handles++ === 0 && i.complete) {
      i.complete = false; // a crash while it is open drops it, like a file being written
      this.tree.state.putInode(i);
    }
    this.tree.owner.opened();
    let released = false;
    return {
      node: this,
      // A failing spool write (ENOSPC) fails the write request that makes it: this file's, or a later one when
      // gathered small appends are written together (the staged snapshot is lost then; sealing reports it).
      flushless: true,
      write: (data, offset) => this.tree.write(this.id, data, offset),
      killPriv: (uid) => this.tree.killPriv(this.id, uid),
      read: (offset, length) => this.tree.read(this.id, offset, length),
      truncate: (size) => this.tree.truncate(this.id, size),
      flush: async () => undefined,
      release: async () => {
        if (released) return;
        released = true;
        if (--this.handles === 0) {
          const now = this.tree.inodes.get(this.id);
          if (now) {
            now.complete = true;
            this.tree.state.putInode(now);
          }
          this.tree.closed(this.id);
          if (now) this.tree.owner.fileClosed(this.id);
        }
        this.tree.owner.released();
      },
    };
  }
}
