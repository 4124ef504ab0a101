// Mounting one archive (of a snapshot, or a local .pxar / .mpxar+.ppxar file), the daemon mode, stale mounts
// left by a killed process, and maintenance mode offline.
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBackupTime } from '../../src/datastore/names.js';
import { ROOT, type Sandbox, sandbox } from '../helpers/cli.js';
import { prng } from '../helpers/images.js';
import { backupDirectory, encodeDirectory } from '../helpers/pxar-snapshot.js';
import { isMounted, Mounted } from './mounted.js';

const T0 = 1_700_000_000;

function makeSource(dir: string): void {
  mkdirSync(join(dir, 'etc/conf.d'), { recursive: true });
  writeFileSync(join(dir, 'etc/conf.d/app.conf'), 'key = value\n');
  writeFileSync(join(dir, 'data.bin'), prng('data', 700_001));
  execFileSync('ln', ['-s', 'etc/conf.d/app.conf', join(dir, 'conf')]);
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `etc/f${String(i).padStart(3, '0')}`), `file ${i}\n`);
}

function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const st = lstatSync(join(root, rel));
    out.push(`${rel} ${st.mode.toString(8)} ${st.isDirectory() ? '-' : st.size} ${Math.floor(st.mtimeMs)}`);
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel)).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

describe('pbsfs mount of single archives, daemon mode, stale mounts, maintenance', () => {
  let sb: Sandbox;
  let src: string;
  const mounts: Mounted[] = [];
  const mnt = (name: string): string => {
    const p = join(sb.dir, name);
    mkdirSync(p, { recursive: true });
    return p;
  };

  beforeAll(async () => {
    sb = sandbox('pbsfs-amount-');
    src = join(sb.dir, 'src');
    mkdirSync(src);
    makeSource(src);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    await backupDirectory({ configDir: sb.env.PBSFS_CONFIG_DIR!, store: 'store1', id: 'h1', time: T0, src, split: true });
    const v1 = await encodeDirectory(src, false);
    writeFileSync(join(sb.dir, 'tree.pxar'), v1.archive);
    const v2 = await encodeDirectory(src, true);
    writeFileSync(join(sb.dir, 'tree.mpxar'), v2.archive);
    writeFileSync(join(sb.dir, 'tree.ppxar'), v2.payload!);
  }, 60_000);

  afterAll(async () => {
    for (const m of mounts) await m.stop();
    sb?.cleanup();
  });

  it('mounts one archive of a snapshot (mpxar + ppxar shown as one tree)', async () => {
    const dir = mnt('one');
    const m = await Mounted.start(sb, ['mount', `host/h1/${formatBackupTime(T0)}`, 'root.pxar', dir, '--store', 'store1'], dir);
    mounts.push(m);
    expect(listing(dir)).toEqual(listing(src));
    expect(readFileSync(join(dir, 'data.bin')).equals(readFileSync(join(src, 'data.bin')))).toBe(true);
    expect(readlinkSync(join(dir, 'conf'))).toBe('etc/conf.d/app.conf');
    await m.stop();
    expect(isMounted(dir)).toBe(false);
  });

  for (const file of ['tree.pxar', 'tree.mpxar']) {
    it(`pxar mount ${file}`, async () => {
      const dir = mnt(`file-${file}`);
      const m = await Mounted.start(sb, ['pxar', 'mount', join(sb.dir, file), dir], dir);
      mounts.push(m);
      expect(listing(dir)).toEqual(listing(src));
      execFileSync('diff', ['-r', '--no-dereference', src, dir]);
      await m.stop();
    });
  }

  it('runs as a daemon with a pid file and stops on pbsfs umount', async () => {
    const dir = mnt('daemon');
    const pidFile = join(sb.dir, 'mount.pid');
    await sb.ok(['mount', dir, '--daemon', '--pid-file', pidFile, '--log-file', join(sb.dir, 'daemon.log')]);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(readdirSync(dir)).toEqual(['store1']);
    await sb.ok(['umount', dir]);
    expect(isMounted(dir)).toBe(false);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
    expect(readFileSync(join(sb.dir, 'daemon.log'), 'utf8')).toMatch(/SIGTERM: unmounting/);
  });

  it('replaces a stale mount ("transport endpoint is not connected")', async () => {
    const dir = mnt('stale');
    // A daemon killed hard together with its fusermount3 auto_unmount helper leaves a dead endpoint behind.
    const dead = await Mounted.start(sb, ['mount', dir, '--store', 'store1'], dir);
    const helper = Number(execFileSync('pgrep', ['-P', String(dead.child.pid), 'fusermount3'], { encoding: 'utf8' }).trim());
    process.kill(helper, 'SIGKILL');
    dead.child.kill('SIGKILL');
    expect(await dead.exited()).toBe(true);
    // The kernel may answer from the root's cached attributes for up to a second.
    const deadline = Date.now() + 3000;
    const answers = (): boolean => {
      try {
        lstatSync(dir);
        return true;
      } catch {
        return false;
      }
    };
    while (answers() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(() => lstatSync(dir)).toThrow(/ENOTCONN/);
    const m = await Mounted.start(sb, ['mount', dir, '--store', 'store1'], dir);
    mounts.push(m);
    expect(m.log).toMatch(/replacing stale mount/);
    expect(readdirSync(dir)).toEqual(['store1']);
  });

  it('answers EIO for a datastore in maintenance mode offline', async () => {
    const m = mounts.at(-1)!;
    const path = join(m.mnt, 'store1/host/h1/latest/root.pxar/etc/conf.d/app.conf');
    expect(readFileSync(path, 'utf8')).toBe('key = value\n');
    await sb.ok(['datastore', 'update', 'store1', '--maintenance-mode', 'offline']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(() => readdirSync(join(m.mnt, 'store1/host'))).toThrow(/EIO/);
    await sb.ok(['datastore', 'update', 'store1', '--delete', 'maintenance-mode']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(readdirSync(join(m.mnt, 'store1/host'))).toEqual(['h1']);
    await m.stop();
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
