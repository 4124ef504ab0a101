import { createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CryptConfig } from '../../src/format/crypt-config.js';
import {
  archiveType,
  canonicalJson,
  encodeManifest,
  parseManifest,
  signManifest,
  verifyManifest,
  type BackupManifest,
} from '../../src/format/manifest.js';
import { codecs } from './codecs.js';
import { expectPbsError } from './expect-error.js';


// spec §5.2 test vector: host/elsa/2020-06-26T13:56:05Z
const vectorManifest = (): BackupManifest => ({
  'backup-type': 'host',
  'backup-id': 'elsa',
  'backup-time': Date.parse('2020-06-26T13:56:05Z') / 1000,
  files: [
    { filename: 'test1.img.fidx', 'crypt-mode': 'encrypt', size: 200, csum: '01'.repeat(32) },
    { filename: 'abc.blob', 'crypt-mode': 'none', size: 200, csum: '02'.repeat(32) },
  ],
  unprotected: {},
  signature: null,
});
const VECTOR_SIGNATURE = 'd7b446fb7db081662081d4b40fedd858a1d6307a5aff4ecff7d5bf4fd35679e9';

describe('canonicalJson (spec §5.2)', () => {
  it('sorts keys and drops all whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, false, { d: 'x', c: -3 }] })).toBe('{"a":[true,false,{"c":-3,"d":"x"}],"b":1}');
  });
  it('sorts keys by UTF-8 bytes, not UTF-16 units', () => {
    // U+E000 is EE 80 80 in UTF-8 and sorts before U+1F600 (F0 ...); in UTF-16 the surrogate D83D comes first.
    expect(canonicalJson({ '\u{1F600}': 1, '\uE000': 2 })).toBe('{"\uE000":2,"\u{1F600}":1}');
  });
  it('escapes like serde_json: short forms, \\u00xx lowercase, no / or non-ASCII escaping', () => {
    expect(canonicalJson('"\\\n\r\t\b\f\u0001\u001f\u007f/é')).toBe('"\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\u007f/é"');
  });
  it('refuses null, non-integers and lone surrogates', () => {
    expectPbsError(() => canonicalJson({ a: [1, null] }), 'EINVAL', /null at \$\.a\[1\]/);
    expectPbsError(() => canonicalJson({ a: 1.5 }), 'EINVAL', /not a safe integer/);
    expectPbsError(() => canonicalJson('\uD800'), 'EINVAL', /not valid Unicode/);
  });
});

describe('parseManifest / encodeManifest (spec §5.1)', () => {
  const path = '/ds/host/elsa/2020-06-26T13:56:05Z/index.json.blob';

  it('round-trips through pretty JSON with 2-space indent', () => {
    const m = { ...vectorManifest(), unprotected: { notes: 'hi', verify_state: { state: 'ok', upid: 'U' } } };
    const text = new TextDecoder().decode(encodeManifest(m));
    expect(text.split('\n')[1]).toBe('  "backup-type": "host",');
    expect(JSON.parse(text)).toEqual(m);
    expect(parseManifest(text)).toEqual(m);
  });

  it('defaults missing crypt-mode to none, unprotected to {}, signature to null', () => {
    const old = { 'backup-type': 'vm', 'backup-id': '100', 'backup-time': 1, files: [{ filename: 'a.blob', size: 3, csum: 'ab'.repeat(32) }] };
    const m = parseManifest(new TextEncoder().encode(JSON.stringify(old)));
    expect(m.files[0]['crypt-mode']).toBe('none');
    expect(m.unprotected).toEqual({});
    expect(m.signature).toBeNull();
  });

  it('rejects bad JSON and schema violations naming the file', () => {
    expectPbsError(() => parseManifest('{"backup-type":', path), 'ECORRUPT', /not valid UTF-8 JSON.*index\.json\.blob/);
    expectPbsError(() => parseManifest(new Uint8Array([0xff, 0xfe]), path), 'ECORRUPT', /index\.json\.blob/);
    type Json = Record<string, unknown> & { files: (Record<string, unknown> | null)[] };
    const good = JSON.parse(new TextDecoder().decode(encodeManifest(vectorManifest()))) as Json;
    const broken = (mut: (j: Json) => void): string => {
      const j = structuredClone(good);
      mut(j);
      return JSON.stringify(j);
    };
    expectPbsError(() => parseManifest(broken((j) => (j.files[0]!.size = null)), path), 'ECORRUPT', /files\[0\]\.size.*index\.json/);
    expectPbsError(() => parseManifest(broken((j) => (j.files[1] = null)), path), 'ECORRUPT', /files\[1\]/);
    expectPbsError(() => parseManifest(broken((j) => (j['backup-type'] = 'lxc')), path), 'ECORRUPT', /backup-type/);
    expectPbsError(() => parseManifest(broken((j) => (j.files[0]!.csum = 'xyz')), path), 'ECORRUPT', /csum/);
    expectPbsError(() => parseManifest(broken((j) => (j.files[0]!['crypt-mode'] = 'aes')), path), 'ECORRUPT', /crypt-mode/);
    expectPbsError(() => parseManifest(broken((j) => (j['backup-time'] = 1.5)), path), 'ECORRUPT', /backup-time/);
    expectPbsError(() => parseManifest('[]', path), 'ECORRUPT', /not an object/);
  });

  it('archiveType goes by suffix', () => {
    expect(archiveType('root.pxar.didx')).toBe('dynamic-index');
    expect(archiveType('drive-scsi0.img.fidx')).toBe('fixed-index');
    expect(archiveType('qemu-server.conf.blob')).toBe('blob');
    expectPbsError(() => archiveType('root.pxar'), 'EINVAL', /unknown archive type/);
  });
});

