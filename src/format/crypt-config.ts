// Secrets derived from the 32-byte encryption key: keyed chunk digests, HMAC, key fingerprint (spec §2).
import type { Codec } from '../codec/codec.js';
import { PbsError } from '../errors.js';
import type { Digest } from '../types.js';

// spec §2: SHA-256("Proxmox Backup Encryption Key Fingerprint")
const FINGERPRINT_INPUT = Uint8Array.from(
  Buffer.from('6ed0ef77471fff4d55c7a8fe4a9db62161407f134c725ddf30992d25ec45ed26', 'hex'),
);
const ID_KEY_SALT = new TextEncoder().encode('_id_key');

export class CryptConfig {
  readonly key: Uint8Array;
  readonly idKey: Uint8Array;
  private readonly codec: Codec;

  constructor(codec: Codec, key: Uint8Array) {
    if (key.length !== 32) throw new PbsError('EINVAL', `encryption key must be 32 bytes, got ${key.length}`);
    this.codec = codec;
    this.key = Uint8Array.from(key);
    this.idKey = codec.pbkdf2Sha256(this.key, ID_KEY_SALT, 10, 32); // spec §2
  }

  /** Digest of an encrypted chunk: SHA-256(data || id_key). spec §2 */
  computeDigest(data: Uint8Array): Digest {
    return this.codec.sha256Parts([data, this.idKey]) as Digest;
  }

  /** spec §2 */
  fingerprint(): Uint8Array {
    return this.codec.sha256Parts([FINGERPRINT_INPUT, this.idKey]);
  }

  fingerprintText(): string {
    return formatFingerprint(this.fingerprint());
  }

  /** HMAC-SHA256 keyed with id_key (manifest signature). spec §2 */
  hmac(data: Uint8Array): Uint8Array {
    return this.codec.hmacSha256(this.idKey, data);
  }
}

function hexPairs(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** "xx:xx:…" over all 32 bytes (95 chars). spec §2 */
export function formatFingerprint(fp: Uint8Array): string {
  if (fp.length !== 32) throw new PbsError('EINVAL', `fingerprint must be 32 bytes, got ${fp.length}`);
  return hexPairs(fp);
}

/** The first 8 bytes in the same form, as shown in listings. spec §2 */
export function shortFingerprint(fp: Uint8Array): string {
  if (fp.length !== 32) throw new PbsError('EINVAL', `fingerprint must be 32 bytes, got ${fp.length}`);
  return hexPairs(fp.subarray(0, 8));
}

/** Strips ':' and hex-decodes; must give 32 bytes. spec §2 */
export function parseFingerprint(s: string): Uint8Array {
  const hex = s.replaceAll(':', '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new PbsError('EINVAL', `not a key fingerprint: ${JSON.stringify(s)}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
