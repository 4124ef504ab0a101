// pbsfs group list|forget|notes.
import type { Command } from 'commander';
import { formatBackupTime, formatNamespace } from '../../datastore/names.js';
import { openStore } from '../context.js';
import { outputFormatOption, parseFormat, printList, printObject } from '../output.js';
import { groupArg, nsOf } from '../refs.js';

export function registerGroup(program: Command): void {
  const group = program.command('group').description('List and manage backup groups');

  group.command('list')
    .description('List backup groups with their last backup and snapshot count')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store);
      const rows = [];
      for (const g of await ds.listGroups(nsOf(opts))) {
        const snaps = await ds.listSnapshots(g);
        rows.push({
          group: `${g.type}/${g.id}`,
          ns: formatNamespace(g.ns),
          'backup-type': g.type,
          'backup-id': g.id,
          'last-backup': snaps.length ? snaps[snaps.length - 1]!.ref.time : undefined,
          'backup-count': snaps.length,
          owner: await ds.getOwner(g),
        });
      }
      printList(rows, [
        { header: 'group', value: (r) => r.group },
        { header: 'last snapshot', value: (r) => (r['last-backup'] === undefined ? '' : formatBackupTime(r['last-backup'])) },
        { header: 'count', value: (r) => r['backup-count'], align: 'right' },
        { header: 'owner', value: (r) => r.owner },
      ], parseFormat(opts.outputFormat));
    });

  group.command('forget <group>')
    .description('Remove all unprotected snapshots of a group (and the group when none is left)')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .addOption(outputFormatOption())
    .action(async (text: string, opts: { store?: string; ns?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store, 'write');
      const res = await ds.forgetGroup(groupArg(text, opts));
      printObject({ group: text, ...res }, parseFormat(opts.outputFormat));
    });

  const notes = group.command('notes').description('Show or change group notes');
  notes.command('show <group>')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .action(async (text: string, opts: { store?: string; ns?: string }) => {
      const ds = await openStore(opts.store);
      process.stdout.write(await ds.groupNotes(groupArg(text, opts)));
    });
  notes.command('update <group> <notes>')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .action(async (text: string, value: string, opts: { store?: string; ns?: string }) => {
      const ds = await openStore(opts.store, 'write');
      await ds.setGroupNotes(groupArg(text, opts), value);
    });
}
