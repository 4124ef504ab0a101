// Temporary datastores and hand-made DataBlob bytes for the datastore tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Datastore } from '../../src/datastore/datastore.js';
import type { Digest } from '../../src/types.js';

const MAGIC = {
  plain: '42ab3807be8370a1',
  zstd: '31b958426fb6a37f',
  encrypted: '7b6785be222d4cf0',
  'zstd-encrypted': 'e6591bbf0bbfd80b',
} as const;

export type BlobKindName = keyof typeof MAGIC;

/** A blob with the right magic and header size; the chunk store never looks past the magic. */
export function fakeBlob(kind: BlobKindName, payloadLen: number, fill = 0x61): Uint8Array {
  const header = kind.includes('encrypted') ? 44 : 12;
  const out = new Uint8Array(header + payloadLen).fill(fill);
  out.set(Buffer.from(MAGIC[kind], 'hex'), 0);
  return out;
}

export function digest(byte: number, second = 0): Digest {
  const d = new Uint8Array(32).fill(byte);
  d[1] = second;
  return d as Digest;
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One datastore per test file: creating the 65536 chunk dirs takes a moment. */
export async function tempStore(prefix = 'pbsfs-ds-'): Promise<{ ds: Datastore; dir: string; cleanup(): void }> {
  const t = tempDir(prefix);
  const ds = await Datastore.create({ name: 'teststore', path: join(t.dir, 'store') });
  return { ds, dir: t.dir, cleanup: t.cleanup };
}
