import { describe, expect, it } from 'vitest';
import { benchmarkData, runBenchmark } from '../../src/codec/benchmark.js';
import { nativeCodec } from '../../src/codec/index.js';

describe('runBenchmark', () => {
  it('reports MB/s for every primitive, null where the js backend has no compressor', async () => {
    const rows = await runBenchmark({ seconds: 0.02 });
    expect(rows.map((r) => r.name)).toEqual([
      'SHA-256',
      'zstd compress (level 1)',
      'zstd decompress',
      'AES-256-GCM encrypt',
      'AES-256-GCM decrypt',
      'chunk verify (decompress + SHA-256)',
    ]);
    for (const r of rows) {
      expect(r.native).toBeGreaterThan(0);
      if (r.name.startsWith('zstd compress')) expect(r.js).toBeNull();
      else expect(r.js).toBeGreaterThan(0);
    }
  });

  it('uses deterministic, compressible but not trivial data', () => {
    const a = benchmarkData();
    expect(a.length).toBe(4 * 1024 * 1024);
    expect(Buffer.compare(a, benchmarkData())).toBe(0);
    const ratio = nativeCodec().zstdCompress(a, 1).length / a.length;
    expect(ratio).toBeGreaterThan(0.2);
    expect(ratio).toBeLessThan(0.9);
  });

  it('rejects a non-positive duration', async () => {
    await expect(runBenchmark({ seconds: 0 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(runBenchmark({ seconds: Number('x') })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
