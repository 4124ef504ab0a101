// TypeScript port of the vectors' gen_inputs.py: the deterministic inputs the reference chunker was run on.
import { hash } from 'node:crypto';

const MiB = 1 << 20;

/** SHA-256 counter mode: sha256(label ":" u64le(0)) || sha256(label ":" u64le(1)) || ..., cut to n bytes. */
export function prng(label: string, n: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(n / 32) * 32);
  const msg = Buffer.alloc(label.length + 9);
  msg.write(label + ':', 'ascii');
  const ctrAt = label.length + 1;
  for (let i = 0; i * 32 < n; i++) {
    msg.writeUInt32LE(i >>> 0, ctrAt);
    msg.writeUInt32LE(Math.floor(i / 2 ** 32), ctrAt + 4);
    out.set(hash('sha256', msg, 'buffer'), i * 32);
  }
  return out.subarray(0, n);
}

/** input-a.bin: 64 blocks of 1 MiB (random, zero, repeated-block and repeated-4KiB-pattern blocks). */
export function inputA(): Uint8Array {
  const out = new Uint8Array(64 * MiB);
  const pattern = prng('A-pattern', 4096);
  for (let k = 0; k < 64; k++) {
    const block = out.subarray(k * MiB, (k + 1) * MiB);
    switch (k % 8) {
      case 2:
        break; // already zero
      case 5:
        block.set(out.subarray((k - 4) * MiB, (k - 3) * MiB));
        break;
      case 7:
        for (let p = 0; p < MiB; p += 4096) block.set(pattern, p);
        break;
      default:
        block.set(prng(`A-${k}`, MiB));
    }
  }
  return out;
}

export const EDGE_INPUTS: Readonly<Record<string, () => Uint8Array>> = {
  'edge-empty.bin': () => new Uint8Array(0),
  'edge-1.bin': () => prng('E-1', 1),
  'edge-16383.bin': () => prng('E-min', 16383),
  'edge-16384.bin': () => prng('E-min', 16384),
  'edge-zeros-262145.bin': () => new Uint8Array(262145),
  'edge-random-1MiB.bin': () => prng('B', MiB),
};
