// A pxar archive (v1, or split metadata + payload) as mount nodes: exact modes, owners, sizes, link targets,
// device numbers, xattrs and ACLs; hardlinks share their target's inode and raise its nlink.
import { setImmediate as yieldTurn, setTimeout as delay } from 'node:timers/promises';
import { PbsError } from '../src/errors.js';
import { type AccessorEntry, PxarAccessor } from '../src/pxar/accessor.js';
import { PxarDecoder } from '../src/pxar/decoder.js';
import { rangePullReader, type ReadAt } from '../src/pxar/read-at.js';
import { ByteLru } from '../src/io/lru-cache.js';
import { IMMUTABLE, type InodeTable, LIVE_TTL_MS, makeDev, type MountNode, type NodeStat, XATTR_CAPS, XATTR_SELINUX } from './node.js';
import { accessAclXattr, defaultAclXattr, XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT } from '../src/fs/posix-acl.js';
import { bytesEqual, nameToDisplay } from '../src/pxar/names.js';
import { aclIsEmpty, CompactEntry } from './compact-entry.js';

const HARDLINK_WAIT_MS = 50;
/**
 * Directory listings an archive keeps, in entries (oldest directory out first). The kernel forgets every node when it
 * drops its cached dentries (memory pressure, drop_caches); a walk after that reuses these instead of decoding every
 * directory again and leaving the old nodes to the GC (tar of /usr/share after drop_caches: 8.5–8.9 → 6.5–8.0 s).
 */
const LISTED_ENTRIES_KEPT = 65536;
const SELINUX_NAME = Buffer.from(XATTR_SELINUX);
const SCAN_DELAY_MS = 1000;
/** Entries the hardlink walk decodes between turns of the event loop (with cached chunks it never waits on I/O). */
const SCAN_SLICE = 512;
const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
const lastName = (path: Uint8Array): Uint8Array => path.subarray(path.lastIndexOf(0x2f) + 1);

export class PxarArchive {
  private hardlinkCounts?: Promise<Map<number, number>>;
  private known?: Map<number, number>;
  /** Whether any entry has an SELinux label or a POSIX ACL; unknown until the walk ends (and after a failed walk). */
  private has?: { labels: boolean; acls: boolean };
  private readonly inos = new Map<number, number>();
  private scanTimer?: NodeJS.Timeout;
  private scanWait?: Promise<unknown>;
  /** Children of listed directories by the directory's FILENAME offset (-1: the root), bounded by entries. */
  private readonly listings = new ByteLru<number, Array<[string, MountNode]>>(LISTED_ENTRIES_KEPT, undefined, (l) => l.length);

  private constructor(
    readonly accessor: PxarAccessor,
    private readonly metadata: ReadAt,
    readonly inodes: InodeTable,
  ) {}

  static async open(metadata: ReadAt, payload: ReadAt | undefined, inodes: InodeTable): Promise<PxarArchive> {
    return new PxarArchive(await PxarAccessor.open(metadata, { payload }), metadata, inodes);
  }

  async root(): Promise<MountNode> {
    return new PxarDirNode(this, (await this.accessor.root()).entry);
  }

  /** A directory's children with their nodes, decoded once while the listing is kept (LISTED_ENTRIES_KEPT). */
  async children(dir: CompactEntry): Promise<Array<[string, MountNode]>> {
    const key = dir.filenameOffset ?? -1;
    const kept = this.listings.get(key);
    if (kept) return kept;
    const opened = await this.accessor.openDirectory(dir.full());
    const out: Array<[string, MountNode]> = [];
    for await (const child of this.accessor.readDir(opened, { order: 'archive' })) {
      out.push([utf8(lastName(child.entry.path)), await this.node(child)]);
    }
    // Another listing of it may have finished meanwhile: keep one.
    const raced = this.listings.get(key);
    if (raced) return raced;
    this.listings.set(key, out);
    return out;
  }

  /** The inode number of the entry at a FILENAME offset (the root has none), stable for the archive's life. */
  ino(filenameOffset: number | null): number {
    const key = filenameOffset ?? -1;
    let ino = this.inos.get(key);
    if (ino === undefined) {
      ino = this.inodes.allocate();
      this.inos.set(key, ino);
    }
    return ino;
  }

  /**
   * How many hardlinks point at a file (by FILENAME offset). pxar stores no link counts, so one walk of the
   * metadata stream counts them (for v1 archives that reads the whole archive). The first listing starts it in
   * the background, a file stat SCAN_DELAY_MS later (so it does not compete with the first byte of a file opened
   * by path); stats wait for it until at most HARDLINK_WAIT_MS after it started. Until the walk ends a file shows nlink 1
   * and is not immutable (linksKnown), so nothing caches that count for long. A walk that fails (damaged
   * archive) counts nothing: the damage is reported by the reads that reach it.
   */
  async hardlinkCount(filenameOffset: number | null): Promise<number> {
    if (filenameOffset === null) return 0;
    if (!this.known && !this.hardlinkCounts) {
      this.scanTimer ??= setTimeout(() => void this.startScan(), SCAN_DELAY_MS).unref();
      return 0;
    }
    if (!this.known) await this.scanWait;
    return this.countOf(filenameOffset);
  }

  private countOf(filenameOffset: number): number {
    return this.known?.get(filenameOffset) ?? 0;
  }

  /** No entry of the archive has an xattr of this kind (known once the walk has ended). */
  lacks(name: string): boolean {
    if (!this.has) return false;
    if (name === XATTR_SELINUX) return !this.has.labels;
    return (name === XATTR_ACL_ACCESS || name === XATTR_ACL_DEFAULT) && !this.has.acls;
  }

