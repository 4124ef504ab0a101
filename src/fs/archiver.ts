// Walks a directory tree into a pxar archive (spec §8.4–§8.7) the way the PBS client does: children sorted by raw name
// bytes, hardlinks by (st_dev, st_ino), mount points skipped unless included, `.pxarexclude` and CLI excludes
// (features §3.5–§3.7, §4.1), optional catalog entries (spec §9) in the same pass. File contents are streamed.
import { close as fsClose, constants as C, open as fsOpen, read as fsRead } from 'node:fs';
import { lstat, open, readlink, statfs, type FileHandle } from 'node:fs/promises';
import { PbsError } from '../errors.js';
import { PxarEncoder, type ByteSink } from '../pxar/encoder.js';
import {
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, deviceFromDevT, emptyMetadata, fileType, type Metadata,
} from '../pxar/format.js';
import { joinPath, nameToDisplay } from '../pxar/names.js';
import { errnoOf } from './errno.js';
import { excludePatternsText, matchPatterns, parseExcludeFile, parsePattern, pathKey, type PathPattern } from './patterns.js';
import { readMetadata } from './read-metadata.js';
import { type EntryStat, type FailedEntry, type ScannedEntry, scanDir, scanPath } from './scan-dir.js';

/** Where catalog entries go (CatalogWriter of src/format/catalog.ts fits); the caller opens and closes the archive's directory. */
export interface ArchiveCatalog {
  startDirectory(name: Uint8Array): void;
  endDirectory(): Promise<void>;
  addFile(name: Uint8Array, size: number, mtime: number): void;
  addSymlink(name: Uint8Array): void;
  addHardlink(name: Uint8Array): void;
  addBlockDevice(name: Uint8Array): void;
  addCharDevice(name: Uint8Array): void;
  addFifo(name: Uint8Array): void;
  addSocket(name: Uint8Array): void;
}

/** A previous archive's payload for an unchanged file (metadata change detection, spec §8.7). */
export interface PreviousPayload {
  payloadOffset: number;
}

export interface ArchiverOptions {
  /** Payload sink: writes a split v2 archive (.mpxar to `sink`, .ppxar here). */
  payload?: ByteSink;
  /** `--exclude` patterns, relative to the source directory. */
  excludes?: readonly string[];
  /** Cross into every filesystem (virtual ones such as /proc are still skipped). */
  allFileSystems?: boolean;
  /** Mount points whose filesystem is archived too. */
  includeDev?: readonly string[];
  catalog?: ArchiveCatalog;
  /**
   * v2 only: asked for each regular file before it is read. A hit makes the archiver reference that payload
   * (addPayloadRef) instead of reading the file. `payloadOffset` must not lie below `encoder.payloadPosition`: the
   * caller decides where the reused bytes will land and places them (injects chunks, advancePayload) in `flushReused`.
   */
  lookupPrevious?: (path: Uint8Array, metadata: Metadata, size: number, encoder: PxarEncoder) => Promise<PreviousPayload | undefined> | PreviousPayload | undefined;
  /**
   * With lookupPrevious: a cheap guess (from lstat alone) whether a file will be reused. Files guessed not to be
   * are read ahead like in a full backup; without this hook nothing is read ahead in metadata mode.
   */
  predictReuse?: (path: Uint8Array, st: EntryStat) => boolean;
  /** v2 with lookupPrevious: called before each freshly read file's payload and before the archive ends. */
  flushReused?: (encoder: PxarEncoder) => Promise<void> | void;
  /** Non-fatal problems (vanished or unreadable files, skipped mount points, bad exclude lines). */
  onWarning?: (message: string) => void;
  /** Called with each entry's archive-relative path before it is archived (progress). */
  onEntry?: (path: Uint8Array) => void;
}

export interface ArchiveStats {
  entries: number;
  /** Bytes of regular-file contents read from disk. */
  fileBytes: number;
  /** Files whose payload came from lookupPrevious. */
  reused: number;
  warnings: number;
}

const READ_SIZE = 1 << 20;
const MAX_EXCLUDE_FILE = 1 << 20;
const CLI_NAME = Buffer.from('.pxarexclude-cli');
const EXCLUDE_FILE = '.pxarexclude';

