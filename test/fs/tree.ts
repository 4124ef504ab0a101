// Test helpers: a synthetic tree with every entry kind and attribute, and a full attribute snapshot of a tree.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readFileSync, symlinkSync, writeFileSync, writeSync, type BigIntStats } from 'node:fs';
import { nativeFs } from '../../src/fs/native-fs.js';

const U = 0xffffffff;

/** Linux ACL xattr bytes written by hand (version 2, {u16 tag, u16 perm, u32 id} sorted by tag then id). */
export function aclBytes(entries: [tag: number, perm: number, id: number][]): Buffer {
  const b = Buffer.alloc(4 + 8 * entries.length);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + 8 * i);
    b.writeUInt16LE(perm, 6 + 8 * i);
    b.writeUInt32LE(id, 8 + 8 * i);
  });
  return b;
}
export const ACL = { USER_OBJ: 1, USER: 2, GROUP_OBJ: 4, GROUP: 8, MASK: 0x10, OTHER: 0x20, U };

/** VFS capability v2 (magic 0x02000000, effective flag), CAP_NET_BIND_SERVICE permitted. */
export const FCAPS = Buffer.from('0100000200040000000000000000000000000000', 'hex');

export function setTimes(path: string | Buffer, secs: number, nanos: number): void {
  nativeFs().utimensat(path, secs, nanos, secs, nanos, true);
}

function p(root: string, rel: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(root), Buffer.from('/'), typeof rel === 'string' ? Buffer.from(rel) : rel]);
}

export const NON_UTF8 = Buffer.from([0x6e, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]);
export const LONG_NAME = 'ä'.repeat(127); // 254 bytes
export const BIG_DIR_ENTRIES = 5000;

/**
 * Builds the synthetic tree under `root` (needs root privileges for devices and foreign owners). Directory times are
 * set last, bottom-up, so creating children does not disturb them.
 */
export function buildTree(root: string): void {
  const fsx = nativeFs();
  mkdirSync(root, { recursive: true });
  const mk = (rel: string, mode: number) => {
    mkdirSync(p(root, rel));
    chmodSync(p(root, rel), mode);
  };
  const file = (rel: string | Buffer, content: string | Buffer, mode = 0o644) => {
    writeFileSync(p(root, rel), content);
    chmodSync(p(root, rel), mode);
  };
  // regular file with every attribute
  file('all-metadata', 'hello world', 0o640);
  lchown(root, 'all-metadata', 1000, 100);
  fsx.lsetxattr(p(root, 'all-metadata'), 'user.a', Buffer.from('1'));
  fsx.lsetxattr(p(root, 'all-metadata'), 'user.b', Buffer.alloc(0));
  fsx.lsetxattr(p(root, 'all-metadata'), 'trusted.c', Buffer.from([0, 0xff, 1]));
  fsx.lsetxattr(p(root, 'all-metadata'), 'system.posix_acl_access', aclBytes([
    [ACL.USER_OBJ, 6, U], [ACL.USER, 6, 1000], [ACL.USER, 4, 1001], [ACL.GROUP_OBJ, 4, U], [ACL.GROUP, 5, 100], [ACL.MASK, 4, U], [ACL.OTHER, 0, U],
  ]));
  fsx.lsetxattr(p(root, 'all-metadata'), 'security.capability', FCAPS);
  fsx.setFlags(p(root, 'all-metadata'), (fsx.getFlags(p(root, 'all-metadata')) ?? 0) | fsx.FS_FL.NODUMP);
  setTimes(p(root, 'all-metadata'), -2, 500_000_000);
  // setuid/setgid/sticky bits and a nanosecond mtime
  file('suid', '#!/bin/sh\n', 0o6755);
  setTimes(p(root, 'suid'), 1_234_567_890, 123_456_789);
  // directory with access and default ACLs, NOATIME flag, setgid
  mk('dir-acl', 0o2775);
  lchown(root, 'dir-acl', 0, 100);
  fsx.lsetxattr(p(root, 'dir-acl'), 'system.posix_acl_default', aclBytes([
    [ACL.USER_OBJ, 7, U], [ACL.USER, 7, 1000], [ACL.GROUP_OBJ, 5, U], [ACL.GROUP, 5, 100], [ACL.MASK, 7, U], [ACL.OTHER, 0, U],
  ]));
  fsx.lsetxattr(p(root, 'dir-acl'), 'system.posix_acl_access', aclBytes([
    [ACL.USER_OBJ, 7, U], [ACL.USER, 5, 33], [ACL.GROUP_OBJ, 5, U], [ACL.MASK, 7, U], [ACL.OTHER, 5, U],
  ]));
  fsx.lsetxattr(p(root, 'dir-acl'), 'user.dir', Buffer.from('on a directory'));
  fsx.setFlags(p(root, 'dir-acl'), (fsx.getFlags(p(root, 'dir-acl')) ?? 0) | fsx.FS_FL.NOATIME);
  // special files (no xattrs: the client cannot read them through O_PATH)
  fsx.mknod(p(root, 'dir-acl/fifo'), 0o010600, 0);
  fsx.mknod(p(root, 'dir-acl/socket'), 0o140777, 0);
  lchown(root, 'dir-acl/socket', 33, 33);
  fsx.mknod(p(root, 'chardev'), 0o020666, (1n << 8n) | 3n);
  fsx.mknod(p(root, 'blockdev'), 0o060660, (7n << 8n) | 0n);
  lchown(root, 'blockdev', 0, 6);
  // hardlink groups: one spanning directories with three names, one with two
  linkSync(p(root, 'all-metadata'), p(root, 'dir-acl/hardlink-to-all-metadata'));
  mk('links', 0o755);
  file('links/a', 'group two');
  linkSync(p(root, 'links/a'), p(root, 'links/b'));
  linkSync(p(root, 'all-metadata'), p(root, 'links/third-name'));
  // symlinks: relative, absolute (never followed on restore), dangling, UTF-8
  symlinkSync('all-metadata', p(root, 'symlink'));
  symlinkSync('/etc/passwd', p(root, 'abs-symlink'));
  symlinkSync('does/not/exist', p(root, 'dangling'));
  symlinkSync('zielü', p(root, 'ünïcödé-link'));
  lchown(root, 'ünïcödé-link', 7, 8);
  setTimes(p(root, 'symlink'), 5, 6);
  // names: long UTF-8, non-UTF-8 bytes, spaces and newlines
  file(LONG_NAME, 'long name');
  file(NON_UTF8, Buffer.from([0, 1, 2, 3]));
  file('with space\nand newline', 'odd');
  file('日本語のファイル名.txt', 'utf-8');
  // empty and sparse files
  file('empty', '');
  const sparse = openSync(p(root, 'sparse'), 'w');
  writeSync(sparse, Buffer.from('in the middle'), 0, 13, 20 * 1024 * 1024);
  writeSync(sparse, Buffer.from('end'), 0, 3, 48 * 1024 * 1024 - 3);
  closeSync(sparse);
  // a file whose contents are not all zero nor trivially small
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  file('big.bin', big);
  // 5,000 entries in one directory
  mk('many', 0o755);
  for (let i = 0; i < BIG_DIR_ENTRIES; i++) writeFileSync(p(root, `many/f${String(i).padStart(4, '0')}`), `entry ${i}`);
  // empty and read-only directories (mode and time are restored after their children)
  mk('empty-dir', 0o700);
  mk('ro-dir', 0o755);
  file('ro-dir/inside', 'x', 0o444);
  chmodSync(p(root, 'ro-dir'), 0o555);
  for (const [rel, secs] of [['ro-dir', 100], ['empty-dir', 4], ['many', 200], ['links', 300], ['dir-acl', 0]] as const) setTimes(p(root, rel), secs, 7);
  setTimes(root, 1_600_000_000, 1);
}

