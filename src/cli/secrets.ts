// Passphrases: from PBS_ENCRYPTION_PASSWORD[_FILE|_FD|_CMD] like proxmox-backup-client, or asked on the terminal.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PbsError } from '../errors.js';

function firstLine(s: string): string {
  return s.split(/\r?\n/)[0] ?? '';
}

/** The first defined of VAR, VAR_FD, VAR_FILE, VAR_CMD (features §3.2: first one wins, first line only). */
export function secretFromEnv(prefix: string): string | undefined {
  const env = process.env;
  if (env[prefix] !== undefined) return firstLine(env[prefix]!);
  if (env[`${prefix}_FD`] !== undefined) return firstLine(readFileSync(Number(env[`${prefix}_FD`]), 'utf8'));
  if (env[`${prefix}_FILE`] !== undefined) return firstLine(readFileSync(env[`${prefix}_FILE`]!, 'utf8'));
  if (env[`${prefix}_CMD`] !== undefined) return firstLine(execSync(env[`${prefix}_CMD`]!, { encoding: 'utf8' }));
  return undefined;
}

/** Reads a line from the terminal without echo. */
export async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new PbsError('EACCES', `${question.replace(/:\s*$/, '')} needed, but there is no terminal; set PBS_ENCRYPTION_PASSWORD`);
  }
  process.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(buf));
        if (ch === '\u0003') return done(() => reject(new PbsError('EINVAL', 'interrupted')));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    const done = (fn: () => void): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      fn();
    };
    stdin.on('data', onData);
  });
}

export async function encryptionPassphrase(purpose: string, confirm = false): Promise<Uint8Array> {
  const fromEnv = secretFromEnv('PBS_ENCRYPTION_PASSWORD');
  if (fromEnv !== undefined) return new TextEncoder().encode(fromEnv);
  const first = await promptHidden(`${purpose}: `);
  if (confirm) {
    const second = await promptHidden('Verify Password: ');
    if (first !== second) throw new PbsError('EINVAL', 'passwords do not match');
  }
  return new TextEncoder().encode(first);
}

export function defaultKeyFile(): string {
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'pbsfs', 'encryption-key.json');
}

export function defaultMasterPubKeyFile(): string {
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'pbsfs', 'master-public.pem');
}
