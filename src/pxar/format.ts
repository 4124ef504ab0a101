// pxar item layer (spec §8): type constants, item headers, Stat, attribute items, entry types. Pure byte codecs.
import { PbsError } from '../errors.js';
import { siphash24 } from './siphash.js';
import { checkName, checkRelativePath } from './names.js';

// spec §8.2 — each value is hashFilename() of its marker string (checked in test/pxar/format.test.ts).
export const PXAR_FORMAT_VERSION = 0x730f6c75df16a40dn;
export const PXAR_PRELUDE = 0xe309d79d9f7b771bn;
export const PXAR_ENTRY = 0xd5956474e588acefn;
export const PXAR_ENTRY_V1 = 0x11da850a1c1cceffn;
export const PXAR_FILENAME = 0x16701121063917b3n;
export const PXAR_SYMLINK = 0x27f971e7dbf5dc5fn;
export const PXAR_DEVICE = 0x9fc9e906586d5ce9n;
export const PXAR_XATTR = 0x0dab0229b57dcd03n;
export const PXAR_ACL_USER = 0x2ce8540a457d55b8n;
export const PXAR_ACL_GROUP = 0x136e3eceb04c03abn;
export const PXAR_ACL_GROUP_OBJ = 0x10868031e9582876n;
export const PXAR_ACL_DEFAULT = 0xbbbb13415a6896f5n;
export const PXAR_ACL_DEFAULT_USER = 0xc89357b40532cd1fn;
export const PXAR_ACL_DEFAULT_GROUP = 0xf90a8a5816038ffen;
export const PXAR_FCAPS = 0x2da9dd9db5f7fb67n;
export const PXAR_QUOTA_PROJID = 0xe07540e82f7d1cbbn;
export const PXAR_HARDLINK = 0x51269c8422bd7275n;
export const PXAR_PAYLOAD = 0x28147a1b0b7c1a25n;
export const PXAR_PAYLOAD_REF = 0x419d3d6bc4ba977en;
export const PXAR_GOODBYE = 0x2fec4fa642d5731dn;
export const PXAR_GOODBYE_TAIL_MARKER = 0xef5eed5b753e1555n;
export const PXAR_PAYLOAD_START_MARKER = 0x834c68c2194a4ed2n;
export const PXAR_PAYLOAD_TAIL_MARKER = 0x6c72b78b984c81b5n;

export const HEADER_SIZE = 16; // spec §8.1
export const STAT_SIZE = 40; // spec §8.3
export const STAT_V1_SIZE = 32;
export const GOODBYE_ITEM_SIZE = 24; // spec §8.6
/** spec §8.4 content limits. */
export const MAX_PATH_ITEM = 4097;
export const MAX_HARDLINK_ITEM = 4105;
export const MAX_XATTR_ITEM = 255 + 65536;
export const MAX_XATTR_NAME = 255;
/** Not fixed by the spec; the only PRELUDE writer stores a small JSON object of exclude patterns. */
export const MAX_PRELUDE_SIZE = 1 << 20;

const TYPE_NAMES = new Map<bigint, string>([
  [PXAR_FORMAT_VERSION, 'FORMAT_VERSION'], [PXAR_PRELUDE, 'PRELUDE'], [PXAR_ENTRY, 'ENTRY'], [PXAR_ENTRY_V1, 'ENTRY_V1'],
  [PXAR_FILENAME, 'FILENAME'], [PXAR_SYMLINK, 'SYMLINK'], [PXAR_DEVICE, 'DEVICE'], [PXAR_XATTR, 'XATTR'],
  [PXAR_ACL_USER, 'ACL_USER'], [PXAR_ACL_GROUP, 'ACL_GROUP'], [PXAR_ACL_GROUP_OBJ, 'ACL_GROUP_OBJ'],
  [PXAR_ACL_DEFAULT, 'ACL_DEFAULT'], [PXAR_ACL_DEFAULT_USER, 'ACL_DEFAULT_USER'], [PXAR_ACL_DEFAULT_GROUP, 'ACL_DEFAULT_GROUP'],
  [PXAR_FCAPS, 'FCAPS'], [PXAR_QUOTA_PROJID, 'QUOTA_PROJID'], [PXAR_HARDLINK, 'HARDLINK'], [PXAR_PAYLOAD, 'PAYLOAD'],
  [PXAR_PAYLOAD_REF, 'PAYLOAD_REF'], [PXAR_GOODBYE, 'GOODBYE'], [PXAR_GOODBYE_TAIL_MARKER, 'GOODBYE_TAIL_MARKER'],
  [PXAR_PAYLOAD_START_MARKER, 'PAYLOAD_START_MARKER'], [PXAR_PAYLOAD_TAIL_MARKER, 'PAYLOAD_TAIL_MARKER'],
]);

