// Running mounts by mount point: a pid file per mount, so `pbsfs umount` can stop the right daemon.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Where running mounts are recorded (one file per mount point holding the daemon's pid). */
export function registryDir(): string {
  if (process.env.PBSFS_RUN_DIR) return process.env.PBSFS_RUN_DIR;
  if (process.getuid?.() === 0) return '/run/pbsfs';
  return join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'pbsfs');
}

export function registryFile(mountpoint: string): string {
  return join(registryDir(), `mount-${createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 16)}.pid`);
}

/** The pid recorded for a mount point, if any. */
export async function registeredPid(mountpoint: string): Promise<number | undefined> {
  const text = await readFile(registryFile(mountpoint), 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
