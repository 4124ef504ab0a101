// Which of the four DataBlob kinds a chunk file holds, from its 8-byte magic (spec §1.1).
// The chunk store needs this for its insert rules (spec §4.1) without decoding the blob.
const MAGICS: ReadonlyArray<{ hex: string; encrypted: boolean; compressed: boolean }> = [
  { hex: '42ab3807be8370a1', encrypted: false, compressed: false },
  { hex: '31b958426fb6a37f', encrypted: false, compressed: true },
  { hex: '7b6785be222d4cf0', encrypted: true, compressed: false },
  { hex: 'e6591bbf0bbfd80b', encrypted: true, compressed: true },
];

export interface BlobKind {
  encrypted: boolean;
  compressed: boolean;
}

/** Header sizes: unencrypted 12, encrypted 44 (spec §1.2). */
export function blobHeaderSize(kind: BlobKind): number {
  return kind.encrypted ? 44 : 12;
}

/** The kind named by the first 8 bytes, or undefined for an unknown magic. */
export function blobKind(bytes: Uint8Array): BlobKind | undefined {
  if (bytes.length < 8) return undefined;
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('hex');
  const m = MAGICS.find((x) => x.hex === hex);
  return m && { encrypted: m.encrypted, compressed: m.compressed };
}
