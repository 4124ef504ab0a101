import { describe, expect, it } from 'vitest';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { PxarEncoder } from '../../src/pxar/encoder.js';
import { metadataOf } from '../../src/pxar/format.js';
import { readVector } from './listing.js';
import { MemorySink, decodeAll, encodeTree, once } from './tree.js';

const dirStat = { mode: 0o40755, flags: 0, uid: 0, gid: 0, mtime: { secs: 0, nanos: 0 } };
const fileStat = { ...dirStat, mode: 0o100644 };

describe('encoder reproduces the reference archives byte for byte', () => {
  it('synth.pxar (v1)', async () => {
    const src = readVector('synth.pxar');
    const { entries } = await decodeAll(src);
    for (const piece of [1, 3, 1 << 20]) {
      const out = await encodeTree(entries, { piece });
      expect(Buffer.from(out.archive).equals(Buffer.from(src))).toBe(true);
    }
  });

  it('synth.mpxar + synth.ppxar (v2 with prelude)', async () => {
    const m = readVector('synth.mpxar');
    const p = readVector('synth.ppxar');
    const { entries, prelude } = await decodeAll(m, p);
    const out = await encodeTree(entries, { split: true, prelude, piece: 4 });
    expect(Buffer.from(out.archive).equals(Buffer.from(m))).toBe(true);
    expect(Buffer.from(out.payload!).equals(Buffer.from(p))).toBe(true);
  });
});

describe('encoder rules', () => {
  it('rejects a payload reference below the payload position', async () => {
    const enc = await PxarEncoder.create(new MemorySink(), metadataOf(dirStat), { payload: new MemorySink() });
    await enc.addFile(metadataOf(fileStat), 'a', 3, once(new Uint8Array(3)));
    expect(enc.payloadPosition).toBe(16 + 16 + 3);
    await expect(enc.addPayloadRef(metadataOf(fileStat), 'b', 3, 16)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('accepts reused payload references, then accounts for the injected bytes', async () => {
    const fresh = async () => {
      const meta = new MemorySink();
      const payload = new MemorySink();
      return { meta, payload, enc: await PxarEncoder.create(meta, metadataOf(dirStat), { payload }) };
    };
    const bad = await fresh();
    await bad.enc.addPayloadRef(metadataOf(fileStat), 'reused', 84, 40);
    await expect(bad.enc.addPayloadRef(metadataOf(fileStat), 'older', 1, 20)).rejects.toMatchObject({ code: 'EINVAL' });

    const { meta, payload, enc } = await fresh();
    await enc.addPayloadRef(metadataOf(fileStat), 'reused', 84, 16);
    enc.advancePayload(100);
    expect(enc.payloadPosition).toBe(116);
    await enc.finish();
    expect(payload.bytes().length).toBe(32); // start and tail markers only: the 100 bytes were injected elsewhere
    const d = await PxarDecoder.open(once(meta.bytes()));
    await d.next();
    expect(await d.next()).toMatchObject({ kind: 'file', size: 84, payloadOffset: 16 });
    expect(await d.next()).toBeNull();
  });

  it('rejects short or long contents, bad names and forward hardlinks', async () => {
    const fresh = () => PxarEncoder.create(new MemorySink(), metadataOf(dirStat));
    await expect((await fresh()).addFile(metadataOf(fileStat), 'f', 4, once(new Uint8Array(3)))).rejects.toThrow(/ended after 3 of 4/);
    await expect((await fresh()).addFile(metadataOf(fileStat), 'f', 2, once(new Uint8Array(3)))).rejects.toThrow(/exceed/);
    for (const bad of ['', '.', '..', 'a/b', 'a\0']) {
      await expect((await fresh()).addFifo(metadataOf(fileStat), bad)).rejects.toMatchObject({ code: 'EINVAL' });
    }
    const enc = await fresh();
    await expect(enc.addHardlink('h', 'x', 1000)).rejects.toMatchObject({ code: 'EINVAL' });
    // an encoder that failed mid-entry refuses further use
    await expect(enc.addFifo(metadataOf(fileStat), 'ok')).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('requires modes that match the entry kind', async () => {
    await expect(PxarEncoder.create(new MemorySink(), metadataOf(fileStat))).rejects.toMatchObject({ code: 'EINVAL' });
    const enc = await PxarEncoder.create(new MemorySink(), metadataOf(dirStat));
    await expect(enc.addSocket(metadataOf(fileStat), 's')).rejects.toThrow(/socket metadata/);
  });

  it('requires directories to be closed before finish', async () => {
    const enc = await PxarEncoder.create(new MemorySink(), metadataOf(dirStat));
    await enc.createDirectory('d', metadataOf(dirStat));
    await expect(enc.finish()).rejects.toThrow(/still open/);
  });
});