// Linux statfs magics of pseudo filesystems whose contents are never archived (linux/magic.h).
const VIRTUAL_FS = new Set([
  0x42494e4d, 0x63677270, 0x27e0eb, 0x62656570, 0x64626720, 0x1cd1, 0xde5e81e4, 0x65735543, 0x958458f6, 0x19800202,
  0x6e667364, 0x9fa0, 0x6165676c, 0x67596969, 0x73636673, 0xf97cff8c, 0x43415d53, 0x62656572,
]);

type Listing = (ScannedEntry | FailedEntry)[];

/**
 * Directory scans ahead of the walk: at most this many running (each one thread-pool job; libuv has 16 threads, see
 * cli/main.ts), and finished ones waiting for the walk bounded by count and entries. Ancestors' later subdirectories
 * are listed too, so finished listings must not block the nearer ones: hence the separate bounds.
 */
const SCANS_RUNNING = 16;
const LISTINGS_READY = 256;
const LISTED_ENTRIES = 32 * 1024;
/** Small files a scan reads along (when nothing may be reused from a previous snapshot), and what waits read. */
const SCAN_READ_BUDGET = 1024 * 1024;
const LISTED_BYTES = 8 * 1024 * 1024;
const EXCLUDE_FILE_BYTES = Buffer.from('.pxarexclude');
/** A directory to list: its path and the key of its listing (computed once: the scan-ahead revisits it often). */
interface DirRef {
  path: Buffer;
  key: string;
}

/** A subdirectory on another filesystem: maybe skipped, listed when entered. */
const OTHER_FS: DirRef = { path: Buffer.alloc(0), key: '' };

function dirRef(path: Buffer): DirRef {
  return { path, key: path.toString('latin1') };
}

type Child = ScannedEntry;

/** A directory listing started ahead of the walk. */
interface ListingSlot {
  p: Promise<Listing>;
  /** Entries and bytes read along, once finished (they count against the read-ahead bounds). */
  entries: number;
  bytes: number;
  /** Once finished: its subdirectories on the same filesystem, in walk order, to be listed ahead in turn. */
  subdirs: DirRef[] | null;
}

function fsPath(dir: Buffer, name: Uint8Array): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

function relJoin(parent: Uint8Array, name: Uint8Array): Uint8Array {
  return parent.length === 0 ? name : joinPath(parent, name);
}

const PREFETCH_MAX_FILE = 256 * 1024;
const PREFETCH_FILES = 48;
const PREFETCH_BYTES = 3 * 1024 * 1024;

/** Reads small files whole, in parallel on libuv's threads; null for one not of the given size (read normally). */
async function readSmallFiles(paths: Buffer[], sizes: number[]): Promise<(Uint8Array | null)[]> {
  return Promise.all(paths.map((p, i) => readExactly(p, sizes[i]!)));
}

/**
 * One open, one read of size+1 bytes (a longer result means the file grew), close not awaited. The callback
 * API with a known size skips the fstat and FileHandle work of fs/promises' readFile, which dominated here.
 */
function readExactly(path: Buffer, size: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    fsOpen(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK, (err, fd) => {
      if (err) return resolve(null);
      const buf = Buffer.allocUnsafe(size + 1);
      fsRead(fd, buf, 0, size + 1, 0, (err2, n) => {
        fsClose(fd, () => undefined);
        resolve(!err2 && n === size ? buf.subarray(0, size) : null);
      });
    });
  });
}

/** Bytes and files one directory reads ahead (directories open above it keep theirs: depth x this at most). */
class PrefetchBudget {
  bytes = 0;
  files = 0;
  get full(): boolean {
    return this.files >= PREFETCH_FILES || this.bytes >= PREFETCH_BYTES;
  }
}

/** Reads the small regular files of one directory ahead of the walk, in batches, within a bounded window. */
class SmallFilePrefetch {
  private readonly pending = new Map<number, { p: Promise<Uint8Array | null>; size: number }>();
  private next = 0;

