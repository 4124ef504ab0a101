// One error type for the whole code base: a stable code, a message, and the object involved.
export type ErrorCode =
  | 'EINVAL' // bad argument or name
  | 'ENOENT' // missing datastore, snapshot, archive, chunk
  | 'EEXIST'
  | 'EBUSY' // lock held by someone else
  | 'EPERM'
  | 'EACCES' // wrong or missing key
  | 'ECORRUPT' // bytes that do not follow the format (magic, CRC, digest, size)
  | 'ETOOBIG'
  | 'EIO'
  | 'EUNSUPPORTED';

export interface ErrorContext {
  path?: string;
  digest?: string;
  offset?: number;
  cause?: unknown;
}

export class PbsError extends Error {
  readonly code: ErrorCode;
  readonly path?: string;
  readonly digest?: string;
  readonly offset?: number;

  constructor(code: ErrorCode, message: string, ctx: ErrorContext = {}) {
    const where = [ctx.path && `path ${ctx.path}`, ctx.digest && `chunk ${ctx.digest}`, ctx.offset !== undefined && `offset ${ctx.offset}`]
      .filter(Boolean)
      .join(', ');
    super(where ? `${message} (${where})` : message, ctx.cause !== undefined ? { cause: ctx.cause } : undefined);
    this.name = 'PbsError';
    this.code = code;
    this.path = ctx.path;
    this.digest = ctx.digest;
    this.offset = ctx.offset;
  }
}

export function isPbsError(e: unknown, code?: ErrorCode): e is PbsError {
  return e instanceof PbsError && (code === undefined || e.code === code);
}

/** Adds a path to an error that lacks one, so messages name the file that was being read. */
export function withPath(e: unknown, path: string): PbsError {
  if (e instanceof PbsError) {
    return e.path ? e : new PbsError(e.code, e.message, { path, digest: e.digest, offset: e.offset, cause: e.cause });
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return new PbsError('ENOENT', 'no such file', { path, cause: e });
  return new PbsError('EIO', err?.message ?? String(e), { path, cause: e });
}
