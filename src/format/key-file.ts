// Client key file (KeyConfig JSON): the 32-byte key, raw or wrapped by a passphrase-derived key (spec §6.1).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';
import { CryptConfig, formatFingerprint, parseFingerprint } from './crypt-config.js';

export type Kdf = 'scrypt' | 'pbkdf2' | 'none';

export interface KeyConfig {
  kdf: null | { Scrypt: { n: number; r: number; p: number; salt: string } } | { PBKDF2: { iter: number; salt: string } };
  created: string;
  modified: string;
  data: string;
  fingerprint?: string;
  hint?: string;
}

// spec §6.1
const SCRYPT = { n: 65536, r: 8, p: 1 } as const;
const PBKDF2_ITER = 65535;
const MIN_PASSPHRASE = 5;
// Bounds on parameters read from a file, so a hostile key file cannot exhaust memory or hang us:
// the reference's scrypt memory cap (1025 MiB), and a PBKDF2 count far above any real one.
const SCRYPT_MAX_MEM = 1025 * 1024 * 1024;
const PBKDF2_MAX_ITER = 10_000_000;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function base64Decode(s: string, what: string, path?: string): Uint8Array {
  if (!BASE64.test(s)) throw new PbsError('ECORRUPT', `key file ${what} is not base64`, { path });
  return Uint8Array.from(Buffer.from(s, 'base64'));
}

function base64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** "YYYY-MM-DDTHH:MM:SS±HH:MM" in the local time zone. spec §6.1 */
export function localRfc3339(date: Date): string {
  const off = -date.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  return (
    `${String(date.getFullYear()).padStart(4, '0')}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}` +
    `T${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}` +
    `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`
  );
}

function checkPassphrase(passphrase: Uint8Array | undefined, path?: string): Uint8Array {
  if (passphrase === undefined) throw new PbsError('EACCES', 'key file is protected by a passphrase; none given', { path });
  if (passphrase.length < MIN_PASSPHRASE) {
    throw new PbsError('EINVAL', `passphrase is too short (${passphrase.length} bytes, at least ${MIN_PASSPHRASE})`, { path });
  }
  return passphrase;
}

async function deriveKey(codec: Codec, kdf: NonNullable<KeyConfig['kdf']>, passphrase: Uint8Array, path?: string): Promise<Uint8Array> {
  if ('Scrypt' in kdf) {
    const { n, r, p, salt } = kdf.Scrypt;
    const mem = 128 * r * (n + 2) + 128 * r * p;
    if (n < 2 || 2 ** Math.round(Math.log2(n)) !== n || mem > SCRYPT_MAX_MEM) {
      throw new PbsError('ECORRUPT', `key file scrypt parameters n=${n} r=${r} p=${p} are invalid or need over 1025 MiB`, { path });
    }
    return codec.scrypt(passphrase, base64Decode(salt, 'scrypt salt', path), n, r, p, 32);
  }
  const { iter, salt } = kdf.PBKDF2;
  if (iter > PBKDF2_MAX_ITER) throw new PbsError('ECORRUPT', `key file PBKDF2 iteration count ${iter} is unreasonably high`, { path });
  return codec.pbkdf2Sha256(passphrase, base64Decode(salt, 'PBKDF2 salt', path), iter, 32);
}

export interface CreateKeyOptions {
  kdf: Kdf;
  passphrase?: Uint8Array;
  hint?: string;
  /** Kept from the original key when re-wrapping (master-key backup); defaults to now. */
  created?: string;
}

/** Builds a key file for a raw 32-byte key; `modified` is now. spec §6.1 */
export async function createKeyConfig(codec: Codec, rawKey: Uint8Array, opts: CreateKeyOptions): Promise<KeyConfig> {
  const fingerprint = new CryptConfig(codec, rawKey).fingerprintText();
  const now = localRfc3339(new Date());
  const base = { created: opts.created ?? now, modified: now };
  const extras = { fingerprint, ...(opts.hint !== undefined ? { hint: opts.hint } : {}) };
  if (opts.kdf === 'none') return { kdf: null, ...base, data: base64(rawKey), ...extras };
  const passphrase = checkPassphrase(opts.passphrase);
  const salt = codec.randomBytes(32);
  const kdf: NonNullable<KeyConfig['kdf']> =
    opts.kdf === 'scrypt' ? { Scrypt: { ...SCRYPT, salt: base64(salt) } } : { PBKDF2: { iter: PBKDF2_ITER, salt: base64(salt) } };
  const dk = await deriveKey(codec, kdf, passphrase);
  const iv = codec.randomBytes(16);
  const { ciphertext, tag } = codec.aesGcmEncrypt(dk, iv, rawKey);
  const data = new Uint8Array(64);
  data.set(iv, 0);
  data.set(tag, 16);
  data.set(ciphertext, 32);
  return { kdf, ...base, data: base64(data), ...extras };
}

