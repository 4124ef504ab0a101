// pbsfs pxar create | extract | list: standalone pxar files (features §4.1–§4.3), v1 `.pxar` or split `.mpxar` + `.ppxar`.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { PbsError } from '../../errors.js';
import { createArchive } from '../../fs/archiver.js';
import { extractArchive } from '../../fs/extractor.js';
import { createFileSink, fileChunks, openFileReadAt, type FileReadAt, type FileSink } from '../../fs/file-io.js';
import { PxarDecoder } from '../../pxar/decoder.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFSOCK, fileType, type PxarEntry } from '../../pxar/format.js';
import { nameToDisplay } from '../../pxar/names.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function warnToStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** `x.pxar` / `x.mpxar` / `x.ppxar` → `x`. */
function splitBase(archive: string): string {
  return archive.replace(/\.[mp]?pxar$/, '');
}

interface OpenedArchive {
  decoder: PxarDecoder;
  close(): Promise<void>;
}

/** Opens a v1 `.pxar`, or a split archive given as `.mpxar` (or as the `.pxar` name when only the split pair exists). */
async function openArchive(archive: string): Promise<OpenedArchive> {
  let meta = archive;
  let payloadPath: string | null = null;
  if (archive.endsWith('.mpxar')) payloadPath = `${splitBase(archive)}.ppxar`;
  else if (!existsSync(archive) && existsSync(`${splitBase(archive)}.mpxar`)) {
    meta = `${splitBase(archive)}.mpxar`;
    payloadPath = `${splitBase(archive)}.ppxar`;
  }
  if (!existsSync(meta)) throw new PbsError('ENOENT', 'no such archive', { path: archive });
  let payload: FileReadAt | undefined;
  if (payloadPath !== null) payload = await openFileReadAt(payloadPath);
  const stream = fileChunks(meta);
  try {
    const decoder = await PxarDecoder.open(stream, { payload });
    return {
      decoder,
      async close() {
        await stream.return(undefined);
        await payload?.close();
      },
    };
  } catch (e) {
    await stream.return(undefined);
    await payload?.close();
    throw e;
  }
}

function modeString(e: PxarEntry): string {
  if (e.kind === 'hardlink') return 'h?????????';
  const mode = e.metadata.stat.mode;
  const types: Record<number, string> = { [S_IFDIR]: 'd', [S_IFLNK]: 'l', [S_IFBLK]: 'b', [S_IFCHR]: 'c', [S_IFIFO]: 'p', [S_IFSOCK]: 's' };
  let s = types[fileType(mode)] ?? '-';
  const rwx = (bits: number, special: boolean, specialChar: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? specialChar : specialChar.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  s += rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's');
  s += rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's');
  s += rwx(mode & 7, (mode & 0o1000) !== 0, 't');
  return s;
}

function mtimeString(e: PxarEntry): string {
  const t = e.metadata.stat.mtime;
  const d = new Date(t.secs * 1000);
  return Number.isNaN(d.getTime()) ? String(t.secs) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function longLine(e: PxarEntry): string {
  const st = e.metadata.stat;
  const owner = e.kind === 'hardlink' ? '?/?' : `${st.uid}/${st.gid}`;
  const size = e.kind === 'file' ? String(e.size) : e.kind === 'device' ? `${e.device!.major},${e.device!.minor}` : '0';
  let line = `${modeString(e)} ${owner.padEnd(11)} ${size.padStart(12)} ${e.kind === 'hardlink' ? ''.padEnd(20) : mtimeString(e)} ${nameToDisplay(e.path)}`;
  if (e.kind === 'symlink') line += ` -> ${nameToDisplay(e.linkTarget!)}`;
  if (e.kind === 'hardlink') line += ` link to /${nameToDisplay(e.linkTarget!)}`;
  return line;
}

export function registerPxar(program: Command): void {
  const pxar = (program.commands.find((c) => c.name() === 'pxar') ?? program.command('pxar')).description('Create, extract, list and mount standalone pxar archives');

  pxar
    .command('create <archive> <dir>')
    .description('Archive DIR into ARCHIVE (refuses to overwrite); --split writes ARCHIVE as .mpxar + .ppxar')
    .option('--exclude <pattern>', 'exclude glob relative to DIR (repeatable, later wins, ! re-includes)', collect, [])
    .option('--all-file-systems', 'cross into other filesystems (mount points)')
    .option('--include-dev <path>', 'also archive the filesystem mounted at PATH (repeatable)', collect, [])
    .option('--split', 'write a split v2 archive (.mpxar + .ppxar)')
    .action(async (archive: string, dir: string, opts: { exclude: string[]; allFileSystems?: boolean; includeDev: string[]; split?: boolean }) => {
      const paths = opts.split ? [`${splitBase(archive)}.mpxar`, `${splitBase(archive)}.ppxar`] : [archive];
      for (const p of paths) if (existsSync(p)) throw new PbsError('EEXIST', 'archive already exists, refusing to overwrite it', { path: p });
      const sinks: FileSink[] = [];
      let ok = false;
      try {
        for (const p of paths) sinks.push(await createFileSink(p));
        const stats = await createArchive(dir, sinks[0]!, {
          payload: sinks[1],
          excludes: opts.exclude,
          allFileSystems: opts.allFileSystems,
          includeDev: opts.includeDev,
          onWarning: warnToStderr,
        });
        ok = true;
        if (stats.warnings > 0) process.stderr.write(`${stats.warnings} warning(s)\n`);
      } finally {
        for (const s of sinks) await s.close();
        if (!ok) for (const p of paths.slice(0, sinks.length)) await rm(p, { force: true });
      }
    });

  pxar
    .command('extract <archive> [target] [patterns...]')
    .description('Extract ARCHIVE into TARGET (default: the current directory), optionally only entries matching PATTERNs')
    .option('--files-from <file>', 'read selection patterns from FILE, one per line')
    .option('--overwrite', 'replace existing files')
    .action(async (archive: string, target: string | undefined, patterns: string[], opts: { filesFrom?: string; overwrite?: boolean }) => {
      const selection = [...patterns];
      if (opts.filesFrom) {
        const text = await readFile(opts.filesFrom, 'utf8').catch((e: unknown) => {
          throw new PbsError('ENOENT', `cannot read pattern file: ${(e as Error).message}`, { path: opts.filesFrom });
        });
        selection.push(...text.split('\n').filter((l) => l.trim() !== ''));
      }
      const a = await openArchive(archive);
      try {
        const stats = await extractArchive(a.decoder, target ?? '.', { patterns: selection, overwrite: opts.overwrite, onWarning: warnToStderr });
        if (stats.warnings > 0) process.stderr.write(`${stats.warnings} warning(s)\n`);
      } finally {
        await a.close();
      }
    });

  pxar
    .command('list <archive>')
    .description('List the paths in ARCHIVE; --long adds mode, owner, size and mtime')
    .option('--long', 'long listing')
    .action(async (archive: string, opts: { long?: boolean }) => {
      const a = await openArchive(archive);
      try {
        let out = '';
        for await (const e of a.decoder) {
          out += `${opts.long ? longLine(e) : nameToDisplay(e.path)}\n`;
          if (out.length > 1 << 16) {
            process.stdout.write(out);
            out = '';
          }
        }
        process.stdout.write(out);
      } finally {
        await a.close();
      }
    });
}
