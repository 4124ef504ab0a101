// The datastore levels of the tree, mirroring PBS paths: /<store>/[ns/<ns>/...]<type>/<id>/<time>/, with a
// `latest` symlink per group. Listings are read fresh (short cache lifetime), so new snapshots just appear.
import { formatBackupTime, namespaceChild, parseBackupTime, parseBackupType, ROOT_NAMESPACE, validateBackupId } from '../src/datastore/names.js';
import { PbsError } from '../src/errors.js';
import type { BackupNamespace, BackupType, GroupRef } from '../src/types.js';
import { EROFS, Errno, ErrnoError, LIVE_TTL_MS, msTimestamp, type MountNode, type NodeStat, S_IFDIR, S_IFLNK, type WriteHandle } from './node.js';
import { SnapshotDirNode } from './snapshot-dir.js';
import type { OpenStore, StoreSet } from './stores.js';
import { ImageFileNode } from './write/image-file.js';
import { StagingSnapshot } from './write/staging-snapshot.js';

abstract class LiveDir implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  constructor(
    protected readonly stores: StoreSet,
    /** Inode key: the node's mount path. */
    protected readonly key: string,
  ) {}
  async stat(): Promise<NodeStat> {
    const ctx = this.stores.ctx;
    return { mode: S_IFDIR | (ctx.writable ? 0o755 : 0o555), uid: 0, gid: 0, size: 0, nlink: 2, ino: ctx.inodes.get(this.key), rdev: 0, mtime: msTimestamp(ctx.startedMs) };
  }
  protected assertWritable(): void {
    if (!this.stores.ctx.writable) throw new ErrnoError(EROFS, `the mount is read-only: ${this.key}`);
  }
  abstract readdir(): Promise<Array<[string, MountNode]>>;
  async lookup(name: string): Promise<MountNode | null> {
    return (await this.readdir()).find(([n]) => n === name)?.[1] ?? null;
  }
}

export class RootDir extends LiveDir {
  constructor(stores: StoreSet) {
    super(stores, '/');
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    return (await this.stores.names()).map((name) => [name, new NamespaceDir(this.stores, `/${name}`, name, ROOT_NAMESPACE)]);
  }
  override async lookup(name: string): Promise<MountNode | null> {
    return (await this.stores.names()).includes(name) ? new NamespaceDir(this.stores, `/${name}`, name, ROOT_NAMESPACE) : null;
  }
}

/** A store root or a namespace: `ns/` (when it has child namespaces) and one dir per backup type in use. */
class NamespaceDir extends LiveDir {
  constructor(stores: StoreSet, key: string, private readonly storeName: string, private readonly ns: BackupNamespace) {
    super(stores, key);
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    const { ds } = await this.stores.get(this.storeName);
    const [groups, namespaces] = await Promise.all([ds.listGroups(this.ns), ds.listNamespaces(this.ns, 1)]);
    const out: Array<[string, MountNode]> = [];
    if (namespaces.length > 1) out.push(['ns', new NamespaceListDir(this.stores, `${this.key}/ns`, this.storeName, this.ns)]);
    const store = await this.stores.get(this.storeName);
    const types = new Set(groups.map((g) => g.type));
    for (const type of ['ct', 'host', 'vm'] as const) if (store.newTypeDirs.has(`${this.key}/${type}`)) types.add(type);
    for (const type of types) {
      out.push([type, new TypeDir(this.stores, `${this.key}/${type}`, this.storeName, this.ns, type)]);
    }
    return out;
  }
  /** `mkdir vm`: a backup-type directory, kept in memory until a group is made in it. */
  async mkdir(name: string): Promise<void> {
    this.assertWritable();
    const type = parseBackupType(name);
    const store = await this.stores.get(this.storeName);
    if ((await this.readdir()).some(([n]) => n === type)) throw new PbsError('EEXIST', 'directory exists', { path: `${this.key}/${name}` });
    store.newTypeDirs.add(`${this.key}/${type}`);
  }
}

class NamespaceListDir extends LiveDir {
  constructor(stores: StoreSet, key: string, private readonly storeName: string, private readonly parent: BackupNamespace) {
    super(stores, key);
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    const { ds } = await this.stores.get(this.storeName);
    const children = (await ds.listNamespaces(this.parent, 1)).slice(1);
    return children.map((ns) => {
      const name = ns[ns.length - 1]!;
      return [name, new NamespaceDir(this.stores, `${this.key}/${name}`, this.storeName, namespaceChild(this.parent, name))];
    });
  }
}

class TypeDir extends LiveDir {
  constructor(stores: StoreSet, key: string, private readonly storeName: string, private readonly ns: BackupNamespace, private readonly type: BackupType) {
    super(stores, key);
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    const { ds } = await this.stores.get(this.storeName);
    return (await ds.listGroups(this.ns))
      .filter((g) => g.type === this.type)
      .map((g) => [g.id, new GroupDir(this.stores, `${this.key}/${g.id}`, this.storeName, g)]);
  }
  /** `mkdir web1`: a new (empty) backup group owned by root@pam. */
  async mkdir(name: string): Promise<void> {
    this.assertWritable();
    const { ds } = await this.stores.get(this.storeName);
    const { created } = await ds.createGroup({ ns: this.ns, type: this.type, id: validateBackupId(name) }, 'root@pam');
    if (!created) throw new PbsError('EEXIST', 'group exists', { path: `${this.key}/${name}` });
  }
}