for (const codec of codecs) {
  describe(`manifest signature (${codec.name} codec)`, () => {
    let crypt: CryptConfig;
    beforeAll(async () => {
      const key = await codec.scrypt(new TextEncoder().encode('test'), new Uint8Array(0), 65536, 8, 1, 32);
      crypt = new CryptConfig(codec, key);
    });

    it('matches the upstream test vector', () => {
      const signed = signManifest(vectorManifest(), crypt);
      expect(signed.signature).toBe(VECTOR_SIGNATURE);
      expect(signed.unprotected['key-fingerprint']).toBe(crypt.fingerprintText());
      // Independently: HMAC over hand-written canonical bytes.
      const canon =
        '{"backup-id":"elsa","backup-time":1593179765,"backup-type":"host","files":[' +
        `{"crypt-mode":"encrypt","csum":"${'01'.repeat(32)}","filename":"test1.img.fidx","size":200},` +
        `{"crypt-mode":"none","csum":"${'02'.repeat(32)}","filename":"abc.blob","size":200}]}`;
      const idKey = pbkdf2Sync(crypt.key, '_id_key', 10, 32, 'sha256');
      expect(createHmac('sha256', idKey).update(canon).digest('hex')).toBe(VECTOR_SIGNATURE);
    });

    it('ignores unprotected content and verifies after a JSON round trip', () => {
      const signed = signManifest({ ...vectorManifest(), unprotected: { notes: 'x' } }, crypt);
      expect(signed.signature).toBe(VECTOR_SIGNATURE);
      const reread = parseManifest(encodeManifest({ ...signed, unprotected: { ...signed.unprotected, notes: 'changed' } }));
      expect(() => verifyManifest(reread, crypt)).not.toThrow();
    });

    it('detects changed signed content, wrong and missing keys', () => {
      const path = '/ds/host/elsa/x/index.json.blob';
      const signed = signManifest(vectorManifest(), crypt);
      const other = new CryptConfig(codec, Uint8Array.from(randomBytes(32)));
      const tampered = { ...signed, files: [{ ...signed.files[0], size: 201 }, signed.files[1]] };
      expectPbsError(() => verifyManifest(tampered, crypt, path), 'ECORRUPT', /signature does not verify.*index\.json/);
      expectPbsError(() => verifyManifest(signed, other, path), 'EACCES', /wrong key.*index\.json/);
      expectPbsError(() => verifyManifest(signed, undefined, path), 'EACCES', /missing key.*index\.json/);
      const noFp = { ...signed, unprotected: {} };
      expectPbsError(() => verifyManifest(noFp, other, path), 'EACCES', /wrong key or modified/);
    });

    it('accepts unsigned manifests, with or without a key', () => {
      expect(() => verifyManifest(vectorManifest(), crypt)).not.toThrow();
      expect(() => verifyManifest(vectorManifest())).not.toThrow();
    });
  });
}
