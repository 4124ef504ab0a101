#!/usr/bin/env node
// The `pbsfs` command: one binary, subcommands registered by the files in commands/.
import { Command, CommanderError } from 'commander';
import { isPbsError } from '../errors.js';
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

type Register = (program: Command) => void;

/**
 * The command files, in help order, by the top-level commands they add (mount.ts also adds `pxar mount`). Only the
 * file of the command being run is loaded: the others pull in modules (LevelDB, FUSE, QR codes, ...) whose loading
 * would cost every command start-up time.
 */
const COMMAND_FILES: [names: string[], load: () => Promise<Register>][] = [
  [['datastore'], async () => (await import('./commands/datastore.js')).registerDatastore],
  [['namespace'], async () => (await import('./commands/namespace.js')).registerNamespace],
  [['backup'], async () => (await import('./commands/backup.js')).registerBackup],
  [['restore'], async () => (await import('./commands/restore.js')).registerRestore],
  [['catalog'], async () => (await import('./commands/catalog.js')).registerCatalog],
  [['snapshot'], async () => (await import('./commands/snapshot.js')).registerSnapshot],
  [['group'], async () => (await import('./commands/group.js')).registerGroup],
  [['key'], async () => (await import('./commands/key.js')).registerKey],
  [['debug'], async () => (await import('./commands/debug.js')).registerDebug],
  [['benchmark'], async () => (await import('./commands/benchmark.js')).registerBenchmark],
  [['status'], async () => (await import('./commands/status.js')).registerStatus],
  [['mount', 'seal', 'umount', 'pxar'], async () => (await import('./commands/mount.js')).registerMount],
  [['pxar'], async () => (await import('./commands/pxar.js')).registerPxar],
];

/**
 * The program with the commands that `command` needs (every command when it is not a known one: help, version,
 * suggestions for a mistyped name).
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command('pbsfs')
    .description('Filesystem gateway and tools for Proxmox Backup Server datastores')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  const known = command !== undefined && COMMAND_FILES.some(([names]) => names.includes(command));
  const files = COMMAND_FILES.filter(([names]) => !known || names.includes(command));
  for (const register of await Promise.all(files.map(([, load]) => load()))) register(program);
  return program;
}

/** Exit codes: 0 ok, 1 operation failed, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  try {
    // The command is the first argument; an option there (--help, --version) needs every command.
    const program = await buildProgram(argv[2]?.startsWith('-') ? undefined : argv[2]);
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
