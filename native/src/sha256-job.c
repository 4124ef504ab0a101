// SHA-256 of a buffer on the libuv thread pool: chunk digests for the mount's write path without a worker isolate
// (no transfer of the chunk, and every core hashes).
#include <errno.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "napi-util.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref data_ref;
  const uint8_t *data;
  size_t len;
  uint8_t digest[32];
} sha_job;

static void sha_execute(napi_env env, void *arg) {
  (void)env;
  sha_job *job = arg;
  SHA256(job->data, job->len, job->digest);
}

static void sha_complete(napi_env env, napi_status status, void *arg) {
  sha_job *job = arg;
  napi_value v;
  if (status != napi_ok) {
    throw_errno(env, EINTR, "sha256");
    napi_get_and_clear_last_exception(env, &v);
    napi_reject_deferred(env, job->deferred, v);
  } else {
    void *out;
    napi_value ab;
    napi_create_arraybuffer(env, 32, &out, &ab);
    memcpy(out, job->digest, 32);
    napi_create_typedarray(env, napi_uint8_array, 32, ab, 0, &v);
    napi_resolve_deferred(env, job->deferred, v);
  }
  napi_delete_reference(env, job->data_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

// sha256Async(data: Uint8Array) -> Promise<Uint8Array(32)>. `data` must not change until the promise settles.
static napi_value js_sha256_async(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab;
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  bool is = false;
  if (!get_args(env, info, 1, argv) || napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array)
    return throw_type(env, "sha256Async(data) expects a Uint8Array");
  sha_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM, "sha256");
  job->data = data;
  job->len = len;
  napi_create_reference(env, argv[0], 1, &job->data_ref);
  napi_value promise = queue_promise_job(env, "pbsfs_sha256", sha_execute, sha_complete, job, &job->work, &job->deferred);
  if (!promise) {
    napi_delete_reference(env, job->data_ref);
    free(job);
    return throw_errno(env, EAGAIN, "sha256");
  }
  return promise;
}

void register_sha256_job(napi_env env, napi_value exports) {
  set_fn(env, exports, "sha256Async", js_sha256_async);
}
