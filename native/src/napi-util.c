// Shared helpers of the pbsfs native addon (see napi-util.h).
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "napi-util.h"

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case E2BIG: return "E2BIG";
    case EDQUOT: return "EDQUOT";
    case ENXIO: return "ENXIO";
    case EINTR: return "EINTR";
    case ENOLCK: return "ENOLCK";
    case EDEADLK: return "EDEADLK";
    default: return NULL;
  }
}

napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char codebuf[32];
  const char *name = errno_name(err);
  if (name == NULL) {
    snprintf(codebuf, sizeof codebuf, "E%d", err);
    name = codebuf;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, strerror(err), name);
  napi_value code, message, error, errno_value, syscall_value;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc >= want;
}

void set_fn(napi_env env, napi_value obj, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, obj, name, fn);
}

void set_u32(napi_env env, napi_value obj, const char *name, uint32_t value) {
  napi_value v;
  napi_create_uint32(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

static napi_value init(napi_env env, napi_value exports) {
  register_locks(env, exports);
  register_fsmeta(env, exports);
  register_fuse(env, exports);
  register_scandir(env, exports);
  register_writefile(env, exports);
  register_buzhash(env, exports);
  register_malloc_tuning(env, exports);
  register_chunk_decode(env, exports);
  register_sha256_job(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

napi_value queue_promise_job(napi_env env, const char *name, napi_async_execute_callback execute,
                             napi_async_complete_callback complete, void *job, napi_async_work *work, napi_deferred *deferred) {
  napi_value promise, resource_name;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_async_work(env, NULL, resource_name, execute, complete, job, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok)
    return NULL;
  return promise;
}