function lchown(root: string, rel: string, uid: number, gid: number): void {
  lchownSync(p(root, rel), uid, gid);
}

export interface Snap {
  type: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: bigint;
  xattrs?: Record<string, string>;
  flags?: number;
  ino: bigint;
}

/** Every attribute pxar carries, for each path below `root` (keys are latin1 of the raw relative path; '' = root). */
export function snapshot(root: string): Map<string, Snap> {
  const fsx = nativeFs();
  const out = new Map<string, Snap>();
  const mappedFlags = Object.values(fsx.FS_FL).reduce((a, b) => a | b, 0);
  const visit = (abs: Buffer, rel: string) => {
    const st: BigIntStats = lstatSync(abs, { bigint: true });
    const type = Number(st.mode) & 0o170000;
    const s: Snap = { type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, ino: st.ino };
    if (type === 0o100000) {
      s.size = Number(st.size);
      s.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    }
    if (type === 0o120000) s.target = readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    if (type === 0o020000 || type === 0o060000) s.rdev = st.rdev;
    if (type === 0o100000 || type === 0o040000) {
      s.xattrs = {};
      for (const n of fsx.llistxattr(abs).map((b) => b.toString('latin1')).sort()) s.xattrs[n] = fsx.lgetxattr(abs, n)!.toString('hex');
      s.flags = (fsx.getFlags(abs) ?? 0) & mappedFlags;
    }
    out.set(rel, s);
    if (type === 0o040000) {
      for (const name of readdirSync(abs, { encoding: 'buffer' })) {
        visit(Buffer.concat([abs, Buffer.from('/'), name]), rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`);
      }
    }
  };
  visit(Buffer.from(root), '');
  return out;
}

/** Paths grouped by inode (hardlink identity), as sorted path lists. */
export function linkGroups(snap: Map<string, Snap>): string[][] {
  const byIno = new Map<bigint, string[]>();
  for (const [path, s] of snap) if (s.type === 0o100000) byIno.set(s.ino, [...(byIno.get(s.ino) ?? []), path]);
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
}

