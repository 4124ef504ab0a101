// File-backed byte sinks and random-access sources for standalone pxar files (pbsfs pxar create/extract/list).
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { PbsError } from '../errors.js';
import type { ByteSink } from '../pxar/encoder.js';
import type { ReadAt } from '../pxar/read-at.js';

export interface FileSink extends ByteSink {
  close(): Promise<void>;
}

/** A new file (exclusive create: an existing file is an EEXIST error) written sequentially. */
export async function createFileSink(path: string): Promise<FileSink> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'wx', 0o644);
  } catch (e) {
    const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
    throw new PbsError(exists ? 'EEXIST' : 'EIO', exists ? 'archive already exists, refusing to overwrite it' : (e as Error).message, { path, cause: e });
  }
  return {
    async write(b: Uint8Array) {
      for (let done = 0; done < b.length; ) done += (await fh.write(b, done, b.length - done)).bytesWritten;
    },
    close: () => fh.close(),
  };
}

/**
 * A file as a stream of plain Uint8Array views. The pxar decoder copies with `.slice()`, which on a Node Buffer
 * is a view into the shared chunk, not a copy; plain Uint8Arrays keep its copies real.
 */
export async function* fileChunks(path: string, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20, signal });
  try {
    for await (const c of stream as AsyncIterable<Buffer>) yield new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
  } finally {
    stream.destroy();
  }
}

export interface FileReadAt extends ReadAt {
  close(): Promise<void>;
}

export async function openFileReadAt(path: string): Promise<FileReadAt> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new PbsError(missing ? 'ENOENT' : 'EIO', missing ? 'no such file' : (e as Error).message, { path, cause: e });
  }
  const size = (await fh.stat()).size;
  return {
    size,
    async readAt(offset: number, length: number) {
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return new Uint8Array(out.buffer, out.byteOffset, done);
    },
    close: () => fh.close(),
  };
}
