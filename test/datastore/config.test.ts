import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  configDir,
  encodeDatastoreConfigs,
  encodeSectionConfig,
  lookupDatastore,
  maintenanceType,
  modifyDatastoreConfigs,
  parseDatastoreConfigs,
  parseSectionConfig,
  readDatastoreConfigs,
  writeDatastoreConfigs,
} from '../../src/datastore/config.js';
import { encodePropertyString, parsePropertyString } from '../../src/datastore/section-config.js';
import { isPbsError } from '../../src/errors.js';

// Shaped like a datastore.cfg that PBS writes, with keys pbsfs does not interpret.
const PBS_CFG = `datastore: store1
\tcomment Main store, daily backups
\tgc-schedule daily
\tkeep-daily 7
\tnotify-user root@pam
\tpath /backup/disk1/store1
\ttuning chunk-order=none,sync-level=file,gc-atime-cutoff=1445

datastore: store2
\tmaintenance-mode type=read-only,message="disk swap, back soon"
\tpath /backup/store2
`;

describe('section config text', () => {
  it('parses PBS-written datastore.cfg and writes it back byte for byte', () => {
    const cfgs = parseDatastoreConfigs(PBS_CFG);
    expect(cfgs).toHaveLength(2);
    expect(cfgs[0]).toMatchObject({
      name: 'store1',
      path: '/backup/disk1/store1',
      comment: 'Main store, daily backups',
      'gc-schedule': 'daily',
      'keep-daily': '7',
      tuning: { 'chunk-order': 'none', 'sync-level': 'file', 'gc-atime-cutoff': '1445' },
    });
    expect(maintenanceType(cfgs[1]!)).toBe('read-only');
    expect(maintenanceType(cfgs[0]!)).toBeUndefined();
    // path moves first on write; everything else keeps its order and its text
    const again = encodeDatastoreConfigs(cfgs);
    expect(parseDatastoreConfigs(again)).toEqual(cfgs);
    expect(again).toBe(`datastore: store1
\tpath /backup/disk1/store1
\tcomment Main store, daily backups
\tgc-schedule daily
\tkeep-daily 7
\tnotify-user root@pam
\ttuning chunk-order=none,sync-level=file,gc-atime-cutoff=1445

datastore: store2
\tpath /backup/store2
\tmaintenance-mode type=read-only,message="disk swap, back soon"
`);
  });

  it('generic sections keep repeated keys and order', () => {
    const text = 'user: a@pbs\n\temail x@y\n\tfoo bar baz\n\tfoo 2\n\nuser: b@pbs\n\tenable 1\n';
    const sections = parseSectionConfig(text);
    expect(sections).toEqual([
      { type: 'user', id: 'a@pbs', props: [['email', 'x@y'], ['foo', 'bar baz'], ['foo', '2']] },
      { type: 'user', id: 'b@pbs', props: [['enable', '1']] },
    ]);
    expect(encodeSectionConfig(sections)).toBe(text);
  });

  it('tolerates extra blank lines, CRLF and space indentation, as PBS does', () => {
    const cfgs = parseDatastoreConfigs('\n\ndatastore: abc\r\n    path /x\r\n\n\n\ndatastore: def\n\tpath /y');
    expect(cfgs.map((c) => [c.name, c.path])).toEqual([['abc', '/x'], ['def', '/y']]);
  });

  it('reports syntax errors with the line number and file', () => {
    const cases: Array<[string, string]> = [
      ['# comment\ndatastore: abc\n\tpath /x\n', 'line 1'],
      ['datastore: abc\npath /x\n', 'line 2'],
      ['datastore: abc\n\tpath\n', 'line 2'],
      ['\tpath /x\n', 'line 1'],
    ];
    for (const [text, where] of cases) {
      let err: unknown;
      try {
        parseDatastoreConfigs(text, '/etc/pbsfs/datastore.cfg');
      } catch (e) {
        err = e;
      }
      expect(isPbsError(err, 'ECORRUPT')).toBe(true);
      expect((err as Error).message).toContain(where);
      expect((err as Error).message).toContain('/etc/pbsfs/datastore.cfg');
    }
  });

  it('refuses semantic errors', () => {
    const bad = [
      'remote: abc\n\tpath /x\n', // unknown section type
      'datastore: ab\n\tpath /x\n', // name too short
      'datastore: abc\n\tcomment x\n', // no path
      'datastore: abc\n\tpath /x\n\tpath /y\n', // duplicate
      'datastore: abc\n\tpath /x\n\ndatastore: abc\n\tpath /y\n', // defined twice
      'datastore: abc\n\tpath /x\n\ttuning sync-level=always\n',
      'datastore: abc\n\tpath /x\n\ttuning chunk-order=random\n',
    ];
    for (const text of bad) expect(() => parseDatastoreConfigs(text), text).toThrow(/datastore|line/);
  });

  it('refuses to write values that would not read back', () => {
    expect(() => encodeDatastoreConfigs([{ name: 'abc', path: 'relative' }])).toThrow(/absolute/);
    expect(() => encodeDatastoreConfigs([{ name: 'abc', path: '/x', comment: 'two\nlines' }])).toThrow(/control character/);
    expect(() => encodeDatastoreConfigs([{ name: 'abc', path: '/x', comment: ' padded' }])).toThrow(/whitespace/);
    expect(() => encodeDatastoreConfigs([{ name: 'abc', path: '/x' }, { name: 'abc', path: '/y' }])).toThrow(/twice/);
    expect(() => encodeDatastoreConfigs([{ name: 'abc', path: '/x', extra: { a: 1 } }])).toThrow(/must be a string/);
  });

  it('property strings quote and unquote', () => {
    const pairs: Array<[string, string]> = [['type', 'offline'], ['message', 'a "quoted", \\ text']];
    const text = encodePropertyString(pairs);
    expect(text).toBe('type=offline,message="a \\"quoted\\", \\\\ text"');
    expect(parsePropertyString(text)).toEqual(pairs);
    expect(parsePropertyString('offline', 'type')).toEqual([['type', 'offline']]);
    for (const bad of ['a=1,a=2', 'a="x', 'a=1,', 'a="x"y', 'novalue']) expect(() => parsePropertyString(bad), bad).toThrow();
  });
});