class GroupDir extends LiveDir {
  constructor(stores: StoreSet, key: string, private readonly storeName: string, private readonly group: GroupRef) {
    super(stores, key);
  }
  private async list(store: OpenStore): Promise<Array<[string, MountNode]>> {
    const list = await store.ds.listSnapshots(this.group);
    const out: Array<[string, MountNode]> = list.map((info) => {
      // Kept per store: a finished snapshot never changes, so its manifest is loaded once.
      let node = store.snapshots.get(info.path);
      if (!node) {
        node = new SnapshotDirNode(this.stores.ctx, store, info.ref);
        store.snapshots.set(info.path, node);
      }
      return [formatBackupTime(info.ref.time), node];
    });
    if (list.length) {
      // Resolved at each readlink: a snapshot finished a moment ago must not be hidden by a cached link.
      const newest = async (): Promise<string> => {
        await store.writers.get(store.ds.groupPath(this.group))?.finishing.catch(() => undefined);
        const now = await store.ds.listSnapshots(this.group);
        return formatBackupTime((now.at(-1) ?? list.at(-1)!).ref.time);
      };
      out.push(['latest', new SymlinkNode(this.stores, `${this.key}/latest`, newest)]);
    }
    const writing = store.writers.get(store.ds.groupPath(this.group));
    if (writing instanceof ImageFileNode) out.push([writing.name, writing]);
    else if (writing instanceof StagingSnapshot) out.push([writing.name, writing.node]);
    return out;
  }
  override async readdir(): Promise<Array<[string, MountNode]>> {
    // A copy that just closed is listed as its snapshot, not as the file or nothing.
    const store = await this.stores.get(this.storeName);
    await store.writers.get(store.ds.groupPath(this.group))?.finishing.catch(() => undefined);
    return this.list(store);
  }
  /** A regular file here becomes a new snapshot with one image archive. */
  async create(name: string): Promise<WriteHandle> {
    this.assertWritable();
    const store = await this.stores.get(this.storeName);
    const node = await ImageFileNode.begin(this.stores.ctx, store, this.group, name);
    return node.openWrite();
  }
  /** A directory here is a staging snapshot (`new`, or `etc.pxar`: one pxar archive); snapshot times are not made. */
  async mkdir(name: string, mode: number): Promise<void> {
    this.assertWritable();
    const store = await this.stores.get(this.storeName);
    if (name === 'latest' || (await this.list(store)).some(([n]) => n === name)) throw new PbsError('EEXIST', 'directory exists', { path: `${this.key}/${name}` });
    if (isSnapshotTime(name)) throw new PbsError('EPERM', `'${name}' is a snapshot time: staging directories need another name`, { path: `${this.key}/${name}` });
    await StagingSnapshot.begin(this.stores.ctx, store, this.group, name, mode);
  }
  /** Forgets a finished snapshot: only with --allow-forget, never a protected one (EPERM). An empty staging directory is dropped. */
  async rmdir(name: string): Promise<void> {
    this.assertWritable();
    const store = await this.stores.get(this.storeName);
    const writing = store.writers.get(store.ds.groupPath(this.group));
    if (writing instanceof StagingSnapshot && writing.name === name) {
      if ((await writing.node.readdir!()).length) throw new ErrnoError(Errno.ENOTEMPTY, `${name} is not empty`);
      return writing.discard('rmdir');
    }
    let time: number;
    try {
      time = parseBackupTime(name);
    } catch {
      throw new PbsError('EPERM', `'${name}' is not a snapshot directory`, { path: `${this.key}/${name}` });
    }
    if (!this.stores.ctx.allowForget) throw new PbsError('EPERM', 'removing snapshots needs a mount with --allow-forget', { path: `${this.key}/${name}` });
    const ref = { ...this.group, time };
    await store.ds.forgetSnapshot(ref);
    store.snapshots.delete(store.ds.snapshotPath(ref));
    this.stores.ctx.log.info(`forgot snapshot ${store.ds.snapshotPath(ref)}`);
  }
}

function isSnapshotTime(name: string): boolean {
  try {
    parseBackupTime(name);
    return true;
  } catch {
    return false;
  }
}

class SymlinkNode implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  constructor(
    private readonly stores: StoreSet,
    private readonly key: string,
    private readonly target: () => Promise<string>,
  ) {}
  async stat(): Promise<NodeStat> {
    const ctx = this.stores.ctx;
    return { mode: S_IFLNK | 0o777, uid: 0, gid: 0, size: Buffer.byteLength(await this.target()), nlink: 1, ino: ctx.inodes.get(this.key), rdev: 0, mtime: msTimestamp(ctx.startedMs) };
  }
  async readlink(): Promise<string> {
    return this.target();
  }
}
