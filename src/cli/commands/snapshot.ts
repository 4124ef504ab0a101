// pbsfs snapshot list|files|forget|protected|notes (features §3.15, §3.22, §3.24).
import type { Command } from 'commander';
import { loadManifest, updateManifestUnprotected } from '../../backup/manifest-io.js';
import type { Datastore, SnapshotInfo } from '../../datastore/datastore.js';
import { formatBackupTime, formatNamespace } from '../../datastore/names.js';
import { PbsError } from '../../errors.js';
import type { BackupManifest } from '../../format/manifest.js';
import type { GroupRef, SnapshotRef } from '../../types.js';
import { codec, openStore } from '../context.js';
import { humanBytes, outputFormatOption, parseFormat, printList, printObject } from '../output.js';
import { groupArg, nsOf, snapshotArg } from '../refs.js';

export interface SnapshotListItem {
  snapshot: string;
  'backup-type': string;
  'backup-id': string;
  'backup-time': number;
  ns: string;
  files: { filename: string; 'crypt-mode': string; size: number }[];
  size: number;
  protected: boolean;
  comment?: string;
  fingerprint?: string;
  verification?: unknown;
  error?: string;
}

export function snapshotName(ref: SnapshotRef): string {
  return `${ref.type}/${ref.id}/${formatBackupTime(ref.time)}`;
}

function describe(info: SnapshotInfo, manifest: BackupManifest | undefined, error?: string): SnapshotListItem {
  const notes = typeof manifest?.unprotected.notes === 'string' ? manifest.unprotected.notes : undefined;
  const files = manifest?.files.map((f) => ({ filename: f.filename, 'crypt-mode': f['crypt-mode'], size: f.size })) ?? [];
  return {
    snapshot: snapshotName(info.ref),
    'backup-type': info.ref.type,
    'backup-id': info.ref.id,
    'backup-time': info.ref.time,
    ns: formatNamespace(info.ref.ns),
    files,
    size: files.reduce((a, f) => a + f.size, 0),
    protected: info.protected,
    comment: notes?.split('\n')[0],
    fingerprint: manifest?.unprotected['key-fingerprint'] as string | undefined,
    verification: manifest?.unprotected.verify_state,
    error,
  };
}

export async function listSnapshotItems(ds: Datastore, groups: GroupRef[]): Promise<SnapshotListItem[]> {
  const out: SnapshotListItem[] = [];
  for (const g of groups) {
    for (const info of await ds.listSnapshots(g)) {
      try {
        out.push(describe(info, await loadManifest(ds, info.ref, { codec: codec() })));
      } catch (e) {
        out.push(describe(info, undefined, (e as Error).message));
      }
    }
  }
  return out;
}

export function registerSnapshot(program: Command): void {
  const snap = program.command('snapshot').description('List and manage snapshots');

  snap.command('list [group]')
    .description('List finished snapshots (of one group, or of all groups in the namespace)')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (group: string | undefined, opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store);
      const groups = group ? [groupArg(group, opts)] : await ds.listGroups(nsOf(opts));
      const items = await listSnapshotItems(ds, groups);
      printList(items, [
        { header: 'snapshot', value: (s) => s.snapshot },
        { header: 'size', value: (s) => humanBytes(s.size), align: 'right' },
        { header: 'files', value: (s) => s.error ?? s.files.map((f) => f.filename.replace(/\.(fidx|didx|blob)$/, '')).join(' ') },
        { header: 'protected', value: (s) => s.protected },
        { header: 'comment', value: (s) => s.comment },
      ], parseFormat(opts.outputFormat));
    });

  snap.command('files <snapshot>')
    .description('List the files of a snapshot')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (snapshot: string, opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store);
      const m = await loadManifest(ds, snapshotArg(snapshot, opts), { codec: codec() });
      printList(m.files, [
        { header: 'filename', value: (f) => f.filename },
        { header: 'crypt-mode', value: (f) => f['crypt-mode'] },
        { header: 'size', value: (f) => humanBytes(f.size), align: 'right' },
      ], parseFormat(opts.outputFormat));
    });

  snap.command('forget <snapshot>')
    .description('Remove a snapshot (space is freed by garbage collection); protected snapshots are refused')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .action(async (snapshot: string, opts: { store?: string; ns?: string }) => {
      const ds = await openStore(opts.store, 'write');
      await ds.forgetSnapshot(snapshotArg(snapshot, opts));
    });

  const prot = snap.command('protected').description('Show or change the protection flag');
  prot.command('show <snapshot>')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (snapshot: string, opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store);
      const ref = snapshotArg(snapshot, opts);
      await loadManifest(ds, ref, { codec: codec() });
      printObject({ snapshot: snapshotName(ref), protected: await ds.isProtected(ref) }, parseFormat(opts.outputFormat));
    });
  prot.command('update <snapshot> <value>')
    .description('value: true or false')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .action(async (snapshot: string, value: string, opts: { store?: string; ns?: string }) => {
      if (value !== 'true' && value !== 'false') throw new PbsError('EINVAL', `protected must be true or false, not '${value}'`);
      const ds = await openStore(opts.store, 'write');
      const ref = snapshotArg(snapshot, opts);
      await loadManifest(ds, ref, { codec: codec() });
      await ds.setProtected(ref, value === 'true');
    });

  const notes = snap.command('notes').description('Show or change snapshot notes (kept in the manifest)');
  notes.command('show <snapshot>')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (snapshot: string, opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store);
      const m = await loadManifest(ds, snapshotArg(snapshot, opts), { codec: codec() });
      const text = typeof m.unprotected.notes === 'string' ? m.unprotected.notes : '';
      if (parseFormat(opts.outputFormat) === 'text') process.stdout.write(text.endsWith('\n') || !text ? text : `${text}\n`);
      else printObject({ notes: text }, parseFormat(opts.outputFormat));
    });
  notes.command('update <snapshot> <notes>')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .action(async (snapshot: string, text: string, opts: { store?: string; ns?: string }) => {
      const ds = await openStore(opts.store, 'write');
      await updateManifestUnprotected(ds, snapshotArg(snapshot, opts), codec(), (u) => {
        if (text) u.notes = text;
        else delete u.notes;
      });
    });

}
