// One finished snapshot as a directory: `NAME.img` (fixed index), `NAME.pxar/` (v1 or mpxar+ppxar pair),
// other dynamic indexes as plain files, decoded blobs under their plain names, facts as `user.pbsfs.*` xattrs.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkIndexAgainstManifest } from '../src/backup/restore.js';
import { loadManifest } from '../src/backup/manifest-io.js';
import { MANIFEST_BLOB_NAME } from '../src/datastore/datastore.js';
import { describeSnapshot } from '../src/datastore/names.js';
import { PbsError, withPath } from '../src/errors.js';
import { decodeBlob } from '../src/format/blob.js';
import type { CryptConfig } from '../src/format/crypt-config.js';
import { type BackupManifest, type ManifestFile, verifyManifest } from '../src/format/manifest.js';
import { IndexReadAt } from '../src/io/index-read-at.js';
import { openIndex } from '../src/io/index-reader.js';
import { digestToHex, type SnapshotRef } from '../src/types.js';
import { IMMUTABLE, LIVE_TTL_MS, type MountNode, type NodeStat, S_IFDIR, S_IFREG } from './node.js';
import { PxarArchive } from './pxar-tree.js';
import type { MountContext, OpenStore } from './stores.js';

const enc = new TextEncoder();

interface Snapshot {
  ctx: MountContext;
  store: OpenStore;
  ref: SnapshotRef;
  dir: string;
  manifest: BackupManifest;
  /** The mount's key when it is the key this snapshot was made with. */
  crypt?: CryptConfig;
}

function fileStat(s: Snapshot, key: string, size: number): NodeStat {
  return { mode: S_IFREG | 0o444, uid: 0, gid: 0, size, nlink: 1, ino: s.ctx.inodes.get(key), rdev: 0, mtime: { secs: s.ref.time, nanos: 0 } };
}

/** Fails with EACCES (and a log line) when an archive is encrypted and the mount has no matching key. */
function checkKey(s: Snapshot, file: ManifestFile, path: string): void {
  if (file['crypt-mode'] !== 'encrypt' || s.crypt) return;
  const fp = s.manifest.unprotected['key-fingerprint'];
  const why = s.ctx.crypt ? `it was made with key ${String(fp ?? 'unknown')}, the mount has ${s.ctx.crypt.fingerprintText()}` : 'mount with --keyfile';
  const err = new PbsError('EACCES', `archive ${file.filename} of ${describeSnapshot(s.ref)} is encrypted: ${why}`, { path });
  s.ctx.log.error(err.message);
  throw err;
}

/** Opens an index once, checked against the manifest, reading through the store's chunk reader. */
async function openIndexed(s: Snapshot, file: ManifestFile): Promise<IndexReadAt> {
  const path = join(s.dir, file.filename);
  checkKey(s, file, path);
  const index = await openIndex(path);
  checkIndexAgainstManifest(index, file, s.ctx.codec, path);
  return new IndexReadAt(index, s.store.chunks, { path, readAhead: s.ctx.readAhead, readAheadBytes: s.ctx.cacheBytes / 2, budget: s.ctx.budget });
}

class IndexFileNode implements MountNode {
  readonly ttlMs = IMMUTABLE;
  private opened?: Promise<IndexReadAt>;
  constructor(
    private readonly s: Snapshot,
    private readonly file: ManifestFile,
  ) {}
  async stat(): Promise<NodeStat> {
    return fileStat(this.s, join(this.s.dir, this.file.filename), this.file.size);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.opened ??= openIndexed(this.s, this.file);
    this.opened.catch(() => (this.opened = undefined));
    const r = await this.opened;
    const n = Math.max(0, Math.min(length, r.size - offset));
    // The FUSE layer replies with the bytes as soon as they are here (fuse-ops READ), so they need not outlive this turn.
    return n === 0 ? new Uint8Array(0) : r.readTransient(offset, n);
  }
}

/** A blob shown decoded; manifest-listed blobs are checked against their size and csum first. */
class BlobFileNode implements MountNode {
  readonly ttlMs = IMMUTABLE;
  private data?: Promise<Uint8Array>;
  constructor(
    private readonly s: Snapshot,
    private readonly fileName: string,
    private readonly file: ManifestFile | undefined,
  ) {}
  private decoded(): Promise<Uint8Array> {
    this.data ??= (async () => {
      const path = join(this.s.dir, this.fileName);
      if (this.file) checkKey(this.s, this.file, path);
      const raw = new Uint8Array(await readFile(path).catch((e) => Promise.reject(withPath(e, path))));
      if (this.file && (raw.byteLength !== this.file.size || digestToHex(this.s.ctx.codec.sha256(raw)) !== this.file.csum)) {
        throw new PbsError('ECORRUPT', 'blob does not match the manifest', { path });
      }
      return decodeBlob(this.s.ctx.codec, raw, { cryptKey: this.s.crypt?.key, path });
    })();
    this.data.catch(() => (this.data = undefined));
    return this.data;
  }
  async stat(): Promise<NodeStat> {
    return fileStat(this.s, join(this.s.dir, this.fileName), (await this.decoded()).byteLength);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return (await this.decoded()).subarray(offset, offset + length);
  }
}

