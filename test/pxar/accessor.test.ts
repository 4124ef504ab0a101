import { describe, expect, it } from 'vitest';
import { PxarAccessor, type AccessorEntry, type PxarDirectory } from '../../src/pxar/accessor.js';
import { PxarEncoder } from '../../src/pxar/encoder.js';
import { hashFilename, metadataOf } from '../../src/pxar/format.js';
import { nameToJson } from '../../src/pxar/names.js';
import { bytesReadAt, type ReadAt } from '../../src/pxar/read-at.js';
import { readJsonl, readVector, sha256 } from './listing.js';
import { MemorySink } from './tree.js';

const dirStat = { mode: 0o40755, flags: 0, uid: 0, gid: 0, mtime: { secs: 0, nanos: 0 } };
const fileStat = { ...dirStat, mode: 0o100644 };
const enc = new TextEncoder();

/** A ReadAt over memory that counts what it hands out. */
function countingReadAt(bytes: Uint8Array) {
  const inner = bytesReadAt(bytes);
  const stats = { bytes: 0, calls: 0 };
  const r: ReadAt = { size: inner.size, readAt: async (o, n) => { stats.bytes += n; stats.calls++; return inner.readAt(o, n); } };
  return { r, stats };
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c.slice());
  return out;
}

async function walk(acc: PxarAccessor): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const root = await acc.root();
  lines.push({ entry_range: [root.entry.range.start, root.entry.range.end], goodbye_entries: root.count, kind: 'dir', path: '/' });
  const visit = async (dir: PxarDirectory) => {
    const subdirs: AccessorEntry[] = [];
    for await (const c of acc.readDir(dir)) {
      const e = c.entry;
      const line: Record<string, unknown> = {
        goodbye_index: c.goodbyeIndex, filename_header_offset: e.filenameOffset, entry_range: [c.range.start, c.range.end],
        kind: e.kind, path: nameToJson(e.path),
      };
      if (e.kind === 'dir') {
        const d = await acc.openDirectory(c);
        line.goodbye_entries = d.count;
        subdirs.push(c);
      }
      if (e.kind === 'file') {
        const parts = await collect(acc.contents(c));
        Object.assign(line, { size: e.size, offset: e.contentOffset, content_len: parts.reduce((n, p) => n + p.length, 0), sha256: sha256(parts) });
        if (e.payloadOffset !== undefined) line.payload_offset = e.payloadOffset;
      }
      if (e.kind === 'device') Object.assign(line, e.device);
      if (e.kind === 'symlink') line.target = nameToJson(e.linkTarget!);
      if (e.kind === 'hardlink') {
        const t = await acc.followHardlink(c);
        Object.assign(line, {
          target: nameToJson(e.linkTarget!), hardlink_offset: e.hardlinkOffset, resolved_filename_header_offset: t.entry.filenameOffset,
          resolved_entry_range: [t.range.start, t.range.end], resolved_size: t.entry.size,
        });
      }
      lines.push(line);
    }
    for (const s of subdirs) await visit(await acc.openDirectory(s));
  };
  await visit(root);
  return lines;
}

describe('accessor vs reference walks', () => {
  it('synth.pxar', async () => {
    const acc = await PxarAccessor.open(bytesReadAt(readVector('synth.pxar')));
    expect(await walk(acc)).toEqual(readJsonl('synth.pxar.accessor.jsonl'));
  });

  it('synth.mpxar + synth.ppxar', async () => {
    const acc = await PxarAccessor.open(bytesReadAt(readVector('synth.mpxar')), { payload: bytesReadAt(readVector('synth.ppxar')) });
    expect(acc.version).toBe(2);
    expect(acc.prelude).not.toBeNull();
    expect(await walk(acc)).toEqual(readJsonl('synth.mpxar.accessor.jsonl'));
  });
});

