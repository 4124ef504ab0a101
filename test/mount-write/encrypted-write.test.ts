// Writing into a mount started with --keyfile: an image copied in and a tree extracted into a `*.pxar` directory
// (name-sorted tar, so its payloads are stored as the files close) become encrypted snapshots. Every chunk they
// reference is an encrypted blob whose keyed digest checks out with the independent reader; both read back through
// the mount and through `pbsfs restore --keyfile`, and a restore without the key fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../helpers/cli.js';
import { MiB, prng, sha256 } from '../helpers/images.js';
import { chunkFile, idKey, readBlob, readDidx, readFidx, sha256hex } from '../helpers/independent-reader.js';
import type { Mounted } from '../mount/mounted.js';
import { diffTrees, snapshotsOnDisk, type WritableMount, writableMount } from './store-facts.js';

const ENCRYPTED_MAGICS = ['7b6785be222d4cf0', 'e6591bbf0bbfd80b'];

describe('pbsfs mount --keyfile: written snapshots are encrypted', () => {
  let w: WritableMount;
  let sb: Sandbox;
  let mnt: string;
  let store: string;
  let keyPath: string;
  let key: Buffer;
  let m: Mounted;

  beforeAll(async () => {
    w = await writableMount('pbsfs-enc-write-', async (box) => {
      keyPath = join(box.dir, 'key.json');
      await box.ok(['key', 'create', keyPath, '--kdf', 'none']);
      return ['--keyfile', keyPath];
    });
    ({ sb, mnt, store, m } = w);
    // kdf none: the key file holds the key itself.
    key = Buffer.from(JSON.parse(readFileSync(keyPath, 'utf8')).data, 'base64');
    expect(key.length).toBe(32);
  }, 120_000);

  afterAll(async () => {
    await w?.stop();
  });

  /** Every chunk of `digests`: an encrypted blob that decrypts with the key to data whose keyed digest it is. */
  function checkChunks(digests: string[]): void {
    expect(digests.length).toBeGreaterThan(0);
    for (const d of new Set(digests)) {
      const blob = chunkFile(store, d);
      expect(ENCRYPTED_MAGICS).toContain(blob.subarray(0, 8).toString('hex'));
      expect(sha256hex(readBlob(blob, key).data, idKey(key))).toBe(d);
    }
  }

  function manifestOf(dir: string): { files: Array<{ filename: string; 'crypt-mode': string }>; unprotected: Record<string, unknown> } {
    return JSON.parse(Buffer.from(readBlob(readFileSync(join(dir, 'index.json.blob'))).data).toString());
  }

  it('an image copied in', async () => {
    const image = prng('enc-image', 9 * MiB + 77);
    writeFileSync(join(sb.dir, 'disk.raw'), image);
    mkdirSync(join(mnt, 'store1/vm/300'), { recursive: true });
    execFileSync('cp', [join(sb.dir, 'disk.raw'), join(mnt, 'store1/vm/300/')]);
    // The listing waits for the image's snapshot to be finished (its last close is handled after cp exits).
    const time = readdirSync(join(mnt, 'store1/vm/300')).find((n) => n !== 'latest')!;
    expect(snapshotsOnDisk(store, 'vm/300')).toEqual([time]);
    const snap = join(store, 'vm/300', time);
    const manifest = manifestOf(snap);
    expect(manifest.files.map((f) => [f.filename, f['crypt-mode']])).toEqual([['disk.raw.img.fidx', 'encrypt']]);
    expect(manifest.unprotected['key-fingerprint']).toBeTruthy();
    checkChunks(readFidx(readFileSync(join(snap, 'disk.raw.img.fidx'))).digests);
    expect(sha256(readFileSync(join(mnt, 'store1/vm/300/latest/disk.raw.img')))).toBe(sha256(image));
  }, 60_000);

  it('a tree extracted from a name-sorted tar: payloads stored as files closed, all encrypted', async () => {
    const src = join(sb.dir, 'tree');
    for (const d of ['a', 'b']) {
      mkdirSync(join(src, d), { recursive: true });
      for (let k = 0; k < 6; k++) writeFileSync(join(src, d, `f${k}`), prng(`enc-${d}${k}`, [0, 100, 700 * 1024, 2 * MiB][k % 4]!));
    }
    const target = join(mnt, 'store1/host/enc/t.pxar');
    mkdirSync(target, { recursive: true });
    execFileSync('bash', ['-c', `tar -C '${src}' --sort=name -cf - . | tar -C '${target}' -xf -`], { env: { ...process.env, LC_ALL: 'C' } });
    await sb.ok(['seal', target]);
    expect(m.log).toMatch(/sealed staging snapshot t\.pxar .*\(12 files stored as they closed\)/);
    const time = snapshotsOnDisk(store, 'host/enc')[0]!;
    const snap = join(store, 'host/enc', time);
    const manifest = manifestOf(snap);
    expect(manifest.files.map((f) => [f.filename, f['crypt-mode']]).sort()).toEqual([['t.mpxar.didx', 'encrypt'], ['t.ppxar.didx', 'encrypt']]);
    for (const name of readdirSync(snap).filter((n) => n.endsWith('.didx'))) checkChunks(readDidx(readFileSync(join(snap, name))).entries.map((e) => e.digest));

    expect(diffTrees(src, join(mnt, 'store1/host/enc/latest/t.pxar'))).toEqual([]);
    await sb.ok(['restore', `host/enc/${time}`, 't.pxar', join(sb.dir, 'restored'), '--store', 'store1', '--keyfile', keyPath]);
    expect(diffTrees(src, join(sb.dir, 'restored'))).toEqual([]);
    const without = await sb.run(['restore', `host/enc/${time}`, 't.pxar', join(sb.dir, 'restored-nokey'), '--store', 'store1']);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/key/i);
  }, 60_000);
});
