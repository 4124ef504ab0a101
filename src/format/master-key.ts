// Master key: the backup's key config wrapped with RSA PKCS#1 v1.5 for `rsa-encrypted.key.blob` (spec §6.2).
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';
import { CryptConfig, formatFingerprint, parseFingerprint } from './crypt-config.js';
import { encodeKeyConfig, parseKeyConfig, type KeyConfig } from './key-file.js';

/** PKCS#1 v1.5 needs 11 bytes of framing (00 02, at least 8 nonzero padding bytes, 00). */
const PKCS1_OVERHEAD = 11;

/**
 * RSA key pair as PEM: public SPKI, private PKCS#8 (encrypted with AES-256-CBC when a passphrase is given),
 * the forms `proxmox-backup-client key create-master-key` writes.
 */
export function generateMasterKeyPair(bits = 4096, passphrase?: string): { publicPem: string; privatePem: string } {
  if (!Number.isInteger(bits) || bits < 1024 || bits > 16384) {
    throw new PbsError('EINVAL', `RSA master key size must be an integer from 1024 to 16384 bits, got ${bits}`);
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding:
      passphrase === undefined
        ? { type: 'pkcs8', format: 'pem' }
        : { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

function modulusBytes(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined) throw new PbsError('EINVAL', 'master key is not an RSA key');
  return Math.ceil(bits / 8);
}

/**
 * RSA PKCS#1 v1.5 over the compact JSON of a password-less key config; the result is the blob payload.
 * The config's key must match its fingerprint, so a broken config is never locked away. spec §6.2
 */
export function wrapKeyWithMasterKey(codec: Codec, publicPem: string, keyConfigWithoutPassword: KeyConfig): Uint8Array {
  const cfg = keyConfigWithoutPassword;
  if (cfg.kdf !== null) throw new PbsError('EINVAL', 'only a key config without passphrase (kdf null) can be wrapped with a master key');
  const key = Buffer.from(cfg.data, 'base64');
  if (key.length !== 32) throw new PbsError('EINVAL', `key config holds ${key.length} key bytes, expected 32`);
  const fp = new CryptConfig(codec, key).fingerprint();
  if (cfg.fingerprint !== undefined && Buffer.compare(parseFingerprint(cfg.fingerprint), fp) !== 0) {
    throw new PbsError('EINVAL', `key config fingerprint ${cfg.fingerprint} does not match its key (${formatFingerprint(fp)})`);
  }
  let pub: KeyObject;
  try {
    pub = createPublicKey(publicPem);
  } catch (e) {
    throw new PbsError('EINVAL', `master public key is not a readable PEM key: ${(e as Error).message}`, { cause: e });
  }
  const k = modulusBytes(pub);
  const json = Buffer.from(encodeKeyConfig(cfg), 'utf8');
  if (json.length > k - PKCS1_OVERHEAD) {
    throw new PbsError('EINVAL', `key config of ${json.length} bytes does not fit a ${k * 8}-bit RSA master key (max ${k - PKCS1_OVERHEAD})`);
  }
  return new Uint8Array(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, json));
}

/**
 * Strips PKCS#1 v1.5 type-2 padding, reading every byte whatever the content so the work done does not
 * depend on where the padding is wrong. Returns the message start, or -1.
 */
function pkcs1MessageStart(em: Uint8Array): number {
  let bad = (em[0] ^ 0x00) | (em[1] ^ 0x02);
  let sep = 0;
  for (let i = 2; i < em.length; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    const first = isZero & (sep === 0 ? 1 : 0);
    sep = first ? i : sep;
  }
  bad |= sep === 0 ? 1 : 0;
  bad |= sep < 2 + 8 ? 1 : 0;
  return bad === 0 ? sep + 1 : -1;
}

/**
 * Decrypts `rsa-encrypted.key.blob`'s payload with the master private key (optionally passphrase protected).
 * Node 20 refuses PKCS#1 v1.5 private decryption, so the padding is removed here. spec §6.2
 */
export function unwrapKeyWithMasterKey(privatePem: string, wrapped: Uint8Array, passphrase?: string): KeyConfig {
  let priv: KeyObject;
  try {
    priv = createPrivateKey(passphrase === undefined ? privatePem : { key: privatePem, passphrase });
  } catch (e) {
    throw new PbsError('EACCES', `cannot read the master private key (wrong passphrase or not a PEM key): ${(e as Error).message}`, { cause: e });
  }
  const k = modulusBytes(priv);
  if (wrapped.length !== k) {
    throw new PbsError('ECORRUPT', `wrapped key is ${wrapped.length} bytes, expected ${k} for a ${k * 8}-bit master key`);
  }
  let em: Uint8Array;
  try {
    em = new Uint8Array(privateDecrypt({ key: priv, padding: constants.RSA_NO_PADDING }, wrapped));
  } catch (e) {
    // A ciphertext not below this modulus: made for another key, or damaged.
    throw new PbsError('EACCES', `wrapped key does not decrypt: wrong master key or corrupt data (${(e as Error).message})`, { cause: e });
  }
  const start = pkcs1MessageStart(em);
  if (start < 0) throw new PbsError('EACCES', 'wrapped key does not decrypt: wrong master key or corrupt data');
  return parseKeyConfig(em.subarray(start));
}
