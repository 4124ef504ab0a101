// Where raw chunk blobs come from: one interface, backends plugged in (local store, a bare .chunks dir; later remote and tape).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PbsError } from '../errors.js';
import { type Digest, digestToHex } from '../types.js';

export interface ChunkSource {
  /** Raw DataBlob bytes of one chunk; PbsError('ENOENT') naming the digest when missing. */
  readChunk(digest: Digest): Promise<Uint8Array>;
}

/** A `.chunks` directory laid out as in spec §4 (`<4 hex>/<64 hex>`), with no datastore around it. */
export class ChunkDirSource implements ChunkSource {
  constructor(private readonly chunksDir: string) {}

  /** Where the chunk's file is. */
  pathOf(hex: string): string {
    return join(this.chunksDir, hex.slice(0, 4), hex);
  }

  async readChunk(digest: Digest): Promise<Uint8Array> {
    const hex = digestToHex(digest);
    const path = this.pathOf(hex);
    try {
      return await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new PbsError('ENOENT', 'chunk file is missing', { digest: hex, path });
      throw new PbsError('EIO', `cannot read chunk: ${(e as Error).message}`, { digest: hex, path, cause: e });
    }
  }
}
