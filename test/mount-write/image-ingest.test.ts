// ImageIngest's error reporting: a chunk store that fails while close() waits for it reaches the writer.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { getCodec } from '../../src/codec/index.js';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { PbsError } from '../../src/errors.js';
import { ROOT_NAMESPACE } from '../../src/datastore/names.js';
import { ImageIngest } from '../../mount/write/image-ingest.js';
import { tempStore } from '../datastore/fixtures.js';

const MiB = 1024 * 1024;

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
      // The chunk store fails the way a full file system does, but only after flush() has started waiting.
      let started!: () => void;
      const storing = new Promise<void>((res) => (started = res));
      writer.chunks.add = async () => {
        started();
        await new Promise((res) => setTimeout(res, 50));
        throw new PbsError('ENOSPC', 'no space left on device');
      };
      const ingest = new ImageIngest(writer, 'disk.img.fidx', store.ds.chunks, 4);
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
});
