// Backend selection: native when zstd-napi loads, else pure JS; PBSFS_CODEC=js|native forces one.
import { PbsError } from '../errors.js';
import type { Codec } from './codec.js';
import { createJsCodec } from './js.js';
import { createNativeCodec } from './native.js';

export type { Codec } from './codec.js';

let native: Codec | undefined;
let nativeFailure: unknown;
let js: Codec | undefined;

/** The node:crypto + zstd-napi backend; throws PbsError('EUNSUPPORTED') when zstd-napi does not load. */
export function nativeCodec(): Codec {
  if (native) return native;
  if (nativeFailure !== undefined) throw nativeFailure; // loading is not retried
  try {
    return (native = createNativeCodec());
  } catch (e) {
    nativeFailure = e;
    throw e;
  }
}

/** The pure-JS backend (no zstd compression: it writes stored frames). */
export function jsCodec(): Codec {
  return (js ??= createJsCodec());
}

export function getCodec(): Codec {
  const forced = process.env.PBSFS_CODEC;
  if (forced === 'js') return jsCodec();
  if (forced === 'native') return nativeCodec();
  if (forced !== undefined && forced !== '') {
    throw new PbsError('EINVAL', `PBSFS_CODEC must be "js" or "native", got ${JSON.stringify(forced)}`);
  }
  try {
    return nativeCodec();
  } catch (e) {
    if (e instanceof PbsError && e.code === 'EUNSUPPORTED') return jsCodec();
    throw e;
  }
}
