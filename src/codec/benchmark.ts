// `pbsfs benchmark`: MB/s of each codec primitive on a 4 MiB chunk, native and pure JS side by side.
import { PbsError } from '../errors.js';
import type { Codec } from './codec.js';
import { jsCodec, nativeCodec } from './index.js';

export interface BenchRow {
  name: string;
  /** MB/s (10^6 bytes per second), or null where the backend lacks the primitive. */
  native: number | null;
  js: number | null;
}

const CHUNK = 4 * 1024 * 1024;

/** Deterministic 4 MiB that compresses roughly like real data: 6-bit xorshift noise with repeated runs. */
export function benchmarkData(): Uint8Array {
  const out = new Uint8Array(CHUNK);
  let x = 0x9e3779b9;
  for (let i = 0; i < CHUNK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (i & 0x1000) === 0 ? (x >>> 0) & 0x3f : out[i - 0x1000]; // every other 4 KiB repeats the one before
  }
  return out;
}

async function measure(bytes: number, seconds: number, op: () => void): Promise<number> {
  await new Promise((r) => setImmediate(r)); // let the event loop (progress output) run between measurements
  op(); // warm-up
  const start = performance.now();
  let n = 0;
  let elapsed = 0;
  do {
    op();
    n++;
    elapsed = (performance.now() - start) / 1000;
  } while (elapsed < seconds);
  return (bytes * n) / 1e6 / elapsed;
}

function nativeOrNull(): Codec | null {
  try {
    return nativeCodec();
  } catch (e) {
    if (e instanceof PbsError && e.code === 'EUNSUPPORTED') return null;
    throw e;
  }
}

export async function runBenchmark(opts: { seconds?: number } = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 1;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new PbsError('EINVAL', `benchmark seconds must be a positive number, got ${seconds}`);
  const data = benchmarkData();
  const native = nativeOrNull();
  const js = jsCodec();
  const key = data.slice(0, 32);
  const iv = data.slice(32, 48);
  // The pure-JS backend cannot compress; it decodes libzstd's output when that is available.
  const compressed = native ? native.zstdCompress(data, 1) : null;
  const digest = native ? native.sha256(data) : js.sha256(data);
  const verify = (c: Codec, z: Uint8Array): void => {
    if (!c.sha256(c.zstdDecompress(z, CHUNK)).every((b, i) => b === digest[i])) {
      throw new PbsError('ECORRUPT', `benchmark: ${c.name} chunk verify produced a wrong digest`);
    }
  };

  type Op = (c: Codec) => (() => void) | null;
  const ops: [string, Op][] = [
    ['SHA-256', (c) => () => c.sha256(data)],
    ['zstd compress (level 1)', (c) => (c.name === 'js' ? null : () => c.zstdCompress(data, 1))],
    ['zstd decompress', (c) => (compressed ? () => c.zstdDecompress(compressed, CHUNK) : null)],
    ['AES-256-GCM encrypt', (c) => () => c.aesGcmEncrypt(key, iv, data)],
    [
      'AES-256-GCM decrypt',
      (c) => {
        const { ciphertext, tag } = c.aesGcmEncrypt(key, iv, data);
        return () => c.aesGcmDecrypt(key, iv, ciphertext, tag);
      },
    ],
    ['chunk verify (decompress + SHA-256)', (c) => (compressed ? () => verify(c, compressed) : null)],
  ];

  const rows: BenchRow[] = [];
  for (const [name, op] of ops) {
    const nOp = native ? op(native) : null;
    const jOp = op(js);
    rows.push({
      name,
      native: nOp ? await measure(CHUNK, seconds, nOp) : null,
      js: jOp ? await measure(CHUNK, seconds, jOp) : null,
    });
  }
  return rows;
}
