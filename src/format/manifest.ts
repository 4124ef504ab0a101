// Snapshot manifest `index.json`: schema checks, pretty encoding, canonical JSON and the HMAC signature (spec §5).
import { PbsError } from '../errors.js';
import { BACKUP_TYPES, type BackupType, type CryptMode } from '../types.js';
import { CryptConfig } from './crypt-config.js';

export interface ManifestFile {
  filename: string;
  'crypt-mode': CryptMode;
  size: number;
  csum: string;
}

export interface BackupManifest {
  'backup-type': BackupType;
  'backup-id': string;
  'backup-time': number;
  files: ManifestFile[];
  unprotected: Record<string, unknown>;
  signature: string | null;
}

const CRYPT_MODES: readonly CryptMode[] = ['none', 'encrypt', 'sign-only'];
const HEX64 = /^[0-9a-fA-F]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(what: string, path?: string): PbsError {
  return new PbsError('ECORRUPT', `invalid manifest: ${what}`, { path });
}

function parseFile(v: unknown, i: number, path?: string): ManifestFile {
  if (!isObject(v)) throw bad(`files[${i}] is not an object`, path);
  const { filename, size, csum } = v;
  const mode = v['crypt-mode'] ?? 'none'; // spec §5.1: absent in old manifests
  if (typeof filename !== 'string' || filename === '') throw bad(`files[${i}].filename is not a non-empty string`, path);
  if (!CRYPT_MODES.includes(mode as CryptMode)) throw bad(`files[${i}].crypt-mode ${JSON.stringify(mode)} is unknown`, path);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`files[${i}].size is not a u64`, path);
  if (typeof csum !== 'string' || !HEX64.test(csum)) throw bad(`files[${i}].csum is not 64 hex chars`, path);
  return { filename, 'crypt-mode': mode as CryptMode, size, csum };
}

