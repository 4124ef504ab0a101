// A filesystem entry's pxar Metadata (spec §8.3, §8.4), chosen the way the PBS client does it
// (vectors/README.md "What the PBS client puts into an archive"), from what scanDir read.
import { S_IFDIR, S_IFREG, fileType, type Metadata, type Xattr } from '../pxar/format.js';
import { pxarFlagsFromChattr } from './chattr.js';
import { nativeFs } from './native-fs.js';
import { XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, aclFromXattrs } from './posix-acl.js';
import type { ScannedEntry } from './scan-dir.js';

const FCAPS_NAME = 'security.capability';
const MAX_XATTR_NAME = 255;

/** Xattrs archived as XATTR items: `user.*`, `trusted.*` and `security.NTACL`, names of at most 255 bytes. */
export function isArchivedXattrName(name: string): boolean {
  return name.length <= MAX_XATTR_NAME && (name.startsWith('user.') || name.startsWith('trusted.') || name === 'security.NTACL');
}

/**
 * Metadata of a scanned entry. Only regular files and directories carry xattrs, ACLs, fcaps, chattr flags and a
 * project id (the client reads the others through O_PATH handles, which have none of these). Throws a PbsError
 * naming `displayPath` for a malformed ACL.
 */
export function readMetadata(e: ScannedEntry, displayPath: string): Metadata {
  const st = e.st;
  const meta: Metadata = {
    stat: { mode: st.mode, flags: 0, uid: st.uid, gid: st.gid, mtime: st.mtime },
    xattrs: [],
    acl: { users: [], groups: [], groupObj: null, default: null, defaultUsers: [], defaultGroups: [] },
    fcaps: null,
    quotaProjectId: null,
  };
  const type = fileType(st.mode);
  if (type !== S_IFREG && type !== S_IFDIR) return meta;
  let access: Uint8Array | null = null;
  let dflt: Uint8Array | null = null;
  const xattrs: Xattr[] = [];
  for (const x of e.xattrs) {
    const name = x.name.toString('latin1');
    if (name === FCAPS_NAME) meta.fcaps = plain(x.value);
    else if (name === XATTR_ACL_ACCESS) access = x.value;
    else if (name === XATTR_ACL_DEFAULT) dflt = type === S_IFDIR ? x.value : null;
    else if (isArchivedXattrName(name)) xattrs.push({ name: plain(x.name), value: plain(x.value) });
  }
  meta.xattrs = xattrs; // llistxattr order, as the PBS client writes them
  if (access || dflt) meta.acl = aclFromXattrs(access, dflt, displayPath);
  if (e.flags !== null) meta.stat.flags = pxarFlagsFromChattr(e.flags, nativeFs().FS_FL);
  if (e.projid !== null && e.projid !== 0) meta.quotaProjectId = e.projid;
  return meta;
}

/** Metadata holds plain Uint8Arrays (as decoded archives do), not Buffers. */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
