// Names inside a datastore: backup types, ids, namespaces, archive and store names, backup times,
// and the relative paths built from them (spec §4 layout, §12 names/namespaces).
import { PbsError } from '../errors.js';
import { BACKUP_TYPES, type BackupNamespace, type BackupType, type GroupRef, type SnapshotRef } from '../types.js';

export type { BackupType } from '../types.js';

/** PBS "safe id": backup ids, namespace components, archive and store names (spec §4, §12). */
const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** PBS sets no length limit on ids/archive names; the directory entry they become does (Linux NAME_MAX). */
export const MAX_NAME_LENGTH = 255;
/** Namespace depth below the root (spec §4: max depth 7). */
export const MAX_NAMESPACE_DEPTH = 7;
/** Namespace text length limit (spec §4: 256), checked per component the way PBS does. */
export const MAX_NAMESPACE_LENGTH = 256;
/** Last second of year 9999: the largest time the 4-digit-year format can hold. */
const MAX_BACKUP_TIME = 253402300799;

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

function show(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function checkSafeId(what: string, s: string, maxLen: number): string {
  if (typeof s !== 'string' || !SAFE_ID.test(s)) {
    throw new PbsError('EINVAL', `invalid ${what} ${show(String(s))}: must match [A-Za-z0-9_][A-Za-z0-9._-]*`);
  }
  if (s.length > maxLen) throw new PbsError('EINVAL', `invalid ${what} ${show(s)}: longer than ${maxLen} characters`);
  return s;
}

export function parseBackupType(s: string): BackupType {
  if ((BACKUP_TYPES as readonly string[]).includes(s)) return s as BackupType;
  throw new PbsError('EINVAL', `invalid backup type ${show(String(s))}: expected vm, ct or host`);
}

export function validateBackupId(id: string): string {
  return checkSafeId('backup id', id, MAX_NAME_LENGTH);
}

export function validateArchiveName(name: string): string {
  return checkSafeId('archive name', name, MAX_NAME_LENGTH);
}

export function validateStoreName(name: string): string {
  checkSafeId('datastore name', name, 32);
  if (name.length < 3) throw new PbsError('EINVAL', `invalid datastore name ${show(name)}: shorter than 3 characters`);
  return name;
}

/** Builds a namespace from components, applying PBS's per-component checks (spec §4). */
export function namespaceFromComponents(components: readonly string[]): BackupNamespace {
  let len = 0;
  components.forEach((c, depth) => {
    if (depth >= MAX_NAMESPACE_DEPTH) {
      throw new PbsError('EINVAL', `invalid namespace ${show(components.join('/'))}: deeper than ${MAX_NAMESPACE_DEPTH} levels`);
    }
    // PBS counts a separator for every component, the first included
    if (len + c.length + 1 > MAX_NAMESPACE_LENGTH) {
      throw new PbsError('EINVAL', `invalid namespace ${show(components.join('/'))}: longer than ${MAX_NAMESPACE_LENGTH} characters`);
    }
    checkSafeId('namespace component', c, MAX_NAME_LENGTH);
    len += (depth > 0 ? 1 : 0) + c.length;
  });
  return Object.freeze([...components]) as BackupNamespace;
}

export const ROOT_NAMESPACE: BackupNamespace = namespaceFromComponents([]);

/** `a/b/c` → namespace; '' = root. */
export function parseNamespace(text: string): BackupNamespace {
  if (typeof text !== 'string') throw new PbsError('EINVAL', 'namespace must be a string');
  return namespaceFromComponents(text === '' ? [] : text.split('/'));
}

export function formatNamespace(ns: BackupNamespace): string {
  return ns.join('/');
}

/** On-disk relative path of a namespace: `ns/a/ns/b`, '' for the root (spec §4). */
export function namespaceRelPath(ns: BackupNamespace): string {
  return ns.map((c) => `ns/${c}`).join('/');
}

export function namespaceParent(ns: BackupNamespace): BackupNamespace {
  return namespaceFromComponents(ns.slice(0, -1));
}

export function namespaceChild(ns: BackupNamespace, name: string): BackupNamespace {
  return namespaceFromComponents([...ns, name]);
}

/** Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (spec §4 snapshot dir names). */
export function formatBackupTime(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_BACKUP_TIME) {
    throw new PbsError('EINVAL', `invalid backup time ${String(epoch)}: expected whole seconds from 0 to ${MAX_BACKUP_TIME}`);
  }
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Strict inverse of formatBackupTime: exactly `YYYY-MM-DDTHH:MM:SSZ`, a real calendar date and time. */
export function parseBackupTime(s: string): number {
  const m = typeof s === 'string' ? TIME_RE.exec(s) : null;
  if (m) {
    const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const ms = Date.UTC(y, mo - 1, d, h, mi, se);
    // Date.UTC maps years 0..99 to 1900..1999, and rolls over out-of-range fields: the round trip catches both
    if (Number.isFinite(ms) && ms >= 0) {
      const epoch = ms / 1000;
      if (formatBackupTime(epoch) === s) return epoch;
    }
  }
  throw new PbsError('EINVAL', `invalid backup time ${show(String(s))}: expected YYYY-MM-DDTHH:MM:SSZ`);
}

/** `vm/100` → type and id. */
export function parseGroupPath(s: string): { type: BackupType; id: string } {
  const parts = typeof s === 'string' ? s.split('/') : [];
  if (parts.length !== 2) throw new PbsError('EINVAL', `invalid backup group ${show(String(s))}: expected <type>/<id>`);
  return { type: parseBackupType(parts[0]!), id: validateBackupId(parts[1]!) };
}

/** `vm/100/2024-01-01T00:00:00Z` → type, id and time. */
export function parseSnapshotPath(s: string): { type: BackupType; id: string; time: number } {
  const parts = typeof s === 'string' ? s.split('/') : [];
  if (parts.length !== 3) throw new PbsError('EINVAL', `invalid snapshot ${show(String(s))}: expected <type>/<id>/<time>`);
  return { type: parseBackupType(parts[0]!), id: validateBackupId(parts[1]!), time: parseBackupTime(parts[2]!) };
}

/** `[ns/a/ns/b/]vm/100/<time>` (the on-disk relative path, also used by tape snapshot archives, spec §11) → ref. */
export function parseSnapshotRelPath(s: string): SnapshotRef {
  const parts = typeof s === 'string' ? s.split('/') : [];
  const components: string[] = [];
  let i = 0;
  while (parts[i] === 'ns' && parts.length - i > 3) {
    components.push(parts[i + 1]!);
    i += 2;
  }
  if (parts.length - i !== 3) throw new PbsError('EINVAL', `invalid snapshot path ${show(String(s))}: expected [ns/<a>/…]<type>/<id>/<time>`);
  const { type, id, time } = parseSnapshotPath(parts.slice(i).join('/'));
  return { ns: namespaceFromComponents(components), type, id, time };
}

/** `vm/100` */
export function groupName(g: { type: BackupType; id: string }): string {
  return `${g.type}/${g.id}`;
}

/** `vm/100/<time>` — the snapshot's name within its namespace. */
export function snapshotName(s: { type: BackupType; id: string; time: number }): string {
  return `${groupName(s)}/${formatBackupTime(s.time)}`;
}

/** `[ns/a/ns/b/]vm/100` relative to the datastore base. */
export function groupRelPath(grp: GroupRef): string {
  const nsPath = namespaceRelPath(grp.ns);
  return nsPath ? `${nsPath}/${groupName(grp)}` : groupName(grp);
}

/** `[ns/a/ns/b/]vm/100/<time>` relative to the datastore base. */
export function formatSnapshotPath(ref: SnapshotRef): string {
  const nsPath = namespaceRelPath(ref.ns);
  return nsPath ? `${nsPath}/${snapshotName(ref)}` : snapshotName(ref);
}

/** Same as formatSnapshotPath; the name says it is the on-disk relative path. */
export const snapshotRelPath = formatSnapshotPath;

/** Human form used in messages: `vm/100` or `a/b:vm/100`. */
export function describeGroup(grp: GroupRef): string {
  return grp.ns.length ? `${formatNamespace(grp.ns)}:${groupName(grp)}` : groupName(grp);
}

/** Human form used in messages: `vm/100/<time>` or `a/b:vm/100/<time>`. */
export function describeSnapshot(ref: SnapshotRef): string {
  return ref.ns.length ? `${formatNamespace(ref.ns)}:${snapshotName(ref)}` : snapshotName(ref);
}
