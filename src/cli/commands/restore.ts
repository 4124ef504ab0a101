// pbsfs restore SNAPSHOT ARCHIVE TARGET|- (features §3.17).
import type { Command } from 'commander';
import { restoreArchive } from '../../backup/restore.js';
import { codec, openStore, resolveKey, workerPool } from '../context.js';
import { byteProgress } from '../progress.js';
import { snapshotArg } from '../refs.js';

export function registerRestore(program: Command): void {
  program
    .command('restore <snapshot> <archive> <target>')
    .description("Restore an archive (disk.img, qemu-server.conf, index.json, ...) to a file, block device or '-' (stdout)")
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .option('--keyfile <file>', 'encryption key file')
    .action(async (snapshot: string, archive: string, target: string, opts: { store?: string; ns?: string; keyfile?: string }) => {
      const ds = await openStore(opts.store, 'read');
      const ref = snapshotArg(snapshot, opts);
      const crypt = await resolveKey({ keyfile: opts.keyfile });
      const bar = target === '-' ? undefined : byteProgress(archive, 0);
      try {
        await restoreArchive(ds, ref, archive, target, { codec: codec(), pool: workerPool(), crypt, onProgress: (d, t) => bar?.update(d, t) });
      } finally {
        bar?.stop();
      }
    });
}
