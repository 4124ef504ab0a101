// The work a codec worker does: encode a chunk into a blob, decode and verify one, hash bytes.
import { decodeBlob, encodeBlob, parseBlobHeader } from '../format/blob.js';
import { PbsError } from '../errors.js';
import { digestToHex } from '../types.js';
import type { Codec } from './codec.js';
import { toWireError, transferable, type TaskRequest, type WorkerMessage } from './worker-protocol.js';

export interface EncodeChunkArgs {
  data: Uint8Array;
  compress: boolean;
  cryptKey?: Uint8Array;
  /** Send the data's buffer back for reuse (otherwise it is left to this thread's GC). */
  returnData?: boolean;
}

export interface DecodeChunkArgs {
  blob: Uint8Array;
  cryptKey?: Uint8Array;
  /** When given, the decoded data must hash to it (spec §2). */
  expectedDigest?: Uint8Array;
  /** id_key: appended to the data before hashing, for encrypted blobs only (spec §2). */
  digestKey?: Uint8Array;
  maxSize: number;
}

export interface TaskTypes {
  encodeChunk: { args: EncodeChunkArgs; result: { blob: Uint8Array; data?: Uint8Array } };
  decodeChunk: { args: DecodeChunkArgs; result: { data: Uint8Array } };
  sha256: { args: { data: Uint8Array }; result: { digest: Uint8Array } };
  digestChunk: { args: DigestChunkArgs; result: { digest: Uint8Array; data: Uint8Array } };
}


export interface DigestChunkArgs {
  data: Uint8Array;
  /** id_key for encrypted backups: the digest is SHA-256(data || id_key) (spec §2). */
  digestKey?: Uint8Array;
}
export type TaskName = keyof TaskTypes;
export type TaskArgs<K extends TaskName> = TaskTypes[K]['args'];
export type TaskResult<K extends TaskName> = TaskTypes[K]['result'];

/** Encodes a chunk; with returnData its buffer travels back whole (as digestChunk's does), for the caller to reuse. */
export function encodeChunk(codec: Codec, a: EncodeChunkArgs): { blob: Uint8Array; data?: Uint8Array } {
  const blob = encodeBlob(codec, a.data, { compress: a.compress, cryptKey: a.cryptKey });
  if (!a.returnData) return { blob };
  return { blob, data: a.data.byteOffset === 0 ? new Uint8Array(a.data.buffer as ArrayBuffer) : a.data };
}

/** Decodes a chunk blob and checks its digest: SHA-256(data), or SHA-256(data || id_key) when encrypted. */
export function decodeChunk(codec: Codec, a: DecodeChunkArgs): { data: Uint8Array } {
  const digest = a.expectedDigest ? digestToHex(a.expectedDigest) : undefined;
  const data = decodeBlob(codec, a.blob, { cryptKey: a.cryptKey, maxSize: a.maxSize, digest });
  if (a.expectedDigest) {
    const encrypted = parseBlobHeader(a.blob, { digest }).encrypted;
    if (encrypted && !a.digestKey) throw new PbsError('EINVAL', 'verifying an encrypted chunk needs the id_key (digestKey)', { digest });
    const actual = encrypted ? codec.sha256Parts([data, a.digestKey!]) : codec.sha256(data);
    if (digestToHex(actual) !== digest) {
      throw new PbsError('ECORRUPT', `chunk content hashes to ${digestToHex(actual)}, not to its name`, { digest });
    }
  }
  return { data };
}

export function sha256(codec: Codec, a: { data: Uint8Array }): { digest: Uint8Array } {
  return { digest: codec.sha256(a.data) };
}

/**
 * The chunk digest, computed off the main thread. The data travels back so the caller can still store it: as the
 * whole ArrayBuffer it came in (the caller knows the size and moved that buffer here), so returning it copies nothing.
 */
export function digestChunk(codec: Codec, a: DigestChunkArgs): { digest: Uint8Array; data: Uint8Array } {
  const digest = a.digestKey ? codec.sha256Parts([a.data, a.digestKey]) : codec.sha256(a.data);
  return { digest, data: a.data.byteOffset === 0 ? new Uint8Array(a.data.buffer as ArrayBuffer) : a.data };
}

const TASKS: { [K in TaskName]: (codec: Codec, args: TaskArgs<K>) => TaskResult<K> } = { encodeChunk, decodeChunk, sha256, digestChunk };

export function runTask<K extends TaskName>(codec: Codec, task: K, args: TaskArgs<K>): TaskResult<K> {
  if (!Object.hasOwn(TASKS, task)) throw new PbsError('EINVAL', `unknown codec task ${JSON.stringify(task)}`);
  return TASKS[task](codec, args);
}

/** Runs one request and builds the reply, with the result's buffers listed for transfer. */
export function answer(codec: Codec, req: TaskRequest): { reply: WorkerMessage; transfer: ArrayBuffer[] } {
  try {
    const out = transferable(runTask(codec, req.task as TaskName, req.args as never));
    return { reply: { id: req.id, ok: true, result: out.value }, transfer: out.transfer };
  } catch (e) {
    return { reply: { id: req.id, ok: false, error: toWireError(e, req.task) }, transfer: [] };
  }
}
