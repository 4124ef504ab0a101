// The portable backend: @noble/hashes, @noble/ciphers and fzstd, no native code.
// fzstd only decompresses, so zstdCompress writes a valid frame of raw (stored) blocks; being larger
// than its input, encodeBlob's "keep only if not larger" rule then stores such data uncompressed.
import { gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Decompress, decompress } from 'fzstd';
import { PbsError } from '../errors.js';
import { SCRYPT_MAXMEM, type Codec } from './codec.js';
import { checkCount, checkGcmArgs, gcmTagMismatch, onceDigest, planZstdDecompress, tooBig } from './checks.js';
import { crc32Table } from './crc32.js';
import { encodeRawZstdFrame, type ZstdFrame } from './zstd-frame.js';

function zstdError(e: unknown, offset: number): PbsError {
  if (e instanceof PbsError) return e;
  return new PbsError('ECORRUPT', `zstd: ${e instanceof Error ? e.message : String(e)}`, { offset, cause: e });
}

/** Decodes one frame that declares its content size; fzstd allocates exactly that much. */
function decodeSized(frame: Uint8Array, f: ZstdFrame, contentSize: number): Uint8Array {
  // Not decompress(frame, out): fzstd compares `out == 1`, which stringifies the whole buffer.
  let out: Uint8Array;
  try {
    out = decompress(frame);
  } catch (e) {
    throw zstdError(e, f.offset);
  }
  if (out.length !== contentSize) {
    throw new PbsError('ECORRUPT', `zstd: frame decodes to ${out.length} bytes, header declares ${contentSize}`, { offset: f.offset });
  }
  return out;
}

/** Decodes a frame of unknown size block by block, stopping once `budget` bytes are exceeded. */
function decodeStreaming(frame: Uint8Array, f: ZstdFrame, budget: number, maxSize: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let total = 0;
  const d = new Decompress((chunk) => {
    total += chunk.length;
    if (total > budget) throw tooBig(maxSize);
    parts.push(chunk);
  });
  try {
    d.push(frame, true);
  } catch (e) {
    throw zstdError(e, f.offset);
  }
  return parts;
}

function zstdDecompress(data: Uint8Array, maxSize: number): Uint8Array {
  const { frames } = planZstdDecompress(data, maxSize);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const f of frames) {
    if (f.skippable) continue;
    const frame = data.subarray(f.offset, f.offset + f.length);
    const got = f.contentSize !== null ? [decodeSized(frame, f, f.contentSize)] : decodeStreaming(frame, f, maxSize - total, maxSize);
    for (const p of got) {
      total += p.length;
      parts.push(p);
    }
    if (total > maxSize) throw tooBig(maxSize);
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function createJsCodec(): Codec {
  return {
    name: 'js',
    sha256: (data) => sha256(data),
    sha256Parts(parts) {
      const h = sha256.create();
      for (const p of parts) h.update(p);
      return h.digest();
    },
    sha256Stream() {
      const h = sha256.create();
      return onceDigest(
        (d) => h.update(d),
        () => h.digest(),
      );
    },
    hmacSha256: (key, data) => hmac(sha256, key, data),
    aesGcmEncrypt(key, iv, plaintext) {
      checkGcmArgs(key, iv);
      // noble derives J0 from a 16-byte nonce with GHASH, as OpenSSL does (tested against node:crypto).
      const sealed = gcm(key, iv).encrypt(plaintext);
      const n = plaintext.length;
      return { ciphertext: sealed.subarray(0, n), tag: sealed.slice(n) };
    },
    aesGcmDecrypt(key, iv, ciphertext, tag) {
      checkGcmArgs(key, iv, tag);
      const sealed = new Uint8Array(ciphertext.length + 16);
      sealed.set(ciphertext, 0);
      sealed.set(tag, ciphertext.length);
      try {
        return gcm(key, iv).decrypt(sealed);
      } catch (e) {
        throw gcmTagMismatch(e);
      }
    },
    // `level` has no effect: the frame stores the data (see the note at the top).
    zstdCompress(data, level) {
      if (!Number.isInteger(level)) throw new PbsError('EINVAL', `zstd level must be an integer, got ${level}`);
      return encodeRawZstdFrame(data);
    },
    zstdDecompress,
    crc32: crc32Table,
    pbkdf2Sha256(password, salt, iterations, dkLen) {
      checkCount('pbkdf2 iterations', iterations, 1);
      checkCount('pbkdf2 dkLen', dkLen, 1);
      return pbkdf2(sha256, password, salt, { c: iterations, dkLen });
    },
    async scrypt(password, salt, n, r, p, dkLen) {
      checkCount('scrypt dkLen', dkLen, 1);
      try {
        return await scryptAsync(password, salt, { N: n, r, p, dkLen, maxmem: SCRYPT_MAXMEM });
      } catch (e) {
        throw new PbsError('EINVAL', `scrypt(N=${n}, r=${r}, p=${p}) refused: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    },
    randomBytes(n) {
      checkCount('random byte count', n, 0);
      const out = new Uint8Array(n);
      // getRandomValues fills at most 64 KiB per call.
      for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, i + 65536));
      return out;
    },
  };
}
