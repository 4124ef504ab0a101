// Restore of a small regular file in one thread-pool job: create (exclusively, never through a symlink), write,
// owner, mode, mtime with nanoseconds (spec §8.3), close. The extractor would otherwise make four or five round
// trips through the JS thread per file, which bounds a restore of many small files.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "napi-util.h"

#define PATH_BUF 4097

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref data_ref;
  char path[PATH_BUF];
  const unsigned char *data;
  size_t len;
  uint32_t mode;
  int64_t uid, gid;      // -1: keep the restoring user's
  int64_t chmod_mode;    // -1: the creation mode is final
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  int err;               // fatal: the file could not be written
  const char *syscall;
  int chown_err, chmod_err, utimes_err;  // non-fatal, reported as warnings
} write_job;

static void write_execute(napi_env env, void *arg) {
  (void)env;
  write_job *job = arg;
  int fd = open(job->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)job->mode);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "open";
    return;
  }
  for (size_t done = 0; done < job->len;) {
    ssize_t n = write(fd, job->data + done, job->len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      job->err = errno;
      job->syscall = "write";
      close(fd);
      return;
    }
    done += (size_t)n;
  }
  // Owner before mode: chown clears set-id bits.
  if (job->uid >= 0 && fchown(fd, (uid_t)job->uid, (gid_t)job->gid) != 0) job->chown_err = errno;
  if (job->chmod_mode >= 0 && fchmod(fd, (mode_t)job->chmod_mode) != 0) job->chmod_err = errno;
  struct timespec times[2];
  times[0].tv_sec = (time_t)job->mtime_sec;
  times[0].tv_nsec = (long)job->mtime_nsec;
  times[1] = times[0];
  if (futimens(fd, times) != 0) job->utimes_err = errno;
  if (close(fd) != 0 && errno != EINTR) {
    job->err = errno;
    job->syscall = "close";
  }
}

static void set_warning(napi_env env, napi_value obj, const char *key, int err, const char *syscall) {
  if (!err) return;
  throw_errno(env, err, syscall);
  napi_value e;
  napi_get_and_clear_last_exception(env, &e);
  napi_set_named_property(env, obj, key, e);
}

static void write_complete(napi_env env, napi_status status, void *arg) {
  write_job *job = arg;
  if (status == napi_ok && job->err == 0) {
    napi_value result;
    napi_create_object(env, &result);
    set_warning(env, result, "owner", job->chown_err, "fchown");
    set_warning(env, result, "mode", job->chmod_err, "fchmod");
    set_warning(env, result, "times", job->utimes_err, "futimens");
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    throw_errno(env, status == napi_ok ? job->err : EINTR, job->syscall ? job->syscall : "open");
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_reference(env, job->data_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < -9007199254740991.0 || d > 9007199254740991.0) return 0;
  *out = (int64_t)d;
  return (double)*out == d;
}

// writeNewFile(path, data, mode, uid, gid, chmodMode, mtimeSec, mtimeNsec) -> Promise<{ owner?, mode?, times? }>:
// the errors of the metadata calls that failed (the file itself is written); rejects when creating or writing fails.
static napi_value js_write_new_file(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) return throw_type(env, "writeNewFile(path, data, mode, uid, gid, chmodMode, mtimeSec, mtimeNsec)");
  write_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM, "open");
  bool is_typed = false;
  napi_typedarray_type type;
  size_t plen, dlen, offset;
  void *pdata, *ddata;
  napi_value ab;
  napi_is_typedarray(env, argv[0], &is_typed);
  if (!is_typed || napi_get_typedarray_info(env, argv[0], &type, &plen, &pdata, &ab, &offset) != napi_ok || type != napi_uint8_array) goto bad;
  if (plen >= PATH_BUF || memchr(pdata, 0, plen) != NULL) {
    free(job);
    return throw_errno(env, ENAMETOOLONG, "open");
  }
  memcpy(job->path, pdata, plen);
  napi_is_typedarray(env, argv[1], &is_typed);
  if (!is_typed || napi_get_typedarray_info(env, argv[1], &type, &dlen, &ddata, &ab, &offset) != napi_ok || type != napi_uint8_array) goto bad;
  job->data = ddata;
  job->len = dlen;
  int64_t mode, nsec;
  if (!get_int64(env, argv[2], &mode) || !get_int64(env, argv[3], &job->uid) || !get_int64(env, argv[4], &job->gid) ||
      !get_int64(env, argv[5], &job->chmod_mode) || !get_int64(env, argv[6], &job->mtime_sec) || !get_int64(env, argv[7], &nsec) ||
      mode < 0 || mode > 07777 || nsec < 0 || nsec > 999999999)
    goto bad;
  job->mode = (uint32_t)mode;
  job->mtime_nsec = (uint32_t)nsec;
  // The data must stay alive (and unmoved) while the job runs.
  napi_create_reference(env, argv[1], 1, &job->data_ref);
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "pbsfs_write_new_file", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, write_execute, write_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_reference(env, job->data_ref);
    free(job);
    return throw_errno(env, EAGAIN, "open");
  }
  return promise;
bad:
  free(job);
  return throw_type(env, "writeNewFile(path: Uint8Array, data: Uint8Array, mode, uid, gid, chmodMode, mtimeSec, mtimeNsec) got invalid arguments");
}

void register_writefile(napi_env env, napi_value exports) {
  set_fn(env, exports, "writeNewFile", js_write_new_file);
}
