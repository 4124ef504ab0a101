// CoveredRanges against a byte-map model: any sequence of writes and truncations gives the same coverage answer.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoveredRanges } from '../../mount/write/covered-ranges.js';

describe('CoveredRanges', () => {
  it('matches a byte map under random writes and clips', () => {
    const LEN = 64;
    const op = fc.oneof(
      fc.tuple(fc.constant('add' as const), fc.nat(LEN), fc.nat(LEN)),
      fc.tuple(fc.constant('clip' as const), fc.nat(LEN), fc.constant(0)),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const r = new CoveredRanges();
        const model = new Uint8Array(LEN);
        for (const [kind, a, b] of ops) {
          if (kind === 'add') {
            r.add(Math.min(a, b), Math.max(a, b));
            model.fill(1, Math.min(a, b), Math.max(a, b));
          } else {
            r.clip(a);
            model.fill(0, a);
          }
          for (const len of [1, LEN / 2, LEN]) expect(r.covers(len)).toBe(model.subarray(0, len).every((x) => x === 1));
        }
      }),
    );
  });

  it('merges adjacent ranges', () => {
    const r = new CoveredRanges();
    r.add(10, 20);
    r.add(0, 10);
    r.add(20, 30);
    expect(r.count).toBe(1);
    expect(r.covers(30)).toBe(true);
    expect(r.covers(31)).toBe(false);
  });
});
