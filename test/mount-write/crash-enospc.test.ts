// Failures while writing into a real mount: the daemon killed mid-copy leaves nothing listed and the next mount
// discards the unfinished snapshot; a full datastore filesystem gives the writer ENOSPC and earlier snapshots stay.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { MiB, sha256 } from '../helpers/images.js';
import { isMounted, Mounted } from '../mount/mounted.js';
import { failing } from './store-facts.js';

describe('pbsfs mount: writes that fail', () => {
  let sb: Sandbox;
  let mnt: string;
  let small: string;
  const mounts: Mounted[] = [];

  beforeAll(async () => {
    sb = sandbox('pbsfs-mount-fail-');
    mnt = join(sb.dir, 'mnt');
    small = join(sb.dir, 'small');
    mkdirSync(mnt);
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', small]);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    await sb.ok(['datastore', 'create', 'tiny', join(small, 'store')]);
  }, 60_000);

  afterAll(async () => {
    for (const m of mounts) await m.stop();
    if (small) execFileSync('umount', ['-l', small], { stdio: 'ignore' });
    sb?.cleanup();
  });

  const start = async (): Promise<Mounted> => {
    for (const old of mounts.splice(0)) await old.stop();
    const m = await Mounted.start(sb, ['mount', mnt, '--foreground'], mnt);
    mounts.push(m);
    return m;
  };

  it('kill -9 of the daemon mid-copy: nothing partial is listed, the next mount discards it', async () => {
    const first = randomBytes(3 * MiB);
    writeFileSync(join(sb.dir, 'first.raw'), first);
    let m = await start();
    execFileSync('mkdir', ['-p', join(mnt, 'store1/vm/5')]);
    execFileSync('cp', [join(sb.dir, 'first.raw'), join(mnt, 'store1/vm/5/')]);
    expect(readdirSync(join(mnt, 'store1/vm/5'))).toHaveLength(2);
    const fd = openSync(join(mnt, 'store1/vm/5/second.raw'), 'w');
    writeSync(fd, randomBytes(10 * MiB));
    const snapDirs = (): string[] => readdirSync(join(sb.dir, 'store/vm/5')).filter((n) => n !== 'owner');
    expect(snapDirs()).toHaveLength(2); // the finished one and the one being written
    m.child.kill('SIGKILL');
    await m.exited();
    try {
      closeSync(fd);
    } catch {
      // the mount is gone
    }
    m.forceDown();
    expect(isMounted(mnt)).toBe(false);
    m = await start();
    const listed = readdirSync(join(mnt, 'store1/vm/5')).sort();
    expect(listed).toHaveLength(2);
    expect(listed).toContain('latest');
    expect(snapDirs()).toHaveLength(1);
    for (let i = 0; i < 50 && !m.log.includes('discarded unfinished snapshot'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(m.log).toContain('discarded unfinished snapshot');
    expect(sha256(readFileSync(join(mnt, 'store1/vm/5/latest/first.raw.img')))).toBe(sha256(first));
  }, 60_000);

  it('a full datastore filesystem gives the writer ENOSPC; earlier snapshots stay intact', async () => {
    await start();
    const ok = randomBytes(2 * MiB);
    writeFileSync(join(sb.dir, 'ok.raw'), ok);
    writeFileSync(join(sb.dir, 'huge.raw'), randomBytes(64 * MiB));
    execFileSync('mkdir', ['-p', join(mnt, 'tiny/vm/7')]);
    execFileSync('cp', [join(sb.dir, 'ok.raw'), join(mnt, 'tiny/vm/7/')]);
    expect(failing('cp', [join(sb.dir, 'huge.raw'), join(mnt, 'tiny/vm/7/')])).toContain('No space left on device');
    const listed = readdirSync(join(mnt, 'tiny/vm/7')).sort();
    expect(listed).toHaveLength(2);
    expect(sha256(readFileSync(join(mnt, 'tiny/vm/7/latest/ok.raw.img')))).toBe(sha256(ok));
    // The failed snapshot's directory is gone, and the space it held is free for the next copy.
    expect(readdirSync(join(small, 'store/vm/7')).filter((n) => n !== 'owner')).toHaveLength(1);
    expect(existsSync(join(small, 'store/.pbsfs-writes'))).toBe(true);
    expect(readdirSync(join(small, 'store/.pbsfs-writes'))).toEqual([]);
  }, 90_000);
});
