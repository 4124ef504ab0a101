// Small source trees for file-archive tests, and an exact comparison of two trees' metadata and contents.
import { createHash } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from './images.js';

/** A tree with nested dirs, many small files, a large file, empty file, symlink, hardlinks and odd names. */
export function makeTree(root: string, files = 300): void {
  mkdirSync(join(root, 'etc', 'conf.d'), { recursive: true });
  mkdirSync(join(root, 'var', 'log'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'));
  for (let i = 0; i < files; i++) writeFileSync(join(root, 'etc', 'conf.d', `file-${i}.conf`), `setting_${i} = ${'x'.repeat(i % 97)}\n`);
  writeFileSync(join(root, 'var', 'log', 'big.log'), prng('tree-big', 3 * 1024 * 1024 + 17));
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'Grüße ünïcödé.txt'), 'utf-8 name\n');
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  linkSync(join(root, 'etc', 'passwd'), join(root, 'var', 'passwd-link'));
  symlinkSync('../etc/passwd', join(root, 'var', 'sym'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  utimesSync(join(root, 'etc', 'passwd'), 1_600_000_000.123456, 1_500_000_000.987654);
}

/** Every entry below root: type, mode, owner, size, mtime (ns), link target, content hash, hardlink group. */
export function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<bigint, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = `${rel}/${name}`;
      const st = lstatSync(p, { bigint: true });
      let extra = '';
      if (st.isSymbolicLink()) extra = `-> ${readlinkSync(p)}`;
      else if (st.isFile()) {
        extra = createHash('sha256').update(readFileSync(p)).digest('hex');
        if (st.nlink > 1n) {
          const first = inodes.get(st.ino);
          if (first) extra += ` link-of ${first}`;
          else inodes.set(st.ino, r);
        }
      }
      const mtime = st.isSymbolicLink() ? '' : String(st.mtimeNs);
      out[r] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${mtime} ${extra}`;
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}
