// Decoded chunks packed into one long-lived buffer. Every fresh chunk buffer is V8 external memory that dies in old
// space: a tar through the mount allocated ~450 MiB of them and paid a full mark-compact of the whole heap every
// ~17 MiB (60–100 ms each), plus a page fault per 4 KiB touched. Ranges of one arena are reused instead; dynamic
// chunks vary in size (1–16 MiB), which whole buffers per size class (ChunkBuffers) match only about half the time.

const PAGE = 4096;

/** A free range [start, end) of the arena. */
interface Hole {
  start: number;
  end: number;
}

export class ChunkArena {
  private buffer?: ArrayBuffer;
  /** Free ranges by start, never adjacent (merged when given back). */
  private holes: Hole[];
  private quarantine: Hole[] = [];
  private scheduled = false;
  /** Where the last range taken ended: the next take looks from here on (next fit). */
  private cursor = 0;

  /** `bytes` of room, allocated on the first take (a mount that reads nothing never pays for it). */
  constructor(readonly bytes: number) {
    this.holes = bytes >= PAGE ? [{ start: 0, end: bytes }] : [];
  }

  /**
   * `size` bytes with unspecified contents from the first hole at or after the last range taken that holds them
   * (wrapping around), or undefined when none does (the caller then allocates a buffer of its own). The caller
   * overwrites all of it before anyone reads it. Next fit, because readers mostly stream: the cache drops chunks in
   * about the order they were taken, so the room ahead of the cursor frees up in one piece, like a ring buffer.
   */
  take(size: number): Uint8Array<ArrayBuffer> | undefined {
    if (size === 0) return undefined;
    const need = Math.ceil(size / PAGE) * PAGE;
    const n = this.holes.length;
    let first = 0;
    while (first < n && this.holes[first]!.end <= this.cursor) first++;
    let found = -1;
    for (let k = 0; k < n; k++) {
      const i = (first + k) % n;
      if (this.holes[i]!.end - this.holes[i]!.start >= need) {
        found = i;
        break;
      }
    }
    if (found < 0) return undefined;
    this.buffer ??= Buffer.allocUnsafeSlow(this.bytes).buffer as ArrayBuffer;
    const h = this.holes[found]!;
    const start = h.start;
    h.start += need;
    if (h.start === h.end) this.holes.splice(found, 1);
    this.cursor = start + need;
    return new Uint8Array(this.buffer, start, size);
  }

  /** Whether `view` is a range this arena handed out. */
  holds(view: Uint8Array): boolean {
    return this.buffer !== undefined && view.buffer === this.buffer;
  }

  /** The arena bytes a view handed out occupies (its size rounded up to whole pages). */
  footprint(view: Uint8Array): number {
    return Math.ceil(view.byteLength / PAGE) * PAGE;
  }

  /**
   * Takes back a range from take() that nobody reads any more; false for any other view. The range becomes reusable
   * only in a later event-loop turn: a reader that got it in this turn (from the cache, or from the decode that just
   * finished) uses it before this turn ends.
   */
  giveBack(view: Uint8Array): boolean {
    if (!this.holds(view) || view.byteOffset % PAGE !== 0 || view.byteLength === 0) return false;
    this.quarantine.push({ start: view.byteOffset, end: view.byteOffset + this.footprint(view) });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        for (const h of this.quarantine) this.free(h);
        this.quarantine = [];
      }).unref();
    }
    return true;
  }

  /** Bytes in holes (free to take now). */
  get freeBytes(): number {
    return this.holes.reduce((n, h) => n + h.end - h.start, 0);
  }

  private free(h: Hole): void {
    let i = 0;
    while (i < this.holes.length && this.holes[i]!.start < h.start) i++;
    const prev = this.holes[i - 1];
    const next = this.holes[i];
    if (prev && prev.end === h.start) {
      prev.end = h.end;
      if (next && next.start === prev.end) {
        prev.end = next.end;
        this.holes.splice(i, 1);
      }
    } else if (next && next.start === h.end) {
      next.start = h.start;
    } else {
      this.holes.splice(i, 0, h);
    }
  }
}
