// A local file as a ReadAt (for `pbsfs pxar mount FILE.pxar`): positioned async reads, no whole-file buffering.
import { type FileHandle, open } from 'node:fs/promises';
import { PbsError, withPath } from '../src/errors.js';
import type { ReadAt } from '../src/pxar/read-at.js';

export class FileReadAt implements ReadAt {
  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  static async open(path: string): Promise<FileReadAt> {
    try {
      const fh = await open(path, 'r');
      const st = await fh.stat();
      if (!st.isFile()) {
        await fh.close();
        throw new PbsError('EINVAL', 'not a regular file', { path });
      }
      return new FileReadAt(fh, st.size, path);
    } catch (e) {
      throw withPath(e, path);
    }
  }

  async readAt(offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done).catch((e) => Promise.reject(withPath(e, this.path)));
      if (bytesRead === 0) throw new PbsError('EIO', `file ended at ${offset + done} (expected ${this.size} bytes)`, { path: this.path, offset: offset + done });
      done += bytesRead;
    }
    return buf;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
