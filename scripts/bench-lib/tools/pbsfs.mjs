// pbsfs through its CLI (dist/src/cli/main.js): datastore "bench", group host/bench for the image (archive disk.img),
// host/tree for trees (archive share.pxar); legacy-mode tree backups go to their own datastore "bench-legacy".
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';

export function pbsfs(ctx) {
  const store = join(ctx.workDir, 'pbsfs-store');
  const legacyStore = join(ctx.workDir, 'pbsfs-store-legacy');
  const cli = join(ctx.root, 'dist/src/cli/main.js');
  const env = { PBSFS_CONFIG_DIR: join(ctx.workDir, 'etc') };
  const run = (args) => runQuiet(process.execPath, [cli, ...args], { env });
  const snapshots = async (name) => JSON.parse(await run(['snapshot', 'list', '--store', name, '--output-format', 'json'])).map((s) => s.snapshot);

  /** One `pbsfs backup`; resolves the measurement and the one snapshot it added. */
  async function backup(storeName, spec, extra, tag) {
    const before = new Set(await snapshots(storeName));
    const m = await runMeasured(process.execPath, [cli, 'backup', spec, '--store', storeName, '--backup-type', 'host', ...extra], {
      env,
      logBase: join(ctx.logDir, `pbsfs-backup-${tag}`),
    });
    const added = (await snapshots(storeName)).filter((s) => !before.has(s));
    if (added.length !== 1) throw new Error(`expected one new snapshot after backup, found ${added.length}`);
    // Snapshot times have one-second resolution: keep the next backup out of this second.
    await new Promise((r) => setTimeout(r, 1100));
    return { ...m, ref: added[0] };
  }

  return {
    name: 'pbsfs',
    repoDir: store,
    /** Trees can be copied into its mount (mount scenario, "tree in"). */
    writesTrees: true,
    cli,
    settings:
      'unencrypted, zstd level 1 (the PBS client defaults); image: fixed 4 MiB chunks; ' +
      'tree: buzhash chunks (4 MiB average), --change-detection-mode metadata (split .mpxar/.ppxar)',
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
      return backup('bench', `disk.img:${file}`, ['--backup-id', 'bench'], tag);
    },
    async restoreFile(ref, targetDir, tag) {
      const target = join(targetDir, 'disk.img');
      const m = await runMeasured(process.execPath, [cli, 'restore', ref, 'disk.img', target, '--store', 'bench'], {
        env,
        logBase: join(ctx.logDir, `pbsfs-restore-${tag}`),
      });
      return { ...m, path: target };
    },
    async backupTree(dir, tag) {
      return backup('bench', `share.pxar:${dir}`, ['--backup-id', 'tree', '--change-detection-mode', 'metadata'], tag);
    },
    /** A first backup in legacy mode (one .pxar plus catalog) into an empty datastore of its own. */
    async backupTreeLegacy(dir, tag) {
      await run(['datastore', 'create', 'bench-legacy', legacyStore]);
      return backup('bench-legacy', `share.pxar:${dir}`, ['--backup-id', 'tree-legacy', '--change-detection-mode', 'legacy'], tag);
    },
    /** Restores into targetDir itself; resolves the restored tree's root. */
    async restoreTree(ref, targetDir, tag) {
      const m = await runMeasured(process.execPath, [cli, 'restore', ref, 'share.pxar', targetDir, '--store', 'bench'], {
        env,
        logBase: join(ctx.logDir, `pbsfs-restore-${tag}`),
      });
      return { ...m, path: targetDir };
    },
    /** `pbsfs mount --daemon` of the whole datastore; the archives show up as <mnt>/bench/<snapshot>/<archive>. */
    async mount(mnt, tag) {
      const pidFile = join(ctx.workDir, `pbsfs-mount-${tag}.pid`);
      const logFile = join(ctx.logDir, `pbsfs-mount-${tag}.log`);
      await run(['mount', mnt, '--store', 'bench', '--daemon', '--pid-file', pidFile, '--log-file', logFile]);
      return {
        pid: Number(readFileSync(pidFile, 'utf8').trim()),
        image: (ref) => join(mnt, 'bench', ref, 'disk.img'),
        tree: (ref) => join(mnt, 'bench', ref, 'share.pxar'),
        /** Where a tree copied in becomes a new snapshot's share.pxar (a *.pxar directory in a group). */
        newTree: () => join(mnt, 'bench', 'host', 'tree-write', 'share.pxar'),
        sealedTree: () => join(mnt, 'bench', 'host', 'tree-write', 'latest', 'share.pxar'),
        /** A group where a copied-in file becomes a new snapshot with one image archive, finished at close. */
        newImageGroup: () => join(mnt, 'bench', 'vm', 'image-write'),
        unmount: () => run(['umount', mnt]),
      };
    },
  };
}
