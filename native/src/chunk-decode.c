// Decoding one unencrypted chunk file (spec §1.1, §2) on the libuv thread pool: read, zstd-decompress into the
// caller's buffer, check SHA-256 against the chunk's name. The mount's read path uses it so that decoding runs on
// every core without a worker isolate, and a raw chunk is read straight into its destination (no copies).
// The CRC is not checked: the digest covers every decoded byte and is the stronger check.
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
// For ZSTD_d_stableOutBuffer: the chunk is decoded straight into the reader's buffer, with no window copy.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "napi-util.h"

#define HEADER 12
#define NOT_PLAIN -1  // an encrypted blob: the caller decodes it the other way

// spec §1.1
static const uint8_t MAGIC_UNCOMPRESSED[8] = {66, 171, 56, 7, 190, 131, 112, 161};
static const uint8_t MAGIC_COMPRESSED[8] = {49, 185, 88, 66, 111, 182, 163, 127};
static const uint8_t MAGIC_ENCRYPTED[8] = {123, 103, 133, 190, 34, 45, 76, 240};
static const uint8_t MAGIC_ENCRYPTED_COMPRESSED[8] = {230, 89, 27, 191, 11, 191, 216, 11};

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref out_ref;
  char *path;
  uint8_t digest[32];
  uint8_t *out;
  size_t out_len;
  // Results: err (errno) with syscall, or corrupt with a message, else result.
  int err;
  const char *syscall;
  char corrupt[160];
  long long result;
} decode_job;

// One decompression context per pool thread, kept for the thread's life (they never end).
static __thread ZSTD_DCtx *dctx;
// Compressed blobs are read and decompressed in pieces through one small buffer per pool thread: a whole-blob buffer
// per chunk would be mapped and faulted in page by page every time (costly on virtual machines), and one kept per
// thread would hold the largest blob seen.
#define PIECE (256 * 1024)
static __thread uint8_t *piece;

static int read_full(int fd, uint8_t *buf, size_t len, off_t at) {
  while (len > 0) {
    ssize_t n = pread(fd, buf, len, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return -1;
    buf += n;
    len -= (size_t)n;
    at += n;
  }
  return 0;
}

static void decode(decode_job *job, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    job->err = errno;
    job->syscall = "fstat";
    return;
  }
  uint8_t head[HEADER];
  size_t size = (size_t)st.st_size;
  if (size < HEADER) {
    snprintf(job->corrupt, sizeof job->corrupt, "blob too short for a header: %zu bytes", size);
    return;
  }
  int r = read_full(fd, head, HEADER, 0);
  if (r != 0) goto read_failed;
  if (memcmp(head, MAGIC_ENCRYPTED, 8) == 0 || memcmp(head, MAGIC_ENCRYPTED_COMPRESSED, 8) == 0) {
    job->result = NOT_PLAIN;
    return;
  }
  size_t payload = size - HEADER;
  if (memcmp(head, MAGIC_UNCOMPRESSED, 8) == 0) {
    if (payload != job->out_len) {
      snprintf(job->corrupt, sizeof job->corrupt, "chunk has %zu bytes, index expects %zu", payload, job->out_len);
      return;
    }
    if ((r = read_full(fd, job->out, payload, HEADER)) != 0) goto read_failed;
  } else if (memcmp(head, MAGIC_COMPRESSED, 8) == 0) {
    if (payload > ZSTD_compressBound(job->out_len)) {
      snprintf(job->corrupt, sizeof job->corrupt, "compressed blob of %zu bytes is larger than %zu bytes can compress to", payload, job->out_len);
      return;
    }
    if (dctx == NULL && (dctx = ZSTD_createDCtx()) != NULL) ZSTD_DCtx_setParameter(dctx, ZSTD_d_stableOutBuffer, 1);
    if ((piece == NULL && (piece = malloc(PIECE)) == NULL) || dctx == NULL) {
      job->err = ENOMEM;
      job->syscall = "read";
      return;
    }
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_outBuffer out = {job->out, job->out_len, 0};
    size_t left = payload, more = 1;
    off_t at = HEADER;
    while (left > 0) {
      size_t len = left < PIECE ? left : PIECE;
      if ((r = read_full(fd, piece, len, at)) != 0) goto read_failed;
      at += (off_t)len;
      left -= len;
      ZSTD_inBuffer in = {piece, len, 0};
      while (in.pos < in.size) {
        size_t in_before = in.pos, out_before = out.pos;
        more = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(more)) {
          snprintf(job->corrupt, sizeof job->corrupt, "zstd: %s", ZSTD_getErrorName(more));
          return;
        }
        if (in.pos == in_before && out.pos == out_before) {
          snprintf(job->corrupt, sizeof job->corrupt, "chunk decodes to more than the %zu bytes the index expects", job->out_len);
          return;
        }
      }
    }
    if (more != 0) {
      snprintf(job->corrupt, sizeof job->corrupt, "zstd: the frame ends early");
      return;
    }
    size_t n = out.pos;
    if (n != job->out_len) {
      snprintf(job->corrupt, sizeof job->corrupt, "chunk has %zu bytes, index expects %zu", n, job->out_len);
      return;
    }
  } else {
    snprintf(job->corrupt, sizeof job->corrupt, "wrong blob magic %02x%02x%02x%02x%02x%02x%02x%02x", head[0], head[1], head[2], head[3],
             head[4], head[5], head[6], head[7]);
    return;
  }
  uint8_t actual[32];
  SHA256(job->out, job->out_len, actual);
  if (memcmp(actual, job->digest, 32) != 0) {
    static const char hex[] = "0123456789abcdef";
    char text[65];
    for (int i = 0; i < 32; i++) {
      text[2 * i] = hex[actual[i] >> 4];
      text[2 * i + 1] = hex[actual[i] & 15];
    }
    text[64] = 0;
    snprintf(job->corrupt, sizeof job->corrupt, "chunk content hashes to %s, not to its name", text);
    return;
  }
  job->result = (long long)job->out_len;
  return;
