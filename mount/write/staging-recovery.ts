// After a daemon crash: every staging snapshot left in `<store>/.pbsfs-writes/stage-*/` is resumed from its state
// (files closed before the crash kept, ones still open dropped) or, when that cannot be done, discarded; each with
// a log line. A staged snapshot is never listed as finished before it is sealed (its manifest is written last).
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { MANIFEST_BLOB_NAME } from '../../src/datastore/datastore.js';
import { namespaceFromComponents, parseBackupType } from '../../src/datastore/names.js';
import { isPbsError } from '../../src/errors.js';
import type { SnapshotRef } from '../../src/types.js';
import type { MountContext, OpenStore } from '../stores.js';
import { StagingSnapshot } from './staging-snapshot.js';
import { StagingState } from './staging-state.js';
import { STAGE_PREFIX, WRITES_DIR } from './write-journal.js';

export async function resumeStagingSnapshots(ctx: MountContext, store: OpenStore): Promise<void> {
  const dir = join(store.ds.path, WRITES_DIR);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(STAGE_PREFIX));
  for (const name of names) {
    const stateDir = join(dir, name);
    let state: StagingState | undefined;
    let snapDir: string | undefined;
    let writer: SnapshotWriter | undefined;
    try {
      state = await StagingState.open(join(stateDir, 'state'));
      const loaded = await state.load();
      const ref: SnapshotRef = { ns: namespaceFromComponents(loaded.info.ns), type: parseBackupType(loaded.info.type), id: String(loaded.info.id), time: Number(loaded.info.time) };
      snapDir = store.ds.snapshotPath(ref);
      if (await stat(join(snapDir, MANIFEST_BLOB_NAME)).then(() => true, () => false)) {
        // Sealed just before the crash: only the state was left.
        await state.close();
        await rm(stateDir, { recursive: true, force: true });
        ctx.log.info(`removed the leftover state of sealed staging snapshot ${snapDir}`);
        continue;
      }
      if (!(await stat(snapDir).then(() => true, () => false))) throw new Error(`its snapshot directory ${snapDir} is gone`);
      try {
        writer = await SnapshotWriter.resume(store.ds, ref, { codec: ctx.codec, pool: ctx.pool, cryptMode: ctx.crypt ? 'encrypt' : 'none', crypt: ctx.crypt, threadPoolDigest: true }, loaded.archives);
      } catch (e) {
        if (isPbsError(e, 'EBUSY')) {
          await state.close();
          ctx.log.info(`staging snapshot ${snapDir} is held by another process: left alone`);
          continue;
        }
        throw e;
      }
      await StagingSnapshot.resume(ctx, store, stateDir, state, loaded, writer);
    } catch (e) {
      await state?.close().catch(() => undefined);
      if (writer) await writer.abort();
      else if (snapDir && !(await stat(join(snapDir, MANIFEST_BLOB_NAME)).then(() => true, () => false))) await rm(snapDir, { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
      ctx.log.error(`discarded staging snapshot ${snapDir ?? stateDir} after a daemon crash: ${(e as Error).message}`);
    }
  }
}
