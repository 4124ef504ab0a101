// Running one timed step: wall time, peak RSS (GNU time -v), logs; plus page-cache dropping, stored bytes, file hashes.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Host steal time so far (s): CPU time a VM's vCPUs were ready to run but the hypervisor ran something else. */
function stealSeconds() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  return Number(cpu[8] ?? 0) / 100;
}

/** Timed steps during which the host took more than half a second of CPU from this VM: [step, seconds]. */
export const stolen = [];

/**
 * Runs `cmd args` under /usr/bin/time -v. Resolves { seconds, maxRssMiB, stdout } or rejects with the log's tail.
 * The tail of stdout is kept for commands whose last lines name the snapshot; everything also goes to `${logBase}.log`.
 * Host steal during the step goes to its log and, when it matters, to `stolen`.
 */
export function runMeasured(cmd, args, { cwd, env, logBase }) {
  const timeFile = `${logBase}.time`;
  const log = createWriteStream(`${logBase}.log`);
  log.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const started = process.hrtime.bigint();
  const steal0 = stealSeconds();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-v', '-o', timeFile, cmd, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (d) => {
      log.write(d);
      stdout += d.toString();
      if (stdout.length > 2 << 20) stdout = stdout.slice(-(1 << 20));
    });
    child.stderr.on('data', (d) => {
      log.write(d);
      tail = (tail + d.toString()).slice(-2000);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const steal = stealSeconds() - steal0;
      log.end(`# host steal during this step: ${steal.toFixed(2)} s of CPU\n`);
      if (steal > 0.5) stolen.push([basename(logBase), steal]);
      if (code !== 0) {
        reject(new Error(`${cmd} exited with ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')} (log ${logBase}.log)`));
        return;
      }
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(timeFile, 'utf8'));
      resolve({ seconds, maxRssMiB: rss ? Number(rss[1]) / 1024 : null, stdout });
    });
  });
}

/** Runs a short untimed helper command; resolves its stdout. */
export function runQuiet(cmd, args, { cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.trim().slice(-500)}`))));
  });
}

/** Empties the page cache so every step reads from disk; returns false when the kernel does not allow it. */
export async function dropCaches() {
  await runQuiet('sync', []);
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Sum of regular file sizes under dir: the data a repository keeps, without directory blocks. */
export async function storedBytes(dir) {
  let total = 0;
  for await (const entry of await opendir(dir)) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += await storedBytes(p);
    else if (entry.isFile()) total += (await lstat(p)).size;
  }
  return total;
}

export async function sha256File(path) {
  const h = createHash('sha256');
  for await (const buf of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(buf);
  return h.digest('hex');
}
