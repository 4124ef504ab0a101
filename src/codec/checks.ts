// Argument and input checks both backends share, so they fail alike with the same PbsError codes.
import { PbsError } from '../errors.js';
import { scanZstdFrames, type ZstdFrame } from './zstd-frame.js';

/** AES-256-GCM as PBS uses it: 32-byte key, 16-byte IV, 16-byte tag. spec §1.4 */
export function checkGcmArgs(key: Uint8Array, iv: Uint8Array, tag?: Uint8Array): void {
  if (key.length !== 32) throw new PbsError('EINVAL', `AES-256-GCM key must be 32 bytes, got ${key.length}`);
  if (iv.length !== 16) throw new PbsError('EINVAL', `AES-256-GCM IV must be 16 bytes, got ${iv.length}`);
  if (tag !== undefined && tag.length !== 16) throw new PbsError('EINVAL', `AES-256-GCM tag must be 16 bytes, got ${tag.length}`);
}

export function gcmTagMismatch(cause: unknown): PbsError {
  return new PbsError('EACCES', 'AES-256-GCM tag does not verify: wrong key or corrupt data', { cause });
}

export function checkCount(what: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new PbsError('EINVAL', `${what} must be an integer >= ${min}, got ${n}`);
}

export function tooBig(maxSize: number): PbsError {
  return new PbsError('ETOOBIG', `zstd payload decodes to more than ${maxSize} bytes`);
}

export interface ZstdPlan {
  frames: ZstdFrame[];
  /** Decoded size when every frame declares its content size, else null. */
  knownSize: number | null;
}

/** Validates the frame structure and refuses early what the headers already show to be too large. */
export function planZstdDecompress(data: Uint8Array, maxSize: number): ZstdPlan {
  checkCount('zstd maxSize', maxSize, 0);
  const frames = scanZstdFrames(data);
  let declared = 0;
  let known = true;
  for (const f of frames) {
    if (f.contentSize === null) known = false;
    else declared += f.contentSize;
  }
  if (declared > maxSize) throw tooBig(maxSize);
  return { frames, knownSize: known ? declared : null };
}

/** Wraps an incremental hash so that use after digest() fails the same way in both backends. */
export function onceDigest(update: (d: Uint8Array) => void, digest: () => Uint8Array): { update(data: Uint8Array): void; digest(): Uint8Array } {
  let done = false;
  const finished = (): PbsError => new PbsError('EINVAL', 'sha256 stream already produced its digest');
  return {
    update(data: Uint8Array): void {
      if (done) throw finished();
      update(data);
    },
    digest(): Uint8Array {
      if (done) throw finished();
      done = true;
      return digest();
    },
  };
}