/** Unwraps the key and checks it against the stored fingerprint. spec §6.1 */
export async function decryptKeyConfig(
  codec: Codec,
  cfg: KeyConfig,
  passphrase?: Uint8Array,
  path?: string,
): Promise<{ key: Uint8Array; created: string; fingerprint: Uint8Array }> {
  const data = base64Decode(cfg.data, 'data', path);
  let key: Uint8Array;
  if (cfg.kdf === null) {
    if (data.length !== 32) throw new PbsError('ECORRUPT', `key file holds ${data.length} key bytes, expected 32`, { path });
    key = data;
  } else {
    const pass = checkPassphrase(passphrase, path);
    if (data.length !== 64) throw new PbsError('ECORRUPT', `key file data is ${data.length} bytes, expected 64`, { path });
    const dk = await deriveKey(codec, cfg.kdf, pass, path);
    try {
      key = codec.aesGcmDecrypt(dk, data.subarray(0, 16), data.subarray(32), data.subarray(16, 32));
    } catch (e) {
      throw new PbsError('EACCES', 'unable to decrypt key file: wrong passphrase', { path, cause: e });
    }
  }
  const fingerprint = new CryptConfig(codec, key).fingerprint();
  if (cfg.fingerprint !== undefined) {
    const stored = parseFingerprint(cfg.fingerprint);
    if (Buffer.compare(stored, fingerprint) !== 0) {
      throw new PbsError(
        'ECORRUPT',
        `key file fingerprint ${cfg.fingerprint} does not match its key (${formatFingerprint(fingerprint)})`,
        { path },
      );
    }
  }
  return { key, created: cfg.created, fingerprint };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function parseKdf(v: unknown, path?: string): KeyConfig['kdf'] {
  if (v === null || v === undefined) return null;
  const bad = (): PbsError => new PbsError('ECORRUPT', `key file kdf ${JSON.stringify(v)} is not Scrypt or PBKDF2`, { path });
  if (!isObject(v) || Object.keys(v).length !== 1) throw bad();
  const s = v.Scrypt;
  if (isObject(s)) {
    if (!isPosInt(s.n) || !isPosInt(s.r) || !isPosInt(s.p) || typeof s.salt !== 'string') throw bad();
    return { Scrypt: { n: s.n, r: s.r, p: s.p, salt: s.salt } };
  }
  const k = v.PBKDF2;
  if (isObject(k)) {
    if (!isPosInt(k.iter) || typeof k.salt !== 'string') throw bad();
    return { PBKDF2: { iter: k.iter, salt: k.salt } };
  }
  throw bad();
}

/** Validates the JSON shape; a missing kdf means none. spec §6.1 */
export function parseKeyConfig(json: string | Uint8Array, path?: string): KeyConfig {
  let v: unknown;
  try {
    v = JSON.parse(typeof json === 'string' ? json : new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new PbsError('ECORRUPT', `key file is not valid UTF-8 JSON: ${(e as Error).message}`, { path, cause: e });
  }
  if (!isObject(v)) throw new PbsError('ECORRUPT', 'key file is not a JSON object', { path });
  const { created, modified, data, fingerprint, hint } = v;
  for (const [name, value] of [['created', created], ['modified', modified]] as const) {
    if (typeof value !== 'string' || !RFC3339.test(value)) {
      throw new PbsError('ECORRUPT', `key file ${name} ${JSON.stringify(value)} is not an RFC 3339 time`, { path });
    }
  }
  if (typeof data !== 'string' || !BASE64.test(data)) throw new PbsError('ECORRUPT', 'key file data is not base64', { path });
  const cfg: KeyConfig = { kdf: parseKdf(v.kdf, path), created: created as string, modified: modified as string, data };
  if (fingerprint !== undefined && fingerprint !== null) {
    if (typeof fingerprint !== 'string') throw new PbsError('ECORRUPT', 'key file fingerprint is not a string', { path });
    try {
      parseFingerprint(fingerprint);
    } catch (e) {
      throw new PbsError('ECORRUPT', `key file fingerprint ${JSON.stringify(fingerprint)} is malformed`, { path, cause: e });
    }
    cfg.fingerprint = fingerprint;
  }
  if (hint !== undefined && hint !== null) {
    if (typeof hint !== 'string') throw new PbsError('ECORRUPT', 'key file hint is not a string', { path });
    cfg.hint = hint;
  }
  return cfg;
}

/** Compact JSON in the reference field order; absent optional fields are omitted. spec §6.1 */
export function encodeKeyConfig(cfg: KeyConfig): string {
  return JSON.stringify({
    kdf: cfg.kdf,
    created: cfg.created,
    modified: cfg.modified,
    data: cfg.data,
    fingerprint: cfg.fingerprint,
    hint: cfg.hint,
  });
}