export function typeName(htype: bigint): string {
  return TYPE_NAMES.get(htype) ?? `unknown item type 0x${htype.toString(16).padStart(16, '0')}`;
}

// spec §8.2: k0, k1 as 32-bit halves.
const K0L = 0xfbb450db, K0H = 0x83ac3f1c, K1L = 0x79369fbd, K1H = 0xaa4f1b68;
const hashOut = new Uint32Array(2);

/** spec §8.2 filename hash (SipHash-2-4, pxar keys) over the raw name bytes. */
export function hashFilename(name: Uint8Array): bigint {
  siphash24(K0L, K0H, K1L, K1H, name, hashOut);
  return (BigInt(hashOut[1]!) << 32n) | BigInt(hashOut[0]!);
}

// ---- Entry model -------------------------------------------------------------------------------

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** spec §8.3 chattr/FAT flag bits of Stat.flags. */
export const STAT_FLAGS = {
  HIDDEN: 0x2000, SYSTEM: 0x4000, ARCHIVE: 0x8000, APPEND: 0x10000, NOATIME: 0x20000, COMPR: 0x40000,
  NOCOW: 0x80000, NODUMP: 0x100000, DIRSYNC: 0x200000, IMMUTABLE: 0x400000, SYNC: 0x800000,
  NOCOMP: 0x1000000, PROJINHERIT: 0x2000000, SUBVOLUME: 0x4000000, SUBVOLUME_RO: 0x8000000,
} as const;

/** Seconds since the epoch, floor-based, plus 0..999999999 nanoseconds (spec §8.3). */
export interface Timestamp {
  secs: number;
  nanos: number;
}

export interface Stat {
  mode: number;
  flags: number;
  uid: number;
  gid: number;
  mtime: Timestamp;
}

export interface Xattr {
  name: Uint8Array;
  value: Uint8Array;
}

/** ACL permissions are raw u64 (READ 4, WRITE 2, EXECUTE 1; ACL_NO_MASK for a missing one). */
export interface AclEntry {
  id: number;
  permissions: bigint;
}

export interface AclDefault {
  userObj: bigint;
  groupObj: bigint;
  other: bigint;
  mask: bigint;
}

export const ACL_NO_MASK = 0xffffffffffffffffn;

export interface Acl {
  users: AclEntry[];
  groups: AclEntry[];
  groupObj: bigint | null;
  default: AclDefault | null;
  defaultUsers: AclEntry[];
  defaultGroups: AclEntry[];
}

export interface Metadata {
  stat: Stat;
  xattrs: Xattr[];
  acl: Acl;
  fcaps: Uint8Array | null;
  quotaProjectId: number | null;
}

export interface Device {
  major: number;
  minor: number;
}

export type EntryKind = 'dir' | 'file' | 'symlink' | 'hardlink' | 'device' | 'fifo' | 'socket';

export interface PxarEntry {
  /** Full path bytes from the archive root; the root is `/`. */
  path: Uint8Array;
  kind: EntryKind;
  /** For hardlinks: empty metadata (a hardlink carries none). */
  metadata: Metadata;
  /** Position of the entry's FILENAME header in the (metadata) archive; null for the root. */
  filenameOffset: number | null;
  /** Regular files: content size. */
  size?: number;
  /** Files: v1 → first content byte in the archive; v2 → byte after the PAYLOAD_REF header (its content start). */
  contentOffset?: number;
  /** v2 files: position of the PAYLOAD header in the payload (.ppxar) stream. */
  payloadOffset?: number;
  /** Symlink target, or hardlink target path (archive-relative). */
  linkTarget?: Uint8Array;
  /** Hardlinks: the stored backwards distance between FILENAME headers. */
  hardlinkOffset?: number;
  device?: Device;
}

export function emptyAcl(): Acl {
  return { users: [], groups: [], groupObj: null, default: null, defaultUsers: [], defaultGroups: [] };
}

