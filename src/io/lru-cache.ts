// An LRU map bounded by the total size of its values: bytes for decoded chunks (the default size), entries for the
// mount's directory listings.
export class ByteLru<K, V> {
  private readonly map = new Map<K, V>();
  private bytes = 0;

  /** `onEvict` sees every value that leaves the map (pushed out or replaced); `sizeOf` is what a value costs. */
  constructor(
    private readonly maxBytes: number,
    private readonly onEvict?: (value: V) => void,
    private readonly sizeOf: (value: V) => number = (v) => (v as { byteLength: number }).byteLength,
  ) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    if (this.sizeOf(value) > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= this.sizeOf(old);
      this.map.delete(key);
      if (old !== value) this.onEvict?.(old);
    }
    this.map.set(key, value);
    this.bytes += this.sizeOf(value);
    this.trim(this.maxBytes);
  }

  /** Drops the least recently used values until at most `maxBytes` are held. */
  trim(maxBytes: number): void {
    for (const [k, v] of this.map) {
      if (this.bytes <= maxBytes) break;
      this.map.delete(k);
      this.bytes -= this.sizeOf(v);
      this.onEvict?.(v);
    }
  }

  /** What the held values cost, in sizeOf units. */
  get heldBytes(): number {
    return this.bytes;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  get size(): number {
    return this.map.size;
  }
}
