// Restore: one archive of a snapshot to a file, block device or stdout, through the shared read path.
import { createWriteStream } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { Codec } from '../codec/codec.js';
import type { WorkerPool } from '../codec/worker-pool.js';
import type { Datastore } from '../datastore/datastore.js';
import { PbsError, withPath } from '../errors.js';
import { decodeBlob } from '../format/blob.js';
import type { CryptConfig } from '../format/crypt-config.js';
import type { BackupManifest, ManifestFile } from '../format/manifest.js';
import { readArchiveRange } from '../io/archive-stream.js';
import { type ChunkReader, localChunkReader } from '../io/chunk-reader.js';
import { type IndexReader, openIndex } from '../io/index-reader.js';
import { digestToHex, type SnapshotRef } from '../types.js';
import { MANIFEST_BLOB_NAME, loadManifest, readManifestBlob } from './manifest-io.js';
import { isZero } from './zero-chunk.js';

/** Maps what a user types (`disk.img`, `qemu-server.conf`, `index.json`, or the stored name) to the stored file name. */
function isManifestName(name: string): boolean {
  return name === 'index.json' || name === MANIFEST_BLOB_NAME;
}

export function resolveArchiveName(manifest: BackupManifest | undefined, name: string): string {
  if (isManifestName(name)) return MANIFEST_BLOB_NAME;
  const files = manifest?.files.map((f) => f.filename) ?? [];
  const candidates = [name, `${name}.fidx`, `${name}.didx`, `${name}.blob`];
  const found = candidates.find((c) => files.includes(c));
  if (!found) {
    throw new PbsError('ENOENT', `archive '${name}' is not in this snapshot (it has: ${files.join(', ') || 'nothing'})`);
  }
  return found;
}

export interface RestoreOptions {
  codec: Codec;
  pool: WorkerPool;
  crypt?: CryptConfig;
  onProgress?: (bytes: number, total: number) => void;
}

export interface OpenedArchive {
  manifest: BackupManifest;
  file: ManifestFile;
  path: string;
}

/** Finds an archive in a snapshot and checks that the key situation allows reading it. */
export async function openArchive(ds: Datastore, ref: SnapshotRef, name: string, opts: RestoreOptions): Promise<OpenedArchive> {
  const manifest = await loadManifest(ds, ref, { codec: opts.codec, crypt: opts.crypt });
  const fileName = resolveArchiveName(manifest, name);
  const file = manifest.files.find((f) => f.filename === fileName)!;
  const path = join(ds.snapshotPath(ref), fileName);
  if (file['crypt-mode'] === 'encrypt' && !opts.crypt) {
    throw new PbsError('EACCES', `archive ${fileName} is encrypted; pass --keyfile`, { path });
  }
  return { manifest, file, path };
}

/** Checks an index against the manifest's size and csum (spec §3.3: never trust the header alone). */
export function checkIndexAgainstManifest(index: IndexReader, file: ManifestFile, codec: Codec, path: string): void {
  const csum = digestToHex(
    index.kind === 'fixed'
      ? codec.sha256Parts(index.digests)
      : codec.sha256Parts(Array.from({ length: index.chunkCount }, (_, i) => dynamicEntryBytes(index, i))),
  );
  if (index.size !== file.size || csum !== file.csum) {
    throw new PbsError('ECORRUPT', `index does not match the manifest (size ${index.size} vs ${file.size}, csum ${csum} vs ${file.csum})`, { path });
  }
}

function dynamicEntryBytes(index: IndexReader, i: number): Uint8Array {
  const slot = index.chunk(i);
  const out = new Uint8Array(40);
  new DataView(out.buffer).setBigUint64(0, BigInt(slot.end), true);
  out.set(slot.digest, 8);
  return out;
}

