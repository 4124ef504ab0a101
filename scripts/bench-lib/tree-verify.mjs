// Checking a restored tree against its source: contents with `diff -r --no-dereference`, then every entry's
// type, permission bits, owner, group, size and mtime (nanoseconds) by lstat.
import { spawn } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { listTree } from './tree.mjs';

const SHOWN = 5;

/** Resolves null when `diff -r --no-dereference` finds the trees equal, else the start of its report. */
export function diffTrees(source, restored) {
  return new Promise((resolve, reject) => {
    const child = spawn('diff', ['-r', '--no-dereference', '--', source, restored], { stdio: ['ignore', 'pipe', 'pipe'] });
    let report = '';
    const keep = (d) => {
      if (report.length < 2000) report += d.toString();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0 ? null : `diff exited with ${code}: ${report.trim().split('\n').slice(0, SHOWN).join(' | ')}`));
  });
}

function describe(st) {
  return `mode ${st.mode.toString(8)} uid ${st.uid} gid ${st.gid} size ${st.isFile() ? st.size : '-'} mtime ${st.mtimeNs}`;
}

/** Compares the metadata of every source entry (and the root) with its restored twin; resolves the mismatches. */
export async function compareMetadata(source, restored) {
  const paths = ['', ...(await listTree(source)).map((e) => e.path)];
  const mismatches = [];
  let count = 0;
  for (const p of paths) {
    const a = await lstat(join(source, p), { bigint: true });
    const b = await lstat(join(restored, p), { bigint: true }).catch(() => null);
    const same =
      b !== null &&
      a.mode === b.mode &&
      a.uid === b.uid &&
      a.gid === b.gid &&
      (!a.isFile() || a.size === b.size) &&
      a.mtimeNs === b.mtimeNs;
    if (same) continue;
    count++;
    if (mismatches.length < SHOWN) mismatches.push(`/${p}: source ${describe(a)}, restored ${b ? describe(b) : 'missing'}`);
  }
  return { checked: paths.length, count, shown: mismatches };
}

/** Resolves a list of problems; empty when the restored tree matches the source. */
export async function verifyRestore(source, restored) {
  const problems = [];
  const diff = await diffTrees(source, restored);
  if (diff) problems.push(diff);
  const meta = await compareMetadata(source, restored);
  if (meta.count) problems.push(`${meta.count} of ${meta.checked} entries differ in metadata: ${meta.shown.join('; ')}`);
  return { problems, checked: meta.checked };
}
