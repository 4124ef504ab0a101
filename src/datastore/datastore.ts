// A datastore directory (spec §4 layout, §12 semantics): namespaces, groups with owner and notes,
// snapshots with their protected marker, and forget. Chunks live in `chunks` (chunk-store.ts).
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { PbsError, withPath } from '../errors.js';
import { BACKUP_TYPES, type BackupNamespace, type BackupType, type GroupRef, type SnapshotRef } from '../types.js';
import { CHUNK_DIR, ChunkStore } from './chunk-store.js';
import { maintenanceType, type DatastoreConfig } from './config.js';
import { lockGroup, lockSnapshot, STORE_LOCK_FILE } from './locks.js';
import {
  describeGroup,
  describeSnapshot,
  formatNamespace,
  formatSnapshotPath,
  groupRelPath,
  MAX_NAMESPACE_DEPTH,
  namespaceChild,
  namespaceFromComponents,
  namespaceParent,
  namespaceRelPath,
  parseBackupTime,
  parseBackupType,
  validateBackupId,
  validateStoreName,
} from './names.js';
import { checkBackupOwner, validateAuthId } from './owner.js';

export interface SnapshotInfo {
  ref: SnapshotRef;
  path: string;
  /** Has index.json.blob (spec §4: otherwise "unfinished"). */
  finished: boolean;
  protected: boolean;
}

export const MANIFEST_BLOB_NAME = 'index.json.blob';
export const PROTECTED_MARKER = '.protected';
export const OWNER_FILE = 'owner';
export const GROUP_NOTES_FILE = 'notes';
/** Files that belong to a snapshot (spec §4). */
export const SNAPSHOT_FILE_RE = /^.*\.([fd]idx|blob)$/;
const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** PBS group order: types ct < host < vm; numeric ids first, numerically; then the rest by text. */
const TYPE_ORDER: Record<BackupType, number> = { ct: 0, host: 1, vm: 2 };

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (e) {
    if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return false;
    throw withPath(e, path);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (e) {
    if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return false;
    throw withPath(e, path);
  }
}

/** Names of the subdirectories of `path`; [] when it does not exist. */
async function subdirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return [];
    throw withPath(e, path);
  }
}

