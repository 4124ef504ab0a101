import { PbsError } from '../errors.js';
import { BUZHASH_TABLE } from './buzhash-table.js';
import type { Chunker } from './chunker.js';
import { nativeAddon } from '../native.js';

const WINDOW = 64; // spec §7.1
const MIN_AVG = 64 * 1024;
const MAX_AVG = 4 * 1024 * 1024;

interface BuzhashAddon {
  /** state = [h, count, min, max, mask, threshold]; see native/src/buzhash.c. */
  buzhashScan(state: Int32Array, window: Uint8Array, table: Int32Array, data: Uint8Array): number;
}

/**
 * Content-defined chunker identical to the PBS client's (spec §7.1), so chunks deduplicate against theirs.
 * The byte loop runs in the native addon (native/src/buzhash.c); this class holds the rolling state between calls.
 */
export class BuzhashChunker implements Chunker {
  readonly avgSize: number;
  readonly minSize: number;
  readonly maxSize: number;
  /** [hash, bytes of the current chunk seen so far, min, max, mask, threshold]. */
  private readonly state: Int32Array;
  /** W[p & 63] = the chunk's byte at position p, for the last WINDOW positions. */
  private readonly window = new Uint8Array(WINDOW);
  private readonly addon = nativeAddon<BuzhashAddon>();

  constructor(avgSize: number) {
    if (!Number.isInteger(avgSize) || avgSize < MIN_AVG || avgSize > MAX_AVG || (avgSize & (avgSize - 1)) !== 0) {
      throw new PbsError('EINVAL', `buzhash average chunk size must be a power of two in 64 KiB..4 MiB, got ${avgSize}`);
    }
    this.avgSize = avgSize;
    this.minSize = avgSize / 4;
    this.maxSize = avgSize * 4;
    const mask = 2 * avgSize - 1;
    // A boundary where (h & mask) >= mask - 2 (mask < 2^31, so the int32 compare is exact).
    this.state = Int32Array.of(0, 0, this.minSize, this.maxSize, mask, mask - 2);
  }

  reset(): void {
    this.state[0] = 0;
    this.state[1] = 0;
  }

  scan(data: Uint8Array): number {
    return this.addon.buzhashScan(this.state, this.window, BUZHASH_TABLE, data);
  }
}
