// The datastore levels of the tree, mirroring PBS paths: /<store>/[ns/<ns>/...]<type>/<id>/<time>/, with a
// `latest` symlink per group. Listings are read fresh (short cache lifetime), so new snapshots just appear.
import { formatBackupTime, namespaceChild, ROOT_NAMESPACE } from '../src/datastore/names.js';
import type { BackupNamespace, BackupType, GroupRef } from '../src/types.js';
import { LIVE_TTL_MS, type MountNode, type NodeStat, S_IFDIR, S_IFLNK } from './node.js';
import { SnapshotDirNode } from './snapshot-dir.js';
import type { OpenStore, StoreSet } from './stores.js';

abstract class LiveDir implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  constructor(
    protected readonly stores: StoreSet,
    /** Inode key: the node's mount path. */
    protected readonly key: string,
  ) {}
  async stat(): Promise<NodeStat> {
    const ctx = this.stores.ctx;
    return { mode: S_IFDIR | 0o555, uid: 0, gid: 0, size: 0, nlink: 2, ino: ctx.inodes.get(this.key), rdev: 0, mtimeMs: ctx.startedMs };
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
    for (const type of new Set(groups.map((g) => g.type))) {
      out.push([type, new TypeDir(this.stores, `${this.key}/${type}`, this.storeName, this.ns, type)]);
    }
    return out;
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
}

class GroupDir extends LiveDir {
  constructor(stores: StoreSet, key: string, private readonly storeName: string, private readonly group: GroupRef) {
    super(stores, key);
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    const store: OpenStore = await this.stores.get(this.storeName);
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
    const last = list.at(-1);
    if (last) out.push(['latest', new SymlinkNode(this.stores, `${this.key}/latest`, formatBackupTime(last.ref.time))]);
    return out;
  }
}

class SymlinkNode implements MountNode {
  readonly ttlMs = LIVE_TTL_MS;
  constructor(
    private readonly stores: StoreSet,
    private readonly key: string,
    private readonly target: string,
  ) {}
  async stat(): Promise<NodeStat> {
    const ctx = this.stores.ctx;
    return { mode: S_IFLNK | 0o777, uid: 0, gid: 0, size: Buffer.byteLength(this.target), nlink: 1, ino: ctx.inodes.get(this.key), rdev: 0, mtimeMs: ctx.startedMs };
  }
  async readlink(): Promise<string> {
    return this.target;
  }
}
