// Writing into a real mount: mkdir makes groups, a file copied into a group becomes a snapshot with one image
// archive (read back through the mount and `pbsfs restore`), dd with seek and sparse files, ftruncate, EBUSY for a
// second writer, EROFS for finished snapshots and --read-only mounts, rmdir of snapshots with --allow-forget.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { makeImage, MiB, prng, sha256 } from '../helpers/images.js';
import { chunkFile, readBlob, readFidx } from '../helpers/independent-reader.js';
import { Mounted } from '../mount/mounted.js';
import { failing, snapshotsOnDisk } from './store-facts.js';

const errnoOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
};

/** An image reassembled from its .fidx and chunk files by the test's own format reader. */
function independentImage(store: string, fidx: string): Buffer {
  const { digests } = readFidx(readFileSync(fidx));
  return Buffer.concat(digests.map((d) => readBlob(chunkFile(store, d)).data));
}

describe('pbsfs mount: image writes', () => {
  let sb: Sandbox;
  let mnt: string;
  let store: string;
  let m: Mounted;

  beforeAll(async () => {
    sb = sandbox('pbsfs-mount-write-');
    mnt = join(sb.dir, 'mnt');
    store = join(sb.dir, 'store');
    mkdirSync(mnt);
    await sb.ok(['datastore', 'create', 'store1', store]);
    m = await Mounted.start(sb, ['mount', mnt, '--store', 'store1', '--foreground', '--allow-forget'], mnt);
  }, 120_000);

  afterAll(async () => {
    await m?.stop();
    sb?.cleanup();
  });

  it('mkdir -p makes a backup group', () => {
    execFileSync('mkdir', ['-p', join(mnt, 'store1/host/web1')]);
    expect(readdirSync(join(mnt, 'store1/host'))).toEqual(['web1']);
    expect(readFileSync(join(store, 'host/web1/owner'), 'utf8').trim()).toBe('root@pam');
    expect(errnoOf(() => mkdirSync(join(mnt, 'store1/host/web1')))).toBe('EEXIST');
    expect(errnoOf(() => mkdirSync(join(mnt, 'store1/nosuchtype')))).toBe('EINVAL');
  });

  it('cp of an image makes a snapshot that reads back through the mount and pbsfs restore', async () => {
    const image = makeImage(join(sb.dir, 'disk.raw'), 6, 'w1');
    execFileSync('mkdir', ['-p', join(mnt, 'store1/vm/100')]);
    execFileSync('cp', [join(sb.dir, 'disk.raw'), join(mnt, 'store1/vm/100/')]);
    const names = readdirSync(join(mnt, 'store1/vm/100')).sort();
    expect(names).toHaveLength(2);
    expect(names).toContain('latest');
    const snap = names.find((n) => n !== 'latest')!;
    expect(readdirSync(join(mnt, 'store1/vm/100', snap)).sort()).toEqual(['disk.raw.img', 'index.json']);
    expect(sha256(readFileSync(join(mnt, 'store1/vm/100/latest/disk.raw.img')))).toBe(sha256(image));
    // An independent reader of the stored index agrees, and so does restore.
    expect(sha256(independentImage(store, join(store, 'vm/100', snap, 'disk.raw.img.fidx')))).toBe(sha256(image));
    await sb.ok(['restore', `vm/100/${snap}`, 'disk.raw.img', join(sb.dir, 'restored.raw'), '--store', 'store1']);
    expect(sha256(readFileSync(join(sb.dir, 'restored.raw')))).toBe(sha256(image));
  });

  it('a second copy deduplicates against the previous snapshot and gets a newer time', () => {
    execFileSync('cp', [join(sb.dir, 'disk.raw'), join(mnt, 'store1/vm/100/')]);
    // Listing the group waits for the copy's snapshot to be finished.
    expect(readdirSync(join(mnt, 'store1/vm/100'))).toHaveLength(3);
    const snaps = snapshotsOnDisk(store, 'vm/100');
    expect(snaps).toHaveLength(2);
    const manifest = JSON.parse(readFileSync(join(mnt, 'store1/vm/100', snaps[1]!, 'index.json'), 'utf8'));
    const stats = manifest.unprotected.chunk_upload_stats;
    expect(stats.duplicates).toBe(stats.count);
    expect(stats.compressed_size).toBe(0);
  });

  it('dd with seek, sparse holes, rewrites of stored chunks and ftruncate', () => {
    execFileSync('mkdir', ['-p', join(mnt, 'store1/vm/101')]);
    const path = join(mnt, 'store1/vm/101/sparse.img');
    const a = prng('a', 3 * MiB);
    const b = prng('b', 5 * MiB + 7);
    writeFileSync(join(sb.dir, 'a'), a);
    writeFileSync(join(sb.dir, 'b'), b);
    const expected = Buffer.alloc(40 * MiB + 123);
    // Out of order: the tail first, then a chunk in the middle, then the head (a stored chunk written again).
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, b, 0, b.length, 30 * MiB);
      b.copy(expected, 30 * MiB);
      writeSync(fd, a, 0, a.length, 9 * MiB);
      a.copy(expected, 9 * MiB);
      writeSync(fd, prng('head', 8 * MiB), 0, 8 * MiB, 0);
      prng('head', 8 * MiB).copy(expected, 0);
      writeSync(fd, a, 0, 1000, 4 * MiB + 10);
      a.copy(expected, 4 * MiB + 10, 0, 1000);
      ftruncateSync(fd, 33 * MiB);
      expected.fill(0, 33 * MiB);
      ftruncateSync(fd, expected.length);
      expect(statSync(path).size).toBe(expected.length);
      // Reads while writing see what was written.
      expect(readFileSync(path).equals(expected)).toBe(true);
    } finally {
      closeSync(fd);
    }
    expect(sha256(readFileSync(join(mnt, 'store1/vm/101/latest/sparse.img')))).toBe(sha256(expected));
    // dd with seek into a new file: the skipped range is a hole of zeros.
    execFileSync('dd', [`if=${join(sb.dir, 'a')}`, `of=${join(mnt, 'store1/vm/101/dd.raw')}`, 'bs=1M', 'seek=7', 'status=none']);
    const dd = readFileSync(join(mnt, 'store1/vm/101/latest/dd.raw.img'));
    expect(dd.length).toBe(10 * MiB);
    expect(dd.subarray(0, 7 * MiB).every((x) => x === 0)).toBe(true);
    expect(dd.subarray(7 * MiB).equals(a)).toBe(true);
    // cp --sparse=always of a file with holes.
    execFileSync('truncate', ['-s', '20M', join(sb.dir, 'holes.raw')]);
    execFileSync('dd', [`if=${join(sb.dir, 'b')}`, `of=${join(sb.dir, 'holes.raw')}`, 'bs=1M', 'seek=12', 'conv=notrunc', 'status=none']);
    execFileSync('cp', ['--sparse=always', join(sb.dir, 'holes.raw'), join(mnt, 'store1/vm/101/')]);
    expect(sha256(readFileSync(join(mnt, 'store1/vm/101/latest/holes.raw.img')))).toBe(sha256(readFileSync(join(sb.dir, 'holes.raw'))));
  });

  it('many incomplete chunks at once spill to disk and come back intact', () => {
    const path = join(mnt, 'store1/vm/101/scattered.raw');
    const expected = Buffer.alloc(15 * 4 * MiB + 4000);
    const fd = openSync(path, 'w');
    try {
      // 16 chunks touched but none complete: more than stay in memory.
      for (let k = 15; k >= 0; k--) {
        const piece = prng(`s${k}`, 3000);
        writeSync(fd, piece, 0, piece.length, k * 4 * MiB + 1000);
        piece.copy(expected, k * 4 * MiB + 1000);
      }
      expect(existsSync(join(store, 'vm/101'))).toBe(true);
      const probe = Buffer.alloc(3000);
      const rfd = openSync(path, 'r');
      try {
        readSync(rfd, probe, 0, 3000, 2 * 4 * MiB + 1000);
      } finally {
        closeSync(rfd);
      }
      expect(probe.equals(prng('s2', 3000))).toBe(true);
    } finally {
      closeSync(fd);
    }
    expect(sha256(readFileSync(join(mnt, 'store1/vm/101/latest/scattered.raw.img')))).toBe(sha256(expected));
  });

  it('a second writer to the same group gets EBUSY', async () => {
    execFileSync('mkdir', ['-p', join(mnt, 'store1/vm/102')]);
    const fd = openSync(join(mnt, 'store1/vm/102/one.raw'), 'w');
    try {
      writeSync(fd, prng('one', MiB));
      expect(readdirSync(join(mnt, 'store1/vm/102'))).toEqual(['one.raw']);
      expect(errnoOf(() => writeFileSync(join(mnt, 'store1/vm/102/two.raw'), 'x'))).toBe('EBUSY');
      // Other groups are not blocked.
      writeFileSync(join(mnt, 'store1/vm/101/other.raw'), prng('other', 100));
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(join(mnt, 'store1/vm/102/latest/one.raw.img')).equals(prng('one', MiB))).toBe(true);
  });

  it('finished snapshots are immutable; rmdir forgets unprotected ones only', async () => {
    const snaps = snapshotsOnDisk(store, 'vm/100');
    const snapDir = join(mnt, 'store1/vm/100', snaps[0]!);
    expect(errnoOf(() => writeFileSync(join(snapDir, 'disk.raw.img'), 'x'))).toBe('EROFS');
    expect(errnoOf(() => writeFileSync(join(snapDir, 'new.img'), 'x'))).toBe('EROFS');
    expect(failing('chmod', ['600', join(snapDir, 'disk.raw.img')])).toContain('Read-only file system');
    expect(failing('mv', [join(snapDir, 'disk.raw.img'), join(snapDir, 'x.img')])).toContain('Read-only file system');
    expect(errnoOf(() => mkdirSync(join(snapDir, 'x')))).toBe('EROFS');
    await sb.ok(['snapshot', 'protected', 'update', `vm/100/${snaps[0]}`, 'true', '--store', 'store1']);
    expect(failing('rmdir', [snapDir])).toContain('Operation not permitted');
    expect(existsSync(join(store, 'vm/100', snaps[0]!, 'index.json.blob'))).toBe(true);
    execFileSync('rmdir', [join(mnt, 'store1/vm/100', snaps[1]!)]);
    expect(snapshotsOnDisk(store, 'vm/100')).toEqual([snaps[0]]);
  });
});

