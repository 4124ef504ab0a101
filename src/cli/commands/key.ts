// pbsfs key create|show|change-passphrase|create-master-key|import-master-pubkey|import-with-master-key|paperkey (spec §6).
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import QRCode from 'qrcode';
import { PbsError, withPath } from '../../errors.js';
import { CryptConfig } from '../../format/crypt-config.js';
import { type Kdf, type KeyConfig, createKeyConfig, decryptKeyConfig, encodeKeyConfig, parseKeyConfig } from '../../format/key-file.js';
import { generateMasterKeyPair, unwrapKeyWithMasterKey } from '../../format/master-key.js';
import { codec } from '../context.js';
import { outputFormatOption, parseFormat, printObject } from '../output.js';
import { defaultKeyFile, defaultMasterPubKeyFile, encryptionPassphrase, promptHidden, secretFromEnv } from '../secrets.js';

const kdfOption = (): Option => new Option('--kdf <kdf>', 'key derivation: scrypt, pbkdf2 or none').choices(['scrypt', 'pbkdf2', 'none']).default('scrypt');

async function readKeyFile(path: string): Promise<KeyConfig> {
  const text = await readFile(path, 'utf8').catch((e) => {
    throw withPath(e, path);
  });
  return parseKeyConfig(text, path);
}

async function writeNewFile(path: string, data: string | Uint8Array, mode = 0o600, overwrite = false): Promise<void> {
  if (!overwrite && existsSync(path)) throw new PbsError('EEXIST', 'refusing to overwrite an existing file', { path });
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data, { mode });
  await chmod(path, mode);
}

/** The new passphrase: PBSFS_NEW_ENCRYPTION_PASSWORD for scripts, else asked twice on the terminal. */
async function newPassphrase(kdf: Kdf): Promise<Uint8Array | undefined> {
  if (kdf === 'none') return undefined;
  const env = secretFromEnv('PBSFS_NEW_ENCRYPTION_PASSWORD') ?? (process.stdin.isTTY ? undefined : secretFromEnv('PBS_ENCRYPTION_PASSWORD'));
  const pass = env !== undefined ? new TextEncoder().encode(env) : await encryptionPassphrase('Encryption Key Password', true);
  if (pass.byteLength < 5) throw new PbsError('EINVAL', 'passphrase must be at least 5 bytes');
  return pass;
}

