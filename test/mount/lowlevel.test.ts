// The libfuse 3 low-level binding through a real mount: nanosecond times, a big directory listed with
// readdirplus, nodes freed when the kernel forgets them, unmount on SIGTERM.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseBinding } from '../../mount/fuse-lowlevel.js';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { prng } from '../helpers/images.js';
import { encodeDirectory } from '../helpers/pxar-snapshot.js';
import { isMounted, Mounted } from './mounted.js';

const BIG = 5000;
const MiB = 1024 * 1024;

describe('the libfuse 3 low-level mount', () => {
  let sb: Sandbox;
  let src: string;
  let mnt: string;
  let m: Mounted;

  beforeAll(async () => {
    sb = sandbox('pbsfs-ll-');
    src = join(sb.dir, 'src');
    mkdirSync(join(src, 'big'), { recursive: true });
    mkdirSync(join(src, 'a/b/c'), { recursive: true });
    for (let i = 0; i < BIG; i++) writeFileSync(join(src, 'big', `entry-${i}`), `${i}\n`);
    writeFileSync(join(src, 'a/b/c/deep.txt'), 'deep\n');
    writeFileSync(join(src, 'eight-mib'), prng('ll', 8 * MiB));
    writeFileSync(join(src, 'a/tagged'), 'tagged\n');
    execFileSync('setfattr', ['-n', 'user.color', '-v', 'blue', join(src, 'a/tagged')]);
    execFileSync('touch', ['-d', '2021-03-04 05:06:07.123456789', join(src, 'a/b/c/deep.txt')]);
    utimesSync(join(src, 'a'), 1_600_000_000.5, 1_600_000_000.987654);
    writeFileSync(join(sb.dir, 'tree.pxar'), (await encodeDirectory(src, false)).archive);
    mnt = join(sb.dir, 'mnt');
    mkdirSync(mnt);
    m = await Mounted.start(sb, ['pxar', 'mount', join(sb.dir, 'tree.pxar'), mnt], mnt);
  }, 120_000);

  afterAll(async () => {
    await m?.stop();
    sb?.cleanup();
  });

  it('shows modification times to the nanosecond', () => {
    for (const rel of ['a/b/c/deep.txt', 'a', 'big/entry-7']) {
      expect(lstatSync(join(mnt, rel), { bigint: true }).mtimeNs).toBe(lstatSync(join(src, rel), { bigint: true }).mtimeNs);
    }
    const stamp = (root: string): string => execFileSync('stat', ['-c', '%y', join(root, 'a/b/c/deep.txt')], { encoding: 'utf8' });
    expect(stamp(mnt)).toBe(stamp(src));
    expect(stamp(mnt)).toContain('05:06:07.123456789');
  });

  it('lists a big directory with readdirplus (every entry is known without a lookup) and frees nodes the kernel forgets', async () => {
    const before = await m.inodesHeld(); // big/entry-7 is held already (first test)
    const names = readdirSync(join(mnt, 'big'));
    expect(names.length).toBe(BIG);
    expect(new Set(names)).toEqual(new Set(readdirSync(join(src, 'big'))));
    // readdir alone made the daemon hand the kernel an entry (with attributes) for every name.
    expect(await m.inodesHeld()).toBeGreaterThanOrEqual(before + BIG - 1);
    for (const n of names.slice(0, 50)) expect(readFileSync(join(mnt, 'big', n), 'utf8')).toBe(readFileSync(join(src, 'big', n), 'utf8'));
    // Dropping the kernel's dentry and inode caches sends FORGETs: the daemon lets go of those nodes.
    writeFileSync('/proc/sys/vm/drop_caches', '2');
    let held = await m.inodesHeld();
    for (let i = 0; i < 20 && held > BIG / 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      held = await m.inodesHeld();
    }
    expect(held).toBeLessThan(BIG / 2);
    expect(readdirSync(join(mnt, 'big')).length).toBe(BIG);
  });

  it('answers stat, xattr queries, open and release of listed archive nodes without JS, with the same answers', async () => {
    readdirSync(join(mnt, 'a'));
    readdirSync(join(mnt, 'big'));
    const before = await m.report();
    const files = ['big/entry-1', 'big/entry-2', 'big/entry-3', 'a/tagged'];
    for (const rel of files) {
      writeFileSync('/proc/sys/vm/drop_caches', '1'); // page cache only: the kernel keeps its nodes
      expect(readFileSync(join(mnt, rel), 'utf8')).toBe(readFileSync(join(src, rel), 'utf8'));
    }
    const dump = (root: string, rel: string): string =>
      execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', join(root, rel)], { encoding: 'utf8' }).replaceAll(root, '');
    for (const rel of files) expect(dump(mnt, rel)).toBe(dump(src, rel));
    expect(dump(mnt, 'a/tagged')).toContain('user.color="blue"');
    for (const rel of files) execFileSync('stat', [join(mnt, rel)]);
    const after = await m.report();
    const native = (op: string): number => (after.native[op] ?? 0) - (before.native[op] ?? 0);
    // Every open of the four files, and the xattr lists of the three without xattrs, never entered JS.
    expect(native('open')).toBe(files.length);
    expect(native('release')).toBe(files.length);
    expect(native('listxattr')).toBe(files.length - 1);
    // The tagged file's xattrs come from JS (getfattr asks for the list's size, then the list).
    expect((after.requests.listxattr ?? 0) - (before.requests.listxattr ?? 0) - native('listxattr')).toBeGreaterThan(0);
  });

  it('reads sequentially in 1 MiB requests', async () => {
    const before = (await m.report()).requests.read ?? 0;
    const data = execFileSync('dd', [`if=${join(mnt, 'eight-mib')}`, 'bs=1M', 'status=none'], { maxBuffer: 16 * MiB });
    expect(data.equals(readFileSync(join(src, 'eight-mib')))).toBe(true);
    // 128 KiB requests (the kernel's default read-ahead) would be 64.
    expect((await m.report()).requests.read! - before).toBeLessThanOrEqual(10);
  });

  it('unmounts cleanly on SIGTERM', async () => {
    m.child.kill('SIGTERM');
    expect(await m.exited()).toBe(true);
    expect(isMounted(mnt)).toBe(false);
    expect(m.log).toMatch(/SIGTERM: unmounting/);
    expect(m.log).toMatch(/unmounted /);
  });
});

describe('the binding\'s request table', () => {
  it('ignores replies to requests it does not hold (never answered twice, stale ids do nothing)', () => {
    const f = fuseBinding();
    for (const id of [0, 1, 65536, 65536 * 3 + 7, 2 ** 30 - 1, -5]) {
      expect(f.replyErr(id, 2)).toBe(1);
      expect(f.replyData(id, new Uint8Array(4))).toBe(1);
    }
  });
});
