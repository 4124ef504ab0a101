// Runs one mount until it ends: pid file, a registry entry so `pbsfs umount` finds the daemon, readiness
// reported to a waiting parent (--daemon), and SIGINT/SIGTERM or an outside unmount ending it cleanly.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { FuseOps } from './fuse-ops.js';
import { FuseSession } from './fuse-lowlevel.js';
import type { Logger } from './log.js';
import type { MountNode } from './node.js';
import { registryDir, registryFile } from './registry.js';

export interface ServeOptions {
  mountpoint: string;
  root: MountNode;
  log: Logger;
  guard?: (path: string) => Promise<void> | undefined;
  allowOther?: boolean;
  pidFile?: string;
  /** false: the tree takes writes (new snapshots); default read-only. */
  readOnly?: boolean;
}

/** Mounts and serves; resolves once the mount is gone and everything is cleaned up. */
export async function serve(opts: ServeOptions): Promise<void> {
  const ops = new FuseOps({ root: opts.root, log: opts.log, guard: opts.guard });
  let finished!: () => void;
  const done = new Promise<void>((res) => (finished = res));
  const session = await FuseSession.mount({ mountpoint: opts.mountpoint, dispatch: ops.dispatch, log: opts.log, allowOther: opts.allowOther, readOnly: opts.readOnly, onGone: () => finished() });
  ops.attach(session);
  const pidText = `${process.pid}\n`;
  const reg = registryFile(session.mountpoint);
  await mkdir(registryDir(), { recursive: true, mode: 0o700 });
  await Promise.all([writeFile(reg, pidText), opts.pidFile ? writeFile(opts.pidFile, pidText) : undefined]);
  const stop = (signal: string): void => {
    opts.log.info(`${signal}: unmounting ${session.mountpoint}`);
    session.unmount().catch((e: Error) => {
      opts.log.error(`unmount failed: ${e.message}`);
      finished();
    });
  };
  const onInt = (): void => stop('SIGINT');
  const onTerm = (): void => stop('SIGTERM');
  // SIGUSR2: how many nodes the kernel holds (they are freed as it forgets them) and the requests so far.
  const onUsr2 = (): void => {
    const mem = process.memoryUsage();
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
    opts.log.info(`inodes held: ${ops.inodes.size}; rss ${mib(mem.rss)}, heap ${mib(mem.heapUsed)}, external ${mib(mem.external)}; requests: ${ops.counts().map(([op, n]) => `${op} ${n}`).join(', ')}; of them answered without JS: ${ops.counts().flatMap(([op, , native]) => (native ? [`${op} ${native}`] : [])).join(', ') || 'none'}`);
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGUSR2', onUsr2);
  // A parent waiting in `pbsfs mount --daemon` learns that the mount is up.
  if (process.send) {
    process.send({ ready: true, pid: process.pid });
    process.disconnect?.();
  }
  await done;
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  process.off('SIGUSR2', onUsr2);
  await Promise.all([rm(reg, { force: true }), opts.pidFile ? rm(opts.pidFile, { force: true }) : undefined]);
}
