// Datastore locking (spec §4):
// - groups and snapshots: flock on their directory (PBS 3.x style), shared for readers, exclusive for
//   writers and forget; never blocking;
// - the store: fcntl record locks on <base>/.lock — every backup writer holds a shared one, GC an
//   exclusive one. fcntl locks do not conflict inside one process, so this process keeps its own
//   count and the writers' start times ("oldest writer", needed by GC).
import { closeSync, constants, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PbsError, withPath } from '../errors.js';
import type { GroupRef, SnapshotRef } from '../types.js';
import type { Datastore } from './datastore.js';
import { releaseFlock, tryFlock, type FlockMode } from './flock.js';
import { describeGroup, describeSnapshot } from './names.js';
import { isLockConflict, nativeLocks } from './native-locks.js';

export interface Lock {
  /** Idempotent. */
  release(): void;
}

export type LockMode = FlockMode;

export const STORE_LOCK_FILE = '.lock';

interface HeldDir {
  mode: LockMode;
  whys: string[];
}

/** Directory locks this process holds, by absolute path, for clear messages on in-process conflicts. */
const heldDirs = new Map<string, HeldDir>();

function lockDir(path: string, what: string, mode: LockMode, why: string, busyHint: string): Lock {
  const held = heldDirs.get(path);
  if (held && (mode === 'exclusive' || held.mode === 'exclusive')) {
    throw new PbsError('EBUSY', `${what} is locked by this process (${held.whys.join(', ')}); cannot ${why}`, { path });
  }
  let fd: number | undefined;
  try {
    fd = tryFlock(path, mode);
  } catch (e) {
    if (isPbsNotFound(e)) throw new PbsError('ENOENT', `${what} does not exist`, { path });
    throw e;
  }
  if (fd === undefined) throw new PbsError('EBUSY', `${what} is locked (${busyHint}); cannot ${why}`, { path });
  const entry = held ?? { mode, whys: [] };
  entry.whys.push(why);
  heldDirs.set(path, entry);
  let released = false;
  return {
    release(): void {
      if (released) return;
      released = true;
      releaseFlock(fd);
      const i = entry.whys.indexOf(why);
      if (i >= 0) entry.whys.splice(i, 1);
      if (entry.whys.length === 0 && heldDirs.get(path) === entry) heldDirs.delete(path);
    },
  };
}

function isPbsNotFound(e: unknown): boolean {
  return e instanceof PbsError && e.code === 'ENOENT';
}

/** Non-blocking; EBUSY when held elsewhere (another process, or this one for a conflicting mode). */
export async function lockGroup(ds: Datastore, g: GroupRef, mode: LockMode, why: string): Promise<Lock> {
  return lockDir(resolve(ds.groupPath(g)), `group ${describeGroup(g)}`, mode, why, 'backup running?');
}

/** Non-blocking; EBUSY when held elsewhere (another process, or this one for a conflicting mode). */
export async function lockSnapshot(ds: Datastore, s: SnapshotRef, mode: LockMode, why: string): Promise<Lock> {
  return lockDir(resolve(ds.snapshotPath(s)), `snapshot ${describeSnapshot(s)}`, mode, why, 'possibly running or in use');
}

interface StoreLocker {
  fd: number;
  /** Start time (unix seconds) of each shared holder in this process. */
  writers: Map<number, number>;
  exclusive: boolean;
  nextId: number;
}

const storeLockers = new Map<string, StoreLocker>();

function storeLockPath(ds: Datastore): string {
  return resolve(join(ds.path, STORE_LOCK_FILE));
}

function lockerFor(path: string): StoreLocker {
  let locker = storeLockers.get(path);
  if (!locker) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (e) {
      throw withPath(e, path);
    }
    locker = { fd, writers: new Map(), exclusive: false, nextId: 1 };
    storeLockers.set(path, locker);
  }
  return locker;
}

/** Closing the fd drops this process's fcntl locks on .lock, so it is only closed once nothing is held. */
function maybeClose(path: string, locker: StoreLocker): void {
  if (locker.writers.size === 0 && !locker.exclusive) {
    closeSync(locker.fd);
    storeLockers.delete(path);
  }
}

function setRecordLock(locker: StoreLocker, type: 'read' | 'write' | 'unlock', path: string, busy: string): void {
  try {
    nativeLocks().fcntlLock(locker.fd, type, false);
  } catch (e) {
    if (isLockConflict(e)) throw new PbsError('EBUSY', busy, { path });
    throw new PbsError('EIO', `fcntl lock failed: ${(e as Error).message}`, { path, cause: e });
  }
}

/** Backup writer: shared fcntl lock (F_RDLCK) on <base>/.lock; records its start time (spec §4). */
export function lockStoreShared(ds: Datastore): Lock {
  const path = storeLockPath(ds);
  const locker = lockerFor(path);
  if (locker.writers.size === 0 && !locker.exclusive) {
    try {
      setRecordLock(locker, 'read', path, `datastore '${ds.name}' is locked exclusively by another process (garbage collection running?)`);
    } catch (e) {
      maybeClose(path, locker);
      throw e;
    }
  }
  const id = locker.nextId++;
  locker.writers.set(id, Math.floor(Date.now() / 1000));
  let released = false;
  return {
    release(): void {
      if (released) return;
      released = true;
      locker.writers.delete(id);
      if (locker.writers.size === 0 && !locker.exclusive) {
        nativeLocks().fcntlLock(locker.fd, 'unlock', false);
        maybeClose(path, locker);
      }
    },
  };
}

/** GC: exclusive fcntl lock (F_WRLCK) on <base>/.lock; fails only if another process holds any lock (spec §4). */
export function lockStoreExclusive(ds: Datastore): Lock {
  const path = storeLockPath(ds);
  const locker = lockerFor(path);
  if (locker.exclusive) throw new PbsError('EBUSY', `datastore '${ds.name}' is already locked exclusively by this process`, { path });
  try {
    setRecordLock(locker, 'write', path, `datastore '${ds.name}' is in use by another process (backup or garbage collection running?)`);
  } catch (e) {
    maybeClose(path, locker);
    throw e;
  }
  locker.exclusive = true;
  let released = false;
  return {
    release(): void {
      if (released) return;
      released = true;
      locker.exclusive = false;
      // fall back to the shared lock our own writers still need
      nativeLocks().fcntlLock(locker.fd, locker.writers.size > 0 ? 'read' : 'unlock', false);
      maybeClose(path, locker);
    },
  };
}

/** Start time (unix seconds) of the oldest shared store lock held in this process, if any (spec §4). */
export function oldestWriter(ds: Datastore): number | undefined {
  const locker = storeLockers.get(storeLockPath(ds));
  if (!locker || locker.writers.size === 0) return undefined;
  return Math.min(...locker.writers.values());
}