/** `NAME.pxar/`: the archive's root directory, opened on first use. */
class PxarRootNode implements MountNode {
  readonly ttlMs = IMMUTABLE;
  private root?: Promise<MountNode>;
  constructor(
    private readonly s: Snapshot,
    private readonly meta: ManifestFile,
    private readonly payload: ManifestFile | undefined,
  ) {}
  private open(): Promise<MountNode> {
    this.root ??= (async () => {
      const [m, p] = await Promise.all([openIndexed(this.s, this.meta), this.payload ? openIndexed(this.s, this.payload) : undefined]);
      const archive = await PxarArchive.open(m, p, this.s.ctx.inodes);
      return archive.root();
    })();
    this.root.catch(() => (this.root = undefined));
    return this.root;
  }
  async stat(): Promise<NodeStat> {
    return (await this.open()).stat();
  }
  async readdir(): Promise<Array<[string, MountNode]>> {
    return (await this.open()).readdir!();
  }
  async lookup(name: string): Promise<MountNode | null> {
    return (await this.open()).lookup!(name);
  }
  async xattrs(): Promise<ReadonlyMap<string, Uint8Array>> {
    return (await this.open()).xattrs!();
  }
}

export class SnapshotDirNode implements MountNode {
  /** Re-checked like the group listing, so a forgotten snapshot disappears; its contents stay cached. */
  readonly ttlMs = LIVE_TTL_MS;
  private loaded?: Promise<{ s: Snapshot; children: Map<string, MountNode> }>;

  constructor(
    private readonly ctx: MountContext,
    private readonly store: OpenStore,
    readonly ref: SnapshotRef,
  ) {}

  private load(): Promise<{ s: Snapshot; children: Map<string, MountNode> }> {
    this.loaded ??= (async () => {
      const { ds } = this.store;
      const dir = ds.snapshotPath(this.ref);
      const manifest = await loadManifest(ds, this.ref, { codec: this.ctx.codec });
      const fp = manifest.unprotected['key-fingerprint'];
      const crypt = this.ctx.crypt && fp === this.ctx.crypt.fingerprintText() ? this.ctx.crypt : undefined;
      if (crypt) verifyManifest(manifest, crypt, join(dir, MANIFEST_BLOB_NAME));
      const s: Snapshot = { ctx: this.ctx, store: this.store, ref: this.ref, dir, manifest, crypt };
      return { s, children: snapshotChildren(s, await readdir(dir).catch((e) => Promise.reject(withPath(e, dir)))) };
    })();
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }

  async stat(): Promise<NodeStat> {
    const dir = this.store.ds.snapshotPath(this.ref);
    return { mode: S_IFDIR | 0o555, uid: 0, gid: 0, size: 0, nlink: 2, ino: this.ctx.inodes.get(dir), rdev: 0, mtime: { secs: this.ref.time, nanos: 0 } };
  }

  async readdir(): Promise<Array<[string, MountNode]>> {
    return [...(await this.load()).children];
  }

  async lookup(name: string): Promise<MountNode | null> {
    return (await this.load()).children.get(name) ?? null;
  }

  async xattrs(): Promise<ReadonlyMap<string, Uint8Array>> {
    const { s } = await this.load();
    const u = s.manifest.unprotected;
    const out = new Map<string, Uint8Array>();
    const isProtected = await this.store.ds.isProtected(this.ref);
    out.set('user.pbsfs.protected', enc.encode(isProtected ? '1' : '0'));
    out.set('user.pbsfs.size', enc.encode(String(s.manifest.files.reduce((n, f) => n + f.size, 0))));
    if (typeof u.notes === 'string') out.set('user.pbsfs.notes', enc.encode(u.notes));
    const verify = u.verify_state as { state?: unknown } | undefined;
    if (verify && typeof verify.state === 'string') out.set('user.pbsfs.verify-state', enc.encode(verify.state));
    if (typeof u['key-fingerprint'] === 'string') out.set('user.pbsfs.fingerprint', enc.encode(u['key-fingerprint']));
    return out;
  }
}

/** Maps stored file names to what the mount shows. */
function snapshotChildren(s: Snapshot, dirFiles: string[]): Map<string, MountNode> {
  const out = new Map<string, MountNode>();
  const byName = new Map(s.manifest.files.map((f) => [f.filename, f]));
  for (const f of s.manifest.files) {
    const name = f.filename;
    if (name.endsWith('.fidx')) out.set(name.slice(0, -5), new IndexFileNode(s, f));
    else if (name.endsWith('.blob')) out.set(name.slice(0, -5), new BlobFileNode(s, name, f));
    else if (name.endsWith('.mpxar.didx')) {
      const stem = name.slice(0, -'.mpxar.didx'.length);
      out.set(`${stem}.pxar`, new PxarRootNode(s, f, byName.get(`${stem}.ppxar.didx`)));
    } else if (name.endsWith('.ppxar.didx')) {
      // shown joined with its .mpxar
    } else if (name.endsWith('.pxar.didx')) out.set(name.slice(0, -5), new PxarRootNode(s, f, undefined));
    else if (name.endsWith('.didx')) out.set(name.slice(0, -5), new IndexFileNode(s, f));
  }
  // The manifest itself, and blobs added after the manifest was written (client.log).
  out.set('index.json', new BlobFileNode(s, MANIFEST_BLOB_NAME, undefined));
  for (const name of dirFiles) {
    if (name.endsWith('.blob') && name !== MANIFEST_BLOB_NAME && !byName.has(name) && !out.has(name.slice(0, -5))) {
      out.set(name.slice(0, -5), new BlobFileNode(s, name, undefined));
    }
  }
  return out;
}

