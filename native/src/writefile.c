// Restore of small regular files, a batch per thread-pool job: each is created (exclusively, never through a
// symlink), written, given owner, mode and mtime with nanoseconds (spec §8.3) and closed. The extractor would
// otherwise make four or five round trips through the JS thread per file, which bounds a restore of many small files.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "napi-util.h"

#define PATH_BUF 4097

typedef struct {
  const char *path;      // into the job's paths buffer (NUL-terminated there)
  const unsigned char *data;
  size_t len;
  uint32_t mode;
  int64_t uid, gid;      // -1: keep the restoring user's
  int64_t chmod_mode;    // -1: the creation mode is final
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  int chown_err, chmod_err, utimes_err;  // non-fatal, reported as warnings
} file_rec;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref paths_ref, datas_ref;
  file_rec *files;
  size_t count;
  size_t failed_at;      // index of the file whose creation or write failed (count: none)
  int err;
  const char *syscall;
} write_job;

// Returns 0, or an errno with *syscall set when the file could not be created or written.
static int write_one(file_rec *f, const char **syscall) {
  int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)f->mode);
  if (fd < 0) {
    *syscall = "open";
    return errno;
  }
  for (size_t done = 0; done < f->len;) {
    ssize_t n = write(fd, f->data + done, f->len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      *syscall = "write";
      return e;
    }
    done += (size_t)n;
  }
  // Owner before mode: chown clears set-id bits.
  if (f->uid >= 0 && fchown(fd, (uid_t)f->uid, (gid_t)f->gid) != 0) f->chown_err = errno;
  if (f->chmod_mode >= 0 && fchmod(fd, (mode_t)f->chmod_mode) != 0) f->chmod_err = errno;
  struct timespec times[2];
  times[0].tv_sec = (time_t)f->mtime_sec;
  times[0].tv_nsec = (long)f->mtime_nsec;
  times[1] = times[0];
  if (futimens(fd, times) != 0) f->utimes_err = errno;
  if (close(fd) != 0 && errno != EINTR) {
    *syscall = "close";
    return errno;
  }
  return 0;
}

static void write_execute(napi_env env, void *arg) {
  (void)env;
  write_job *job = arg;
  job->failed_at = job->count;
  for (size_t i = 0; i < job->count; i++) {
    if ((job->err = write_one(&job->files[i], &job->syscall)) != 0) {
      job->failed_at = i;
      return;
    }
  }
}

static void set_warning(napi_env env, napi_value obj, const char *key, int err, const char *syscall) {
  if (!err) return;
  throw_errno(env, err, syscall);
  napi_value e;
  napi_get_and_clear_last_exception(env, &e);
  napi_set_named_property(env, obj, key, e);
}

static void free_job(write_job *job) {
  free(job->files);
  free(job);
}

static void write_complete(napi_env env, napi_status status, void *arg) {
  write_job *job = arg;
  if (status == napi_ok && job->err == 0) {
    napi_value result;
    napi_create_array(env, &result);
    for (size_t i = 0; i < job->count; i++) {
      file_rec *f = &job->files[i];
      if (!f->chown_err && !f->chmod_err && !f->utimes_err) continue;
      napi_value w;
      napi_create_object(env, &w);
      set_warning(env, w, "owner", f->chown_err, "fchown");
      set_warning(env, w, "mode", f->chmod_err, "fchmod");
      set_warning(env, w, "times", f->utimes_err, "futimens");
      napi_set_element(env, result, (uint32_t)i, w);
    }
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    throw_errno(env, status == napi_ok ? job->err : EINTR, job->syscall ? job->syscall : "open");
    napi_value error, index;
    napi_get_and_clear_last_exception(env, &error);
    napi_create_uint32(env, (uint32_t)job->failed_at, &index);
    napi_set_named_property(env, error, "index", index);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_reference(env, job->paths_ref);
  napi_delete_reference(env, job->datas_ref);
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  napi_is_typedarray(env, v, &is_typed);
  return is_typed && napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) == napi_ok && type == want;
}

