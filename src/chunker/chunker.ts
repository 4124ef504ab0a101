// The contract shared by every content splitter (spec §7): boundaries found incrementally over a byte stream.

export interface Chunker {
  /** Scans `data` (the next bytes of the stream). Returns the offset *within data* just after the first boundary
   *  found, or 0 if none; the caller slices and calls again with the rest. State carries across calls. */
  scan(data: Uint8Array): number;
  /** Forgets all state, as at the start of a new stream. */
  reset(): void;
}
