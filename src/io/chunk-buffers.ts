// Decoded-chunk buffers used again after the cache lets go of them: a fresh 4 MiB buffer per chunk costs page faults
// and zeroing, and the garbage it leaves drives a major GC every few chunks (each one unmapping the old buffers).

/** Buffers kept for reuse at most (16 MiB of 4 MiB chunks); more are left to the GC. */
const MAX_FREE = 4;

export class ChunkBuffers {
  /** Buffers made here: only these come back. */
  private readonly owned = new WeakSet<Uint8Array>();
  private readonly free: Uint8Array[] = [];
  private quarantine: Uint8Array[] = [];
  private scheduled = false;

  /** A buffer of `size` bytes with unspecified contents: the caller overwrites all of it before anyone reads it. */
  take(size: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength === size);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    // Dynamic chunks rarely share a size: a buffer nobody asked for goes to the GC rather than stay here.
    this.free.shift();
    const b = Buffer.allocUnsafeSlow(size);
    const out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    this.owned.add(out);
    return out;
  }

  /**
   * Takes a buffer nobody reads any more. It becomes reusable only in a later event-loop turn: a reader that got it
   * in this turn (from the cache, or from the decode that just finished) uses it before this turn ends.
   */
  giveBack(buf: Uint8Array): void {
    if (!this.owned.has(buf)) return;
    this.quarantine.push(buf);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (const b of this.quarantine) if (this.free.length < MAX_FREE) this.free.push(b);
      this.quarantine = [];
    }).unref();
  }
}
