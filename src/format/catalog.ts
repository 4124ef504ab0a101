// catalog.pcat1 (spec §9): varints, a streaming post-order writer and a bounded random-access reader.
import { PbsError } from '../errors.js';
import type { ByteSink } from '../pxar/encoder.js';
import { checkName, nameToDisplay, splitPath, toNameBytes } from '../pxar/names.js';
import { readRange, type ReadAt } from '../pxar/read-at.js';

/** spec §9: SHA-256("Proxmox Backup Catalog file v1.0")[0..8]. */
export const CATALOG_MAGIC = Uint8Array.of(0x91, 0xfd, 0x60, 0xf9, 0xc4, 0x67, 0x58, 0xd5);
const MAX_NAME = 4096; // spec §9: names must be shorter when reading

export type CatalogEntryType = 'd' | 'f' | 'l' | 'h' | 'b' | 'c' | 'p' | 's';
const TYPES = new Set<number>([...'dflhbcps'].map((c) => c.charCodeAt(0)));

export interface CatalogEntry {
  type: CatalogEntryType;
  name: Uint8Array;
  /** Files: size in bytes. */
  size?: number;
  /** Files: mtime in seconds. */
  mtime?: number;
  /** Directories: absolute offset of the directory's table. */
  start?: number;
}

// ---- varints (spec §9) ---------------------------------------------------------------------------

/** u64 varint: 7 bits per byte, least significant first, high bit = more follows. */
export function encodeVarint(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new PbsError('EINVAL', `varint value ${v} is not a non-negative safe integer`);
  const out: number[] = [];
  while (v >= 128) {
    out.push(0x80 | (v % 128));
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** i64 svarint: non-negative as varint; −x as the groups of x all with the high bit, then 0x00. */
export function encodeSvarint(v: number): Uint8Array {
  if (!Number.isSafeInteger(v)) throw new PbsError('EINVAL', `svarint value ${v} is not a safe integer`);
  if (v >= 0) return encodeVarint(v);
  const out: number[] = [];
  let d = -v;
  while (d >= 128) {
    out.push(0x80 | (d % 128));
    d = Math.floor(d / 128);
  }
  out.push(0x80 | d, 0);
  return Uint8Array.from(out);
}

export interface Decoded {
  value: number;
  /** Index after the last byte read. */
  next: number;
}

function tooBig(pos: number): PbsError {
  return new PbsError('ECORRUPT', 'catalog varint exceeds 2^53', { offset: pos });
}

/** `pos` is the archive offset of b[0] (for messages). */
export function decodeVarint(b: Uint8Array, at: number, pos = 0): Decoded {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const t = b[at + i];
    if (t === undefined) throw new PbsError('ECORRUPT', 'catalog truncated inside a varint', { offset: pos + at });
    v += (t & 0x7f) * scale;
    if (!Number.isSafeInteger(v)) throw tooBig(pos + at);
    if (t < 0x80) return { value: v, next: at + i + 1 };
    scale *= 128;
  }
  throw new PbsError('ECORRUPT', 'catalog varint longer than 10 bytes', { offset: pos + at });
}

export function decodeSvarint(b: Uint8Array, at: number, pos = 0): Decoded {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < 11; i++) {
    const t = b[at + i];
    if (t === undefined) throw new PbsError('ECORRUPT', 'catalog truncated inside a varint', { offset: pos + at });
    if (t === 0) return { value: v === 0 ? 0 : -v, next: at + i + 1 };
    v += (t & 0x7f) * scale;
    if (!Number.isSafeInteger(v)) throw tooBig(pos + at);
    if (t < 0x80) return { value: v, next: at + i + 1 };
    scale *= 128;
  }
  throw new PbsError('ECORRUPT', 'catalog svarint longer than 11 bytes', { offset: pos + at });
}

// ---- writer --------------------------------------------------------------------------------------

interface OpenTable {
  name: Uint8Array;
  entries: CatalogEntry[];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Writes a catalog. Open directories keep their entry lists in memory; a directory's table is written when it
 * ends (post-order), the root table at finish(). The root holds one directory per archive (`root.pxar.didx`).
 */
export class CatalogWriter {
  private readonly dirs: OpenTable[] = [{ name: new Uint8Array(0), entries: [] }];
  private position = 0;
  private done = false;

  constructor(private readonly sink: ByteSink) {}

  startDirectory(name: Uint8Array | string): void {
    this.open();
    const n = toNameBytes(name);
    checkName(n, 'EINVAL');
    this.dirs.push({ name: n, entries: [] });
  }

