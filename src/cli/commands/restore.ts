// pbsfs restore SNAPSHOT ARCHIVE TARGET|- (features §3.17).
import type { Command } from 'commander';
import { restoreTree } from '../../backup/pxar-restore.js';
import { restoreArchive } from '../../backup/restore.js';
import { PbsError } from '../../errors.js';
import { codec, openStore, resolveKey, tuneMallocForTrees, workerPool } from '../context.js';
import { byteProgress } from '../progress.js';
import { snapshotArg } from '../refs.js';

export function registerRestore(program: Command): void {
  program
    .command('restore <snapshot> <archive> <target>')
    .description("Restore an archive (disk.img, qemu-server.conf, index.json, ...) to a file, block device or '-' (stdout)")
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .option('--keyfile <file>', 'encryption key file')
    .option('--pattern <glob...>', 'file archives: restore only matching paths (`!` excludes)')
    .option('--overwrite', 'file archives: replace existing files in the target', false)
    .action(async (snapshot: string, archive: string, target: string, opts: { store?: string; ns?: string; keyfile?: string; pattern?: string[]; overwrite: boolean }) => {
      const ds = await openStore(opts.store, 'read');
      const ref = snapshotArg(snapshot, opts);
      const crypt = await resolveKey({ keyfile: opts.keyfile });
      const bar = target === '-' ? undefined : byteProgress(archive, 0);
      // A file archive becomes a directory tree; to stdout ('-') it is written as the raw pxar stream.
      const tree = /\.(pxar|mpxar)(\.didx)?$/.test(archive) && target !== '-';
      if (tree) tuneMallocForTrees();
      const common = { codec: codec(), pool: workerPool({ mainThreadBusy: tree }), crypt, onProgress: (d: number, t: number) => bar?.update(d, t) };
      try {
        if (tree) {
          const stats = await restoreTree(ds, ref, archive, target, {
            ...common,
            patterns: opts.pattern,
            overwrite: opts.overwrite,
            onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
          });
          bar?.stop();
          process.stderr.write(`restored ${stats.entries} entries (${stats.warnings} warnings)\n`);
        } else {
          if (opts.pattern) throw new PbsError('EINVAL', '--pattern applies to file archives (.pxar) only');
          await restoreArchive(ds, ref, archive, target, common);
        }
      } finally {
        bar?.stop();
      }
    });
}
