// The codec interface: every CPU primitive the formats need, with a fast native backend and a portable pure-JS one.

/** scrypt memory ceiling, the one PBS uses for key files (spec §6.1): enough for N=65536, r=8 (64 MiB). */
export const SCRYPT_MAXMEM = 1025 * 1024 * 1024;

export interface Codec {
  readonly name: 'native' | 'js';
  sha256(data: Uint8Array): Uint8Array;
  /** SHA-256 over the concatenation of parts, without concatenating them. */
  sha256Parts(parts: readonly Uint8Array[]): Uint8Array;
  /** Incremental SHA-256: feed data in pieces, then take the digest once. */
  sha256Stream(): { update(data: Uint8Array): void; digest(): Uint8Array };
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** AES-256-GCM, 16-byte IV, empty AAD, 16-byte tag (spec §1.4). */
  aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): { ciphertext: Uint8Array; tag: Uint8Array };
  /** Throws PbsError('EACCES') when the tag does not verify. */
  aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array;
  zstdCompress(data: Uint8Array, level: number): Uint8Array;
  /** Accepts frames with or without the content-size field; throws PbsError('ETOOBIG') past maxSize. */
  zstdDecompress(data: Uint8Array, maxSize: number): Uint8Array;
  crc32(data: Uint8Array): number;
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, dkLen: number): Uint8Array;
  scrypt(password: Uint8Array, salt: Uint8Array, n: number, r: number, p: number, dkLen: number): Promise<Uint8Array>;
  randomBytes(n: number): Uint8Array;
}
