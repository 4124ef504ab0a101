// Snapshots being written through the mount, one small file each under `<store>/.pbsfs-writes/`, so a daemon that
// died mid-copy leaves a trail: the next mount discards those unfinished snapshot directories (never listed: they
// have no manifest) with a log line. An interrupted copy is not resumed: the writer's data is gone with its process.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Datastore } from '../../src/datastore/datastore.js';
import { MANIFEST_BLOB_NAME } from '../../src/datastore/datastore.js';
import { isPbsError } from '../../src/errors.js';
import { lockGroup } from '../../src/datastore/locks.js';
import { namespaceFromComponents, parseBackupType } from '../../src/datastore/names.js';
import type { SnapshotRef } from '../../src/types.js';
import type { Logger } from '../log.js';

export const WRITES_DIR = '.pbsfs-writes';
const DIR = WRITES_DIR;
/** State directories of staging snapshots inside WRITES_DIR. */
export const STAGE_PREFIX = 'stage-';

function refKey(ds: Datastore, ref: SnapshotRef): string {
  return createHash('sha256').update(ds.snapshotPath(ref)).digest('hex').slice(0, 32);
}

function entryPath(ds: Datastore, ref: SnapshotRef): string {
  return join(ds.path, DIR, refKey(ds, ref));
}

/** Where a staging snapshot keeps its state (LevelDB) and spool. */
export function stageDir(ds: Datastore, ref: SnapshotRef): string {
  return join(ds.path, DIR, STAGE_PREFIX + refKey(ds, ref));
}

export async function recordWrite(ds: Datastore, ref: SnapshotRef): Promise<void> {
  await mkdir(join(ds.path, DIR), { recursive: true, mode: 0o700 });
  await writeFile(entryPath(ds, ref), JSON.stringify({ ns: [...ref.ns], type: ref.type, id: ref.id, time: ref.time }), { mode: 0o600 });
}

export async function forgetWrite(ds: Datastore, ref: SnapshotRef): Promise<void> {
  await rm(entryPath(ds, ref), { force: true });
}

/** Removes what interrupted writes left behind; groups still locked by a live writer are left alone. */
export async function discardInterruptedWrites(ds: Datastore, log: Logger): Promise<void> {
  const dir = join(ds.path, DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(STAGE_PREFIX)) continue; // staging snapshots: resumed by staging-recovery.ts
    const file = join(dir, name);
    let ref: SnapshotRef;
    try {
      const raw = JSON.parse(await readFile(file, 'utf8')) as { ns: string[]; type: string; id: string; time: number };
      ref = { ns: namespaceFromComponents(raw.ns), type: parseBackupType(raw.type), id: String(raw.id), time: Number(raw.time) };
    } catch {
      log.error(`ignoring unreadable write journal entry ${file}`);
      continue;
    }
    const snapDir = ds.snapshotPath(ref);
    let lock;
    try {
      lock = await lockGroup(ds, ref, 'exclusive', 'discard an interrupted mount write');
    } catch (e) {
      // Still being written by a live process: leave it. The group is gone: so is the snapshot.
      if (!isPbsError(e, 'EBUSY')) await rm(file, { force: true });
      continue;
    }
    try {
      const finished = await stat(join(snapDir, MANIFEST_BLOB_NAME)).then(() => true, () => false);
      if (!finished) {
        await rm(snapDir, { recursive: true, force: true });
        log.info(`discarded unfinished snapshot ${snapDir} of a write interrupted by a daemon crash`);
      }
      await rm(file, { force: true });
    } finally {
      lock.release();
    }
  }
}
