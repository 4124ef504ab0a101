// A progress bar with rate and ETA on stderr, only when stderr is a terminal (never in pipes, logs or CI).
import cliProgress from 'cli-progress';
import { humanBytes } from './output.js';

export interface Progress {
  update(done: number, total?: number): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

export function byteProgress(label: string, total: number): Progress {
  if (!process.stderr.isTTY) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {doneh} / {totalh} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  bar.start(Math.max(total, 1), 0, { doneh: humanBytes(0), totalh: humanBytes(total), rate: humanBytes(0) });
  return {
    update(done, newTotal) {
      if (newTotal !== undefined && newTotal !== total) {
        total = newTotal;
        bar.setTotal(Math.max(total, 1));
      }
      const secs = Math.max((Date.now() - start) / 1000, 0.001);
      bar.update(done, { doneh: humanBytes(done), totalh: humanBytes(total), rate: humanBytes(done / secs) });
    },
    stop() {
      bar.stop();
    },
  };
}
