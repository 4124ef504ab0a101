// The whole-datastore mount, for real: tree layout, images, pxar archives (v1 and split) against their source
// directory, concurrent readers, encrypted archives without a key, live new snapshots, corrupt chunks, umount.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, writeSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBackupTime } from '../../src/datastore/names.js';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { makeImage, MiB, prng, sha256 } from '../helpers/images.js';
import { readFidx } from '../helpers/independent-reader.js';
import { backupDirectory } from '../helpers/pxar-snapshot.js';
import { isMounted, Mounted } from './mounted.js';

const T0 = 1_700_000_000;
const sh = (cmd: string, args: string[], cwd?: string): string => execFileSync(cmd, args, { encoding: 'utf8', cwd });

function makeSource(dir: string): void {
  mkdirSync(join(dir, 'dir/sub'), { recursive: true });
  mkdirSync(join(dir, 'special'));
  writeFileSync(join(dir, 'a.txt'), 'hello pbsfs\n'.repeat(100));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'big.bin'), prng('big', 3 * MiB + 17));
  writeFileSync(join(dir, 'dir/sub/deep.txt'), 'deep\n');
  symlinkSync('a.txt', join(dir, 'link'));
  symlinkSync('/nonexistent/target', join(dir, 'dangling'));
  writeFileSync(join(dir, 'hard1'), 'linked contents\n');
  linkSync(join(dir, 'hard1'), join(dir, 'dir/hard2'));
  sh('mkfifo', [join(dir, 'special/fifo')]);
  sh('mknod', [join(dir, 'special/null'), 'c', '1', '3']);
  chmodSync(join(dir, 'dir/sub/deep.txt'), 0o640);
  sh('setfattr', ['-n', 'user.color', '-v', 'blue', join(dir, 'a.txt')]);
  sh('setfattr', ['-n', 'user.bin', '-v', '0x00ff10', join(dir, 'dir')]);
  sh('setfacl', ['-m', 'u:1000:r-x,g:100:r--', join(dir, 'a.txt')]);
  sh('setfacl', ['-d', '-m', 'u:1000:rwx', join(dir, 'dir')]);
  execFileSync('chown', ['-h', '1234:4321', join(dir, 'link')]);
  sh('touch', ['-h', '-d', '2020-01-02 03:04:05.123456789', join(dir, 'a.txt'), join(dir, 'link')]);
}

/** Relative path → what must survive the round trip (times to the nanosecond). */
function metadataTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const st = lstatSync(join(root, rel), { bigint: true });
    const nlink = st.isDirectory() ? '' : ` nlink=${st.nlink}`;
    out[rel || '.'] = `mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.isDirectory() ? '-' : st.size} mtime=${st.mtimeNs} rdev=${st.rdev}${nlink}`;
    if (st.isSymbolicLink()) out[rel] += ` -> ${readlinkSync(join(root, rel))}`;
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel)).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

