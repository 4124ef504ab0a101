// BorgBackup from Debian: a fresh repository, --encryption=none (its fastest mode), default chunker and lz4;
// its files cache (on by default, in BORG_BASE_DIR) lets re-backups skip unchanged files.
import { basename, dirname, join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';
import { startForegroundMount } from '../mount-process.mjs';

export function borg(ctx) {
  const repo = join(ctx.workDir, 'borg-repo');
  const env = {
    BORG_REPO: repo,
    BORG_PASSPHRASE: '',
    BORG_BASE_DIR: join(ctx.workDir, 'borg-home'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  };

  /** `borg create` run from the path's directory, so the archive holds just its name. */
  async function create(path, archive, tag) {
    const m = await runMeasured('borg', ['create', `::${archive}`, basename(path)], { cwd: dirname(path), env, logBase: join(ctx.logDir, `borg-backup-${tag}`) });
    return { ...m, ref: { archive, name: basename(path) } };
  }

  /** `borg extract` into targetDir (its working directory); resolves the extracted file or tree. */
  async function extract(ref, targetDir, tag) {
    const m = await runMeasured('borg', ['extract', `::${ref.archive}`], { cwd: targetDir, env, logBase: join(ctx.logDir, `borg-restore-${tag}`) });
    return { ...m, path: join(targetDir, ref.name) };
  }

  return {
    name: 'borg',
    repoDir: repo,
    settings: 'defaults: buzhash chunks (~2 MiB), lz4, files cache; --encryption=none (fastest; no MAC either)',
    async version() {
      return (await runQuiet('borg', ['--version'])).trim();
    },
    async init() {
      await runQuiet('borg', ['init', '--encryption=none'], { env });
    },
    backupFile: (file, tag) => create(file, `image-${tag}`, tag),
    restoreFile: extract,
    backupTree: (dir, tag) => create(dir, tag, tag),
    restoreTree: extract,
    /** `borg mount -f` of the whole repository (foreground, so its pid is the serving process); <mnt>/<archive>/<name>. */
    async mount(mnt, tag) {
      const d = await startForegroundMount('borg', ['mount', '-f', repo, mnt], { env, logBase: join(ctx.logDir, `borg-mount-${tag}`), mnt, readyPath: mnt });
      const at = (ref) => join(mnt, ref.archive, ref.name);
      return { pid: d.pid, image: at, tree: at, unmount: () => d.stop(() => runQuiet('borg', ['umount', mnt], { env })) };
    },
  };
}
