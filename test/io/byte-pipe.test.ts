import { describe, expect, it } from 'vitest';
import { BytePipe } from '../../src/io/byte-pipe.js';

describe('BytePipe', () => {
  it('delivers bytes in order and applies backpressure', async () => {
    const pipe = new BytePipe(10);
    let written = 0;
    const producer = (async () => {
      for (let i = 0; i < 20; i++) {
        await pipe.write(Uint8Array.of(i, i));
        written += 2;
      }
      pipe.end();
    })();
    await new Promise((r) => setTimeout(r, 10));
    expect(written).toBeLessThanOrEqual(12); // blocked near the high-water mark until someone reads
    const got: number[] = [];
    for await (const b of pipe) got.push(...b);
    await producer;
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => [i, i]).flat());
  });

  it('passes a producer failure to the consumer', async () => {
    const pipe = new BytePipe();
    void pipe.write(Uint8Array.of(1));
    pipe.fail(new Error('source broke'));
    const it = pipe[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual(Uint8Array.of(1));
    await expect(it.next()).rejects.toThrow('source broke');
  });

  it('unblocks and fails the producer when the consumer stops', async () => {
    const pipe = new BytePipe(4);
    const producer = (async () => {
      for (let i = 0; i < 100; i++) await pipe.write(new Uint8Array(4));
    })();
    for await (const _ of pipe) break;
    await expect(producer).rejects.toThrow(/consumer stopped/);
  });
});
