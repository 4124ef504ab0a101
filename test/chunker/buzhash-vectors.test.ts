// The reference chunker's boundaries and chunk digests (vectors made by PBS 3.2.4) for every input and feeding.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { BuzhashChunker } from '../../src/chunker/buzhash.js';
import { chunkList } from './feed.js';
import { EDGE_INPUTS, inputA } from './gen-inputs.js';

interface Vector {
  input: string;
  input_len: number;
  input_sha256: string;
  avg: number;
  min: number;
  max: number;
  chunk_count: number;
  chunks: [number, string][];
}

const dir = new URL('./vectors/', import.meta.url);
const vectors: Vector[] = readdirSync(dir)
  .filter((f) => /^chunker-.*\.json$/.test(f))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Vector);

const inputs = new Map<string, Uint8Array>();
function input(name: string): Uint8Array {
  let data = inputs.get(name);
  if (!data) {
    const make = name === 'input-a.bin' ? inputA : EDGE_INPUTS[name];
    if (!make) throw new Error(`no generator for ${name}`);
    data = make();
    inputs.set(name, data);
  }
  return data;
}

const FEEDINGS: [string, (len: number) => number[]][] = [
  ['whole input at once', (len) => [Math.max(len, 1)]],
  ['4093-byte pieces', () => [4093]],
  ['1 MiB pieces', () => [1 << 20]],
];

test('every vector file is covered', () => {
  expect(vectors.length).toBe(15);
  expect(new Set(vectors.map((v) => v.input))).toEqual(new Set(['input-a.bin', ...Object.keys(EDGE_INPUTS)]));
});

describe.each(vectors.map((v) => [`${v.input} avg ${v.avg}`, v] as const))('%s', (_name, v) => {
  test('generated input matches the vector', () => {
    const data = input(v.input);
    expect(data.length).toBe(v.input_len);
    expect(createHash('sha256').update(data).digest('hex')).toBe(v.input_sha256);
  });

  test('parameters follow §7.1', () => {
    const c = new BuzhashChunker(v.avg);
    expect([c.minSize, c.maxSize]).toEqual([v.min, v.max]);
  });

  test.each(FEEDINGS)('%s', async (_feed, sizes) => {
    const data = input(v.input);
    const got = await chunkList(data, new BuzhashChunker(v.avg), sizes(data.length));
    expect(got.length).toBe(v.chunk_count);
    expect(got).toEqual(v.chunks);
  });
});
