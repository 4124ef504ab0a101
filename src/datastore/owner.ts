// Group ownership (spec §12 Owner): the `owner` file holds an auth id, `user@realm` or
// `user@realm!token`; a backup into an existing group needs the owner, or the user whose token owns it.
import { PbsError } from '../errors.js';

// user name: no whitespace, ':', '/' or control chars; realm: safe id of 2..32 chars; optional !token
const AUTH_ID = /^([^\s:/\p{Cc}]+)@([A-Za-z0-9_][A-Za-z0-9._-]{1,31})(?:!([A-Za-z0-9_][A-Za-z0-9._-]*))?$/u;

export function validateAuthId(authId: string): string {
  if (typeof authId !== 'string' || !AUTH_ID.test(authId) || authId.length > 256) {
    throw new PbsError('EINVAL', `invalid auth id ${JSON.stringify(String(authId))}: expected user@realm or user@realm!token`);
  }
  return authId;
}

/** True when `authId` may back up into a group owned by `owner`. */
export function isBackupOwner(owner: string, authId: string): boolean {
  if (owner === authId) return true;
  const m = AUTH_ID.exec(owner);
  // a group owned by one of the caller's API tokens belongs to the caller too
  return !!m && m[3] !== undefined && `${m[1]}@${m[2]}` === authId;
}

export function checkBackupOwner(owner: string, authId: string, group: string): void {
  if (!isBackupOwner(owner, authId)) {
    throw new PbsError('EPERM', `backup owner check failed for group ${group} (${authId} != ${owner})`);
  }
}
