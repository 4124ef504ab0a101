// Daemon log lines: timestamped, written asynchronously (never a sync write in the daemon).
import { createWriteStream, type WriteStream } from 'node:fs';

export interface Logger {
  info(msg: string): void;
  error(msg: string): void;
  close(): Promise<void>;
}

/** Appends to `file`, or writes to stderr when no file is given. */
export function openLogger(file?: string): Logger {
  const out: NodeJS.WritableStream | WriteStream = file ? createWriteStream(file, { flags: 'a', mode: 0o640 }) : process.stderr;
  const line = (level: string, msg: string): void => {
    out.write(`${new Date().toISOString()} ${level} ${msg}\n`);
  };
  return {
    info: (msg) => line('info', msg),
    error: (msg) => line('error', msg),
    close: () =>
      file
        ? new Promise<void>((resolve) => (out as WriteStream).end(resolve))
        : Promise.resolve(),
  };
}
