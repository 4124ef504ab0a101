// pbsfs through its CLI (dist/src/cli/main.js): one datastore, group host/bench, image archive disk.img.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';

export function pbsfs(ctx) {
  const store = join(ctx.workDir, 'pbsfs-store');
  const cli = join(ctx.root, 'dist/src/cli/main.js');
  const env = { PBSFS_CONFIG_DIR: join(ctx.workDir, 'etc') };
  const run = (args) => runQuiet(process.execPath, [cli, ...args], { env });
  const snapshots = async () => JSON.parse(await run(['snapshot', 'list', '--store', 'bench', '--output-format', 'json'])).map((s) => s.snapshot);

  return {
    name: 'pbsfs',
    repoDir: store,
    settings: 'fixed 4 MiB chunks, zstd level 1, unencrypted (the PBS client defaults for an image)',
    async version() {
      if (!existsSync(cli)) throw new Error(`${cli} is missing: build first (scripts/setup)`);
      const rev = await runQuiet('git', ['rev-parse', '--short', 'HEAD'], { cwd: ctx.root }).catch(() => '');
      return `pbsfs ${rev.trim() || '(no git)'} on node ${process.versions.node}`;
    },
    async init() {
      await mkdir(env.PBSFS_CONFIG_DIR, { recursive: true });
      await run(['datastore', 'create', 'bench', store]);
    },
    async backupFile(file, tag) {
      const before = new Set(await snapshots());
      const m = await runMeasured(process.execPath, [cli, 'backup', `disk.img:${file}`, '--store', 'bench', '--backup-type', 'host', '--backup-id', 'bench'], {
        env,
        logBase: join(ctx.logDir, `pbsfs-backup-${tag}`),
      });
      const added = (await snapshots()).filter((s) => !before.has(s));
      if (added.length !== 1) throw new Error(`expected one new snapshot after backup, found ${added.length}`);
      // Snapshot times have one-second resolution: keep the next backup out of this second.
      await new Promise((r) => setTimeout(r, 1100));
      return { ...m, ref: added[0] };
    },
    async restoreFile(ref, targetDir, tag) {
      const target = join(targetDir, 'disk.img');
      const m = await runMeasured(process.execPath, [cli, 'restore', ref, 'disk.img', target, '--store', 'bench'], {
        env,
        logBase: join(ctx.logDir, `pbsfs-restore-${tag}`),
      });
      return { ...m, path: target };
    },
  };
}