export function emptyMetadata(): Metadata {
  return { stat: { mode: 0, flags: 0, uid: 0, gid: 0, mtime: { secs: 0, nanos: 0 } }, xattrs: [], acl: emptyAcl(), fcaps: null, quotaProjectId: null };
}

/** Metadata with just a stat (no xattrs, ACLs, fcaps, quota id). */
export function metadataOf(stat: Stat): Metadata {
  return { stat, xattrs: [], acl: emptyAcl(), fcaps: null, quotaProjectId: null };
}

export function fileType(mode: number): number {
  return mode & S_IFMT;
}

// ---- Numbers -------------------------------------------------------------------------------------

function corrupt(msg: string, offset: number): PbsError {
  return new PbsError('ECORRUPT', msg, { offset });
}

/** A copy that owns its memory: on a Node Buffer `.slice()` is a view of the shared chunk, not a copy. */
export function copyBytes(b: Uint8Array, start: number, end = b.length): Uint8Array {
  return Uint8Array.prototype.slice.call(b, start, end);
}

/** A DataView over exactly these bytes (Node Buffers share larger ArrayBuffers). */
export function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** u32 LE without a DataView (the decoder reads millions of these). */
function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** 2^53 / 2^32: a u64 whose high half reaches this is beyond Number.MAX_SAFE_INTEGER. */
const SAFE_HIGH_LIMIT = 0x200000;

/** u64 LE as a JS number; values beyond 2^53 are reported as corrupt (no pxar field legitimately needs them). */
export function readU64(b: Uint8Array, at: number, what: string, pos: number): number {
  const hi = u32(b, at + 4);
  if (hi >= SAFE_HIGH_LIMIT) throw corrupt(`${what} ${dv(b).getBigUint64(at, true)} is too large`, pos);
  return hi * 0x100000000 + u32(b, at);
}

function putU64(view: DataView, at: number, v: number | bigint): void {
  if (typeof v === 'bigint') view.setBigUint64(at, v, true);
  else {
    // A safe integer in two u32 halves: no BigInt per item.
    view.setUint32(at, v >>> 0, true);
    view.setUint32(at + 4, Math.floor(v / 0x100000000), true);
  }
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new PbsError('EINVAL', `${what} ${v} is not a u32`);
}

function checkU64(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new PbsError('EINVAL', `${what} ${v} is not a non-negative safe integer`);
}

function checkPerm(v: bigint, what: string): void {
  if (v < 0n || v > ACL_NO_MASK) throw new PbsError('EINVAL', `${what} ${v} is not a u64`);
}

// ---- Headers -------------------------------------------------------------------------------------

export interface ItemHeader {
  htype: bigint;
  /** Including the 16 header bytes. */
  fullSize: number;
}

/** spec §8.1 */
export function encodeHeader(htype: bigint, contentSize: number): Uint8Array {
  return writeHeader(new Uint8Array(HEADER_SIZE), 0, htype, contentSize);
}