// getfattr -R follows readdir order, which differs between filesystems: compare the per-file blocks sorted.
const xattrDump = (dir: string): string =>
  sh('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], dir)
    .split('\n\n')
    .map((b) => b.trim())
    .filter(Boolean)
    .sort()
    .join('\n\n');

describe('pbsfs mount (datastores)', () => {
  let sb: Sandbox;
  let mnt: string;
  let src: string;
  let image: Buffer;
  let m: Mounted;
  const configDir = (): string => sb.env.PBSFS_CONFIG_DIR!;

  beforeAll(async () => {
    sb = sandbox('pbsfs-mount-');
    mnt = join(sb.dir, 'mnt');
    src = join(sb.dir, 'src');
    mkdirSync(mnt);
    mkdirSync(src);
    makeSource(src);
    image = makeImage(join(sb.dir, 'disk.raw'), 5, 'mnt');
    makeImage(join(sb.dir, 'other.raw'), 6, 'other');
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '100', '--backup-time', String(T0)]);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'other.raw')}`, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '300', '--backup-time', String(T0)]);
    await sb.ok(['key', 'create', join(sb.dir, 'key.json'), '--kdf', 'none']);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '200', '--backup-time', String(T0), '--keyfile', join(sb.dir, 'key.json')]);
    await backupDirectory({ configDir: configDir(), store: 'store1', id: 'v1', time: T0, src });
    await backupDirectory({ configDir: configDir(), store: 'store1', id: 'split', time: T0, src, split: true });
    // A tree with an SELinux label and no ACLs (labels are plain xattrs to ext4 and tmpfs without SELinux).
    const labelled = join(sb.dir, 'labelled');
    mkdirSync(labelled);
    writeFileSync(join(labelled, 'etc.conf'), 'x\n');
    writeFileSync(join(labelled, 'plain'), 'y\n');
    linkSync(join(labelled, 'plain'), join(labelled, 'plain2'));
    sh('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', join(labelled, 'etc.conf')]);
    await backupDirectory({ configDir: configDir(), store: 'store1', id: 'labelled', time: T0, src: labelled, split: true });
    m = await Mounted.start(sb, ['mount', mnt, '--store', 'store1', '--foreground'], mnt);
  }, 120_000);

  afterAll(async () => {
    await m?.stop();
    sb?.cleanup();
  });

  it('mirrors the datastore layout with latest links and snapshot xattrs', () => {
    expect(readdirSync(mnt)).toEqual(['store1']);
    expect(readdirSync(join(mnt, 'store1')).sort()).toEqual(['host', 'vm']);
    expect(readdirSync(join(mnt, 'store1/vm'))).toEqual(['100', '200', '300']);
    const time = formatBackupTime(T0);
    expect(readdirSync(join(mnt, 'store1/vm/100')).sort()).toEqual([time, 'latest']);
    expect(readlinkSync(join(mnt, 'store1/vm/100/latest'))).toBe(time);
    expect(readdirSync(join(mnt, 'store1/vm/100/latest')).sort()).toEqual(['disk.img', 'index.json']);
    expect(readdirSync(join(mnt, 'store1/host/split/latest'))).toEqual(expect.arrayContaining(['root.pxar', 'index.json']));
    const manifest = JSON.parse(readFileSync(join(mnt, 'store1/vm/100/latest/index.json'), 'utf8'));
    expect(manifest['backup-id']).toBe('100');
    expect(lstatSync(join(mnt, 'store1/vm/100/latest/disk.img')).size).toBe(image.length);
    const xattrs = sh('getfattr', ['-d', '-m', 'user.pbsfs', '--absolute-names', join(mnt, 'store1/vm/200/latest')]);
    expect(xattrs).toContain('user.pbsfs.protected="0"');
    expect(xattrs).toContain(`user.pbsfs.size="${lstatSync(join(mnt, 'store1/vm/200/latest/disk.img')).size}`);
    expect(xattrs).toMatch(/user\.pbsfs\.fingerprint="([0-9a-f]{2}:){31}[0-9a-f]{2}"/);
  });

  it('reads the image back bit for bit, also with concurrent and random-access readers', async () => {
    const path = join(mnt, 'store1/vm/100/latest/disk.img');
    const all = await Promise.all([1, 2, 3, 4].map(() => readFile(path)));
    for (const b of all) expect(sha256(b)).toBe(sha256(image));
    for (const off of [image.length - 100, 4 * MiB - 3, 123457, 0]) {
      const got = execFileSync('dd', [`if=${path}`, 'bs=1', `skip=${off}`, 'count=100', 'status=none']);
      expect(Buffer.compare(got, image.subarray(off, off + 100))).toBe(0);
    }
  });

  for (const id of ['v1', 'split']) {
    it(`shows the ${id} pxar archive with exact metadata, xattrs and ACLs`, async () => {
      const root = join(mnt, `store1/host/${id}/latest/root.pxar`);
      // Link counts are known once the archive's hardlink walk ends, which starts with the first listing and runs in
      // the background (until then nlink is 1 with a 1 s cache lifetime, as documented): list, then wait for it.
      readdirSync(root);
      for (let i = 0; i < 100 && lstatSync(join(root, 'hard1')).nlink !== 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect(metadataTree(root)).toEqual(metadataTree(src));
      expect(xattrDump(root)).toBe(xattrDump(src));
      expect(sh('getfacl', ['-n', '-p', '-c', join(root, 'a.txt')])).toBe(sh('getfacl', ['-n', '-p', '-c', join(src, 'a.txt')]));
      expect(sh('getfacl', ['-n', '-p', '-c', '-d', join(root, 'dir')])).toBe(sh('getfacl', ['-n', '-p', '-c', '-d', join(src, 'dir')]));
      expect(lstatSync(join(root, 'hard1')).ino).toBe(lstatSync(join(root, 'dir/hard2')).ino);
      const out = join(sb.dir, `copy-${id}`);
      sh('cp', ['-a', root, out]);
      sh('diff', ['-r', '--no-dereference', '--exclude=special', src, out]);
      expect(metadataTree(out)).toEqual(metadataTree(src));
      expect(lstatSync(join(out, 'hard1')).ino).toBe(lstatSync(join(out, 'dir/hard2')).ino);
    });
  }

  it('refuses an encrypted archive without the key (EACCES) and logs why', async () => {
    await expect(readFile(join(mnt, 'store1/vm/200/latest/disk.img'))).rejects.toMatchObject({ code: 'EACCES' });
    expect(m.log).toMatch(/disk\.img\.fidx of vm\/200\/.* is encrypted/);
    // The manifest stays readable.
    expect(JSON.parse(readFileSync(join(mnt, 'store1/vm/200/latest/index.json'), 'utf8'))['backup-id']).toBe('200');
  });

  it('answers "not supported" for SELinux labels and ACLs in an archive that has none, so ls -l stops asking', async () => {
    const getfattr = (name: string, file: string) => {
      const r = spawnSync('getfattr', ['--absolute-names', '--only-values', '-n', name, file], { encoding: 'utf8' });
      return r.status === 0 ? r.stdout : r.stderr.trim().replace(/^.*: /, '');
    };
    const waitForWalk = async (root: string, linked: string) => {
      readdirSync(root);
      for (let i = 0; i < 100 && lstatSync(join(root, linked)).nlink !== 2; i++) await new Promise((r) => setTimeout(r, 100));
    };
    const acls = join(mnt, 'store1/host/split/latest/root.pxar');
    const labels = join(mnt, 'store1/host/labelled/latest/root.pxar');
    await waitForWalk(acls, 'hard1');
    await waitForWalk(labels, 'plain');
    expect(getfattr('security.selinux', join(acls, 'a.txt'))).toBe('Operation not supported');
    expect(getfattr('system.posix_acl_access', join(acls, 'a.txt'))).not.toMatch(/not supported|No such/);
    expect(getfattr('system.posix_acl_access', join(acls, 'empty'))).toBe('No such attribute');
    expect(getfattr('security.selinux', join(labels, 'etc.conf'))).toBe('system_u:object_r:etc_t:s0');
    expect(getfattr('security.selinux', join(labels, 'plain'))).toBe('No such attribute');
    expect(getfattr('system.posix_acl_access', join(labels, 'plain'))).toBe('Operation not supported');
    // Tools that copy metadata take "not supported" as "none": getfacl shows the mode, cp -a copies the label.
    expect(sh('getfacl', ['-n', '-p', '-c', join(labels, 'plain')])).toBe(sh('getfacl', ['-n', '-p', '-c', join(sb.dir, 'labelled/plain')]));
    const out = join(sb.dir, 'copy-labelled');
    sh('cp', ['-a', labels, out]);
    expect(getfattr('security.selinux', join(out, 'etc.conf'))).toBe('system_u:object_r:etc_t:s0');
  });

  it('fails a read of a corrupt chunk with EIO, logs digest and path, and keeps the rest readable', async () => {
    const store = join(sb.dir, 'store');
    const snap = join(store, 'vm/300', formatBackupTime(T0));
    const { digests } = readFidx(readFileSync(join(snap, 'disk.img.fidx')));
    const bad = digests[1]!; // a random-data chunk (makeImage: block 1)
    const chunk = join(store, '.chunks', bad.slice(0, 4), bad);
    const bytes = readFileSync(chunk);
    bytes[bytes.length - 5] ^= 0xff;
    const fd = openSync(chunk, 'w');
    writeSync(fd, bytes);
    closeSync(fd);
    const path = join(mnt, 'store1/vm/300/latest/disk.img');
    const other = readFileSync(join(sb.dir, 'other.raw'));
    const readAt = (off: number, n: number): Buffer =>
      execFileSync('dd', [`if=${path}`, 'bs=64K', `skip=${off / 65536}`, `count=${n / 65536}`, 'status=none']);
    expect(() => readAt(4 * MiB, 65536)).toThrow(/Input\/output error/);
    expect(Buffer.compare(readAt(8 * MiB, 65536), other.subarray(8 * MiB, 8 * MiB + 65536))).toBe(0);
    expect(Buffer.compare(readAt(0, 65536), other.subarray(0, 65536))).toBe(0);
    await new Promise((r) => setTimeout(r, 300)); // log lines arrive while the test process is not blocked
    expect(m.log).toContain(bad);
    expect(m.log).toMatch(/disk\.img\.fidx/);
    // The daemon is still serving.
    expect(readdirSync(join(mnt, 'store1/vm'))).toContain('300');
  });

  it('shows a new snapshot without remounting', async () => {
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '100', '--backup-time', String(T0 + 60)]);
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'disk.raw')}`, '--store', 'store1', '--backup-type', 'ct', '--backup-id', '7', '--backup-time', String(T0)]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(readdirSync(join(mnt, 'store1/vm/100'))).toContain(formatBackupTime(T0 + 60));
    expect(readlinkSync(join(mnt, 'store1/vm/100/latest'))).toBe(formatBackupTime(T0 + 60));
    expect(readdirSync(join(mnt, 'store1')).sort()).toEqual(['ct', 'host', 'vm']);
    expect(sha256(readFileSync(join(mnt, 'store1/ct/7/latest/disk.img')))).toBe(sha256(image));
  });

  it('unmounts cleanly with pbsfs umount and the daemon exits', async () => {
    await sb.ok(['umount', mnt]);
    expect(await m.exited()).toBe(true);
    expect(isMounted(mnt)).toBe(false);
    expect(m.log).toMatch(/unmounted/);
  });
});
