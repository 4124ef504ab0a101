// Lock cases (spec §4 locking), run by store.test.ts against its shared datastore.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Datastore } from '../../../src/datastore/datastore.js';
import { lockGroup, lockSnapshot, lockStoreExclusive, lockStoreShared, oldestWriter } from '../../../src/datastore/locks.js';
import { ROOT_NAMESPACE } from '../../../src/datastore/names.js';
import type { GroupRef, SnapshotRef } from '../../../src/types.js';
import { lockInChild } from '../child-lock.js';

export function lockCases(getStore: () => Datastore): void {
  let ds: Datastore;
  const g: GroupRef = { ns: ROOT_NAMESPACE, type: 'vm', id: '100' };
  const snap: SnapshotRef = { ...g, time: 1_700_000_000 };

  beforeAll(async () => {
    ds = getStore();
    await ds.createGroup(g, 'root@pam');
    await ds.createSnapshotDir(snap);
  });

  describe('group and snapshot locks (flock on the directory)', () => {
    it('in one process: shared locks stack, exclusive conflicts, release is idempotent', async () => {
      const a = await lockGroup(ds, g, 'shared', 'reader a');
      const b = await lockGroup(ds, g, 'shared', 'reader b');
      await expect(lockGroup(ds, g, 'exclusive', 'backup')).rejects.toMatchObject({
        code: 'EBUSY',
        message: expect.stringMatching(/group vm\/100 is locked by this process \(reader a, reader b\)/),
      });
      a.release();
      a.release();
      await expect(lockGroup(ds, g, 'exclusive', 'backup')).rejects.toMatchObject({ code: 'EBUSY' });
      b.release();
      const x = await lockGroup(ds, g, 'exclusive', 'backup');
      await expect(lockGroup(ds, g, 'shared', 'reader')).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringContaining('(backup)') });
      x.release();
    });

    it('missing group or snapshot: ENOENT', async () => {
      await expect(lockGroup(ds, { ...g, id: 'nope' }, 'shared', 'read')).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(lockSnapshot(ds, { ...snap, time: 1 }, 'shared', 'read')).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('another process holding the group blocks us, and we block it', async () => {
      const child = await lockInChild('flock', 'exclusive', ds.groupPath(g));
      try {
        expect(child.status).toBe('locked');
        await expect(lockGroup(ds, g, 'exclusive', 'backup')).rejects.toMatchObject({
          code: 'EBUSY',
          message: expect.stringContaining('group vm/100 is locked (backup running?)'),
        });
        await expect(lockGroup(ds, g, 'shared', 'read')).rejects.toMatchObject({ code: 'EBUSY' });
      } finally {
        await child.release();
      }
      const ours = await lockGroup(ds, g, 'exclusive', 'backup');
      try {
        const other = await lockInChild('flock', 'shared', ds.groupPath(g));
        await other.release();
        expect(other.status).toMatch(/^busy (EAGAIN|EWOULDBLOCK)$/);
      } finally {
        ours.release();
      }
    });

    it('shared holders in two processes coexist; exclusive waits for both', async () => {
      const ours = await lockGroup(ds, g, 'shared', 'read');
      const theirs = await lockInChild('flock', 'shared', ds.groupPath(g));
      try {
        expect(theirs.status).toBe('locked');
        const writer = await lockInChild('flock', 'exclusive', ds.groupPath(g));
        await writer.release();
        expect(writer.status).toMatch(/^busy/);
      } finally {
        await theirs.release();
        ours.release();
      }
    });

    it('a snapshot in use by another process cannot be forgotten or protected', async () => {
      const reader = await lockInChild('flock', 'shared', ds.snapshotPath(snap));
      try {
        expect(reader.status).toBe('locked');
        await expect(ds.forgetSnapshot(snap)).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringContaining('snapshot vm/100/') });
        await expect(ds.setProtected(snap, true)).rejects.toMatchObject({ code: 'EBUSY' });
        await expect(ds.forgetGroup(g)).rejects.toMatchObject({ code: 'EBUSY' });
      } finally {
        await reader.release();
      }
      expect((await ds.listSnapshots(g, { includeUnfinished: true })).map((s) => s.ref.time)).toEqual([snap.time]);
    });
  });

  describe('store lock (fcntl on .lock)', () => {
    const lockFile = () => join(ds.path, '.lock');

    it('writers share; GC in another process is refused while a writer runs', async () => {
      const w = lockStoreShared(ds);
      try {
        const gc = await lockInChild('fcntl', 'exclusive', lockFile());
        await gc.release();
        expect(gc.status).toMatch(/^busy (EAGAIN|EACCES)$/);
        const writer = await lockInChild('fcntl', 'shared', lockFile());
        await writer.release();
        expect(writer.status).toBe('locked');
      } finally {
        w.release();
      }
      const gc = await lockInChild('fcntl', 'exclusive', lockFile());
      await gc.release();
      expect(gc.status).toBe('locked');
    });

    it('GC in another process blocks new writers here, a writer elsewhere blocks GC here', async () => {
      const gc = await lockInChild('fcntl', 'exclusive', lockFile());
      try {
        expect(gc.status).toBe('locked');
        expect(() => lockStoreShared(ds)).toThrow(expect.objectContaining({ code: 'EBUSY', message: expect.stringContaining('garbage collection') }));
      } finally {
        await gc.release();
      }
      const writer = await lockInChild('fcntl', 'shared', lockFile());
      try {
        expect(() => lockStoreExclusive(ds)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      } finally {
        await writer.release();
      }
      lockStoreExclusive(ds).release();
    });

    it('in one process GC and writers coexist (oldest-writer rule); the shared lock survives GC release', async () => {
      expect(oldestWriter(ds)).toBeUndefined();
      const w1 = lockStoreShared(ds);
      const w2 = lockStoreShared(ds);
      const now = Math.floor(Date.now() / 1000);
      expect(Math.abs(oldestWriter(ds)! - now)).toBeLessThanOrEqual(1);
      const gc = lockStoreExclusive(ds);
      expect(() => lockStoreExclusive(ds)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      gc.release();
      // still a writer here: another process's GC must still fail
      const otherGc = await lockInChild('fcntl', 'exclusive', lockFile());
      await otherGc.release();
      expect(otherGc.status).toMatch(/^busy/);
      w1.release();
      w2.release();
      w2.release();
      expect(oldestWriter(ds)).toBeUndefined();
      const free = await lockInChild('fcntl', 'exclusive', lockFile());
      await free.release();
      expect(free.status).toBe('locked');
    });
  });
}
