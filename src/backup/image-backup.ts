// Image archives: a file or block device cut into fixed 4 MiB chunks (spec §7.2) through the session's ChunkWriter.
import { FIXED_CHUNK_SIZE } from '../format/fixed-index.js';
import type { ClosedIndex } from './index-writer.js';
import { readPieces } from './image-source.js';
import type { SnapshotWriter } from './snapshot-writer.js';

export async function backupImage(
  session: SnapshotWriter,
  fileName: string,
  source: string,
  size: number,
  onProgress?: (bytes: number, total: number) => void,
): Promise<ClosedIndex> {
  let done = 0;
  return session.addFixedArchive(fileName, size, readPieces(source, size, FIXED_CHUNK_SIZE), (n) => {
    done += n;
    onProgress?.(done, size);
  });
}