  constructor(
    private readonly dir: Buffer,
    private readonly children: readonly Child[],
    private readonly budget: PrefetchBudget,
    /** Files expected to come from the previous snapshot (metadata mode) are not read ahead. */
    private readonly skip?: (child: Child) => boolean,
  ) {}

  /** The contents of child `i` if it was read ahead. */
  take(i: number): Promise<Uint8Array | null> | undefined {
    const got = this.pending.get(i);
    if (got) {
      this.pending.delete(i);
      this.budget.bytes -= got.size;
      this.budget.files--;
    }
    if (this.pending.size < PREFETCH_FILES / 4) this.fill(i + 1);
    return got?.p;
  }

  private fill(from: number): void {
    if (this.next < from) this.next = from;
    const batch: number[] = [];
    while (this.next < this.children.length && !this.budget.full) {
      const i = this.next++;
      const c = this.children[i]!;
      const size = c.st.size;
      // Hardlinked files may turn out to be links to an earlier entry: not worth reading ahead.
      if (fileType(c.st.mode) !== S_IFREG || size > PREFETCH_MAX_FILE || c.st.nlink > 1 || c.contents) continue;
      if (this.skip?.(c)) continue;
      batch.push(i);
      this.budget.bytes += size;
      this.budget.files++;
    }
    if (!batch.length) return;
    const all = readSmallFiles(batch.map((i) => fsPath(this.dir, this.children[i]!.name)), batch.map((i) => this.children[i]!.st.size));
    all.catch(() => undefined);
    batch.forEach((i, k) => {
      this.pending.set(i, { p: all.then((r) => r[k] ?? null, () => null), size: this.children[i]!.st.size });
    });
  }
}

class Archiver {
  readonly stats: ArchiveStats = { entries: 0, fileBytes: 0, reused: 0, warnings: 0 };
  private readonly patterns: PathPattern[];
  private readonly hardlinks = new Map<string, { path: Uint8Array; offset: number }>();
  /** Directory listings started ahead of the walk, by path. */
  private readonly listings = new Map<string, ListingSlot>();
  private scansRunning = 0;
  private listedEntries = 0;
  private listedBytes = 0;
  /** Per directory being walked: its subdirectories in walk order and how many were entered. */
  private readonly frames: { paths: DirRef[]; entered: number; dev: bigint }[] = [];
  constructor(
    private readonly encoder: PxarEncoder,
    private readonly opts: ArchiverOptions,
    cliPatterns: PathPattern[],
    /** st_dev values whose contents are archived; null = all filesystems. */
    private readonly devices: Set<bigint> | null,
    /** st_dev of the directory being walked. */
    private currentDev: bigint,
  ) {
    this.patterns = [...cliPatterns];
  }

  warn(message: string): void {
    this.stats.warnings++;
    this.opts.onWarning?.(message);
  }

  /** Archives the contents of directory `dir` (archive path `rel`); the directory's own ENTRY is already written. */
  async dirContents(dir: Buffer, rel: Uint8Array, isRoot: boolean, cliText: Uint8Array | null): Promise<void> {
    const patternCount = this.patterns.length;
    let listing: Listing;
    try {
      listing = await this.listDir(dir);
    } catch (e) {
      this.warn(`cannot read directory ${show(rel)}: ${(e as Error).message}`);
      return;
    }
    if (listing.some((e) => e.name.equals(EXCLUDE_FILE_BYTES))) await this.readExcludeFile(dir, rel);
    const children: Child[] = [];
    for (const e of listing) {
      if (isRoot && e.name.equals(CLI_NAME)) continue; // replaced by the archive's own .pxarexclude-cli (features §4.1)
      const childRel = relJoin(rel, e.name);
      if ('error' in e) {
        this.failedEntry(childRel, e.error);
        continue;
      }
      if (this.patterns.length > 0 && matchPatterns(this.patterns, pathKey(childRel), fileType(e.st.mode) === S_IFDIR) === 'exclude') continue;
      children.push(e);
    }
    children.sort((a, b) => Buffer.compare(a.name, b.name));
    const frame = { paths: [] as DirRef[], entered: 0, dev: this.currentDev };
    for (const c of children) if (fileType(c.st.mode) === S_IFDIR) frame.paths.push(c.st.dev === this.currentDev ? dirRef(fsPath(dir, c.name)) : OTHER_FS);
    this.frames.push(frame);
    try {
      await this.dirEntries(dir, rel, children);
    } finally {
      this.frames.pop();
      // Listings of subdirectories never entered (excluded, or their entry failed) must not hold a slot.
      for (const e of listing) if (!('error' in e) && fileType(e.st.mode) === S_IFDIR) this.dropListings(fsPath(dir, e.name).toString('latin1'));
    }
    if (cliText) await this.cliFile(cliText);
    this.patterns.length = patternCount;
  }

