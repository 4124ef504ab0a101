// Encrypted and signed backups, key files and the master key, through the CLI; checked with the independent reader.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { MiB, makeImage, sha256 } from '../helpers/images.js';
import { chunkFile, idKey, readBlob, readFidx, sha256hex } from '../helpers/independent-reader.js';

const T0 = 1_700_000_000;
const SNAP = 'host/enc/2023-11-14T22:13:20Z';
const PASS = { PBS_ENCRYPTION_PASSWORD: 'correct horse' };

describe('encryption through the CLI', () => {
  let sb: Sandbox;
  let store: string;
  let image: Buffer;
  let keyPath: string;

  beforeAll(async () => {
    sb = sandbox();
    store = join(sb.dir, 'store');
    image = makeImage(join(sb.dir, 'disk.raw'), 3, 'enc');
    keyPath = join(sb.dir, 'key.json');
    await sb.ok(['datastore', 'create', 'enc', store]);
  });
  afterAll(() => sb?.cleanup());

  it('creates scrypt, pbkdf2 and plain key files', async () => {
    await sb.ok(['key', 'create', keyPath], { env: PASS });
    const cfg = JSON.parse(readFileSync(keyPath, 'utf8'));
    expect(Object.keys(cfg.kdf)).toEqual(['Scrypt']);
    expect(cfg.fingerprint).toMatch(/^([0-9a-f]{2}:){31}[0-9a-f]{2}$/);
    expect(readFileSync(keyPath).length).toBeGreaterThan(0);
    expect((await sb.run(['key', 'create', keyPath], { env: PASS })).code).not.toBe(0); // never overwrites
    await sb.ok(['key', 'create', join(sb.dir, 'k2.json'), '--kdf', 'pbkdf2'], { env: PASS });
    expect(Object.keys(JSON.parse(readFileSync(join(sb.dir, 'k2.json'), 'utf8')).kdf)).toEqual(['PBKDF2']);
    await sb.ok(['key', 'create', join(sb.dir, 'k3.json'), '--kdf', 'none']);
    expect(JSON.parse(readFileSync(join(sb.dir, 'k3.json'), 'utf8')).kdf).toBe(null);
    const shown = JSON.parse((await sb.ok(['key', 'show', keyPath, '--output-format', 'json'])).stdout);
    expect(shown).toMatchObject({ kdf: 'scrypt', fingerprint: cfg.fingerprint });
  });

  it('writes encrypted chunks with keyed digests and a signed manifest', async () => {
    await sb.ok(['backup', 'disk.img:' + join(sb.dir, 'disk.raw'), '--store', 'enc', '--backup-id', 'enc', '--backup-time', String(T0), '--keyfile', keyPath], { env: PASS });
    const snapDir = join(store, 'host', 'enc', '2023-11-14T22:13:20Z');
    const manifest = JSON.parse(Buffer.from(readBlob(readFileSync(join(snapDir, 'index.json.blob'))).data).toString());
    const keyCfg = JSON.parse(readFileSync(keyPath, 'utf8'));
    expect(manifest.unprotected['key-fingerprint']).toBe(keyCfg.fingerprint);
    expect(manifest.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.files[0]['crypt-mode']).toBe('encrypt');
    const fidx = readFidx(readFileSync(join(snapDir, 'disk.img.fidx')));
    // Raw key is needed to check the digests independently: decrypt the key file with the same KDF.
    const raw = await rawKey(keyPath, PASS.PBS_ENCRYPTION_PASSWORD);
    fidx.digests.forEach((d, i) => {
      const blob = chunkFile(store, d);
      expect(['7b6785be222d4cf0', 'e6591bbf0bbfd80b']).toContain(blob.subarray(0, 8).toString('hex'));
      const { data } = readBlob(blob, raw);
      expect(sha256hex(data, idKey(raw))).toBe(d);
      expect(Buffer.compare(Buffer.from(data), image.subarray(i * 4 * MiB, (i + 1) * 4 * MiB))).toBe(0);
    });
  });

  it('restores with the key and refuses without it or with another key', async () => {
    const target = join(sb.dir, 'out.raw');
    await sb.ok(['restore', SNAP, 'disk.img', target, '--store', 'enc', '--keyfile', keyPath], { env: PASS });
    expect(sha256(readFileSync(target))).toBe(sha256(image));
    const noKey = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'x.raw'), '--store', 'enc']);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/encrypted|key/i);
    const other = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'y.raw'), '--store', 'enc', '--keyfile', join(sb.dir, 'k3.json')]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/key/i);
    const wrongPass = await sb.run(['restore', SNAP, 'disk.img', join(sb.dir, 'z.raw'), '--store', 'enc', '--keyfile', keyPath], { env: { PBS_ENCRYPTION_PASSWORD: 'wrong horse' } });
    expect(wrongPass.code).not.toBe(0);
  });

  it('sign-only keeps chunks readable without the key but signs the manifest', async () => {
    await sb.ok(['backup', 'disk.img:' + join(sb.dir, 'disk.raw'), '--store', 'enc', '--backup-id', 'signed', '--backup-time', String(T0), '--keyfile', keyPath, '--crypt-mode', 'sign-only'], { env: PASS });
    const snapDir = join(store, 'host', 'signed', '2023-11-14T22:13:20Z');
    const manifest = JSON.parse(Buffer.from(readBlob(readFileSync(join(snapDir, 'index.json.blob'))).data).toString());
    expect(manifest.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.files[0]['crypt-mode']).toBe('sign-only');
    const fidx = readFidx(readFileSync(join(snapDir, 'disk.img.fidx')));
    expect(sha256hex(readBlob(chunkFile(store, fidx.digests[1]!)).data)).toBe(fidx.digests[1]);
  });

  it('changes the passphrase without changing the key', async () => {
    const before = JSON.parse(readFileSync(keyPath, 'utf8')).fingerprint;
    await sb.ok(['key', 'change-passphrase', keyPath], { env: { ...PASS, PBSFS_NEW_ENCRYPTION_PASSWORD: 'battery staple' } });
    expect(JSON.parse(readFileSync(keyPath, 'utf8')).fingerprint).toBe(before);
    await sb.ok(['restore', SNAP, 'disk.img', join(sb.dir, 'after.raw'), '--store', 'enc', '--keyfile', keyPath], { env: { PBS_ENCRYPTION_PASSWORD: 'battery staple' } });
  });

  it('recovers the key with the master key', async () => {
    const env = { PBS_ENCRYPTION_PASSWORD: 'battery staple', PBSFS_NEW_ENCRYPTION_PASSWORD: 'master pass' };
    await sb.ok(['key', 'create-master-key', '--output-dir', sb.dir], { env });
    await sb.ok(['backup', 'disk.img:' + join(sb.dir, 'disk.raw'), '--store', 'enc', '--backup-id', 'enc', '--backup-time', String(T0 + 1), '--keyfile', keyPath,
      '--master-pubkey-file', join(sb.dir, 'master-public.pem')], { env });
    const snap = 'host/enc/2023-11-14T22:13:21Z';
    expect(readdirSync(join(store, 'host', 'enc', '2023-11-14T22:13:21Z'))).toContain('rsa-encrypted.key.blob');
    const wrapped = join(sb.dir, 'rsa-encrypted.key');
    await sb.ok(['restore', snap, 'rsa-encrypted.key', wrapped, '--store', 'enc', '--keyfile', keyPath], { env });
    const recovered = join(sb.dir, 'recovered.json');
    await sb.ok(['key', 'import-with-master-key', recovered, '--master-keyfile', join(sb.dir, 'master-private.pem'), '--encrypted-keyfile', wrapped],
      { env: { PBSFS_MASTER_KEY_PASSWORD: 'master pass', PBSFS_NEW_ENCRYPTION_PASSWORD: 'new key pass' } });
    expect(JSON.parse(readFileSync(recovered, 'utf8')).fingerprint).toBe(JSON.parse(readFileSync(keyPath, 'utf8')).fingerprint);
    await sb.ok(['restore', snap, 'disk.img', join(sb.dir, 'via-recovered.raw'), '--store', 'enc', '--keyfile', recovered], { env: { PBS_ENCRYPTION_PASSWORD: 'new key pass' } });
    expect(sha256(readFileSync(join(sb.dir, 'via-recovered.raw')))).toBe(sha256(image));
  });

  it('prints a paper key with a QR code', async () => {
    const r = await sb.ok(['key', 'paperkey', join(sb.dir, 'k3.json')]);
    expect(r.stdout).toMatch(/BEGIN PROXMOX BACKUP KEY/);
    expect(r.stdout).toMatch(/[█▀▄]/);
  });
});

/** Decrypts a scrypt key file with node:crypto only (spec §6.1), independent of src/. */
async function rawKey(path: string, pass: string): Promise<Buffer> {
  const { scryptSync, createDecipheriv } = await import('node:crypto');
  const cfg = JSON.parse(readFileSync(path, 'utf8'));
  const s = cfg.kdf.Scrypt;
  const dk = scryptSync(pass, Buffer.from(s.salt, 'base64'), 32, { N: s.n, r: s.r, p: s.p, maxmem: 1025 * 1024 * 1024 });
  const data = Buffer.from(cfg.data, 'base64');
  const d = createDecipheriv('aes-256-gcm', dk, data.subarray(0, 16));
  d.setAuthTag(data.subarray(16, 32));
  return Buffer.concat([d.update(data.subarray(32)), d.final()]);
}
