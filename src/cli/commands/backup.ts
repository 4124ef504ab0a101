// pbsfs backup NAME.img:FILE [NAME.conf:FILE ...] — one snapshot with several archives (features §3.4).
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { type BackupSpec, parseBackupSpec } from '../../backup/backup-spec.js';
import { backupImage } from '../../backup/image-backup.js';
import { type ChangeDetectionMode, SnapshotCatalog, backupTree } from '../../backup/pxar-backup.js';
import { imageSize } from '../../backup/image-source.js';
import { MAX_CHUNK_SIZE } from '../../format/blob.js';
import { SnapshotWriter } from '../../backup/snapshot-writer.js';
import { parseBackupType, validateBackupId, formatBackupTime, formatNamespace } from '../../datastore/names.js';
import { PbsError, withPath } from '../../errors.js';
import { wrapKeyWithMasterKey } from '../../format/master-key.js';
import { createKeyConfig } from '../../format/key-file.js';
import type { CryptConfig } from '../../format/crypt-config.js';
import type { CryptMode } from '../../types.js';
import { codec, openStore, resolveKey, tuneMallocForTrees, workerPool } from '../context.js';
import { humanBytes, outputFormatOption, parseFormat, printObject } from '../output.js';
import { byteProgress } from '../progress.js';
import { nsOf } from '../refs.js';
import { existsSync } from 'node:fs';
import { defaultMasterPubKeyFile } from '../secrets.js';

interface BackupOpts {
  store?: string;
  ns?: string;
  backupType: string;
  backupId: string;
  backupTime?: string;
  keyfile?: string;
  cryptMode?: CryptMode;
  masterPubkeyFile?: string;
  owner?: string;
  changeDetectionMode: ChangeDetectionMode;
  exclude?: string[];
  includeDev?: string[];
  allFileSystems: boolean;
  outputFormat: string;
}

async function wrappedKeyFor(crypt: CryptConfig, masterPubkeyFile: string | undefined): Promise<Uint8Array | undefined> {
  const file = masterPubkeyFile ?? (existsSync(defaultMasterPubKeyFile()) ? defaultMasterPubKeyFile() : undefined);
  if (!file) return undefined;
  const pem = await readFile(file, 'utf8').catch((e) => {
    throw withPath(e, file);
  });
  // Spec §6.2: the wrapped copy is a KeyConfig without password.
  const plain = await createKeyConfig(codec(), crypt.key, { kdf: 'none' });
  return wrapKeyWithMasterKey(codec(), pem, plain);
}

type PreparedSource =
  | { kind: 'image'; spec: BackupSpec; size: number }
  | { kind: 'blob'; spec: BackupSpec; data: Uint8Array }
  | { kind: 'tree'; spec: BackupSpec };

async function prepareSource(spec: BackupSpec): Promise<PreparedSource> {
  if (spec.kind === 'img') return { kind: 'image', spec, size: await imageSize(spec.source) };
  if (spec.kind === 'pxar') {
    const st = await stat(spec.source).catch((e) => {
      throw withPath(e, spec.source);
    });
    if (!st.isDirectory()) throw new PbsError('EINVAL', `${spec.name} needs a directory`, { path: spec.source });
    return { kind: 'tree', spec };
  }
  const st = await stat(spec.source).catch((e) => {
    throw withPath(e, spec.source);
  });
  if (!st.isFile()) throw new PbsError('EINVAL', `${spec.name} must be a regular file`, { path: spec.source });
  if (st.size > MAX_CHUNK_SIZE) throw new PbsError('ETOOBIG', `${spec.name} is larger than the 16 MiB blob limit; back it up as NAME.img`, { path: spec.source });
  const data = await readFile(spec.source).catch((e) => {
    throw withPath(e, spec.source);
  });
  return { kind: 'blob', spec, data };
}

