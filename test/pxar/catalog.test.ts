import { describe, expect, it } from 'vitest';
import {
  CATALOG_MAGIC, CatalogReader, CatalogWriter, decodeSvarint, decodeVarint, encodeSvarint, encodeVarint, formatCatalogDumpLine,
} from '../../src/format/catalog.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';
import { MemorySink } from './tree.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('catalog varints (spec §9)', () => {
  it('encodes known values', () => {
    expect(hex(encodeVarint(0))).toBe('00');
    expect(hex(encodeVarint(127))).toBe('7f');
    expect(hex(encodeVarint(300))).toBe('ac02');
    expect(hex(encodeSvarint(0))).toBe('00');
    expect(hex(encodeSvarint(-1))).toBe('8100');
    expect(hex(encodeSvarint(-128))).toBe('808100');
    expect(hex(encodeSvarint(300))).toBe('ac02');
  });

  it('round-trips', () => {
    for (const v of [0, 1, 126, 127, 128, 4095, 2 ** 20 - 1, 2 ** 50 - 1, Number.MAX_SAFE_INTEGER]) {
      expect(decodeVarint(encodeVarint(v), 0)).toEqual({ value: v, next: encodeVarint(v).length });
      for (const s of [v, -v]) expect(decodeSvarint(encodeSvarint(s), 0).value).toBe(s === 0 ? 0 : s);
    }
  });

  it('rejects unterminated and overlong varints', () => {
    expect(() => decodeVarint(Uint8Array.of(0x80, 0x80), 0, 100)).toThrow(expect.objectContaining({ code: 'ECORRUPT', offset: 100 }));
    expect(() => decodeVarint(new Uint8Array(11).fill(0x81), 0)).toThrow(/ECORRUPT|2\^53|longer/);
    expect(() => decodeSvarint(new Uint8Array(12).fill(0x80), 0)).toThrow(expect.objectContaining({ code: 'ECORRUPT' }));
  });
});

async function sampleCatalog() {
  const sink = new MemorySink();
  const w = new CatalogWriter(sink);
  const longName = 'n'.repeat(4095);
  w.startDirectory('root.pxar.didx');
  w.addFile('a.txt', 11, -2);
  w.startDirectory('dir');
  w.addFile(longName, 0, 1_600_000_000);
  w.addSymlink('link');
  w.addHardlink('hard');
  w.startDirectory('empty');
  await w.endDirectory();
  w.addFifo('fifo');
  w.addSocket('sock');
  w.addBlockDevice('blk');
  w.addCharDevice('chr');
  await w.endDirectory();
  w.addFile('z', 2 ** 40, -1_500_000_000);
  await w.endDirectory();
  w.startDirectory('etc.pxar.didx');
  await w.endDirectory();
  const root = await w.finish();
  return { bytes: sink.bytes(), root, longName };
}

describe('catalog writer and reader', () => {
  it('round-trips a tree with negative mtimes and long names', async () => {
    const { bytes, root, longName } = await sampleCatalog();
    expect(bytes.subarray(0, 8)).toEqual(CATALOG_MAGIC);
    const r = await CatalogReader.open(bytesReadAt(bytes));
    expect(r.rootOffset).toBe(root);
    const lines: string[] = [];
    for await (const { path, entry } of r.walk()) lines.push(formatCatalogDumpLine(path, entry));
    expect(lines).toEqual([
      'd "/root.pxar.didx"',
      'f "/root.pxar.didx/a.txt" 11 1969-12-31T23:59:58Z',
      'd "/root.pxar.didx/dir"',
      `f "/root.pxar.didx/dir/${longName}" 0 2020-09-13T12:26:40Z`,
      'l "/root.pxar.didx/dir/link"',
      'h "/root.pxar.didx/dir/hard"',
      'd "/root.pxar.didx/dir/empty"',
      'p "/root.pxar.didx/dir/fifo"',
      's "/root.pxar.didx/dir/sock"',
      'b "/root.pxar.didx/dir/blk"',
      'c "/root.pxar.didx/dir/chr"',
      `f "/root.pxar.didx/z" ${2 ** 40} 1922-06-20T21:20:00Z`,
      'd "/etc.pxar.didx"',
    ]);
    const z = await r.lookup('/root.pxar.didx/z');
    expect(z).toMatchObject({ type: 'f', size: 2 ** 40, mtime: -1_500_000_000 });
    expect(await r.lookup('/root.pxar.didx/nope')).toBeNull();
    expect(await r.lookup('/root.pxar.didx/a.txt/x')).toBeNull();
  });

  it('rejects bad magic, bad root offsets and directory offsets that do not point backwards', async () => {
    const { bytes } = await sampleCatalog();
    const bad = bytes.slice();
    bad[0] ^= 1;
    await expect(CatalogReader.open(bytesReadAt(bad))).rejects.toMatchObject({ code: 'ECORRUPT', offset: 0 });
    const badRoot = bytes.slice();
    new DataView(badRoot.buffer).setBigUint64(badRoot.length - 8, BigInt(badRoot.length), true);
    await expect(CatalogReader.open(bytesReadAt(badRoot))).rejects.toMatchObject({ code: 'ECORRUPT' });

    // A root table whose only entry points at itself (offset 0) would loop forever if accepted.
    const sink = new MemorySink();
    await sink.write(CATALOG_MAGIC);
    const table = Uint8Array.of(4, 1, 0x64, 1, 0x61, 0); // len 4: count 1, 'd', name "a", offset 0
    await sink.write(table);
    const tail = new Uint8Array(8);
    new DataView(tail.buffer).setBigUint64(0, 8n, true);
    await sink.write(tail);
    const r = await CatalogReader.open(bytesReadAt(sink.bytes()));
    await expect(r.readDir(r.root())).rejects.toMatchObject({ code: 'ECORRUPT', offset: 8 + 1 + 4 });
  });

  it('validates names when writing', () => {
    const w = new CatalogWriter(new MemorySink());
    expect(() => w.addFile('a/b', 1, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => w.startDirectory('..')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
