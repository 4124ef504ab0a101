// Runs `pbsfs mount …` as a real daemon process for a test file, and always takes the mount down again:
// in afterAll, and from a process exit handler if the test process dies first.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { CLI, type Sandbox } from '../helpers/cli.js';

const live = new Set<Mounted>();
process.on('exit', () => {
  for (const m of live) m.forceDown();
});

export function isMounted(mnt: string): boolean {
  try {
    return statSync(mnt).dev !== statSync(dirname(mnt)).dev;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

export class Mounted {
  log = '';
  private constructor(
    readonly mnt: string,
    readonly child: ChildProcess,
  ) {}

  /** Starts the daemon in the foreground and waits until the mount point is served. */
  static async start(sb: Sandbox, args: string[], mnt: string, env: NodeJS.ProcessEnv = {}): Promise<Mounted> {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...sb.env, ...env }, cwd: sb.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const m = new Mounted(mnt, child);
    live.add(m);
    child.stdout!.on('data', (d: Buffer) => (m.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (m.log += d.toString()));
    const exited = new Promise<never>((_, rej) => child.once('exit', (code) => rej(new Error(`mount exited with ${code}: ${m.log}`))));
    exited.catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      if (m.log.includes('mounted at')) return m;
      await Promise.race([new Promise((r) => setTimeout(r, 100)), exited]);
    }
    throw new Error(`mount did not come up: ${m.log}`);
  }

  /** The number of nodes the daemon holds for the kernel. */
  async inodesHeld(): Promise<number> {
    return (await this.report()).inodes;
  }

  /** The daemon's SIGUSR2 report: nodes held for the kernel, requests so far by operation, and those the session answered without JS. */
  async report(): Promise<{ inodes: number; requests: Record<string, number>; native: Record<string, number> }> {
    const before = this.log.length;
    const counts = (text: string): Record<string, number> =>
      text === 'none' ? {} : Object.fromEntries(text.split(', ').map((p) => [p.split(' ')[0]!, Number(p.split(' ')[1])]));
    this.child.kill('SIGUSR2');
    for (let i = 0; i < 50; i++) {
      const m = /inodes held: (\d+);.*requests: (.*?); of them answered without JS: (.*)/.exec(this.log.slice(before));
      if (m) return { inodes: Number(m[1]), requests: counts(m[2]!), native: counts(m[3]!.trim()) };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no report in the log: ${this.log.slice(before)}`);
  }

  /** Waits for the daemon to end (after an unmount); true when it did within `ms`. */
  async exited(ms = 10_000): Promise<boolean> {
    if (this.child.exitCode !== null) return true;
    return new Promise((res) => {
      const t = setTimeout(() => res(false), ms);
      this.child.once('exit', () => {
        clearTimeout(t);
        res(true);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      if (!(await this.exited())) this.child.kill('SIGKILL');
    }
    this.forceDown();
  }

  /** Synchronous last resort (exit handler): kill the daemon and detach whatever is left. */
  forceDown(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    if (isMounted(this.mnt)) {
      try {
        execFileSync('fusermount', ['-uz', this.mnt], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    live.delete(this);
  }
}