export function registerBackup(program: Command): void {
  program
    .command('backup <specs...>')
    .description('Create a snapshot from NAME.pxar:DIR, NAME.img:FILE_OR_BLOCKDEV and NAME.conf:FILE / NAME.log:FILE archives')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace, e.g. a/b')
    .option('--backup-type <type>', 'vm, ct or host', 'host')
    .option('--backup-id <id>', 'backup id (default: this host name)', hostname().split('.')[0])
    .option('--backup-time <epoch>', 'backup time in unix seconds (default: now)')
    .option('--keyfile <file>', 'encryption key file')
    .addOption(new Option('--crypt-mode <mode>', 'none, encrypt or sign-only (default: encrypt with a key, else none)').choices(['none', 'encrypt', 'sign-only']))
    .option('--master-pubkey-file <pem>', 'RSA master public key: also store the key wrapped with it')
    .option('--owner <authid>', 'owner of a new group', 'root@pam')
    .addOption(new Option('--change-detection-mode <mode>', 'file archives: legacy (one .pxar + catalog), data or metadata (split .mpxar/.ppxar; metadata reuses unchanged files)').choices(['legacy', 'data', 'metadata']).default('legacy'))
    .option('--exclude <glob...>', 'file archives: exclude matching paths (.pxarexclude syntax)')
    .option('--include-dev <path...>', 'file archives: also back up these mount points')
    .option('--all-file-systems', 'file archives: cross every mount point', false)
    .addOption(outputFormatOption())
    .action(async (specTexts: string[], opts: BackupOpts) => {
      const specs: BackupSpec[] = specTexts.map(parseBackupSpec);
      const mode = opts.changeDetectionMode;
      const type = parseBackupType(opts.backupType);
      const id = validateBackupId(opts.backupId);
      const time = opts.backupTime === undefined ? undefined : Number(opts.backupTime);
      if (time !== undefined && (!Number.isSafeInteger(time) || time < 0)) throw new PbsError('EINVAL', `bad --backup-time '${opts.backupTime}'`);
      const crypt = await resolveKey(opts);
      const cryptMode: CryptMode = opts.cryptMode ?? (crypt ? 'encrypt' : 'none');
      if (cryptMode === 'none' && opts.keyfile) throw new PbsError('EINVAL', '--keyfile given with --crypt-mode none');
      const ds = await openStore(opts.store, 'write');
      // Every source is checked before the snapshot directory exists, so a typo leaves nothing behind.
      const sources = await Promise.all(specs.map(prepareSource));
      const ns = nsOf(opts);
      const wrappedKey = crypt && cryptMode === 'encrypt' ? await wrappedKeyFor(crypt, opts.masterPubkeyFile) : undefined;
      if (sources.some((s) => s.kind === 'tree')) tuneMallocForTrees();
      const session = await SnapshotWriter.begin(ds, { ns, type, id }, { codec: codec(), pool: workerPool(), time, owner: opts.owner, cryptMode, crypt, wrappedKey });
      const started = Date.now();
      // Ctrl-C leaves nothing behind: the unfinished snapshot directory is removed before exiting.
      const onSignal = (sig: NodeJS.Signals): void => {
        void session.abort().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let catalog: SnapshotCatalog | undefined;
      try {
        if (mode === 'legacy' && sources.some((s) => s.kind === 'tree')) catalog = await SnapshotCatalog.open(session);
        for (const src of sources) {
          if (src.kind === 'tree') {
            const bar = byteProgress(src.spec.name, 0);
            try {
              const stats = await backupTree(session, src.spec.name, src.spec.source, catalog, {
                mode,
                excludes: opts.exclude,
                includeDev: opts.includeDev,
                allFileSystems: opts.allFileSystems,
                onWarning: (m) => {
                  bar.stop();
                  process.stderr.write(`warning: ${m}\n`);
                },
                onProgress: (d) => bar.update(d),
              });
              if (stats.warnings) process.stderr.write(`${src.spec.name}: ${stats.warnings} entries skipped (see warnings)\n`);
            } finally {
              bar.stop();
            }
          } else if (src.kind === 'image') {
            const bar = byteProgress(src.spec.name, src.size);
            try {
              await backupImage(session, src.spec.fileName, src.spec.source, src.size, (d) => bar.update(d));
            } finally {
              bar.stop();
            }
          } else {
            await session.addBlob(src.spec.fileName, src.data);
          }
        }
        await catalog?.finish();
        const manifest = await session.finish();
        const stats = session.chunks.stats;
        const secs = (Date.now() - started) / 1000;
        const snapshot = `${type}/${id}/${formatBackupTime(session.ref.time)}`;
        const format = parseFormat(opts.outputFormat);
        if (format === 'text') {
          process.stdout.write(
            `snapshot ${formatNamespace(ns) ? `${formatNamespace(ns)}:` : ''}${snapshot}: ${humanBytes(stats.size)} in ${secs.toFixed(2)} s ` +
              `(${humanBytes(stats.size / Math.max(secs, 0.001))}/s), ${stats.count} chunks, ${stats.duplicates} reused, ${humanBytes(stats.compressed_size)} written\n`,
          );
        }
        else printObject({ snapshot, ns: formatNamespace(ns), files: manifest.files.map((f) => f.filename), ...stats, seconds: secs }, format);
      } catch (e) {
        await catalog?.abort();
        await session.abort();
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