/** spec §8.1, written at `at` of `out` (an encoder's item buffer: no 16-byte array per item). Returns `out`. */
export function writeHeader(out: Uint8Array, at: number, htype: bigint, contentSize: number): Uint8Array {
  const known = TYPE_LIMITS.get(htype);
  if (known !== undefined) {
    putU32(out, at, known.low);
    putU32(out, at + 4, known.high);
  } else new DataView(out.buffer, out.byteOffset + at, 8).setBigUint64(0, htype, true);
  const full = contentSize + HEADER_SIZE;
  putU32(out, at + 8, full >>> 0);
  putU32(out, at + 12, Math.floor(full / 0x100000000));
  return out;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

/** An item header with the archive offset it was read at. */
export interface PositionedHeader extends ItemHeader {
  pos: number;
}

/** spec §8.1; `pos` is the header's archive offset (for messages). Checks the size limits of spec §8.4. */
export function parseHeader(b: Uint8Array, at: number, pos: number): ItemHeader {
  const h = parseHeaderAt(b, at, pos);
  return { htype: h.htype, fullSize: h.fullSize };
}

/** parseHeader with the offset kept in the result (the sequential decoder's form). */
export function parseHeaderAt(b: Uint8Array, at: number, pos: number): PositionedHeader {
  // Known types are recognised by their halves, so decoding needs no BigInt per item.
  const lo = u32(b, at);
  const hi = u32(b, at + 4);
  const known = TYPES_BY_LOW.get(lo);
  const htype = known !== undefined && known.high === hi ? known.htype : (BigInt(hi) << 32n) | BigInt(lo);
  const sizeHi = u32(b, at + 12);
  if (sizeHi >= SAFE_HIGH_LIMIT) throw corrupt(`${typeName(htype)} item size ${dv(b).getBigUint64(at + 8, true)} is absurd`, pos);
  const fullSize = sizeHi * 0x100000000 + u32(b, at + 8);
  if (fullSize < HEADER_SIZE) throw corrupt(`${typeName(htype)} item size ${fullSize} is smaller than its header`, pos);
  const h = { htype, fullSize, pos };
  checkSize(known !== undefined && known.high === hi ? known : TYPE_LIMITS.get(htype), h, pos);
  return h;
}

const FIXED_SIZES = new Map<bigint, number>([
  [PXAR_FORMAT_VERSION, 8], [PXAR_ENTRY, STAT_SIZE], [PXAR_ENTRY_V1, STAT_V1_SIZE], [PXAR_DEVICE, 16],
  [PXAR_ACL_USER, 16], [PXAR_ACL_GROUP, 16], [PXAR_ACL_GROUP_OBJ, 8], [PXAR_ACL_DEFAULT, 32],
  [PXAR_ACL_DEFAULT_USER, 16], [PXAR_ACL_DEFAULT_GROUP, 16], [PXAR_QUOTA_PROJID, 8], [PXAR_PAYLOAD_REF, 16],
  [PXAR_PAYLOAD_START_MARKER, 0], [PXAR_PAYLOAD_TAIL_MARKER, 0],
]);

const MAX_SIZES = new Map<bigint, number>([
  [PXAR_FILENAME, MAX_PATH_ITEM], [PXAR_SYMLINK, MAX_PATH_ITEM], [PXAR_HARDLINK, MAX_HARDLINK_ITEM],
  [PXAR_XATTR, MAX_XATTR_ITEM], [PXAR_FCAPS, MAX_XATTR_ITEM], [PXAR_PRELUDE, MAX_PRELUDE_SIZE],
]);

/** Per known item type: its value split in u32 halves and its content size rule (spec §8.4). */
interface TypeLimits {
  htype: bigint;
  low: number;
  high: number;
  fixed: number | undefined;
  max: number | undefined;
}

const TYPE_LIMITS = new Map<bigint, TypeLimits>(
  [...TYPE_NAMES.keys()].map((t) => [t, { htype: t, low: Number(t & 0xffffffffn), high: Number(t >> 32n), fixed: FIXED_SIZES.get(t), max: MAX_SIZES.get(t) }]),
);
/** By low half; the known types' low halves are all different (a collision would only cost the fast path). */
const TYPES_BY_LOW = new Map<number, TypeLimits>([...TYPE_LIMITS.values()].map((l) => [l.low, l]));

/** spec §8.4: fixed-size items must match exactly; variable ones stay under their limits. */
export function checkItemSize(h: ItemHeader, pos: number): void {
  checkSize(TYPE_LIMITS.get(h.htype), h, pos);
}

function checkSize(limits: TypeLimits | undefined, h: ItemHeader, pos: number): void {
  if (limits === undefined) return;
  const content = h.fullSize - HEADER_SIZE;
  if (limits.fixed !== undefined && content !== limits.fixed) {
    throw corrupt(`${typeName(h.htype)} item has ${content} content bytes, expected ${limits.fixed}`, pos);
  }
  if (limits.max !== undefined && content > limits.max) throw corrupt(`${typeName(h.htype)} item has ${content} content bytes, limit ${limits.max}`, pos);
  if (h.htype === PXAR_GOODBYE && (content < GOODBYE_ITEM_SIZE || content % GOODBYE_ITEM_SIZE !== 0)) {
    throw corrupt(`GOODBYE item size ${h.fullSize} is not 16 + 24·(n+1)`, pos);
  }
}

/** Header + content as one item. */
export function encodeItem(htype: bigint, content: Uint8Array): Uint8Array {
  const out = writeHeader(new Uint8Array(HEADER_SIZE + content.length), 0, htype, content.length);
  out.set(content, HEADER_SIZE);
  return out;
}

// ---- Stat (spec §8.3) ----------------------------------------------------------------------------

const NS_PER_SEC = 1_000_000_000n;

/** Nanoseconds since the epoch → floor-based seconds + nanos (−1.5 s → secs −2, nanos 5e8). */
export function timestampFromNs(ns: bigint): Timestamp {
  let secs = ns / NS_PER_SEC;
  let nanos = ns % NS_PER_SEC;
  if (nanos < 0n) {
    secs -= 1n;
    nanos += NS_PER_SEC;
  }
  return { secs: Number(secs), nanos: Number(nanos) };
}

export function timestampToNs(t: Timestamp): bigint {
  return BigInt(t.secs) * NS_PER_SEC + BigInt(t.nanos);
}

export function encodeStat(stat: Stat): Uint8Array {
  checkU64(stat.mode, 'mode');
  checkU64(stat.flags, 'flags');
  checkU32(stat.uid, 'uid');
  checkU32(stat.gid, 'gid');
  if (!Number.isSafeInteger(stat.mtime.secs)) throw new PbsError('EINVAL', `mtime seconds ${stat.mtime.secs} is not an integer`);
  if (!Number.isInteger(stat.mtime.nanos) || stat.mtime.nanos < 0 || stat.mtime.nanos >= 1e9) {
    throw new PbsError('EINVAL', `mtime nanoseconds ${stat.mtime.nanos} out of range`);
  }
  const out = new Uint8Array(STAT_SIZE);
  const view = new DataView(out.buffer);
  putU64(view, 0, stat.mode);
  putU64(view, 8, stat.flags);
  view.setUint32(16, stat.uid, true);
  view.setUint32(20, stat.gid, true);
  // i64 seconds as two halves: the high one is the floor, so negative times come out in two's complement.
  view.setUint32(24, stat.mtime.secs >>> 0, true);
  view.setInt32(28, Math.floor(stat.mtime.secs / 0x100000000), true);
  view.setUint32(32, stat.mtime.nanos, true);
  return out;
}

export function parseStat(b: Uint8Array, pos: number): Stat {
  // mtime seconds: i64 LE, read as a signed high half and an unsigned low half.
  const secsHi = u32(b, 28) | 0;
  const secs = secsHi * 0x100000000 + u32(b, 24);
  if (secsHi >= SAFE_HIGH_LIMIT || secsHi < -SAFE_HIGH_LIMIT || secs < Number.MIN_SAFE_INTEGER) {
    throw corrupt(`mtime ${dv(b).getBigInt64(24, true)} s is absurd`, pos);
  }
  const nanos = u32(b, 32);
  if (nanos >= 1e9) throw corrupt(`mtime nanoseconds ${nanos} out of range`, pos);
  return {
    mode: readU64(b, 0, 'mode', pos),
    flags: readU64(b, 8, 'flags', pos),
    uid: u32(b, 16),
    gid: u32(b, 20),
    mtime: { secs, nanos },
  };
}

/** Legacy ENTRY_V1 (32 bytes, mtime as u64 nanoseconds). */
export function parseStatV1(b: Uint8Array, pos: number): Stat {
  const view = dv(b);
  return {
    mode: readU64(b, 0, 'mode', pos),
    flags: readU64(b, 8, 'flags', pos),
    uid: view.getUint32(16, true),
    gid: view.getUint32(20, true),
    mtime: timestampFromNs(view.getBigUint64(24, true)),
  };
}

// ---- Attribute and content items (spec §8.2, §8.4) -----------------------------------------------

export function encodeXattr(x: Xattr): Uint8Array {
  if (x.name.length === 0 || x.name.length > MAX_XATTR_NAME || x.name.includes(0)) {
    throw new PbsError('EINVAL', `invalid xattr name (${x.name.length} bytes)`);
  }
  if (x.name.length + 1 + x.value.length > MAX_XATTR_ITEM) throw new PbsError('EINVAL', `xattr value of ${x.value.length} bytes is too large`);
  const out = new Uint8Array(x.name.length + 1 + x.value.length);
  out.set(x.name, 0);
  out.set(x.value, x.name.length + 1);
  return out;
}

export function parseXattr(b: Uint8Array, pos: number): Xattr {
  const nul = b.indexOf(0);
  if (nul <= 0) throw corrupt(nul === 0 ? 'xattr with empty name' : 'xattr name is not NUL-terminated', pos);
  if (nul > MAX_XATTR_NAME) throw corrupt(`xattr name of ${nul} bytes exceeds ${MAX_XATTR_NAME}`, pos);
  return { name: copyBytes(b, 0, nul), value: copyBytes(b, nul + 1) };
}

export function encodeAclEntry(e: AclEntry): Uint8Array {
  checkU64(e.id, 'ACL id');
  checkPerm(e.permissions, 'ACL permissions');
  const out = new Uint8Array(16);
  const view = dv(out);
  putU64(view, 0, e.id);
  putU64(view, 8, e.permissions);
  return out;
}

export function parseAclEntry(b: Uint8Array, pos: number): AclEntry {
  return { id: readU64(b, 0, 'ACL id', pos), permissions: dv(b).getBigUint64(8, true) };
}

export function encodeU64(v: number | bigint): Uint8Array {
  if (typeof v === 'number') checkU64(v, 'value');
  else checkPerm(v, 'value');
  const out = new Uint8Array(8);
  putU64(dv(out), 0, v);
  return out;
}

export function parseU64Big(b: Uint8Array): bigint {
  return dv(b).getBigUint64(0, true);
}

export function encodeAclDefault(d: AclDefault): Uint8Array {
  const out = new Uint8Array(32);
  const view = dv(out);
  [d.userObj, d.groupObj, d.other, d.mask].forEach((v, i) => {
    checkPerm(v, 'ACL default permissions');
    putU64(view, i * 8, v);
  });
  return out;
}

export function parseAclDefault(b: Uint8Array): AclDefault {
  const view = dv(b);
  return {
    userObj: view.getBigUint64(0, true),
    groupObj: view.getBigUint64(8, true),
    other: view.getBigUint64(16, true),
    mask: view.getBigUint64(24, true),
  };
}

export function encodeDevice(d: Device): Uint8Array {
  checkU64(d.major, 'device major');
  checkU64(d.minor, 'device minor');
  const out = new Uint8Array(16);
  const view = dv(out);
  putU64(view, 0, d.major);
  putU64(view, 8, d.minor);
  return out;
}

export function parseDevice(b: Uint8Array, pos: number): Device {
  return { major: readU64(b, 0, 'device major', pos), minor: readU64(b, 8, 'device minor', pos) };
}

/** spec §8.4: major = dev_t bits 8–19 and 32–63, minor = bits 0–7 and 20–31 (glibc). */
export function deviceFromDevT(dev: bigint): Device {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major & 0xffffffffn), minor: Number(minor & 0xffffffffn) };
}