  async endDirectory(): Promise<void> {
    if (this.dirs.length < 2) throw new PbsError('EINVAL', 'endDirectory() without an open directory');
    const dir = this.dirs.pop()!;
    const start = await this.writeTable(dir.entries);
    this.open().entries.push({ type: 'd', name: dir.name, start });
  }

  addFile(name: Uint8Array | string, size: number, mtime: number): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new PbsError('EINVAL', `invalid file size ${size}`);
    if (!Number.isSafeInteger(mtime)) throw new PbsError('EINVAL', `invalid mtime ${mtime}`);
    this.add('f', name, { size, mtime });
  }
  addSymlink(name: Uint8Array | string): void { this.add('l', name); }
  addHardlink(name: Uint8Array | string): void { this.add('h', name); }
  addBlockDevice(name: Uint8Array | string): void { this.add('b', name); }
  addCharDevice(name: Uint8Array | string): void { this.add('c', name); }
  addFifo(name: Uint8Array | string): void { this.add('p', name); }
  addSocket(name: Uint8Array | string): void { this.add('s', name); }

  /** Writes the root table and the trailing root offset; returns that offset. */
  async finish(): Promise<number> {
    if (this.dirs.length !== 1) throw new PbsError('EINVAL', `catalog finish() with ${this.dirs.length - 1} directories open`);
    const root = await this.writeTable(this.dirs[0]!.entries);
    const tail = new Uint8Array(8);
    new DataView(tail.buffer).setBigUint64(0, BigInt(root), true);
    await this.sink.write(tail);
    this.done = true;
    return root;
  }

  private open(): OpenTable {
    if (this.done) throw new PbsError('EINVAL', 'catalog already finished');
    return this.dirs[this.dirs.length - 1]!;
  }

  private add(type: CatalogEntryType, name: Uint8Array | string, extra: Partial<CatalogEntry> = {}): void {
    const dir = this.open();
    const n = toNameBytes(name);
    checkName(n, 'EINVAL');
    dir.entries.push({ type, name: n, ...extra });
  }

  /** spec §9 table: varint(len) + [varint(count) + entries]; returns the table's offset. */
  private async writeTable(entries: CatalogEntry[]): Promise<number> {
    if (this.position === 0) {
      await this.sink.write(CATALOG_MAGIC);
      this.position = CATALOG_MAGIC.length;
    }
    const start = this.position;
    const parts: Uint8Array[] = [encodeVarint(entries.length)];
    for (const e of entries) {
      parts.push(Uint8Array.of(e.type.charCodeAt(0)), encodeVarint(e.name.length), e.name);
      if (e.type === 'd') parts.push(encodeVarint(start - e.start!));
      if (e.type === 'f') parts.push(encodeVarint(e.size!), encodeSvarint(e.mtime!));
    }
    const body = concat(parts);
    const table = concat([encodeVarint(body.length), body]);
    await this.sink.write(table);
    this.position += table.length;
    return start;
  }
}

// ---- reader --------------------------------------------------------------------------------------

/** Reads tables on demand; every offset is checked to point backwards inside the file, so walks terminate. */
export class CatalogReader {
  private constructor(private readonly src: ReadAt, readonly rootOffset: number) {}

  static async open(src: ReadAt): Promise<CatalogReader> {
    if (src.size < CATALOG_MAGIC.length + 8 + 2) throw new PbsError('ECORRUPT', `catalog of ${src.size} bytes is too small`, { offset: 0 });
    const magic = await readRange(src, 0, CATALOG_MAGIC.length, 'catalog magic');
    if (!magic.every((b, i) => b === CATALOG_MAGIC[i])) throw new PbsError('ECORRUPT', 'not a catalog (bad magic)', { offset: 0 });
    const tailPos = src.size - 8;
    const tail = await readRange(src, tailPos, 8, 'catalog root offset');
    const root = new DataView(tail.buffer, tail.byteOffset, 8).getBigUint64(0, true);
    if (root < BigInt(CATALOG_MAGIC.length) || root >= BigInt(tailPos)) {
      throw new PbsError('ECORRUPT', `catalog root offset ${root} out of range`, { offset: tailPos });
    }
    return new CatalogReader(src, Number(root));
  }

  root(): CatalogEntry {
    return { type: 'd', name: new Uint8Array(0), start: this.rootOffset };
  }

