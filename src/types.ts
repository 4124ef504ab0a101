import { PbsError } from './errors.js';

// Value types shared by every room. Brands keep digests, namespaces and names from mixing with plain strings.
export type Brand<T, B extends string> = T & { readonly __brand: B };

/** 32 raw SHA-256 bytes (chunk digest, index csum). */
export type Digest = Brand<Uint8Array, 'Digest'>;
/** 64 lowercase hex chars of a Digest. */
export type DigestHex = Brand<string, 'DigestHex'>;

export type BackupType = 'vm' | 'ct' | 'host';
export const BACKUP_TYPES: readonly BackupType[] = ['vm', 'ct', 'host'];

/** Namespace as its components; root = []. Text form `a/b/c`. */
export type BackupNamespace = Brand<readonly string[], 'BackupNamespace'>;

export interface GroupRef {
  ns: BackupNamespace;
  type: BackupType;
  id: string;
}

export interface SnapshotRef extends GroupRef {
  /** Unix seconds (UTC). */
  time: number;
}

export type CryptMode = 'none' | 'encrypt' | 'sign-only';

export function digestToHex(d: Uint8Array): DigestHex {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex') as DigestHex;
}

export function digestFromHex(hex: string): Digest {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new PbsError('EINVAL', `not a 64-hex digest: ${JSON.stringify(hex)}`);
  return new Uint8Array(Buffer.from(hex, 'hex')) as Digest;
}