export function deviceToDevT(d: Device): bigint {
  const major = BigInt(d.major);
  const minor = BigInt(d.minor);
  return ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
}

/** Name or symlink target + NUL. */
export function encodeCString(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes, 0);
  return out;
}

/** Content of a FILENAME item → validated name (spec §8.4). */
export function parseFilename(b: Uint8Array, pos: number): Uint8Array {
  if (b.length === 0 || b[b.length - 1] !== 0) throw corrupt('file name is not NUL-terminated', pos);
  const name = copyBytes(b, 0, b.length - 1);
  checkName(name, 'ECORRUPT', pos);
  return name;
}

export function parseSymlink(b: Uint8Array, pos: number): Uint8Array {
  if (b.length < 2 || b[b.length - 1] !== 0) throw corrupt('symlink target is empty or not NUL-terminated', pos);
  const target = copyBytes(b, 0, b.length - 1);
  if (target.includes(0)) throw corrupt('symlink target contains NUL', pos);
  return target;
}

export interface Hardlink {
  offset: number;
  target: Uint8Array;
}

export function encodeHardlink(h: Hardlink): Uint8Array {
  checkU64(h.offset, 'hardlink offset');
  const out = new Uint8Array(8 + h.target.length + 1);
  putU64(dv(out), 0, h.offset);
  out.set(h.target, 8);
  return out;
}

