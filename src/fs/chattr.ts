// chattr inode flags (FS_IOC_GETFLAGS bits) <-> pxar Stat.flags bits (spec §8.3), for the flags the PBS client maps.
import { STAT_FLAGS } from '../pxar/format.js';
import type { NativeFs } from './native-fs.js';

const MAPPED = ['APPEND', 'NOATIME', 'COMPR', 'NOCOW', 'NODUMP', 'DIRSYNC', 'IMMUTABLE', 'SYNC', 'NOCOMP', 'PROJINHERIT'] as const;

/** pxar flag bits for the chattr bits `fl`; unmapped bits (e.g. ext4's EXTENTS) are dropped. */
export function pxarFlagsFromChattr(fl: number, bits: NativeFs['FS_FL']): number {
  let out = 0;
  for (const name of MAPPED) if ((fl & bits[name]) !== 0) out |= STAT_FLAGS[name];
  return out;
}

/** chattr bits for pxar `flags`, and the mask of all chattr bits pxar can express. */
export function chattrFromPxarFlags(flags: number, bits: NativeFs['FS_FL']): { value: number; mask: number } {
  let value = 0;
  let mask = 0;
  for (const name of MAPPED) {
    mask |= bits[name];
    if ((flags & STAT_FLAGS[name]) !== 0) value |= bits[name];
  }
  return { value: value >>> 0, mask: mask >>> 0 };
}
