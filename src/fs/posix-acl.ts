// POSIX ACLs as Linux stores them in the `system.posix_acl_access` / `system.posix_acl_default` xattrs, and their
// mapping to pxar ACL items the way the PBS client does it (spec §8.4 and vectors/README.md "What the PBS client
// puts into an archive"). The xattr layout is the kernel ABI: u32 version 2, then 8-byte {u16 tag, u16 perm, u32 id}.
import { PbsError } from '../errors.js';
import { ACL_NO_MASK, emptyAcl, type Acl, type AclEntry } from '../pxar/format.js';

export const XATTR_ACL_ACCESS = 'system.posix_acl_access';
export const XATTR_ACL_DEFAULT = 'system.posix_acl_default';

const ACL_XATTR_VERSION = 2;
const TAG_USER_OBJ = 0x01;
const TAG_USER = 0x02;
const TAG_GROUP_OBJ = 0x04;
const TAG_GROUP = 0x08;
const TAG_MASK = 0x10;
const TAG_OTHER = 0x20;
const UNDEFINED_ID = 0xffffffff;

export interface PosixAclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** Parses an ACL xattr value; `path` names the file in errors. */
export function parsePosixAcl(b: Uint8Array, path: string): PosixAclEntry[] {
  if (b.length < 4 || (b.length - 4) % 8 !== 0) throw new PbsError('ECORRUPT', `ACL xattr of ${b.length} bytes has a bad size`, { path });
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0, true) !== ACL_XATTR_VERSION) throw new PbsError('ECORRUPT', `ACL xattr version ${v.getUint32(0, true)} is not 2`, { path });
  const out: PosixAclEntry[] = [];
  for (let at = 4; at < b.length; at += 8) {
    out.push({ tag: v.getUint16(at, true), perm: v.getUint16(at + 2, true), id: v.getUint32(at + 4, true) });
  }
  return out;
}

/** Serialises entries in the kernel's canonical order (by tag, then id). */
export function encodePosixAcl(entries: PosixAclEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag || a.id - b.id);
  const out = new Uint8Array(4 + 8 * sorted.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, ACL_XATTR_VERSION, true);
  sorted.forEach((e, i) => {
    v.setUint16(4 + 8 * i, e.tag, true);
    v.setUint16(6 + 8 * i, e.perm, true);
    v.setUint32(8 + 8 * i, e.id, true);
  });
  return out;
}

interface Split {
  users: AclEntry[];
  groups: AclEntry[];
  userObj: bigint | null;
  groupObj: bigint | null;
  other: bigint | null;
  mask: bigint | null;
}

function split(entries: PosixAclEntry[], path: string): Split {
  const s: Split = { users: [], groups: [], userObj: null, groupObj: null, other: null, mask: null };
  for (const e of entries) {
    const perm = BigInt(e.perm);
    switch (e.tag) {
      case TAG_USER_OBJ: s.userObj = perm; break;
      case TAG_GROUP_OBJ: s.groupObj = perm; break;
      case TAG_OTHER: s.other = perm; break;
      case TAG_MASK: s.mask = perm; break;
      case TAG_USER: s.users.push({ id: e.id, permissions: perm }); break;
      case TAG_GROUP: s.groups.push({ id: e.id, permissions: perm }); break;
      default: throw new PbsError('ECORRUPT', `unknown ACL tag 0x${e.tag.toString(16)}`, { path });
    }
  }
  const byIdThenPerm = (a: AclEntry, b: AclEntry) => a.id - b.id || (a.permissions < b.permissions ? -1 : a.permissions > b.permissions ? 1 : 0);
  s.users.sort(byIdThenPerm);
  s.groups.sort(byIdThenPerm);
  return s;
}

/**
 * pxar ACL items from the two xattr values (null = absent). Access: named users/groups, and GROUP_OBJ only when a
 * mask exists (otherwise it equals the mode's group bits). Default: ACL_DEFAULT with NO_MASK for missing parts.
 */
export function aclFromXattrs(access: Uint8Array | null, dflt: Uint8Array | null, path: string): Acl {
  const acl = emptyAcl();
  if (access) {
    const s = split(parsePosixAcl(access, path), path);
    acl.users = s.users;
    acl.groups = s.groups;
    if (s.mask !== null && s.groupObj !== null) acl.groupObj = s.groupObj;
  }
  if (dflt) {
    const s = split(parsePosixAcl(dflt, path), path);
    if (s.userObj !== null || s.groupObj !== null || s.other !== null || s.mask !== null) {
      acl.default = { userObj: s.userObj ?? ACL_NO_MASK, groupObj: s.groupObj ?? ACL_NO_MASK, other: s.other ?? ACL_NO_MASK, mask: s.mask ?? ACL_NO_MASK };
    }
    acl.defaultUsers = s.users;
    acl.defaultGroups = s.groups;
  }
  return acl;
}

function perm(p: bigint, path: string): number {
  if (p > 7n) throw new PbsError('ECORRUPT', `ACL permission ${p} is out of range`, { path });
  return Number(p);
}

function named(list: AclEntry[], tag: number, path: string): PosixAclEntry[] {
  return list.map((e) => ({ tag, perm: perm(e.permissions, path), id: e.id }));
}

/**
 * The access ACL xattr to restore, or null when the archive has none. Owner/other come from the mode; with a stored
 * GROUP_OBJ the mode's group bits are the mask, without one they are GROUP_OBJ (and the mask, if named entries need one).
 */
export function accessAclXattr(acl: Acl, mode: number, path: string): Uint8Array | null {
  if (acl.users.length === 0 && acl.groups.length === 0 && acl.groupObj === null) return null;
  const groupBits = (mode >> 3) & 7;
  const entries: PosixAclEntry[] = [
    { tag: TAG_USER_OBJ, perm: (mode >> 6) & 7, id: UNDEFINED_ID },
    { tag: TAG_OTHER, perm: mode & 7, id: UNDEFINED_ID },
    ...named(acl.users, TAG_USER, path),
    ...named(acl.groups, TAG_GROUP, path),
  ];
  if (acl.groupObj !== null) {
    entries.push({ tag: TAG_GROUP_OBJ, perm: perm(acl.groupObj, path), id: UNDEFINED_ID }, { tag: TAG_MASK, perm: groupBits, id: UNDEFINED_ID });
  } else {
    entries.push({ tag: TAG_GROUP_OBJ, perm: groupBits, id: UNDEFINED_ID });
    if (acl.users.length > 0 || acl.groups.length > 0) entries.push({ tag: TAG_MASK, perm: groupBits, id: UNDEFINED_ID });
  }
  return encodePosixAcl(entries);
}

/** The default ACL xattr to restore, or null when the archive has none; NO_MASK parts are left out. */
export function defaultAclXattr(acl: Acl, path: string): Uint8Array | null {
  if (acl.default === null && acl.defaultUsers.length === 0 && acl.defaultGroups.length === 0) return null;
  const entries: PosixAclEntry[] = [...named(acl.defaultUsers, TAG_USER, path), ...named(acl.defaultGroups, TAG_GROUP, path)];
  const d = acl.default;
  if (d) {
    for (const [tag, p] of [[TAG_USER_OBJ, d.userObj], [TAG_GROUP_OBJ, d.groupObj], [TAG_OTHER, d.other], [TAG_MASK, d.mask]] as const) {
      if (p !== ACL_NO_MASK) entries.push({ tag, perm: perm(p, path), id: UNDEFINED_ID });
    }
  }
  return encodePosixAcl(entries);
}
