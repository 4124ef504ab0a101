// File archives (`NAME.pxar:DIR`): the archiver's pxar stream cut by buzhash into a dynamic archive, with the
// catalog written in the same pass (legacy mode) or a split .mpxar/.ppxar pair (data and metadata modes).
import { BuzhashChunker } from '../chunker/buzhash.js';
import { PbsError } from '../errors.js';
import { CatalogWriter } from '../format/catalog.js';
import { type ArchiveStats, createArchive } from '../fs/archiver.js';
import { PayloadReuse } from './payload-reuse.js';
import type { DynamicArchiveWriter } from './dynamic-archive-writer.js';
import type { SnapshotWriter } from './snapshot-writer.js';

export type ChangeDetectionMode = 'legacy' | 'data' | 'metadata';

/** Client defaults (spec §7.1): 4 MiB average for archives, 512 KiB for the catalog. */
export const PXAR_CHUNK_AVG = 4 * 1024 * 1024;
export const CATALOG_CHUNK_AVG = 512 * 1024;
export const CATALOG_FILE_NAME = 'catalog.pcat1.didx';

export interface TreeBackupOptions {
  mode: ChangeDetectionMode;
  excludes?: readonly string[];
  includeDev?: readonly string[];
  allFileSystems?: boolean;
  chunkAvg?: number;
  onWarning?: (message: string) => void;
  onProgress?: (bytes: number) => void;
}

/** The catalog of a legacy-mode snapshot: one root directory per pxar archive (spec §9). */
export class SnapshotCatalog {
  private constructor(readonly writer: CatalogWriter, private readonly archive: DynamicArchiveWriter) {}

  static async open(session: SnapshotWriter): Promise<SnapshotCatalog> {
    const archive = await session.openDynamicArchive(CATALOG_FILE_NAME, new BuzhashChunker(CATALOG_CHUNK_AVG));
    return new SnapshotCatalog(new CatalogWriter(archive), archive);
  }

  async finish(): Promise<void> {
    await this.writer.finish();
    await this.archive.close();
  }

  async abort(): Promise<void> {
    await this.archive.abort();
  }
}

/**
 * Backs up directory `source` as archive `name` (e.g. `root.pxar`). Legacy mode needs the snapshot's catalog;
 * split modes write `NAME.mpxar.didx` + `NAME.ppxar.didx` and no catalog entries.
 */
export async function backupTree(
  session: SnapshotWriter,
  name: string,
  source: string,
  catalog: SnapshotCatalog | undefined,
  opts: TreeBackupOptions,
): Promise<ArchiveStats> {
  if (!name.endsWith('.pxar')) throw new PbsError('EINVAL', `file archive name must end in .pxar: ${name}`);
  const avg = opts.chunkAvg ?? PXAR_CHUNK_AVG;
  const common = {
    excludes: opts.excludes,
    includeDev: opts.includeDev,
    allFileSystems: opts.allFileSystems,
    onWarning: opts.onWarning,
  };
  if (opts.mode === 'legacy') {
    if (!catalog) throw new PbsError('EINVAL', 'legacy mode writes a catalog: open one with SnapshotCatalog.open');
    const archive = await session.openDynamicArchive(`${name}.didx`, new BuzhashChunker(avg), opts.onProgress);
    try {
      catalog.writer.startDirectory(`${name}.didx`);
      const stats = await createArchive(source, archive, { ...common, catalog: catalog.writer });
      await catalog.writer.endDirectory();
      await archive.close();
      return stats;
    } catch (e) {
      await archive.abort();
      throw e;
    }
  }
  const base = name.slice(0, -'.pxar'.length);
  const meta = await session.openDynamicArchive(`${base}.mpxar.didx`, new BuzhashChunker(avg));
  const payload = await session.openDynamicArchive(`${base}.ppxar.didx`, new BuzhashChunker(avg), opts.onProgress);
  try {
    const reuse = opts.mode === 'metadata' ? await PayloadReuse.open(session, base, payload) : undefined;
    const stats = await createArchive(source, meta, {
      ...common,
      payload,
      lookupPrevious: reuse && ((path, metadata, size, encoder) => reuse.lookup(path, metadata, size, encoder)),
      flushReused: reuse && ((encoder) => reuse.flush(encoder)),
      predictReuse: reuse && (() => reuse.predict()),
    });
    await meta.close();
    await payload.close();
    return stats;
  } catch (e) {
    await meta.abort();
    await payload.abort();
    throw e;
  }
}
