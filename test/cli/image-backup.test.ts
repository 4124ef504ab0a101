// End to end through the built CLI: datastore create, image backup/restore, and checks of every byte written
// with the independent reader (test/helpers/independent-reader.ts).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { MiB, makeImage, sha256 } from '../helpers/images.js';
import { chunkFile, readBlob, readFidx, sha256hex } from '../helpers/independent-reader.js';

const T0 = 1_700_000_000;

describe('image backup and restore through the CLI', () => {
  let sb: Sandbox;
  let store: string;
  let image: Buffer;
  let imagePath: string;

  beforeAll(async () => {
    sb = sandbox();
    store = join(sb.dir, 'store1');
    imagePath = join(sb.dir, 'disk.raw');
    image = makeImage(imagePath, 6);
    writeFileSync(join(sb.dir, 'vm.conf'), 'memory: 2048\ncores: 2\n');
    await sb.ok(['datastore', 'create', 'store1', store]);
  });
  afterAll(() => sb?.cleanup());

  it('creates the PBS layout and a section-config entry', () => {
    expect(readdirSync(join(store, '.chunks')).length).toBe(65536);
    expect(existsSync(join(store, '.chunks', '0000'))).toBe(true);
    expect(existsSync(join(store, '.chunks', 'ffff'))).toBe(true);
    expect(statSync(join(store, '.lock')).isFile()).toBe(true);
    const cfg = readFileSync(join(sb.dir, 'etc', 'datastore.cfg'), 'utf8');
    expect(cfg).toMatch(new RegExp(`^datastore: store1\\n\\s+path ${store.replace(/[/.]/g, '\\$&')}\\n`, 'm'));
  });

  it('backs up an image and a config, and writes exactly the spec formats', async () => {
    const r = await sb.ok(['backup', 'disk.img:' + imagePath, 'qemu-server.conf:' + join(sb.dir, 'vm.conf'),
      '--store', 'store1', '--backup-type', 'vm', '--backup-id', '100', '--backup-time', String(T0), '--output-format', 'json']);
    const out = JSON.parse(r.stdout);
    expect(out.snapshot).toBe('vm/100/2023-11-14T22:13:20Z');
    const snapDir = join(store, 'vm', '100', '2023-11-14T22:13:20Z');
    expect(readFileSync(join(store, 'vm', '100', 'owner'), 'utf8')).toBe('root@pam\n');

    // Manifest: an unencrypted blob with pretty JSON, files with size and csum.
    const manifest = JSON.parse(Buffer.from(readBlob(readFileSync(join(snapDir, 'index.json.blob'))).data).toString('utf8'));
    expect(manifest['backup-type']).toBe('vm');
    expect(manifest['backup-id']).toBe('100');
    expect(manifest['backup-time']).toBe(T0);
    expect(manifest.signature ?? null).toBe(null);
    const files = Object.fromEntries(manifest.files.map((f: { filename: string }) => [f.filename, f]));
    expect(Object.keys(files).sort()).toEqual(['disk.img.fidx', 'qemu-server.conf.blob']);

    // Fixed index: size, 4 MiB chunks, csum = sha256 over digests, every chunk decodes to its digest.
    const fidx = readFidx(readFileSync(join(snapDir, 'disk.img.fidx')));
    expect(fidx.size).toBe(image.byteLength);
    expect(fidx.chunkSize).toBe(4 * MiB);
    expect(fidx.csum).toBe(sha256hex(...fidx.digests.map((d) => Buffer.from(d, 'hex'))));
    expect(files['disk.img.fidx']).toMatchObject({ size: image.byteLength, csum: fidx.csum, 'crypt-mode': 'none' });
    fidx.digests.forEach((d, i) => {
      const { data } = readBlob(chunkFile(store, d));
      expect(sha256hex(data)).toBe(d);
      expect(Buffer.compare(Buffer.from(data), image.subarray(i * 4 * MiB, (i + 1) * 4 * MiB))).toBe(0);
    });
    // Deduplicated: the repeated block and the zero blocks are stored once.
    expect(new Set(fidx.digests).size).toBeLessThan(fidx.digests.length);

    // Blob archive: csum over the whole encoded file.
    const confBlob = readFileSync(join(snapDir, 'qemu-server.conf.blob'));
    expect(files['qemu-server.conf.blob']).toMatchObject({ size: confBlob.byteLength, csum: sha256hex(confBlob) });
    expect(Buffer.from(readBlob(confBlob).data).toString()).toBe('memory: 2048\ncores: 2\n');
    // No temporary files remain.
    expect(readdirSync(snapDir).sort()).toEqual(['disk.img.fidx', 'index.json.blob', 'qemu-server.conf.blob']);
  });

  it('lists and restores byte for byte, sparse, to a file and to stdout', async () => {
    const list = JSON.parse((await sb.ok(['snapshot', 'list', '--store', 'store1', '--output-format', 'json'])).stdout);
    expect(list.map((s: { snapshot: string }) => s.snapshot)).toEqual(['vm/100/2023-11-14T22:13:20Z']);
    const target = join(sb.dir, 'restored.raw');
    await sb.ok(['restore', 'vm/100/2023-11-14T22:13:20Z', 'disk.img', target, '--store', 'store1']);
    expect(sha256(readFileSync(target))).toBe(sha256(image));
    // Zero chunks are holes, not written blocks.
    expect(statSync(target).blocks * 512).toBeLessThan(image.byteLength - 4 * MiB);
    const piped = await sb.ok(['restore', 'vm/100/2023-11-14T22:13:20Z', 'qemu-server.conf', '-', '--store', 'store1']);
    expect(piped.stdout).toBe('memory: 2048\ncores: 2\n');
    const mani = await sb.ok(['restore', 'vm/100/2023-11-14T22:13:20Z', 'index.json', '-', '--store', 'store1']);
    expect(JSON.parse(mani.stdout)['backup-id']).toBe('100');
  });

  it('reuses the previous snapshot chunks for a changed copy', async () => {
    const changed = Buffer.from(image);
    changed.fill(7, 4 * MiB + 100, 4 * MiB + 200); // one block changes
    const changedPath = join(sb.dir, 'disk2.raw');
    writeFileSync(changedPath, changed);
    const r = await sb.ok(['backup', 'disk.img:' + changedPath, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '100',
      '--backup-time', String(T0 + 60), '--output-format', 'json']);
    const stats = JSON.parse(r.stdout);
    expect(stats.count).toBe(7);
    expect(stats.duplicates).toBe(6);
    expect(stats.compressed_size).toBeLessThanOrEqual(4 * MiB + 100);
    const target = join(sb.dir, 'restored2.raw');
    await sb.ok(['restore', 'vm/100/2023-11-14T22:14:20Z', 'disk.img', target, '--store', 'store1']);
    expect(sha256(readFileSync(target))).toBe(sha256(changed));
  });

  it('refuses a backup time that is not newer, leaving the store untouched', async () => {
    const before = readdirSync(join(store, 'vm', '100')).sort();
    const r = await sb.run(['backup', 'disk.img:' + imagePath, '--store', 'store1', '--backup-type', 'vm', '--backup-id', '100', '--backup-time', String(T0 + 60)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not newer/);
    expect(readdirSync(join(store, 'vm', '100')).sort()).toEqual(before);
  });

  it('recovers an image with only the index and the .chunks directory', async () => {
    const snapDir = join(store, 'vm', '100', '2023-11-14T22:13:20Z');
    const out = join(sb.dir, 'recovered.raw');
    await sb.ok(['debug', 'recover', 'index', join(snapDir, 'disk.img.fidx'), join(store, '.chunks'), '--output', out], { env: { PBSFS_CONFIG_DIR: join(sb.dir, 'nowhere') } });
    expect(sha256(readFileSync(out))).toBe(sha256(image));
  });

  it('inspects files and chunks', async () => {
    const snapDir = join(store, 'vm', '100', '2023-11-14T22:13:20Z');
    const idx = JSON.parse((await sb.ok(['debug', 'inspect', 'file', join(snapDir, 'disk.img.fidx'), '--output-format', 'json'])).stdout);
    expect(idx).toMatchObject({ type: 'fixed index', size: image.byteLength, chunks: 7, 'csum-ok': true });
    const digest = readFidx(readFileSync(join(snapDir, 'disk.img.fidx'))).digests[1]!;
    const chunk = JSON.parse((await sb.ok(['debug', 'inspect', 'chunk', digest, '--store', 'store1', '--output-format', 'json'])).stdout);
    expect(chunk).toMatchObject({ type: 'blob', 'crc-ok': true, 'digest-ok': true, 'decoded-size': 4 * MiB });
  });

  it('lists groups, protects, annotates and forgets snapshots', async () => {
    const groups = JSON.parse((await sb.ok(['group', 'list', '--store', 'store1', '--output-format', 'json'])).stdout);
    expect(groups).toEqual([expect.objectContaining({ group: 'vm/100', 'backup-count': 2, owner: 'root@pam' })]);
    const snap = 'vm/100/2023-11-14T22:13:20Z';
    await sb.ok(['snapshot', 'notes', 'update', snap, 'before upgrade', '--store', 'store1']);
    expect((await sb.ok(['snapshot', 'notes', 'show', snap, '--store', 'store1'])).stdout).toBe('before upgrade\n');
    await sb.ok(['snapshot', 'protected', 'update', snap, 'true', '--store', 'store1']);
    expect(existsSync(join(store, 'vm', '100', '2023-11-14T22:13:20Z', '.protected'))).toBe(true);
    const denied = await sb.run(['snapshot', 'forget', snap, '--store', 'store1']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/protected/);
    await sb.ok(['snapshot', 'protected', 'update', snap, 'false', '--store', 'store1']);
    await sb.ok(['snapshot', 'forget', snap, '--store', 'store1']);
    expect(existsSync(join(store, 'vm', '100', '2023-11-14T22:13:20Z'))).toBe(false);
    // The other snapshot still restores (its chunks were shared).
    const target = join(sb.dir, 'after-forget.raw');
    await sb.ok(['restore', 'vm/100/2023-11-14T22:14:20Z', 'disk.img', target, '--store', 'store1']);
    expect(statSync(target).size).toBe(image.byteLength);
  });

  it('works in namespaces', async () => {
    await sb.ok(['namespace', 'create', 'dept', '--store', 'store1']);
    await sb.ok(['namespace', 'create', 'dept/team', '--store', 'store1']);
    const nss = JSON.parse((await sb.ok(['namespace', 'list', '--store', 'store1', '--output-format', 'json'])).stdout);
    expect(nss.map((n: { ns: string }) => n.ns)).toEqual(expect.arrayContaining(['dept', 'dept/team']));
    await sb.ok(['backup', 'vm.conf:' + join(sb.dir, 'vm.conf'), '--store', 'store1', '--ns', 'dept/team', '--backup-type', 'ct', '--backup-id', '200', '--backup-time', String(T0)]);
    expect(existsSync(join(store, 'ns', 'dept', 'ns', 'team', 'ct', '200', '2023-11-14T22:13:20Z', 'vm.conf.blob'))).toBe(true);
    const list = JSON.parse((await sb.ok(['snapshot', 'list', '--store', 'store1', '--ns', 'dept/team', '--output-format', 'json'])).stdout);
    expect(list.map((s: { snapshot: string }) => s.snapshot)).toEqual(['ct/200/2023-11-14T22:13:20Z']);
  });
});
