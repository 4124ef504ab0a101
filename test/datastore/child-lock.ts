// Holds a flock or fcntl lock in a separate `node` process, the way another pbsfs or PBS process would.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ADDON = fileURLToPath(new URL('../../native/build/Release/pbsfs_native.node', import.meta.url));

// The child locks, reports "locked" or "busy <code>", then holds the lock until stdin closes.
const CHILD = `
const m = require(${JSON.stringify(ADDON)});
const fs = require('fs');
const [kind, mode, path] = process.argv.slice(1);
try {
  if (kind === 'flock') {
    const fd = fs.openSync(path, 'r');
    m.flock(fd, (mode === 'exclusive' ? m.LOCK_EX : m.LOCK_SH) | m.LOCK_NB);
  } else {
    const fd = fs.openSync(path, 'r+');
    m.fcntlLock(fd, mode === 'exclusive' ? 'write' : 'read', false);
  }
  process.stdout.write('locked\\n');
} catch (e) {
  process.stdout.write('busy ' + e.code + '\\n');
}
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`;

export interface ChildLock {
  /** 'locked', or 'busy <errno name>' when the child could not get the lock. */
  status: string;
  release(): Promise<void>;
}

export function lockInChild(kind: 'flock' | 'fcntl', mode: 'exclusive' | 'shared', path: string): Promise<ChildLock> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, kind, mode, path], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    let out = '';
    child.on('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      resolve({
        status: out.trim(),
        release: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`lock child exited with ${code} before reporting`));
    });
  });
}
