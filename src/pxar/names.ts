// Raw-byte file names: validation (spec §8.4) and display helpers. Linux names need not be UTF-8.
import { PbsError, type ErrorCode } from '../errors.js';

export const MAX_NAME_LEN = 4096; // spec §8.4

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Throws unless `name` is one path component: non-empty, no `/` or NUL, not `.`/`..`, at most 4096 bytes. */
export function checkName(name: Uint8Array, code: ErrorCode, offset?: number): void {
  const why = nameProblem(name);
  if (why) throw new PbsError(code, `invalid file name ${JSON.stringify(nameToDisplay(name))}: ${why}`, { offset });
}

function nameProblem(name: Uint8Array): string | null {
  if (name.length === 0) return 'empty';
  if (name.length > MAX_NAME_LEN) return `longer than ${MAX_NAME_LEN} bytes`;
  if (name.length === 1 && name[0] === 0x2e) return 'is "."';
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return 'is ".."';
  for (let i = 0; i < name.length; i++) {
    if (name[i] === 0x2f) return 'contains "/"';
    if (name[i] === 0) return 'contains NUL';
  }
  return null;
}

/**
 * Throws unless `path` is a relative archive path (hardlink target): components separated by single `/`,
 * each a valid name; no leading `/`.
 */
export function checkRelativePath(path: Uint8Array, code: ErrorCode, offset?: number): void {
  if (path.length === 0) throw new PbsError(code, 'empty hardlink target path', { offset });
  if (path.length > MAX_NAME_LEN) throw new PbsError(code, 'hardlink target path too long', { offset });
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      const why = nameProblem(path.subarray(start, i));
      if (why) {
        throw new PbsError(code, `invalid hardlink target ${JSON.stringify(nameToDisplay(path))}: component ${why}`, { offset });
      }
      start = i + 1;
    }
  }
}

export function toNameBytes(name: Uint8Array | string): Uint8Array {
  return typeof name === 'string' ? utf8Encoder.encode(name) : name;
}

/** The UTF-8 text of the bytes, or null when they are not valid UTF-8. */
export function nameToUtf8(name: Uint8Array): string | null {
  try {
    return utf8.decode(name);
  } catch {
    return null;
  }
}

/** Printable form: UTF-8 text when valid, otherwise bytes outside printable ASCII as `\xNN`. */
export function nameToDisplay(name: Uint8Array): string {
  const text = nameToUtf8(name);
  if (text !== null) return text;
  let out = '';
  for (const b of name) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/** JSON form used by the vector listings: a string when valid UTF-8, else `{hex}`. */
export function nameToJson(name: Uint8Array): string | { hex: string } {
  const text = nameToUtf8(name);
  return text !== null ? text : { hex: Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('hex') };
}

export function joinPath(parent: Uint8Array, name: Uint8Array): Uint8Array {
  const slash = parent.length > 0 && parent[parent.length - 1] === 0x2f;
  const out = new Uint8Array(parent.length + (slash ? 0 : 1) + name.length);
  out.set(parent, 0);
  if (!slash) out[parent.length] = 0x2f;
  out.set(name, out.length - name.length);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Path components; empty ones (leading, doubled or trailing `/`) are dropped. */
export function splitPath(path: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      if (i > start) parts.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

const SLASH = 0x2f;

/**
 * Compares two archive-relative paths in archive order (spec §8.4): a directory before its contents, siblings by
 * name bytes (a name before every longer name it is a prefix of).
 */
export function walkOrder(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let k = 0;
  while (k < n && a[k] === b[k]) k++;
  if (k === n) return a.length - b.length;
  if (a[k] === SLASH) return -1; // a's name ends here, b's goes on
  if (b[k] === SLASH) return 1;
  return a[k]! - b[k]!;
}