/** Parses and validates; missing crypt-mode -> 'none', missing unprotected -> {}. spec §5.1 */
export function parseManifest(json: Uint8Array | string, path?: string): BackupManifest {
  let v: unknown;
  try {
    v = JSON.parse(typeof json === 'string' ? json : new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new PbsError('ECORRUPT', `manifest is not valid UTF-8 JSON: ${(e as Error).message}`, { path, cause: e });
  }
  if (!isObject(v)) throw bad('top level is not an object', path);
  const type = v['backup-type'];
  const id = v['backup-id'];
  const time = v['backup-time'];
  const files = v.files;
  const unprotected = v.unprotected ?? {};
  const signature = v.signature ?? null;
  if (!BACKUP_TYPES.includes(type as BackupType)) throw bad(`backup-type ${JSON.stringify(type)} is unknown`, path);
  if (typeof id !== 'string' || id === '') throw bad('backup-id is not a non-empty string', path);
  if (typeof time !== 'number' || !Number.isSafeInteger(time)) throw bad('backup-time is not an integer', path);
  if (!Array.isArray(files)) throw bad('files is not an array', path);
  if (!isObject(unprotected)) throw bad('unprotected is not an object', path);
  // Any string is kept: a malformed signature simply fails verification, as in the reference.
  if (signature !== null && typeof signature !== 'string') throw bad('signature is neither null nor a string', path);
  return {
    'backup-type': type as BackupType,
    'backup-id': id,
    'backup-time': time,
    files: files.map((f, i) => parseFile(f, i, path)),
    unprotected,
    signature: signature as string | null,
  };
}

/** Pretty JSON with 2-space indent, fields in the reference struct's order. spec §5.1 */
export function encodeManifest(m: BackupManifest): Uint8Array {
  const ordered = {
    'backup-type': m['backup-type'],
    'backup-id': m['backup-id'],
    'backup-time': m['backup-time'],
    files: m.files.map((f) => ({ filename: f.filename, 'crypt-mode': f['crypt-mode'], size: f.size, csum: f.csum })),
    unprotected: m.unprotected,
    signature: m.signature,
  };
  return new TextEncoder().encode(JSON.stringify(ordered, null, 2));
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function writeCanonical(v: unknown, out: string[], where: string): void {
  if (v === null) throw new PbsError('EINVAL', `canonical JSON: null at ${where}`);
  switch (typeof v) {
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      // Only integers print identically in JS and serde_json; anything else would sign different bytes.
      if (!Number.isSafeInteger(v)) throw new PbsError('EINVAL', `canonical JSON: ${v} at ${where} is not a safe integer`);
      out.push(String(v));
      return;
    case 'string':
      if (LONE_SURROGATE.test(v)) throw new PbsError('EINVAL', `canonical JSON: string at ${where} is not valid Unicode`);
      // JSON.stringify escapes exactly what serde_json does for well-formed strings: " \ and C0 controls.
      out.push(JSON.stringify(v));
      return;
    case 'object':
      break;
    default:
      throw new PbsError('EINVAL', `canonical JSON: ${typeof v} at ${where} has no JSON form`);
  }
  if (Array.isArray(v)) {
    out.push('[');
    v.forEach((item, i) => {
      if (i > 0) out.push(',');
      writeCanonical(item, out, `${where}[${i}]`);
    });
    out.push(']');
    return;
  }
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort(compareUtf8);
  out.push('{');
  keys.forEach((k, i) => {
    if (i > 0) out.push(',');
    writeCanonical(k, out, `${where}.${k}`);
    out.push(':');
    writeCanonical(obj[k], out, `${where}.${k}`);
  });
  out.push('}');
}

/** Sorted keys (UTF-8 byte order), no whitespace, serde_json escapes; null is an error. spec §5.2 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  writeCanonical(value, out, '$');
  return out.join('');
}

/** The bytes the signature covers: the manifest without `unprotected` and `signature`. spec §5.2 */
export function manifestSignedBytes(m: BackupManifest): Uint8Array {
  const { unprotected: _u, signature: _s, ...signed } = m;
  return new TextEncoder().encode(canonicalJson(signed));
}

/** hex HMAC-SHA256(id_key, canonical JSON). spec §5.2 */
export function manifestSignature(m: BackupManifest, crypt: CryptConfig): string {
  return Buffer.from(crypt.hmac(manifestSignedBytes(m))).toString('hex');
}

/** Returns a copy with `signature` and `unprotected['key-fingerprint']` set. spec §5.2 */
export function signManifest(m: BackupManifest, crypt: CryptConfig): BackupManifest {
  return {
    ...m,
    unprotected: { ...m.unprotected, 'key-fingerprint': crypt.fingerprintText() },
    signature: manifestSignature(m, crypt),
  };
}

/**
 * spec §5.2: a stored key-fingerprint needs a key and must match it (checked even when unsigned, as the reference
 * client's restore does); a signature is checked when a key is given; unsigned manifests are accepted.
 */
export function verifyManifest(m: BackupManifest, crypt?: CryptConfig, path?: string): void {
  const stored = m.unprotected['key-fingerprint'];
  if (stored !== undefined && stored !== null && typeof stored !== 'string') {
    throw bad('unprotected.key-fingerprint is not a string', path);
  }
  if (crypt === undefined) {
    if (stored) throw new PbsError('EACCES', `missing key: manifest was written with key ${stored}`, { path });
    return;
  }
  const mine = crypt.fingerprintText();
  if (stored && stored.replaceAll(':', '').toLowerCase() !== mine.replaceAll(':', '')) {
    throw new PbsError('EACCES', `wrong key: manifest was written with key ${stored}, the key given is ${mine}`, { path });
  }
  if (m.signature === null) return;
  if (!timingSafeEqualHex(manifestSignature(m, crypt), m.signature)) {
    // With a matching fingerprint the key is right, so the signed content must have changed.
    if (stored) throw new PbsError('ECORRUPT', 'manifest signature does not verify: signed content was modified', { path });
    throw new PbsError('EACCES', 'manifest signature does not verify: wrong key or modified manifest', { path });
  }
}

function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** By file name suffix, as the reference does. spec §5.1 */
export function archiveType(filename: string): 'fixed-index' | 'dynamic-index' | 'blob' {
  if (filename.endsWith('.didx')) return 'dynamic-index';
  if (filename.endsWith('.fidx')) return 'fixed-index';
  if (filename.endsWith('.blob')) return 'blob';
  throw new PbsError('EINVAL', `unknown archive type of ${JSON.stringify(filename)} (expected .fidx, .didx or .blob)`);
}
