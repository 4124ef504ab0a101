import { createDecipheriv, pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isPbsError, PbsError } from '../../src/errors.js';
import { CryptConfig } from '../../src/format/crypt-config.js';
import {
  createKeyConfig,
  decryptKeyConfig,
  encodeKeyConfig,
  localRfc3339,
  parseKeyConfig,
  type KeyConfig,
} from '../../src/format/key-file.js';
import { codecs } from './codecs.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const PASS = enc('correct horse');
const PATH = '/root/.config/proxmox-backup/encryption-key.json';

async function expectPbsError(p: Promise<unknown>, code: string, mention: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isPbsError(e)).toBe(true);
  expect((e as PbsError).code).toBe(code);
  expect((e as PbsError).message).toMatch(mention);
}

/** Independent unwrap of `data` per spec §6.1 with node:crypto directly. */
function independentUnwrap(cfg: KeyConfig, passphrase: Uint8Array): Buffer {
  const data = Buffer.from(cfg.data, 'base64');
  expect(data.length).toBe(64);
  let dk: Buffer;
  if (cfg.kdf && 'Scrypt' in cfg.kdf) {
    const { n, r, p, salt } = cfg.kdf.Scrypt;
    dk = scryptSync(passphrase, Buffer.from(salt, 'base64'), 32, { N: n, r, p, maxmem: 1025 * 1024 * 1024 });
  } else if (cfg.kdf && 'PBKDF2' in cfg.kdf) {
    dk = pbkdf2Sync(passphrase, Buffer.from(cfg.kdf.PBKDF2.salt, 'base64'), cfg.kdf.PBKDF2.iter, 32, 'sha256');
  } else {
    throw new Error('no kdf');
  }
  const d = createDecipheriv('aes-256-gcm', dk, data.subarray(0, 16));
  d.setAuthTag(data.subarray(16, 32));
  return Buffer.concat([d.update(data.subarray(32)), d.final()]);
}

describe('localRfc3339', () => {
  it('formats local time with a ±HH:MM offset', () => {
    const s = localRfc3339(new Date(Date.UTC(2024, 4, 1, 10, 0, 0)));
    expect(s).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
    // Whatever the zone, the string names the same instant.
    expect(Date.parse(s)).toBe(Date.UTC(2024, 4, 1, 10, 0, 0));
  });
});

describe('parseKeyConfig / encodeKeyConfig', () => {
  const sample =
    '{"kdf":{"Scrypt":{"n":65536,"r":8,"p":1,"salt":"AAAA"}},"created":"2024-05-01T12:00:00+02:00",' +
    '"modified":"2024-05-01T12:00:00+02:00","data":"AAAA","fingerprint":"' +
    '0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b"}';

  it('round-trips compact JSON in the reference field order', () => {
    expect(encodeKeyConfig(parseKeyConfig(sample))).toBe(sample);
    const withHint = { ...parseKeyConfig(sample), kdf: { PBKDF2: { iter: 65535, salt: 'AAAA' } }, hint: 'the usual' };
    expect(parseKeyConfig(enc(encodeKeyConfig(withHint)))).toEqual(withHint);
  });

  it('treats a missing kdf as none', () => {
    const j = JSON.parse(sample) as Record<string, unknown>;
    delete j.kdf;
    expect(parseKeyConfig(JSON.stringify(j)).kdf).toBeNull();
  });

  it('rejects malformed files naming the file', () => {
    const bad = (mut: (j: Record<string, unknown>) => void): string => {
      const j = JSON.parse(sample) as Record<string, unknown>;
      mut(j);
      return JSON.stringify(j);
    };
    expect(() => parseKeyConfig('{', PATH)).toThrow(/not valid UTF-8 JSON.*encryption-key\.json/);
    expect(() => parseKeyConfig(bad((j) => (j.kdf = { Argon2: {} })), PATH)).toThrow(/kdf.*encryption-key/);
    expect(() => parseKeyConfig(bad((j) => (j.data = 'no base64!')), PATH)).toThrow(/data is not base64/);
    expect(() => parseKeyConfig(bad((j) => (j.created = 'yesterday')), PATH)).toThrow(/created/);
    expect(() => parseKeyConfig(bad((j) => (j.fingerprint = 'ab:cd')), PATH)).toThrow(/fingerprint.*malformed/);
  });
});

