// One real datastore (65536 chunk dirs) shared by the chunk store, datastore and lock cases:
// creating it takes ~2 s, but removing 65536 directories takes ~25 s on this machine's ext4.
import { afterAll, beforeAll, describe } from 'vitest';
import type { Datastore } from '../../src/datastore/datastore.js';
import { chunkStoreCases } from './cases/chunk-store.js';
import { datastoreCases } from './cases/datastore.js';
import { lockCases } from './cases/locks.js';
import { tempStore } from './fixtures.js';

let ds: Datastore | undefined;
let cleanup: (() => void) | undefined;

beforeAll(async () => {
  ({ ds, cleanup } = await tempStore('pbsfs-store-'));
}, 120_000);
afterAll(() => cleanup?.(), 120_000);

const store = (): Datastore => {
  if (!ds) throw new Error('datastore fixture missing');
  return ds;
};

describe('datastore', () => datastoreCases(store));
describe('chunk store', () => chunkStoreCases(store));
describe('locks', () => lockCases(store));
