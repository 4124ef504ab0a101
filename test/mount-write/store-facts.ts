// What the write-mount tests share: a datastore mounted read-write in a sandbox, and small facts they check from
// outside — what a failing command said, which snapshots a group has on disk (a snapshot exists once its manifest
// does, whatever the mount shows), how two trees differ.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { Mounted } from '../mount/mounted.js';

/** Datastore `store1` in `DIR/store`, every store mounted read-write at `DIR/mnt` (seal after 600 s). */
export interface WritableMount {
  sb: Sandbox;
  mnt: string;
  store: string;
  m: Mounted;
  /** Unmounts and removes the sandbox (safe after a failed start). */
  stop(): Promise<void>;
}

/** `prepare` runs before the mount starts and returns more mount options (e.g. a key it made). */
export async function writableMount(prefix: string, prepare?: (sb: Sandbox) => Promise<string[]>): Promise<WritableMount> {
  const sb = sandbox(prefix);
  const mnt = join(sb.dir, 'mnt');
  const store = join(sb.dir, 'store');
  let m: Mounted | undefined;
  const stop = async (): Promise<void> => {
    await m?.stop();
    sb.cleanup();
  };
  try {
    mkdirSync(mnt);
    await sb.ok(['datastore', 'create', 'store1', store]);
    const extra = (await prepare?.(sb)) ?? [];
    m = await Mounted.start(sb, ['mount', mnt, '--foreground', '--seal-after', '600', ...extra], mnt);
    return { sb, mnt, store, m, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `diff -r` output lines, without its notes on special files of the same kind (it cannot compare those). */
export function diffTrees(a: string, b: string): string[] {
  const r = spawnSync('diff', ['-r', '--no-dereference', a, b], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`diff failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l && !/^File .* is a (fifo|socket|character special file|block special file) while file .* is a \1$/.test(l));
}

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
