// pbsfs debug inspect file|chunk, debug recover index — low-level tools that need no datastore config.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PbsError, withPath } from '../../errors.js';
import { decodeBlob, parseBlobHeader, verifyBlobCrc } from '../../format/blob.js';
import { DYNAMIC_INDEX_MAGIC, parseDynamicIndex } from '../../format/dynamic-index.js';
import { FIXED_INDEX_MAGIC, parseFixedIndex } from '../../format/fixed-index.js';
import { ChunkReader } from '../../io/chunk-reader.js';
import { ChunkDirSource } from '../../io/chunk-source.js';
import { indexFromBytes } from '../../io/index-reader.js';
import { digestToHex } from '../../types.js';
import { writeIndexed } from '../../backup/restore.js';
import { codec, loadCryptConfig, openStore, workerPool } from '../context.js';
import { outputFormatOption, parseFormat, printObject } from '../output.js';
import { byteProgress } from '../progress.js';

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  return bytes.byteLength >= magic.byteLength && Buffer.compare(bytes.subarray(0, magic.byteLength), magic) === 0;
}

async function readAll(path: string): Promise<Uint8Array> {
  return readFile(path).catch((e) => {
    throw withPath(e, path);
  });
}

/** Facts about one file: blob, fixed index or dynamic index, recognised by its magic. */
async function inspectFile(path: string, keyfile: string | undefined, decodeTo: string | undefined): Promise<Record<string, unknown>> {
  const bytes = await readAll(path);
  if (startsWith(bytes, FIXED_INDEX_MAGIC)) {
    const { header, digests } = parseFixedIndex(bytes, path);
    return {
      path, type: 'fixed index', uuid: Buffer.from(header.uuid).toString('hex'), ctime: new Date(header.ctime * 1000).toISOString(),
      size: header.size, 'chunk-size': header.chunkSize, chunks: digests.length,
      'index-csum': digestToHex(header.indexCsum), 'csum-ok': digestToHex(codec().sha256Parts(digests)) === digestToHex(header.indexCsum),
    };
  }
  if (startsWith(bytes, DYNAMIC_INDEX_MAGIC)) {
    const { header, entries } = parseDynamicIndex(bytes, path);
    const computed = digestToHex(codec().sha256(bytes.subarray(4096)));
    return {
      path, type: 'dynamic index', uuid: Buffer.from(header.uuid).toString('hex'), ctime: new Date(header.ctime * 1000).toISOString(),
      size: entries.length ? entries[entries.length - 1]!.end : 0, chunks: entries.length,
      'index-csum': digestToHex(header.indexCsum), 'csum-ok': computed === digestToHex(header.indexCsum),
    };
  }
  const h = parseBlobHeader(bytes, { path });
  let crcOk = true;
  try {
    verifyBlobCrc(codec(), bytes, { path });
  } catch {
    crcOk = false;
  }
  const info: Record<string, unknown> = { path, type: 'blob', kind: h.kind, 'encoded-size': bytes.byteLength, crc: h.crc.toString(16).padStart(8, '0'), 'crc-ok': crcOk };
  if (!h.encrypted || keyfile) {
    const crypt = keyfile ? await loadCryptConfig(keyfile) : undefined;
    const data = decodeBlob(codec(), bytes, { cryptKey: crypt?.key, path });
    info['decoded-size'] = data.byteLength;
    info.sha256 = digestToHex(crypt ? crypt.computeDigest(data) : codec().sha256(data));
    if (decodeTo) {
      if (decodeTo === '-') process.stdout.write(data);
      else await writeFile(decodeTo, data);
    }
  }
  return info;
}

export function registerDebug(program: Command): void {
  const debug = program.command('debug').description('Low-level inspection and recovery tools');
  const inspect = debug.command('inspect').description('Inspect blobs, indexes and chunks');

  inspect.command('file <path>')
    .description('Show header facts of a blob, .fidx or .didx file (and check CRC / csum)')
    .option('--keyfile <file>', 'key to decode encrypted blobs')
    .option('--decode <out>', "write the decoded blob contents to a file or '-'")
    .addOption(outputFormatOption())
    .action(async (path: string, opts: { keyfile?: string; decode?: string; outputFormat: string }) => {
      const info = await inspectFile(path, opts.keyfile, opts.decode);
      if (opts.decode !== '-') printObject(info, parseFormat(opts.outputFormat));
    });

  inspect.command('chunk <digest-or-path>')
    .description('Check one chunk: CRC, decode, digest')
    .option('--store <name>', 'datastore holding the chunk (when a digest is given)')
    .option('--keyfile <file>', 'key for encrypted chunks')
    .addOption(outputFormatOption())
    .action(async (what: string, opts: { store?: string; keyfile?: string; outputFormat: string }) => {
      let path = what;
      if (/^[0-9a-f]{64}$/.test(what)) {
        const ds = await openStore(opts.store);
        path = join(ds.path, '.chunks', what.slice(0, 4), what);
      }
      const info = await inspectFile(path, opts.keyfile, undefined);
      const name = path.split('/').pop()!;
      if (/^[0-9a-f]{64}$/.test(name) && info.sha256 !== undefined) info['digest-ok'] = info.sha256 === name;
      printObject(info, parseFormat(opts.outputFormat));
    });

  const recover = debug.command('recover').description('Recover data without a daemon or configuration');
  recover.command('index <index> <chunks-dir>')
    .description("Rebuild an archive from an index file and a .chunks directory (to --output or '-')")
    .option('--output <file>', "target file or '-' (default: the index name without .fidx/.didx)")
    .option('--keyfile <file>', 'key for encrypted chunks')
    .action(async (indexPath: string, chunksDir: string, opts: { output?: string; keyfile?: string }) => {
      const index = indexFromBytes(await readAll(indexPath), indexPath);
      const crypt = opts.keyfile ? await loadCryptConfig(opts.keyfile) : undefined;
      const reader = new ChunkReader(new ChunkDirSource(chunksDir), workerPool(), { crypt, cacheBytes: 32 * 1024 * 1024 });
      const target = opts.output ?? indexPath.replace(/\.(fidx|didx)$/, '').split('/').pop()!;
      if (target === indexPath) throw new PbsError('EINVAL', 'output would overwrite the index; pass --output');
      const bar = target === '-' ? undefined : byteProgress('recover', index.size);
      try {
        await writeIndexed(target, index, reader, (d) => bar?.update(d));
      } finally {
        bar?.stop();
      }
    });

}
