// `NAME.TYPE:SOURCE` backup specifications, as proxmox-backup-client takes them (features §3.4).
import { PbsError } from '../errors.js';
import { validateArchiveName } from '../datastore/names.js';

export type ArchiveKind = 'img' | 'conf' | 'log' | 'pxar';

export interface BackupSpec {
  /** Archive name as the user wrote it, e.g. `disk.img`. */
  name: string;
  kind: ArchiveKind;
  source: string;
  /** Stored file name, e.g. `disk.img.fidx`, `qemu-server.conf.blob`. */
  fileName: string;
}

const SPEC = /^([A-Za-z0-9_][A-Za-z0-9._-]*)\.(img|conf|log|pxar):(.+)$/s;

export function parseBackupSpec(text: string): BackupSpec {
  const m = SPEC.exec(text);
  if (!m) {
    throw new PbsError('EINVAL', `bad backup spec '${text}': expected NAME.img:FILE, NAME.conf:FILE, NAME.log:FILE or NAME.pxar:DIR`);
  }
  const [, base, kind, source] = m as unknown as [string, string, ArchiveKind, string];
  const name = `${base}.${kind}`;
  validateArchiveName(name);
  const fileName = kind === 'img' ? `${name}.fidx` : kind === 'pxar' ? `${name}.didx` : `${name}.blob`;
  return { name, kind, source, fileName };
}
