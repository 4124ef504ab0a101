// A filesystem entry's pxar Metadata (spec §8.3, §8.4), chosen the way the PBS client does it
// (vectors/README.md "What the PBS client puts into an archive").
import type { BigIntStats } from 'node:fs';
import { PbsError } from '../errors.js';
import { S_IFDIR, S_IFREG, fileType, timestampFromNs, type Metadata, type Xattr } from '../pxar/format.js';
import { pxarFlagsFromChattr } from './chattr.js';
import { nativeFs } from './native-fs.js';
import { XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, aclFromXattrs } from './posix-acl.js';
import { errnoOf } from './errno.js';

const FCAPS_NAME = 'security.capability';
const MAX_XATTR_NAME = 255;

/** Xattrs archived as XATTR items: `user.*`, `trusted.*` and `security.NTACL`, names of at most 255 bytes. */
export function isArchivedXattrName(name: string): boolean {
  return name.length <= MAX_XATTR_NAME && (name.startsWith('user.') || name.startsWith('trusted.') || name === 'security.NTACL');
}

/** lgetxattr that treats a vanished attribute or an fs without xattrs as absent. */
function getXattr(path: Uint8Array, name: string): Uint8Array | null {
  try {
    return nativeFs().lgetxattr(path, name);
  } catch (e) {
    if (errnoOf(e) === 'EOPNOTSUPP') return null;
    throw e;
  }
}

/**
 * Metadata for the entry at `path` whose lstat is `st`. Only regular files and directories carry xattrs, ACLs, fcaps,
 * chattr flags and a project id (the client reads the others through O_PATH handles, which have none of these).
 * Throws the errno error of a failing syscall (ENOENT when the entry vanished) wrapped in a PbsError naming the path.
 */
export function readMetadata(path: Uint8Array, st: BigIntStats, displayPath: string): Metadata {
  const mode = Number(st.mode);
  const meta: Metadata = {
    stat: { mode, flags: 0, uid: Number(st.uid), gid: Number(st.gid), mtime: timestampFromNs(st.mtimeNs) },
    xattrs: [],
    acl: { users: [], groups: [], groupObj: null, default: null, defaultUsers: [], defaultGroups: [] },
    fcaps: null,
    quotaProjectId: null,
  };
  const type = fileType(mode);
  if (type !== S_IFREG && type !== S_IFDIR) return meta;
  const fsx = nativeFs();
  try {
    let names: Buffer[];
    try {
      names = fsx.llistxattr(path);
    } catch (e) {
      if (errnoOf(e) !== 'EOPNOTSUPP') throw e;
      names = [];
    }
    let hasAcl = false;
    const xattrs: Xattr[] = [];
    for (const raw of names) {
      const name = raw.toString('latin1');
      if (name === FCAPS_NAME) {
        const v = getXattr(path, name);
        if (v) meta.fcaps = new Uint8Array(v);
      } else if (name === XATTR_ACL_ACCESS || name === XATTR_ACL_DEFAULT) {
        hasAcl = true;
      } else if (isArchivedXattrName(name)) {
        const v = getXattr(path, name);
        if (v) xattrs.push({ name: new Uint8Array(raw), value: new Uint8Array(v) });
      }
    }
    meta.xattrs = xattrs; // llistxattr order, as the PBS client writes them
    if (hasAcl) {
      const access = getXattr(path, XATTR_ACL_ACCESS);
      const dflt = type === S_IFDIR ? getXattr(path, XATTR_ACL_DEFAULT) : null;
      meta.acl = aclFromXattrs(access, dflt, displayPath);
    }
    const [fl, projid] = fsx.getInodeAttrs(path);
    if (fl !== null) meta.stat.flags = pxarFlagsFromChattr(fl, fsx.FS_FL);
    if (projid !== null && projid !== 0) meta.quotaProjectId = projid;
  } catch (e) {
    if (e instanceof PbsError) throw e;
    const code = errnoOf(e);
    throw new PbsError(code === 'ENOENT' ? 'ENOENT' : 'EIO', `reading metadata failed: ${(e as Error).message}`, { path: displayPath, cause: e });
  }
  return meta;
}
