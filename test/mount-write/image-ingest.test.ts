// ImageIngest: a chunk store that fails before close() returns reaches the writer; a last chunk stored at a close
// is stored again when the image grows past it.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { getCodec } from '../../src/codec/index.js';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { localChunkReader } from '../../src/io/chunk-reader.js';
import { ROOT_NAMESPACE } from '../../src/datastore/names.js';
import { ImageIngest } from '../../mount/write/image-ingest.js';
import { tempStore } from '../datastore/fixtures.js';

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** Fixed index csum (spec §3.1) of `image` cut into 4 MiB chunks. */
function fixedCsum(image: Uint8Array): string {
  const digests = [];
  for (let at = 0; at < image.byteLength; at += 4 * MiB) digests.push(sha256(image.subarray(at, at + 4 * MiB)));
  return sha256(Buffer.concat(digests)).toString('hex');
}

function failingStores(writer: SnapshotWriter): Promise<void> {
  // The chunk store fails the way a full file system does, but only after the caller has started waiting.
  return new Promise<void>((started) => {
    writer.chunks.add = async () => {
      started();
      await new Promise((res) => setTimeout(res, 50));
      // As node:fs reports it.
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
    };
  });
}

describe('ImageIngest', () => {
  let store: Awaited<ReturnType<typeof tempStore>>;
  const pool = new WorkerPool({ size: 1 });

  beforeAll(async () => {
    store = await tempStore('pbsfs-ingest-');
  });

  afterAll(async () => {
    await pool.close();
    store?.cleanup();
  });

  it('flush reports a store that fails while it waits (close() of cp then fails with ENOSPC)', async () => {
    const writer = await SnapshotWriter.begin(store.ds, { ns: ROOT_NAMESPACE, type: 'vm', id: '1' }, { codec: getCodec(), pool, cryptMode: 'none' });
    try {
      const storing = failingStores(writer);
      const ingest = new ImageIngest(writer, 'disk.img.fidx', localChunkReader(store.ds.path, pool), 4);
      // One whole chunk: stored at once, in the background.
      await ingest.write(randomBytes(4 * MiB), 0);
      await storing;
      await expect(ingest.flush()).rejects.toMatchObject({ code: 'ENOSPC' });
      // And every later call reports it too.
      await expect(ingest.write(new Uint8Array(1), 0)).rejects.toMatchObject({ code: 'ENOSPC' });
      await ingest.discard();
    } finally {
      await writer.abort();
    }
  });

  it('close() stores the incomplete last chunk, so its failure fails the close too', async () => {
    const writer = await SnapshotWriter.begin(store.ds, { ns: ROOT_NAMESPACE, type: 'vm', id: '2' }, { codec: getCodec(), pool, cryptMode: 'none' });
    try {
      void failingStores(writer);
      const ingest = new ImageIngest(writer, 'disk.img.fidx', localChunkReader(store.ds.path, pool), 4);
      await ingest.write(randomBytes(MiB), 0);
      await expect(ingest.flush()).rejects.toMatchObject({ code: 'ENOSPC' });
      await ingest.discard();
    } finally {
      await writer.abort();
    }
  });

  it('a last chunk stored at a close is stored again at its new length when the image grows', async () => {
    const writer = await SnapshotWriter.begin(store.ds, { ns: ROOT_NAMESPACE, type: 'vm', id: '3' }, { codec: getCodec(), pool, cryptMode: 'none' });
    const ingest = new ImageIngest(writer, 'disk.img.fidx', localChunkReader(store.ds.path, pool), 4);
    const image = new Uint8Array(10 * MiB);
    const head = randomBytes(3 * MiB);
    image.set(head, 0);
    await ingest.write(head, 0);
    await ingest.flush(); // stores a 3 MiB chunk
    const tail = randomBytes(2 * MiB);
    image.set(tail, 8 * MiB);
    await ingest.write(tail, 8 * MiB); // 4..8 MiB is a hole; the first chunk is now 4 MiB with zeros after 3 MiB
    await ingest.flush();
    expect(Buffer.from(await ingest.read(0, 10 * MiB)).equals(image)).toBe(true);
    const closed = await ingest.finish();
    expect(closed.size).toBe(10 * MiB);
    expect(Buffer.from(closed.csum).toString('hex')).toBe(fixedCsum(image));
    await writer.abort();
  });
});
