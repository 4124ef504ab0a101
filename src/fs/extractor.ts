// Restores a decoded pxar archive (spec §8.4) into a directory with all metadata, never writing outside it:
// every path is built from names the decoder validated, below directories this extractor created or checked
// with lstat (so no symlink, from the archive or not, is ever followed), and hardlink targets are resolved the same way.
import { chmodSync, close as fsClose, constants as C, lchownSync, lstatSync, mkdirSync, open as fsOpen, symlinkSync, write as fsWrite } from 'node:fs';
import { link, lstat, mkdir, open, realpath, unlink, type FileHandle } from 'node:fs/promises';
import { PbsError } from '../errors.js';
import type { PxarDecoder } from '../pxar/decoder.js';
import { S_IFDIR, S_IFIFO, S_IFSOCK, deviceToDevT, fileType, type Metadata, type PxarEntry } from '../pxar/format.js';
import { nameToDisplay } from '../pxar/names.js';
import { chattrFromPxarFlags } from './chattr.js';
import { errnoOf } from './errno.js';
import { nativeFs } from './native-fs.js';
import { NewFileBatch } from './new-file-batch.js';
import { matchPatterns, parsePattern, pathKey, type PathPattern } from './patterns.js';
import { XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, accessAclXattr, defaultAclXattr } from './posix-acl.js';

export interface ExtractOptions {
  /** Selection globs relative to the archive root (`!` deselects); none = everything. */
  patterns?: readonly string[];
  /** Replace existing non-directories instead of failing. Existing directories are always merged into. */
  overwrite?: boolean;
  /** Metadata that could not be applied, links that could not be made, and similar non-fatal problems. */
  onWarning?: (message: string) => void;
  onEntry?: (entry: PxarEntry) => void;
}

export interface ExtractStats {
  entries: number;
  fileBytes: number;
  warnings: number;
}

interface OpenDir {
  /** Archive path as the decoder reports it (`/` for the root). */
  path: Uint8Array;
  name: Uint8Array;
  meta: Metadata;
  selected: boolean;
  /** Filesystem path once created (or checked). */
  real: Buffer | null;
  /** Made by this restore: nothing can be in the way of its entries. */
  fresh: boolean;
  /** Entries created in it get the restoring user's group (no set-group-ID bit on it). */
  plainGroup: boolean;
  /** Made by this restore inside a plainGroup directory: owned by the restoring user and group. */
  ownedByUs: boolean;
}

/**
 * Small files are written concurrently, so the restore is not one file system round trip after another. Quick calls
 * (mkdir, symlink, chown, chmod) are made synchronously: a thread-pool round trip costs the JS thread more than the
 * call (each hand-off wakes another CPU).
 */
const SMALL_FILE = 1024 * 1024;
const MAX_IN_FLIGHT = 16;

/** A batch of small files is written once it holds this many files or bytes. */
const BATCH_FILES = 64;
const BATCH_BYTES = 512 * 1024;
/** Finished batches kept for reuse (each holds BATCH_BYTES + SMALL_FILE of buffer). */
const SPARE_BATCHES = 4;

const SPARSE_BLOCK = 64 * 1024;
const S_ISGID = 0o2000;
const ZERO = Buffer.alloc(SPARSE_BLOCK);
const FCAPS_NAME = 'security.capability';

function join(dir: Buffer, name: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(dir.length + 1 + name.length);
  out.set(dir, 0);
  out[dir.length] = 0x2f;
  out.set(name, dir.length + 1);
  return out;
}

function parentOf(path: Uint8Array): Uint8Array {
  let i = path.length - 1;
  while (i > 0 && path[i] !== 0x2f) i--;
  return path.subarray(0, Math.max(i, 1));
}

function baseName(path: Uint8Array): Uint8Array {
  return path.subarray(path.lastIndexOf(0x2f) + 1);
}

