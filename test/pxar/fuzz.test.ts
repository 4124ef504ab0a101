import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CatalogReader, CatalogWriter } from '../../src/format/catalog.js';
import { PbsError } from '../../src/errors.js';
import { PxarAccessor, type PxarDirectory } from '../../src/pxar/accessor.js';
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { emptyAcl, type Metadata, type PxarEntry } from '../../src/pxar/format.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';
import { readVector } from './listing.js';
import { MemorySink, decodeAll, encodeTree, once, type TreeEntry } from './tree.js';

// ---- random trees ------------------------------------------------------------------------------

const nameArb = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((b) => b.map((c) => (c === 0 || c === 0x2f ? 0x41 : c)))
  .filter((b) => !(b.length === 1 && b[0] === 0x2e) && !(b.length === 2 && b[0] === 0x2e && b[1] === 0x2e));

const permArb = fc.oneof(fc.bigInt({ min: 0n, max: 7n }), fc.constant(0xffffffffffffffffn));
const aclEntryArb = fc.record({ id: fc.nat({ max: 70000 }), permissions: permArb });

const extrasArb = fc.record({
  flags: fc.constantFrom(0, 0x2000, 0x400000 | 0x10000),
  uid: fc.nat({ max: 0xffffffff }),
  gid: fc.nat({ max: 0xffffffff }),
  secs: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  nanos: fc.nat({ max: 999_999_999 }),
  xattrs: fc.array(fc.record({ name: nameArb, value: fc.uint8Array({ maxLength: 20 }) }), { maxLength: 2 }),
  users: fc.array(aclEntryArb, { maxLength: 2 }),
  groupObj: fc.option(permArb, { nil: null }),
  def: fc.option(fc.record({ userObj: permArb, groupObj: permArb, other: permArb, mask: permArb }), { nil: null }),
  fcaps: fc.option(fc.uint8Array({ maxLength: 24 }), { nil: null }),
  quota: fc.option(fc.nat({ max: 2 ** 40 }), { nil: null }),
});

function metadata(type: number, x: fc.GeneratedValueType<typeof extrasArb>, rich: boolean): Metadata {
  const acl = emptyAcl();
  if (rich) {
    acl.users = x.users;
    acl.groupObj = x.groupObj;
    acl.default = x.def;
  }
  return {
    stat: { mode: type | 0o644, flags: x.flags, uid: x.uid, gid: x.gid, mtime: { secs: x.secs, nanos: x.nanos } },
    xattrs: rich ? x.xattrs : [], acl, fcaps: rich ? x.fcaps : null, quotaProjectId: rich ? x.quota : null,
  };
}

type Node =
  | { kind: 'dir'; name: Uint8Array; x: fc.GeneratedValueType<typeof extrasArb>; children: Node[] }
  | { kind: 'file'; name: Uint8Array; x: fc.GeneratedValueType<typeof extrasArb>; data: Uint8Array }
  | { kind: 'symlink' | 'device' | 'fifo' | 'socket' | 'hardlink'; name: Uint8Array; x: fc.GeneratedValueType<typeof extrasArb>; pick: number };

const leafArb: fc.Arbitrary<Node> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), name: nameArb, x: extrasArb, data: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constantFrom('symlink' as const, 'device' as const, 'fifo' as const, 'socket' as const, 'hardlink' as const), name: nameArb, x: extrasArb, pick: fc.nat() }),
);
const treeArb = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({ kind: fc.constant('dir' as const), name: nameArb, x: extrasArb, children: fc.array(tie('node'), { maxLength: 5 }) }),
  ),
})).node;

const TYPES = { dir: 0o040000, file: 0o100000, symlink: 0o120000, device: 0o060000, fifo: 0o010000, socket: 0o140000, hardlink: 0 };
const join = (p: Uint8Array, n: Uint8Array) => new Uint8Array([...p, ...(p.length > 1 ? [0x2f] : []), ...n]);

