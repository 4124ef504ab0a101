// Loads the N-API addon built from native/ (`npm run build:native`): the POSIX calls Node does not expose.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PbsError } from './errors.js';

const ADDON = join('native', 'build', 'Release', 'pbsfs_native.node');
let loaded: unknown;

/** The package root above this module (src/ or dist/src/) that holds the built addon. */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** The addon's exports; each user declares the part it calls (see datastore/native-locks.ts, fs/native-fs.ts). */
export function nativeAddon<T>(): T {
  if (loaded === undefined) {
    const path = findAddon();
    if (!path) throw new PbsError('EUNSUPPORTED', `native addon ${ADDON} is not built (run: npm run build:native)`);
    loaded = createRequire(import.meta.url)(path);
  }
  return loaded as T;
}
