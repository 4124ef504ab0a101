// datastore.cfg: the list of datastores in PBS section-config format (`datastore: NAME` sections,
// features §2.1), kept in $PBSFS_CONFIG_DIR (default /etc/pbsfs).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { PbsError, withPath } from '../errors.js';
import { flockWithTimeout, releaseFlock } from './flock.js';
import { validateStoreName } from './names.js';
import { encodePropertyString, encodeSectionConfig, parsePropertyString, parseSectionConfig, type Section } from './section-config.js';

export { encodeSectionConfig, parseSectionConfig, type Section } from './section-config.js';

export type SyncLevel = 'none' | 'filesystem' | 'file';
export type ChunkOrder = 'none' | 'inode';

export interface DatastoreTuning {
  'sync-level'?: SyncLevel;
  'chunk-order'?: ChunkOrder;
  /** Other PBS tuning keys (gc-atime-cutoff, …), kept verbatim. */
  [k: string]: string | undefined;
}

export interface DatastoreConfig {
  name: string;
  path: string;
  comment?: string;
  tuning?: DatastoreTuning;
  /** PBS property string, e.g. `type=read-only,message="disk swap"`. */
  'maintenance-mode'?: string;
  /** Any other key of the section (gc-schedule, keep-daily, notify, …), kept as text. */
  [k: string]: unknown;
}

export type MaintenanceType = 'read-only' | 'offline' | (string & {});

export const CONFIG_FILE = 'datastore.cfg';
const LOCK_FILE = '.datastore.lck';
const LOCK_TIMEOUT_MS = 10_000;
const SYNC_LEVELS: readonly string[] = ['none', 'filesystem', 'file'];
const CHUNK_ORDERS: readonly string[] = ['none', 'inode'];

export function configDir(): string {
  return process.env.PBSFS_CONFIG_DIR || '/etc/pbsfs';
}

function checkTuning(t: DatastoreTuning, fail: (msg: string) => never): void {
  const sync = t['sync-level'];
  if (sync !== undefined && !SYNC_LEVELS.includes(sync)) fail(`tuning sync-level ${JSON.stringify(sync)} is not one of none, filesystem, file`);
  const order = t['chunk-order'];
  if (order !== undefined && !CHUNK_ORDERS.includes(order)) fail(`tuning chunk-order ${JSON.stringify(order)} is not one of none, inode`);
}

/** Section → config; validates what pbsfs relies on, keeps everything else as text. */
export function datastoreFromSection(s: Section, path?: string): DatastoreConfig {
  const fail = (msg: string): never => {
    throw new PbsError('ECORRUPT', `datastore '${s.id}': ${msg}`, { path });
  };
  if (s.type !== 'datastore') fail(`unknown section type '${s.type}'`);
  try {
    validateStoreName(s.id);
  } catch (e) {
    fail((e as Error).message);
  }
  const cfg: DatastoreConfig = { name: s.id, path: '' };
  const seen = new Set<string>();
  for (const [key, value] of s.props) {
    if (seen.has(key)) fail(`duplicate property '${key}'`);
    seen.add(key);
    if (key === 'name') fail("property 'name' belongs in the section header");
    if (key === 'tuning') {
      let pairs: Array<[string, string]> = [];
      try {
        pairs = parsePropertyString(value);
      } catch (e) {
        fail((e as Error).message);
      }
      const tuning: DatastoreTuning = Object.fromEntries(pairs);
      checkTuning(tuning, fail);
      cfg.tuning = tuning;
    } else {
      cfg[key] = value;
    }
  }
  if (!seen.has('path')) fail("property 'path' is missing");
  return cfg;
}

