// The datastores a mount shows: configured ones (or those named with --store), re-read every second so
// maintenance-mode changes and new stores take effect without remounting.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Codec } from '../src/codec/codec.js';
import type { WorkerPool } from '../src/codec/worker-pool.js';
import { CONFIG_FILE, configDir, type DatastoreConfig, maintenanceType, readDatastoreConfigs } from '../src/datastore/config.js';
import { Datastore } from '../src/datastore/datastore.js';
import { PbsError } from '../src/errors.js';
import type { CryptConfig } from '../src/format/crypt-config.js';
import { type ChunkReader, localChunkReader } from '../src/io/chunk-reader.js';
import { PrefetchBudget } from '../src/io/index-read-at.js';
import type { Logger } from './log.js';
import type { SnapshotDirNode } from './snapshot-dir.js';
import { InodeTable } from './node.js';
import { discardInterruptedWrites } from './write/write-journal.js';
import { resumeStagingSnapshots } from './write/staging-recovery.js';

/**
 * Decoded chunks live in one arena per datastore: room for the cache, the read-ahead in flight (half a cache) and the
 * holes between them.
 */
const ARENA_PER_CACHE = 2;

export interface MountContext {
  codec: Codec;
  pool: WorkerPool;
  crypt?: CryptConfig;
  log: Logger;
  inodes: InodeTable;
  budget: PrefetchBudget;
  /** Chunks read ahead of a sequential reader. */
  readAhead: number;
  /** Decoded-chunk cache per datastore, bytes. */
  cacheBytes: number;
  /** Directory mtime for nodes that have no time of their own. */
  startedMs: number;
  /** Group directories take new snapshots (false: the whole mount is read-only). */
  writable?: boolean;
  /** rmdir of a finished, unprotected snapshot forgets it (else EPERM). */
  allowForget?: boolean;
  /** Staging snapshots seal themselves after this long with no change and nothing open (--seal-after). */
  sealAfterMs?: number;
}

export interface OpenStore {
  ds: Datastore;
  chunks: ChunkReader;
  /** Snapshot directory nodes by path, reused while the snapshot exists. */
  snapshots: Map<string, SnapshotDirNode>;
  /** Writes in progress through the mount, by group directory (one per group). */
  writers: Map<string, { name: string; finishing: Promise<void> }>;
  /** Backup-type directories made with mkdir that hold no group yet, by `<ns path>/<type>`. */
  newTypeDirs: Set<string>;
}

export class StoreSet {
  /** The parsed datastore.cfg and the file version (mtime, size, inode) it was read from. */
  private configs?: { version: string; list: Promise<DatastoreConfig[]>; parsed?: DatastoreConfig[] };
  /** Open stores by name; `opened` once the promise has resolved (for the synchronous check). */
  private readonly open = new Map<string, { path: string; store: Promise<OpenStore>; opened?: OpenStore }>();
  /** When datastore.cfg was last stat'ed (performance.now()). */
  private checkedAt = 0;

  constructor(
    readonly ctx: MountContext,
    /** Only these stores (all configured ones when empty). */
    private readonly only: readonly string[],
    private readonly dir: string = configDir(),
  ) {}

  /**
   * Re-read whenever the file changed: one stat per call (`datastore create` shows up at once), or with `maxAgeMs`
   * none when the last one is younger than that. The stat is synchronous: it can run before FUSE requests, and a
   * thread-pool round trip costs more than the few microseconds of the syscall.
   */
  private async list(maxAgeMs = 0): Promise<DatastoreConfig[]> {
    const all = await this.current(maxAgeMs).list;
    return this.only.length ? all.filter((c) => this.only.includes(c.name)) : all;
  }

  private current(maxAgeMs: number): NonNullable<StoreSet['configs']> {
    const now = performance.now();
    if (!this.configs || now - this.checkedAt >= maxAgeMs) {
      this.checkedAt = now;
      this.recheck();
    }
    return this.configs!;
  }

  private recheck(): void {
    let version = 'missing';
    try {
      const st = statSync(join(this.dir, CONFIG_FILE), { bigint: true, throwIfNoEntry: false });
      if (st) version = `${st.mtimeNs}:${st.size}:${st.ino}`;
    } catch {
      // An unreadable file counts as a missing one.
    }
    if (!this.configs || this.configs.version !== version) {
      const list = readDatastoreConfigs(this.dir);
      const configs: NonNullable<StoreSet['configs']> = { version, list };
      // A failed re-read keeps no stale promise around.
      list.then((parsed) => (configs.parsed = parsed), () => (this.configs = undefined));
      this.configs = configs;
    }
  }

  async names(): Promise<string[]> {
    return (await this.list()).map((c) => c.name).sort();
  }

  /**
   * get() without waiting, for the common case: true when the store is configured, not offline and open already
   * (the FUSE layer then answers in the same turn); false when get() has to tell (it may throw).
   */
  ready(name: string, maxAgeMs = 0): boolean {
    const all = this.current(maxAgeMs).parsed;
    if (!all || (this.only.length && !this.only.includes(name))) return false;
    const cfg = all.find((c) => c.name === name);
    if (!cfg || maintenanceType(cfg) === 'offline') return false;
    const entry = this.open.get(name);
    return entry?.opened !== undefined && entry.path === cfg.path;
  }

  /**
   * Checks that the store is configured and not offline, and opens it once per path. `maxAgeMs`: a config checked
   * that recently is trusted without a stat (the guard before every request inside a store uses it).
   */
  async get(name: string, maxAgeMs = 0): Promise<OpenStore> {
    const cfg = (await this.list(maxAgeMs)).find((c) => c.name === name);
    if (!cfg) throw new PbsError('ENOENT', `datastore '${name}' is not configured`, { path: join(this.dir, 'datastore.cfg') });
    if (maintenanceType(cfg) === 'offline') throw new PbsError('EIO', `datastore '${name}' is in maintenance mode offline`, { path: cfg.path });
    let entry = this.open.get(name);
    if (!entry || entry.path !== cfg.path) {
      const store = Datastore.open(cfg).then(async (ds) => {
        if (this.ctx.writable) await discardInterruptedWrites(ds, this.ctx.log);
        return ds;
      }).then(async (ds) => {
        const open: OpenStore = {
          ds,
          chunks: localChunkReader(ds.path, this.ctx.pool, { crypt: this.ctx.crypt, cacheBytes: this.ctx.cacheBytes, threadPoolDecode: true, arenaBytes: ARENA_PER_CACHE * this.ctx.cacheBytes }),
          snapshots: new Map<string, SnapshotDirNode>(),
          writers: new Map<string, { name: string; finishing: Promise<void> }>(),
          newTypeDirs: new Set<string>(),
        };
        if (this.ctx.writable) await resumeStagingSnapshots(this.ctx, open);
        return open;
      });
      const opening: { path: string; store: Promise<OpenStore>; opened?: OpenStore } = { path: cfg.path, store };
      store.then((open) => (opening.opened = open), () => this.open.delete(name));
      entry = opening;
      this.open.set(name, entry);
    }
    return entry.store;
  }
}

/**
 * Background decodes in flight: at least one reader's read-ahead, even with one codec worker (queued on it, they keep
 * it busy while the main thread answers; with a budget of 2, dd of an image was ~8 % slower).
 */
export function newContext(opts: Omit<MountContext, 'inodes' | 'budget' | 'startedMs'>): MountContext {
  return { ...opts, inodes: new InodeTable(), budget: new PrefetchBudget(Math.max(opts.readAhead, opts.pool.capacity)), startedMs: Date.now() };
}
