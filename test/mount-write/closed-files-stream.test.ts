// ClosedFilesStream and the seal's placing, without FUSE: files closed in archive order are stored once and
// referenced by the seal (the .ppxar injects their chunks); a file written after its payload was
// stored is read from the spool instead (its stored bytes are stale); the archive decodes to the staged contents.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PayloadPlacer } from '../../src/backup/payload-placer.js';
import { PXAR_CHUNK_AVG } from '../../src/backup/pxar-backup.js';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { BuzhashChunker } from '../../src/chunker/buzhash.js';
import { getCodec } from '../../src/codec/index.js';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { ROOT_NAMESPACE } from '../../src/datastore/names.js';
import { localChunkReader } from '../../src/io/chunk-reader.js';
import { IndexReadAt } from '../../src/io/index-read-at.js';
import { openIndex } from '../../src/io/index-reader.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { InodeTable } from '../../mount/node.js';
import type { MountContext } from '../../mount/stores.js';
import { ClosedFilesStream } from '../../mount/write/closed-files-stream.js';
import { encodeStagedTree } from '../../mount/write/pxar-seal.js';
import { Spool } from '../../mount/write/spool.js';
import { ROOT_ID, StagedTree, type TreeOwner } from '../../mount/write/staged-tree.js';
import { StagingState } from '../../mount/write/staging-state.js';
import { prng } from '../helpers/images.js';
import { tempStore } from '../datastore/fixtures.js';
import { MemorySink } from '../pxar/tree.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('ClosedFilesStream', () => {
  let store: Awaited<ReturnType<typeof tempStore>>;
  const pool = new WorkerPool({ size: 1 });
  const dirs: string[] = [];

  beforeAll(async () => {
    store = await tempStore('pbsfs-closed-stream-');
  });

  afterAll(async () => {
    await pool.close();
    store?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the seal references files stored at their close, and reads a file written since from the spool', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pbsfs-closed-stream-'));
    dirs.push(dir);
    const state = await StagingState.open(join(dir, 'state'));
    const spool = Spool.open(join(dir, 'spool'));
    const log = { lines: [] as string[], info: (m: string) => log.lines.push(m), error: (m: string) => log.lines.push(m) };
    const writer = await SnapshotWriter.begin(store.ds, { ns: ROOT_NAMESPACE, type: 'host', id: 'x' }, { codec: getCodec(), pool, cryptMode: 'none' });
    let stream!: ClosedFilesStream;
    const owner: TreeOwner = {
      ctx: { inodes: new InodeTable() } as MountContext, key: 'test', assertOpen: () => undefined, touch: () => undefined,
      opened: () => undefined, released: () => undefined, fileClosed: (id) => stream.closed(id),
    };
    const tree = StagedTree.create(owner, state, spool, false, 0o755);
    stream = new ClosedFilesStream(tree, 'x.pxar', writer, new BuzhashChunker(PXAR_CHUNK_AVG), log);

    // Written and closed in archive order: d/, d/a … d/h, then e (a directory's contents come before its sibling).
    tree.mkdir(ROOT_ID, 'd', 0o755);
    const d = tree.inode(ROOT_ID).children!.get('d')!;
    const contents = new Map<string, Uint8Array>();
    const ids = new Map<string, number>();
    for (const [k, name] of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].entries()) {
      const data = prng(`stream-${name}`, [0, 17, 900 * 1024, 3 * MiB][k % 4]!);
      const i = tree.create(d, name, 0o644);
      tree.write(i.id, data, 0);
      owner.fileClosed(i.id);
      contents.set(`d/${name}`, data);
      ids.set(`d/${name}`, i.id);
    }
    const e = tree.create(ROOT_ID, 'e', 0o600);
    tree.write(e.id, prng('stream-e', 2 * MiB), 0);
    owner.fileClosed(e.id);
    contents.set('e', prng('stream-e', 2 * MiB));
    const ahead = await stream.finish();
    expect(ahead).toBeDefined();

    // e (last in archive order) is written after its bytes were stored, and not closed again: those bytes are stale.
    const changed = Buffer.from(contents.get('e')!);
    changed.write('written after close', 1000);
    tree.write(e.id, changed.subarray(1000, 1019), 1000);
    contents.set('e', changed);
    expect(ahead!.offsetOf(tree.inode(e.id))).toBeUndefined();
    expect(ahead!.offsetOf(tree.inode(ids.get('d/b')!))).toBeDefined();

    const meta = new MemorySink();
    const payload = await writer.openDynamicArchive('x.ppxar.didx', new BuzhashChunker(PXAR_CHUNK_AVG));
    const placer = new PayloadPlacer(ahead!.source, payload, true);
    const done = await encodeStagedTree(tree, ROOT_ID, meta, payload, { offsetOf: ahead!.offsetOf, placer });
    await payload.close();
    expect(done.placed).toBe(8); // all nine files but e

    const index = await openIndex(join(writer.dir, 'x.ppxar.didx'));
    const reader = localChunkReader(store.ds.path, pool);
    const decoder = await PxarDecoder.open((async function* () { yield meta.bytes(); })(), { payload: new IndexReadAt(index, reader) });
    const seen = new Map<string, string>();
    for (let entry = await decoder.next(); entry; entry = await decoder.next()) {
      if (entry.kind !== 'file') continue;
      const parts: Uint8Array[] = [];
      for await (const piece of decoder.contents()) parts.push(Uint8Array.from(piece));
      seen.set(Buffer.from(entry.path).toString().slice(1), sha(Buffer.concat(parts)));
    }
    expect(seen).toEqual(new Map([...contents].map(([p, b]) => [p, sha(b)])));
    await writer.abort();
    spool.close();
    await state.close();
  }, 60_000);
});