  private async dirEntries(dir: Buffer, rel: Uint8Array, children: Child[]): Promise<void> {
    this.prefetchListings();
    // Small files are read a few ahead (in parallel) so the walk does not wait for each open/read/close in
    // turn. Not in metadata mode, where unchanged files must not be read at all.
    const predict = this.opts.predictReuse;
    const ahead =
      this.opts.lookupPrevious && !predict
        ? undefined
        : new SmallFilePrefetch(dir, children, new PrefetchBudget(), predict && ((c) => predict(relJoin(rel, c.name), c.st)));
    for (let i = 0; i < children.length; i++) await this.entry(dir, rel, children[i]!, ahead?.take(i));
  }

  /** An entry that vanished since the listing is skipped silently; other failures are warnings. */
  private failedEntry(rel: Uint8Array, e: Error & { code?: string; syscall?: string }): void {
    if (e.code === 'ENOENT') {
      if (e.syscall !== 'lstat') this.warn(`file vanished while reading: ${show(rel)}`);
      return;
    }
    this.warn(`${e.syscall === 'lstat' ? 'cannot stat' : 'cannot read metadata of'} ${show(rel)}: ${e.message}`);
  }

  /** A directory's entries with their metadata; taken from the prefetch when it was listed ahead. */
  private listDir(dir: Buffer): Promise<Listing> {
    const ready = this.takeListing(dir.toString('latin1'));
    this.prefetchListings();
    return ready ?? this.scan(dir);
  }

  /** Reading small files along with the scan saves their open/read/close round trips, but not in metadata mode. */
  private scan(dir: Buffer): Promise<Listing> {
    return this.opts.lookupPrevious ? scanDir(dir) : scanDir(dir, PREFETCH_MAX_FILE, SCAN_READ_BUDGET);
  }

  private takeListing(key: string): Promise<Listing> | undefined {
    const got = this.listings.get(key);
    if (!got) return undefined;
    this.listings.delete(key);
    this.listedEntries -= got.entries;
    this.listedBytes -= got.bytes;
    return got.p;
  }

  /** Forgets the listing of `dir` and those started below it. */
  private dropListings(key: string): void {
    const slot = this.listings.get(key);
    if (!slot) return;
    this.takeListing(key);
    for (const sub of slot.subdirs ?? []) this.dropListings(sub.key);
  }

  /**
   * Lists the directories the walk will enter next, in walk order: the rest of the current directory's
   * subdirectories, then those of its parents. So scans overlap with archiving (directory-heavy trees otherwise wait
   * on each listing in turn). When files are not read (metadata mode), the walk is fast enough to catch up with
   * that, so scans also run ahead through nested directories: each subdirectory is followed by what its own finished
   * listing shows below it. (Where files are read, nesting would only hold more read-along contents in memory.)
   */
  private prefetchListings(): void {
    const room = (): boolean =>
      this.scansRunning < SCANS_RUNNING && this.listings.size < LISTINGS_READY && this.listedEntries < LISTED_ENTRIES &&
      this.listedBytes < LISTED_BYTES;
    const nested = this.opts.lookupPrevious !== undefined;
    /** Starts `path` (on filesystem `dev`) and what is known below it; false once there is no room. */
    const visit = (dir: DirRef, dev: bigint): boolean => {
      if (dir === OTHER_FS) return true;
      let slot = this.listings.get(dir.key);
      if (!slot) {
        if (!room()) return false;
        slot = this.startScan(dir.path, dir.key, dev);
      }
      if (nested) for (const sub of slot.subdirs ?? []) if (!visit(sub, dev)) return false;
      return true;
    };
    for (let f = this.frames.length - 1; f >= 0; f--) {
      const frame = this.frames[f]!;
      for (let i = frame.entered; i < frame.paths.length; i++) if (!visit(frame.paths[i]!, frame.dev)) return;
    }
  }

