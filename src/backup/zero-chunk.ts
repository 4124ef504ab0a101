// All-zero data (unallocated disk regions) is recognised by memcmp instead of hashing, so it costs nothing.
const ZERO_PAGE = new Uint8Array(1 << 20);

export function isZero(data: Uint8Array): boolean {
  for (let off = 0; off < data.byteLength; off += ZERO_PAGE.byteLength) {
    const part = data.subarray(off, Math.min(off + ZERO_PAGE.byteLength, data.byteLength));
    if (Buffer.compare(part, ZERO_PAGE.subarray(0, part.byteLength)) !== 0) return false;
  }
  return true;
}

/** Remembers the digest of an all-zero chunk per length (one hash per session instead of one per chunk). */
export class ZeroDigests {
  private readonly byLength = new Map<number, Uint8Array>();

  constructor(private readonly digestOf: (data: Uint8Array) => Uint8Array) {}

  /** The digest when `data` is all zeros, else undefined. */
  lookup(data: Uint8Array): Uint8Array | undefined {
    if (!isZero(data)) return undefined;
    let d = this.byLength.get(data.byteLength);
    if (!d) {
      d = this.digestOf(data);
      this.byLength.set(data.byteLength, d);
    }
    return d;
  }
}
