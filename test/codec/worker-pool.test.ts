import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { PbsError } from '../../src/errors.js';
import { encodeBlob } from '../../src/format/blob.js';
import { getCodec } from '../../src/codec/index.js';
import { WorkerPool, defaultPoolSize, workerScriptUrl } from '../../src/codec/worker-pool.js';
import type { TaskName } from '../../src/codec/worker-tasks.js';
import { digestToHex } from '../../src/types.js';
import { hex, pseudoRandom } from './helpers.js';

const codec = getCodec();
const root = fileURLToPath(new URL('../..', import.meta.url));
const crashingWorker = new URL('./fixtures/crashing-worker.mjs', import.meta.url);
const pools: WorkerPool[] = [];

function pool(opts: ConstructorParameters<typeof WorkerPool>[0]): WorkerPool {
  const p = new WorkerPool(opts);
  pools.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function rejection(p: Promise<unknown>): Promise<PbsError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PbsError);
  return e as PbsError;
}

const key = pseudoRandom(32, 77);
const idKey = codec.pbkdf2Sha256(key, new TextEncoder().encode('_id_key'), 10, 32);

describe.each([2, 0])('WorkerPool with %i workers', (size) => {
  it('computes correct results with many tasks in flight', async () => {
    const p = pool({ size });
    const inputs = Array.from({ length: 24 }, (_, i) => pseudoRandom(50_000 + i * 1000, i + 1));
    const window: Promise<void>[] = [];
    for (const data of inputs) {
      const want = hex(codec.sha256(data));
      window.push(p.run('sha256', { data }).then((r) => expect(hex(r.digest)).toBe(want)));
      if (window.length >= p.capacity) await window.shift();
    }
    await Promise.all(window);
  });

  it('round-trips chunks through encodeChunk and decodeChunk, plain and encrypted', async () => {
    const p = pool({ size });
    const data = pseudoRandom(300_000, 9, 4);
    const plainDigest = codec.sha256(data);
    const encDigest = codec.sha256Parts([data, idKey]);
    const [plain, enc] = await Promise.all([
      p.run('encodeChunk', { data: data.slice(), compress: true }),
      p.run('encodeChunk', { data: data.slice(), compress: true, cryptKey: key }),
    ]);
    expect(plain.blob.length).toBeLessThan(data.length);
    const outs = await Promise.all([
      p.run('decodeChunk', { blob: plain.blob, expectedDigest: plainDigest, maxSize: 4 << 20 }),
      // id_key given for a plain chunk is ignored: its digest is SHA-256(data) (spec §2).
      p.run('decodeChunk', { blob: plain.blob, expectedDigest: plainDigest, digestKey: idKey, cryptKey: key, maxSize: 4 << 20 }),
      p.run('decodeChunk', { blob: enc.blob, cryptKey: key, expectedDigest: encDigest, digestKey: idKey, maxSize: 4 << 20 }),
    ]);
    for (const o of outs) expect(hex(o.data)).toBe(hex(data));
  });

  it('errors arrive as PbsError with code, digest and message intact', async () => {
    const p = pool({ size });
    const data = pseudoRandom(10_000, 3);
    const blob = encodeBlob(codec, data, { compress: true });
    const wrong = codec.sha256(Uint8Array.of(1));
    const e1 = await rejection(p.run('decodeChunk', { blob, expectedDigest: wrong, maxSize: 1 << 20 }));
    expect(e1.code).toBe('ECORRUPT');
    expect(e1.digest).toBe(digestToHex(wrong));
    expect(e1.message).toContain(hex(codec.sha256(data)));
    expect(e1.message.match(/chunk [0-9a-f]{64}/g)).toHaveLength(1); // context named once, not twice

    const enc = encodeBlob(codec, data, { compress: false, cryptKey: key });
    expect((await rejection(p.run('decodeChunk', { blob: enc, maxSize: 1 << 20 }))).code).toBe('EACCES');
    const otherKey = key.map((b) => b ^ 1);
    expect((await rejection(p.run('decodeChunk', { blob: enc, cryptKey: otherKey, maxSize: 1 << 20 }))).code).toBe('EACCES');
    const noId = await rejection(p.run('decodeChunk', { blob: enc, cryptKey: key, expectedDigest: wrong, maxSize: 1 << 20 }));
    expect(noId.code).toBe('EINVAL');

    const flipped = blob.slice();
    flipped[20] ^= 1;
    const crc = await rejection(p.run('decodeChunk', { blob: flipped, expectedDigest: wrong, maxSize: 1 << 20 }));
    expect([crc.code, crc.offset, crc.digest]).toEqual(['ECORRUPT', 8, digestToHex(wrong)]);
    expect((await rejection(p.run('decodeChunk', { blob, maxSize: 100 }))).code).toBe('ETOOBIG');
    expect((await rejection(p.run('nope' as TaskName, { data } as never))).code).toBe('EINVAL');
    // The pool still works after errors.
    expect(hex((await p.run('sha256', { data })).digest)).toBe(hex(codec.sha256(data)));
  });

  it('refuses tasks after close()', async () => {
    const p = pool({ size });
    await p.run('sha256', { data: Uint8Array.of(1) });
    await p.close();
    expect((await rejection(p.run('sha256', { data: Uint8Array.of(1) }))).code).toBe('EINVAL');
  });
});

