// Converts decoded entries into the vector listing format of /work/shared/vectors/README.md.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ACL_NO_MASK, type AclEntry, type PxarEntry } from '../../src/pxar/format.js';
import { nameToJson } from '../../src/pxar/names.js';

export const VECTORS = '/work/shared/vectors';

export function readVector(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${VECTORS}/${name}`));
}

export function readJsonl(name: string): Record<string, unknown>[] {
  return readFileSync(`${VECTORS}/${name}`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const aclList = (l: AclEntry[]) => l.map((e) => [e.id, Number(e.permissions)]);
const perm = (p: bigint) => (p === ACL_NO_MASK ? 'NO_MASK' : Number(p));

export function sha256(parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Listing fields of one entry (without index); `contents` are the bytes the decoder returned for files. */
export function entryListing(e: PxarEntry, contents?: Uint8Array[]): Record<string, unknown> {
  const out: Record<string, unknown> = { path: nameToJson(e.path), kind: e.kind };
  if (e.kind === 'hardlink') {
    out.target = nameToJson(e.linkTarget!);
    out.hardlink_offset = e.hardlinkOffset;
    return out;
  }
  const m = e.metadata;
  Object.assign(out, {
    mode: m.stat.mode.toString(8), flags: m.stat.flags, uid: m.stat.uid, gid: m.stat.gid,
    mtime_secs: m.stat.mtime.secs, mtime_nanos: m.stat.mtime.nanos,
  });
  if (m.xattrs.length > 0) out.xattrs = m.xattrs.map((x) => ({ name: nameToJson(x.name), value_hex: hex(x.value) }));
  const a = m.acl;
  if (a.users.length || a.groups.length || a.groupObj !== null || a.default !== null || a.defaultUsers.length || a.defaultGroups.length) {
    out.acl = {
      users: aclList(a.users), groups: aclList(a.groups), group_obj: a.groupObj === null ? null : Number(a.groupObj),
      default: a.default === null ? null : { user_obj: perm(a.default.userObj), group_obj: perm(a.default.groupObj), other: perm(a.default.other), mask: perm(a.default.mask) },
      default_users: aclList(a.defaultUsers), default_groups: aclList(a.defaultGroups),
    };
  }
  if (m.fcaps !== null) out.fcaps_hex = hex(m.fcaps);
  if (m.quotaProjectId !== null) out.quota_project_id = m.quotaProjectId;
  if (e.kind === 'file') {
    out.size = e.size;
    out.offset = e.contentOffset;
    if (e.payloadOffset !== undefined) out.payload_offset = e.payloadOffset;
    if (contents) {
      out.content_len = contents.reduce((n, c) => n + c.length, 0);
      out.sha256 = sha256(contents);
    }
  }
  if (e.kind === 'symlink') out.target = nameToJson(e.linkTarget!);
  if (e.kind === 'device') Object.assign(out, e.device);
  return out;
}
