import { PbsError } from '../errors.js';
import type { Chunker } from './chunker.js';

/** Largest chunk any PBS chunker makes (buzhash max for 4 MiB average, spec §7.1); keeps buffers bounded. */
export const MAX_FIXED_CHUNK_SIZE = 16 * 1024 * 1024;

/** Consecutive chunks of exactly `chunkSize` bytes; only the stream's last chunk may be shorter (spec §7.2). */
export class FixedChunker implements Chunker {
  readonly chunkSize: number;
  private filled = 0;

  constructor(chunkSize: number) {
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_FIXED_CHUNK_SIZE) {
      throw new PbsError('EINVAL', `fixed chunk size must be an integer in 1..${MAX_FIXED_CHUNK_SIZE}, got ${chunkSize}`);
    }
    this.chunkSize = chunkSize;
  }

  scan(data: Uint8Array): number {
    const need = this.chunkSize - this.filled;
    if (data.length >= need) {
      this.filled = 0;
      return need;
    }
    this.filled += data.length;
    return 0;
  }

  reset(): void {
    this.filled = 0;
  }
}
