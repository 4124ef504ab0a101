// pxar ACL items (spec §8.2/§8.4) back to the Linux `system.posix_acl_*` xattr values, rebuilt the way the
// reference extractor rebuilds an ACL (user_obj/other/mask from the mode). The xattr layout itself is the kernel's
// (spec is silent): u32 version 2, then {u16 tag, u16 perm, u32 id} entries, little-endian, ordered by tag then id.
import { ACL_NO_MASK, type Acl, type AclEntry } from '../src/pxar/format.js';

const VERSION = 2;
const USER_OBJ = 0x01;
const USER = 0x02;
const GROUP_OBJ = 0x04;
const GROUP = 0x08;
const MASK = 0x10;
const OTHER = 0x20;
const UNDEFINED_ID = 0xffffffff;

type Item = [tag: number, perm: number, id: number];

function encode(items: Item[]): Uint8Array {
  const out = new Uint8Array(4 + items.length * 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, VERSION, true);
  items.forEach(([tag, perm, id], i) => {
    dv.setUint16(4 + i * 8, tag, true);
    dv.setUint16(6 + i * 8, perm, true);
    dv.setUint32(8 + i * 8, id, true);
  });
  return out;
}

const perm = (p: bigint): number => Number(p & 7n);
const named = (tag: number, list: AclEntry[]): Item[] =>
  [...list].sort((a, b) => a.id - b.id).map((e): Item => [tag, perm(e.permissions), e.id]);

/** `system.posix_acl_access`, or null when the entry has only the mode (no extended access ACL). */
export function accessAclXattr(acl: Acl, mode: number): Uint8Array | null {
  if (acl.users.length === 0 && acl.groups.length === 0 && acl.groupObj === null) return null;
  const group = (mode >> 3) & 7;
  // With a stored GROUP_OBJ the mode's group bits are the mask; without one they are the owning group's.
  const groupObj = acl.groupObj !== null ? perm(acl.groupObj) : group;
  return encode([
    [USER_OBJ, (mode >> 6) & 7, UNDEFINED_ID],
    ...named(USER, acl.users),
    [GROUP_OBJ, groupObj, UNDEFINED_ID],
    ...named(GROUP, acl.groups),
    [MASK, group, UNDEFINED_ID],
    [OTHER, mode & 7, UNDEFINED_ID],
  ]);
}

/** `system.posix_acl_default` of a directory, or null when it has none. */
export function defaultAclXattr(acl: Acl): Uint8Array | null {
  const d = acl.default;
  if (d === null) return null;
  const items: Item[] = [
    [USER_OBJ, perm(d.userObj), UNDEFINED_ID],
    ...named(USER, acl.defaultUsers),
    [GROUP_OBJ, perm(d.groupObj), UNDEFINED_ID],
    ...named(GROUP, acl.defaultGroups),
  ];
  if (d.mask !== ACL_NO_MASK) items.push([MASK, perm(d.mask), UNDEFINED_ID]);
  items.push([OTHER, perm(d.other), UNDEFINED_ID]);
  return encode(items);
}