describe('datastore.cfg on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pbsfs-cfg-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('configDir follows PBSFS_CONFIG_DIR', () => {
    const old = process.env.PBSFS_CONFIG_DIR;
    try {
      process.env.PBSFS_CONFIG_DIR = dir;
      expect(configDir()).toBe(dir);
      delete process.env.PBSFS_CONFIG_DIR;
      expect(configDir()).toBe('/etc/pbsfs');
    } finally {
      if (old === undefined) delete process.env.PBSFS_CONFIG_DIR;
      else process.env.PBSFS_CONFIG_DIR = old;
    }
  });

  it('missing file = no datastores; lookup names the store', async () => {
    expect(await readDatastoreConfigs(dir)).toEqual([]);
    await expect(lookupDatastore('nope', dir)).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining("datastore 'nope' does not exist") });
  });

  it('writes atomically, leaves no temp files, reads back', async () => {
    writeFileSync(join(dir, 'datastore.cfg'), PBS_CFG);
    const cfgs = await readDatastoreConfigs(dir);
    cfgs.push({ name: 'store3', path: '/srv/store3', tuning: { 'sync-level': 'none' } });
    await writeDatastoreConfigs(cfgs, dir);
    expect(readdirSync(dir).filter((n) => !n.startsWith('.')).sort()).toEqual(['datastore.cfg']);
    expect(readFileSync(join(dir, 'datastore.cfg'), 'utf8')).toContain('datastore: store3\n\tpath /srv/store3\n\ttuning sync-level=none\n');
    expect((await lookupDatastore('store3', dir)).tuning).toEqual({ 'sync-level': 'none' });
    expect((await lookupDatastore('store1', dir))['keep-daily']).toBe('7');
  });

  it('concurrent read-modify-write calls do not lose updates', async () => {
    await Promise.all(
      ['aaa', 'bbb', 'ccc', 'ddd'].map((name) => modifyDatastoreConfigs((cfgs) => [...cfgs, { name, path: `/srv/${name}` }], dir)),
    );
    expect((await readDatastoreConfigs(dir)).map((c) => c.name).sort()).toEqual(['aaa', 'bbb', 'ccc', 'ddd']);
  });

  it('a failed write keeps the old file', async () => {
    await writeDatastoreConfigs([{ name: 'good', path: '/srv/good' }], dir);
    await expect(writeDatastoreConfigs([{ name: 'x', path: '/srv/x' }], dir)).rejects.toMatchObject({ code: 'EINVAL' });
    expect((await readDatastoreConfigs(dir)).map((c) => c.name)).toEqual(['good']);
  });
});
