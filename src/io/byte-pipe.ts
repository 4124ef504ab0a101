// A bounded in-memory pipe: a producer awaits write() (backpressure), a consumer iterates the bytes.
// Joins push-style writers (the pxar encoder, the catalog writer) to pull-style consumers (chunkStream).
import { PbsError } from '../errors.js';

export class BytePipe implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private failure: unknown;
  private wakeConsumer?: () => void;
  private wakeProducer?: () => void;
  private consumerGone = false;

  /** @param highWater bytes buffered before write() waits for the consumer */
  constructor(private readonly highWater = 8 * 1024 * 1024) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (this.ended) throw new PbsError('EINVAL', 'write after end of pipe');
    if (this.consumerGone) throw new PbsError('EIO', 'pipe consumer stopped reading', { cause: this.failure });
    if (bytes.byteLength === 0) return;
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    this.wakeConsumer?.();
    while (this.queued > this.highWater && !this.consumerGone) {
      await new Promise<void>((resolve) => (this.wakeProducer = resolve));
    }
    if (this.consumerGone) throw new PbsError('EIO', 'pipe consumer stopped reading', { cause: this.failure });
  }

  end(): void {
    this.ended = true;
    this.wakeConsumer?.();
  }

  /** Ends the pipe with an error the consumer will see. */
  fail(e: unknown): void {
    this.failure = e;
    this.ended = true;
    this.wakeConsumer?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        if (this.queue.length) {
          const b = this.queue.shift()!;
          this.queued -= b.byteLength;
          if (this.queued <= this.highWater) this.wakeProducer?.();
          yield b;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
        this.wakeConsumer = undefined;
      }
    } finally {
      // Stopped early (error downstream): release a producer blocked on backpressure.
      if (!this.ended || this.queue.length) {
        this.consumerGone = true;
        this.wakeProducer?.();
      }
    }
  }
}