/** HARDLINK content; the target must be a valid archive-relative path. */
export function parseHardlink(b: Uint8Array, pos: number): Hardlink {
  if (b.length < 10 || b[b.length - 1] !== 0) throw corrupt('hardlink item too short or not NUL-terminated', pos);
  const offset = readU64(b, 0, 'hardlink offset', pos);
  const target = copyBytes(b, 8, b.length - 1);
  checkRelativePath(target, 'ECORRUPT', pos);
  return { offset, target };
}

export interface PayloadRef {
  offset: number;
  size: number;
}

export function encodePayloadRef(r: PayloadRef): Uint8Array {
  checkU64(r.offset, 'payload offset');
  checkU64(r.size, 'payload size');
  const out = new Uint8Array(16);
  putU64(dv(out), 0, r.offset);
  putU64(dv(out), 8, r.size);
  return out;
}

export function parsePayloadRef(b: Uint8Array, pos: number): PayloadRef {
  return { offset: readU64(b, 0, 'payload offset', pos), size: readU64(b, 8, 'payload size', pos) };
}

/** All metadata items after ENTRY, in the order of spec §8.4. */
export function encodeMetadataItems(m: Metadata): Uint8Array[] {
  const items: Uint8Array[] = [encodeItem(PXAR_ENTRY, encodeStat(m.stat))];
  for (const x of m.xattrs) items.push(encodeItem(PXAR_XATTR, encodeXattr(x)));
  for (const u of m.acl.users) items.push(encodeItem(PXAR_ACL_USER, encodeAclEntry(u)));
  for (const g of m.acl.groups) items.push(encodeItem(PXAR_ACL_GROUP, encodeAclEntry(g)));
  if (m.acl.groupObj !== null) items.push(encodeItem(PXAR_ACL_GROUP_OBJ, encodeU64(m.acl.groupObj)));
  if (m.acl.default !== null) items.push(encodeItem(PXAR_ACL_DEFAULT, encodeAclDefault(m.acl.default)));
  for (const u of m.acl.defaultUsers) items.push(encodeItem(PXAR_ACL_DEFAULT_USER, encodeAclEntry(u)));
  for (const g of m.acl.defaultGroups) items.push(encodeItem(PXAR_ACL_DEFAULT_GROUP, encodeAclEntry(g)));
  if (m.fcaps !== null) {
    if (m.fcaps.length > MAX_XATTR_ITEM) throw new PbsError('EINVAL', `fcaps of ${m.fcaps.length} bytes is too large`);
    items.push(encodeItem(PXAR_FCAPS, m.fcaps));
  }
  if (m.quotaProjectId !== null) items.push(encodeItem(PXAR_QUOTA_PROJID, encodeU64(m.quotaProjectId)));
  return items;
}