  get linksKnown(): boolean {
    return this.known !== undefined;
  }

  startScan(): Promise<Map<number, number>> {
    clearTimeout(this.scanTimer);
    if (!this.hardlinkCounts) {
      this.hardlinkCounts = this.countHardlinks().catch(() => (this.known = new Map<number, number>()));
      // One wait for all stats: at most HARDLINK_WAIT_MS after the walk started, then none.
      this.scanWait = Promise.race([this.hardlinkCounts, delay(HARDLINK_WAIT_MS, undefined, { ref: false })]);
    }
    return this.hardlinkCounts;
  }

  /** The one walk of the metadata: hardlink counts, and whether SELinux labels or ACLs occur at all. */
  private async countHardlinks(): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    const has = { labels: false, acls: false };
    const d = await PxarDecoder.open(rangePullReader(this.metadata, 0, this.metadata.size, 64 * 1024, 4 * 1024 * 1024));
    let n = 0;
    for await (const e of d) {
      // Without this the walk is one long chain of promise jobs that starves FUSE requests and timers.
      if (++n % SCAN_SLICE === 0) await yieldTurn();
      if (e.kind === 'hardlink' && e.filenameOffset !== null && e.hardlinkOffset !== undefined) {
        const target = e.filenameOffset - e.hardlinkOffset;
        counts.set(target, (counts.get(target) ?? 0) + 1);
      }
      has.acls ||= !aclIsEmpty(e.metadata.acl);
      has.labels ||= e.metadata.xattrs.some((x) => bytesEqual(x.name, SELINUX_NAME));
    }
    this.has = has;
    this.known = counts;
    return counts;
  }

  /** The node for a decoded entry; hardlinks resolve to their target file. */
  async node(e: AccessorEntry): Promise<MountNode> {
    switch (e.entry.kind) {
      case 'dir':
        return new PxarDirNode(this, e);
      case 'file':
        return new PxarFileNode(this, e);
      case 'hardlink':
        return new PxarFileNode(this, await this.accessor.followHardlink(e));
      case 'symlink':
        return new PxarLinkNode(this, e);
      default:
        return new PxarSpecialNode(this, e);
    }
  }
}

abstract class PxarNode implements MountNode {
  get ttlMs(): number {
    return IMMUTABLE;
  }
  protected readonly e: CompactEntry;
  constructor(
    protected readonly archive: PxarArchive,
    e: AccessorEntry,
  ) {
    this.e = new CompactEntry(e);
  }

  protected baseStat(size: number, nlink = 1): NodeStat {
    const e = this.e;
    return {
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size,
      nlink,
      ino: this.archive.ino(e.filenameOffset),
      rdev: e.device ? makeDev(e.device.major, e.device.minor) : 0,
      mtime: { secs: e.mtimeSecs, nanos: e.mtimeNanos },
    };
  }

  async stat(): Promise<NodeStat> {
    return this.baseStat(0);
  }

  get noXattrs(): boolean {
    return this.e.noXattrs;
  }

  xattrUnsupported(name: string): boolean {
    return this.archive.lacks(name);
  }

  async xattrs(): Promise<ReadonlyMap<string, Uint8Array>> {
    const md = this.e.metadata();
    const out = new Map<string, Uint8Array>();
    for (const x of md.xattrs) out.set(utf8(x.name), x.value);
    if (md.fcaps) out.set(XATTR_CAPS, md.fcaps);
    const access = accessAclXattr(md.acl, md.stat.mode, nameToDisplay(this.e.path()));
    if (access) out.set('system.posix_acl_access', access);
    const def = defaultAclXattr(md.acl, nameToDisplay(this.e.path()));
    if (def) out.set('system.posix_acl_default', def);
    return out;
  }
}

class PxarDirNode extends PxarNode {
  async readdir(): Promise<Array<[string, MountNode]>> {
    // A listing is followed by the stats of its files, which need the link counts.
    void this.archive.startScan();
    return this.archive.children(this.e);
  }

  async lookup(name: string): Promise<MountNode | null> {
    const dir = await this.archive.accessor.openDirectory(this.e.full());
    const child = await this.archive.accessor.lookupChild(dir, Buffer.from(name, 'utf8'));
    return child ? this.archive.node(child) : null;
  }
}

class PxarFileNode extends PxarNode {
  /** Its link count is final once the archive's hardlinks are counted. */
  override get ttlMs(): number {
    return this.archive.linksKnown ? IMMUTABLE : LIVE_TTL_MS;
  }

  override async stat(): Promise<NodeStat> {
    return this.baseStat(this.e.size ?? 0, 1 + (await this.archive.hardlinkCount(this.e.filenameOffset)));
  }

  /** The FUSE reply takes the bytes at once: their chunk buffer may be reused afterwards. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.archive.accessor.read(this.e, offset, length, true);
  }
}

class PxarLinkNode extends PxarNode {
  override async stat(): Promise<NodeStat> {
    return this.baseStat(this.e.linkTarget?.byteLength ?? 0);
  }

  async readlink(): Promise<string> {
    if (!this.e.linkTarget) throw new PbsError('ECORRUPT', 'symlink without a target', { offset: this.e.filenameOffset ?? 0 });
    return utf8(this.e.linkTarget);
  }
}

/** Device nodes, fifos and sockets: metadata only. */
class PxarSpecialNode extends PxarNode {}

