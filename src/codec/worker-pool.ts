// A pool of codec worker threads (worker.ts) with a bounded queue; PBSFS_WORKERS=0 runs tasks inline.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PbsError } from '../errors.js';
import type { Codec } from './codec.js';
import { getCodec } from './index.js';
import { fromWireError, type WorkerMessage } from './worker-protocol.js';
import { runTask, type TaskArgs, type TaskName, type TaskResult } from './worker-tasks.js';

/**
 * The compiled worker script. From dist/ it sits beside this module; from the TypeScript sources
 * (vitest) `<root>/src/codec/worker-pool.ts` maps to `<root>/dist/src/codec/worker.js`, which the
 * test setup builds, because a Worker needs JavaScript.
 */
export function workerScriptUrl(moduleUrl: string = import.meta.url): URL {
  return new URL(moduleUrl.endsWith('.js') ? './worker.js' : '../../dist/src/codec/worker.js', moduleUrl);
}

/**
 * PBSFS_WORKERS when set (0 = inline), else one worker per available CPU, or one fewer (at least one) with
 * `mainThreadBusy`: when the calling thread itself has a core's worth of work (decoding and writing a file tree),
 * a worker per core only adds contention and ~50 MiB of RSS each.
 */
export function defaultPoolSize(mainThreadBusy = false): number {
  const env = process.env.PBSFS_WORKERS;
  if (env === undefined || env === '') return mainThreadBusy ? Math.max(1, availableParallelism() - 1) : availableParallelism();
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0) throw new PbsError('EINVAL', `PBSFS_WORKERS must be an integer >= 0, got ${JSON.stringify(env)}`);
  return n;
}

export interface WorkerPoolOptions {
  /** Worker threads; 0 runs every task inline on the calling thread. Default: defaultPoolSize(). */
  size?: number;
  /** Tasks that may wait for a free worker before run() refuses with EBUSY. Default: 16 per worker. */
  maxQueue?: number;
  /** Codec for inline mode; workers choose theirs with getCodec() (PBSFS_CODEC applies). */
  codec?: Codec;
  /** Worker script speaking worker-protocol.ts; default workerScriptUrl(). */
  workerUrl?: URL;
}

interface Job {
  id: number;
  task: TaskName;
  args: unknown;
  transfer: readonly ArrayBuffer[];
  resolve(result: unknown): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
  error?: unknown;
}

export class WorkerPool {
  readonly size: number;
  /** How many tasks a caller should keep in flight to keep every worker busy (one running, one waiting). */
  readonly capacity: number;
  private readonly maxQueue: number;
  private readonly url: URL;
  private inlineCodec?: Codec;
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private readonly running = new Set<Promise<unknown>>();
  private nextId = 1;
  private closed = false;
  private closing?: Promise<void>;

  constructor(opts: WorkerPoolOptions = {}) {
    this.size = opts.size ?? defaultPoolSize();
    if (!Number.isSafeInteger(this.size) || this.size < 0) throw new PbsError('EINVAL', `worker pool size must be an integer >= 0, got ${this.size}`);
    this.capacity = Math.max(1, this.size * 2);
    this.maxQueue = opts.maxQueue ?? this.size * 16;
    this.inlineCodec = opts.codec;
    this.url = opts.workerUrl ?? workerScriptUrl();
  }

  /**
   * Runs a task on a worker. Buffers in `transfer` are moved to the worker (detached here), not copied;
   * results come back the same way. Inline (size 0) the task runs at once and nothing is detached.
   * Callers keep at most `capacity` tasks in flight: past `maxQueue` waiting tasks, run() rejects
   * with EBUSY rather than buffer without bound.
   */
  run<K extends TaskName>(task: K, args: TaskArgs<K>, transfer: readonly ArrayBuffer[] = []): Promise<TaskResult<K>> {
    if (this.closed) return Promise.reject(new PbsError('EINVAL', 'worker pool is closed'));
    if (this.size === 0) {
      try {
        return Promise.resolve(runTask((this.inlineCodec ??= getCodec()), task, args));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // postMessage silently drops a message whose transfer list holds a detached buffer, which would leave
    // the task pending for ever; refuse it here instead.
    const detached = transfer.find(isDetached);
    if (detached) return Promise.reject(new PbsError('EINVAL', `cannot send task ${task}: a buffer in its transfer list was already moved elsewhere`));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new PbsError('EBUSY', `worker pool queue is full (${this.queue.length} tasks waiting); keep at most ${this.capacity} tasks in flight`),
      );
    }
    const p = new Promise<TaskResult<K>>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, args, transfer, resolve: resolve as (r: unknown) => void, reject });
    });
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    this.pump();
    return p;
  }

  /** Rejects tasks still waiting, lets running ones finish, then stops every worker. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new PbsError('EIO', `worker pool closed before task ${job.task} ran`));
    await Promise.all(this.running);
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
    this.slots.clear();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = [...this.slots].find((s) => !s.job);
      if (!slot) {
        if (this.slots.size >= this.size) return;
        slot = this.spawn();
      }
      this.dispatch(slot, this.queue.shift()!);
    }
  }

  private dispatch(slot: Slot, job: Job): void {
    slot.job = job;
    slot.worker.ref(); // a pending task keeps the process alive; an idle worker does not
    try {
      slot.worker.postMessage({ id: job.id, task: job.task, args: job.args }, job.transfer);
    } catch (e) {
      this.finish(slot);
      job.reject(new PbsError('EINVAL', `cannot send task ${job.task} to a worker: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    }
  }

  private finish(slot: Slot): void {
    slot.job = undefined;
    slot.worker.unref();
  }

  private spawn(): Slot {
    // Node flags such as --input-type (valid only for the main script) would stop a worker from starting.
    const worker = new Worker(this.url, { execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')) });
    worker.unref();
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    worker.on('message', (msg: WorkerMessage) => {
      if ('ready' in msg) {
        slot.ready = true;
        return;
      }
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      this.finish(slot);
      if (msg.ok) job.resolve(msg.result);
      else job.reject(fromWireError(msg.error));
      this.pump();
    });
    worker.on('messageerror', (e) => {
      const job = slot.job;
      if (!job) return;
      this.finish(slot);
      job.reject(new PbsError('EIO', `codec worker result for ${job.task} could not be received: ${e.message}`, { cause: e }));
      this.pump();
    });
    worker.on('error', (e) => {
      slot.error = e;
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    return slot;
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot);
    if (this.closed) return;
    const why = slot.error === undefined ? `exit code ${code}` : slot.error instanceof Error ? slot.error.message : String(slot.error);
    if (!slot.ready) {
      // It never started: fail what waits instead of respawning in a loop; a later run() tries again.
      const err = new PbsError('EIO', `codec worker ${this.url.href} failed to start: ${why}`, { cause: slot.error });
      slot.job?.reject(err);
      for (const job of this.queue.splice(0)) job.reject(err);
      return;
    }
    slot.job?.reject(new PbsError('EIO', `codec worker crashed while running ${slot.job.task}: ${why}`, { cause: slot.error }));
    this.pump(); // spawns a replacement when tasks wait, never in a loop on its own
  }
}

function isDetached(buf: ArrayBuffer): boolean {
  if (buf.byteLength > 0) return false;
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}
