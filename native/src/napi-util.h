// Helpers shared by the addon's parts: errno errors like Node's fs errors, argument access, exports.
#ifndef PBSFS_NAPI_UTIL_H
#define PBSFS_NAPI_UTIL_H
#include <stdint.h>
#include <node_api.h>

napi_value throw_errno(napi_env env, int err, const char *syscall);
napi_value throw_type(napi_env env, const char *msg);
napi_value undefined(napi_env env);
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
void set_fn(napi_env env, napi_value obj, const char *name, napi_callback cb);
void set_u32(napi_env env, napi_value obj, const char *name, uint32_t value);
/** Queues `execute` on the libuv thread pool and `complete` after it, settling the returned promise through
 *  *deferred; NULL when the job could not be queued (the caller frees it). */
napi_value queue_promise_job(napi_env env, const char *name, napi_async_execute_callback execute,
                             napi_async_complete_callback complete, void *job, napi_async_work *work, napi_deferred *deferred);

void register_locks(napi_env env, napi_value exports);
void register_fsmeta(napi_env env, napi_value exports);
void register_fuse(napi_env env, napi_value exports);
void register_scandir(napi_env env, napi_value exports);
void register_writefile(napi_env env, napi_value exports);
void register_buzhash(napi_env env, napi_value exports);
void register_malloc_tuning(napi_env env, napi_value exports);
void register_chunk_decode(napi_env env, napi_value exports);
void register_sha256_job(napi_env env, napi_value exports);
#endif
