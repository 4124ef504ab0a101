// Reads a file or block device as consecutive fixed-size pieces, each in its own buffer (so it can be transferred).
import { open, readFile, stat } from 'node:fs/promises';
import { PbsError, withPath } from '../errors.js';

/** Size in bytes of a regular file or block device. */
export async function imageSize(path: string): Promise<number> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw withPath(e, path);
  }
  if (st.isFile()) return st.size;
  if (st.isBlockDevice()) {
    // Block devices report size 0 through stat; sysfs knows their sector count (always 512-byte units).
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    const sysfs = `/sys/dev/block/${major}:${minor}/size`;
    try {
      return Number((await readFile(sysfs, 'utf8')).trim()) * 512;
    } catch (e) {
      throw new PbsError('EIO', `cannot read the size of block device from ${sysfs}`, { path, cause: e });
    }
  }
  throw new PbsError('EINVAL', 'not a regular file or block device', { path });
}

/** Yields `size` bytes of `path` in pieces of `pieceSize` (the last may be shorter), reading ahead. */
export async function* readPieces(path: string, size: number, pieceSize: number, readAhead = 3): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r').catch((e) => {
    throw withPath(e, path);
  });
  try {
    const readAt = async (pos: number): Promise<Uint8Array> => {
      const len = Math.min(pieceSize, size - pos);
      const buf = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
        if (bytesRead === 0) throw new PbsError('EIO', `source ended at ${pos + got} of ${size} bytes (changed while reading?)`, { path });
        got += bytesRead;
      }
      return buf;
    };
    // A few reads stay in flight so the disk is busy while the previous pieces are hashed.
    const ahead: Promise<Uint8Array>[] = [];
    let pos = 0;
    for (;;) {
      while (pos < size && ahead.length < readAhead) {
        const p = readAt(pos);
        p.catch(() => undefined);
        ahead.push(p);
        pos += Math.min(pieceSize, size - pos);
      }
      const next = ahead.shift();
      if (!next) break;
      yield await next.catch((e) => {
        throw withPath(e, path);
      });
    }
  } finally {
    await fh.close();
  }
}
