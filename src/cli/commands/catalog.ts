// pbsfs catalog dump|shell (features §3.16, §3.18).
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { CatalogShell } from '../../catalog/shell.js';
import { AccessorBrowser, openCatalog, openTree } from '../../catalog/tree-browser.js';
import { PbsError } from '../../errors.js';
import { formatCatalogDumpLine } from '../../format/catalog.js';
import { loadManifest } from '../../backup/manifest-io.js';
import { openAccessor, openSnapshotPxar, restoreTree } from '../../backup/pxar-restore.js';
import { codec, openStore, resolveKey, workerPool } from '../context.js';
import { snapshotArg } from '../refs.js';

interface SnapOpts {
  store?: string;
  ns?: string;
  keyfile?: string;
}

export function registerCatalog(program: Command): void {
  const catalog = program.command('catalog').description("Browse a snapshot's file catalog");

  catalog.command('dump <snapshot>')
    .description('Print every entry of every file archive: type "path" [size mtime]')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .option('--keyfile <file>', 'key for encrypted snapshots')
    .action(async (snapshot: string, opts: SnapOpts) => {
      const ds = await openStore(opts.store);
      const ref = snapshotArg(snapshot, opts);
      const rOpts = { codec: codec(), pool: workerPool(), crypt: await resolveKey({ keyfile: opts.keyfile }) };
      const manifest = await loadManifest(ds, ref, { codec: rOpts.codec, crypt: rOpts.crypt });
      const out: string[] = [];
      const flush = (force = false): void => {
        if (force || out.length >= 512) process.stdout.write(out.splice(0).join(''));
      };
      if (manifest.files.some((f) => f.filename === 'catalog.pcat1.didx')) {
        const reader = await openCatalog(ds, ref, rOpts);
        for await (const { path, entry } of reader.walk()) {
          out.push(`${formatCatalogDumpLine(path, entry)}\n`);
          flush();
        }
      }
      // Split archives carry no catalog entries: their .mpxar is walked instead.
      for (const f of manifest.files.filter((x) => x.filename.endsWith('.mpxar.didx'))) {
        const browser = new AccessorBrowser(await openAccessor(await openSnapshotPxar(ds, ref, f.filename, rOpts)));
        const prefix = Buffer.from(`/${f.filename}`);
        out.push(`d ${JSON.stringify(`/${f.filename}`)}\n`);
        const stack: Uint8Array[][] = [[]];
        while (stack.length) {
          const dir = stack.pop()!;
          for (const e of await browser.list(dir)) {
            const path = Buffer.concat([prefix, ...[...dir, e.name].flatMap((p) => [Buffer.from('/'), p])]);
            out.push(`${formatCatalogDumpLine(path, { ...e })}\n`);
            flush();
            if (e.type === 'd') stack.push([...dir, e.name]);
          }
        }
      }
      flush(true);
    });

  catalog.command('shell <snapshot> <archive>')
    .description('Interactive shell over one file archive: cd ls pwd stat find select deselect clear-selected list-selected restore-selected restore exit help')
    .option('--store <name>', 'datastore')
    .option('--ns <ns>', 'namespace')
    .option('--keyfile <file>', 'key for encrypted snapshots')
    .action(async (snapshot: string, archive: string, opts: SnapOpts) => {
      if (!/\.(pxar|mpxar)(\.didx)?$/.test(archive)) throw new PbsError('EINVAL', `the shell browses file archives (NAME.pxar), not ${archive}`);
      const ds = await openStore(opts.store);
      const ref = snapshotArg(snapshot, opts);
      const rOpts = { codec: codec(), pool: workerPool(), crypt: await resolveKey({ keyfile: opts.keyfile }) };
      const tree = await openTree(ds, ref, archive, rOpts);
      const shell = new CatalogShell(
        tree.browser,
        tree.accessor,
        (target, patterns) => restoreTree(ds, ref, archive, target, { ...rOpts, patterns, onWarning: (m) => process.stderr.write(`warning: ${m}\n`) }),
        { print: (line) => process.stdout.write(`${line}\n`) },
      );
      await runShell(shell);
    });
}

/** A terminal gets a prompt, history and tab completion; piped input runs line by line. */
async function runShell(shell: CatalogShell): Promise<void> {
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
    completer: (line: string, cb: (err: Error | null, result: [string[], string]) => void) => {
      shell.complete(line).then(
        (hits) => cb(null, [hits, line.split(/\s+/).pop() ?? '']),
        () => cb(null, [[], line]),
      );
    },
  });
  if (tty) {
    process.stdout.write('Starting interactive shell; "help" lists the commands.\n');
    rl.setPrompt(shell.prompt);
    rl.prompt();
  }
  for await (const line of rl) {
    if (!(await shell.exec(line))) break;
    if (tty) {
      rl.setPrompt(shell.prompt);
      rl.prompt();
    }
  }
  rl.close();
}