// A sequential restore reads each chunk once; a small cache only catches runs of the same chunk.
export function chunkReaderFor(ds: Datastore, opts: RestoreOptions, cacheBytes = 8 * 1024 * 1024): ChunkReader {
  return localChunkReader(ds.path, opts.pool, { crypt: opts.crypt, cacheBytes });
}

/**
 * Restores one archive. `target` is a path (regular file created or overwritten, block device written in
 * place) or '-' for stdout. Image archives become sparse files: all-zero chunks are skipped, not written.
 */
export async function restoreArchive(ds: Datastore, ref: SnapshotRef, name: string, target: string, opts: RestoreOptions): Promise<{ bytes: number; file: string }> {
  if (isManifestName(name)) {
    // The manifest is restored as JSON even without the key: it is never encrypted.
    const json = decodeBlob(opts.codec, await readManifestBlob(ds, ref), { path: join(ds.snapshotPath(ref), MANIFEST_BLOB_NAME) });
    await writeAll(target, [json]);
    return { bytes: json.byteLength, file: MANIFEST_BLOB_NAME };
  }
  const { file, path } = await openArchive(ds, ref, name, opts);
  if (file.filename.endsWith('.blob')) {
    const raw = await readFile(path).catch((e) => {
      throw withPath(e, path);
    });
    const csum = digestToHex(opts.codec.sha256(raw));
    if (raw.byteLength !== file.size || csum !== file.csum) throw new PbsError('ECORRUPT', 'blob does not match the manifest', { path });
    const data = decodeBlob(opts.codec, raw, { cryptKey: opts.crypt?.key, path });
    await writeAll(target, [data]);
    return { bytes: data.byteLength, file: file.filename };
  }
  const index = await openIndex(path);
  checkIndexAgainstManifest(index, file, opts.codec, path);
  const reader = chunkReaderFor(ds, opts);
  const bytes = await writeIndexed(target, index, reader, opts.onProgress);
  return { bytes, file: file.filename };
}

export async function writeIndexed(target: string, index: IndexReader, reader: ChunkReader, onProgress?: (b: number, t: number) => void): Promise<number> {
  let done = 0;
  const report = (n: number): void => {
    done += n;
    onProgress?.(done, index.size);
  };
  if (target === '-') {
    await pipeOut(process.stdout, readArchiveRange(reader, index, { readAhead: 8 }), report);
    return index.size;
  }
  const isBlockDev = await stat(target).then((s) => s.isBlockDevice(), () => false);
  let fh: FileHandle;
  try {
    fh = await open(target, isBlockDev ? 'r+' : 'w', 0o644);
  } catch (e) {
    throw withPath(e, target);
  }
  try {
    if (!isBlockDev) await fh.truncate(index.size);
    const writes: Promise<unknown>[] = [];
    for await (const { offset, data } of readArchiveRange(reader, index, { readAhead: 4 })) {
      // A fresh file is all zeros already; skipping zero chunks keeps it sparse.
      if (isBlockDev || !isZero(data)) {
        writes.push(fh.write(data, 0, data.byteLength, offset));
        if (writes.length >= 4) await writes.shift();
      }
      report(data.byteLength);
    }
    await Promise.all(writes);
  } finally {
    await fh.close();
  }
  return index.size;
}

async function pipeOut(out: Writable, source: AsyncIterable<{ data: Uint8Array }>, report: (n: number) => void): Promise<void> {
  for await (const { data } of source) {
    if (!out.write(data)) await new Promise<void>((resolve, reject) => {
      out.once('drain', resolve);
      out.once('error', reject);
    });
    report(data.byteLength);
  }
}

async function writeAll(target: string, parts: Uint8Array[]): Promise<void> {
  if (target === '-') {
    await pipeOut(process.stdout, (async function* () {
      for (const data of parts) yield { data };
    })(), () => undefined);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const ws = createWriteStream(target, { mode: 0o644 });
    ws.on('error', (e) => reject(withPath(e, target)));
    ws.on('finish', resolve);
    for (const p of parts) ws.write(p);
    ws.end();
  });
}
