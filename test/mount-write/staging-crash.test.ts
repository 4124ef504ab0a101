// kill -9 of the daemon while a tree is copied into a `*.pxar` directory: the next mount resumes the staged snapshot
// from its state (files closed before the crash kept, the one still open dropped) with a log line, nothing partial
// is listed as a snapshot, sealing it works, and every chunk of every snapshot verifies. A full datastore filesystem
// gives the copying process ENOSPC and leaves earlier snapshots intact.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { chunkFile, readBlob, readDidx, readFidx, sha256hex } from '../helpers/independent-reader.js';
import { makeTree } from '../helpers/tree.js';
import { isMounted, Mounted } from '../mount/mounted.js';
import { snapshotsOnDisk } from './store-facts.js';

/** Every chunk of every finished snapshot, read and checked against its digest by the independent reader. */
function verifyStore(store: string): number {
  let chunks = 0;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, name.name);
      if (name.isDirectory() && !name.name.startsWith('.')) walk(p);
      else if (name.name.endsWith('.fidx') || name.name.endsWith('.didx')) {
        if (!existsSync(join(dir, 'index.json.blob'))) continue;
        const digests = name.name.endsWith('.fidx') ? readFidx(readFileSync(p)).digests : readDidx(readFileSync(p)).entries.map((e) => e.digest);
        for (const d of digests) {
          expect(sha256hex(readBlob(chunkFile(store, d)).data)).toBe(d);
          chunks++;
        }
      }
    }
  };
  walk(store);
  return chunks;
}

describe('pbsfs mount: a staged tree survives a daemon crash', () => {
  let sb: Sandbox;
  let mnt: string;
  let store: string;
  const mounts: Mounted[] = [];
  let cp: ChildProcess | undefined;

  beforeAll(async () => {
    sb = sandbox('pbsfs-stage-crash-');
    mnt = join(sb.dir, 'mnt');
    store = join(sb.dir, 'store');
    mkdirSync(mnt);
    makeTree(join(sb.dir, 'small'), 50);
    makeTree(join(sb.dir, 'large'), 4000);
    await sb.ok(['datastore', 'create', 'store1', store]);
  }, 60_000);

  afterAll(async () => {
    cp?.kill('SIGKILL');
    for (const m of mounts) await m.stop();
    sb?.cleanup();
  });

  const start = async (): Promise<Mounted> => {
    const m = await Mounted.start(sb, ['mount', mnt, '--foreground', '--seal-after', '600'], mnt);
    mounts.push(m);
    return m;
  };

  it('kill -9 mid-copy → restart: resumed with closed files kept, the open one dropped; seal; chunks verify', async () => {
    let m = await start();
    const group = join(mnt, 'store1/host/crash');
    mkdirSync(group, { recursive: true });
    execFileSync('cp', ['-a', join(sb.dir, 'small'), join(group, 'etc.pxar')]);
    // Older than the state's batch interval when the crash comes.
    await new Promise((r) => setTimeout(r, 500));
    const open = openSync(join(group, 'etc.pxar/being-written'), 'w');
    writeSync(open, Buffer.alloc(100_000, 1));
    cp = spawn('cp', ['-a', join(sb.dir, 'large'), join(group, 'etc.pxar/large')], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    m.child.kill('SIGKILL');
    await m.exited();
    cp.kill('SIGKILL');
    try {
      closeSync(open);
    } catch {
      // the mount is gone
    }
    m.forceDown();
    expect(isMounted(mnt)).toBe(false);
    expect(snapshotsOnDisk(store, 'host/crash')).toEqual([]);

    m = await start();
    for (let i = 0; i < 50 && !m.log.includes('resumed staging snapshot'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(m.log).toMatch(/resumed staging snapshot etc\.pxar .* entries kept, [1-9]\d* unfinished dropped/);
    expect(readdirSync(group)).toEqual(['etc.pxar']);
    const staged = join(group, 'etc.pxar');
    expect(existsSync(join(staged, 'being-written'))).toBe(false);
    execFileSync('diff', ['-r', '--no-dereference', join(sb.dir, 'small'), staged, '-x', 'large']);
    // Whatever of the second copy made it is complete: each kept file equals its source.
    const kept = existsSync(join(staged, 'large/etc/conf.d')) ? readdirSync(join(staged, 'large/etc/conf.d')) : [];
    for (const f of kept) expect(readFileSync(join(staged, 'large/etc/conf.d', f)).equals(readFileSync(join(sb.dir, 'large/etc/conf.d', f)))).toBe(true);
    // The staged snapshot takes more writes after the restart, then seals.
    execFileSync('cp', ['-a', join(sb.dir, 'small/var'), join(staged, 'var2')]);
    await sb.ok(['seal', staged]);
    const snaps = snapshotsOnDisk(store, 'host/crash');
    expect(snaps).toHaveLength(1);
    execFileSync('diff', ['-r', '--no-dereference', join(sb.dir, 'small/var'), join(group, 'latest/etc.pxar/var2')]);
    expect(readdirSync(join(store, '.pbsfs-writes'))).toEqual([]);
    expect(verifyStore(store)).toBeGreaterThan(0);
  }, 120_000);

  it('a full datastore filesystem: the copy gets ENOSPC, rm -rf drops the staged tree, earlier snapshots verify', async () => {
    const small = join(sb.dir, 'small-fs');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', small]);
    try {
      await sb.ok(['datastore', 'create', 'tiny', join(small, 'store')]);
      const m = mounts.at(-1) ?? (await start());
      const group = join(mnt, 'tiny/host/full');
      mkdirSync(group, { recursive: true });
      execFileSync('cp', ['-a', join(sb.dir, 'small'), join(group, 'first.pxar')]);
      await sb.ok(['seal', join(group, 'first.pxar')]);
      const big = join(sb.dir, 'big-src');
      mkdirSync(big);
      execFileSync('dd', ['if=/dev/urandom', `of=${join(big, 'big.bin')}`, 'bs=1M', 'count=60', 'status=none']);
      let err = '';
      try {
        execFileSync('cp', ['-a', big, join(group, 'second.pxar')], { stdio: 'pipe' });
      } catch (e) {
        err = String((e as { stderr?: Buffer }).stderr);
      }
      expect(err).toMatch(/No space left on device/);
      execFileSync('rm', ['-rf', join(group, 'second.pxar')]);
      for (let i = 0; i < 50 && !m.log.includes('discarded staging snapshot second.pxar'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(m.log).toContain('discarded staging snapshot second.pxar');
      expect(readdirSync(join(small, 'store/.pbsfs-writes'))).toEqual([]);
      expect(snapshotsOnDisk(join(small, 'store'), 'host/full')).toHaveLength(1);
      execFileSync('diff', ['-r', '--no-dereference', join(sb.dir, 'small'), join(group, 'latest/first.pxar')]);
      expect(verifyStore(join(small, 'store'))).toBeGreaterThan(0);
    } finally {
      for (const m of mounts.splice(0)) await m.stop();
      execFileSync('umount', ['-l', small], { stdio: 'ignore' });
    }
  }, 120_000);
});
