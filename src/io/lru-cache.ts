// A byte-bounded LRU map: decoded chunks are large, so the bound is in bytes, not entries.
export class ByteLru<K, V extends { byteLength: number }> {
  private readonly map = new Map<K, V>();
  private bytes = 0;

  /** `onEvict` sees every value that leaves the map (pushed out or replaced). */
  constructor(
    private readonly maxBytes: number,
    private readonly onEvict?: (value: V) => void,
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
    if (value.byteLength > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.map.delete(key);
      if (old !== value) this.onEvict?.(old);
    }
    this.map.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
      this.onEvict?.(v);
    }
  }

  get size(): number {
    return this.map.size;
  }
}