  private startScan(path: Buffer, key: string, dev: bigint): ListingSlot {
    const slot: ListingSlot = { p: this.scan(path), entries: 0, bytes: 0, subdirs: null };
    this.scansRunning++;
    slot.p.then(
      (l) => {
        if (this.listings.get(key) !== slot) return;
        slot.entries = l.length;
        const subdirs: ScannedEntry[] = [];
        for (const e of l) {
          if ('error' in e) continue;
          if (e.contents) slot.bytes += e.contents.byteLength;
          if (fileType(e.st.mode) === S_IFDIR && e.st.dev === dev) subdirs.push(e);
        }
        slot.subdirs = subdirs.sort((a, b) => Buffer.compare(a.name, b.name)).map((e) => dirRef(fsPath(path, e.name)));
        this.listedEntries += slot.entries;
        this.listedBytes += slot.bytes;
      },
      () => undefined,
    ).finally(() => {
      this.scansRunning--;
      this.prefetchListings();
    });
    this.listings.set(key, slot);
    return slot;
  }

  private async readExcludeFile(dir: Buffer, rel: Uint8Array): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(fsPath(dir, Buffer.from(EXCLUDE_FILE)), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') this.warn(`cannot read ${show(relJoin(rel, Buffer.from(EXCLUDE_FILE)))}: ${(e as Error).message}`);
      return;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return;
      if (st.size > MAX_EXCLUDE_FILE) {
        this.warn(`ignoring ${show(relJoin(rel, Buffer.from(EXCLUDE_FILE)))}: larger than ${MAX_EXCLUDE_FILE} bytes`);
        return;
      }
      const content = await fh.readFile();
      const where = show(relJoin(rel, Buffer.from(EXCLUDE_FILE)));
      this.patterns.push(...parseExcludeFile(content, rel, (e) => this.warn(`${where}: ${e.message}`)));
    } catch (e) {
      this.warn(`ignoring ${show(relJoin(rel, Buffer.from(EXCLUDE_FILE)))} after a read error: ${(e as Error).message}`);
    } finally {
      await fh.close();
    }
  }

  private async entry(dir: Buffer, parentRel: Uint8Array, c: Child, prefetched?: Promise<Uint8Array | null>): Promise<void> {
    const full = fsPath(dir, c.name);
    const rel = relJoin(parentRel, c.name);
    this.opts.onEntry?.(rel);
    let meta: Metadata;
    try {
      meta = readMetadata(c, show(rel));
    } catch (e) {
      this.warn((e as Error).message);
      return;
    }
    const enc = this.encoder;
    const cat = this.opts.catalog;
    const type = fileType(meta.stat.mode);
    switch (type) {
      case S_IFREG:
        await this.file(full, rel, c, meta, prefetched);
        return;
      case S_IFDIR:
        await this.directory(full, rel, c, meta);
        return;
      case S_IFLNK: {
        let target: Buffer;
        try {
          target = c.linkTarget ?? (await readlink(full, { encoding: 'buffer' }));
        } catch (e) {
          this.warn(errnoOf(e) === 'ENOENT' ? `file vanished while reading: ${show(rel)}` : `cannot read symlink ${show(rel)}: ${(e as Error).message}`);
          return;
        }
        cat?.addSymlink(c.name);
        await enc.addSymlink(meta, c.name, target);
        break;
      }
      case S_IFBLK:
      case S_IFCHR:
        if (type === S_IFBLK) cat?.addBlockDevice(c.name);
        else cat?.addCharDevice(c.name);
        await enc.addDevice(meta, c.name, deviceFromDevT(c.st.rdev));
        break;
      case S_IFIFO:
        cat?.addFifo(c.name);
        await enc.addFifo(meta, c.name);
        break;
      case S_IFSOCK:
        cat?.addSocket(c.name);
        await enc.addSocket(meta, c.name);
        break;
      default:
        this.warn(`skipping ${show(rel)}: unknown file type 0o${type.toString(8)}`);
        return;
    }
    this.stats.entries++;
  }

  private async file(full: Buffer, rel: Uint8Array, c: Child, meta: Metadata, prefetched?: Promise<Uint8Array | null>): Promise<void> {
    const enc = this.encoder;
    const cat = this.opts.catalog;
    const linkKey = c.st.nlink > 1 ? `${c.st.dev}:${c.st.ino}` : null;
    const first = linkKey === null ? undefined : this.hardlinks.get(linkKey);
    if (first) {
      cat?.addHardlink(c.name);
      await enc.addHardlink(c.name, first.path, first.offset);
      this.stats.entries++;
      return;
    }
    const size = c.st.size;
    let offset: number;
    const previous = enc.isSplit && this.opts.lookupPrevious ? await this.opts.lookupPrevious(rel, meta, size, enc) : undefined;
    if (previous) {
      cat?.addFile(c.name, size, meta.stat.mtime.secs);
      offset = await enc.addPayloadRef(meta, c.name, size, previous.payloadOffset);
      this.stats.reused++;
    } else if (c.contents || (prefetched && (await prefetched)?.length === size)) {
      // Read whole ahead of time, with exactly the size lstat reported: no shrink/grow handling needed.
      const contents = c.contents ?? (await prefetched)!;
      c.contents = undefined; // the listing may outlive this file
      if (enc.isSplit) await this.opts.flushReused?.(enc);
      cat?.addFile(c.name, size, meta.stat.mtime.secs);
      offset = await enc.addFile(meta, c.name, size, [contents]);
      this.stats.fileBytes += size;
    } else {
      const fh = await this.openFile(full, rel);
      if (!fh) return;
      if (enc.isSplit) await this.opts.flushReused?.(enc);
      cat?.addFile(c.name, size, meta.stat.mtime.secs);
      try {
        offset = await enc.addFile(meta, c.name, size, this.contents(fh, size, rel));
      } finally {
        await fh.close().catch(() => undefined);
      }
      this.stats.fileBytes += size;
    }
    if (linkKey !== null) this.hardlinks.set(linkKey, { path: rel, offset });
    this.stats.entries++;
  }

  private async openFile(full: Buffer, rel: Uint8Array): Promise<FileHandle | null> {
    const flags = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
    try {
      try {
        return await open(full, flags | C.O_NOATIME);
      } catch (e) {
        if (errnoOf(e) !== 'EPERM') throw e; // O_NOATIME needs ownership
        return await open(full, flags);
      }
    } catch (e) {
      this.warn(errnoOf(e) === 'ENOENT' ? `file vanished while reading: ${show(rel)}` : `cannot open ${show(rel)}: ${(e as Error).message}`);
      return null;
    }
  }

  /** Exactly `size` bytes: a file that shrank is padded with zeros, one that grew is cut (as the PBS client does). */
  private async *contents(fh: FileHandle, size: number, rel: Uint8Array): AsyncGenerator<Uint8Array> {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, left));
      let n: number;
      try {
        n = (await fh.read(buf, 0, buf.length, null)).bytesRead;
      } catch (e) {
        this.warn(`read error in ${show(rel)}, rest padded with zeros: ${(e as Error).message}`);
        n = 0;
      }
      if (n === 0) {
        this.warn(`file shrank while reading: ${show(rel)}, padded with zeros`);
        while (left > 0) {
          const z = Buffer.alloc(Math.min(READ_SIZE, left));
          left -= z.length;
          yield z;
        }
        return;
      }
      left -= n;
      yield buf.subarray(0, n);
    }
    const probe = Buffer.alloc(1);
    const more = await fh.read(probe, 0, 1, null).then((r) => r.bytesRead, () => 0);
    if (more > 0) this.warn(`file grew while reading: ${show(rel)}, truncated to ${size} bytes`);
  }

  private async directory(full: Buffer, rel: Uint8Array, c: Child, meta: Metadata): Promise<void> {
    const enc = this.encoder;
    const cat = this.opts.catalog;
    await enc.createDirectory(c.name, meta);
    cat?.startDirectory(c.name);
    const outerDev = this.currentDev;
    let skip = false;
    if (c.st.dev !== outerDev) {
      const fsType = await statfs(full).then((s) => s.type, () => 0);
      if (VIRTUAL_FS.has(fsType)) skip = true;
      else if (this.devices && !this.devices.has(c.st.dev)) skip = true;
      if (skip) this.warn(`skipping mount point: ${show(rel)}`);
    }
    const parentFrame = this.frames[this.frames.length - 1];
    if (parentFrame) parentFrame.entered++;
    if (!skip) {
      this.currentDev = c.st.dev;
      try {
        await this.dirContents(full, rel, false, null);
      } finally {
        this.currentDev = outerDev;
      }
    }
    await enc.finishDirectory();
    await cat?.endDirectory();
    this.stats.entries++;
  }

  /** v1: the CLI patterns as the last root entry (spec §8.5). */
  private async cliFile(text: Uint8Array): Promise<void> {
    const meta = emptyMetadata();
    meta.stat.mode = S_IFREG | 0o600;
    meta.stat.uid = process.getuid?.() ?? 0;
    meta.stat.gid = process.getgid?.() ?? 0;
    this.opts.catalog?.addFile(CLI_NAME, text.length, 0);
    await this.encoder.addFile(meta, CLI_NAME, text.length, [text]);
    this.stats.entries++;
  }
}