read_failed:
  if (r < 0) {
    snprintf(job->corrupt, sizeof job->corrupt, "chunk file ended early (%zu bytes expected)", size);
  } else {
    job->err = r;
    job->syscall = "read";
  }
}

static void decode_execute(napi_env env, void *arg) {
  (void)env;
  decode_job *job = arg;
  int fd = open(job->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "open";
    return;
  }
  decode(job, fd);
  close(fd);
}

static void decode_complete(napi_env env, napi_status status, void *arg) {
  decode_job *job = arg;
  napi_value v;
  if (status != napi_ok || job->err != 0) {
    throw_errno(env, status == napi_ok ? job->err : EINTR, job->syscall ? job->syscall : "open");
    napi_get_and_clear_last_exception(env, &v);
    napi_reject_deferred(env, job->deferred, v);
  } else if (job->corrupt[0] != 0) {
    napi_value msg, flag;
    napi_create_string_utf8(env, job->corrupt, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
    napi_get_boolean(env, true, &flag);
    napi_set_named_property(env, v, "corrupt", flag);
    napi_reject_deferred(env, job->deferred, v);
  } else {
    napi_create_int64(env, job->result, &v);
    napi_resolve_deferred(env, job->deferred, v);
  }
  napi_delete_reference(env, job->out_ref);
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job);
}

// decodeChunkFile(path: string, digest: Uint8Array(32), out: Uint8Array) -> Promise<number>: out.length when the
// chunk decoded into all of `out` and matches the digest, -1 for an encrypted blob (not decoded here). Rejects with
// an errno error (code, syscall) when the file cannot be read, or an Error with `corrupt: true` when its content is
// wrong (magic, zstd frame, size, digest). `out` must not be touched until the promise settles.
static napi_value js_decode_chunk_file(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t path_len, dlen, olen, off;
  void *ddata, *odata;
  napi_typedarray_type t1, t2;
  napi_value ab;
  bool is1 = false, is2 = false;
  if (!get_args(env, info, 3, argv) || napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok)
    return throw_type(env, "decodeChunkFile(path, digest, out) expects a path string");
  napi_is_typedarray(env, argv[1], &is1);
  napi_is_typedarray(env, argv[2], &is2);
  if (!is1 || !is2 || napi_get_typedarray_info(env, argv[1], &t1, &dlen, &ddata, &ab, &off) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &t2, &olen, &odata, &ab, &off) != napi_ok || t1 != napi_uint8_array ||
      t2 != napi_uint8_array || dlen != 32)
    return throw_type(env, "decodeChunkFile(path, digest, out) expects a 32-byte digest and a Uint8Array");
  decode_job *job = calloc(1, sizeof *job);
  if (job == NULL || (job->path = malloc(path_len + 1)) == NULL) {
    free(job);
    return throw_errno(env, ENOMEM, "open");
  }
  napi_get_value_string_utf8(env, argv[0], job->path, path_len + 1, &path_len);
  memcpy(job->digest, ddata, 32);
  job->out = odata;
  job->out_len = olen;
  napi_create_reference(env, argv[2], 1, &job->out_ref);
  napi_value promise = queue_promise_job(env, "pbsfs_decode_chunk", decode_execute, decode_complete, job, &job->work, &job->deferred);
  if (!promise) {
    napi_delete_reference(env, job->out_ref);
    free(job->path);
    free(job);
    return throw_errno(env, EAGAIN, "open");
  }
  return promise;
}

void register_chunk_decode(napi_env env, napi_value exports) {
  set_fn(env, exports, "decodeChunkFile", js_decode_chunk_file);
}
