// File archives of a snapshot, read through the shared read path: a pxar v1 stream or a split .mpxar/.ppxar pair,
// for restore (sequential decoder) and browsing (random-access accessor).
import { join } from 'node:path';
import type { Datastore } from '../datastore/datastore.js';
import { PbsError } from '../errors.js';
import { MAX_CHUNK_SIZE } from '../format/blob.js';
import { type ExtractStats, extractArchive } from '../fs/extractor.js';
import { readArchiveRange } from '../io/archive-stream.js';
import { IndexReadAt } from '../io/index-read-at.js';
import type { ChunkReader } from '../io/chunk-reader.js';
import { type IndexReader, openIndex } from '../io/index-reader.js';
import { PxarAccessor } from '../pxar/accessor.js';
import { PxarDecoder } from '../pxar/decoder.js';
import type { SnapshotRef } from '../types.js';
import { type RestoreOptions, checkIndexAgainstManifest, chunkReaderFor, openArchive } from './restore.js';

/** Random access (accessor, split payloads) revisits chunks: the cache must hold a few of the largest (16 MiB). */
const RANDOM_ACCESS_CACHE = 3 * MAX_CHUNK_SIZE;
/** A restore reads the payload in order: the chunk in use and those decoded ahead of it (4 of 4 MiB on average). */
const SEQUENTIAL_CACHE = 32 * 1024 * 1024;

export interface SnapshotPxar {
  /** The archive name as stored: `root.pxar.didx` or `root.mpxar.didx`. */
  fileName: string;
  index: IndexReader;
  /** The `.ppxar.didx` of a split archive. */
  payload?: IndexReader;
  readAt: IndexReadAt;
  payloadReadAt?: IndexReadAt;
  /** The decoded-chunk reader (and cache) behind both. */
  reader: ChunkReader;
  payloadPath?: string;
}

/**
 * Opens `NAME.pxar` of a snapshot: `NAME.pxar.didx`, or the split pair `NAME.mpxar.didx` + `NAME.ppxar.didx`.
 * `cacheBytes` sizes the decoded-chunk cache behind `readAt`/`payloadReadAt` (default: room for random access).
 */
export async function openSnapshotPxar(ds: Datastore, ref: SnapshotRef, name: string, opts: RestoreOptions, cacheBytes = RANDOM_ACCESS_CACHE): Promise<SnapshotPxar> {
  const base = name.replace(/\.(pxar|mpxar|ppxar)(\.didx)?$/, '');
  const opened = await openArchive(ds, ref, `${base}.pxar`, opts).catch(async (e) => {
    if ((e as PbsError).code !== 'ENOENT') throw e;
    return openArchive(ds, ref, `${base}.mpxar`, opts);
  });
  const reader = chunkReaderFor(ds, opts, cacheBytes);
  const index = await openIndex(opened.path);
  checkIndexAgainstManifest(index, opened.file, opts.codec, opened.path);
  const readAt = new IndexReadAt(index, reader, { path: opened.path });
  if (!opened.file.filename.endsWith('.mpxar.didx')) return { fileName: opened.file.filename, index, readAt, reader };
  const payloadName = `${base}.ppxar.didx`;
  const file = opened.manifest.files.find((f) => f.filename === payloadName);
  if (!file) throw new PbsError('ECORRUPT', `split archive without its payload ${payloadName}`, { path: opened.path });
  const payloadPath = join(ds.snapshotPath(ref), payloadName);
  const payload = await openIndex(payloadPath);
  checkIndexAgainstManifest(payload, file, opts.codec, payloadPath);
  return { fileName: opened.file.filename, index, readAt, payload, payloadReadAt: new IndexReadAt(payload, reader, { path: payloadPath }), reader, payloadPath };
}

export async function openAccessor(archive: SnapshotPxar): Promise<PxarAccessor> {
  return PxarAccessor.open(archive.readAt, { payload: archive.payloadReadAt });
}

/** Restores a file archive (or the parts selected by `patterns`) into `target`. */
export async function restoreTree(
  ds: Datastore,
  ref: SnapshotRef,
  name: string,
  target: string,
  opts: RestoreOptions & { patterns?: readonly string[]; overwrite?: boolean; onWarning?: (m: string) => void },
): Promise<ExtractStats> {
  const archive = await openSnapshotPxar(ds, ref, name, opts, SEQUENTIAL_CACHE);
  const reader = chunkReaderFor(ds, opts);
  let done = 0;
  const stream = (async function* () {
    for await (const { data } of readArchiveRange(reader, archive.index, { readAhead: 4 })) {
      done += data.byteLength;
      opts.onProgress?.(done, archive.index.size);
      yield data;
    }
  })();
  // File contents are copied by the extractor (into its write batches): views save a copy per small file.
  const payload = archive.payload && new IndexReadAt(archive.payload, archive.reader, { path: archive.payloadPath, views: true });
  const decoder = await PxarDecoder.open(stream, { payload });
  return extractArchive(decoder, target, { patterns: opts.patterns, overwrite: opts.overwrite, onWarning: opts.onWarning });
}