/** Flattens into archive order with unique, sorted names per directory; hardlinks point at earlier files. */
function flatten(rootX: fc.GeneratedValueType<typeof extrasArb>, children: Node[]): TreeEntry[] {
  const out: TreeEntry[] = [{ entry: { path: Uint8Array.of(0x2f), kind: 'dir', metadata: metadata(TYPES.dir, rootX, true), filenameOffset: null } }];
  const files: Uint8Array[] = [];
  const visit = (parent: Uint8Array, nodes: Node[]) => {
    const seen = new Set<string>();
    const unique = nodes.filter((n) => !seen.has(Buffer.from(n.name).toString('hex')) && seen.add(Buffer.from(n.name).toString('hex')));
    unique.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    for (const n of unique) {
      const path = join(parent, n.name);
      const rich = n.kind === 'dir' || n.kind === 'file';
      const e: PxarEntry = { path, kind: n.kind, metadata: metadata(TYPES[n.kind], n.x, rich), filenameOffset: null };
      if (n.kind === 'hardlink') {
        if (files.length === 0) continue;
        e.linkTarget = files[n.pick % files.length]!.subarray(1);
        e.metadata = metadata(0, n.x, false);
        e.metadata.stat = { mode: 0, flags: 0, uid: 0, gid: 0, mtime: { secs: 0, nanos: 0 } };
      }
      if (n.kind === 'symlink') e.linkTarget = n.name;
      if (n.kind === 'device') e.device = { major: n.x.uid, minor: n.x.gid };
      if (n.kind === 'file') {
        e.size = n.data.length;
        files.push(path);
      }
      out.push({ entry: e, contents: n.kind === 'file' ? n.data : undefined });
      if (n.kind === 'dir') visit(path, n.children);
    }
  };
  visit(Uint8Array.of(0x2f), children);
  return out;
}

function comparable(e: PxarEntry) {
  return { path: e.path, kind: e.kind, metadata: e.metadata, size: e.size, linkTarget: e.linkTarget, device: e.device };
}

describe('property: encode random trees → decode / access equal', () => {
  it('v1 and v2', async () => {
    await fc.assert(
      fc.asyncProperty(extrasArb, fc.array(treeArb, { maxLength: 6 }), fc.boolean(), async (rootX, children, split) => {
        const tree = flatten(rootX, children);
        const { archive, payload } = await encodeTree(tree, { split, piece: 7 });
        const back = await decodeAll(archive, payload);
        expect(back.entries.map((t) => comparable(t.entry))).toEqual(tree.map((t) => comparable(t.entry)));
        expect(back.entries.map((t) => t.contents)).toEqual(tree.map((t) => t.contents));
        const acc = await PxarAccessor.open(bytesReadAt(archive), { payload: payload && bytesReadAt(payload) });
        for (const t of tree.slice(1)) {
          const hit = await acc.lookup(t.entry.path);
          expect(hit && comparable(hit.entry)).toEqual(comparable(t.entry));
          if (t.entry.kind === 'file') expect(Buffer.concat(await collect(acc.contents(hit!)))).toEqual(Buffer.from(t.contents!));
          if (t.entry.kind === 'hardlink') expect((await acc.followHardlink(hit!)).entry.path).toEqual(join(Uint8Array.of(0x2f), t.entry.linkTarget!));
        }
      }),
      { numRuns: 60 },
    );
  });
});

// ---- mutations ---------------------------------------------------------------------------------

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const mutationArb = fc.record({
  flips: fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 255 }) }), { maxLength: 4 }),
  word: fc.option(fc.record({ at: fc.nat(), value: fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }) }), { nil: null }),
  cut: fc.option(fc.nat(), { nil: null }),
});

function mutate(src: Uint8Array, m: fc.GeneratedValueType<typeof mutationArb>): Uint8Array {
  let b = src.slice();
  for (const f of m.flips) b[f.at % b.length] = f.value;
  if (m.word && b.length >= 8) new DataView(b.buffer).setBigUint64(m.word.at % (b.length - 7), m.word.value, true);
  if (m.cut !== null) b = b.slice(0, m.cut % (b.length + 1));
  return b;
}

/** Runs f; anything thrown must be a PbsError. */
async function onlyPbsErrors(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof PbsError)) throw e;
  }
}

async function decodeEverything(archive: Uint8Array, payload?: Uint8Array) {
  const d = await PxarDecoder.open(once(archive), { payload: payload && bytesReadAt(payload) });
  for await (const e of d) if (e.kind === 'file') await collect(d.contents());
}

