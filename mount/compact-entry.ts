// How a mount node keeps its decoded pxar entry. The kernel holds every node of a listed archive (54k for /usr/share),
// and per entry a path Uint8Array (its own ArrayBuffer) and empty ACL and xattr lists cost ~0.5 KiB of heap: the path
// is kept as latin1 text (one byte per path byte, lossless) and entries without extras share frozen empty lists.
import type { AccessorEntry } from '../src/pxar/accessor.js';
import type { Acl, AclEntry, Metadata, PxarEntry, Xattr } from '../src/pxar/format.js';

const frozenEmpty = <T>(): T[] => Object.freeze([]) as unknown as T[];
const NO_XATTRS = frozenEmpty<Xattr>();
const NO_ACL: Acl = Object.freeze({
  users: frozenEmpty<AclEntry>(),
  groups: frozenEmpty<AclEntry>(),
  groupObj: null,
  default: null,
  defaultUsers: frozenEmpty<AclEntry>(),
  defaultGroups: frozenEmpty<AclEntry>(),
});

export const aclIsEmpty = (a: Acl): boolean =>
  a.users.length === 0 && a.groups.length === 0 && a.groupObj === null && a.default === null && a.defaultUsers.length === 0 && a.defaultGroups.length === 0;

/** No xattrs, ACL entries or file capabilities: getxattr/listxattr of the entry have nothing to show. */
export const hasNoXattrs = (md: Metadata): boolean => md.xattrs.length === 0 && md.acl === NO_ACL && !md.fcaps;

/** The metadata with shared empty lists where it has no xattrs or ACL entries. */
function compactMetadata(md: Metadata): Metadata {
  const noXattrs = md.xattrs.length === 0;
  const noAcl = aclIsEmpty(md.acl);
  if (!noXattrs && !noAcl) return md;
  return { stat: md.stat, xattrs: noXattrs ? NO_XATTRS : md.xattrs, acl: noAcl ? NO_ACL : md.acl, fcaps: md.fcaps, quotaProjectId: md.quotaProjectId };
}

export type EntryFields = Omit<PxarEntry, 'path'>;

export class CompactEntry {
  /** Everything but the path. */
  readonly entry: EntryFields;
  private readonly pathText: string;
  private readonly start: number;
  private readonly end: number;
  private readonly goodbyeIndex: number | null;

  constructor(e: AccessorEntry) {
    const { path, ...fields } = e.entry;
    fields.metadata = compactMetadata(fields.metadata);
    this.entry = fields;
    this.pathText = Buffer.from(path.buffer, path.byteOffset, path.byteLength).toString('latin1');
    this.start = e.range.start;
    this.end = e.range.end;
    this.goodbyeIndex = e.goodbyeIndex;
  }

  /** Full path bytes from the archive root. */
  path(): Uint8Array {
    return Buffer.from(this.pathText, 'latin1');
  }

  /** The entry as the accessor takes it. */
  full(): AccessorEntry {
    return { entry: { ...this.entry, path: this.path() }, range: { start: this.start, end: this.end }, goodbyeIndex: this.goodbyeIndex };
  }
}
