// File payloads stored as the files close (closed-files-stream.ts), through a real mount: `tar -x` of a name-sorted
// tar and a writer that renames after close (as rsync does) close files in archive order, so the seal
// references every payload where it was stored; a file written again after its close gets its new bytes; two pxar
// directories of one staging directory stream apart; a writer in another order makes the stream stop and the seal
// store the rest. Each archive is read back through the mount (and through `pbsfs restore`).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../helpers/cli.js';
import { MiB, prng } from '../helpers/images.js';
import type { Mounted } from '../mount/mounted.js';
import { diffTrees, snapshotsOnDisk, type WritableMount, writableMount } from './store-facts.js';

const SIZES = [0, 1, 4096, 300 * 1024, 1.5 * MiB, 3 * MiB];

/** dir/file paths in archive order (names sorted by bytes) with their contents: 24 files, ~19 MiB. */
function files(seed: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const d of ['a', 'b', 'c']) {
    for (let k = 0; k < 8; k++) out.push([`${d}/f${k}`, Buffer.from(prng(`${seed}-${d}${k}`, SIZES[(k * 5 + d.charCodeAt(0)) % SIZES.length]!))]);
  }
  return out;
}

function writeTree(root: string, list: Array<[string, Buffer]>): void {
  for (const [path, data] of list) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), data);
  }
}

/** The daemon's seal line for `name`: how many files it referenced where they were stored at their close. */
function storedAhead(log: string, name: string): number {
  const m = new RegExp(`sealed staging snapshot ${name.replace('.', '\\.')} .*\\((\\d+) files stored as they closed\\)`).exec(log);
  if (!m) throw new Error(`no seal line for ${name} in the log:\n${log}`);
  return Number(m[1]);
}

describe('pbsfs mount: payloads stored as files close', () => {
  let w: WritableMount;
  let sb: Sandbox;
  let mnt: string;
  let store: string;
  let m: Mounted;

  beforeAll(async () => {
    w = await writableMount('pbsfs-closed-');
    ({ sb, mnt, store, m } = w);
  }, 120_000);

  afterAll(async () => {
    await w?.stop();
  });

  /** Seals `group/name`, then compares it with `src` through the mount and through `pbsfs restore`. */
  async function sealAndCompare(groupPath: string, name: string, src: string): Promise<void> {
    await sb.ok(['seal', join(mnt, 'store1', groupPath, name)]);
    const snap = snapshotsOnDisk(store, groupPath)[0]!;
    expect(diffTrees(src, join(mnt, 'store1', groupPath, 'latest', name))).toEqual([]);
    const out = join(sb.dir, `restored-${name}`);
    await sb.ok(['restore', `${groupPath}/${snap}`, name, out, '--store', 'store1']);
    expect(diffTrees(src, out)).toEqual([]);
  }

  it('tar -x of a name-sorted tar: every payload is referenced where it was stored at its close', async () => {
    const src = join(sb.dir, 'tar-src');
    const list = files('tar');
    writeTree(src, list);
    const group = join(mnt, 'store1/host/tar');
    mkdirSync(join(group, 'sorted.pxar'), { recursive: true });
    execFileSync('bash', ['-c', `tar -C '${src}' --sort=name -cf - . | tar -C '${join(group, 'sorted.pxar')}' -xf -`], { env: { ...process.env, LC_ALL: 'C' } });
    await sealAndCompare('host/tar', 'sorted.pxar', src);
    expect(storedAhead(m.log, 'sorted.pxar')).toBe(list.length);
  }, 120_000);

  it('temporary names renamed after close (as rsync does), a file written again: its new bytes are archived', async () => {
    const src = join(sb.dir, 'rsync-src');
    const list = files('rsync');
    const target = join(mnt, 'store1/host/rsync/copy.pxar');
    mkdirSync(target, { recursive: true });
    for (const [path, data] of list) {
      mkdirSync(join(target, path, '..'), { recursive: true });
      const tmp = join(target, path, '..', `.${path.split('/')[1]}.XyZ123`);
      writeFileSync(tmp, data);
      renameSync(tmp, join(target, path));
    }
    // The last file in archive order changes after its close (its bytes stored by then, if they were, are stale).
    const [lastPath, lastData] = list.at(-1)!;
    const changed = Buffer.from(lastData);
    changed.write('changed after close', Math.floor(changed.length / 2));
    const fd = openSync(join(target, lastPath), 'r+');
    writeSync(fd, 'changed after close', Math.floor(changed.length / 2));
    closeSync(fd);
    list[list.length - 1] = [lastPath, changed];
    writeTree(src, list);
    await sealAndCompare('host/rsync', 'copy.pxar', src);
    expect(storedAhead(m.log, 'copy.pxar')).toBe(list.length);
    expect(readFileSync(join(mnt, 'store1/host/rsync/latest/copy.pxar', lastPath)).equals(changed)).toBe(true);
  }, 120_000);

  it('a staging directory with two pxar directories and a blob: each archive has its own stream', async () => {
    const group = join(mnt, 'store1/host/staged');
    mkdirSync(join(group, 'new'), { recursive: true });
    const srcs: string[] = [];
    for (const name of ['one', 'two']) {
      const src = join(sb.dir, `staged-${name}`);
      writeTree(src, files(`staged-${name}`));
      mkdirSync(join(group, 'new', `${name}.pxar`));
      execFileSync('bash', ['-c', `tar -C '${src}' --sort=name -cf - . | tar -C '${join(group, 'new', `${name}.pxar`)}' -xf -`], { env: { ...process.env, LC_ALL: 'C' } });
      srcs.push(src);
    }
    writeFileSync(join(group, 'new/notes.txt'), 'a blob\n');
    await sb.ok(['seal', join(group, 'new')]);
    expect(storedAhead(m.log, 'new')).toBe(2 * files('x').length);
    const time = snapshotsOnDisk(store, 'host/staged')[0]!;
    expect(readdirSync(join(store, 'host/staged', time)).sort()).toEqual(['index.json.blob', 'notes.txt.blob', 'one.mpxar.didx', 'one.ppxar.didx', 'two.mpxar.didx', 'two.ppxar.didx']);
    for (const [k, name] of ['one', 'two'].entries()) expect(diffTrees(srcs[k]!, join(group, 'latest', `${name}.pxar`))).toEqual([]);
    expect(readFileSync(join(group, 'latest/notes.txt'), 'utf8')).toBe('a blob\n');
  }, 120_000);

  it('files closed in another order than the archive’s: the stream stops and the seal stores the rest', async () => {
    const src = join(sb.dir, 'shuffled-src');
    const list = files('shuffled');
    writeTree(src, list);
    const target = join(mnt, 'store1/host/shuffled/x.pxar');
    mkdirSync(target, { recursive: true });
    // A fixed shuffle: descending within each directory, directories in reverse.
    const order = [...list].reverse();
    for (const [path, data] of order) {
      mkdirSync(join(target, path, '..'), { recursive: true });
      writeFileSync(join(target, path), data);
    }
    await sealAndCompare('host/shuffled', 'x.pxar', src);
    expect(m.log).toMatch(/x\.pxar: files close in another order than the archive lists them/);
    expect(storedAhead(m.log, 'x.pxar')).toBeLessThan(list.length);
    expect(readdirSync(join(mnt, 'store1/host/shuffled/latest/x.pxar')).sort()).toEqual(['a', 'b', 'c']);
  }, 120_000);
});
