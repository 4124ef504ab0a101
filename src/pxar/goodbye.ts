// Goodbye tables (spec §8.6): per-directory hash index laid out as an implicit binary search tree.
import { PbsError } from '../errors.js';
import { GOODBYE_ITEM_SIZE, HEADER_SIZE, PXAR_GOODBYE, PXAR_GOODBYE_TAIL_MARKER, writeHeader } from './format.js';

export interface GoodbyeItem {
  hash: bigint;
  /** Children: goodbye_start − FILENAME start. Tail: goodbye_start − directory ENTRY start. */
  offset: number;
  /** Children: entry length from FILENAME (see the v2 quirk in spec §8.6). Tail: GOODBYE item size. */
  size: number;
}

/** Position → sorted index of the Eytzinger (BFS) layout of n items: in-order walk of the complete tree. */
export function eytzingerOrder(n: number): number[] {
  const order = new Array<number>(n);
  let next = 0;
  // Iterative in-order traversal; node i has children 2i+1 and 2i+2.
  const stack: number[] = [];
  let node = 0;
  while (stack.length > 0 || node < n) {
    while (node < n) {
      stack.push(node);
      node = 2 * node + 1;
    }
    const top = stack.pop()!;
    order[top] = next++;
    node = 2 * top + 2;
  }
  return order;
}

/**
 * Builds the whole GOODBYE item (header, n children in BST order, tail).
 * `children` carry absolute FILENAME positions in `offset`; they are converted to backwards distances here.
 */
export function encodeGoodbye(children: readonly GoodbyeItem[], goodbyeStart: number, dirEntryStart: number): Uint8Array {
  const sorted = children.slice().sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const n = sorted.length;
  const contentSize = GOODBYE_ITEM_SIZE * (n + 1);
  const out = writeHeader(new Uint8Array(HEADER_SIZE + contentSize), 0, PXAR_GOODBYE, contentSize);
  const view = new DataView(out.buffer);
  const order = eytzingerOrder(n);
  for (let pos = 0; pos < n; pos++) {
    const item = sorted[order[pos]!]!;
    const at = HEADER_SIZE + pos * GOODBYE_ITEM_SIZE;
    view.setBigUint64(at, item.hash, true);
    view.setBigUint64(at + 8, BigInt(goodbyeStart - item.offset), true);
    view.setBigUint64(at + 16, BigInt(item.size), true);
  }
  const tail = HEADER_SIZE + n * GOODBYE_ITEM_SIZE;
  view.setBigUint64(tail, PXAR_GOODBYE_TAIL_MARKER, true);
  view.setBigUint64(tail + 8, BigInt(goodbyeStart - dirEntryStart), true);
  view.setBigUint64(tail + 16, BigInt(out.length), true);
  return out;
}

/** One 24-byte table item at `at` of `b`; `pos` is its archive offset (for messages). */
export function parseGoodbyeItem(b: Uint8Array, at: number, pos: number): GoodbyeItem {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hash = view.getBigUint64(at, true);
  const offset = view.getBigUint64(at + 8, true);
  const size = view.getBigUint64(at + 16, true);
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (offset > max || size > max) throw new PbsError('ECORRUPT', 'goodbye item offset/size out of range', { offset: pos });
  return { hash, offset: Number(offset), size: Number(size) };
}
