// Messages between the worker pool and its threads, and how PbsErrors and buffers cross that boundary.
import { PbsError, type ErrorCode } from '../errors.js';

export interface TaskRequest {
  id: number;
  task: string;
  args: unknown;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  path?: string;
  digest?: string;
  offset?: number;
}

/** `ready` is sent once the worker has loaded its codec; the rest answer one TaskRequest each. */
export type WorkerMessage =
  | { ready: true }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: WireError };

export function toWireError(e: unknown, task: string): WireError {
  if (e instanceof PbsError) return { code: e.code, message: e.message, path: e.path, digest: e.digest, offset: e.offset };
  return { code: 'EIO', message: `codec task ${task} failed: ${e instanceof Error ? e.message : String(e)}` };
}

export function fromWireError(w: WireError): PbsError {
  // The message already names path/digest/offset; set the fields without formatting them a second time.
  const e = new PbsError(w.code, w.message);
  return Object.assign(e, { path: w.path, digest: w.digest, offset: w.offset });
}

/**
 * Makes every Uint8Array field of `value` the sole view of its ArrayBuffer (copying those that share one,
 * e.g. Node's pooled small Buffers) and lists those buffers, so posting moves them instead of copying.
 */
export function transferable<T extends object>(value: T): { value: T; transfer: ArrayBuffer[] } {
  const out = { ...value } as Record<string, unknown>;
  const transfer: ArrayBuffer[] = [];
  const own = (v: Uint8Array): Uint8Array => {
    const o = v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer ? v : Uint8Array.prototype.slice.call(v);
    if (!transfer.includes(o.buffer as ArrayBuffer)) transfer.push(o.buffer as ArrayBuffer);
    return o;
  };
  for (const [k, v] of Object.entries(out)) {
    if (v instanceof Uint8Array) out[k] = own(v);
  }
  return { value: out as T, transfer };
}