describe('pbsfs mount --read-only and without --allow-forget', () => {
  let sb: Sandbox;
  let mnt: string;

  beforeAll(async () => {
    sb = sandbox('pbsfs-mount-ro-');
    mnt = join(sb.dir, 'mnt');
    mkdirSync(mnt);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    writeFileSync(join(sb.dir, 'small.raw'), prng('small', 5000));
    await sb.ok(['backup', `disk.img:${join(sb.dir, 'small.raw')}`, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '1']);
  }, 60_000);

  afterAll(() => sb?.cleanup());

  it('--read-only refuses every change with EROFS', async () => {
    const m = await Mounted.start(sb, ['mount', mnt, '--store', 'store1', '--foreground', '--read-only'], mnt);
    try {
      expect(errnoOf(() => mkdirSync(join(mnt, 'store1/vm/2')))).toBe('EROFS');
      expect(errnoOf(() => writeFileSync(join(mnt, 'store1/vm/1/x.raw'), 'x'))).toBe('EROFS');
      expect(statSync(join(mnt, 'store1/vm')).mode & 0o777).toBe(0o555);
    } finally {
      await m.stop();
    }
  });

  it('rmdir of a snapshot without --allow-forget is EPERM', async () => {
    const m = await Mounted.start(sb, ['mount', mnt, '--store', 'store1', '--foreground'], mnt);
    try {
      const snap = readdirSync(join(mnt, 'store1/vm/1')).find((n) => n !== 'latest')!;
      expect(failing('rmdir', [join(mnt, 'store1/vm/1', snap)])).toContain('Operation not permitted');
      expect(readdirSync(join(mnt, 'store1/vm/1'))).toContain(snap);
    } finally {
      await m.stop();
    }
  });
});
