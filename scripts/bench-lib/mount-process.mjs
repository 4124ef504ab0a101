// FUSE mount daemons for the mount scenario: telling when a mount is up, starting one in the background, peak RSS.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether mnt is a mount point right now (per /proc/self/mountinfo, whose paths escape spaces as \040). */
export function isMounted(mnt) {
  const want = resolve(mnt);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === want);
}

/** Peak resident set size (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid) {
  const m = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/**
 * Starts a mount command that stays in the foreground while it serves (output to `${logBase}.log`) and resolves
 * { pid, stop } once mnt is mounted and `readyPath` (inside it) exists. stop(unmountCmd) runs the tool's own unmount,
 * then waits for the process to exit, killing it after 30 s.
 */
export async function startForegroundMount(cmd, args, { env, logBase, mnt, readyPath, timeoutMs = 120_000 }) {
  const log = createWriteStream(`${logBase}.log`);
  log.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  let exited = null;
  const exit = new Promise((r) => child.on('close', (code, signal) => r((exited = { code, signal }))));
  child.on('error', (e) => (exited = { code: null, signal: null, error: e }));

  async function stop(unmount) {
    try {
      if (exited === null && isMounted(mnt)) await unmount();
    } finally {
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      if (exited === null) await exit;
      clearTimeout(killer);
      log.end();
    }
  }

  const deadline = Date.now() + timeoutMs;
  while (!(isMounted(mnt) && existsSync(readyPath))) {
    if (exited !== null) {
      log.end();
      throw new Error(`${cmd} mount exited (${exited.error?.message ?? exited.code ?? exited.signal}) before the mount was up (log ${logBase}.log)`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      await stop(async () => {});
      throw new Error(`${cmd} mount not up after ${timeoutMs / 1000} s (log ${logBase}.log)`);
    }
    await sleep(100);
  }
  return { pid: child.pid, stop };
}
