// pbsfs mount MOUNTPOINT | pbsfs mount SNAPSHOT ARCHIVE MOUNTPOINT | pbsfs pxar mount FILE MOUNTPOINT | pbsfs umount MOUNTPOINT
import { spawn, execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { RootDir } from '../../../mount/datastore-tree.js';
import { FileReadAt } from '../../../mount/file-read-at.js';
import { openLogger } from '../../../mount/log.js';
import { InodeTable, LIVE_TTL_MS, type MountNode } from '../../../mount/node.js';
import { PxarArchive } from '../../../mount/pxar-tree.js';
import { registeredPid, registryFile } from '../../../mount/registry.js';
import { SnapshotDirNode } from '../../../mount/snapshot-dir.js';
import { newContext, StoreSet } from '../../../mount/stores.js';
import { PbsError } from '../../errors.js';
import { nativeFs } from '../../fs/native-fs.js';
import { SEAL_XATTR } from '../../../mount/write/staging-snapshot.js';
import { closeRuntime, codec, resolveKey, tuneMallocForTrees, workerPool } from '../context.js';
import { snapshotArg } from '../refs.js';

interface DaemonOpts {
  daemon?: boolean;
  foreground?: boolean;
  pidFile?: string;
  logFile?: string;
  allowOther?: boolean;
}

interface MountOpts extends DaemonOpts {
  store: string[];
  ns?: string;
  keyfile?: string;
  cacheSize: string;
  readOnly?: boolean;
  allowForget?: boolean;
  sealAfter: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function daemonOptions(cmd: Command): Command {
  return cmd
    .option('--daemon', 'detach and run in the background once the mount is up')
    .option('--foreground', 'stay in the foreground (the default)')
    .option('--pid-file <file>', 'write the daemon pid here')
    .option('--log-file <file>', 'append log lines here (default: stderr; with --daemon a file next to the mount registry)')
    .option('--allow-other', 'let other users see the mount (needs user_allow_other for non-root)');
}

/**
 * V8 flags for the mount daemon (also in scripts/pbsfs-mount.service). Every FUSE request allocates a little, so the
 * young generation grows to its default 16 MiB semi-spaces on every isolate (main and codec worker); 2 MiB cut peak RSS
 * of ls -lR + tar of a 54k-entry archive by ~45 MiB at no measured cost in speed.
 */
const DAEMON_V8_FLAGS = '--max-semi-space-size=2';

/**
 * --daemon: re-runs this command detached, its output in the log file, and returns once the child reports the
 * mount is up (or fails with the child's last log lines).
 */
async function detach(mountpoint: string, opts: DaemonOpts): Promise<void> {
  const logFile = resolve(opts.logFile ?? registryFile(mountpoint).replace(/\.pid$/, '.log'));
  const args = process.argv.slice(1).filter((a) => a !== '--daemon');
  if (!opts.logFile) args.push('--log-file', logFile);
  const fd = openSync(logFile, 'a', 0o640);
  // Through NODE_OPTIONS, not execArgv: workers inherit execArgv and refuse V8 flags there.
  const nodeOptions = process.env.NODE_OPTIONS ?? '';
  const env = { ...process.env, NODE_OPTIONS: nodeOptions.includes('--max-semi-space-size') ? nodeOptions : `${nodeOptions} ${DAEMON_V8_FLAGS}`.trim() };
  const child = spawn(process.execPath, [...process.execArgv, ...args], { detached: true, env, stdio: ['ignore', fd, fd, 'ipc'] });
  closeSync(fd);
  await new Promise<void>((res, rej) => {
    child.once('message', () => {
      child.disconnect();
      child.unref();
      process.stdout.write(`pbsfs mount: pid ${child.pid}, log ${logFile}\n`);
      res();
    });
    child.once('exit', (code) => {
      const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
      rej(new PbsError('EIO', `the mount daemon exited (code ${code}) before the mount was up:\n${tail}`, { path: logFile }));
    });
  });
}

/**
 * Decoded chunks kept per datastore, in an arena twice this size (see mount/stores.ts): the metadata stream of a large
 * split archive (8 MiB for /usr/share) plus a sequential reader's read-ahead (at most half the cache) fit. 32 MiB was
 * no faster in ls -lR, tar or dd; 64 MiB cost ~35 MiB more RSS.
 */
const DEFAULT_CACHE_MIB = '24';

async function runMount(mountpoint: string, opts: DaemonOpts & { cacheSize?: string; keyfile?: string; writable?: boolean; allowForget?: boolean; sealAfter?: string }, build: (ctx: ReturnType<typeof newContext>) => Promise<{ root: MountNode; guard?: (p: string) => Promise<void> | undefined }>): Promise<void> {
  if (opts.daemon && !process.send) return detach(mountpoint, opts);
  const cacheMiB = Number(opts.cacheSize ?? DEFAULT_CACHE_MIB);
  if (!Number.isSafeInteger(cacheMiB) || cacheMiB < 0) throw new PbsError('EINVAL', `--cache-size must be a number of MiB, got ${opts.cacheSize}`);
  const sealAfter = Number(opts.sealAfter ?? '60');
  if (!Number.isFinite(sealAfter) || sealAfter <= 0) throw new PbsError('EINVAL', `--seal-after must be a positive number of seconds, got ${opts.sealAfter}`);
  const log = openLogger(opts.logFile);
  try {
    // Chunk buffers made on one thread and freed on another (encrypted chunks decoded on the codec worker, the write
    // side's chunks) would otherwise stay in per-thread malloc arenas (~60 MiB at peak, measured before the chunk arena).
    tuneMallocForTrees();
    // The old generation may grow by half its live size between full GCs (V8 picks up to 4x for a heap this small).
    // When the kernel drops its cached dentries (memory pressure, drop_caches) it forgets every node, and the next
    // walk rebuilds them while the old ones are garbage: peak RSS of tar after that went 284 → 196 MiB, same speed.
    setFlagsFromString('--heap-growing-percent=50');
    const crypt = await resolveKey({ keyfile: opts.keyfile });
    // The main thread has a core's worth of work answering FUSE requests: one worker fewer than cores. A second
    // worker on 2 cores added ~45 MiB RSS and no dd speed (the main thread is the limit there).
    const ctx = newContext({ codec: codec(), pool: workerPool({ mainThreadBusy: true }), crypt, log, readAhead: 4, cacheBytes: cacheMiB * 1024 * 1024, writable: opts.writable === true, allowForget: opts.allowForget === true, sealAfterMs: sealAfter * 1000 });
    const { root, guard } = await build(ctx);
    // Loaded here so other commands never load the FUSE binding.
    const { serve } = await import('../../../mount/daemon.js');
    await serve({ mountpoint, root, guard, log, allowOther: opts.allowOther, pidFile: opts.pidFile, readOnly: opts.writable !== true });
  } catch (e) {
    log.error((e as Error).message);
    await log.close();
    throw e;
  }
  // The binding keeps a libuv handle referenced after an outside unmount, so the daemon ends explicitly.
  await closeRuntime();
  await log.close();
  process.exit(0);
}

export function registerMount(program: Command): void {
  daemonOptions(
    program
      .command('mount <first> [archive] [mountpoint]')
      .usage('MOUNTPOINT | SNAPSHOT ARCHIVE MOUNTPOINT [options]')
      .description('Mount every datastore (files copied into a group become new snapshots), or one archive of a snapshot read-only')
      .option('--read-only', 'refuse every change (EROFS); one-archive mounts always are')
      .option('--allow-forget', 'rmdir of a finished, unprotected snapshot directory forgets it')
      .option('--seal-after <seconds>', 'seal staging snapshots after this long with no change and no open file', '60')
      .option('--store <name>', 'datastore to show (repeatable; default: all configured)', collect, [])
      .option('--ns <ns>', 'namespace of SNAPSHOT')
      .option('--keyfile <file>', 'encryption key for encrypted snapshots')
      .option('--cache-size <MiB>', 'decoded chunk cache per datastore', DEFAULT_CACHE_MIB),
  ).action(async (first: string, archive: string | undefined, mnt: string | undefined, opts: MountOpts) => {
    if (archive === undefined) {
      await runMount(first, { ...opts, writable: !opts.readOnly }, async (ctx) => {
        const stores = new StoreSet(ctx, opts.store);
        const guard = (path: string): Promise<void> | undefined => {
          const name = path.split('/')[1];
          // A stat of datastore.cfg per request cost ~15% of the daemon's time in ls -lR; a maintenance-mode
          // change shows within the LIVE_TTL_MS the kernel caches live directories for anyway.
          if (!name || stores.ready(name, LIVE_TTL_MS)) return undefined;
          return stores.get(name, LIVE_TTL_MS).then(() => undefined);
        };
        // Opening a store resumes its staging snapshots left by a crash: done now, not at the first access.
        if (ctx.writable) for (const name of await stores.names()) await stores.get(name).catch((e: Error) => ctx.log.error(e.message));
        return { root: new RootDir(stores), guard };
      });
      return;
    }
    if (mnt === undefined) throw new PbsError('EINVAL', 'usage: pbsfs mount SNAPSHOT ARCHIVE MOUNTPOINT --store NAME');
    if (opts.store.length !== 1) throw new PbsError('EINVAL', 'mounting one archive needs exactly one --store');
    const ref = snapshotArg(first, opts);
    await runMount(mnt, opts, async (ctx) => {
      const stores = new StoreSet(ctx, opts.store);
      const snap = new SnapshotDirNode(ctx, await stores.get(opts.store[0]!), ref);
      const name = archive.replace(/\.didx$/, '').replace(/\.mpxar$/, '.pxar');
      const root = await snap.lookup(name);
      if (!root?.readdir) throw new PbsError('EINVAL', `'${archive}' is not a pxar archive of this snapshot (images are files in the full mount)`);
      const store = opts.store[0]!;
      return { root, guard: () => (stores.ready(store) ? undefined : stores.get(store).then(() => undefined)) };
    });
  });

  // `pbsfs pxar mount` belongs to the pxar command group (features §4.4).
  const pxar = program.commands.find((c) => c.name() === 'pxar') ?? program.command('pxar');
  daemonOptions(
    pxar
      .command('mount <file> <mountpoint>')
      .description('Mount a local .pxar file (or .mpxar with its .ppxar) read-only')
      .option('--payload <file>', 'payload stream of a split archive (default: FILE with .ppxar for a .mpxar)'),
  ).action(async (file: string, mnt: string, opts: DaemonOpts & { payload?: string }) => {
    await runMount(mnt, opts, async (ctx) => {
      const payloadPath = opts.payload ?? (file.endsWith('.mpxar') ? `${file.slice(0, -6)}.ppxar` : undefined);
      const [meta, payload] = await Promise.all([FileReadAt.open(file), payloadPath ? FileReadAt.open(payloadPath) : undefined]);
      const archive = await PxarArchive.open(meta, payload, new InodeTable());
      return { root: await archive.root() };
    });
  });

  program
    .command('seal <path>')
    .description('Seal a staging snapshot of a running mount (a directory in a group, or NAME.pxar in a group): it becomes a finished snapshot')
    .action(async (path: string) => {
      // The daemon seals when the staging directory's user.pbsfs.seal xattr is set; the call returns once it is done.
      try {
        nativeFs().lsetxattr(resolve(path), SEAL_XATTR, new TextEncoder().encode('1'));
      } catch (e) {
        throw new PbsError('EIO', `sealing failed: ${(e as Error).message}`, { path, cause: e });
      }
      process.stdout.write(`sealed ${path}\n`);
    });

  program
    .command('umount <mountpoint>')
    .description('Unmount a pbsfs mount: stops its daemon, or detaches a stale mount')
    .action(async (mountpoint: string) => {
      const mnt = resolve(mountpoint);
      const pid = await registeredPid(mnt);
      if (pid !== undefined && alive(pid)) {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 100 && isMounted(mnt); i++) await new Promise((r) => setTimeout(r, 100));
        if (!isMounted(mnt)) return;
      }
      const run = promisify(execFile);
      await run('fusermount', ['-u', mnt]).catch(async (e: Error) => {
        if (!isMounted(mnt)) throw new PbsError('EINVAL', 'not mounted', { path: mnt });
        // Stale ("transport endpoint is not connected") or busy: detach lazily.
        await run('fusermount', ['-uz', mnt]).catch(() => {
          throw new PbsError('EBUSY', `cannot unmount: ${e.message}`, { path: mnt });
        });
      });
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A mount point is mounted when its device differs from its parent's (or it is a dead FUSE endpoint). */
function isMounted(mnt: string): boolean {
  try {
    return statSync(mnt).dev !== statSync(dirname(mnt)).dev;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}
