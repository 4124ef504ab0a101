// Small facts the write-mount tests check from outside: what a failing command said, which snapshots a group has
// on disk (a snapshot exists once its manifest does, whatever the mount shows).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** stderr of a command that must fail. */
export function failing(cmd: string, args: string[]): string {
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr);
  }
  throw new Error(`${cmd} ${args.join(' ')} succeeded`);
}

/** Snapshot directory names of a group with a manifest, sorted, read from the datastore itself. */
export function snapshotsOnDisk(store: string, group: string): string[] {
  const dir = join(store, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => existsSync(join(dir, n, 'index.json.blob'))).sort();
}
