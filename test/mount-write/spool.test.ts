// The spool's extent lists against a plain byte array: any sequence of writes at any offsets and truncations reads
// back the same bytes, and a sequential writer keeps one extent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { addExtent, type Extent, extentContents, readExtents, Spool, truncateExtents } from '../../mount/write/spool.js';

const dir = mkdtempSync(join(tmpdir(), 'pbsfs-spool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spool extents', () => {
  it('random writes and truncations read back like a byte array', () => {
    const spool = Spool.open(join(dir, 'spool'));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), at: fc.nat(300), data: fc.uint8Array({ minLength: 1, maxLength: 80 }) }),
      fc.record({ kind: fc.constant('truncate' as const), size: fc.nat(350) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const list: Extent[] = [];
        let model = new Uint8Array(0);
        for (const o of ops) {
          if (o.kind === 'write') {
            const end = o.at + o.data.length;
            if (end > model.length) {
              const grown = new Uint8Array(end);
              grown.set(model);
              model = grown;
            }
            model.set(o.data, o.at);
            addExtent(list, o.at, o.data.length, spool.append(o.data));
          } else {
            const next = new Uint8Array(o.size);
            next.set(model.subarray(0, o.size));
            model = next;
            truncateExtents(list, o.size);
          }
          for (let i = 1; i < list.length; i++) expect(list[i - 1]![0] + list[i - 1]![1]).toBeLessThanOrEqual(list[i]![0]);
        }
        expect(Buffer.from(readExtents(spool, list, model.length, 0, model.length)).equals(Buffer.from(model))).toBe(true);
        // Each piece is valid until the next one is asked for: copied as it comes.
        const pieces: Buffer[] = [];
        for (const p of extentContents(spool, list, model.length, new Uint8Array(7))) pieces.push(Buffer.from(p));
        expect(Buffer.concat(pieces).equals(Buffer.from(model))).toBe(true);
      }),
      { numRuns: 300 },
    );
    spool.close();
  });

  it('a sequential writer keeps one extent; the spool reopens after what it holds', () => {
    const path = join(dir, 'seq');
    const spool = Spool.open(path);
    const list: Extent[] = [];
    for (let i = 0; i < 10; i++) addExtent(list, i * 100, 100, spool.append(new Uint8Array(100).fill(i)));
    expect(list).toEqual([[0, 1000, 0]]);
    spool.close();
    const again = Spool.open(path);
    expect(again.append(new Uint8Array([1]))).toBe(1000);
    again.close();
  });
});
