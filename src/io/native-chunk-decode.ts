// Decoding an unencrypted chunk file on the libuv thread pool (native/src/chunk-decode.c, spec §1.1 and §2): no worker
// isolate, every core, and a raw chunk read straight into the buffer the reader gets.
import { PbsError } from '../errors.js';
import { nativeAddon } from '../native.js';
import type { Digest, DigestHex } from '../types.js';

interface DecodeAddon {
  decodeChunkFile(path: string, digest: Uint8Array, out: Uint8Array): Promise<number>;
}

let addon: DecodeAddon | null | undefined;

/** The addon's decoder, or null when the addon is not built (callers then decode on the worker pool). */
function decoder(): DecodeAddon | null {
  if (addon === undefined) {
    try {
      addon = nativeAddon<DecodeAddon>();
      if (typeof addon.decodeChunkFile !== 'function') addon = null;
    } catch {
      addon = null;
    }
  }
  return addon;
}

export function nativeChunkDecodeAvailable(): boolean {
  return decoder() !== null;
}

/**
 * Decodes the chunk file at `path` into all of `out` (the size the index gives), checked against `digest`; true when
 * done, false when the blob is encrypted (the caller decodes those with the key on the worker pool). Missing file:
 * ENOENT; unreadable: EIO; wrong content (magic, zstd frame, size, digest): ECORRUPT — each naming digest and path.
 * `out` is written by another thread until the promise settles.
 */
export async function decodeChunkFile(path: string, digest: Digest, hex: DigestHex, out: Uint8Array): Promise<boolean> {
  const d = decoder();
  if (!d) throw new PbsError('EUNSUPPORTED', 'the native addon has no chunk decoder', { path, digest: hex });
  let n: number;
  try {
    n = await d.decodeChunkFile(path, digest, out);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { corrupt?: boolean };
    if (err.corrupt) throw new PbsError('ECORRUPT', err.message, { digest: hex, path });
    if (err.code === 'ENOENT') throw new PbsError('ENOENT', 'chunk file is missing', { digest: hex, path });
    throw new PbsError('EIO', `cannot read chunk: ${err.message}`, { digest: hex, path, cause: e });
  }
  return n >= 0;
}
