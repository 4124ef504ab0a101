// One directory-tree view of a snapshot's file archive for `catalog dump` and `catalog shell`: the catalog
// (legacy snapshots, spec §9) or the archive itself through the accessor (split snapshots, where the .mpxar
// serves as catalog).
import type { Datastore } from '../datastore/datastore.js';
import { PbsError } from '../errors.js';
import { type CatalogEntry, type CatalogEntryType, CatalogReader } from '../format/catalog.js';
import type { AccessorEntry, PxarAccessor } from '../pxar/accessor.js';
import { fileType } from '../pxar/format.js';
import { type SnapshotPxar, openAccessor, openSnapshotPxar } from '../backup/pxar-restore.js';
import { CATALOG_FILE_NAME } from '../backup/pxar-backup.js';
import { type RestoreOptions, checkIndexAgainstManifest, chunkReaderFor, openArchive } from '../backup/restore.js';
import { IndexReadAt } from '../io/index-read-at.js';
import { openIndex } from '../io/index-reader.js';
import type { SnapshotRef } from '../types.js';

export interface BrowserEntry {
  name: Uint8Array;
  type: CatalogEntryType;
  size?: number;
  mtime?: number;
}

/** Lists directories of one archive by path (`/` = the archive root; components are raw name bytes). */
export interface TreeBrowser {
  list(path: readonly Uint8Array[]): Promise<BrowserEntry[]>;
}

const S_IFMT_TO_TYPE: Record<number, CatalogEntryType> = {
  0o040000: 'd', 0o100000: 'f', 0o120000: 'l', 0o060000: 'b', 0o020000: 'c', 0o010000: 'p', 0o140000: 's',
};

/** The catalog's directory `root.pxar.didx` (legacy) as a browser. */
export class CatalogBrowser implements TreeBrowser {
  constructor(private readonly reader: CatalogReader, private readonly archiveDir: CatalogEntry) {}

  async list(path: readonly Uint8Array[]): Promise<BrowserEntry[]> {
    let dir = this.archiveDir;
    for (const part of path) {
      const next = (await this.reader.readDir(dir)).find((e) => Buffer.compare(e.name, part) === 0);
      if (!next || next.type !== 'd') throw new PbsError('ENOENT', `not a directory: /${path.map((p) => Buffer.from(p).toString()).join('/')}`);
      dir = next;
    }
    return this.reader.readDir(dir);
  }
}

/** A split archive's .mpxar through the accessor. */
export class AccessorBrowser implements TreeBrowser {
  constructor(private readonly accessor: PxarAccessor) {}

  async list(path: readonly Uint8Array[]): Promise<BrowserEntry[]> {
    const found = path.length === 0 ? (await this.accessor.root()).entry : await this.accessor.lookup(joinComponents(path));
    if (!found || found.entry.kind !== 'dir') throw new PbsError('ENOENT', 'not a directory');
    const out: BrowserEntry[] = [];
    for await (const child of this.accessor.readDir(await this.accessor.openDirectory(found), { order: 'archive' })) out.push(toBrowserEntry(child));
    return out.sort((a, b) => Buffer.compare(a.name, b.name));
  }
}

export function joinComponents(path: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(path.flatMap((p, i) => (i ? [SLASH, p] : [p])));
}

const SLASH = Uint8Array.of(0x2f);

function toBrowserEntry(a: AccessorEntry): BrowserEntry {
  const e = a.entry;
  const name = e.path.subarray(e.path.lastIndexOf(0x2f) + 1);
  if (e.kind === 'hardlink') return { name, type: 'h' };
  const type = S_IFMT_TO_TYPE[fileType(e.metadata.stat.mode)] ?? 'f';
  return type === 'f' ? { name, type, size: e.size, mtime: e.metadata.stat.mtime.secs } : { name, type };
}

export interface OpenedTree {
  archive: SnapshotPxar;
  accessor: PxarAccessor;
  browser: TreeBrowser;
}

/** Opens archive `name` (e.g. `root.pxar`) of a snapshot for browsing: catalog when there is one, else the .mpxar. */
export async function openTree(ds: Datastore, ref: SnapshotRef, name: string, opts: RestoreOptions): Promise<OpenedTree> {
  const archive = await openSnapshotPxar(ds, ref, name, opts);
  const accessor = await openAccessor(archive);
  if (archive.fileName.endsWith('.mpxar.didx')) return { archive, accessor, browser: new AccessorBrowser(accessor) };
  const catalog = await openCatalog(ds, ref, opts);
  const dir = (await catalog.readDir(catalog.root())).find((e) => e.type === 'd' && Buffer.from(e.name).toString() === archive.fileName);
  // A catalog without this archive (not written by a PBS-style client): browse the archive itself.
  return { archive, accessor, browser: dir ? new CatalogBrowser(catalog, dir) : new AccessorBrowser(accessor) };
}

export async function openCatalog(ds: Datastore, ref: SnapshotRef, opts: RestoreOptions): Promise<CatalogReader> {
  const opened = await openArchive(ds, ref, CATALOG_FILE_NAME, opts);
  const index = await openIndex(opened.path);
  checkIndexAgainstManifest(index, opened.file, opts.codec, opened.path);
  return CatalogReader.open(new IndexReadAt(index, chunkReaderFor(ds, opts), { path: opened.path }));
}
