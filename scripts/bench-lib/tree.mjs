// The tree scenario's source: a `cp -a` copy of a system directory, its size, and the deterministic 1% touch.
import { appendFile, lstat, opendir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { runQuiet } from './measure.mjs';

/** Every entry below dir (not dir itself) as a path relative to it, sorted by code unit so the order never varies. */
export async function listTree(dir) {
  const out = [];
  async function walk(rel) {
    for await (const entry of await opendir(join(dir, rel))) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      out.push({ path: p, dirent: entry });
      if (entry.isDirectory()) await walk(p);
    }
  }
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Entry counts and apparent bytes of regular files: what the description reports. */
export async function describeTree(dir) {
  const entries = await listTree(dir);
  let files = 0;
  let bytes = 0;
  for (const { path, dirent } of entries) {
    if (!dirent.isFile()) continue;
    files++;
    bytes += (await lstat(join(dir, path))).size;
  }
  return { entries: entries.length + 1, files, bytes };
}

/** Copies source to target with every attribute `cp -a` keeps (modes, owners, times, links, xattrs). */
export async function copyTree(source, target) {
  await runQuiet('cp', ['-a', '--', source, target]);
}

/**
 * Touches every 100th regular file (in sorted order): appends one newline and sets its mtime to one hour after the
 * old one, in whole seconds. Same files and same result on every run; returns how many were touched.
 */
export async function touchOnePercent(dir) {
  const files = (await listTree(dir)).filter((e) => e.dirent.isFile()).map((e) => join(dir, e.path));
  let touched = 0;
  for (let i = 99; i < files.length; i += 100) {
    const st = await lstat(files[i], { bigint: true });
    const mtime = Number(st.mtimeNs / 1_000_000_000n) + 3600;
    await appendFile(files[i], '\n');
    await utimes(files[i], mtime, mtime);
    touched++;
  }
  return { touched, files: files.length };
}
