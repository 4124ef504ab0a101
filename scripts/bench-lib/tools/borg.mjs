// BorgBackup from Debian: a fresh repository, --encryption=none (its fastest mode), default chunker and lz4.
import { basename, dirname, join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';

export function borg(ctx) {
  const repo = join(ctx.workDir, 'borg-repo');
  const env = {
    BORG_REPO: repo,
    BORG_PASSPHRASE: '',
    BORG_BASE_DIR: join(ctx.workDir, 'borg-home'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  };

  return {
    name: 'borg',
    repoDir: repo,
    settings: 'defaults: buzhash chunks (~2 MiB), lz4; --encryption=none (fastest; no MAC either)',
    async version() {
      return (await runQuiet('borg', ['--version'])).trim();
    },
    async init() {
      await runQuiet('borg', ['init', '--encryption=none'], { env });
    },
    async backupFile(file, tag) {
      const archive = `image-${tag}`;
      // Run from the file's directory so the archive holds just its name.
      const m = await runMeasured('borg', ['create', `::${archive}`, basename(file)], { cwd: dirname(file), env, logBase: join(ctx.logDir, `borg-backup-${tag}`) });
      return { ...m, ref: { archive, file: basename(file) } };
    },
    async restoreFile(ref, targetDir, tag) {
      const m = await runMeasured('borg', ['extract', `::${ref.archive}`], { cwd: targetDir, env, logBase: join(ctx.logDir, `borg-restore-${tag}`) });
      return { ...m, path: join(targetDir, ref.file) };
    },
  };
}