describe('WorkerPool threads', () => {
  it('moves transferred buffers instead of copying them', async () => {
    const p = pool({ size: 1 });
    const data = pseudoRandom(1 << 20, 4);
    const want = hex(codec.sha256(data));
    const r = await p.run('sha256', { data }, [data.buffer]);
    expect(data.byteLength).toBe(0); // detached here
    expect(hex(r.digest)).toBe(want);
    const { blob } = await p.run('encodeChunk', { data: pseudoRandom(1000, 1), compress: false });
    expect(blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength).toBe(true);
  });

  it('refuses a transfer list with an already moved buffer instead of hanging', async () => {
    const p = pool({ size: 1 });
    const key = new Uint8Array(32).fill(3);
    const first = new Uint8Array(16);
    await p.run('digestChunk', { data: first, digestKey: key }, [first.buffer, key.buffer]);
    const second = new Uint8Array(16);
    const err = await rejection(p.run('digestChunk', { data: second, digestKey: key }, [second.buffer, key.buffer]));
    expect(err.code).toBe('EINVAL');
    expect(err.message).toMatch(/already moved/);
    const r = await p.run('digestChunk', { data: new Uint8Array(16) }); // the pool still works
    expect(hex(r.digest)).toBe(hex(codec.sha256(new Uint8Array(16))));
  });

  it('bounds its queue: past maxQueue waiting tasks run() rejects with EBUSY', async () => {
    const p = pool({ size: 1, maxQueue: 1 });
    const data = pseudoRandom(4 << 20, 2);
    const first = p.run('sha256', { data }); // runs
    const second = p.run('sha256', { data }); // waits
    const third = await rejection(p.run('sha256', { data }));
    expect(third.code).toBe('EBUSY');
    await Promise.all([first, second]);
    await p.run('sha256', { data });
  });

  it('a crashed worker rejects its task with a clear error and is replaced', async () => {
    const p = pool({ size: 1, workerUrl: crashingWorker });
    const data = Uint8Array.of(1, 2, 3);
    expect(hex((await p.run('sha256', { data })).digest)).toBe(hex(codec.sha256(data)));
    const exit = await rejection(p.run('crash' as TaskName, { data } as never));
    expect(exit.code).toBe('EIO');
    expect(exit.message).toMatch(/crashed while running crash: exit code 7/);
    const thrown = await rejection(p.run('throw' as TaskName, { data } as never));
    expect(thrown.message).toMatch(/crashed while running throw: boom in worker/);
    expect(hex((await p.run('sha256', { data })).digest)).toBe(hex(codec.sha256(data)));
  });

  it('a worker that cannot start fails the waiting tasks instead of respawning forever', async () => {
    const p = pool({ size: 2, workerUrl: new URL('./fixtures/no-such-worker.mjs', import.meta.url) });
    const e = await rejection(p.run('sha256', { data: Uint8Array.of(1) }));
    expect(e.code).toBe('EIO');
    expect(e.message).toMatch(/failed to start/);
  });

  it('neither close() nor a forgotten idle pool keeps the process alive, a pending task does', async () => {
    const script = (closeIt: boolean): string => `
      import { WorkerPool } from './dist/src/codec/worker-pool.js';
      const p = new WorkerPool({ size: 2 });
      const r = await p.run('sha256', { data: new Uint8Array(1 << 20) });
      console.log(Buffer.from(r.digest).toString('hex').slice(0, 8));
      ${closeIt ? 'await p.close();' : ''}`;
    for (const closeIt of [true, false]) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script(closeIt)], { cwd: root, timeout: 20_000 });
      expect(stdout.trim()).toBe(hex(codec.sha256(new Uint8Array(1 << 20))).slice(0, 8));
    }
  });
});

describe('pool configuration', () => {
  it('PBSFS_WORKERS sets the default size; 0 means inline', () => {
    const saved = process.env.PBSFS_WORKERS;
    try {
      process.env.PBSFS_WORKERS = '0';
      expect(new WorkerPool().size).toBe(0);
      process.env.PBSFS_WORKERS = '3';
      expect(defaultPoolSize()).toBe(3);
      process.env.PBSFS_WORKERS = 'many';
      expect(() => defaultPoolSize()).toThrow(PbsError);
    } finally {
      if (saved === undefined) delete process.env.PBSFS_WORKERS;
      else process.env.PBSFS_WORKERS = saved;
    }
  });

  it('maps the TypeScript source location to the compiled worker under dist/', () => {
    expect(workerScriptUrl('file:///r/src/codec/worker-pool.ts').href).toBe('file:///r/dist/src/codec/worker.js');
    expect(workerScriptUrl('file:///r/dist/src/codec/worker-pool.js').href).toBe('file:///r/dist/src/codec/worker.js');
  });
});
