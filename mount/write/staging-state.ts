// The persistent state of one staging snapshot in a LevelDB next to its spool: what it is (snapshot, name, kind),
// its finished image and blob archives, and every staged inode and directory entry. Changes are collected and
// written as one batch at most every FLUSH_MS (never one awaited write per FUSE operation); sealing and closing
// write what is left. After a crash the state holds every change older than FLUSH_MS.
import { Level } from 'level';
import { PbsError } from '../../src/errors.js';
import type { Timestamp } from '../../src/pxar/format.js';
import type { Extent } from './spool.js';

const FLUSH_MS = 100;

/** One staged filesystem object (names live in directory entries; hardlinks share an inode). */
export interface StagedInode {
  id: number;
  /** Full st_mode. */
  mode: number;
  uid: number;
  gid: number;
  mtime: Timestamp;
  rdev: number;
  /** setxattr order, as llistxattr would report it; undefined while there are none (most entries: saves memory). */
  xattrs?: Map<string, Uint8Array>;
  /** Symlinks. */
  target?: string;
  size: number;
  extents: Extent[];
  /** Regular files: every handle was released (a file cut off by a crash is dropped on resume). */
  complete: boolean;
  /** Names pointing here (runtime only; rebuilt from the entries). */
  nlink: number;
  /** Directories: name → inode id (runtime only; rebuilt from the entries). */
  children?: Map<string, number>;
  /** The parent directory, while the inode has exactly one name (runtime only): paths without a search. */
  parent?: number;
  /** That one name. */
  name?: string;
}

export interface StagingInfo {
  /** Snapshot directory parts. */
  ns: string[];
  type: string;
  id: string;
  time: number;
  /** The name it is listed under in its group. */
  name: string;
  /** `staging`: a directory of archives; `pxar`: one `NAME.pxar` directory directly in the group. */
  kind: 'staging' | 'pxar';
}

/** An archive finished before sealing (images on their last close): its manifest entry. */
export interface FinishedArchive {
  filename: string;
  size: number;
  csum: string;
}

interface InodeJson {
  mode: number;
  uid: number;
  gid: number;
  s: number;
  n: number;
  rdev: number;
  x: Array<[string, string]>;
  t?: string;
  size: number;
  e: Extent[];
  c: boolean;
}

function inodeToJson(i: StagedInode): string {
  const j: InodeJson = {
    mode: i.mode, uid: i.uid, gid: i.gid, s: i.mtime.secs, n: i.mtime.nanos, rdev: i.rdev,
    x: [...(i.xattrs ?? [])].map(([k, v]) => [k, Buffer.from(v).toString('base64')]), size: i.size, e: i.extents, c: i.complete,
  };
  if (i.target !== undefined) j.t = i.target;
  return JSON.stringify(j);
}

function inodeFromJson(id: number, s: string): StagedInode {
  const j = JSON.parse(s) as InodeJson;
  return {
    id, mode: j.mode, uid: j.uid, gid: j.gid, mtime: { secs: j.s, nanos: j.n }, rdev: j.rdev,
    xattrs: j.x.length ? new Map(j.x.map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])) : undefined, target: j.t, size: j.size,
    extents: j.e, complete: j.c, nlink: 0,
  };
}

const INFO = 'info';
const inodeKey = (id: number): string => `i:${id}`;
const entryKey = (parent: number, name: string): string => `e:${parent}/${name}`;
const archiveKey = (filename: string): string => `a:${filename}`;

export interface LoadedState {
  info: StagingInfo;
  inodes: Map<number, StagedInode>;
  entries: Array<{ parent: number; name: string; child: number }>;
  archives: FinishedArchive[];
}

export class StagingState {
  private pending = new Map<string, string | null>();
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  /** The first failed batch: reported by the next flush(). */
  private failed?: unknown;
  /** Runs before every batch: what the batch records must be on disk first (the spool's gathered bytes). */
  private beforeBatch?: () => void;

  private constructor(
    readonly path: string,
    private readonly db: Level<string, string>,
  ) {}

  static async open(path: string): Promise<StagingState> {
    // Only read back once, after a crash: no block cache worth its memory.
    const db = new Level<string, string>(path, { valueEncoding: 'utf8', cacheSize: 1024 * 1024 });
    try {
      await db.open();
    } catch (e) {
      throw new PbsError('EIO', `cannot open the staging state: ${(e as Error).message}`, { path, cause: e });
    }
    return new StagingState(path, db);
  }

  /** Written at once: the state is useless without it. */
  async writeInfo(info: StagingInfo): Promise<void> {
    await this.db.put(INFO, JSON.stringify(info), { sync: false });
  }

  /** `fn` runs before each batch is written; when it throws, this state fails like a failed batch. */
  setBeforeBatch(fn: () => void): void {
    this.beforeBatch = fn;
  }

  putInode(i: StagedInode): void {
    this.set(inodeKey(i.id), i);
  }

  deleteInode(id: number): void {
    this.set(inodeKey(id), null);
  }

  putEntry(parent: number, name: string, child: number): void {
    this.set(entryKey(parent, name), String(child));
  }

  deleteEntry(parent: number, name: string): void {
    this.set(entryKey(parent, name), null);
  }

  putArchive(a: FinishedArchive): void {
    this.set(archiveKey(a.filename), JSON.stringify(a));
  }

  /** Inodes are serialised when the batch is written, so repeated changes to one inode cost one record. */
  private readonly dirtyInodes = new Map<string, StagedInode>();

  private set(key: string, value: string | StagedInode | null): void {
    if (value !== null && typeof value === 'object') {
      this.dirtyInodes.set(key, value);
      this.pending.delete(key);
    } else {
      this.dirtyInodes.delete(key);
      this.pending.set(key, value);
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined);
    }, FLUSH_MS);
  }

  /** Writes every change so far; rejects when a batch failed. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    try {
      this.beforeBatch?.();
    } catch (e) {
      this.failed ??= e;
    }
    const ops: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }> = [];
    for (const [key, v] of this.pending) ops.push(v === null ? { type: 'del', key } : { type: 'put', key, value: v });
    for (const [key, i] of this.dirtyInodes) ops.push({ type: 'put', key, value: inodeToJson(i) });
    this.pending = new Map();
    this.dirtyInodes.clear();
    this.writing = this.writing.then(async () => {
      if (ops.length) await this.db.batch(ops).catch((e: unknown) => (this.failed ??= e));
      if (this.failed) throw new PbsError('EIO', `writing the staging state failed: ${(this.failed as Error).message}`, { path: this.path, cause: this.failed });
    });
    const done = this.writing;
    this.writing = done.catch(() => undefined);
    return done;
  }

  async load(): Promise<LoadedState> {
    const raw = await this.db.get(INFO);
    if (raw === undefined) throw new PbsError('ECORRUPT', 'staging state has no info record', { path: this.path });
    const info = JSON.parse(raw) as StagingInfo;
    const inodes = new Map<number, StagedInode>();
    const entries: LoadedState['entries'] = [];
    const archives: FinishedArchive[] = [];
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith('i:')) {
        const id = Number(key.slice(2));
        inodes.set(id, inodeFromJson(id, value));
      } else if (key.startsWith('e:')) {
        const slash = key.indexOf('/');
        entries.push({ parent: Number(key.slice(2, slash)), name: key.slice(slash + 1), child: Number(value) });
      } else if (key.startsWith('a:')) {
        archives.push(JSON.parse(value) as FinishedArchive);
      }
    }
    return { info, inodes, entries, archives };
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.db.close();
  }
}