function show(rel: Uint8Array): string {
  return `/${nameToDisplay(rel)}`;
}

/**
 * Archives directory `source` into `sink` (v1), or into `sink` + `opts.payload` (split v2). Returns counts; warnings
 * go to `opts.onWarning`. Fatal problems (the source itself unreadable, a sink failing) throw PbsError.
 */
export async function createArchive(source: string, sink: ByteSink, opts: ArchiverOptions = {}): Promise<ArchiveStats> {
  const root = Buffer.from(source.length > 1 ? source.replace(/\/+$/, '') : source);
  let rootEntry: ScannedEntry;
  try {
    rootEntry = scanPath(root);
  } catch (e) {
    throw new PbsError(errnoOf(e) === 'ENOENT' ? 'ENOENT' : 'EIO', `cannot read source directory: ${(e as Error).message}`, { path: source, cause: e });
  }
  const st = rootEntry.st;
  if (fileType(st.mode) !== S_IFDIR) throw new PbsError('EINVAL', 'source is not a directory', { path: source });
  if (VIRTUAL_FS.has((await statfs(root)).type)) throw new PbsError('EINVAL', 'refusing to archive a virtual file system', { path: source });
  const cliPatterns = (opts.excludes ?? []).map((p) => parsePattern(p));
  let devices: Set<bigint> | null = null;
  if (!opts.allFileSystems) {
    devices = new Set([st.dev]);
    for (const p of opts.includeDev ?? []) {
      try {
        devices.add((await lstat(p, { bigint: true })).dev);
      } catch (e) {
        throw new PbsError('ENOENT', `--include-dev path cannot be read: ${(e as Error).message}`, { path: p, cause: e });
      }
    }
  }
  const rootMeta = readMetadata(rootEntry, '/');
  const cliText = cliPatterns.length > 0 ? excludePatternsText(cliPatterns) : null;
  const prelude = opts.payload && cliText
    ? new TextEncoder().encode(JSON.stringify({ 'exclude-patterns': Buffer.from(cliText).toString('utf8') }))
    : undefined;
  const encoder = await PxarEncoder.create(sink, rootMeta, { payload: opts.payload, prelude });
  const archiver = new Archiver(encoder, opts, cliPatterns, devices, st.dev);
  await archiver.dirContents(root, new Uint8Array(0), true, opts.payload ? null : cliText);
  if (encoder.isSplit) await opts.flushReused?.(encoder);
  await encoder.finish();
  archiver.stats.entries++; // the root
  return archiver.stats;
}
