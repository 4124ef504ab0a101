// pbsfs namespace create|list|remove (features §1.6).
import type { Command } from 'commander';
import { formatNamespace, parseNamespace } from '../../datastore/names.js';
import { openStore } from '../context.js';
import { outputFormatOption, parseFormat, printList } from '../output.js';

export function registerNamespace(program: Command): void {
  const ns = program.command('namespace').description('Manage namespaces of a datastore');

  ns.command('create <ns>')
    .description('Create a namespace (its parent must exist)')
    .option('--store <name>', 'datastore')
    .action(async (text: string, opts: { store?: string }) => {
      const ds = await openStore(opts.store, 'write');
      await ds.createNamespace(parseNamespace(text));
    });

  ns.command('list')
    .description('List namespaces below a parent (default: all)')
    .option('--store <name>', 'datastore')
    .option('--ns <parent>', 'parent namespace', '')
    .option('--max-depth <n>', 'how deep to list')
    .addOption(outputFormatOption())
    .action(async (opts: { store?: string; ns: string; maxDepth?: string; outputFormat: string }) => {
      const ds = await openStore(opts.store, 'read');
      const list = await ds.listNamespaces(parseNamespace(opts.ns), opts.maxDepth === undefined ? undefined : Number(opts.maxDepth));
      printList(list, [{ header: 'ns', value: (n) => formatNamespace(n) }], parseFormat(opts.outputFormat), (n) => ({ ns: formatNamespace(n) }));
    });

  ns.command('remove <ns>')
    .description('Remove an empty namespace; with --delete-groups also its groups (protected snapshots stay)')
    .option('--store <name>', 'datastore')
    .option('--delete-groups', 'also delete the groups in it', false)
    .action(async (text: string, opts: { store?: string; deleteGroups: boolean }) => {
      const ds = await openStore(opts.store, 'write');
      await ds.removeNamespace(parseNamespace(text), { deleteGroups: opts.deleteGroups });
    });
}
