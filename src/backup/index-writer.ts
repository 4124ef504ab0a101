// Streams an index file to `<name>.tmp_fidx|.tmp_didx`, patches the header csum on close, then renames (spec §3.3).
import { randomUUID } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import type { Codec } from '../codec/codec.js';
import { PbsError, withPath } from '../errors.js';
import { encodeDynamicEntry, encodeDynamicIndexHeader } from '../format/dynamic-index.js';
import { FIXED_CHUNK_SIZE, INDEX_HEADER_SIZE, encodeFixedIndexHeader } from '../format/fixed-index.js';
import type { Digest } from '../types.js';

export interface ClosedIndex {
  /** Archive data size (manifest `size`). */
  size: number;
  /** index_csum (manifest `csum`). */
  csum: Uint8Array;
  chunkCount: number;
}

const FLUSH_BYTES = 64 * 1024;

abstract class IndexFileWriter {
  protected readonly uuid = new Uint8Array(Buffer.from(randomUUID().replaceAll('-', ''), 'hex'));
  protected readonly ctime = Math.floor(Date.now() / 1000);
  private readonly csum: ReturnType<Codec['sha256Stream']>;
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private pos = INDEX_HEADER_SIZE;
  protected count = 0;
  private closed = false;

  protected constructor(
    protected readonly fh: FileHandle,
    readonly tmpPath: string,
    readonly finalPath: string,
    codec: Codec,
    private readonly fsync: boolean,
  ) {
    this.csum = codec.sha256Stream();
  }

  protected async appendEntry(entry: Uint8Array): Promise<void> {
    this.csum.update(entry);
    this.buffered.push(entry);
    this.bufferedBytes += entry.byteLength;
    this.count++;
    if (this.bufferedBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.bufferedBytes) return;
    const buf = Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    await this.fh.write(buf, 0, buf.byteLength, this.pos);
    this.pos += buf.byteLength;
  }

  protected abstract header(csum: Uint8Array): Uint8Array;
  protected abstract dataSize(): number;

  async close(): Promise<ClosedIndex> {
    if (this.closed) throw new PbsError('EINVAL', 'index writer already closed', { path: this.finalPath });
    this.closed = true;
    try {
      await this.flush();
      const csum = this.csum.digest();
      await this.fh.write(this.header(csum), 0, INDEX_HEADER_SIZE, 0);
      if (this.fsync) await this.fh.sync();
      await this.fh.close();
      await rename(this.tmpPath, this.finalPath);
      return { size: this.dataSize(), csum, chunkCount: this.count };
    } catch (e) {
      await this.abort();
      throw withPath(e, this.finalPath);
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmpPath).catch(() => undefined);
  }
}

async function openTmp(path: string): Promise<FileHandle> {
  try {
    const fh = await open(path, 'wx', 0o644);
    await fh.write(new Uint8Array(INDEX_HEADER_SIZE), 0, INDEX_HEADER_SIZE, 0);
    return fh;
  } catch (e) {
    throw withPath(e, path);
  }
}

/** Fixed index (spec §3.1): digests appended in order, one per 4 MiB of the image. */
export class FixedIndexWriter extends IndexFileWriter {
  static async create(finalPath: string, size: number, codec: Codec, fsync = false): Promise<FixedIndexWriter> {
    const tmp = finalPath.replace(/\.fidx$/, '.tmp_fidx');
    return new FixedIndexWriter(await openTmp(tmp), tmp, finalPath, codec, fsync, size);
  }

  private constructor(fh: FileHandle, tmp: string, final: string, codec: Codec, fsync: boolean, private readonly size: number) {
    super(fh, tmp, final, codec, fsync);
  }

  get expectedChunks(): number {
    return Math.ceil(this.size / FIXED_CHUNK_SIZE);
  }

  async append(digest: Digest): Promise<void> {
    if (this.count >= this.expectedChunks) {
      throw new PbsError('EINVAL', `more chunks than an image of ${this.size} bytes has`, { path: this.finalPath });
    }
    await this.appendEntry(digest);
  }

  protected header(csum: Uint8Array): Uint8Array {
    if (this.count !== this.expectedChunks) {
      throw new PbsError('EIO', `image ended after ${this.count} of ${this.expectedChunks} chunks`, { path: this.finalPath });
    }
    return encodeFixedIndexHeader({ uuid: this.uuid, ctime: this.ctime, indexCsum: csum, size: this.size, chunkSize: FIXED_CHUNK_SIZE });
  }

  protected dataSize(): number {
    return this.size;
  }
}

/** Dynamic index (spec §3.2): (end offset, digest) entries appended in stream order. */
export class DynamicIndexWriter extends IndexFileWriter {
  private end = 0;

  static async create(finalPath: string, codec: Codec, fsync = false): Promise<DynamicIndexWriter> {
    const tmp = finalPath.replace(/\.didx$/, '.tmp_didx');
    return new DynamicIndexWriter(await openTmp(tmp), tmp, finalPath, codec, fsync);
  }

  async append(chunkSize: number, digest: Digest): Promise<void> {
    this.end += chunkSize;
    await this.appendEntry(encodeDynamicEntry({ end: this.end, digest }));
  }

  protected header(csum: Uint8Array): Uint8Array {
    return encodeDynamicIndexHeader({ uuid: this.uuid, ctime: this.ctime, indexCsum: csum });
  }

  protected dataSize(): number {
    return this.end;
  }
}
