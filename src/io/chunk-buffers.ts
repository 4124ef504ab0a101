// Chunk buffers used again: decoded chunks once the cache lets go of them, written chunks once they are stored. A fresh
// 4 MiB buffer per chunk costs page faults (on virtual machines each one is expensive) and zeroing, and the garbage it
// leaves drives a major GC every few chunks. Dynamic chunks rarely share a size, so buffers come in whole-MiB capacity
// classes and a chunk gets a view of the first `size` bytes of a free buffer of its class or the next one.

/** Free buffers kept at most by default, in bytes of capacity; the oldest go to the GC first. */
const FREE_BUDGET = 16 * 1024 * 1024;
const MiB = 1024 * 1024;

/** The capacity a buffer for `size` bytes is made with: whole MiB, or a power of two below 1 MiB. */
function capacityFor(size: number): number {
  if (size >= MiB) return Math.ceil(size / MiB) * MiB;
  let c = 4096;
  while (c < size) c *= 2;
  return c;
}

export class ChunkBuffers {
  /** `freeBudget`: bytes of free buffers kept for reuse. */
  constructor(private readonly freeBudget = FREE_BUDGET) {}

  /** Buffers made here: only views of these come back. */
  private readonly owned = new WeakSet<ArrayBuffer>();
  /** Free buffers, oldest first. */
  private free: ArrayBuffer[] = [];
  private freeBytes = 0;
  private quarantine: ArrayBuffer[] = [];
  private scheduled = false;

  /** A buffer of `size` bytes with unspecified contents: the caller overwrites all of it before anyone reads it. */
  take(size: number): Uint8Array<ArrayBuffer> {
    const want = capacityFor(size);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const c = this.free[i]!.byteLength;
      // A much larger buffer would hold resident memory the cache does not count as used.
      if (c >= size && c <= want + MiB && (best < 0 || c < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) {
      const b = this.free.splice(best, 1)[0]!;
      this.freeBytes -= b.byteLength;
      return new Uint8Array(b, 0, size);
    }
    // allocUnsafeSlow gives a buffer of its own (no pool slab behind it).
    const buffer = Buffer.allocUnsafeSlow(want).buffer as ArrayBuffer;
    this.owned.add(buffer);
    return new Uint8Array(buffer, 0, size);
  }

  /**
   * Takes a buffer nobody reads any more. It becomes reusable only in a later event-loop turn: a reader that got it
   * in this turn (from the cache, or from the decode that just finished) uses it before this turn ends.
   */
  giveBack(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.owned.has(buffer) || view.byteOffset !== 0) return;
    this.queue(buffer);
  }

  /**
   * As giveBack(), for a buffer of this pool that was moved to a worker and back: it arrives as a new ArrayBuffer.
   * The caller vouches that nothing else uses it.
   */
  giveBackMoved(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (view.byteOffset !== 0 || !(buffer instanceof ArrayBuffer)) return;
    this.owned.add(buffer);
    this.queue(buffer);
  }

  private queue(buffer: ArrayBuffer): void {
    this.quarantine.push(buffer);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (const b of this.quarantine) {
        this.free.push(b);
        this.freeBytes += b.byteLength;
      }
      this.quarantine = [];
      while (this.freeBytes > this.freeBudget) this.freeBytes -= this.free.shift()!.byteLength;
    }).unref();
  }
}

/** The memory behind a chunk's bytes: a pooled buffer's whole capacity, which is what it keeps resident. */
export function residentBytes(data: Uint8Array): number {
  return data.buffer.byteLength;
}
