// Test helper: replays a decoded entry list (archive order) into an encoder.
import { PxarDecoder } from '../../src/pxar/decoder.js';
import { PxarEncoder, type ByteSink } from '../../src/pxar/encoder.js';
import type { PxarEntry } from '../../src/pxar/format.js';
import { bytesReadAt } from '../../src/pxar/read-at.js';

export interface TreeEntry {
  entry: PxarEntry;
  contents?: Uint8Array;
}

export class MemorySink implements ByteSink {
  parts: Uint8Array[] = [];
  async write(b: Uint8Array): Promise<void> {
    this.parts.push(b.slice());
  }
  bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

export async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

export async function decodeAll(archive: Uint8Array, payload?: Uint8Array) {
  const d = await PxarDecoder.open(once(archive), { payload: payload && bytesReadAt(payload) });
  const entries: TreeEntry[] = [];
  for await (const entry of d) {
    if (entry.kind === 'file') {
      const parts: Uint8Array[] = [];
      for await (const c of d.contents()) parts.push(c.slice());
      entries.push({ entry, contents: new Uint8Array(Buffer.concat(parts)) });
    } else entries.push({ entry });
  }
  return { version: d.version, prelude: d.prelude, entries };
}

const str = (b: Uint8Array) => Buffer.from(b).toString('latin1');

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Encodes entries (root first, archive order); files may be fed in pieces of `piece` bytes. */
export async function encodeTree(entries: TreeEntry[], opts: { split?: boolean; prelude?: Uint8Array | null; piece?: number } = {}) {
  const meta = new MemorySink();
  const payload = opts.split ? new MemorySink() : undefined;
  const [root, ...rest] = entries;
  const enc = await PxarEncoder.create(meta, root!.entry.metadata, { payload, prelude: opts.prelude ?? undefined });
  const stack = ['/'];
  const fileOffsets = new Map<string, number>();
  for (const { entry: e, contents } of rest) {
    const path = str(e.path);
    while (stack[stack.length - 1] !== parentOf(path)) {
      await enc.finishDirectory();
      stack.pop();
    }
    const name = e.path.subarray(e.path.lastIndexOf(0x2f) + 1);
    switch (e.kind) {
      case 'dir':
        await enc.createDirectory(name, e.metadata);
        stack.push(path);
        break;
      case 'file': {
        const piece = opts.piece ?? contents!.length;
        const pieces = function* () {
          for (let i = 0; i < contents!.length; i += Math.max(piece, 1)) yield contents!.subarray(i, i + Math.max(piece, 1));
        };
        fileOffsets.set(path, await enc.addFile(e.metadata, name, e.size!, pieces()));
        break;
      }
      case 'symlink':
        await enc.addSymlink(e.metadata, name, e.linkTarget!);
        break;
      case 'device':
        await enc.addDevice(e.metadata, name, e.device!);
        break;
      case 'fifo':
        await enc.addFifo(e.metadata, name);
        break;
      case 'socket':
        await enc.addSocket(e.metadata, name);
        break;
      case 'hardlink':
        await enc.addHardlink(name, e.linkTarget!, fileOffsets.get('/' + str(e.linkTarget!))!);
        break;
    }
  }
  while (stack.length > 1) {
    await enc.finishDirectory();
    stack.pop();
  }
  await enc.finish();
  return { archive: meta.bytes(), payload: payload?.bytes() };
}
