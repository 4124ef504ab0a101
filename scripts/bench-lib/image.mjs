// Deterministic test image: 4 MiB blocks that are zero, repeated, text-like (compressible) or random,
// plus a copy with 5% of its blocks rewritten. Same bytes on every run and machine.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

export const BLOCK = 4 * 1024 * 1024;

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there been one all we their has would when if so no what up out about into than them can only ' +
  'other time new some could these two may first then do any like my now over such our man me even most made after ' +
  'also did many before must through back years where much your way well down should because each just those people'
).split(' ');

function sha(text) {
  return createHash('sha256').update(text).digest();
}

/** AES-256-CTR keystream keyed by the label: fast, deterministic, incompressible. */
function randomBlock(label) {
  return createCipheriv('aes-256-ctr', sha(`pbsfs-bench:${label}`), Buffer.alloc(16)).update(Buffer.alloc(BLOCK));
}

/** Words and line breaks drawn from a keystream: compresses like log or source text. */
function textBlock(label) {
  const rnd = randomBlock(label);
  const out = Buffer.allocUnsafe(BLOCK);
  let pos = 0;
  for (let i = 0; pos < BLOCK; i++) {
    const r = rnd[i % BLOCK];
    const word = WORDS[r % WORDS.length];
    pos += out.write(word, pos, 'latin1');
    if (pos < BLOCK) out[pos++] = (r & 0xf0) === 0 ? 0x0a : 0x20;
  }
  return out;
}

/** Block kind by hash of its index: 15% zero, 15% repeated, 35% text, 35% random. */
export function blockKind(k) {
  const r = sha(`kind:${k}`)[0] % 20;
  if (k === 0 || r >= 13) return 'random';
  if (r < 3) return 'zero';
  if (r < 6) return 'repeated';
  return 'text';
}

function blockContent(k) {
  switch (blockKind(k)) {
    case 'zero':
      return Buffer.alloc(BLOCK);
    case 'text':
      return textBlock(`text:${k}`);
    case 'random':
      return randomBlock(`random:${k}`);
    case 'repeated': {
      // A copy of an earlier text or random block within the last 64 blocks.
      for (let j = k - 1 - (sha(`rep:${k}`)[0] % Math.min(k, 64)); ; j--) {
        const kind = blockKind(j);
        if (kind === 'text' || kind === 'random') return blockContent(j);
      }
    }
  }
}

/** The 5% of blocks (at least one) that differ in the changed copy, picked by hash rank. */
export function changedBlocks(blocks) {
  const count = Math.max(1, Math.round(blocks * 0.05));
  const ranked = Array.from({ length: blocks }, (_, k) => [sha(`changed:${k}`).readUInt32BE(0), k]);
  ranked.sort((a, b) => a[0] - b[0]);
  return new Set(ranked.slice(0, count).map(([, k]) => k));
}

/** Writes `path` (size bytes) and `changedPath`; returns their SHA-256s and what the image is made of. */
export function writeImages(path, changedPath, size) {
  const blocks = Math.ceil(size / BLOCK);
  const changed = changedBlocks(blocks);
  const kinds = { zero: 0, repeated: 0, text: 0, random: 0 };
  const h1 = createHash('sha256');
  const h2 = createHash('sha256');
  const fd1 = openSync(path, 'w');
  const fd2 = openSync(changedPath, 'w');
  try {
    for (let k = 0; k < blocks; k++) {
      const len = Math.min(BLOCK, size - k * BLOCK);
      kinds[blockKind(k)]++;
      const data = blockContent(k).subarray(0, len);
      const data2 = changed.has(k) ? randomBlock(`changed:${k}`).subarray(0, len) : data;
      writeSync(fd1, data);
      writeSync(fd2, data2);
      h1.update(data);
      h2.update(data2);
    }
  } finally {
    closeSync(fd1);
    closeSync(fd2);
  }
  return { size, blocks, changed: changed.size, kinds, sha256: h1.digest('hex'), changedSha256: h2.digest('hex') };
}
