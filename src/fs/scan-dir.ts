// A directory's entries with everything a pxar ENTRY needs (spec §8.3, §8.4), read by the native addon's scanDir
// (native/src/scandir.c) in one thread-pool job per directory instead of several synchronous calls per file.
import type { Timestamp } from '../pxar/format.js';
import { nativeAddon } from '../native.js';

/** The lstat fields the archiver uses; ids are bigints because st_dev/st_ino/st_rdev may exceed 2^53. */
export interface EntryStat {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Floor-based seconds plus nanoseconds, as the kernel reports them. */
  mtime: Timestamp;
  dev: bigint;
  ino: bigint;
  rdev: bigint;
}

export interface RawXattr {
  name: Buffer;
  value: Buffer;
}

/** One scanned entry. Only regular files and directories have xattrs, flags and a project id (others: empty/null). */
export interface ScannedEntry {
  name: Buffer;
  st: EntryStat;
  /** The xattrs pxar may carry (user.*, trusted.*, security.NTACL, security.capability, POSIX ACLs), in llistxattr order. */
  xattrs: RawXattr[];
  /** Raw FS_*_FL bits; null where the filesystem has none. */
  flags: number | null;
  projid: number | null;
  /** The whole contents of a small regular file, read along by scanDir (exactly st.size bytes). */
  contents?: Uint8Array;
  /** A symlink's target, read along by scanDir (absent when it could not be read then). */
  linkTarget?: Buffer;
}

/** An entry whose metadata could not be read: the errno error (code, syscall) of the failing call. */
export interface FailedEntry {
  name: Buffer;
  error: Error & { code?: string };
}

interface RawScan {
  names: Buffer[];
  nums: Float64Array;
  ids: BigInt64Array;
  xattrs: (Buffer | undefined)[];
  errors: ((Error & { code?: string }) | undefined)[];
  contents: (Uint8Array | undefined)[];
  links: (Buffer | undefined)[];
}

interface ScanAddon {
  scanDir(path: Uint8Array, maxFile: number, readBudget: number): Promise<RawScan>;
  scanPath(path: Uint8Array): RawScan;
}

const NUM_FIELDS = 9;
const ID_FIELDS = 3;
const EMPTY: RawXattr[] = [];

/**
 * Every entry of directory `path` (no `.`/`..`), in readdir order. Regular files (not hardlinked) of at most
 * `maxFile` bytes are read along, up to `readBudget` bytes in all. Rejects with the errno error when the
 * directory cannot be read.
 */
export async function scanDir(path: Uint8Array, maxFile = 0, readBudget = 0): Promise<(ScannedEntry | FailedEntry)[]> {
  return unpack(await nativeAddon<ScanAddon>().scanDir(path, maxFile, readBudget));
}

/** The one entry at `path` (not following a final symlink); throws its errno error. */
export function scanPath(path: Uint8Array): ScannedEntry {
  const [e] = unpack(nativeAddon<ScanAddon>().scanPath(path));
  if ('error' in e!) throw e.error;
  return e!;
}

function unpack(raw: RawScan): (ScannedEntry | FailedEntry)[] {
  const { nums, ids } = raw;
  return raw.names.map((name, i) => {
    const error = raw.errors[i];
    if (error) return { name, error };
    const n = i * NUM_FIELDS;
    const d = i * ID_FIELDS;
    const xa = raw.xattrs[i];
    return {
      name,
      st: {
        mode: nums[n]!,
        nlink: nums[n + 1]!,
        uid: nums[n + 2]!,
        gid: nums[n + 3]!,
        size: nums[n + 4]!,
        mtime: { secs: nums[n + 5]!, nanos: nums[n + 6]! },
        dev: ids[d]!,
        ino: ids[d + 1]!,
        rdev: ids[d + 2]!,
      },
      xattrs: xa ? parseXattrs(xa) : EMPTY,
      flags: nums[n + 7]! < 0 ? null : nums[n + 7]!,
      projid: nums[n + 8]! < 0 ? null : nums[n + 8]!,
      contents: raw.contents[i],
      linkTarget: raw.links[i],
    };
  });
}

/** The addon's packing: name NUL, u32le value length, value; repeated. */
function parseXattrs(buf: Buffer): RawXattr[] {
  const out: RawXattr[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    const len = buf.readUInt32LE(end + 1);
    out.push({ name: buf.subarray(at, end), value: buf.subarray(end + 5, end + 5 + len) });
    at = end + 5 + len;
  }
  return out;
}