function samePath(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

class Extractor {
  readonly stats: ExtractStats = { entries: 0, fileBytes: 0, warnings: 0 };
  private readonly dirs: OpenDir[] = [];
  private readonly patterns: PathPattern[];
  /** Failure kinds already reported, so a non-root restore does not print one line per file. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly root: Buffer,
    /** The target has no set-group-ID bit: what is created in it gets the restoring user's group. */
    private readonly rootPlainGroup: boolean,
    private readonly opts: ExtractOptions,
  ) {
    this.patterns = (opts.patterns ?? []).map((p) => parsePattern(p, '', 'include'));
  }

  private warn(message: string): void {
    this.stats.warnings++;
    this.opts.onWarning?.(message);
  }

  /** Reports a metadata failure; repeated failures of the same kind and errno are counted but reported once. */
  private metaFailed(what: string, path: string, e: unknown): void {
    const key = `${what}:${errnoOf(e) ?? 'error'}`;
    if (this.reported.has(key)) {
      this.stats.warnings++;
      return;
    }
    this.reported.add(key);
    this.warn(`cannot ${what} of ${path}: ${(e as Error).message} (further such errors are not reported)`);
  }

  async run(decoder: PxarDecoder): Promise<void> {
    for (let e = await decoder.next(); e !== null; e = await decoder.next()) {
      this.opts.onEntry?.(e);
      if (e.filenameOffset === null) {
        this.dirs.push({
          path: e.path, name: new Uint8Array(0), meta: e.metadata, selected: this.patterns.length === 0, real: this.root, fresh: false,
          plainGroup: this.rootPlainGroup, ownedByUs: false,
        });
        continue;
      }
      const parentPath = parentOf(e.path);
      while (this.dirs.length > 1 && !samePath(this.dirs[this.dirs.length - 1]!.path, parentPath)) await this.closeDir();
      const parent = this.dirs[this.dirs.length - 1];
      if (!parent || !samePath(parent.path, parentPath)) {
        throw new PbsError('ECORRUPT', `entry ${nameToDisplay(e.path)} is outside its directory`, { offset: e.filenameOffset });
      }
      const m = this.patterns.length === 0 ? null : matchPatterns(this.patterns, pathKey(e.path.subarray(1)), e.kind === 'dir');
      const selected = m === null ? parent.selected : m === 'include';
      const name = baseName(e.path);
      if (e.kind === 'dir') {
        this.dirs.push({ path: e.path, name, meta: e.metadata, selected, real: null, fresh: false, plainGroup: false, ownedByUs: false });
        if (selected) await this.ensureDir(this.dirs.length - 1);
        continue;
      }
      if (!selected) continue;
      const top = this.dirs[this.dirs.length - 1]!;
      const dir = top.real ?? (await this.ensureDir(this.dirs.length - 1));
      await this.entry(decoder, e, join(dir, name), top);
    }
    while (this.dirs.length > 0) await this.closeDir();
    await this.drain();
    // Directory metadata last, children before parents: their times would move otherwise, and a
    // read-only mode must not stop children from being created.
    for (const d of this.closed) this.applyMetadata(d.real!, d.meta, false, { ownerSet: d.ownedByUs && this.isOurs(d.meta) });
  }

  /** Files being written in the background (small ones, whose contents are already in memory). */
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private readonly closed: OpenDir[] = [];

  private async spawn(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    const p: Promise<void> = task().catch((e: unknown) => {
      this.failure ??= e;
    }).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
  }

  private async drain(): Promise<void> {
    await this.flushBatch();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Creates (or checks) directory `i` of the stack and its ancestors; returns its path. */
  private async ensureDir(i: number): Promise<Buffer> {
    const d = this.dirs[i]!;
    if (d.real) return d.real;
    const parent = this.dirs[i - 1]!;
    const path = join(parent.real ?? (await this.ensureDir(i - 1)), d.name);
    // Inside a directory this restore made nothing is in the way (unless the archive names an entry twice).
    if (!(parent.fresh && mkdirFresh(path))) {
      const existing = await lstat(path).catch(() => null);
      if (existing?.isDirectory()) {
        d.real = path;
        d.plainGroup = (existing.mode & S_ISGID) === 0;
        return path;
      }
      if (existing) await this.clear(path, false);
      mkdirSync(path, 0o700);
    }
    d.real = path;
    d.fresh = true;
    // A new directory takes the group (and set-group-ID bit) of a set-group-ID parent.
    d.plainGroup = parent.plainGroup;
    d.ownedByUs = parent.plainGroup;
    return path;
  }

  /** Makes room for a new entry at `path`: fails unless --overwrite, never removes a directory. */
  private async clear(path: Buffer, mustExist: boolean): Promise<void> {
    const shown = path.toString();
    if (!this.opts.overwrite) throw new PbsError('EEXIST', 'file already exists (use --overwrite to replace it)', { path: shown });
    const st = await lstat(path).catch(() => null);
    if (st === null) {
      if (mustExist) throw new PbsError('ENOENT', 'vanished during restore', { path: shown });
      return;
    }
    if (st.isDirectory()) throw new PbsError('EEXIST', 'a directory is in the way of a non-directory', { path: shown });
    await unlink(path);
  }

  private async closeDir(): Promise<void> {
    const d = this.dirs.pop()!;
    if (d.real) this.closed.push(d);
    this.stats.entries += d.real ? 1 : 0;
  }

  private async entry(decoder: PxarDecoder, e: PxarEntry, path: Buffer, parent: OpenDir): Promise<void> {
    const shown = (): string => nameToDisplay(e.path); // for messages only
    if (!parent.fresh && (await lstat(path).then(() => true, () => false))) await this.clear(path, true);
    // What this restore creates belongs to the restoring user: chown is only needed for other owners.
    const ownerSet = parent.plainGroup && this.isOurs(e.metadata);
    const fsx = nativeFs();
    const mode = e.metadata.stat.mode;
    switch (e.kind) {
      case 'file':
        if ((e.size ?? 0) <= SMALL_FILE) await this.smallFile(decoder, e, path, ownerSet);
        else await this.writeFile(decoder, e, path);
        break;
      case 'symlink':
        symlinkSync(Buffer.from(e.linkTarget!), path);
        this.applyMetadata(path, e.metadata, true, { ownerSet });
        break;
      case 'hardlink': {
        await this.drain(); // the target may still be on its way to the disk
        const target = await this.resolveLinkTarget(e.linkTarget!);
        if (target === null) {
          this.warn(`hardlink ${shown()}: target /${nameToDisplay(e.linkTarget!)} was not restored as a regular file, skipped`);
          return;
        }
        try {
          await link(target, path);
        } catch (err) {
          this.warn(`cannot create hardlink ${shown()}: ${(err as Error).message}`);
          return;
        }
        break;
      }
      case 'device':
      case 'fifo':
      case 'socket': {
        const type = e.kind === 'fifo' ? S_IFIFO : e.kind === 'socket' ? S_IFSOCK : fileType(mode);
        const dev = e.kind === 'device' ? deviceToDevT(e.device!) : 0n;
        try {
          fsx.mknod(path, type | 0o600, dev);
        } catch (err) {
          this.warn(`cannot create ${e.kind} ${shown()}: ${(err as Error).message}`);
          return;
        }
        this.applyMetadata(path, e.metadata, false, { ownerSet });
        break;
      }
      default:
        throw new PbsError('ECORRUPT', `cannot restore entry kind ${e.kind}`, { path: shown() });
    }
    this.stats.entries++;
  }

  /** Batches whose job has finished, for reuse: their buffers are large. */
  private readonly spareBatches: NewFileBatch[] = [];
  /** Small plain files waiting to be written together (see NewFileBatch). */
  private batch = this.newBatch();

  private newBatch(): NewFileBatch {
    return this.spareBatches.pop() ?? new NewFileBatch(BATCH_BYTES + SMALL_FILE, BATCH_FILES);
  }

  private async flushBatch(): Promise<void> {
    const b = this.batch;
    if (b.count === 0) return;
    this.batch = this.newBatch();
    await this.spawn(async () => {
      const warnings = await b.write();
      this.stats.fileBytes += b.bytes;
      warnings.forEach((w, i) => {
        if (!w) return;
        const shown = b.path(i);
        if (w.owner) this.metaFailed('set ownership', shown, w.owner);
        if (w.mode) this.metaFailed('set the mode', shown, w.mode);
        if (w.times) this.metaFailed('set times', shown, w.times);
      });
      b.reset();
      if (this.spareBatches.length < SPARE_BATCHES) this.spareBatches.push(b);
    });
  }

  /**
   * A file of at most SMALL_FILE bytes. Plain files get their final mode at creation (umask is 0 during a restore)
   * and keep the restoring user as owner when that is the archived owner: two system calls fewer per file. The
   * common case (no xattrs, ACLs, fcaps, flags or project id, no zero block to leave as a hole) goes into a batch.
   */
  private async smallFile(decoder: PxarDecoder, e: PxarEntry, path: Buffer, ownerSet: boolean): Promise<void> {
    const meta = e.metadata;
    const st = meta.stat;
    const noAcl = accessAclXattr(meta.acl, st.mode, '') === null;
    const plainMode = (st.mode & 0o7000) === 0 && noAcl;
    const mode = plainMode ? st.mode & 0o777 : 0o600;
    const size = e.size ?? 0;
    let data: Uint8Array;
    if (noAcl && meta.xattrs.length === 0 && meta.fcaps === null && meta.quotaProjectId === null && st.flags === 0) {
      const b = this.batch;
      const view = b.reserve(size);
      let got = 0;
      for await (const piece of decoder.contents()) {
        view.set(piece, got);
        got += piece.byteLength;
      }
      if (!hasZeroBlock(view)) {
        b.add(path, size, { mode, uid: ownerSet ? -1 : st.uid, gid: ownerSet ? -1 : st.gid, chmodMode: plainMode ? -1 : st.mode & 0o7777, mtime: st.mtime });
        if (b.count >= BATCH_FILES || b.bytes >= BATCH_BYTES) await this.flushBatch();
        return;
      }
      data = Uint8Array.prototype.slice.call(view);
      b.drop();
    } else {
      // Copied: the pieces are views of the archive's chunks, which the file must not keep alive.
      const parts: Uint8Array[] = [];
      for await (const piece of decoder.contents()) parts.push(Uint8Array.prototype.slice.call(piece));
      data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    }
    await this.spawn(async () => {
      if (hasZeroBlock(data)) {
        const fh: FileHandle = await open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
        try {
          await this.writeSparse(fh, [data], 0);
        } finally {
          await fh.close();
        }
      } else {
        await writeNewFile(path, data, mode);
        this.stats.fileBytes += data.byteLength;
      }
      this.applyMetadata(path, meta, false, { ownerSet, modeSet: plainMode });
    });
  }

  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;

  /** The archived owner is the restoring user and group. */
  private isOurs(meta: Metadata): boolean {
    return meta.stat.uid === this.euid && meta.stat.gid === this.egid;
  }

  /** Writes pieces from `pos` on, leaving holes where whole blocks are zero; returns the end position. */
  private async writeSparse(fh: FileHandle, pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, pos: number): Promise<number> {
    let endsInHole = false;
    for await (const piece of pieces) {
      const buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      let runStart = -1;
      for (let at = 0; at < buf.length; at += SPARSE_BLOCK) {
        const block = buf.subarray(at, at + SPARSE_BLOCK);
        const zero = block.equals(ZERO.subarray(0, block.length));
        if (!zero && runStart < 0) runStart = at;
        if (zero && runStart >= 0) {
          await writeAll(fh, buf.subarray(runStart, at), pos + runStart);
          runStart = -1;
        }
      }
      if (runStart >= 0) await writeAll(fh, buf.subarray(runStart), pos + runStart);
      pos += buf.length;
      endsInHole = runStart < 0;
    }
    if (endsInHole) await fh.truncate(pos); // a trailing hole needs the size set explicitly
    this.stats.fileBytes += pos;
    return pos;
  }

  /** Writes the contents, leaving holes where whole blocks are zero, then applies the metadata. */
  private async writeFile(decoder: PxarDecoder, e: PxarEntry, path: Buffer): Promise<void> {
    const fh: FileHandle = await open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      await this.writeSparse(fh, decoder.contents(), 0);
    } finally {
      await fh.close();
    }
    this.applyMetadata(path, e.metadata, false);
  }

  /** The restored regular file at archive path `target`, reached without following any symlink; null if none. */
  private async resolveLinkTarget(target: Uint8Array): Promise<Buffer | null> {
    let path = this.root;
    const parts = Buffer.from(target).toString('latin1').split('/');
    for (let i = 0; i < parts.length; i++) {
      path = join(path, Buffer.from(parts[i]!, 'latin1'));
      const st = await lstat(path).catch(() => null);
      if (st === null) return null;
      if (i < parts.length - 1 ? !st.isDirectory() : !st.isFile()) return null;
    }
    return path;
  }

  /**
   * Owner, xattrs, fcaps, ACLs, mode, project id, times, then chattr flags (last: immutable/append would block the rest).
   * Ownership comes first because chown clears set-id bits and capabilities.
   */
  private applyMetadata(path: Buffer, meta: Metadata, isSymlink: boolean, done: { ownerSet?: boolean; modeSet?: boolean } = {}): void {
    const fsx = nativeFs();
    const shown = path.toString();
    const st = meta.stat;
    if (!done.ownerSet) {
      try {
        lchownSync(path, st.uid, st.gid);
      } catch (e) {
        this.metaFailed('set ownership', shown, e);
      }
    }
    if (!isSymlink) {
      for (const x of meta.xattrs) {
        try {
          fsx.lsetxattr(path, x.name, x.value);
        } catch (e) {
          this.metaFailed('set extended attributes', shown, e);
        }
      }
      const acls: [string, Uint8Array | null][] = [
        [XATTR_ACL_ACCESS, accessAclXattr(meta.acl, st.mode, shown)],
        [XATTR_ACL_DEFAULT, fileType(st.mode) === S_IFDIR ? defaultAclXattr(meta.acl, shown) : null],
      ];
      for (const [name, value] of acls) {
        if (value === null) continue;
        try {
          fsx.lsetxattr(path, name, value);
        } catch (e) {
          this.metaFailed('set ACLs', shown, e);
        }
      }
      if (!done.modeSet) {
        try {
          chmodSync(path, st.mode & 0o7777);
        } catch (e) {
          this.metaFailed('set the mode', shown, e);
        }
      }
      if (meta.fcaps !== null) {
        try {
          fsx.lsetxattr(path, FCAPS_NAME, meta.fcaps);
        } catch (e) {
          this.metaFailed('set file capabilities', shown, e);
        }
      }
      if (meta.quotaProjectId !== null) {
        try {
          if (!fsx.setProjid(path, meta.quotaProjectId)) this.metaFailed('set the quota project id', shown, new Error('not supported by this filesystem'));
        } catch (e) {
          this.metaFailed('set the quota project id', shown, e);
        }
      }
    }
    try {
      fsx.utimensat(path, st.mtime.secs, st.mtime.nanos, st.mtime.secs, st.mtime.nanos, true);
    } catch (e) {
      this.metaFailed('set times', shown, e);
    }
    if (!isSymlink && st.flags !== 0) this.applyFlags(path, st.flags, shown);
  }

  private applyFlags(path: Buffer, flags: number, shown: string): void {
    const fsx = nativeFs();
    const { value, mask } = chattrFromPxarFlags(flags, fsx.FS_FL);
    if (value === 0) return;
    try {
      const current = fsx.getFlags(path);
      const ok = current !== null && fsx.setFlags(path, ((current & ~mask) | value) >>> 0);
      if (!ok) this.metaFailed('set chattr flags', shown, new Error('not supported by this filesystem'));
    } catch (e) {
      this.metaFailed('set chattr flags', shown, e);
    }
  }
}

