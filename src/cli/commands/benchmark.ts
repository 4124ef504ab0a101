// pbsfs benchmark — MB/s of the codec primitives, native and pure-JS side by side.
import type { Command } from 'commander';
import { runBenchmark } from '../../codec/benchmark.js';
import { outputFormatOption, parseFormat, printList } from '../output.js';

export function registerBenchmark(program: Command): void {
  program
    .command('benchmark')
    .description('Measure SHA-256, zstd, AES-256-GCM and chunk-verify speed of both codec backends')
    .option('--seconds <n>', 'time per measurement', '1')
    .addOption(outputFormatOption())
    .action(async (opts: { seconds: string; outputFormat: string }) => {
      const rows = await runBenchmark({ seconds: Number(opts.seconds) });
      const mb = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(1)} MB/s`);
      printList(rows, [
        { header: 'name', value: (r) => r.name },
        { header: 'native', value: (r) => mb(r.native), align: 'right' },
        { header: 'pure JS', value: (r) => mb(r.js), align: 'right' },
      ], parseFormat(opts.outputFormat));
    });
}
