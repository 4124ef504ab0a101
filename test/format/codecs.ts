// Test-only Codec over node:crypto, zstd-napi and fzstd, used until src/codec/index.ts lands.
import { createCipheriv, createDecipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, scrypt } from 'node:crypto';
import { crc32 } from 'node:zlib';
import zstd from 'zstd-napi';
import { decompress } from 'fzstd';
import type { Codec } from '../../src/codec/codec.js';
import { PbsError } from '../../src/errors.js';

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export const testCodec: Codec = {
  name: 'native',
  sha256: (d) => u8(createHash('sha256').update(d).digest()),
  sha256Parts: (parts) => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return u8(h.digest());
  },
  sha256Stream: () => {
    const h = createHash('sha256');
    return { update: (d) => void h.update(d), digest: () => u8(h.digest()) };
  },
  hmacSha256: (k, d) => u8(createHmac('sha256', k).update(d).digest()),
  aesGcmEncrypt: (key, iv, pt) => {
    const c = createCipheriv('aes-256-gcm', key, iv);
    const ciphertext = u8(Buffer.concat([c.update(pt), c.final()]));
    return { ciphertext, tag: u8(c.getAuthTag()) };
  },
  aesGcmDecrypt: (key, iv, ct, tag) => {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    try {
      return u8(Buffer.concat([d.update(ct), d.final()]));
    } catch (e) {
      throw new PbsError('EACCES', 'AES-GCM tag mismatch', { cause: e });
    }
  },
  zstdCompress: (d, level) => u8(zstd.compress(d, { compressionLevel: level })),
  zstdDecompress: (d, max) => {
    const out = decompress(d);
    if (out.length > max) throw new PbsError('ETOOBIG', `zstd output over ${max}`);
    return out;
  },
  crc32: (d) => crc32(d),
  pbkdf2Sha256: (pw, salt, it, len) => u8(pbkdf2Sync(pw, salt, it, len, 'sha256')),
  scrypt: (pw, salt, N, r, p, len) =>
    new Promise((res, rej) =>
      scrypt(pw, salt, len, { N, r, p, maxmem: 1025 * 1024 * 1024 }, (e, k) => (e ? rej(e) : res(u8(k)))),
    ),
  randomBytes: (n) => u8(randomBytes(n)),
};

export const codecs: readonly Codec[] = [testCodec];
