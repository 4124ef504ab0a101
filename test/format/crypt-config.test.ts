import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CryptConfig, formatFingerprint, parseFingerprint, shortFingerprint } from '../../src/format/crypt-config.js';
import { codecs } from './codecs.js';

const K = Uint8Array.from({ length: 32 }, (_, i) => i);
const VECTOR = '0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b';

for (const codec of codecs) {
  describe(`CryptConfig (${codec.name} codec)`, () => {
    const cc = new CryptConfig(codec, K);
    const idKey = pbkdf2Sync(K, '_id_key', 10, 32, 'sha256');

    it('matches the spec fingerprint vector (K = 0x00..0x1f)', () => {
      expect(cc.fingerprintText()).toBe(VECTOR);
      expect(cc.fingerprintText()).toHaveLength(95);
      expect(shortFingerprint(cc.fingerprint())).toBe(VECTOR.slice(0, 23));
    });

    it('derives id_key with PBKDF2("_id_key", 10 rounds)', () => {
      expect(Buffer.compare(Buffer.from(cc.idKey), idKey)).toBe(0);
    });

    it('digests are SHA-256(data || id_key) and HMAC is keyed with id_key', () => {
      const data = new TextEncoder().encode('hello chunk');
      const want = createHash('sha256').update(data).update(idKey).digest();
      expect(Buffer.compare(Buffer.from(cc.computeDigest(data)), want)).toBe(0);
      const mac = createHmac('sha256', idKey).update(data).digest();
      expect(Buffer.compare(Buffer.from(cc.hmac(data)), mac)).toBe(0);
    });

    it('refuses keys that are not 32 bytes', () => {
      expect(() => new CryptConfig(codec, new Uint8Array(31))).toThrow(/32 bytes/);
    });
  });
}

describe('fingerprint text', () => {
  it('parses with or without colons and in any case', () => {
    const fp = parseFingerprint(VECTOR);
    expect(formatFingerprint(fp)).toBe(VECTOR);
    expect(parseFingerprint(VECTOR.replaceAll(':', '').toUpperCase())).toEqual(fp);
  });
  it('rejects wrong lengths and non-hex', () => {
    expect(() => parseFingerprint(VECTOR.slice(0, 92))).toThrow(/not a key fingerprint/);
    expect(() => parseFingerprint(VECTOR.replace('0e', 'zz'))).toThrow(/not a key fingerprint/);
    expect(() => formatFingerprint(new Uint8Array(8))).toThrow(/32 bytes/);
  });
});
