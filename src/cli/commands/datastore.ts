// pbsfs datastore create|list|show|update|remove — datastore.cfg plus the on-disk layout.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type DatastoreConfig, readDatastoreConfigs, writeDatastoreConfigs } from '../../datastore/config.js';
import { Datastore } from '../../datastore/datastore.js';
import { validateStoreName } from '../../datastore/names.js';
import { PbsError } from '../../errors.js';
import { outputFormatOption, parseFormat, printList, printObject } from '../output.js';

function parseTuning(text: string): DatastoreConfig['tuning'] {
  const tuning: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (k === 'sync-level' && (v === 'none' || v === 'filesystem' || v === 'file')) tuning[k] = v;
    else if (k === 'chunk-order' && (v === 'none' || v === 'inode')) tuning[k] = v;
    else throw new PbsError('EINVAL', `bad tuning option '${part}': use sync-level=none|filesystem|file, chunk-order=none|inode`);
  }
  return tuning as DatastoreConfig['tuning'];
}

function parseMaintenance(text: string): string {
  if (!/^(read-only|offline)$/.test(text)) throw new PbsError('EINVAL', `bad maintenance mode '${text}': use read-only or offline`);
  return text;
}

export function registerDatastore(program: Command): void {
  const ds = program.command('datastore').description('Create and manage datastores');

  ds.command('create <name> <path>')
    .description('Create a datastore directory (with .chunks/0000..ffff) and add it to datastore.cfg')
    .option('--comment <text>', 'comment')
    .option('--tuning <opts>', 'sync-level=none|filesystem|file,chunk-order=none|inode')
    .action(async (name: string, path: string, opts: { comment?: string; tuning?: string }) => {
      validateStoreName(name);
      const cfgs = await readDatastoreConfigs();
      if (cfgs.some((c) => c.name === name)) throw new PbsError('EEXIST', `datastore '${name}' already exists`);
      const cfg: DatastoreConfig = { name, path: resolve(path) };
      if (opts.comment) cfg.comment = opts.comment;
      if (opts.tuning) cfg.tuning = parseTuning(opts.tuning);
      await Datastore.create(cfg);
      await writeDatastoreConfigs([...cfgs, cfg]);
      process.stderr.write(`created datastore '${name}' at ${cfg.path}\n`);
    });

  ds.command('list')
    .description('List configured datastores')
    .addOption(outputFormatOption())
    .action(async (opts: { outputFormat: string }) => {
      const cfgs = await readDatastoreConfigs();
      printList(cfgs, [
        { header: 'name', value: (c) => c.name },
        { header: 'path', value: (c) => c.path },
        { header: 'comment', value: (c) => c.comment },
      ], parseFormat(opts.outputFormat));
    });

  ds.command('show <name>')
    .description('Show one datastore configuration')
    .addOption(outputFormatOption())
    .action(async (name: string, opts: { outputFormat: string }) => {
      const cfg = (await readDatastoreConfigs()).find((c) => c.name === name);
      if (!cfg) throw new PbsError('ENOENT', `datastore '${name}' does not exist`);
      printObject({ ...cfg }, parseFormat(opts.outputFormat));
    });

  ds.command('update <name>')
    .description('Change a datastore configuration')
    .option('--comment <text>', 'comment')
    .option('--tuning <opts>', 'sync-level=...,chunk-order=...')
    .option('--maintenance-mode <mode>', 'read-only or offline')
    .option('--delete <key...>', 'remove settings: comment, tuning, maintenance-mode')
    .action(async (name: string, opts: { comment?: string; tuning?: string; maintenanceMode?: string; delete?: string[] }) => {
      const cfgs = await readDatastoreConfigs();
      const cfg = cfgs.find((c) => c.name === name);
      if (!cfg) throw new PbsError('ENOENT', `datastore '${name}' does not exist`);
      for (const key of opts.delete ?? []) {
        if (!['comment', 'tuning', 'maintenance-mode'].includes(key)) throw new PbsError('EINVAL', `cannot delete '${key}'`);
        delete cfg[key];
      }
      if (opts.comment !== undefined) cfg.comment = opts.comment;
      if (opts.tuning !== undefined) cfg.tuning = parseTuning(opts.tuning);
      if (opts.maintenanceMode !== undefined) cfg['maintenance-mode'] = parseMaintenance(opts.maintenanceMode);
      await writeDatastoreConfigs(cfgs);
    });

  ds.command('remove <name>')
    .description('Remove a datastore from the configuration (its data stays on disk)')
    .action(async (name: string) => {
      const cfgs = await readDatastoreConfigs();
      if (!cfgs.some((c) => c.name === name)) throw new PbsError('ENOENT', `datastore '${name}' does not exist`);
      await writeDatastoreConfigs(cfgs.filter((c) => c.name !== name));
      process.stderr.write(`removed datastore '${name}' from the configuration; data left in place\n`);
    });
}
