// Placing payloads that are already stored (spec §8.7): a file's PAYLOAD item lying in an earlier payload stream
// (the previous snapshot's `.ppxar`, or a stream the mount stored as files closed) is referenced by injecting the
// chunks that hold it into the new payload stream instead of writing its bytes again. Consecutive files share one
// run of chunks; bytes of those chunks that no file refers to are padding, and placing stops once padding passes
// the client's threshold.
import type { IndexReader } from '../io/index-reader.js';
import type { PxarEncoder } from '../pxar/encoder.js';
import type { DynamicArchiveWriter, InjectedChunk } from './dynamic-archive-writer.js';

/** What the placer needs of the new payload stream. */
type InjectSink = Pick<DynamicArchiveWriter, 'inject'>;

/** spec §8.7: reuse is abandoned once padding (injected bytes no file refers to) passes 10 %. */
export const CHUNK_PADDING_THRESHOLD = 0.1;
/** The PAYLOAD item header in front of a file's bytes. */
export const PAYLOAD_HEADER = 16;
/** Padding is judged only past this much injected: the first run's partial chunks say little. */
const JUDGE_AFTER = 8 * 1024 * 1024;

/** A run of consecutive source chunks that will be injected together; files in it are already referenced. */
interface Run {
  first: number;
  last: number;
  /** New payload position where chunk `first` will start. */
  startPos: number;
  /** End (source-stream offset) of the last file referenced, so references stay in stream order. */
  lastEnd: number;
  used: number;
}

export interface PlacerOptions {
  /** The source's chunks were stored by this session (already in its upload stats). */
  counted?: boolean;
  /**
   * A file starting in a chunk injected already (behind bytes written since) is written afresh instead of
   * injecting that chunk again as padding: for a source whose bytes are at hand anyway (the mount's spool), where a
   * file written afresh between two placed ones would otherwise cost up to a whole chunk of padding.
   */
  rewriteInjected?: boolean;
}

export class PayloadPlacer {
  private run: Run | undefined;
  private injected = 0;
  private used = 0;
  private given = false;
  /** Source chunks before this one were injected already (or passed over). */
  private nextChunk = 0;
  placedFiles = 0;

  constructor(
    /** The stream the payloads lie in. */
    private readonly source: IndexReader,
    /** The new payload stream. */
    private readonly payload: InjectSink,
    private readonly opts: PlacerOptions = {},
  ) {}

  /** Padding passed the threshold: every further file is written afresh. */
  get abandoned(): boolean {
    return this.given;
  }

  /**
   * The file whose PAYLOAD item starts at `start` in the source (`size` content bytes): where it will be in the new
   * stream, or undefined (written afresh) once placing was abandoned or the source does not hold it.
   */
  async place(start: number, size: number, encoder: PxarEncoder): Promise<number | undefined> {
    if (this.given) return undefined;
    const end = start + PAYLOAD_HEADER + size;
    if (end > this.source.size) return undefined;
    const first = this.source.chunkAt(start);
    const last = this.source.chunkAt(end - 1);
    const run = this.run;
    const newRun = !run || start < run.lastEnd || first > run.last + 1 || first < run.first;
    // A new run means the current one is injected now: its chunks count as injected.
    if (newRun && this.opts.rewriteInjected && first < Math.max(this.nextChunk, run ? run.last + 1 : 0)) return undefined;
    if (newRun) {
      await this.flush(encoder);
      this.run = { first, last, startPos: encoder.payloadPosition, lastEnd: end, used: 0 };
    } else {
      run.last = Math.max(run.last, last);
      run.lastEnd = end;
    }
    const r = this.run!;
    r.used += end - start;
    this.placedFiles++;
    return r.startPos + (start - this.source.chunk(r.first).start);
  }

  /** Injects the pending run's chunks into the payload stream (before a file written afresh, and at the end). */
  async flush(encoder: PxarEncoder): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const chunks: InjectedChunk[] = [];
    let bytes = 0;
    for (let i = run.first; i <= run.last; i++) {
      const slot = this.source.chunk(i);
      chunks.push({ digest: slot.digest, size: slot.end - slot.start });
      bytes += slot.end - slot.start;
    }
    await encoder.flushPayload();
    await this.payload.inject(chunks, this.opts.counted);
    this.nextChunk = Math.max(this.nextChunk, run.last + 1);
    encoder.advancePayload(bytes);
    this.injected += bytes;
    this.used += run.used;
    // Past a couple of chunks, a padding ratio above the threshold means other files keep coming in between;
    // from here on writing them afresh is cheaper than dragging old chunks along.
    if (this.injected > JUDGE_AFTER && (this.injected - this.used) / this.injected > CHUNK_PADDING_THRESHOLD) this.given = true;
  }
}
