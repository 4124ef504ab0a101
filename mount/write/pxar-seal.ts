// Sealing a staged tree: its entries encoded as a split pxar archive (spec §8.4–§8.7) in archive order (children
// sorted by name bytes, goodbye tables from the encoder), with each file's bytes either referenced where they were
// stored as the file closed (closed-files-stream.ts) or read back from the spool into the payload stream. Metadata
// is chosen as the archiver chooses it for a directory on disk (src/fs/read-metadata.ts), so the result decodes
// like `pbsfs backup NAME.pxar:DIR --change-detection-mode data` of the same tree.
import { PbsError } from '../../src/errors.js';
import { XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, aclFromXattrs } from '../../src/fs/posix-acl.js';
import { isArchivedXattrName } from '../../src/fs/read-metadata.js';
import type { PayloadPlacer } from '../../src/backup/payload-placer.js';
import { type ByteSink, PxarEncoder } from '../../src/pxar/encoder.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, deviceFromDevT, emptyAcl, fileType, type Metadata } from '../../src/pxar/format.js';
import { joinPath } from '../../src/pxar/names.js';
import type { ClosedPayloads } from './closed-files-stream.js';
import { extentContents } from './spool.js';
import type { StagedTree } from './staged-tree.js';
import type { StagedInode } from './staging-state.js';
import { XATTR_CAPS } from '../node.js';

/** File bytes go from the spool to the encoder in pieces of this size. */
const SCRATCH_SIZE = 1024 * 1024;

/** The pxar metadata of a staged inode: xattrs, ACLs and fcaps only on files and directories, as the client does. */
export function stagedMetadata(i: StagedInode, path: string): Metadata {
  const meta: Metadata = {
    stat: { mode: i.mode, flags: 0, uid: i.uid, gid: i.gid, mtime: i.mtime },
    xattrs: [],
    acl: emptyAcl(),
    fcaps: null,
    quotaProjectId: null,
  };
  const type = fileType(i.mode);
  if (type !== S_IFREG && type !== S_IFDIR) return meta;
  if (!i.xattrs) return meta;
  for (const [name, value] of i.xattrs) {
    if (name === XATTR_CAPS) meta.fcaps = value;
    else if (isArchivedXattrName(name)) meta.xattrs.push({ name: new Uint8Array(Buffer.from(name, 'latin1')), value });
  }
  const access = i.xattrs.get(XATTR_ACL_ACCESS) ?? null;
  const dflt = type === S_IFDIR ? (i.xattrs.get(XATTR_ACL_DEFAULT) ?? null) : null;
  if (access || dflt) meta.acl = aclFromXattrs(access, dflt, path);
  return meta;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Payloads stored as their files closed, and the placer that injects their chunks into the new payload stream. */
export interface StoredAhead {
  offsetOf: ClosedPayloads['offsetOf'];
  placer: PayloadPlacer;
}

/**
 * Encodes the directory `rootId` of `tree` into `meta` (.mpxar) and `payload` (.ppxar); files whose payload was
 * stored as they closed (`ahead`) are referenced there. Returns the entry count and how many files were.
 */
export async function encodeStagedTree(tree: StagedTree, rootId: number, meta: ByteSink, payload: ByteSink, ahead?: StoredAhead): Promise<{ entries: number; placed: number }> {
  const root = tree.inode(rootId);
  const enc = await PxarEncoder.create(meta, stagedMetadata(root, '/'), { payload });
  const placer = ahead?.placer;
  /** Hardlinked inodes: the first name in archive order carries the payload. */
  const firstName = new Map<number, { path: Uint8Array; offset: number }>();
  let entries = 1;
  const scratch = new Uint8Array(SCRATCH_SIZE);
  const dir = async (d: StagedInode, rel: Uint8Array): Promise<void> => {
    const names = [...d.children!.keys()].map((n) => ({ n, b: utf8(n) })).sort((a, b) => Buffer.compare(a.b, b.b));
    for (const { n, b } of names) {
      const i = tree.inode(d.children!.get(n)!);
      const path = rel.length ? joinPath(rel, b) : b;
      const show = `/${Buffer.from(path).toString('utf8')}`;
      const m = stagedMetadata(i, show);
      entries++;
      switch (fileType(i.mode)) {
        case S_IFDIR:
          await enc.createDirectory(b, m);
          await dir(i, path);
          await enc.finishDirectory();
          break;
        case S_IFREG: {
          const first = i.nlink > 1 ? firstName.get(i.id) : undefined;
          if (first) {
            await enc.addHardlink(b, first.path, first.offset);
            break;
          }
          const streamed = ahead?.offsetOf(i);
          const placed = streamed === undefined ? undefined : await placer!.place(streamed, i.size, enc);
          let offset: number;
          if (placed !== undefined) {
            offset = await enc.addPayloadRef(m, b, i.size, placed);
          } else {
            await placer?.flush(enc);
            offset = await enc.addFile(m, b, i.size, extentContents(tree.spool, i.extents, i.size, scratch));
          }
          if (i.nlink > 1) firstName.set(i.id, { path, offset });
          break;
        }
        case S_IFLNK:
          await enc.addSymlink(m, b, utf8(i.target!));
          break;
        case S_IFCHR:
        case S_IFBLK:
          await enc.addDevice(m, b, deviceFromDevT(BigInt(i.rdev)));
          break;
        case S_IFIFO:
          await enc.addFifo(m, b);
          break;
        case S_IFSOCK:
          await enc.addSocket(m, b);
          break;
        default:
          throw new PbsError('EINVAL', `staged entry of unknown type 0o${i.mode.toString(8)}`, { path: show });
      }
    }
  };
  await dir(root, new Uint8Array(0));
  await placer?.flush(enc);
  await enc.finish();
  return { entries, placed: placer?.placedFiles ?? 0 };
}
