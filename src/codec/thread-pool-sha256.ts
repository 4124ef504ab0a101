// SHA-256 on the libuv thread pool (native/src/sha256-job.c): a chunk digest without moving the chunk to a worker.
import { nativeAddon } from '../native.js';

interface ShaAddon {
  sha256Async(data: Uint8Array): Promise<Uint8Array>;
}

let addon: ShaAddon | null | undefined;

/** The digest function, or null when the addon is not built (callers then hash on the worker pool). */
export function threadPoolSha256(): ShaAddon['sha256Async'] | null {
  if (addon === undefined) {
    try {
      addon = nativeAddon<ShaAddon>();
      if (typeof addon.sha256Async !== 'function') addon = null;
    } catch {
      addon = null;
    }
  }
  return addon ? (data) => addon!.sha256Async(data) : null;
}
