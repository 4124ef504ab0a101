// Staging snapshots and *.pxar directories through a real mount: cp -a of a tree with every entry kind, sealing,
// then the archive compared with the source through the mount and through `pbsfs restore`; a staging directory
// with an image, a pxar directory and a blob; EBUSY on one group while writers to other groups go on.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { MiB, prng, sha256 } from '../helpers/images.js';
import { buildTree, linkGroups, NON_UTF8, type Snap, snapshot } from '../fs/tree.js';
import { Mounted } from '../mount/mounted.js';
import { diffTrees, failing, snapshotsOnDisk } from './store-facts.js';

/**
 * What survives a copy through the mount: everything, mtimes to the nanosecond included, but chattr flags (no ioctl
 * through FUSE) and non-UTF-8 names (names travel as JS strings through the binding).
 */
function comparable(snap: Map<string, Snap>, opts: { root?: boolean } = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [path, s] of snap) {
    if (path.includes(NON_UTF8.toString('latin1'))) continue;
    if (path === '' && !opts.root) continue;
    const { ino: _i, flags: _f, ...rest } = s;
    out[path] = rest;
  }
  return out;
}

describe('pbsfs mount: staging snapshots and *.pxar directories', () => {
  let sb: Sandbox;
  let mnt: string;
  let store: string;
  let src: string;
  let m: Mounted;

  beforeAll(async () => {
    sb = sandbox('pbsfs-stage-');
    mnt = join(sb.dir, 'mnt');
    store = join(sb.dir, 'store');
    src = join(sb.dir, 'src');
    mkdirSync(mnt);
    buildTree(src);
    await sb.ok(['datastore', 'create', 'store1', store]);
    m = await Mounted.start(sb, ['mount', mnt, '--foreground', '--seal-after', '600'], mnt);
  }, 120_000);

  afterAll(async () => {
    await m?.stop();
    sb?.cleanup();
  });

  it('cp -a of a tree with every entry kind into NAME.pxar, pbsfs seal: the same tree through the mount and restore', async () => {
    const group = join(mnt, 'store1/host/web1');
    mkdirSync(group, { recursive: true });
    // The non-UTF-8 name cannot pass the binding: copy everything else.
    const copyOf = join(sb.dir, 'copy-src');
    execFileSync('cp', ['-a', src, copyOf]);
    rmSync(Buffer.concat([Buffer.from(`${copyOf}/`), NON_UTF8]));
    execFileSync('cp', ['-a', copyOf, join(group, 'tree.pxar')]);
    // Staged: listed under its own name only, with its contents.
    expect(readdirSync(group)).toEqual(['tree.pxar']);
    expect(snapshotsOnDisk(store, 'host/web1')).toEqual([]);
    expect(comparable(snapshot(join(group, 'tree.pxar')))).toEqual(comparable(snapshot(copyOf)));
    const r = await sb.ok(['seal', join(group, 'tree.pxar')]);
    expect(r.stdout).toContain('sealed');
    const snaps = snapshotsOnDisk(store, 'host/web1');
    expect(snaps).toHaveLength(1);
    expect(readdirSync(join(store, 'host/web1', snaps[0]!)).sort()).toEqual(['index.json.blob', 'tree.mpxar.didx', 'tree.ppxar.didx']);
    expect(readdirSync(group).sort()).toEqual([snaps[0], 'latest']);
    const expected = comparable(snapshot(copyOf));
    const viaMount = snapshot(join(group, 'latest/tree.pxar'));
    expect(comparable(viaMount)).toEqual(expected);
    expect(linkGroups(viaMount)).toEqual(linkGroups(snapshot(copyOf)));
    expect(diffTrees(copyOf, join(group, 'latest/tree.pxar'))).toEqual([]);
    // pbsfs restore of the sealed archive gives the same tree.
    await sb.ok(['restore', `host/web1/${snaps[0]}`, 'tree.pxar', join(sb.dir, 'restored'), '--store', 'store1']);
    const restored = snapshot(join(sb.dir, 'restored'));
    expect(comparable(restored, { root: true })).toEqual(comparable(snapshot(copyOf), { root: true }));
    expect(linkGroups(restored)).toEqual(linkGroups(snapshot(copyOf)));
  }, 180_000);

  it('a staging directory with an image, a pxar directory and a blob; sealed, all three are readable', async () => {
    const group = join(mnt, 'store1/vm/200');
    mkdirSync(group, { recursive: true });
    mkdirSync(join(group, 'new'));
    const image = prng('staged-image', 9 * MiB + 5);
    writeFileSync(join(sb.dir, 'disk.raw'), image);
    execFileSync('cp', [join(sb.dir, 'disk.raw'), join(group, 'new/disk.img')]);
    execFileSync('cp', ['-a', join(src, 'links'), join(group, 'new/links.pxar')]);
    writeFileSync(join(group, 'new/qemu-server.conf'), 'memory: 2048\n');
    // A blob holds at most 16 MiB: a larger write fails with EFBIG when it is made.
    expect(failing('dd', ['if=/dev/zero', `of=${join(group, 'new/too-big.conf')}`, 'bs=1M', 'count=17', 'status=none'])).toMatch(/too large/i);
    rmSync(join(group, 'new/too-big.conf'));
    // Names that cannot become archives are refused when made, not when sealing.
    expect(failing('touch', [join(group, 'new/index.json')])).toMatch(/not permitted/i);
    expect(failing('mkdir', [join(group, 'new/plain-dir')])).toMatch(/not permitted/i);
    expect(failing('ln', ['-s', 'x', join(group, 'new/link')])).toMatch(/not permitted/i);
    // A file unlinked while open takes writes until it is closed, and is not archived.
    const fd = openSync(join(group, 'new/links.pxar/scratch'), 'w');
    writeSync(fd, 'before');
    rmSync(join(group, 'new/links.pxar/scratch'));
    writeSync(fd, 'after');
    closeSync(fd);
    // Read back while staged.
    expect(readFileSync(join(group, 'new/qemu-server.conf'), 'utf8')).toBe('memory: 2048\n');
    expect(readdirSync(join(group, 'new')).sort()).toEqual(['disk.img', 'links.pxar', 'qemu-server.conf']);
    // A second staging directory or image in the same group: EBUSY.
    expect(failing('mkdir', [join(group, 'other')])).toMatch(/busy/i);
    expect(failing('cp', [join(sb.dir, 'disk.raw'), join(group, 'x.raw')])).toMatch(/busy/i);
    // Meanwhile other groups take writes.
    mkdirSync(join(mnt, 'store1/vm/201'));
    execFileSync('cp', [join(sb.dir, 'disk.raw'), join(mnt, 'store1/vm/201/')]);
    execFileSync('setfattr', ['-n', 'user.pbsfs.seal', '-v', '1', join(group, 'new')]);
    const snap = snapshotsOnDisk(store, 'vm/200')[0]!;
    expect(readdirSync(join(store, 'vm/200', snap)).sort()).toEqual(['disk.img.fidx', 'index.json.blob', 'links.mpxar.didx', 'links.ppxar.didx', 'qemu-server.conf.blob']);
    expect(readdirSync(join(group, 'latest')).sort()).toEqual(['disk.img', 'index.json', 'links.pxar', 'qemu-server.conf']);
    expect(sha256(readFileSync(join(group, 'latest/disk.img')))).toBe(sha256(image));
    expect(readFileSync(join(group, 'latest/qemu-server.conf'), 'utf8')).toBe('memory: 2048\n');
    expect(comparable(snapshot(join(group, 'latest/links.pxar')))).toEqual(comparable(snapshot(join(src, 'links'))));
    expect(sha256(readFileSync(join(mnt, 'store1/vm/201/latest/disk.raw.img')))).toBe(sha256(image));
  }, 120_000);

  it('concurrent cp -a into two groups; rmdir of an empty staging directory', async () => {
    const a = join(mnt, 'store1/host/a');
    const b = join(mnt, 'store1/host/b');
    mkdirSync(a);
    mkdirSync(b);
    const run = (dst: string) => new Promise<void>((res, rej) => {
      const c = spawn('cp', ['-a', join(src, 'many'), dst], { stdio: 'ignore' });
      c.on('exit', (code) => (code === 0 ? res() : rej(new Error(`cp exited ${code}`))));
    });
    await Promise.all([run(join(a, 'many.pxar')), run(join(b, 'many.pxar'))]);
    await sb.ok(['seal', join(a, 'many.pxar')]);
    await sb.ok(['seal', join(b, 'many.pxar')]);
    for (const g of [a, b]) expect(comparable(snapshot(join(g, 'latest/many.pxar')))).toEqual(comparable(snapshot(join(src, 'many'))));
    // rmdir of an empty staging directory drops it.
    mkdirSync(join(a, 'scratch'));
    execFileSync('rmdir', [join(a, 'scratch')]);
    expect(readdirSync(a).sort()).toHaveLength(2);
    for (let i = 0; i < 50 && !m.log.includes('discarded staging snapshot scratch'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(m.log).toContain('discarded staging snapshot scratch');
  }, 120_000);

  it('--seal-after: a staging snapshot with nothing open and no change seals itself', async () => {
    await m.stop();
    m = await Mounted.start(sb, ['mount', mnt, '--foreground', '--seal-after', '2'], mnt);
    const group = join(mnt, 'store1/host/quiet');
    mkdirSync(group, { recursive: true });
    execFileSync('cp', ['-a', join(src, 'links'), join(group, 'q.pxar')]);
    expect(snapshotsOnDisk(store, 'host/quiet')).toEqual([]);
    for (let i = 0; i < 100 && snapshotsOnDisk(store, 'host/quiet').length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(snapshotsOnDisk(store, 'host/quiet')).toHaveLength(1);
    // The manifest is on disk a moment before the daemon's log line reaches us.
    for (let i = 0; i < 50 && !/sealed staging snapshot q\.pxar \(quiet\)/.test(m.log); i++) await new Promise((r) => setTimeout(r, 100));
    expect(m.log).toMatch(/sealed staging snapshot q\.pxar \(quiet\)/);
    expect(comparable(snapshot(join(group, 'latest/q.pxar')))).toEqual(comparable(snapshot(join(src, 'links'))));
  }, 60_000);
});
