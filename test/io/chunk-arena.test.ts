import { describe, expect, it } from 'vitest';
import { ChunkArena } from '../../src/io/chunk-arena.js';

const MiB = 1024 * 1024;
const nextTurn = () => new Promise((res) => setImmediate(res));

describe('ChunkArena', () => {
  it('hands out page-aligned ranges of one buffer until it is full', () => {
    const arena = new ChunkArena(8 * MiB);
    const a = arena.take(3_000_000)!;
    const b = arena.take(3_000_000)!;
    expect(a.buffer).toBe(b.buffer);
    expect(a.byteLength).toBe(3_000_000);
    expect(b.byteOffset).toBe(Math.ceil(3_000_000 / 4096) * 4096);
    expect(arena.footprint(a)).toBe(b.byteOffset);
    expect(arena.holds(a)).toBe(true);
    expect(arena.holds(new Uint8Array(16))).toBe(false);
    // 8 MiB - 2 * 2.86 MiB left: a 3 MB chunk no longer fits.
    expect(arena.take(3_000_000)).toBeUndefined();
    expect(arena.take(2 * MiB)).toBeDefined();
  });

  it('reuses a range only from the next event-loop turn on, merged with its free neighbours', async () => {
    const arena = new ChunkArena(4 * MiB);
    const [a, b, c, d] = [arena.take(MiB)!, arena.take(MiB)!, arena.take(MiB)!, arena.take(MiB)!];
    expect(arena.giveBack(a)).toBe(true);
    expect(arena.giveBack(c)).toBe(true);
    // A reader that got a or c in this turn may still be using it.
    expect(arena.take(MiB)).toBeUndefined();
    await nextTurn();
    expect(arena.freeBytes).toBe(2 * MiB);
    // Two separate holes: no room for 2 MiB until b goes back and joins them.
    expect(arena.take(2 * MiB)).toBeUndefined();
    arena.giveBack(b);
    await nextTurn();
    const big = arena.take(3 * MiB)!;
    expect(big.byteOffset).toBe(0);
    arena.giveBack(big);
    arena.giveBack(d);
    await nextTurn();
    expect(arena.freeBytes).toBe(4 * MiB);
    expect(arena.take(4 * MiB)!.byteOffset).toBe(0);
  });

  it('looks for room from where the last range ended (next fit), wrapping around', async () => {
    const arena = new ChunkArena(8 * MiB);
    const [a, , c] = [arena.take(2 * MiB)!, arena.take(2 * MiB)!, arena.take(2 * MiB)!, arena.take(2 * MiB)!];
    arena.giveBack(a);
    arena.giveBack(c);
    await nextTurn();
    expect(arena.take(MiB)!.byteOffset).toBe(0); // nothing after the last range: wraps to the first hole
    expect(arena.take(MiB)!.byteOffset).toBe(MiB); // right after the one before
    expect(arena.take(2 * MiB)!.byteOffset).toBe(c.byteOffset);
    expect(arena.take(4096)).toBeUndefined();
  });

  it('refuses views it did not hand out', () => {
    const arena = new ChunkArena(MiB);
    const a = arena.take(8192)!;
    expect(arena.giveBack(new Uint8Array(8192))).toBe(false);
    expect(arena.giveBack(a.subarray(100))).toBe(false);
  });
});
