// pbsfs status — what the main job prints: every datastore with its usage and contents.
import { statfs } from 'node:fs/promises';
import type { Command } from 'commander';
import { readDatastoreConfigs } from '../../datastore/config.js';
import { Datastore } from '../../datastore/datastore.js';
import { PbsError } from '../../errors.js';
import { parseNamespace } from '../../datastore/names.js';
import { type BackupNamespace } from '../../types.js';
import { humanBytes, outputFormatOption, parseFormat, printList } from '../output.js';

export interface StoreStatus {
  store: string;
  path: string;
  total?: number;
  used?: number;
  avail?: number;
  namespaces?: number;
  groups?: number;
  snapshots?: number;
  error?: string;
}

export async function storeStatus(name?: string): Promise<StoreStatus[]> {
  const cfgs = (await readDatastoreConfigs()).filter((c) => !name || c.name === name);
  if (name && cfgs.length === 0) throw new PbsError('ENOENT', `datastore '${name}' does not exist`);
  const out: StoreStatus[] = [];
  for (const cfg of cfgs) {
    try {
      const ds = await Datastore.open(cfg);
      const fs = await statfs(ds.path);
      // The list starts with the root namespace itself.
      const namespaces: BackupNamespace[] = await ds.listNamespaces(parseNamespace(''));
      let groups = 0;
      let snapshots = 0;
      for (const ns of namespaces) {
        for (const g of await ds.listGroups(ns)) {
          groups++;
          snapshots += (await ds.listSnapshots(g)).length;
        }
      }
      out.push({
        store: cfg.name,
        path: cfg.path,
        total: fs.blocks * fs.bsize,
        used: (fs.blocks - fs.bfree) * fs.bsize,
        avail: fs.bavail * fs.bsize,
        namespaces: namespaces.length - 1,
        groups,
        snapshots,
      });
    } catch (e) {
      out.push({ store: cfg.name, path: cfg.path, error: (e as Error).message });
    }
  }
  return out;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show usage and contents of the configured datastores')
    .option('--store <name>', 'only this datastore')
    .addOption(outputFormatOption())
    .action(async (opts: { store?: string; outputFormat: string }) => {
      const rows = await storeStatus(opts.store);
      printList(rows, [
        { header: 'store', value: (r) => r.store },
        { header: 'path', value: (r) => r.path },
        { header: 'used', value: (r) => (r.used === undefined ? '' : humanBytes(r.used)), align: 'right' },
        { header: 'avail', value: (r) => (r.avail === undefined ? '' : humanBytes(r.avail)), align: 'right' },
        { header: 'namespaces', value: (r) => r.namespaces, align: 'right' },
        { header: 'groups', value: (r) => r.groups, align: 'right' },
        { header: 'snapshots', value: (r) => r.snapshots, align: 'right' },
        { header: 'error', value: (r) => r.error },
      ], parseFormat(opts.outputFormat));
    });
}