describe('lookup', () => {
  it('finds paths, misses absent ones, reads ranges', async () => {
    for (const [m, p] of [['synth.pxar', undefined], ['synth.mpxar', 'synth.ppxar']] as const) {
      const acc = await PxarAccessor.open(bytesReadAt(readVector(m)), { payload: p ? bytesReadAt(readVector(p)) : undefined });
      const sock = await acc.lookup('/dir-default-acl/socket');
      expect(sock?.entry.kind).toBe('socket');
      expect((await acc.lookup('dir-default-acl/fifo'))?.entry.kind).toBe('fifo');
      expect(await acc.lookup('/dir-default-acl/nope')).toBeNull();
      expect(await acc.lookup('/symlink/x')).toBeNull();
      expect(await acc.lookup('/dir-default-acl/..')).toBeNull();
      expect((await acc.lookup('/'))?.entry.kind).toBe('dir');
      const f = (await acc.lookup('/zz-written-in-pieces'))!;
      const all = Buffer.concat(await collect(acc.contents(f)));
      expect(Buffer.from(await acc.read(f, 3, 4))).toEqual(all.subarray(3, 7));
      expect((await acc.read(f, 8, 100)).length).toBe(2);
      const link = (await acc.lookup('/dir-default-acl/hardlink-to-all-metadata'))!;
      expect(Buffer.from((await acc.followHardlink(link)).entry.path).toString()).toBe('/all-metadata');
    }
  });

  it('reads a small fraction of an archive with a 5,000-entry directory', async () => {
    const sink = new MemorySink();
    const e = await PxarEncoder.create(sink, metadataOf(dirStat));
    await e.createDirectory('big', metadataOf(dirStat));
    for (let i = 0; i < 5000; i++) {
      const body = enc.encode(`contents of file ${i}\n`.repeat(4));
      await e.addFile(metadataOf(fileStat), `file-${String(i).padStart(5, '0')}`, body.length, [body]);
    }
    await e.finishDirectory();
    await e.finish();
    const bytes = sink.bytes();
    const { r, stats } = countingReadAt(bytes);
    const acc = await PxarAccessor.open(r);
    const f = (await acc.lookup('/big/file-03172'))!;
    expect(Buffer.from(Buffer.concat(await collect(acc.contents(f)))).toString()).toBe('contents of file 3172\n'.repeat(4));
    expect(bytes.length).toBeGreaterThan(500_000);
    expect(stats.bytes).toBeLessThan(4_000);
    expect(stats.calls).toBeLessThan(40);
  });

  it('handles hash collisions by comparing names', async () => {
    const sink = new MemorySink();
    const e = await PxarEncoder.create(sink, metadataOf(dirStat));
    await e.addFile(metadataOf(fileStat), 'a', 1, [enc.encode('A')]);
    await e.addFile(metadataOf(fileStat), 'b', 1, [enc.encode('B')]);
    await e.finish();
    const bytes = sink.bytes();
    // Give both goodbye items the same hash, as a collision would.
    const view = new DataView(bytes.buffer);
    const table = bytes.length - 3 * 24;
    for (const i of [0, 1]) view.setBigUint64(table + i * 24, hashFilename(enc.encode('b')), true);
    const acc = await PxarAccessor.open(bytesReadAt(bytes));
    for (const name of ['a', 'b']) {
      // 'a' is now unreachable by hash; 'b' must be found whichever equal item is met first.
      const hit = await acc.lookup(name);
      if (name === 'b') expect(Buffer.concat(await collect(acc.contents(hit!))).toString()).toBe('B');
      else expect(hit).toBeNull();
    }
  });
});

describe('readDir order', () => {
  it("order 'archive' yields the same children front to back", async () => {
    for (const name of ['synth.pxar', 'synth.mpxar']) {
      const acc = await PxarAccessor.open(bytesReadAt(readVector(name)));
      const root = await acc.root();
      const goodbye: AccessorEntry[] = [];
      for await (const c of acc.readDir(root)) goodbye.push(c);
      const archive: AccessorEntry[] = [];
      for await (const c of acc.readDir(root, { order: 'archive' })) archive.push(c);
      const offsets = archive.map((c) => c.entry.filenameOffset!);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      expect(new Set(archive.map((c) => c.entry.filenameOffset))).toEqual(new Set(goodbye.map((c) => c.entry.filenameOffset)));
      expect(goodbye.map((c) => c.entry.filenameOffset)).not.toEqual(offsets); // the vectors' root is not stored in hash order
    }
  });
});
