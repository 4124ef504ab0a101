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
import type { Logger } from '../../mount/log.js';
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
const FILES = 48;
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

  /**
   * A tree written and closed in archive order: d/, d/f00 … d/f47 (~95 MiB), then e (a directory's contents come before its
   * sibling); `change(name)` is then written after its bytes were stored, without a close (they are stale now).
   * Sealed with the stored stream; returns how many files were placed and the .ppxar's chunk digests, after
   * checking that the archive decodes to what was staged.
   */
  async function stageAndSeal(id: string, change: string): Promise<{ placed: number; digests: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'pbsfs-closed-stream-'));
    dirs.push(dir);
    const state = await StagingState.open(join(dir, 'state'));
    const spool = Spool.open(join(dir, 'spool'));
    const lines: string[] = [];
    const log: Logger = { info: (l) => lines.push(l), error: (l) => lines.push(l), close: async () => undefined };
    const writer = await SnapshotWriter.begin(store.ds, { ns: ROOT_NAMESPACE, type: 'host', id }, { codec: getCodec(), pool, cryptMode: 'none' });
    let stream!: ClosedFilesStream;
    const owner: TreeOwner = {
      ctx: { inodes: new InodeTable() } as MountContext, key: 'test', assertOpen: () => undefined, touch: () => undefined,
      opened: () => undefined, released: () => undefined, fileClosed: (i) => stream.closed(i),
    };
    const tree = StagedTree.create(owner, state, spool, false, 0o755);
    stream = new ClosedFilesStream(tree, 'x.pxar', writer, new BuzhashChunker(PXAR_CHUNK_AVG), log);
    try {
      tree.mkdir(ROOT_ID, 'd', 0o755);
      const d = tree.inode(ROOT_ID).children!.get('d')!;
      const contents = new Map<string, Uint8Array>();
      const ids = new Map<string, number>();
      const add = (parent: number, path: string, data: Uint8Array): void => {
        const i = tree.create(parent, path.split('/').at(-1)!, 0o644);
        tree.write(i.id, data, 0);
        owner.fileClosed(i.id);
        contents.set(path, data);
        ids.set(path, i.id);
      };
      for (let k = 0; k < FILES; k++) add(d, `d/f${String(k).padStart(2, '0')}`, prng(`stream-${k}`, [0, 17, 900 * 1024, 7 * MiB][k % 4]!));
      add(ROOT_ID, 'e', prng('stream-e', 2 * MiB));
      const ahead = await stream.finish();
      expect(ahead).toBeDefined();

      const changed = Buffer.from(contents.get(change)!);
      const at = Math.min(1000, changed.length - 1);
      changed[at] ^= 0xff;
      tree.write(ids.get(change)!, changed.subarray(at, at + 1), at);
      contents.set(change, changed);
      expect(ahead!.offsetOf(tree.inode(ids.get(change)!))).toBeUndefined();
      expect(ahead!.offsetOf(tree.inode(ids.get('d/f01')!))).toBeDefined();

      const meta = new MemorySink();
      const payload = await writer.openDynamicArchive('x.ppxar.didx', new BuzhashChunker(PXAR_CHUNK_AVG));
      const placer = new PayloadPlacer(ahead!.source, payload, { counted: true, rewriteInjected: true });
      const done = await encodeStagedTree(tree, ROOT_ID, meta, payload, { offsetOf: ahead!.offsetOf, placer });
      await payload.close();

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
      return { placed: done.placed, digests: index.digests.map((x) => Buffer.from(x).toString('hex')) };
    } finally {
      await writer.abort();
      spool.close();
      await state.close();
    }
  }

  it('the seal references files stored at their close, and reads a file written since from the spool', async () => {
    // e, last in archive order, changed: every file in d/ is placed.
    expect((await stageAndSeal('last', 'e')).placed).toBe(FILES);
  }, 60_000);

  it('a file changed between placed ones: files starting in a chunk injected already are written again, no chunk twice', async () => {
    const { placed, digests } = await stageAndSeal('middle', 'd/f37');
    // The files before d/f37 are placed; d/f37 is written afresh, and so is d/f38 behind it, which starts in the
    // chunk that holds the end of d/f36 (injected before d/f37); files starting in later chunks are placed again.
    expect(placed).toBeGreaterThanOrEqual(37 + 1);
    expect(placed).toBeLessThanOrEqual(FILES - 1);
    expect(new Set(digests).size).toBe(digests.length);
  }, 60_000);
});
