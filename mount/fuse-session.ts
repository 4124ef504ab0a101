// One FUSE mount through fuse-native: options, stale-mount replacement, clean unmount, and noticing an
// unmount done from outside (fusermount -u) so the daemon ends with it.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import Fuse, { type FuseOps } from 'fuse-native';
import { PbsError } from '../src/errors.js';
import type { Logger } from './log.js';

const run = promisify(execFile);
const ERANGE = -34;
const ENODATA = -61;
const POLL_MS = 2000;

/** getxattr/listxattr that answer ERANGE for a too-small buffer (the binding would overrun it) and report exact sizes. */
class CheckedFuse extends Fuse {
  protected override _op_getxattr(signal: (code: number, ...rest: unknown[]) => void, path: string, name: string, valueBuf: Buffer, position: number): void {
    this.ops.getxattr!(path, name, position, (err, value) => {
      if (err) return signal(err, valueBuf.buffer);
      if (!value) return signal(ENODATA, valueBuf.buffer);
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer);
      if (value.length > valueBuf.length) return signal(ERANGE, valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }

  protected override _op_listxattr(signal: (code: number, ...rest: unknown[]) => void, path: string, listBuf: Buffer): void {
    this.ops.listxattr!(path, (err, list) => {
      if (err || !list) return signal(err || ENODATA, listBuf.buffer);
      const bytes = Buffer.concat(list.map((n) => Buffer.from(`${n}\0`, 'utf8')));
      if (listBuf.length === 0) return signal(bytes.length, listBuf.buffer);
      if (bytes.length > listBuf.length) return signal(ERANGE, listBuf.buffer);
      bytes.copy(listBuf);
      return signal(bytes.length, listBuf.buffer);
    });
  }
}

export interface SessionOptions {
  mountpoint: string;
  ops: FuseOps;
  log: Logger;
  allowOther?: boolean;
  /** Kernel attribute/entry cache lifetime in seconds (one value for the whole mount in libfuse 2). */
  cacheSeconds?: number;
  /** The kernel refuses every change (EROFS) before it reaches the daemon. */
  readOnly?: boolean;
  /** Called once when the mount is gone, whoever unmounted it. */
  onGone?: () => void;
}

/** A previous daemon that died leaves "transport endpoint is not connected": lazily unmount it. */
export async function clearStaleMount(mountpoint: string, log: Logger): Promise<void> {
  try {
    const [st, parent] = await Promise.all([stat(mountpoint), stat(dirname(mountpoint))]);
    if (!st.isDirectory()) throw new PbsError('EINVAL', 'mount point is not a directory', { path: mountpoint });
    if (st.dev !== parent.dev) throw new PbsError('EBUSY', 'something is already mounted here (pbsfs umount it first)', { path: mountpoint });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTCONN') {
      if (code === 'ENOENT') throw new PbsError('ENOENT', 'mount point does not exist', { path: mountpoint });
      throw e;
    }
    log.info(`replacing stale mount at ${mountpoint}`);
    await run('fusermount', ['-uz', mountpoint]).catch((err: Error) => {
      throw new PbsError('EBUSY', `cannot remove the stale mount: ${err.message}`, { path: mountpoint });
    });
  }
}

export class FuseSession {
  private poll?: NodeJS.Timeout;
  private gone = false;

  private constructor(
    readonly mountpoint: string,
    private readonly fuse: Fuse,
    private readonly opts: SessionOptions,
  ) {}

  static async mount(opts: SessionOptions): Promise<FuseSession> {
    const mountpoint = resolve(opts.mountpoint);
    await clearStaleMount(mountpoint, opts.log);
    const secs = opts.cacheSeconds ?? 1;
    const fuse = new CheckedFuse(mountpoint, opts.ops, {
      maxRead: 1048576,
      kernelCache: true,
      autoUnmount: true,
      allowOther: opts.allowOther,
      defaultPermissions: true,
      entryTimeout: secs,
      attrTimeout: secs,
      // fuse-native has no option for these; its comma-joined option string carries them (inode numbers for
      // hardlinks; a read-only mount, or writes of up to 1 MiB per request instead of 4 KiB).
      fsname: `pbsfs,use_ino,${opts.readOnly === false ? 'big_writes,max_write=1048576' : 'ro'}`,
      timeout: 60_000,
    });
    await new Promise<void>((res, rej) =>
      fuse.mount((err) => (err ? rej(new PbsError('EIO', `mount failed: ${err.message}`, { path: mountpoint, cause: err })) : res())),
    );
    const session = new FuseSession(mountpoint, fuse, opts);
    const dev = (await stat(mountpoint)).dev;
    session.poll = setInterval(() => {
      stat(mountpoint).then(
        (st) => st.dev !== dev && session.markGone(),
        () => session.markGone(),
      );
    }, POLL_MS);
    session.poll.unref();
    opts.log.info(`mounted at ${mountpoint}`);
    return session;
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    clearInterval(this.poll);
    this.opts.log.info(`unmounted ${this.mountpoint}`);
    this.opts.onGone?.();
  }

  async unmount(): Promise<void> {
    if (this.gone) return;
    clearInterval(this.poll);
    await new Promise<void>((res, rej) =>
      this.fuse.unmount((err) => (err ? rej(new PbsError('EBUSY', `unmount failed: ${err.message}`, { path: this.mountpoint, cause: err })) : res())),
    );
    this.markGone();
  }
}