static int whole(double d) {
  return d == d && d >= -9007199254740991.0 && d <= 9007199254740991.0 && (double)(int64_t)d == d;
}

#define PARAMS 7  // per file: length, mode, uid, gid, chmodMode, mtimeSec, mtimeNsec

// writeNewFiles(paths: Uint8Array, datas: Uint8Array, params: Float64Array) -> Promise of a sparse array: per file,
// the errors of the metadata calls that failed ({ owner?, mode?, times? }). `paths` holds the files' paths, each
// ended by a NUL; `datas` their contents back to back; `params` PARAMS numbers per file. Packed like this, a batch
// crosses into C with three arguments instead of several per file. Files are created in order; the first that
// cannot be created or written rejects the promise with its errno error (`index` = which).
static napi_value js_write_new_files(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *paths, *datas, *pv;
  size_t paths_len, datas_len, np;
  if (!get_args(env, info, 3, argv) || !get_typed(env, argv[0], napi_uint8_array, &paths, &paths_len) ||
      !get_typed(env, argv[1], napi_uint8_array, &datas, &datas_len) || !get_typed(env, argv[2], napi_float64_array, &pv, &np) ||
      np % PARAMS != 0)
    return throw_type(env, "writeNewFiles(paths: Uint8Array, datas: Uint8Array, params: Float64Array of 7 per file)");
  const double *p = pv;
  size_t n = np / PARAMS;
  write_job *job = calloc(1, sizeof *job);
  if (job == NULL || (n > 0 && (job->files = calloc(n, sizeof *job->files)) == NULL)) {
    free(job);
    return throw_errno(env, ENOMEM, "open");
  }
  job->count = n;
  const char *path = paths, *paths_end = (const char *)paths + paths_len;
  size_t data_at = 0;
  for (size_t i = 0; i < n; i++, p += PARAMS) {
    file_rec *f = &job->files[i];
    for (int k = 0; k < PARAMS; k++) if (!whole(p[k])) goto bad;
    if (p[0] < 0 || (size_t)p[0] > datas_len - data_at || p[1] < 0 || p[1] > 07777 || p[6] < 0 || p[6] > 999999999) goto bad;
    const char *nul = memchr(path, 0, (size_t)(paths_end - path));
    if (nul == NULL || nul == path) goto bad;
    if (nul - path >= PATH_BUF) {
      free_job(job);
      return throw_errno(env, ENAMETOOLONG, "open");
    }
    f->path = path;
    path = nul + 1;
    f->data = (const unsigned char *)datas + data_at;
    f->len = (size_t)p[0];
    data_at += f->len;
    f->mode = (uint32_t)p[1];
    f->uid = (int64_t)p[2];
    f->gid = (int64_t)p[3];
    f->chmod_mode = (int64_t)p[4];
    f->mtime_sec = (int64_t)p[5];
    f->mtime_nsec = (uint32_t)p[6];
  }
  if (path != paths_end) goto bad;
  // The buffers must stay alive while the job runs.
  napi_create_reference(env, argv[0], 1, &job->paths_ref);
  napi_create_reference(env, argv[1], 1, &job->datas_ref);
  napi_value promise = queue_promise_job(env, "pbsfs_write_new_files", write_execute, write_complete, job, &job->work, &job->deferred);
  if (!promise) {
    napi_delete_reference(env, job->paths_ref);
    napi_delete_reference(env, job->datas_ref);
    free_job(job);
    return throw_errno(env, EAGAIN, "open");
  }
  return promise;
bad:
  free_job(job);
  return throw_type(env, "writeNewFiles got an invalid path, data length or parameter");
}

void register_writefile(napi_env env, napi_value exports) {
  set_fn(env, exports, "writeNewFiles", js_write_new_files);
}
