// Metadata change detection (spec §8.7): unchanged files reference the previous snapshot's `.ppxar` payload by
// injecting the previous chunks that hold it, instead of reading and uploading the file again. The previous
// `.mpxar` is decoded once, sequentially, alongside the walk: both are in archive order (names sorted by bytes).
import { readArchiveRange } from '../io/archive-stream.js';
import type { IndexReader } from '../io/index-reader.js';
import { PxarDecoder } from '../pxar/decoder.js';
import type { PxarEncoder } from '../pxar/encoder.js';
import type { Metadata, PxarEntry } from '../pxar/format.js';
import type { PreviousPayload } from '../fs/archiver.js';
import type { DynamicArchiveWriter } from './dynamic-archive-writer.js';
import { PayloadPlacer } from './payload-placer.js';
import type { SnapshotWriter } from './snapshot-writer.js';
import { walkOrder } from '../pxar/names.js';

export class PayloadReuse {
  private readonly placer: PayloadPlacer;

  private constructor(
    private readonly previous: PreviousEntries,
    previousPayload: IndexReader,
    payload: DynamicArchiveWriter,
  ) {
    this.placer = new PayloadPlacer(previousPayload, payload);
  }

  /** Opens the group's previous split archive `BASE.mpxar`/`.ppxar`; undefined when there is none to reuse. */
  static async open(session: SnapshotWriter, base: string, payload: DynamicArchiveWriter): Promise<PayloadReuse | undefined> {
    const meta = await session.previousArchive(`${base}.mpxar.didx`);
    const pay = await session.previousArchive(`${base}.ppxar.didx`);
    if (!meta || !pay) return undefined;
    try {
      const bytes = (async function* () {
        for await (const { data } of readArchiveRange(meta.reader, meta.index, { readAhead: 2 })) yield data;
      })();
      const decoder = await PxarDecoder.open(bytes);
      return decoder.version === 2 ? new PayloadReuse(new PreviousEntries(decoder), pay.index, payload) : undefined;
    } catch {
      return undefined; // an unreadable previous archive only costs reuse
    }
  }

  /** The archiver asks before reading a file: a hit returns where its payload will be in the new stream. */
  async lookup(path: Uint8Array, metadata: Metadata, size: number, encoder: PxarEncoder): Promise<PreviousPayload | undefined> {
    if (this.placer.abandoned) return undefined;
    const prev = await this.previous.find(path);
    if (!prev || prev.kind !== 'file' || prev.size !== size || prev.payloadOffset === undefined) return undefined;
    if (!sameMetadata(prev.metadata, metadata)) return undefined;
    const payloadOffset = await this.placer.place(prev.payloadOffset, size, encoder);
    return payloadOffset === undefined ? undefined : { payloadOffset };
  }

  /**
   * Whether `path` is likely to be reused, from lstat alone (size, mode, owner, mtime), without waiting for
   * anything: true unless reuse was abandoned, so no file is read ahead that might not be needed (a changed file
   * is then read when the walk reaches it).
   */
  predict(): boolean {
    return !this.placer.abandoned;
  }

  /** Places the pending run's chunks in the payload stream (before a freshly read file, and at the end). */
  flush(encoder: PxarEncoder): Promise<void> {
    return this.placer.flush(encoder);
  }
}

/** Stat, xattrs, ACLs, fcaps and project id equal (spec §8.7: what makes a file reusable). */
export function sameMetadata(a: Metadata, b: Metadata): boolean {
  const s = a.stat;
  const t = b.stat;
  if (s.mode !== t.mode || s.flags !== t.flags || s.uid !== t.uid || s.gid !== t.gid) return false;
  if (s.mtime.secs !== t.mtime.secs || s.mtime.nanos !== t.mtime.nanos) return false;
  if (a.quotaProjectId !== b.quotaProjectId) return false;
  if (!bytesEq(a.fcaps, b.fcaps)) return false;
  if (a.xattrs.length !== b.xattrs.length) return false;
  if (a.xattrs.length > 0) {
    const key = (x: { name: Uint8Array; value: Uint8Array }) => `${Buffer.from(x.name).toString('hex')}=${Buffer.from(x.value).toString('hex')}`;
    const ax = a.xattrs.map(key).sort();
    const bx = b.xattrs.map(key).sort();
    if (ax.some((v, i) => v !== bx[i])) return false;
  }
  // Most files have no ACL at all: skip the structural comparison then.
  if (noAcl(a.acl) && noAcl(b.acl)) return true;
  return JSON.stringify(a.acl, bigintSafe) === JSON.stringify(b.acl, bigintSafe);
}

function noAcl(acl: Metadata['acl']): boolean {
  return acl.users.length === 0 && acl.groups.length === 0 && acl.groupObj === null && acl.default === null &&
    acl.defaultUsers.length === 0 && acl.defaultGroups.length === 0;
}

/**
 * The previous archive's entries, decoded in order and consumed by a walk in the same order: find() skips the
 * entries before `path` (removed since) and answers from the entry at it. A decoding error ends the stream (that
 * only costs reuse).
 */
class PreviousEntries {
  /** The decoded entry not consumed yet; undefined: decode the next one; null: the stream has ended. */
  private current: PxarEntry | null | undefined;

  constructor(private readonly decoder: PxarDecoder) {}

  /** The entry at archive-relative `path` (no leading slash), if the previous archive has one. */
  async find(path: Uint8Array): Promise<PxarEntry | undefined> {
    for (;;) {
      if (this.current === undefined) this.current = await this.decoder.next().catch(() => null);
      const cur = this.current;
      if (cur === null) return undefined;
      // decoder paths start with '/'
      const c = walkOrder(cur.path.subarray(1), path);
      if (c > 0) return undefined; // not in the previous archive
      this.current = undefined;
      if (c === 0) return cur;
    }
  }
}

function bytesEq(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