/** Config → section; path first, then the other keys in their object order. */
export function datastoreToSection(cfg: DatastoreConfig): Section {
  const fail = (msg: string): never => {
    throw new PbsError('EINVAL', `datastore '${String(cfg.name)}': ${msg}`);
  };
  validateStoreName(cfg.name);
  if (typeof cfg.path !== 'string' || !isAbsolute(cfg.path)) fail(`path ${JSON.stringify(cfg.path)} is not absolute`);
  const props: Array<[string, string]> = [['path', cfg.path]];
  for (const [key, value] of Object.entries(cfg)) {
    if (key === 'name' || key === 'path' || value === undefined) continue;
    if (key === 'tuning') {
      const tuning = value as DatastoreTuning;
      checkTuning(tuning, fail);
      const pairs = Object.entries(tuning).filter((kv): kv is [string, string] => kv[1] !== undefined);
      if (pairs.length) props.push(['tuning', encodePropertyString(pairs)]);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      props.push([key, String(value)]);
    } else {
      fail(`property '${key}' must be a string, number or boolean`);
    }
  }
  return { type: 'datastore', id: cfg.name, props };
}

/** Pure: datastore.cfg text → configs. */
export function parseDatastoreConfigs(text: string, path?: string): DatastoreConfig[] {
  const cfgs = parseSectionConfig(text, path).map((s) => datastoreFromSection(s, path));
  const names = new Set<string>();
  for (const c of cfgs) {
    if (names.has(c.name)) throw new PbsError('ECORRUPT', `datastore '${c.name}' is defined twice`, { path });
    names.add(c.name);
  }
  return cfgs;
}

/** Pure: configs → datastore.cfg text. */
export function encodeDatastoreConfigs(cfgs: readonly DatastoreConfig[]): string {
  const names = new Set<string>();
  for (const c of cfgs) {
    if (names.has(c.name)) throw new PbsError('EINVAL', `datastore '${c.name}' is listed twice`);
    names.add(c.name);
  }
  return encodeSectionConfig(cfgs.map(datastoreToSection));
}

/** `maintenance-mode` → its type (`read-only`, `offline`, …) or undefined when not in maintenance. */
export function maintenanceType(cfg: DatastoreConfig): MaintenanceType | undefined {
  const mode = cfg['maintenance-mode'];
  if (mode === undefined || mode === '') return undefined;
  const type = parsePropertyString(mode, 'type').find(([k]) => k === 'type')?.[1];
  if (!type) throw new PbsError('EINVAL', `datastore '${cfg.name}': maintenance-mode ${JSON.stringify(mode)} has no type`);
  return type;
}

export async function readDatastoreConfigs(dir: string = configDir()): Promise<DatastoreConfig[]> {
  const path = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw withPath(e, path);
  }
  return parseDatastoreConfigs(text, path);
}

async function withConfigLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const lockPath = join(dir, LOCK_FILE);
  const fd = await flockWithTimeout(lockPath, 'exclusive', LOCK_TIMEOUT_MS, { create: true });
  if (fd === undefined) throw new PbsError('EBUSY', `datastore config is locked by another process for more than ${LOCK_TIMEOUT_MS / 1000} s`, { path: lockPath });
  try {
    return await fn();
  } finally {
    releaseFlock(fd);
  }
}

async function writeLocked(cfgs: readonly DatastoreConfig[], dir: string): Promise<void> {
  const text = encodeDatastoreConfigs(cfgs);
  const path = join(dir, CONFIG_FILE);
  const tmp = `${path}.tmp_${process.pid}_${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx', 0o640);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw withPath(e, path);
  }
}

/** Replaces datastore.cfg atomically (tmp + rename) while holding the config lock. */
export async function writeDatastoreConfigs(cfgs: DatastoreConfig[], dir: string = configDir()): Promise<void> {
  await withConfigLock(dir, () => writeLocked(cfgs, dir));
}

/** Read-modify-write under one lock, so concurrent edits do not lose each other's changes. */
export async function modifyDatastoreConfigs(
  change: (cfgs: DatastoreConfig[]) => DatastoreConfig[] | Promise<DatastoreConfig[]>,
  dir: string = configDir(),
): Promise<DatastoreConfig[]> {
  return withConfigLock(dir, async () => {
    const next = await change(await readDatastoreConfigs(dir));
    await writeLocked(next, dir);
    return next;
  });
}

export async function lookupDatastore(name: string, dir: string = configDir()): Promise<DatastoreConfig> {
  const found = (await readDatastoreConfigs(dir)).find((c) => c.name === name);
  if (!found) throw new PbsError('ENOENT', `datastore '${name}' does not exist`, { path: join(dir, CONFIG_FILE) });
  return found;
}
