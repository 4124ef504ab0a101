// File archives through the CLI: legacy (.pxar + catalog), data and metadata split modes, restore with all
// metadata, patterns, catalog dump and shell, encryption; archives checked with the independent reader.
import { readFileSync, rmSync, writeFileSync, utimesSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { chunkFile, readBlob, readDidx, sha256hex } from '../helpers/independent-reader.js';
import { describeTree, makeTree } from '../helpers/tree.js';

const T0 = 1_700_000_000;

describe('file archives through the CLI', () => {
  let sb: Sandbox;
  let store: string;
  let src: string;
  const snapDir = (id: string, t: number) => join(store, 'host', id, new Date(t * 1000).toISOString().replace('.000Z', 'Z'));
  const snapName = (id: string, t: number) => `host/${id}/${new Date(t * 1000).toISOString().replace('.000Z', 'Z')}`;
  const manifestOf = (id: string, t: number) => JSON.parse(Buffer.from(readBlob(readFileSync(join(snapDir(id, t), 'index.json.blob'))).data).toString());

  beforeAll(async () => {
    sb = sandbox();
    store = join(sb.dir, 'store');
    src = join(sb.dir, 'src');
    makeTree(src);
    await sb.ok(['datastore', 'create', 'trees', store]);
  });
  afterAll(() => sb?.cleanup());

  it('legacy mode writes a .pxar.didx and a catalog whose chunks decode to their digests', async () => {
    await sb.ok(['backup', `root.pxar:${src}`, '--store', 'trees', '--backup-id', 'legacy', '--backup-time', String(T0)]);
    const m = manifestOf('legacy', T0);
    expect(m.files.map((f: { filename: string }) => f.filename)).toEqual(['root.pxar.didx', 'catalog.pcat1.didx']);
    for (const f of m.files) {
      const didx = readDidx(readFileSync(join(snapDir('legacy', T0), f.filename)));
      const entryBytes = didx.entries.map((e) => {
        const b = Buffer.alloc(40);
        b.writeBigUInt64LE(BigInt(e.end));
        Buffer.from(e.digest, 'hex').copy(b, 8);
        return b;
      });
      expect(sha256hex(...entryBytes)).toBe(f.csum);
      expect(didx.entries.at(-1)!.end).toBe(f.size);
      let prev = 0;
      const data = didx.entries.map((e) => {
        const chunk = readBlob(chunkFile(store, e.digest)).data;
        expect(sha256hex(chunk)).toBe(e.digest);
        expect(chunk.length).toBe(e.end - prev);
        prev = e.end;
        return chunk;
      });
      const stream = Buffer.concat(data);
      if (f.filename === 'catalog.pcat1.didx') expect(stream.subarray(0, 8).toString('hex')).toBe('91fd60f9c46758d5');
      // v1 archive: the root ENTRY starts at offset 0 (spec §8.5) and the stream ends with the root goodbye tail.
      else expect(stream.readBigUInt64LE(0)).toBe(0xd5956474e588acefn);
    }
  });

  it('restores a legacy archive with every attribute', async () => {
    const target = join(sb.dir, 'restore-legacy');
    await sb.ok(['restore', snapName('legacy', T0), 'root.pxar', target, '--store', 'trees']);
    expect(describeTree(target)).toEqual(describeTree(src));
  });

  it('dumps the catalog and browses it in the shell', async () => {
    const dump = (await sb.ok(['catalog', 'dump', snapName('legacy', T0), '--store', 'trees'])).stdout.split('\n');
    expect(dump).toContain('d "/root.pxar.didx"');
    expect(dump).toContain('d "/root.pxar.didx/etc/conf.d"');
    expect(dump).toContain('l "/root.pxar.didx/var/sym"');
    expect(dump).toContain('h "/root.pxar.didx/var/passwd-link"');
    expect(dump.find((l) => l.startsWith('f "/root.pxar.didx/etc/passwd"'))).toBe('f "/root.pxar.didx/etc/passwd" 26 2017-07-14T02:40:00Z');
    const target = join(sb.dir, 'shell-out');
    const script = ['cd etc', 'pwd', 'ls', 'stat passwd', 'select conf.d', 'deselect conf.d', 'select passwd', 'list-selected', `restore-selected ${target}`, 'cd /nope', 'exit', ''].join('\n');
    const r = await sb.run(['catalog', 'shell', snapName('legacy', T0), 'root.pxar', '--store', 'trees'], { input: Buffer.from(script) });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('/etc\n');
    expect(r.stdout).toMatch(/dir +conf\.d\//);
    expect(r.stdout).toMatch(/Size: 26/);
    expect(r.stdout).toContain('error: no such directory: /nope');
    expect(readdirSync(join(target, 'etc'))).toEqual(['passwd']);
  });

  it('restores only what --pattern selects', async () => {
    const target = join(sb.dir, 'restore-pattern');
    await sb.ok(['restore', snapName('legacy', T0), 'root.pxar', target, '--store', 'trees', '--pattern', '/var/log/**']);
    expect(readdirSync(target)).toEqual(['var']);
    expect(readdirSync(join(target, 'var'))).toEqual(['log']);
  });

  it('honours --exclude', async () => {
    await sb.ok(['backup', `root.pxar:${src}`, '--store', 'trees', '--backup-id', 'excl', '--backup-time', String(T0), '--exclude', '/etc/conf.d', '--exclude', '*.log']);
    const target = join(sb.dir, 'restore-excl');
    await sb.ok(['restore', snapName('excl', T0), 'root.pxar', target, '--store', 'trees']);
    expect(existsSync(join(target, 'etc', 'conf.d'))).toBe(false);
    expect(existsSync(join(target, 'var', 'log', 'big.log'))).toBe(false);
    expect(existsSync(join(target, 'etc', 'passwd'))).toBe(true);
  });

  it('data and metadata modes write split archives; metadata mode reuses unchanged files', async () => {
    await sb.ok(['backup', `root.pxar:${src}`, '--store', 'trees', '--backup-id', 'split', '--backup-time', String(T0), '--change-detection-mode', 'data']);
    expect(manifestOf('split', T0).files.map((f: { filename: string }) => f.filename)).toEqual(['root.mpxar.didx', 'root.ppxar.didx']);
    // Change one small file; everything else (incl. the 3 MiB log) must come from the previous payload.
    writeFileSync(join(src, 'etc', 'conf.d', 'file-7.conf'), 'changed\n');
    utimesSync(join(src, 'etc', 'conf.d', 'file-7.conf'), T0, T0);
    const r = await sb.ok(['backup', `root.pxar:${src}`, '--store', 'trees', '--backup-id', 'split', '--backup-time', String(T0 + 1),
      '--change-detection-mode', 'metadata', '--output-format', 'json']);
    const stats = JSON.parse(r.stdout);
    expect(stats.compressed_size).toBeLessThan(1024 * 1024); // only metadata and the changed file were written
    for (const t of [T0, T0 + 1]) {
      const target = join(sb.dir, `restore-split-${t}`);
      await sb.ok(['restore', snapName('split', t), 'root.pxar', target, '--store', 'trees']);
      if (t === T0 + 1) expect(describeTree(target)).toEqual(describeTree(src));
      else expect(readFileSync(join(target, 'etc', 'conf.d', 'file-7.conf'), 'utf8')).toMatch(/^setting_7/);
    }
    const dump = (await sb.ok(['catalog', 'dump', snapName('split', T0 + 1), '--store', 'trees'])).stdout;
    expect(dump).toContain('f "/root.mpxar.didx/etc/conf.d/file-7.conf" 8 2023-11-14T22:13:20Z');
  });

  it('encrypts file archives and their catalog', async () => {
    const key = join(sb.dir, 'tree.key');
    await sb.ok(['key', 'create', key, '--kdf', 'none']);
    await sb.ok(['backup', `root.pxar:${src}`, '--store', 'trees', '--backup-id', 'enc', '--backup-time', String(T0), '--keyfile', key]);
    const didx = readDidx(readFileSync(join(snapDir('enc', T0), 'root.pxar.didx')));
    expect(['7b6785be222d4cf0', 'e6591bbf0bbfd80b']).toContain(chunkFile(store, didx.entries[0]!.digest).subarray(0, 8).toString('hex'));
    expect((await sb.run(['restore', snapName('enc', T0), 'root.pxar', join(sb.dir, 'no-key'), '--store', 'trees'])).code).not.toBe(0);
    const target = join(sb.dir, 'restore-enc');
    await sb.ok(['restore', snapName('enc', T0), 'root.pxar', target, '--store', 'trees', '--keyfile', key]);
    expect(describeTree(target)).toEqual(describeTree(src));
    expect((await sb.ok(['catalog', 'dump', snapName('enc', T0), '--store', 'trees', '--keyfile', key])).stdout).toContain('/root.pxar.didx/etc/passwd');
  });

  it('refuses a file as a tree source and an occupied restore target', async () => {
    const r = await sb.run(['backup', `root.pxar:${join(src, 'empty')}`, '--store', 'trees', '--backup-id', 'bad', '--backup-time', String(T0)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/directory/);
    expect(existsSync(join(store, 'host', 'bad'))).toBe(false);
    const target = join(sb.dir, 'occupied');
    mkdirSync(join(target, 'etc'), { recursive: true });
    writeFileSync(join(target, 'etc', 'passwd'), 'mine\n');
    const r2 = await sb.run(['restore', snapName('legacy', T0), 'root.pxar', target, '--store', 'trees']);
    expect(r2.code).not.toBe(0);
    expect(readFileSync(join(target, 'etc', 'passwd'), 'utf8')).toBe('mine\n');
    rmSync(target, { recursive: true });
  });
});
