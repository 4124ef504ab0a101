// What every command needs: the datastore by name, the codec and worker pool, and keys.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Codec } from '../codec/codec.js';
import { getCodec } from '../codec/index.js';
import { WorkerPool, defaultPoolSize } from '../codec/worker-pool.js';
import { lookupDatastore } from '../datastore/config.js';
import { Datastore } from '../datastore/datastore.js';
import { PbsError, withPath } from '../errors.js';
import { CryptConfig } from '../format/crypt-config.js';
import { decryptKeyConfig, parseKeyConfig } from '../format/key-file.js';
import { nativeAddon } from '../native.js';
import { defaultKeyFile, encryptionPassphrase } from './secrets.js';

let pool: WorkerPool | undefined;

export function codec(): Codec {
  return getCodec();
}

/**
 * For tree backups, restores and the mount daemon, before the worker pool starts: multi-MiB chunk buffers freed on many threads go
 * back to the system instead of staying in per-thread malloc arenas (native/src/malloc-tuning.c), which keeps peak
 * RSS ~60–100 MiB lower. Image archives gain little RSS from it and pay page faults, so they do without. The hot
 * paths reuse their chunk buffers (src/io/chunk-buffers.ts), so few of those mappings are made.
 */
export function tuneMallocForTrees(): void {
  nativeAddon<{ tuneMalloc(): boolean }>().tuneMalloc();
}

/** The command's worker pool; `mainThreadBusy` sizes it for commands whose own thread is busy (see defaultPoolSize). */
export function workerPool(opts: { mainThreadBusy?: boolean } = {}): WorkerPool {
  pool ??= new WorkerPool({ size: defaultPoolSize(opts.mainThreadBusy) });
  return pool;
}

export async function closeRuntime(): Promise<void> {
  await pool?.close();
  pool = undefined;
}

export type Access = 'read' | 'write';

/** Opens a configured datastore, honouring its maintenance mode (features §2.10). */
export async function openStore(name: string | undefined, access: Access = 'read'): Promise<Datastore> {
  const storeName = name ?? process.env.PBSFS_STORE;
  if (!storeName) throw new PbsError('EINVAL', 'no datastore given: use --store NAME (or set PBSFS_STORE)');
  const ds = await Datastore.open(await lookupDatastore(storeName));
  ds.checkMaintenance(access);
  return ds;
}

/** Loads a key file (asking for its passphrase if it has one) as a CryptConfig. */
export async function loadCryptConfig(keyFile: string): Promise<CryptConfig> {
  const text = await readFile(keyFile, 'utf8').catch((e) => {
    throw withPath(e, keyFile);
  });
  const cfg = parseKeyConfig(text, keyFile);
  const passphrase = cfg.kdf ? await encryptionPassphrase('Encryption Key Password') : undefined;
  const { key } = await decryptKeyConfig(codec(), cfg, passphrase, keyFile);
  return new CryptConfig(codec(), key);
}

/** The key for a command: --keyfile, else the default key file if it exists and a key is wanted. */
export async function resolveKey(opts: { keyfile?: string; cryptMode?: string }): Promise<CryptConfig | undefined> {
  if (opts.keyfile) return loadCryptConfig(opts.keyfile);
  if (opts.cryptMode && opts.cryptMode !== 'none') {
    const def = defaultKeyFile();
    if (existsSync(def)) return loadCryptConfig(def);
    throw new PbsError('EACCES', `crypt mode '${opts.cryptMode}' needs a key: pass --keyfile or create ${def} with 'pbsfs key create'`);
  }
  return undefined;
}
