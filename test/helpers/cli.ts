// Runs the built pbsfs CLI as a user would, with its own config dir, and gives back exit code and output.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: Uint8Array; binary?: boolean }): Promise<CliResult & { stdoutBytes: Buffer }>;
  /** Runs and throws with the output when the exit code is not 0. */
  ok(args: string[], opts?: { env?: NodeJS.ProcessEnv }): Promise<CliResult & { stdoutBytes: Buffer }>;
  cleanup(): void;
}

export function sandbox(prefix = 'pbsfs-test-'): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = { ...process.env, PBSFS_CONFIG_DIR: join(dir, 'etc'), XDG_CONFIG_HOME: join(dir, 'xdg'), PBSFS_WORKERS: '2' };
  delete env.PBS_ENCRYPTION_PASSWORD;
  const run: Sandbox['run'] = (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...opts.env }, cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code) => {
        const stdoutBytes = Buffer.concat(out);
        resolve({ code: code ?? -1, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
      });
      child.stdin.end(opts.input);
    });
  return {
    dir,
    env,
    run,
    async ok(args, opts) {
      const r = await run(args, opts);
      if (r.code !== 0) throw new Error(`pbsfs ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      return r;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
