// Datastore directory cases (spec §4 layout, §12 owner/protected/namespaces), run by store.test.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Datastore } from '../../../src/datastore/datastore.js';
import { parseNamespace, ROOT_NAMESPACE } from '../../../src/datastore/names.js';
import type { GroupRef, SnapshotRef } from '../../../src/types.js';
import { tempDir } from '../fixtures.js';

export function datastoreCases(getStore: () => Datastore): void {
  let ds: Datastore;
  beforeAll(() => {
    ds = getStore();
  });

  const T0 = 1_704_067_200; // 2024-01-01T00:00:00Z

  async function finishedSnapshot(s: SnapshotRef, files: string[] = []): Promise<string> {
    const dir = await ds.createSnapshotDir(s);
    for (const f of files) writeFileSync(join(dir, f), 'x');
    writeFileSync(join(dir, 'index.json.blob'), 'manifest');
    return dir;
  }

  describe('create and open', () => {
    it('lays out .lock, .chunks and nothing else', () => {
      expect(readdirSync(ds.path).sort()).toEqual(['.chunks', '.lock']);
      expect(statSync(join(ds.path, '.lock')).size).toBe(0);
      expect(statSync(join(ds.path, '.chunks', 'ffff')).isDirectory()).toBe(true);
    });

    it('open accepts the store and rejects broken layouts', async () => {
      const again = await Datastore.open(ds.config);
      expect(again.path).toBe(ds.path);
      expect(again.chunks.syncLevel).toBe('filesystem');
      const t = tempDir('pbsfs-open-');
      try {
        await expect(Datastore.open({ name: 'abc', path: join(t.dir, 'missing') })).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(Datastore.open({ name: 'abc', path: t.dir })).rejects.toMatchObject({ code: 'ECORRUPT', path: join(t.dir, '.chunks') });
        mkdirSync(join(t.dir, '.chunks', '0000'), { recursive: true });
        mkdirSync(join(t.dir, '.chunks', 'ffff'));
        await expect(Datastore.open({ name: 'abc', path: t.dir })).rejects.toMatchObject({ code: 'ECORRUPT', path: join(t.dir, '.lock') });
        await expect(Datastore.open({ name: 'abc', path: 'relative/path' })).rejects.toMatchObject({ code: 'EINVAL' });
        await expect(Datastore.open({ name: 'a/b', path: t.dir })).rejects.toMatchObject({ code: 'EINVAL' });
      } finally {
        t.cleanup();
      }
    });

    it('maintenance mode: read-only refuses writes, offline refuses everything', async () => {
      ds.checkMaintenance('write');
      const ro = await Datastore.open({ ...ds.config, 'maintenance-mode': 'type=read-only,message="disk swap"' });
      ro.checkMaintenance('read');
      expect(() => ro.checkMaintenance('write')).toThrow(expect.objectContaining({ code: 'EPERM', message: expect.stringContaining('(read-only)') }));
      const off = await Datastore.open({ ...ds.config, 'maintenance-mode': 'type=offline' });
      expect(() => off.checkMaintenance('read')).toThrow(expect.objectContaining({ code: 'EPERM', message: expect.stringContaining('(offline)') }));
    });

    it('create resumes an interrupted create, refuses a used datastore and a non-empty foreign directory', async () => {
      // only .chunks and .lock: what an interrupted create leaves, so create completes it
      expect((await Datastore.create(ds.config)).path).toBe(ds.path);
      mkdirSync(join(ds.path, 'vm'), { recursive: true });
      await expect(Datastore.create(ds.config)).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringContaining('already holds a datastore') });
      const t = tempDir('pbsfs-create-');
      try {
        writeFileSync(join(t.dir, 'important.txt'), 'data');
        await expect(Datastore.create({ name: 'abc', path: t.dir })).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringContaining('not empty') });
        expect(readdirSync(t.dir)).toEqual(['important.txt']);
      } finally {
        t.cleanup();
      }
    });
  });

  describe('namespaces', () => {
    it('create needs the parent; lives under ns/ dirs; refuses duplicates and the root', async () => {
      await ds.createNamespace(parseNamespace('site1'));
      await ds.createNamespace(parseNamespace('site1/rack2'));
      expect(existsSync(join(ds.path, 'ns', 'site1', 'ns', 'rack2'))).toBe(true);
      await expect(ds.createNamespace(parseNamespace('nope/child'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(ds.createNamespace(parseNamespace('site1'))).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(ds.createNamespace(ROOT_NAMESPACE)).rejects.toMatchObject({ code: 'EINVAL' });
    });

    it('lists the parent and its descendants, depth-limited', async () => {
      await ds.createNamespace(parseNamespace('other'));
      const all = (await ds.listNamespaces(ROOT_NAMESPACE)).map((n) => n.join('/'));
      expect(all).toEqual(['', 'other', 'site1', 'site1/rack2']);
      expect((await ds.listNamespaces(ROOT_NAMESPACE, 1)).map((n) => n.join('/'))).toEqual(['', 'other', 'site1']);
      expect((await ds.listNamespaces(parseNamespace('site1'))).map((n) => n.join('/'))).toEqual(['site1', 'site1/rack2']);
      await expect(ds.listNamespaces(parseNamespace('ghost'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('remove: empty ones go, non-empty need deleteGroups, protected snapshots keep theirs', async () => {
      await ds.removeNamespace(parseNamespace('other'), { deleteGroups: false });
      expect(existsSync(join(ds.path, 'ns', 'other'))).toBe(false);

      const inRack: GroupRef = { ns: parseNamespace('site1/rack2'), type: 'ct', id: '200' };
      await ds.createGroup(inRack, 'root@pam');
      await finishedSnapshot({ ...inRack, time: T0 });
      await expect(ds.removeNamespace(parseNamespace('site1'), { deleteGroups: false })).rejects.toMatchObject({ code: 'EPERM', message: expect.stringContaining('not empty') });
      expect(await ds.listGroups(inRack.ns)).toEqual([inRack]);

      await ds.setProtected({ ...inRack, time: T0 }, true);
      await finishedSnapshot({ ...inRack, time: T0 + 60 });
      await expect(ds.removeNamespace(parseNamespace('site1'), { deleteGroups: true })).rejects.toMatchObject({ code: 'EPERM', message: expect.stringContaining('protected') });
      expect((await ds.listSnapshots(inRack)).map((s) => s.ref.time)).toEqual([T0]);

      await ds.setProtected({ ...inRack, time: T0 }, false);
      await ds.removeNamespace(parseNamespace('site1'), { deleteGroups: true });
      expect(existsSync(join(ds.path, 'ns', 'site1'))).toBe(false);
      expect(readdirSync(join(ds.path, 'ns'))).toEqual([]); // the parent's empty ns/ stays, as in PBS
      await expect(ds.removeNamespace(ROOT_NAMESPACE, { deleteGroups: true })).rejects.toMatchObject({ code: 'EINVAL' });
    });
  });

  describe('groups', () => {
    it('createGroup writes the owner file; same owner reuses, other owner gets EPERM', async () => {
      const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'host', id: 'elsa' };
      expect(await ds.createGroup(g, 'root@pam')).toEqual({ created: true });
      expect(readFileSync(join(ds.path, 'host', 'elsa', 'owner'), 'utf8')).toBe('root@pam\n');
      expect(await ds.createGroup(g, 'root@pam')).toEqual({ created: false });
      await expect(ds.createGroup(g, 'john@pbs')).rejects.toMatchObject({ code: 'EPERM', message: expect.stringContaining('john@pbs != root@pam') });
      expect(await ds.getOwner(g)).toBe('root@pam');
      await ds.setOwner(g, 'john@pbs');
      expect(await ds.getOwner(g)).toBe('john@pbs');
      await expect(ds.setOwner(g, 'not an auth id')).rejects.toMatchObject({ code: 'EINVAL' });
    });

    it('a group owned by a user token is the user’s, not the other way round', async () => {
      const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'host', id: 'tokened' };
      await ds.createGroup(g, 'john@pbs!backup');
      expect(await ds.createGroup(g, 'john@pbs')).toEqual({ created: false });
      const h: GroupRef = { ns: ROOT_NAMESPACE, type: 'host', id: 'userowned' };
      await ds.createGroup(h, 'john@pbs');
      await expect(ds.createGroup(h, 'john@pbs!backup')).rejects.toMatchObject({ code: 'EPERM' });
    });

    it('racing creators agree on one owner; an ownerless group dir is claimed', async () => {
      const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'ct', id: 'race' };
      const results = await Promise.allSettled(['a@pbs', 'b@pbs', 'c@pbs', 'd@pbs'].map((o) => ds.createGroup(g, o)));
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'EPERM')).toBe(true);
      expect(readdirSync(ds.groupPath(g))).toEqual(['owner']);
      const orphan: GroupRef = { ns: ROOT_NAMESPACE, type: 'ct', id: 'orphan' };
      mkdirSync(ds.groupPath(orphan), { recursive: true });
      expect(await ds.getOwner(orphan)).toBeUndefined();
      expect(await ds.createGroup(orphan, 'root@pam')).toEqual({ created: false });
      expect(await ds.getOwner(orphan)).toBe('root@pam');
    });

    it('a group in a missing namespace is refused; forged ids never become paths', async () => {
      await expect(ds.createGroup({ ns: parseNamespace('ghost'), type: 'vm', id: '1' }, 'root@pam')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(() => ds.groupPath({ ns: ROOT_NAMESPACE, type: 'vm', id: '../../etc' })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => ds.snapshotPath({ ns: ['..'] as never, type: 'vm', id: '1', time: 0 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => ds.groupPath({ ns: ROOT_NAMESPACE, type: 'lxc' as never, id: '1' })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    });

    it('lists groups in PBS order and skips foreign directories', async () => {
      const ns = parseNamespace('order');
      await ds.createNamespace(ns);
      for (const [type, id] of [['vm', 'x'], ['vm', '10'], ['host', 'abc'], ['vm', '2'], ['ct', '5']] as const) await ds.createGroup({ ns, type, id }, 'root@pam');
      mkdirSync(join(ds.nsPath(ns), 'vm', '.hidden'));
      mkdirSync(join(ds.nsPath(ns), 'qemu', '1'), { recursive: true });
      expect((await ds.listGroups(ns)).map((g) => `${g.type}/${g.id}`)).toEqual(['ct/5', 'host/abc', 'vm/2', 'vm/10', 'vm/x']);
      await expect(ds.listGroups(parseNamespace('ghost'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('group notes', async () => {
      const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'host', id: 'elsa' };
      expect(await ds.groupNotes(g)).toBe('');
      await ds.setGroupNotes(g, 'first line is the comment\nmore');
      expect(await ds.groupNotes(g)).toBe('first line is the comment\nmore');
      expect(readFileSync(join(ds.groupPath(g), 'notes'), 'utf8')).toBe('first line is the comment\nmore');
    });
  });

  describe('snapshots', () => {
    const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'vm', id: '300' };

    it('exclusive snapshot dirs; unfinished ones are hidden unless asked for; oldest first', async () => {
      await expect(ds.createSnapshotDir({ ...g, time: T0 })).rejects.toMatchObject({ code: 'ENOENT' });
      await ds.createGroup(g, 'root@pam');
      await finishedSnapshot({ ...g, time: T0 + 3600 }, ['drive-scsi0.img.fidx', 'qemu-server.conf.blob', 'client.log.blob', 'notes.txt']);
      await finishedSnapshot({ ...g, time: T0 });
      await ds.createSnapshotDir({ ...g, time: T0 + 7200 }); // still being written
      await expect(ds.createSnapshotDir({ ...g, time: T0 })).rejects.toMatchObject({ code: 'EEXIST' });
      mkdirSync(join(ds.groupPath(g), 'not-a-time'));

      const finished = await ds.listSnapshots(g);
      expect(finished.map((s) => [s.ref.time, s.finished, s.protected])).toEqual([
        [T0, true, false],
        [T0 + 3600, true, false],
      ]);
      expect(finished[1]!.path).toBe(join(ds.path, 'vm', '300', '2024-01-01T01:00:00Z'));
      expect((await ds.listSnapshots(g, { includeUnfinished: true })).map((s) => [s.ref.time, s.finished])).toEqual([
        [T0, true],
        [T0 + 3600, true],
        [T0 + 7200, false],
      ]);
      expect((await ds.lastFinishedSnapshot(g))?.ref.time).toBe(T0 + 3600);
      expect(await ds.lastFinishedSnapshot({ ...g, id: 'none' })).toBeUndefined();
      await expect(ds.listSnapshots({ ...g, id: 'none' })).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await ds.listSnapshotFiles({ ...g, time: T0 + 3600 })).toEqual([
        'client.log.blob',
        'drive-scsi0.img.fidx',
        'index.json.blob',
        'qemu-server.conf.blob',
      ]);
    });

    it('protected snapshots block forget; forgetGroup keeps them', async () => {
      const s = { ...g, time: T0 };
      expect(await ds.isProtected(s)).toBe(false);
      await ds.setProtected(s, true);
      expect(await ds.isProtected(s)).toBe(true);
      expect(statSync(join(ds.snapshotPath(s), '.protected')).size).toBe(0);
      await expect(ds.forgetSnapshot(s)).rejects.toMatchObject({ code: 'EPERM', message: expect.stringContaining('protected') });
      await expect(ds.forgetSnapshot(s, { force: true })).rejects.toMatchObject({ code: 'EPERM' });

      expect(await ds.forgetGroup(g)).toEqual({ removed: 2, kept: 1 });
      expect((await ds.listSnapshots(g, { includeUnfinished: true })).map((x) => [x.ref.time, x.protected])).toEqual([[T0, true]]);
      expect(await ds.getOwner(g)).toBe('root@pam');

      await ds.setProtected(s, false);
      await ds.forgetSnapshot(s);
      await expect(ds.forgetSnapshot(s)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await ds.forgetGroup(g)).toEqual({ removed: 0, kept: 0 });
      expect(existsSync(ds.groupPath(g))).toBe(false);
    });
  });
}
