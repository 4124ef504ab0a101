// How a mount node keeps its decoded pxar entry. The kernel holds every node of a listed archive (54k for /usr/share),
// and the decoded form (entry, metadata, stat and mtime objects, a path Uint8Array with its own ArrayBuffer, empty
// ACL and xattr lists) cost ~1 KiB of heap per entry, which also made every full GC slower. Kept here: the fields the
// mount answers from, as plain numbers, the path as latin1 text (one byte per path byte, lossless), and the full
// metadata only for the few entries that have more (xattrs, ACL entries, file capabilities, chattr flags).
import type { AccessorEntry, FileFields } from '../src/pxar/accessor.js';
import { type Acl, type Device, emptyAcl, type EntryKind, type Metadata } from '../src/pxar/format.js';

export const aclIsEmpty = (a: Acl): boolean =>
  a.users.length === 0 && a.groups.length === 0 && a.groupObj === null && a.default === null && a.defaultUsers.length === 0 && a.defaultGroups.length === 0;

/** No xattrs, ACL entries or file capabilities: getxattr/listxattr of the entry have nothing to show. */
const hasNoXattrs = (md: Metadata): boolean => md.xattrs.length === 0 && aclIsEmpty(md.acl) && !md.fcaps;

/** Nothing beyond mode, owner and mtime (the fields kept): no xattrs, ACLs, fcaps, chattr flags or project id. */
const hasNoExtras = (md: Metadata): boolean => hasNoXattrs(md) && md.stat.flags === 0 && md.quotaProjectId === null;

export class CompactEntry implements FileFields {
  readonly kind: EntryKind;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeSecs: number;
  readonly mtimeNanos: number;
  /** Position of the FILENAME header; null for the root. */
  readonly filenameOffset: number | null;
  readonly size: number | undefined;
  readonly contentOffset: number | undefined;
  readonly payloadOffset: number | undefined;
  readonly linkTarget: Uint8Array | undefined;
  readonly device: Device | undefined;
  /** The whole metadata when it holds more than the fields above (hasNoExtras), else null. */
  private readonly extras: Metadata | null;
  private readonly pathText: string;
  private readonly start: number;
  private readonly end: number;
  private readonly goodbyeIndex: number | null;

  constructor(e: AccessorEntry) {
    const x = e.entry;
    const st = x.metadata.stat;
    this.kind = x.kind;
    this.mode = st.mode;
    this.uid = st.uid;
    this.gid = st.gid;
    this.mtimeSecs = st.mtime.secs;
    this.mtimeNanos = st.mtime.nanos;
    this.filenameOffset = x.filenameOffset;
    this.size = x.size;
    this.contentOffset = x.contentOffset;
    this.payloadOffset = x.payloadOffset;
    this.linkTarget = x.linkTarget;
    this.device = x.device;
    this.extras = hasNoExtras(x.metadata) ? null : x.metadata;
    this.pathText = Buffer.from(x.path.buffer, x.path.byteOffset, x.path.byteLength).toString('latin1');
    this.start = e.range.start;
    this.end = e.range.end;
    this.goodbyeIndex = e.goodbyeIndex;
  }

  /** getxattr/listxattr have nothing to show. */
  get noXattrs(): boolean {
    return this.extras === null || hasNoXattrs(this.extras);
  }

  /** The entry's metadata (rebuilt without extras when it has none). */
  metadata(): Metadata {
    if (this.extras) return this.extras;
    const stat = { mode: this.mode, flags: 0, uid: this.uid, gid: this.gid, mtime: { secs: this.mtimeSecs, nanos: this.mtimeNanos } };
    return { stat, xattrs: [], acl: emptyAcl(), fcaps: null, quotaProjectId: null };
  }

  /** Full path bytes from the archive root. */
  path(): Uint8Array {
    return Buffer.from(this.pathText, 'latin1');
  }

  /** The entry as the accessor takes it. */
  full(): AccessorEntry {
    const entry = {
      path: this.path(),
      kind: this.kind,
      metadata: this.metadata(),
      filenameOffset: this.filenameOffset,
      size: this.size,
      contentOffset: this.contentOffset,
      payloadOffset: this.payloadOffset,
      linkTarget: this.linkTarget,
      device: this.device,
    };
    return { entry, range: { start: this.start, end: this.end }, goodbyeIndex: this.goodbyeIndex };
  }
}