export function registerKey(program: Command): void {
  const key = program.command('key').description('Manage encryption keys');

  key.command('create [path]')
    .description(`Create a new encryption key (default path ${defaultKeyFile()})`)
    .addOption(kdfOption())
    .option('--hint <text>', 'password hint stored in the key file')
    .action(async (path: string | undefined, opts: { kdf: Kdf; hint?: string }) => {
      const target = path ?? defaultKeyFile();
      if (existsSync(target)) throw new PbsError('EEXIST', 'key file already exists', { path: target });
      const passphrase = await newPassphrase(opts.kdf);
      const cfg = await createKeyConfig(codec(), codec().randomBytes(32), { kdf: opts.kdf, passphrase, hint: opts.hint });
      await writeNewFile(target, encodeKeyConfig(cfg));
      process.stderr.write(`created key ${target} (fingerprint ${cfg.fingerprint})\n`);
    });

  key.command('show [path]')
    .description('Show key file information (no passphrase needed)')
    .addOption(outputFormatOption())
    .action(async (path: string | undefined, opts: { outputFormat: string }) => {
      const target = path ?? defaultKeyFile();
      const cfg = await readKeyFile(target);
      const kdf = cfg.kdf === null ? 'none' : 'Scrypt' in cfg.kdf ? 'scrypt' : 'pbkdf2';
      printObject({ path: target, kdf, created: cfg.created, modified: cfg.modified, fingerprint: cfg.fingerprint, hint: cfg.hint }, parseFormat(opts.outputFormat));
    });

  key.command('change-passphrase [path]')
    .description('Change the passphrase (or KDF) of a key file; the key itself stays the same')
    .addOption(kdfOption())
    .option('--hint <text>', 'new password hint')
    .action(async (path: string | undefined, opts: { kdf: Kdf; hint?: string }) => {
      const target = path ?? defaultKeyFile();
      const cfg = await readKeyFile(target);
      const old = cfg.kdf ? await encryptionPassphrase('Current Encryption Key Password') : undefined;
      const { key: raw, created } = await decryptKeyConfig(codec(), cfg, old, target);
      const passphrase = await newPassphrase(opts.kdf);
      const next = await createKeyConfig(codec(), raw, { kdf: opts.kdf, passphrase, hint: opts.hint ?? cfg.hint, created });
      await writeNewFile(target, encodeKeyConfig(next), 0o600, true);
    });

  key.command('create-master-key')
    .description('Create an RSA master key pair: master-public.pem and master-private.pem (private one passphrase-protected)')
    .option('--bits <n>', 'RSA key size', '4096')
    .option('--output-dir <dir>', 'where to write the PEM files', '.')
    .action(async (opts: { bits: string; outputDir: string }) => {
      const pub = `${opts.outputDir}/master-public.pem`;
      const priv = `${opts.outputDir}/master-private.pem`;
      for (const p of [pub, priv]) if (existsSync(p)) throw new PbsError('EEXIST', 'refusing to overwrite an existing file', { path: p });
      const pass = await newPassphrase('scrypt');
      const { publicPem, privatePem } = generateMasterKeyPair(Number(opts.bits), new TextDecoder().decode(pass));
      await writeNewFile(pub, publicPem, 0o644);
      await writeNewFile(priv, privatePem, 0o600);
      process.stderr.write(`wrote ${pub} and ${priv}; keep the private key offline\n`);
    });

  key.command('import-master-pubkey <pem>')
    .description(`Use this RSA public key for every encrypted backup (copied to ${defaultMasterPubKeyFile()})`)
    .action(async (pem: string) => {
      checkPublicPem(await readFile(pem, 'utf8').catch((e) => {
        throw withPath(e, pem);
      }), pem);
      await mkdir(dirname(defaultMasterPubKeyFile()), { recursive: true });
      await copyFile(pem, defaultMasterPubKeyFile());
    });

  key.command('import-with-master-key <target>')
    .description('Recover an encryption key from a restored rsa-encrypted.key with the master private key')
    .requiredOption('--master-keyfile <pem>', 'master private key (PEM)')
    .requiredOption('--encrypted-keyfile <file>', 'the rsa-encrypted.key restored from a snapshot')
    .addOption(kdfOption())
    .action(async (target: string, opts: { masterKeyfile: string; encryptedKeyfile: string; kdf: Kdf }) => {
      if (existsSync(target)) throw new PbsError('EEXIST', 'refusing to overwrite an existing file', { path: target });
      const pem = await readFile(opts.masterKeyfile, 'utf8').catch((e) => {
        throw withPath(e, opts.masterKeyfile);
      });
      const wrapped = await readFile(opts.encryptedKeyfile).catch((e) => {
        throw withPath(e, opts.encryptedKeyfile);
      });
      const masterPass = pem.includes('ENCRYPTED') ? (secretFromEnv('PBSFS_MASTER_KEY_PASSWORD') ?? (await promptHidden('Master Key Password: '))) : undefined;
      const plain = unwrapKeyWithMasterKey(pem, wrapped, masterPass);
      const { key: raw, created } = await decryptKeyConfig(codec(), plain, undefined, opts.encryptedKeyfile);
      const passphrase = await newPassphrase(opts.kdf);
      const cfg = await createKeyConfig(codec(), raw, { kdf: opts.kdf, passphrase, created });
      await writeNewFile(target, encodeKeyConfig(cfg));
      process.stderr.write(`recovered key ${target} (fingerprint ${new CryptConfig(codec(), raw).fingerprintText()})\n`);
    });

  key.command('paperkey [path]')
    .description('Print the key file as text with a QR code, for printing and offline storage')
    .addOption(new Option('--output-format <format>', 'text or html').choices(['text', 'html']).default('text'))
    .action(async (path: string | undefined, opts: { outputFormat: 'text' | 'html' }) => {
      const target = path ?? defaultKeyFile();
      const cfg = await readKeyFile(target);
      const json = JSON.stringify(cfg, null, 2);
      if (opts.outputFormat === 'html') {
        const svg = await QRCode.toString(json, { type: 'svg', errorCorrectionLevel: 'M' });
        process.stdout.write(`<!DOCTYPE html>\n<html><head><title>pbsfs encryption key</title></head><body>\n<p>fingerprint ${cfg.fingerprint}</p>\n<pre>${escapeHtml(json)}</pre>\n${svg}\n</body></html>\n`);
        return;
      }
      process.stdout.write(`-----BEGIN PROXMOX BACKUP KEY-----\n${json}\n-----END PROXMOX BACKUP KEY-----\n`);
      process.stdout.write(await QRCode.toString(json, { type: 'utf8', errorCorrectionLevel: 'M' }));
    });
}

function checkPublicPem(pem: string, path: string): void {
  if (!pem.includes('PUBLIC KEY')) throw new PbsError('EINVAL', 'not a PEM public key', { path });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
