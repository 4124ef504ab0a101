import { createCipheriv, createDecipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isPbsError } from '../../src/errors.js';
import { crc32Table } from '../../src/codec/crc32.js';
import { jsCodec, nativeCodec } from '../../src/codec/index.js';
import { hex, pseudoRandom } from './helpers.js';

const te = new TextEncoder();
const backends = [nativeCodec(), jsCodec()];

function expectPbs(f: () => unknown, code: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(isPbsError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

describe.each(backends)('$name codec primitives', (codec) => {
  it('sha256 known vectors, parts and stream agree', () => {
    expect(hex(codec.sha256(te.encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(codec.sha256(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const data = pseudoRandom(100_003, 7);
    const whole = hex(codec.sha256(data));
    expect(hex(codec.sha256Parts([data.subarray(0, 10), data.subarray(10, 70_000), data.subarray(70_000)]))).toBe(whole);
    const s = codec.sha256Stream();
    for (let i = 0; i < data.length; i += 4093) s.update(data.subarray(i, i + 4093));
    expect(hex(s.digest())).toBe(whole);
    expectPbs(() => s.digest(), 'EINVAL');
    expectPbs(() => s.update(data), 'EINVAL');
  });

  it('hmac-sha256 matches RFC 4231 test cases 1 and 2', () => {
    expect(hex(codec.hmacSha256(new Uint8Array(20).fill(0x0b), te.encode('Hi There')))).toBe(
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
    expect(hex(codec.hmacSha256(te.encode('Jefe'), te.encode('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('pbkdf2-sha256 matches a published vector and derives the PBS id_key', () => {
    // RFC 7914 §11 PBKDF2-HMAC-SHA256 vector.
    expect(hex(codec.pbkdf2Sha256(te.encode('passwd'), te.encode('salt'), 1, 64))).toBe(
      '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783',
    );
    expectPbs(() => codec.pbkdf2Sha256(te.encode('x'), te.encode('y'), 0, 32), 'EINVAL');
  });

  it('scrypt matches RFC 7914 vector 2 and refuses absurd parameters', async () => {
    const dk = await codec.scrypt(te.encode('password'), te.encode('NaCl'), 1024, 8, 16, 64);
    expect(hex(dk)).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
    await expect(codec.scrypt(te.encode('p'), te.encode('s'), 2 ** 24, 8, 1, 32)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(codec.scrypt(te.encode('p'), te.encode('s'), 1000, 8, 1, 32)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('crc32 check value and agreement with the table implementation', () => {
    expect(codec.crc32(te.encode('123456789'))).toBe(0xcbf43926);
    expect(codec.crc32(new Uint8Array(0))).toBe(0);
    const data = pseudoRandom(65_537, 3);
    expect(codec.crc32(data)).toBe(crc32Table(data));
  });

  it('randomBytes gives fresh bytes of the asked length', () => {
    const a = codec.randomBytes(70_000);
    expect(a.length).toBe(70_000);
    expect(hex(codec.randomBytes(32))).not.toBe(hex(codec.randomBytes(32)));
    expect(codec.randomBytes(0).length).toBe(0);
  });

  it('aes-256-gcm round-trips and rejects tampering with EACCES', () => {
    const key = pseudoRandom(32, 11);
    const iv = pseudoRandom(16, 12);
    for (const n of [0, 1, 15, 16, 17, 4096, 100_000]) {
      const pt = pseudoRandom(n, n + 1);
      const { ciphertext, tag } = codec.aesGcmEncrypt(key, iv, pt);
      expect(ciphertext.length).toBe(n);
      expect(tag.length).toBe(16);
      expect(hex(codec.aesGcmDecrypt(key, iv, ciphertext, tag))).toBe(hex(pt));
    }
    const { ciphertext, tag } = codec.aesGcmEncrypt(key, iv, te.encode('attack at dawn'));
    const badTag = tag.slice();
    badTag[0] ^= 1;
    expectPbs(() => codec.aesGcmDecrypt(key, iv, ciphertext, badTag), 'EACCES');
    const badCt = ciphertext.slice();
    badCt[3] ^= 0x80;
    expectPbs(() => codec.aesGcmDecrypt(key, iv, badCt, tag), 'EACCES');
    const otherKey = key.slice();
    otherKey[31] ^= 1;
    expectPbs(() => codec.aesGcmDecrypt(otherKey, iv, ciphertext, tag), 'EACCES');
    expectPbs(() => codec.aesGcmEncrypt(key.subarray(0, 16), iv, ciphertext), 'EINVAL');
    expectPbs(() => codec.aesGcmEncrypt(key, iv.subarray(0, 12), ciphertext), 'EINVAL');
    expectPbs(() => codec.aesGcmDecrypt(key, iv, ciphertext, tag.subarray(0, 12)), 'EINVAL');
  });
});

describe('backends agree', () => {
  const [native, js] = backends;

  it('sha256, hmac, pbkdf2, crc32 give identical outputs on the same inputs', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, 131_073]) {
      const d = pseudoRandom(n, n + 5);
      expect(hex(js.sha256(d))).toBe(hex(native.sha256(d)));
      expect(hex(js.hmacSha256(d.subarray(0, 70), d))).toBe(hex(native.hmacSha256(d.subarray(0, 70), d)));
      expect(js.crc32(d)).toBe(native.crc32(d));
    }
    const key = pseudoRandom(32, 99);
    // spec §2: id_key = PBKDF2-HMAC-SHA256(K, "_id_key", 10, 32)
    expect(hex(js.pbkdf2Sha256(key, te.encode('_id_key'), 10, 32))).toBe(hex(native.pbkdf2Sha256(key, te.encode('_id_key'), 10, 32)));
  });

  it('scrypt agrees at the key-file parameters N=65536, r=8, p=1', async () => {
    const pw = te.encode('correct horse');
    const salt = pseudoRandom(32, 5);
    const [a, b] = await Promise.all([native.scrypt(pw, salt, 65536, 8, 1, 32), js.scrypt(pw, salt, 65536, 8, 1, 32)]);
    expect(hex(b)).toBe(hex(a));
  });

  it('spec §2 fingerprint vector: K = 00..1f', () => {
    const K = Uint8Array.from({ length: 32 }, (_, i) => i);
    const fpInput = Buffer.from('6ed0ef77471fff4d55c7a8fe4a9db62161407f134c725ddf30992d25ec45ed26', 'hex');
    for (const c of backends) {
      const idKey = c.pbkdf2Sha256(K, te.encode('_id_key'), 10, 32);
      expect(hex(c.sha256(te.encode('Proxmox Backup Encryption Key Fingerprint')))).toBe(hex(fpInput));
      expect(hex(c.sha256Parts([fpInput, idKey]))).toBe('0eabd4460b6eb9ca345023dee2b778c790e54a1683b9659c0a57ae199090159b');
    }
  });

  it('aes-256-gcm with a 16-byte IV is cross-compatible between node:crypto and noble, both ways', () => {
    for (const n of [0, 5, 16, 33, 65_536 + 7]) {
      const key = pseudoRandom(32, n + 1);
      const iv = pseudoRandom(16, n + 2);
      const pt = pseudoRandom(n, n + 3);
      const fromNative = native.aesGcmEncrypt(key, iv, pt);
      const fromJs = js.aesGcmEncrypt(key, iv, pt);
      expect(hex(fromJs.ciphertext)).toBe(hex(fromNative.ciphertext));
      expect(hex(fromJs.tag)).toBe(hex(fromNative.tag));
      expect(hex(js.aesGcmDecrypt(key, iv, fromNative.ciphertext, fromNative.tag))).toBe(hex(pt));
      expect(hex(native.aesGcmDecrypt(key, iv, fromJs.ciphertext, fromJs.tag))).toBe(hex(pt));
    }
  });

  it('the native backend is plain OpenSSL GCM with a 128-bit IV (no IV truncation or padding)', () => {
    const key = pseudoRandom(32, 1);
    const iv = pseudoRandom(16, 2);
    const pt = pseudoRandom(1000, 3);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    const { ciphertext, tag } = jsCodec().aesGcmEncrypt(key, iv, pt);
    expect(hex(ciphertext)).toBe(hex(ct));
    expect(hex(tag)).toBe(hex(c.getAuthTag()));
    // A 12-byte IV derives J0 differently: the 16-byte path must not collapse to it.
    const c12 = createCipheriv('aes-256-gcm', key, iv.subarray(0, 12));
    expect(hex(Buffer.concat([c12.update(pt), c12.final()]))).not.toBe(hex(ct));
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    expect(hex(Buffer.concat([d.update(ciphertext), d.final()]))).toBe(hex(pt));
  });
});
