// Test inputs: deterministic pseudo-random bytes and zstd frames made by libzstd in PBS's two styles.
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;

/** xorshift32 bytes; `bits` < 8 masks each byte to make the data compressible. */
export function pseudoRandom(n: number, seed = 1, bits = 8): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  const mask = (1 << bits) - 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) & mask;
  }
  return out;
}

/** One-shot libzstd frame: content size present (PBS 4.x, and 3.x encrypted blobs). */
export function zstdOneShot(data: Uint8Array, level = 1): Uint8Array {
  const dst = new Uint8Array(zstd.compressBound(data.length));
  return dst.slice(0, new zstd.CCtx().compress(dst, data, level));
}

/** Streaming libzstd frame without the content-size field (PBS 3.x unencrypted), optionally checksummed. */
export function zstdStreamed(data: Uint8Array, opts: { checksum?: boolean; windowLog?: number } = {}): Uint8Array {
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.compressionLevel, 1);
  cctx.setParameter(zstd.CParameter.contentSizeFlag, 0);
  if (opts.checksum) cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  if (opts.windowLog) cctx.setParameter(zstd.CParameter.windowLog, opts.windowLog);
  const parts: Uint8Array[] = [];
  let input = data;
  for (let directive = zstd.EndDirective.continue; ; ) {
    const out = new Uint8Array(zstd.cStreamOutSize());
    const [remaining, produced, consumed] = cctx.compressStream2(out, input, directive);
    parts.push(out.slice(0, produced));
    input = input.subarray(consumed);
    if (directive === zstd.EndDirective.continue && input.length === 0) directive = zstd.EndDirective.end;
    else if (directive === zstd.EndDirective.end && remaining === 0) break;
  }
  return Buffer.concat(parts);
}

export function hasContentSize(frame: Uint8Array): boolean {
  return zstd.getFrameContentSize(frame) !== null;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
