import { describe, expect, it } from 'vitest';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';
import { entryListing, readJsonl, readVector } from './listing.js';

async function* chunked(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function listing(archive: Uint8Array, payload: Uint8Array | undefined, pieceSize: number) {
  const d = await PxarDecoder.open(chunked(archive, pieceSize), { payload: payload && bytesReadAt(payload) });
  const lines: Record<string, unknown>[] = [];
  if (d.version === 2) lines.push({ kind: 'version', path: '/', version: 2 });
  if (d.prelude) lines.push({ kind: 'prelude', path: '/', prelude_hex: Buffer.from(d.prelude).toString('hex') });
  for await (const e of d) {
    let contents: Uint8Array[] | undefined;
    if (e.kind === 'file') {
      contents = [];
      for await (const c of d.contents()) contents.push(c.slice());
    }
    lines.push(entryListing(e, contents));
  }
  return lines.map((l, index) => ({ index, ...l }));
}

describe('sequential decoder vs reference listings', () => {
  it('reads Node Buffer pieces that share one ArrayBuffer (as fs streams deliver them)', async () => {
    const slab = Buffer.alloc(64 * 1024, 0xee);
    const archive = readVector('synth.mpxar');
    slab.set(archive, 1000); // the archive sits at an offset inside a bigger shared buffer
    const asBuffer = slab.subarray(1000, 1000 + archive.length);
    expect(await listing(asBuffer, readVector('synth.ppxar'), 33)).toEqual(readJsonl('synth.mpxar.jsonl'));
  });

  for (const piece of [1, 7, 4096]) {
    it(`synth.pxar (${piece}-byte reads)`, async () => {
      expect(await listing(readVector('synth.pxar'), undefined, piece)).toEqual(readJsonl('synth.pxar.jsonl'));
    });
    it(`synth.mpxar + synth.ppxar (${piece}-byte reads)`, async () => {
      expect(await listing(readVector('synth.mpxar'), readVector('synth.ppxar'), piece)).toEqual(readJsonl('synth.mpxar.jsonl'));
    });
  }

  it('skips contents that are not read', async () => {
    const d = await PxarDecoder.open(chunked(readVector('synth.pxar'), 100));
    const paths: string[] = [];
    for await (const e of d) paths.push(Buffer.from(e.path).toString());
    expect(paths).toEqual(readJsonl('synth.pxar.jsonl').map((l) => l.path));
  });

  it('accepts a read(n) pull reader', async () => {
    const bytes = readVector('synth.pxar');
    let pos = 0;
    const d = await PxarDecoder.open({ read: async (n) => { const out = bytes.subarray(pos, pos + Math.min(n, 33)); pos += out.length; return out; } });
    let count = 0;
    for await (const _ of d) count++;
    expect(count).toBe(10);
  });
});

describe('legacy ENTRY_V1 archives', () => {
  it('decode with nanosecond mtimes, sequentially and by random access', async () => {
    const { PXAR_ENTRY_V1, PXAR_FILENAME, encodeItem, encodeCString, hashFilename } = await import('../../src/pxar/format.js');
    const { encodeGoodbye } = await import('../../src/pxar/goodbye.js');
    const { PxarAccessor } = await import('../../src/pxar/accessor.js');
    const statV1 = (mode: number, ns: bigint) => {
      const b = new Uint8Array(32);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, BigInt(mode), true);
      v.setBigUint64(24, ns, true);
      return b;
    };
    const root = encodeItem(PXAR_ENTRY_V1, statV1(0o40755, 1_500_000_001n));
    const name = new TextEncoder().encode('p');
    const filename = encodeItem(PXAR_FILENAME, encodeCString(name));
    const child = encodeItem(PXAR_ENTRY_V1, statV1(0o10644, 2_000_000_000n));
    const goodbyeAt = root.length + filename.length + child.length;
    const goodbye = encodeGoodbye([{ hash: hashFilename(name), offset: root.length, size: filename.length + child.length }], goodbyeAt, 0);
    const archive = new Uint8Array(Buffer.concat([root, filename, child, goodbye]));

    const d = await PxarDecoder.open(chunked(archive, 5));
    const r = await d.next();
    const p = await d.next();
    expect(await d.next()).toBeNull();
    expect(r).toMatchObject({ kind: 'dir', metadata: { stat: { mode: 0o40755, mtime: { secs: 1, nanos: 500_000_001 } } } });
    expect(p).toMatchObject({ kind: 'fifo', metadata: { stat: { mtime: { secs: 2, nanos: 0 } } } });

    const acc = await PxarAccessor.open(bytesReadAt(archive));
    expect((await acc.lookup('/p'))?.entry.kind).toBe('fifo');
  });

  it('split archive contents need the payload reader', async () => {
    const d = await PxarDecoder.open(chunked(readVector('synth.mpxar'), 4096));
    let e = await d.next();
    while (e && e.kind !== 'file') e = await d.next();
    expect(() => d.contents()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
