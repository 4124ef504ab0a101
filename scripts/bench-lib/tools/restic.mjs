// restic from Debian: a fresh repository (format v2, compression auto), password from RESTIC_PASSWORD.
// Backups name the host "bench" so a re-backup of the same path finds its parent snapshot (restic's change detection).
import { join } from 'node:path';
import { runMeasured, runQuiet } from '../measure.mjs';
import { startForegroundMount } from '../mount-process.mjs';

export function restic(ctx) {
  const repo = join(ctx.workDir, 'restic-repo');
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(ctx.workDir, 'restic-cache') };

  /** One `restic backup` of an absolute path; resolves the measurement and the snapshot id. */
  async function backup(path, tag) {
    const m = await runMeasured('restic', ['backup', '--json', '--host', 'bench', path], { env, logBase: join(ctx.logDir, `restic-backup-${tag}`) });
    const summary = m.stdout
      .split('\n')
      .filter((l) => l.includes('"summary"'))
      .map((l) => JSON.parse(l))
      .find((o) => o.message_type === 'summary');
    if (!summary?.snapshot_id) throw new Error('restic backup printed no snapshot id');
    return { ...m, ref: { id: summary.snapshot_id, path } };
  }

  /** `restic restore` recreates the backed-up absolute path below the target; resolves that path. */
  async function restore(ref, targetDir, tag) {
    const m = await runMeasured('restic', ['restore', ref.id, '--target', targetDir], { env, logBase: join(ctx.logDir, `restic-restore-${tag}`) });
    return { ...m, path: join(targetDir, ref.path) };
  }

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
    backupFile: backup,
    restoreFile: restore,
    backupTree: backup,
    restoreTree: restore,
    /** `restic mount` in the background; a snapshot's files sit under <mnt>/ids/<short id>/<absolute path>. */
    async mount(mnt, tag) {
      const d = await startForegroundMount('restic', ['mount', mnt], { env, logBase: join(ctx.logDir, `restic-mount-${tag}`), mnt, readyPath: join(mnt, 'snapshots') });
      const at = (ref) => join(mnt, 'ids', ref.id.slice(0, 8), ref.path);
      return { pid: d.pid, image: at, tree: at, unmount: () => d.stop(() => runQuiet('fusermount', ['-u', mnt])) };
    },
  };
}
