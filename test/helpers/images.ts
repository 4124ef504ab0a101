// Deterministic test images: zero blocks, repeated blocks, compressible text and random bytes.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';

export const MiB = 1024 * 1024;

/** SHA-256 counter-mode bytes, the same PRNG the vectors use. */
export function prng(label: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, off = 0; off < n; i++) {
    const ctr = Buffer.alloc(8);
    ctr.writeBigUInt64LE(BigInt(i));
    const block = createHash('sha256').update(`${label}:`).update(ctr).digest();
    block.copy(out, off, 0, Math.min(32, n - off));
    off += 32;
  }
  return out;
}

/** An image of `blocks` 4 MiB blocks plus a short tail; kinds cycle through zero/random/text/repeat. */
export function makeImage(path: string, blocks: number, seed = 'img', tail = 12345): Buffer {
  const parts: Buffer[] = [];
  const text = Buffer.from('pbsfs test line with some words that compress well\n'.repeat(90000)).subarray(0, 4 * MiB);
  for (let i = 0; i < blocks; i++) {
    switch (i % 4) {
      case 0: parts.push(Buffer.alloc(4 * MiB)); break;
      case 1: parts.push(prng(`${seed}-${i}`, 4 * MiB)); break;
      case 2: parts.push(text); break;
      default: parts.push(parts[1]!); break;
    }
  }
  parts.push(prng(`${seed}-tail`, tail));
  const data = Buffer.concat(parts);
  writeFileSync(path, data);
  return data;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