/**
 * Folds one attribute item into `m`. Returns false when `htype` is not an attribute (the entry's content item follows).
 * Duplicate single-valued attributes are corrupt.
 */
export function applyAttribute(m: Metadata, htype: bigint, content: Uint8Array, pos: number): boolean {
  switch (htype) {
    case PXAR_XATTR:
      m.xattrs.push(parseXattr(content, pos));
      return true;
    case PXAR_ACL_USER:
      m.acl.users.push(parseAclEntry(content, pos));
      return true;
    case PXAR_ACL_GROUP:
      m.acl.groups.push(parseAclEntry(content, pos));
      return true;
    case PXAR_ACL_GROUP_OBJ:
      if (m.acl.groupObj !== null) throw corrupt('duplicate ACL_GROUP_OBJ item', pos);
      m.acl.groupObj = parseU64Big(content);
      return true;
    case PXAR_ACL_DEFAULT:
      if (m.acl.default !== null) throw corrupt('duplicate ACL_DEFAULT item', pos);
      m.acl.default = parseAclDefault(content);
      return true;
    case PXAR_ACL_DEFAULT_USER:
      m.acl.defaultUsers.push(parseAclEntry(content, pos));
      return true;
    case PXAR_ACL_DEFAULT_GROUP:
      m.acl.defaultGroups.push(parseAclEntry(content, pos));
      return true;
    case PXAR_FCAPS:
      if (m.fcaps !== null) throw corrupt('duplicate FCAPS item', pos);
      m.fcaps = copyBytes(content, 0);
      return true;
    case PXAR_QUOTA_PROJID:
      if (m.quotaProjectId !== null) throw corrupt('duplicate QUOTA_PROJID item', pos);
      m.quotaProjectId = readU64(content, 0, 'quota project id', pos);
      return true;
    default:
      return false;
  }
}

/** Kind of an entry whose ENTRY is followed by FILENAME/GOODBYE or nothing: fifo, socket or directory by mode. */
export function kindWithoutContent(mode: number, pos: number): EntryKind {
  switch (fileType(mode)) {
    case S_IFIFO:
      return 'fifo';
    case S_IFSOCK:
      return 'socket';
    case S_IFDIR:
      return 'dir';
    default:
      throw corrupt(`entry of mode ${mode.toString(8)} has no content item`, pos);
  }
}