async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp_${randomBytes(3).toString('hex')}`;
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw withPath(e, path);
  }
}

function compareIds(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? BigInt(a) : undefined;
  const nb = /^\d+$/.test(b) ? BigInt(b) : undefined;
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : 0;
  if (na !== undefined) return -1;
  if (nb !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Datastore {
  readonly name: string;
  readonly path: string;
  readonly chunks: ChunkStore;
  readonly config: DatastoreConfig;

  private constructor(cfg: DatastoreConfig) {
    this.name = cfg.name;
    this.path = cfg.path;
    this.config = cfg;
    this.chunks = new ChunkStore(cfg.path, { syncLevel: cfg.tuning?.['sync-level'] ?? 'filesystem' });
  }

  private static checkConfig(cfg: DatastoreConfig): void {
    validateStoreName(cfg.name);
    if (typeof cfg.path !== 'string' || !isAbsolute(cfg.path)) {
      throw new PbsError('EINVAL', `datastore '${cfg.name}': path ${JSON.stringify(cfg.path)} is not absolute`);
    }
  }

  /**
   * Makes the directory, `.chunks` with its 65536 prefix dirs and `.lock`. An empty directory, or one
   * left by an interrupted create (only `.chunks`/`.lock`), is accepted; anything else is refused.
   */
  static async create(cfg: DatastoreConfig): Promise<Datastore> {
    Datastore.checkConfig(cfg);
    let entries: string[] = [];
    try {
      entries = await readdir(cfg.path);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw withPath(e, cfg.path);
    }
    const leftovers = entries.filter((n) => n !== CHUNK_DIR && n !== STORE_LOCK_FILE);
    if (leftovers.length > 0) {
      const isStore = entries.includes(CHUNK_DIR) && entries.includes(STORE_LOCK_FILE);
      throw new PbsError(
        'EEXIST',
        isStore
          ? `datastore '${cfg.name}': ${cfg.path} already holds a datastore`
          : `datastore '${cfg.name}': ${cfg.path} is not empty and not a datastore (found ${JSON.stringify(leftovers[0])})`,
        { path: cfg.path },
      );
    }
    try {
      await mkdir(cfg.path, { recursive: true, mode: 0o750 });
    } catch (e) {
      throw withPath(e, cfg.path);
    }
    await ChunkStore.create(cfg.path);
    // .lock last: open() treats a store without it as incomplete
    const lockPath = join(cfg.path, STORE_LOCK_FILE);
    try {
      await writeFile(lockPath, '', { flag: 'a', mode: 0o644 });
    } catch (e) {
      throw withPath(e, lockPath);
    }
    return Datastore.open(cfg);
  }

  /** Checks the layout: ENOENT when the directory is missing, ECORRUPT when it is not a (complete) datastore. */
  static async open(cfg: DatastoreConfig): Promise<Datastore> {
    Datastore.checkConfig(cfg);
    if (!(await isDir(cfg.path))) throw new PbsError('ENOENT', `datastore '${cfg.name}': directory does not exist`, { path: cfg.path });
    const chunkDir = join(cfg.path, CHUNK_DIR);
    for (const dir of [chunkDir, join(chunkDir, '0000'), join(chunkDir, 'ffff')]) {
      if (!(await isDir(dir))) throw new PbsError('ECORRUPT', `datastore '${cfg.name}': not a datastore (missing directory)`, { path: dir });
    }
    const lockPath = join(cfg.path, STORE_LOCK_FILE);
    if (!(await isFile(lockPath))) throw new PbsError('ECORRUPT', `datastore '${cfg.name}': not a datastore (missing lock file)`, { path: lockPath });
    return new Datastore(cfg);
  }

  /**
   * Maintenance mode (features §2.10): `read-only` refuses writes, any other mode (`offline`, and
   * PBS's `unmount`/`delete`) refuses reads too. EPERM names the mode. Checked when an operation
   * starts; running ones finish.
   */
  checkMaintenance(op: 'read' | 'write'): void {
    const mode = maintenanceType(this.config);
    if (mode === undefined || (mode === 'read-only' && op === 'read')) return;
    throw new PbsError('EPERM', `datastore '${this.name}' is in maintenance mode (${mode}): ${op === 'read' ? 'reading' : 'writing'} is not allowed`, { path: this.path });
  }

  nsPath(ns: BackupNamespace): string {
    return join(this.path, namespaceRelPath(namespaceFromComponents(ns)));
  }

  groupPath(g: GroupRef): string {
    return join(this.path, groupRelPath(this.checkGroup(g)));
  }

  snapshotPath(s: SnapshotRef): string {
    return join(this.path, formatSnapshotPath(this.checkGroup(s)));
  }

  /** Re-validates refs built by hand, so no '..' or '/' ever reaches a path. */
  private checkGroup<T extends GroupRef>(g: T): T {
    namespaceFromComponents(g.ns);
    parseBackupType(g.type);
    validateBackupId(g.id);
    return g;
  }

  async namespaceExists(ns: BackupNamespace): Promise<boolean> {
    return ns.length === 0 || isDir(this.nsPath(ns));
  }

  private async requireNamespace(ns: BackupNamespace): Promise<void> {
    if (!(await this.namespaceExists(ns))) {
      throw new PbsError('ENOENT', `namespace '${formatNamespace(ns)}' does not exist in datastore '${this.name}'`, { path: this.nsPath(ns) });
    }
  }

  private async requireGroup(g: GroupRef): Promise<string> {
    const path = this.groupPath(g);
    if (!(await isDir(path))) throw new PbsError('ENOENT', `group ${describeGroup(g)} does not exist in datastore '${this.name}'`, { path });
    return path;
  }

  private async requireSnapshot(s: SnapshotRef): Promise<string> {
    const path = this.snapshotPath(s);
    if (!(await isDir(path))) throw new PbsError('ENOENT', `snapshot ${describeSnapshot(s)} does not exist in datastore '${this.name}'`, { path });
    return path;
  }

  /** `parent` itself, then its descendants depth-first (sorted), down to `maxDepth` levels below it. */
  async listNamespaces(parent: BackupNamespace, maxDepth: number = MAX_NAMESPACE_DEPTH): Promise<BackupNamespace[]> {
    if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) throw new PbsError('EINVAL', `namespace depth must be a non-negative integer, got ${String(maxDepth)}`);
    await this.requireNamespace(parent);
    const out: BackupNamespace[] = [];
    const walk = async (ns: BackupNamespace, depth: number): Promise<void> => {
      out.push(ns);
      if (depth >= maxDepth || ns.length >= MAX_NAMESPACE_DEPTH) return;
      const names = (await subdirs(join(this.nsPath(ns), 'ns'))).filter((n) => SAFE_ID.test(n)).sort();
      for (const name of names) {
        let child: BackupNamespace;
        try {
          child = namespaceChild(ns, name);
        } catch {
          continue; // a directory PBS would not accept as a namespace (too long): not listed
        }
        await walk(child, depth + 1);
      }
    };
    await walk(namespaceFromComponents(parent), 0);
    return out;
  }

  /** The parent must exist; EEXIST when the namespace does. */
  async createNamespace(ns: BackupNamespace): Promise<void> {
    const checked = namespaceFromComponents(ns);
    if (checked.length === 0) throw new PbsError('EINVAL', 'the root namespace always exists');
    const parent = namespaceParent(checked);
    await this.requireNamespace(parent);
    const nsDir = join(this.nsPath(parent), 'ns');
    const path = this.nsPath(checked);
    try {
      await mkdir(nsDir, { recursive: true, mode: 0o755 });
      await mkdir(path, { mode: 0o755 });
    } catch (e) {
      if (errCode(e) === 'EEXIST') throw new PbsError('EEXIST', `namespace '${formatNamespace(checked)}' already exists`, { path });
      throw withPath(e, path);
    }
  }

  /**
   * Removes a namespace and its sub-namespaces. Without `deleteGroups` only empty ones go (EPERM if any
   * holds groups); with it their groups are forgotten first, except protected snapshots, which keep
   * their namespace alive (EPERM after removing everything else).
   */
  async removeNamespace(ns: BackupNamespace, opts: { deleteGroups: boolean }): Promise<void> {
    const checked = namespaceFromComponents(ns);
    if (checked.length === 0) throw new PbsError('EINVAL', 'the root namespace cannot be removed');
    const all = await this.listNamespaces(checked);
    let keptProtected = 0;
    if (opts.deleteGroups) {
      for (const n of all) {
        for (const g of await this.listGroups(n)) keptProtected += (await this.forgetGroup(g)).kept;
      }
    }
    // bottom-up with plain rmdir: a group or backup that appears meanwhile makes it fail safely
    let notEmpty: string | undefined;
    for (const n of [...all].sort((a, b) => b.length - a.length)) {
      const dir = this.nsPath(n);
      for (const sub of ['ns', ...BACKUP_TYPES]) await rmdir(join(dir, sub)).catch(() => undefined);
      try {
        await rmdir(dir);
      } catch (e) {
        if (errCode(e) === 'ENOTEMPTY' || errCode(e) === 'EEXIST') notEmpty ??= formatNamespace(n);
        else if (errCode(e) !== 'ENOENT') throw withPath(e, dir);
      }
    }
    if (notEmpty !== undefined) {
      throw new PbsError(
        'EPERM',
        opts.deleteGroups
          ? `namespace '${notEmpty}' kept: it still holds ${keptProtected} protected snapshot(s)`
          : `namespace '${notEmpty}' is not empty (it holds backup groups); remove them first or delete groups too`,
        { path: this.nsPath(checked) },
      );
    }
  }

  /** Groups directly in `ns`, in PBS order (ct, host, vm; numeric ids numerically first). */
  async listGroups(ns: BackupNamespace): Promise<GroupRef[]> {
    await this.requireNamespace(ns);
    const checked = namespaceFromComponents(ns);
    const out: GroupRef[] = [];
    for (const type of BACKUP_TYPES) {
      for (const id of await subdirs(join(this.nsPath(checked), type))) {
        if (SAFE_ID.test(id) && id.length <= 255) out.push({ ns: checked, type, id });
      }
    }
    return out.sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type] || compareIds(a.id, b.id));
  }

  /** Oldest → newest; unfinished snapshots (no index.json.blob) only with `includeUnfinished`. */
  async listSnapshots(g: GroupRef, opts: { includeUnfinished?: boolean } = {}): Promise<SnapshotInfo[]> {
    const groupDir = await this.requireGroup(g);
    const refs: SnapshotRef[] = [];
    for (const name of await subdirs(groupDir)) {
      let time: number;
      try {
        time = parseBackupTime(name);
      } catch {
        continue; // not a snapshot directory
      }
      refs.push({ ns: g.ns, type: g.type, id: g.id, time });
    }
    const infos = await Promise.all(
      refs.map(async (ref): Promise<SnapshotInfo> => {
        const path = this.snapshotPath(ref);
        const [finished, isProtected] = await Promise.all([isFile(join(path, MANIFEST_BLOB_NAME)), isFile(join(path, PROTECTED_MARKER))]);
        return { ref, path, finished, protected: isProtected };
      }),
    );
    return infos.filter((i) => i.finished || opts.includeUnfinished).sort((a, b) => a.ref.time - b.ref.time);
  }

  /** Newest finished snapshot; undefined when there is none or the group does not exist. */
  async lastFinishedSnapshot(g: GroupRef): Promise<SnapshotInfo | undefined> {
    if (!(await isDir(this.groupPath(g)))) return undefined;
    return (await this.listSnapshots(g)).at(-1);
  }

  /** First line of the group's `owner` file; undefined when the file is missing. */
  async getOwner(g: GroupRef): Promise<string | undefined> {
    const path = join(this.groupPath(g), OWNER_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return undefined;
      throw withPath(e, path);
    }
    const owner = text.split('\n', 1)[0]!.trim();
    if (!owner) throw new PbsError('ECORRUPT', `group ${describeGroup(g)} has an empty owner file`, { path });
    return owner;
  }

  async setOwner(g: GroupRef, owner: string): Promise<void> {
    validateAuthId(owner);
    const dir = await this.requireGroup(g);
    await writeFileAtomic(join(dir, OWNER_FILE), `${owner}\n`);
  }

  /**
   * mkdir -p of the group with its owner file. An existing group must be owned by `owner`, or by one
   * of `owner`'s API tokens (spec §12 Owner); otherwise EPERM.
   */
  async createGroup(g: GroupRef, owner: string): Promise<{ created: boolean }> {
    validateAuthId(owner);
    await this.requireNamespace(g.ns);
    const path = this.groupPath(g);
    let created = true;
    try {
      await mkdir(join(this.nsPath(g.ns), g.type), { recursive: true, mode: 0o755 });
      await mkdir(path, { mode: 0o755 });
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw withPath(e, path);
      created = false;
    }
    // the owner file appears atomically and only once, so racing creators agree on one owner; a group
    // dir without it (an interrupted create) goes to whoever comes next
    if (!(await this.claimOwner(path, owner))) {
      const existing = await this.getOwner(g);
      checkBackupOwner(existing ?? '', owner, describeGroup(g));
    }
    return { created };
  }

  /** Creates `owner` with full contents via link(2), which fails if it exists; false when it did. */
  private async claimOwner(groupDir: string, owner: string): Promise<boolean> {
    const path = join(groupDir, OWNER_FILE);
    const tmp = `${path}.tmp_${randomBytes(3).toString('hex')}`;
    try {
      await writeFile(tmp, `${owner}\n`, { flag: 'wx', mode: 0o644 });
      await link(tmp, path);
      return true;
    } catch (e) {
      if (errCode(e) === 'EEXIST') return false;
      throw withPath(e, path);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /** Exclusive mkdir of the snapshot directory; the group must exist; EEXIST when present. */
  async createSnapshotDir(s: SnapshotRef): Promise<string> {
    await this.requireGroup(s);
    const path = this.snapshotPath(s);
    try {
      await mkdir(path, { mode: 0o755 });
    } catch (e) {
      if (errCode(e) === 'EEXIST') throw new PbsError('EEXIST', `snapshot ${describeSnapshot(s)} already exists`, { path });
      throw withPath(e, path);
    }
    return path;
  }

  async isProtected(s: SnapshotRef): Promise<boolean> {
    return isFile(join(await this.requireSnapshot(s), PROTECTED_MARKER));
  }

  /** Creates/removes the `.protected` marker under an exclusive snapshot lock (as PBS does). */
  async setProtected(s: SnapshotRef, on: boolean): Promise<void> {
    const dir = await this.requireSnapshot(s);
    const lock = await lockSnapshot(this, s, 'exclusive', on ? 'protect snapshot' : 'unprotect snapshot');
    const marker = join(dir, PROTECTED_MARKER);
    try {
      if (on) await writeFile(marker, '', { mode: 0o644 });
      else await unlink(marker).catch((e: unknown) => {
        if (errCode(e) !== 'ENOENT') throw e;
      });
    } catch (e) {
      throw withPath(e, marker);
    } finally {
      lock.release();
    }
  }

  /** Contents of the group's `notes` file ('' when absent). */
  async groupNotes(g: GroupRef): Promise<string> {
    const path = join(await this.requireGroup(g), GROUP_NOTES_FILE);
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return '';
      throw withPath(e, path);
    }
  }

  async setGroupNotes(g: GroupRef, text: string): Promise<void> {
    const dir = await this.requireGroup(g);
    await writeFileAtomic(join(dir, GROUP_NOTES_FILE), text);
  }

  /**
   * Removes one snapshot directory. Protected → EPERM. Takes the exclusive snapshot lock unless
   * `force` (the caller already holds it, e.g. the backup session discarding its own snapshot).
   */
  async forgetSnapshot(s: SnapshotRef, opts: { force?: boolean } = {}): Promise<void> {
    const path = await this.requireSnapshot(s);
    const lock = opts.force ? undefined : await lockSnapshot(this, s, 'exclusive', 'forget snapshot');
    try {
      if (await isFile(join(path, PROTECTED_MARKER))) {
        throw new PbsError('EPERM', `cannot remove protected snapshot ${describeSnapshot(s)}`, { path });
      }
      await rm(path, { recursive: true, force: true });
    } catch (e) {
      throw e instanceof PbsError ? e : withPath(e, path);
    } finally {
      lock?.release();
    }
  }

  /** Forgets every unprotected snapshot under the group lock; the group dir goes only if nothing was kept. */
  async forgetGroup(g: GroupRef): Promise<{ removed: number; kept: number }> {
    const path = await this.requireGroup(g);
    const lock = await lockGroup(this, g, 'exclusive', 'forget group');
    try {
      let removed = 0;
      let kept = 0;
      for (const snap of await this.listSnapshots(g, { includeUnfinished: true })) {
        if (snap.protected) {
          kept++;
          continue;
        }
        await this.forgetSnapshot(snap.ref);
        removed++;
      }
      if (kept === 0) {
        try {
          await rm(path, { recursive: true, force: true });
        } catch (e) {
          throw withPath(e, path);
        }
      }
      return { removed, kept };
    } finally {
      lock.release();
    }
  }

  /** Snapshot files matching ^.*\.([fd]idx|blob)$ (spec §4), sorted. */
  async listSnapshotFiles(s: SnapshotRef): Promise<string[]> {
    const path = await this.requireSnapshot(s);
    try {
      const entries = await readdir(path, { withFileTypes: true });
      return entries.filter((d) => d.isFile() && SNAPSHOT_FILE_RE.test(d.name)).map((d) => d.name).sort();
    } catch (e) {
      throw withPath(e, path);
    }
  }
}
