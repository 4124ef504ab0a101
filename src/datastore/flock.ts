// flock(2) on a path through its own file descriptor: the primitive under group, snapshot and
// config locks. Every call opens a new fd, so two holders in one process conflict just like
// two processes do (flock locks belong to the open file description).
import { closeSync, constants, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PbsError, withPath } from '../errors.js';
import { isLockConflict, nativeLocks } from './native-locks.js';

export type FlockMode = 'exclusive' | 'shared';

/** Tries once; returns the fd holding the lock, or undefined when someone else holds a conflicting one. */
export function tryFlock(path: string, mode: FlockMode, opts: { create?: boolean } = {}): number | undefined {
  const native = nativeLocks();
  let fd: number;
  try {
    // O_RDONLY works for directories too; O_CREAT only for plain lock files
    fd = openSync(path, opts.create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDONLY, 0o644);
  } catch (e) {
    throw withPath(e, path);
  }
  try {
    native.flock(fd, (mode === 'exclusive' ? native.LOCK_EX : native.LOCK_SH) | native.LOCK_NB);
    return fd;
  } catch (e) {
    closeSync(fd);
    if (isLockConflict(e)) return undefined;
    throw new PbsError('EIO', `flock failed: ${(e as Error).message}`, { path, cause: e });
  }
}

/** Polls tryFlock without blocking the event loop until `timeoutMs` passed. */
export async function flockWithTimeout(path: string, mode: FlockMode, timeoutMs: number, opts: { create?: boolean } = {}): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const fd = tryFlock(path, mode, opts);
    if (fd !== undefined || Date.now() >= deadline) return fd;
    await sleep(delay);
  }
}

/** Closing the fd releases the flock. */
export function releaseFlock(fd: number): void {
  closeSync(fd);
}