/** Creates a directory inside a fresh one; false when the name exists already (an archive naming an entry twice). */
function mkdirFresh(path: Buffer): boolean {
  try {
    mkdirSync(path, 0o700);
    return true;
  } catch (e) {
    if (errnoOf(e) !== 'EEXIST') throw e;
    return false;
  }
}

function hasZeroBlock(data: Uint8Array): boolean {
  for (let at = 0; at + SPARSE_BLOCK <= data.byteLength; at += SPARSE_BLOCK) {
    if (Buffer.compare(data.subarray(at, at + SPARSE_BLOCK), ZERO) === 0) return true;
  }
  return false;
}

/** Creates `path` (exclusively, not through a symlink) with `data`: open, one write, close, via the callback API. */
function writeNewFile(path: Buffer, data: Uint8Array, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsOpen(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode, (err, fd) => {
      if (err) return reject(err);
      const finish = (e: Error | null): void => fsClose(fd, (e2) => (e ?? e2 ? reject(e ?? e2) : resolve()));
      const writeFrom = (done: number): void => {
        if (done >= data.byteLength) return finish(null);
        fsWrite(fd, data, done, data.byteLength - done, done, (e, n) => (e ? finish(e) : writeFrom(done + n)));
      };
      writeFrom(0);
    });
  });
}

async function writeAll(fh: FileHandle, b: Buffer, position: number): Promise<void> {
  for (let done = 0; done < b.length; ) {
    const { bytesWritten } = await fh.write(b, done, b.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Extracts every entry `decoder` yields into directory `target` (created if missing; its own metadata is set from
 * the archive root). Existing non-directories fail with EEXIST unless `overwrite`.
 */
export async function extractArchive(decoder: PxarDecoder, target: string, opts: ExtractOptions = {}): Promise<ExtractStats> {
  try {
    await mkdir(target, { recursive: true });
  } catch (e) {
    throw new PbsError('EIO', `cannot create target directory: ${(e as Error).message}`, { path: target, cause: e });
  }
  const root = Buffer.from(await realpath(target));
  const x = new Extractor(root, (lstatSync(root).mode & S_ISGID) === 0, opts);
  // Modes given at creation must not be masked (files that need it are chmod-ed anyway).
  const umask = process.umask(0);
  try {
    await x.run(decoder);
  } finally {
    process.umask(umask);
  }
  return x.stats;
}
