// Typed view of the N-API addon in native/ (flock, fcntl record locks, syncfs, utimensat).
// Node exposes none of these, and the PBS on-disk protocol needs all of them (spec §4, §4.1).
import { nativeAddon } from '../native.js';

export interface NativeLocks {
  /** flock(2); `op` combines LOCK_SH / LOCK_EX / LOCK_UN with LOCK_NB. Throws an Error with `code` on failure. */
  flock(fd: number, op: number): void;
  /** Whole-file fcntl(2) record lock (F_SETLK, or F_SETLKW when `wait`). Blocks the thread when waiting. */
  fcntlLock(fd: number, type: 'read' | 'write' | 'unlock', wait: boolean): void;
  /** syncfs(2) on the filesystem holding `fd`, run on the libuv thread pool; keep `fd` open until it settles. */
  syncfs(fd: number): Promise<void>;
  /** sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of a file's dirty pages, does not wait. */
  startWriteback(fd: number): void;
  /** utimensat(atime = now, mtime untouched); false when the path does not exist. */
  touchAtime(path: string): boolean;
  /** touchAtime on the libuv thread pool. */
  touchAtimeAsync(path: string): Promise<boolean>;
  readonly LOCK_SH: number;
  readonly LOCK_EX: number;
  readonly LOCK_UN: number;
  readonly LOCK_NB: number;
}

export function nativeLocks(): NativeLocks {
  return nativeAddon<NativeLocks>();
}

/** Errno name of an error thrown by the addon (or by node:fs). */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for the errors a non-blocking lock attempt returns when someone else holds the lock. */
export function isLockConflict(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EACCES';
}
