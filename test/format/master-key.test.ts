import { constants, createPrivateKey, privateDecrypt, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyConfig, decryptKeyConfig, parseKeyConfig, type KeyConfig } from '../../src/format/key-file.js';
import { generateMasterKeyPair, unwrapKeyWithMasterKey, wrapKeyWithMasterKey } from '../../src/format/master-key.js';
import { codecs } from './codecs.js';
import { expectPbsError } from './expect-error.js';


// A password-less key config is 255 bytes of JSON, more than PKCS#1 v1.5 fits into a 2048-bit modulus (245),
// so the round trips use 3072 bits (the reference always creates 4096).
describe('master key (spec §6.2)', () => {
  let pair: { publicPem: string; privatePem: string };
  let other: { publicPem: string; privatePem: string };
  beforeAll(() => {
    pair = generateMasterKeyPair(3072, 'master secret');
    other = generateMasterKeyPair(3072);
  });

  it('writes SPKI public and encrypted PKCS#8 private PEMs', () => {
    expect(pair.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(pair.privatePem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(other.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  for (const codec of codecs) {
    describe(`${codec.name} codec`, () => {
      const raw = Uint8Array.from(randomBytes(32));
      let cfg: KeyConfig;
      beforeAll(async () => {
        cfg = await createKeyConfig(codec, raw, { kdf: 'none', created: '2023-03-04T05:06:07+01:00' });
      });

      it('wraps with PKCS#1 v1.5 type 2 padding (independent check) and unwraps', async () => {
        const wrapped = wrapKeyWithMasterKey(codec, pair.publicPem, cfg);
        expect(wrapped.length).toBe(384);
        const em = privateDecrypt(
          { key: createPrivateKey({ key: pair.privatePem, passphrase: 'master secret' }), padding: constants.RSA_NO_PADDING },
          wrapped,
        );
        expect([em[0], em[1]]).toEqual([0, 2]);
        const sep = em.indexOf(0, 2);
        expect(sep).toBeGreaterThanOrEqual(10);
        expect(parseKeyConfig(em.subarray(sep + 1))).toEqual(cfg);

        const back = unwrapKeyWithMasterKey(pair.privatePem, wrapped, 'master secret');
        expect(back).toEqual(cfg);
        const out = await decryptKeyConfig(codec, back);
        expect(out.key).toEqual(raw);
        expect(out.created).toBe('2023-03-04T05:06:07+01:00');
      });

      it('refuses protected or inconsistent key configs and too-small moduli', async () => {
        const pb = await createKeyConfig(codec, raw, { kdf: 'pbkdf2', passphrase: new TextEncoder().encode('secret') });
        expectPbsError(() => wrapKeyWithMasterKey(codec, pair.publicPem, pb), 'EINVAL', /kdf null/);
        const wrongFp = { ...cfg, fingerprint: 'ab:'.repeat(31) + 'ab' };
        expectPbsError(() => wrapKeyWithMasterKey(codec, pair.publicPem, wrongFp), 'EINVAL', /does not match/);
        const small = generateMasterKeyPair(2048);
        expectPbsError(() => wrapKeyWithMasterKey(codec, small.publicPem, cfg), 'EINVAL', /does not fit a 2048-bit/);
        expectPbsError(() => wrapKeyWithMasterKey(codec, 'not a pem', cfg), 'EINVAL', /PEM/);
        expectPbsError(() => generateMasterKeyPair(Number('4k')), 'EINVAL', /integer from 1024/);
      });

      it('wrong master key, wrong passphrase, flipped or truncated payload', () => {
        const wrapped = wrapKeyWithMasterKey(codec, pair.publicPem, cfg);
        // Fresh random padding each time: covers ciphertexts both below and above the other key's modulus.
        for (let i = 0; i < 8; i++) {
          const w = wrapKeyWithMasterKey(codec, pair.publicPem, cfg);
          expectPbsError(() => unwrapKeyWithMasterKey(other.privatePem, w), 'EACCES', /wrong master key/);
        }
        expectPbsError(() => unwrapKeyWithMasterKey(pair.privatePem, wrapped, 'nope'), 'EACCES', /passphrase/);
        expectPbsError(() => unwrapKeyWithMasterKey(pair.privatePem, wrapped), 'EACCES', /passphrase/);
        const flipped = wrapped.slice();
        flipped[100] ^= 1;
        expectPbsError(() => unwrapKeyWithMasterKey(pair.privatePem, flipped, 'master secret'), 'EACCES', /wrong master key or corrupt/);
        expectPbsError(() => unwrapKeyWithMasterKey(pair.privatePem, wrapped.subarray(1), 'master secret'), 'ECORRUPT', /383 bytes, expected 384/);
      });
    });
  }
});
