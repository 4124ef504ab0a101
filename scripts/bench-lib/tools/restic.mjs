// restic from Debian: a fresh repository (format v2, compression auto), password from RESTIC_PASSWORD.
import { join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';

export function restic(ctx) {
  const repo = join(ctx.workDir, 'restic-repo');
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(ctx.workDir, 'restic-cache') };

  return {
    name: 'restic',
    repoDir: repo,
    settings: 'defaults: content-defined chunks (~1 MiB), compression auto, AES-256-CTR + Poly1305 (always on)',
    async version() {
      return (await runQuiet('restic', ['version'])).trim();
    },
    async init() {
      await runQuiet('restic', ['init'], { env });
    },
    async backupFile(file, tag) {
      const m = await runMeasured('restic', ['backup', '--json', '--host', 'bench', file], { env, logBase: join(ctx.logDir, `restic-backup-${tag}`) });
      const summary = m.stdout
        .split('\n')
        .filter((l) => l.includes('"summary"'))
        .map((l) => JSON.parse(l))
        .find((o) => o.message_type === 'summary');
      if (!summary?.snapshot_id) throw new Error('restic backup printed no snapshot id');
      return { ...m, ref: { id: summary.snapshot_id, file } };
    },
    async restoreFile(ref, targetDir, tag) {
      const m = await runMeasured('restic', ['restore', ref.id, '--target', targetDir], { env, logBase: join(ctx.logDir, `restic-restore-${tag}`) });
      // restic recreates the file's absolute path below the target.
      return { ...m, path: join(targetDir, ref.file) };
    },
  };
}
