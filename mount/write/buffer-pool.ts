// Buffers of one size used again for an image being written: a fresh 4 MiB buffer per chunk costs
// page faults and zeroing, and the garbage drives a major GC every few chunks.
export class BufferPool {
  private readonly free: Uint8Array[] = [];

  constructor(
    /** Size of every buffer. */
    readonly size: number,
    /** Free buffers kept at most; more are left to the GC. */
    private readonly maxFree: number,
  ) {}

  /** A zeroed buffer of `size` bytes. */
  take(): Uint8Array {
    return this.free.pop()?.fill(0) ?? new Uint8Array(this.size);
  }

  /** Gives back a buffer nobody uses any more (other sizes are ignored). */
  giveBack(b: Uint8Array): void {
    if (b.byteLength === this.size && b.byteOffset === 0 && b.buffer.byteLength === this.size && this.free.length < this.maxFree) this.free.push(b);
  }
}
