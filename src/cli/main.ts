#!/usr/bin/env node
// The `pbsfs` command: one binary, subcommands registered by the files in commands/.
import { Command, CommanderError } from 'commander';
import { isPbsError } from '../errors.js';
import { registerBackup } from './commands/backup.js';
import { registerBenchmark } from './commands/benchmark.js';
import { registerCatalog } from './commands/catalog.js';
import { registerDatastore } from './commands/datastore.js';
import { registerDebug } from './commands/debug.js';
import { registerGroup } from './commands/group.js';
import { registerKey } from './commands/key.js';
import { registerMount } from './commands/mount.js';
import { registerNamespace } from './commands/namespace.js';
import { registerPxar } from './commands/pxar.js';
import { registerRestore } from './commands/restore.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerStatus } from './commands/status.js';
import { closeRuntime } from './context.js';

// Archiving and restoring trees keep many small file system calls in flight; libuv's default of 4 threads
// serialises them on a cold cache. Must be set before the first asynchronous fs call.
process.env.UV_THREADPOOL_SIZE ??= '16';

// `pbsfs … | head` closes the pipe early: that ends the command quietly, as it does for coreutils.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

export function buildProgram(): Command {
  const program = new Command('pbsfs')
    .description('Filesystem gateway and tools for Proxmox Backup Server datastores')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [registerDatastore, registerNamespace, registerBackup, registerRestore, registerCatalog, registerSnapshot, registerGroup, registerKey, registerDebug, registerBenchmark, registerStatus, registerMount, registerPxar]) {
    register(program);
  }
  return program;
}

/** Exit codes: 0 ok, 1 operation failed, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed the message (or help/version, which exit 0).
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isPbsError(e)) {
      process.stderr.write(`Error: ${e.message}\n`);
      if (process.env.PBSFS_DEBUG && e.cause) process.stderr.write(`${String((e.cause as Error).stack ?? e.cause)}\n`);
      return e.code === 'EINVAL' ? 2 : 1;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`Error: ${err?.message ?? String(e)}\n`);
    if (process.env.PBSFS_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 1;
  } finally {
    await closeRuntime();
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