  /** Entries of the directory whose table starts at `dir.start`. */
  async readDir(dir: CatalogEntry): Promise<CatalogEntry[]> {
    if (dir.type !== 'd' || dir.start === undefined) throw new PbsError('EINVAL', 'not a catalog directory');
    const start = dir.start;
    const end = this.src.size - 8;
    const head = await readRange(this.src, start, Math.min(10, end - start), 'catalog table length', end);
    const len = decodeVarint(head, 0, start);
    const bodyPos = start + len.next;
    if (len.value < 1 || bodyPos + len.value > end) {
      throw new PbsError('ECORRUPT', `catalog table length ${len.value} out of range`, { offset: start });
    }
    const b = await readRange(this.src, bodyPos, len.value, 'catalog table', end);
    const count = decodeVarint(b, 0, bodyPos);
    // Each entry needs at least 3 bytes (type, name length, one name byte).
    if (count.value > b.length / 3) throw new PbsError('ECORRUPT', `catalog table claims ${count.value} entries`, { offset: bodyPos });
    const entries: CatalogEntry[] = [];
    let at = count.next;
    for (let i = 0; i < count.value; i++) {
      const type = b[at];
      if (type === undefined || !TYPES.has(type)) throw new PbsError('ECORRUPT', `bad catalog entry type ${type}`, { offset: bodyPos + at });
      const nl = decodeVarint(b, at + 1, bodyPos);
      if (nl.value >= MAX_NAME || nl.next + nl.value > b.length) {
        throw new PbsError('ECORRUPT', `catalog name length ${nl.value} out of range`, { offset: bodyPos + at });
      }
      const name = b.slice(nl.next, nl.next + nl.value);
      checkName(name, 'ECORRUPT', bodyPos + nl.next);
      at = nl.next + nl.value;
      const e: CatalogEntry = { type: String.fromCharCode(type) as CatalogEntryType, name };
      if (e.type === 'd') {
        const off = decodeVarint(b, at, bodyPos);
        if (off.value <= 0 || off.value > start - CATALOG_MAGIC.length) {
          throw new PbsError('ECORRUPT', `catalog directory offset ${off.value} does not point backwards into the file`, { offset: bodyPos + at });
        }
        e.start = start - off.value;
        at = off.next;
      } else if (e.type === 'f') {
        const size = decodeVarint(b, at, bodyPos);
        const mtime = decodeSvarint(b, size.next, bodyPos);
        e.size = size.value;
        e.mtime = mtime.value;
        at = mtime.next;
      }
      entries.push(e);
    }
    if (at !== b.length) throw new PbsError('ECORRUPT', 'catalog table has trailing bytes', { offset: bodyPos + at });
    return entries;
  }

  /** Path lookup from the root (`/root.pxar.didx/etc/passwd`); null when missing. */
  async lookup(path: Uint8Array | string): Promise<CatalogEntry | null> {
    let cur = this.root();
    for (const part of splitPath(toNameBytes(path))) {
      if (cur.type !== 'd') return null;
      const next = (await this.readDir(cur)).find((e) => e.name.length === part.length && e.name.every((c, i) => c === part[i]));
      if (!next) return null;
      cur = next;
    }
    return cur;
  }

  /** Depth-first, pre-order walk as `catalog dump` prints it: each entry, then a directory's contents. */
  async *walk(from: CatalogEntry = this.root(), prefix: Uint8Array = new Uint8Array(0)): AsyncGenerator<{ path: Uint8Array; entry: CatalogEntry }> {
    const stack: { prefix: Uint8Array; entries: CatalogEntry[]; next: number }[] = [{ prefix, entries: await this.readDir(from), next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const entry = top.entries[top.next++];
      if (entry === undefined) {
        stack.pop();
        continue;
      }
      const path = concat([top.prefix, Uint8Array.of(0x2f), entry.name]);
      yield { path, entry };
      if (entry.type === 'd') stack.push({ prefix: path, entries: await this.readDir(entry), next: 0 });
    }
  }
}


/** One `catalog dump` line: `type "path"`, plus size and UTC mtime for files. */
export function formatCatalogDumpLine(path: Uint8Array, e: CatalogEntry): string {
  const head = `${e.type} ${JSON.stringify(nameToDisplay(path))}`;
  if (e.type !== 'f') return head;
  const ms = e.mtime! * 1000;
  const time = Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString().replace('.000Z', 'Z') : String(e.mtime);
  return `${head} ${e.size} ${time}`;
}
