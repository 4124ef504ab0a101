// The spool's extent lists against a plain byte array: any sequence of writes at any offsets and truncations reads
// back the same bytes, and a sequential writer keeps one extent. Small appends are gathered: they read back before
// and after they reach the file, and a failure to write them fails every later append and read.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  it('small appends are gathered: readable at once, in the file after flush(), big ones written through', () => {
    const path = join(dir, 'gather');
    const spool = Spool.open(path);
    const small = [new Uint8Array(10).fill(1), new Uint8Array(3000).fill(2), new Uint8Array(5).fill(3)];
    const at = small.map((d) => spool.append(d));
    expect(at).toEqual([0, 10, 3010]);
    expect(readFileSync(path).length).toBe(0);
    const back = new Uint8Array(3000);
    spool.read(back, 10);
    expect(back.every((b) => b === 2)).toBe(true);
    const big = new Uint8Array(200_000).fill(4);
    expect(spool.append(big)).toBe(3015);
    const file = readFileSync(path);
    expect(file.length).toBe(203_015);
    expect(file.subarray(0, 3015).equals(Buffer.concat(small))).toBe(true);
    spool.append(new Uint8Array([9]));
    spool.flush();
    expect(readFileSync(path).length).toBe(203_016);
    // More than the gather buffer holds in small pieces: written as it fills, nothing lost or reordered.
    const pieces = Array.from({ length: 100 }, (_, k) => new Uint8Array(60_000).fill(k));
    const where = pieces.map((p) => spool.append(p));
    spool.close();
    const all = readFileSync(path);
    pieces.forEach((p, k) => expect(all.subarray(where[k]!, where[k]! + p.length).equals(Buffer.from(p))).toBe(true));
  });

  it('a failed write of gathered appends (ENOSPC) fails that append and every later append and read', () => {
    const spool = Spool.open('/dev/full');
    spool.append(new Uint8Array(100));
    expect(() => spool.flush()).toThrow(/space/i);
    const again = (): unknown => spool.append(new Uint8Array(1));
    expect(again).toThrow(/space/i);
    expect(() => spool.read(new Uint8Array(1), 0)).toThrow(/space/i);
    try {
      again();
    } catch (e) {
      expect(((e as { cause?: NodeJS.ErrnoException }).cause)?.code).toBe('ENOSPC');
    }
    spool.close();
  });
});
