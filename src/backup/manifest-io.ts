// Loads a snapshot's `index.json.blob` and checks it; the one place that turns a snapshot dir into a manifest.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Codec } from '../codec/codec.js';
import type { Datastore } from '../datastore/datastore.js';
import { lockSnapshot } from '../datastore/locks.js';
import { decodeBlob, encodeBlob } from '../format/blob.js';
import type { CryptConfig } from '../format/crypt-config.js';
import { type BackupManifest, encodeManifest, parseManifest, verifyManifest } from '../format/manifest.js';
import { PbsError, withPath } from '../errors.js';
import type { SnapshotRef } from '../types.js';

export const MANIFEST_BLOB_NAME = 'index.json.blob';

export async function readManifestBlob(ds: Datastore, ref: SnapshotRef): Promise<Uint8Array> {
  const path = join(ds.snapshotPath(ref), MANIFEST_BLOB_NAME);
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PbsError('ENOENT', 'snapshot does not exist or is unfinished (no manifest)', { path });
    }
    throw withPath(e, path);
  }
}

/** Reads, decodes and parses the manifest; with `crypt` also verifies its signature and key fingerprint. */
export async function loadManifest(ds: Datastore, ref: SnapshotRef, opts: { codec: Codec; crypt?: CryptConfig }): Promise<BackupManifest> {
  const path = join(ds.snapshotPath(ref), MANIFEST_BLOB_NAME);
  const json = decodeBlob(opts.codec, await readManifestBlob(ds, ref), { path });
  const manifest = parseManifest(json, path);
  if (opts.crypt) verifyManifest(manifest, opts.crypt);
  if (manifest['backup-type'] !== ref.type || manifest['backup-id'] !== ref.id || manifest['backup-time'] !== ref.time) {
    throw new PbsError('ECORRUPT', 'manifest names another snapshot than its directory', { path });
  }
  return manifest;
}

/** Rewrites the manifest's unprotected part (notes, verify state); the signed part is left as it is. */
export async function updateManifestUnprotected(
  ds: Datastore,
  ref: SnapshotRef,
  codec: Codec,
  update: (unprotected: Record<string, unknown>) => void,
): Promise<void> {
  const lock = await lockSnapshot(ds, ref, 'exclusive', 'manifest update');
  try {
    const manifest = await loadManifest(ds, ref, { codec });
    update(manifest.unprotected);
    const path = join(ds.snapshotPath(ref), MANIFEST_BLOB_NAME);
    const tmp = `${path}.tmp`;
    await writeFile(tmp, encodeBlob(codec, encodeManifest(manifest), { compress: true }));
    await rename(tmp, path);
  } finally {
    lock.release();
  }
}