async function walkEverything(archive: Uint8Array, payload?: Uint8Array) {
  const acc = await PxarAccessor.open(bytesReadAt(archive), { payload: payload && bytesReadAt(payload) });
  const visit = async (dir: PxarDirectory): Promise<void> => {
    for await (const c of acc.readDir(dir)) {
      await acc.lookupChild(dir, c.entry.path.subarray(c.entry.path.lastIndexOf(0x2f) + 1));
      if (c.entry.kind === 'dir') await visit(await acc.openDirectory(c));
      if (c.entry.kind === 'file') await collect(acc.contents(c));
      if (c.entry.kind === 'hardlink') await acc.followHardlink(c);
    }
  };
  await visit(await acc.root());
}

describe('property: mutated archives decode or fail with PbsError', () => {
  const v1 = readVector('synth.pxar');
  const m2 = readVector('synth.mpxar');
  const p2 = readVector('synth.ppxar');

  it('sequential decoder', async () => {
    await fc.assert(
      fc.asyncProperty(mutationArb, fc.boolean(), async (m, which) => {
        if (which) await onlyPbsErrors(() => decodeEverything(mutate(v1, m)));
        else await onlyPbsErrors(() => decodeEverything(mutate(m2, m), mutate(p2, { ...m, cut: null })));
      }),
      { numRuns: 1500 },
    );
  });

  it('accessor', async () => {
    await fc.assert(
      fc.asyncProperty(mutationArb, fc.boolean(), async (m, which) => {
        if (which) await onlyPbsErrors(() => walkEverything(mutate(v1, m)));
        else await onlyPbsErrors(() => walkEverything(mutate(m2, m), mutate(p2, { ...m, cut: null })));
      }),
      { numRuns: 1500 },
    );
  });

  it('catalog reader', async () => {
    const sink = new MemorySink();
    const w = new CatalogWriter(sink);
    w.startDirectory('root.pxar.didx');
    for (let i = 0; i < 5; i++) {
      w.startDirectory(`d${i}`);
      w.addFile(`f${i}`, i * 1000, -i * 7777);
      w.addSymlink('l');
      await w.endDirectory();
    }
    await w.endDirectory();
    await w.finish();
    const cat = sink.bytes();
    await fc.assert(
      fc.asyncProperty(mutationArb, async (m) => {
        await onlyPbsErrors(async () => {
          const r = await CatalogReader.open(bytesReadAt(mutate(cat, m)));
          for await (const _ of r.walk()) {
            // every table is read
          }
        });
      }),
      { numRuns: 1500 },
    );
  });
});

describe('specific bad inputs', () => {
  const v1 = readVector('synth.pxar');

  it('truncation reports the offset', async () => {
    await expect(decodeEverything(v1.subarray(0, 500))).rejects.toMatchObject({ code: 'ECORRUPT' });
    await expect(decodeEverything(v1.subarray(0, 500))).rejects.toHaveProperty('offset');
  });

  it('hardlink pointing forward is rejected', async () => {
    const b = v1.slice();
    new DataView(b.buffer).setBigUint64(742 + 16, 5000n, true); // HARDLINK item at 742 (vector items listing)
    await expect(decodeEverything(b)).rejects.toMatchObject({ code: 'ECORRUPT', offset: 742 });
  });

  it('a goodbye item pointing at its own directory is rejected by the accessor', async () => {
    const b = v1.slice();
    // root goodbye at 1433; make item 0 point at offset 0 (the root itself)
    new DataView(b.buffer).setBigUint64(1433 + 16 + 8, 1433n, true);
    await expect(walkEverything(b)).rejects.toMatchObject({ code: 'ECORRUPT' });
  });

  it('names with "/" are rejected', async () => {
    const b = v1.slice();
    b[56 + 16 + 3] = 0x2f; // inside "all-metadata"
    await expect(decodeEverything(b)).rejects.toMatchObject({ code: 'ECORRUPT', offset: 56 });
  });

  it('absurd xattr sizes are rejected before allocating', async () => {
    const b = v1.slice();
    new DataView(b.buffer).setBigUint64(141 + 8, 1n << 40n, true);
    await expect(decodeEverything(b)).rejects.toMatchObject({ code: 'ECORRUPT', offset: 141 });
  });
});