for (const codec of codecs) {
  describe(`key files (${codec.name} codec)`, () => {
    const raw = Uint8Array.from(randomBytes(32));
    const fp = new CryptConfig(codec, raw).fingerprintText();

    for (const kdf of ['scrypt', 'pbkdf2'] as const) {
      it(`${kdf}: creates, re-reads and decrypts; an independent reader agrees`, async () => {
        const cfg = await createKeyConfig(codec, raw, { kdf, passphrase: PASS, hint: 'horse' });
        expect(cfg.fingerprint).toBe(fp);
        expect(cfg.hint).toBe('horse');
        if (kdf === 'scrypt') expect(cfg.kdf).toMatchObject({ Scrypt: { n: 65536, r: 8, p: 1 } });
        else expect(cfg.kdf).toMatchObject({ PBKDF2: { iter: 65535 } });
        const salt = Object.values(cfg.kdf!)[0].salt as string;
        expect(Buffer.from(salt, 'base64')).toHaveLength(32);
        expect(Buffer.compare(independentUnwrap(cfg, PASS), raw)).toBe(0);
        const reread = parseKeyConfig(encodeKeyConfig(cfg));
        const out = await decryptKeyConfig(codec, reread, PASS, PATH);
        expect(out.key).toEqual(raw);
        expect(out.created).toBe(cfg.created);
        expect(out.fingerprint).toEqual(new CryptConfig(codec, raw).fingerprint());
      });

      it(`${kdf}: wrong, short and missing passphrase`, async () => {
        const cfg = await createKeyConfig(codec, raw, { kdf, passphrase: PASS });
        await expectPbsError(decryptKeyConfig(codec, cfg, enc('wrong horse'), PATH), 'EACCES', /wrong passphrase.*encryption-key/);
        await expectPbsError(decryptKeyConfig(codec, cfg, enc('abcd'), PATH), 'EINVAL', /too short.*encryption-key/);
        await expectPbsError(decryptKeyConfig(codec, cfg, undefined, PATH), 'EACCES', /passphrase.*encryption-key/);
        await expectPbsError(createKeyConfig(codec, raw, { kdf, passphrase: enc('abcd') }), 'EINVAL', /too short/);
      });
    }

    it('none: data is the raw key in base64', async () => {
      const cfg = await createKeyConfig(codec, raw, { kdf: 'none', created: '2020-01-01T00:00:00+00:00' });
      expect(cfg.kdf).toBeNull();
      expect(cfg.created).toBe('2020-01-01T00:00:00+00:00');
      expect(Buffer.from(cfg.data, 'base64')).toEqual(Buffer.from(raw));
      expect((await decryptKeyConfig(codec, parseKeyConfig(encodeKeyConfig(cfg)))).key).toEqual(raw);
    });

    it('tampered fingerprint or key data', async () => {
      const cfg = await createKeyConfig(codec, raw, { kdf: 'none' });
      const otherFp = new CryptConfig(codec, Uint8Array.from(randomBytes(32))).fingerprintText();
      await expectPbsError(decryptKeyConfig(codec, { ...cfg, fingerprint: otherFp }, undefined, PATH), 'ECORRUPT', /fingerprint.*does not match.*encryption-key/);
      const shortData = { ...cfg, data: Buffer.from(raw.subarray(0, 31)).toString('base64') };
      await expectPbsError(decryptKeyConfig(codec, shortData, undefined, PATH), 'ECORRUPT', /31 key bytes/);
      const pb = await createKeyConfig(codec, raw, { kdf: 'pbkdf2', passphrase: PASS });
      const flipped = Buffer.from(pb.data, 'base64');
      flipped[40] ^= 1;
      await expectPbsError(decryptKeyConfig(codec, { ...pb, data: flipped.toString('base64') }, PASS, PATH), 'EACCES', /wrong passphrase/);
    });

    it('refuses hostile KDF parameters instead of exhausting memory or time', async () => {
      const cfg = await createKeyConfig(codec, raw, { kdf: 'pbkdf2', passphrase: PASS });
      const hugeScrypt: KeyConfig = { ...cfg, kdf: { Scrypt: { n: 2 ** 24, r: 8, p: 1, salt: 'AAAA' } } };
      await expectPbsError(decryptKeyConfig(codec, hugeScrypt, PASS, PATH), 'ECORRUPT', /scrypt parameters/);
      const oddN: KeyConfig = { ...cfg, kdf: { Scrypt: { n: 1000, r: 8, p: 1, salt: 'AAAA' } } };
      await expectPbsError(decryptKeyConfig(codec, oddN, PASS, PATH), 'ECORRUPT', /scrypt parameters/);
      const hugeIter: KeyConfig = { ...cfg, kdf: { PBKDF2: { iter: 2 ** 31, salt: 'AAAA' } } };
      await expectPbsError(decryptKeyConfig(codec, hugeIter, PASS, PATH), 'ECORRUPT', /iteration count/);
    });
  });
}
