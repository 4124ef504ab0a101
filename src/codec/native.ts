// The fast backend: node:crypto, zlib.crc32 and libzstd through zstd-napi's low-level binding.
import { createCipheriv, createDecipheriv, createHash, createHmac, pbkdf2Sync, randomFillSync, scrypt } from 'node:crypto';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { PbsError } from '../errors.js';
import { SCRYPT_MAXMEM, type Codec } from './codec.js';
import { checkCount, checkGcmArgs, gcmTagMismatch, onceDigest, planZstdDecompress, tooBig } from './checks.js';
import { crc32Table } from './crc32.js';

type Binding = typeof ZstdBinding;

/** Output piece size while streaming a frame whose content size is unknown. */
const STREAM_CHUNK = 4 * 1024 * 1024;

/** Loads zstd-napi; throws PbsError('EUNSUPPORTED') when its native module is unavailable. */
function loadZstd(): Binding {
  try {
    // The binding (not the high-level API) gives streaming control needed to bound output size.
    return createRequire(import.meta.url)('zstd-napi/binding') as Binding;
  } catch (e) {
    throw new PbsError('EUNSUPPORTED', `zstd-napi native module does not load: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

// Buffers behave differently from Uint8Array (slice() is a view); callers get plain Uint8Arrays.
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function zstdError(e: unknown): PbsError {
  return new PbsError('ECORRUPT', `zstd: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) >>> 0 : crc32Table; // zlib.crc32 needs Node >= 20.15

export function createNativeCodec(): Codec {
  const zstd = loadZstd();
  const cctx = new zstd.CCtx();
  let scratch = new Uint8Array(0);
  const dctx = new zstd.DCtx();

  function decompressStreaming(data: Uint8Array, maxSize: number, bound: number): Uint8Array {
    dctx.reset(zstd.ResetDirective.sessionOnly);
    const parts: Uint8Array[] = [];
    let total = 0;
    let inPos = 0;
    let ret = 1;
    while (!(ret === 0 && inPos === data.length)) {
      // Never more than maxSize + 1 bytes in all: one byte past the limit proves the frame too big.
      const out = new Uint8Array(Math.max(1, Math.min(bound - total, maxSize + 1 - total, STREAM_CHUNK)));
      let outPos = 0;
      while (outPos < out.length && !(ret === 0 && inPos === data.length)) {
        let produced: number;
        let consumed: number;
        try {
          [ret, produced, consumed] = dctx.decompressStream(out.subarray(outPos), data.subarray(inPos));
        } catch (e) {
          throw zstdError(e);
        }
        if (produced === 0 && consumed === 0) throw new PbsError('ECORRUPT', 'zstd: truncated frame', { offset: inPos });
        outPos += produced;
        inPos += consumed;
      }
      total += outPos;
      if (total > maxSize) throw tooBig(maxSize);
      parts.push(out.subarray(0, outPos));
    }
    if (parts.length === 1 && parts[0].byteLength === parts[0].buffer.byteLength) return parts[0];
    const result = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      result.set(p, at);
      at += p.length;
    }
    return result;
  }

  return {
    name: 'native',
    sha256: (data) => plain(createHash('sha256').update(data).digest()),
    sha256Parts(parts) {
      const h = createHash('sha256');
      for (const p of parts) h.update(p);
      return plain(h.digest());
    },
    sha256Stream() {
      const h = createHash('sha256');
      return onceDigest(
        (d) => h.update(d),
        () => plain(h.digest()),
      );
    },
    hmacSha256: (key, data) => plain(createHmac('sha256', key).update(data).digest()),
    aesGcmEncrypt(key, iv, plaintext) {
      checkGcmArgs(key, iv);
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
      const first = c.update(plaintext);
      const rest = c.final();
      const ciphertext = rest.length === 0 ? plain(first) : plain(Buffer.concat([first, rest]));
      return { ciphertext, tag: plain(c.getAuthTag()) };
    },
    aesGcmDecrypt(key, iv, ciphertext, tag) {
      checkGcmArgs(key, iv, tag);
      const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
      d.setAuthTag(tag);
      const first = d.update(ciphertext);
      let rest: Buffer;
      try {
        rest = d.final();
      } catch (e) {
        throw gcmTagMismatch(e);
      }
      return rest.length === 0 ? plain(first) : plain(Buffer.concat([first, rest]));
    },
    zstdCompress(data, level) {
      if (!Number.isInteger(level) || level < zstd.minCLevel() || level > zstd.maxCLevel()) {
        throw new PbsError('EINVAL', `zstd level must be an integer in ${zstd.minCLevel()}..${zstd.maxCLevel()}, got ${level}`);
      }
      // One scratch buffer per codec: a fresh compressBound()-sized buffer per chunk is garbage the GC collects late.
      const bound = zstd.compressBound(data.length);
      if (scratch.length < bound) scratch = new Uint8Array(bound);
      const n = cctx.compress(scratch.subarray(0, bound), data, level);
      return scratch.slice(0, n);
    },
    zstdDecompress(data, maxSize) {
      const { frames, knownSize } = planZstdDecompress(data, maxSize);
      if (knownSize === null) {
        const bound = frames.reduce((sum, f) => sum + (f.contentSize ?? f.maxOutput), 0);
        return decompressStreaming(data, maxSize, bound);
      }
      const out = new Uint8Array(knownSize);
      let n: number;
      try {
        n = dctx.decompress(out, data);
      } catch (e) {
        throw zstdError(e);
      }
      if (n !== knownSize) throw new PbsError('ECORRUPT', `zstd: frames decode to ${n} bytes, headers declare ${knownSize}`);
      return out;
    },
    crc32,
    pbkdf2Sha256(password, salt, iterations, dkLen) {
      checkCount('pbkdf2 iterations', iterations, 1);
      checkCount('pbkdf2 dkLen', dkLen, 1);
      return plain(pbkdf2Sync(password, salt, iterations, dkLen, 'sha256'));
    },
    async scrypt(password, salt, n, r, p, dkLen) {
      checkCount('scrypt dkLen', dkLen, 1);
      const refused = (e: unknown): PbsError =>
        new PbsError('EINVAL', `scrypt(N=${n}, r=${r}, p=${p}) refused: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      return new Promise((resolve, reject) => {
        try {
          scrypt(password, salt, dkLen, { N: n, r, p, maxmem: SCRYPT_MAXMEM }, (err, key) => (err ? reject(refused(err)) : resolve(plain(key))));
        } catch (e) {
          reject(refused(e)); // bad parameters throw synchronously
        }
      });
    },
    randomBytes(n) {
      checkCount('random byte count', n, 0);
      const out = new Uint8Array(n);
      randomFillSync(out);
      return out;
    },
  };
}
