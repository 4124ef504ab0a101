// Test helper until the pxar backup lands: a real directory (read with lstat, getfattr, getfacl) encoded as a
// pxar archive (v1 or split), cut with the buzhash chunker and stored as a snapshot through SnapshotWriter.
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotWriter } from '../../src/backup/snapshot-writer.js';
import { BuzhashChunker } from '../../src/chunker/buzhash.js';
import { chunkStream } from '../../src/chunker/chunk-stream.js';
import { getCodec } from '../../src/codec/index.js';
import { WorkerPool } from '../../src/codec/worker-pool.js';
import { lookupDatastore } from '../../src/datastore/config.js';
import { Datastore } from '../../src/datastore/datastore.js';
import { ROOT_NAMESPACE } from '../../src/datastore/names.js';
import { ACL_NO_MASK, type Acl, emptyAcl, type Metadata, type Xattr } from '../../src/pxar/format.js';
import { PxarEncoder } from '../../src/pxar/encoder.js';
import type { BackupType } from '../../src/types.js';
import { MemorySink } from '../pxar/tree.js';

const PERM: Record<string, bigint> = { r: 4n, w: 2n, x: 1n };
const perm = (s: string): bigint => [...s].reduce((n, c) => n + (PERM[c] ?? 0n), 0n);

/** pxar's view of an ACL (spec §8.4): user_obj/other live in the mode, GROUP_OBJ only beside a mask. */
function readAcl(path: string): Acl {
  const acl = emptyAcl();
  const text = execFileSync('getfacl', ['-n', '-p', '-c', path], { encoding: 'utf8' });
  let groupObj: bigint | null = null;
  let mask = false;
  let def: { userObj?: bigint; groupObj?: bigint; other?: bigint; mask?: bigint } | null = null;
  for (const line of text.split('\n')) {
    const m = /^(default:)?(user|group|mask|other):(\d*):([rwx-]{3})/.exec(line.trim());
    if (!m) continue;
    const [, isDef, tag, id, p] = m;
    const bits = perm(p!);
    if (isDef) {
      def ??= {};
      if (tag === 'user' && id) acl.defaultUsers.push({ id: Number(id), permissions: bits });
      else if (tag === 'group' && id) acl.defaultGroups.push({ id: Number(id), permissions: bits });
      else if (tag === 'user') def.userObj = bits;
      else if (tag === 'group') def.groupObj = bits;
      else if (tag === 'other') def.other = bits;
      else def.mask = bits;
    } else if (tag === 'user' && id) acl.users.push({ id: Number(id), permissions: bits });
    else if (tag === 'group' && id) acl.groups.push({ id: Number(id), permissions: bits });
    else if (tag === 'group') groupObj = bits;
    else if (tag === 'mask') mask = true;
  }
  if (mask) acl.groupObj = groupObj;
  if (def) acl.default = { userObj: def.userObj!, groupObj: def.groupObj!, other: def.other!, mask: def.mask ?? ACL_NO_MASK };
  return acl;
}

function readXattrs(path: string): Xattr[] {
  const text = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path], { encoding: 'utf8' });
  const out: Xattr[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line.trim());
    if (!m || m[1]!.startsWith('system.posix_acl')) continue;
    out.push({ name: new Uint8Array(Buffer.from(m[1]!)), value: new Uint8Array(Buffer.from(m[2]!, 'hex')) });
  }
  return out.sort((a, b) => Buffer.compare(a.name, b.name));
}

function metadataOf(path: string): Metadata {
  const st = lstatSync(path, { bigint: true });
  const ns = st.mtimeNs;
  const isLink = st.isSymbolicLink();
  return {
    stat: { mode: Number(st.mode), flags: 0, uid: Number(st.uid), gid: Number(st.gid), mtime: { secs: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) } },
    xattrs: isLink ? [] : readXattrs(path),
    acl: isLink ? emptyAcl() : readAcl(path),
    fcaps: null,
    quotaProjectId: null,
  };
}

/** Encodes the directory `src` as pxar; returns the archive (and payload when split). */
export async function encodeDirectory(src: string, split: boolean): Promise<{ archive: Uint8Array; payload?: Uint8Array }> {
  const meta = new MemorySink();
  const payload = split ? new MemorySink() : undefined;
  const enc = await PxarEncoder.create(meta, metadataOf(src), { payload });
  const seen = new Map<string, { path: string; offset: number }>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of readdirSync(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      const md = metadataOf(path);
      if (st.isDirectory()) {
        await enc.createDirectory(name, md);
        await walk(path, relPath);
        await enc.finishDirectory();
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = seen.get(key);
        if (st.nlink > 1 && first) await enc.addHardlink(name, first.path, first.offset);
        else {
          const offset = await enc.addFile(md, name, st.size, [readFileSync(path)]);
          if (st.nlink > 1) seen.set(key, { path: relPath, offset });
        }
      } else if (st.isSymbolicLink()) await enc.addSymlink(md, name, readlinkSync(path));
      else if (st.isFIFO()) await enc.addFifo(md, name);
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await enc.addDevice(md, name, { major: Math.floor(st.rdev / 256) & 0xfff, minor: (st.rdev & 0xff) | ((st.rdev >> 12) & ~0xff) });
      }
    }
  };
  await walk(src, '');
  await enc.finish();
  return { archive: meta.bytes(), payload: payload?.bytes() };
}

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

/** Stores `src` as `root.pxar` (or `root.mpxar` + `root.ppxar`) in a new snapshot of host/<id> in `store`. */
export async function backupDirectory(opts: { configDir: string; store: string; id: string; time: number; src: string; split?: boolean; type?: BackupType }): Promise<void> {
  const ds = await Datastore.open(await lookupDatastore(opts.store, opts.configDir));
  const pool = new WorkerPool({ size: 1 });
  try {
    const { archive, payload } = await encodeDirectory(opts.src, opts.split ?? false);
    const w = await SnapshotWriter.begin(ds, { ns: ROOT_NAMESPACE, type: opts.type ?? 'host', id: opts.id }, { codec: getCodec(), pool, cryptMode: 'none', time: opts.time });
    const chunks = (b: Uint8Array) => chunkStream(once(b), new BuzhashChunker(64 * 1024));
    if (payload) {
      await w.addDynamicArchive('root.mpxar.didx', chunks(archive));
      await w.addDynamicArchive('root.ppxar.didx', chunks(payload));
    } else await w.addDynamicArchive('root.pxar.didx', chunks(archive));
    await w.finish();
  } finally {
    await pool.close();
  }
}
