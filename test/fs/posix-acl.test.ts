// POSIX ACL xattr bytes <-> pxar ACL items, with the client's rules (vectors/README.md).
import { describe, expect, it } from 'vitest';
import { PbsError } from '../../src/errors.js';
import { accessAclXattr, aclFromXattrs, defaultAclXattr, encodePosixAcl, parsePosixAcl } from '../../src/fs/posix-acl.js';
import { ACL_NO_MASK } from '../../src/pxar/format.js';

const U = 0xffffffff;
// Tag values of the Linux ABI, written out independently of the module under test.
const USER_OBJ = 1, USER = 2, GROUP_OBJ = 4, GROUP = 8, MASK = 0x10, OTHER = 0x20;

/** Kernel byte layout by hand: version 2, then {u16 tag, u16 perm, u32 id}. */
function raw(entries: [number, number, number][]): Uint8Array {
  const b = Buffer.alloc(4 + 8 * entries.length);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + 8 * i);
    b.writeUInt16LE(perm, 6 + 8 * i);
    b.writeUInt32LE(id, 8 + 8 * i);
  });
  return new Uint8Array(b);
}

describe('posix ACL xattrs', () => {
  const access = raw([[USER_OBJ, 6, U], [USER, 4, 1001], [USER, 6, 1000], [GROUP_OBJ, 4, U], [GROUP, 5, 100], [MASK, 4, U], [OTHER, 0, U]]);

  it('parses and re-encodes the kernel layout', () => {
    const entries = parsePosixAcl(access, 'f');
    expect(entries).toHaveLength(7);
    expect(entries[1]).toEqual({ tag: USER, perm: 4, id: 1001 });
    // encode sorts by tag, then id
    expect(Buffer.from(encodePosixAcl(entries)).equals(Buffer.from(raw([[USER_OBJ, 6, U], [USER, 6, 1000], [USER, 4, 1001], [GROUP_OBJ, 4, U], [GROUP, 5, 100], [MASK, 4, U], [OTHER, 0, U]])))).toBe(true);
  });

  it('maps an access ACL like the client: sorted users/groups, GROUP_OBJ because a mask exists', () => {
    const acl = aclFromXattrs(access, null, 'f');
    expect(acl.users).toEqual([{ id: 1000, permissions: 6n }, { id: 1001, permissions: 4n }]);
    expect(acl.groups).toEqual([{ id: 100, permissions: 5n }]);
    expect(acl.groupObj).toBe(4n);
    expect(acl.default).toBeNull();
  });

  it('leaves GROUP_OBJ out without a mask', () => {
    const acl = aclFromXattrs(raw([[USER_OBJ, 7, U], [GROUP_OBJ, 5, U], [OTHER, 5, U]]), null, 'f');
    expect(acl.groupObj).toBeNull();
    expect(acl.users).toEqual([]);
  });

  it('fills missing default parts with NO_MASK', () => {
    const acl = aclFromXattrs(null, raw([[USER_OBJ, 7, U], [USER, 7, 1000], [GROUP_OBJ, 5, U], [GROUP, 5, 100], [OTHER, 0, U]]), 'd');
    expect(acl.default).toEqual({ userObj: 7n, groupObj: 5n, other: 0n, mask: ACL_NO_MASK });
    expect(acl.defaultUsers).toEqual([{ id: 1000, permissions: 7n }]);
    expect(acl.defaultGroups).toEqual([{ id: 100, permissions: 5n }]);
  });

  it('rebuilds the same access xattr from the pxar items and the mode', () => {
    const acl = aclFromXattrs(access, null, 'f');
    const out = accessAclXattr(acl, 0o100640, 'f')!;
    expect(Buffer.from(out).equals(Buffer.from(encodePosixAcl(parsePosixAcl(access, 'f'))))).toBe(true);
    expect(accessAclXattr(aclFromXattrs(null, null, 'f'), 0o100644, 'f')).toBeNull();
  });

  it('adds a mask from the group bits when named entries come without GROUP_OBJ', () => {
    const out = accessAclXattr({ users: [{ id: 5, permissions: 7n }], groups: [], groupObj: null, default: null, defaultUsers: [], defaultGroups: [] }, 0o750, 'f')!;
    expect(parsePosixAcl(out, 'f')).toEqual([
      { tag: USER_OBJ, perm: 7, id: U }, { tag: USER, perm: 7, id: 5 }, { tag: GROUP_OBJ, perm: 5, id: U }, { tag: MASK, perm: 5, id: U }, { tag: OTHER, perm: 0, id: U },
    ]);
  });

  it('rebuilds a default xattr leaving NO_MASK parts out', () => {
    const dflt = raw([[USER_OBJ, 7, U], [USER, 7, 1000], [GROUP_OBJ, 5, U], [GROUP, 5, 100], [MASK, 7, U], [OTHER, 0, U]]);
    const acl = aclFromXattrs(null, dflt, 'd');
    expect(Buffer.from(defaultAclXattr(acl, 'd')!).equals(Buffer.from(dflt))).toBe(true);
    const partial = defaultAclXattr({ ...acl, default: { userObj: 7n, groupObj: ACL_NO_MASK, other: 1n, mask: ACL_NO_MASK }, defaultUsers: [], defaultGroups: [] }, 'd')!;
    expect(parsePosixAcl(partial, 'd').map((e) => e.tag)).toEqual([USER_OBJ, OTHER]);
  });

  it.each([
    ['short', new Uint8Array([2, 0])],
    ['ragged', new Uint8Array(4 + 7)],
    ['wrong version', raw([]).map((v, i) => (i === 0 ? 1 : v))],
    ['unknown tag', raw([[0x40, 0, U]])],
  ])('rejects a %s xattr with ECORRUPT', (_, bytes) => {
    let err: unknown;
    try {
      aclFromXattrs(bytes, null, 'some/file');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PbsError);
    expect((err as PbsError).code).toBe('ECORRUPT');
    expect((err as PbsError).message).toContain('some/file');
  });

  it('rejects permissions beyond rwx when restoring', () => {
    expect(() => accessAclXattr({ users: [{ id: 1, permissions: 8n }], groups: [], groupObj: null, default: null, defaultUsers: [], defaultGroups: [] }, 0o600, 'f')).toThrow(PbsError);
  });
});
