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
  char *path;
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
  napi_ref datas_ref;
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
  for (size_t i = 0; i < job->count; i++) free(job->files[i].path);
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
  napi_delete_reference(env, job->datas_ref);
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < -9007199254740991.0 || d > 9007199254740991.0) return 0;
  *out = (int64_t)d;
  return (double)*out == d;
}

static int get_u8(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  napi_is_typedarray(env, v, &is_typed);
  return is_typed && napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) == napi_ok && type == napi_uint8_array;
}

#define PARAMS 6  // per file: mode, uid, gid, chmodMode, mtimeSec, mtimeNsec

// writeNewFiles(paths: Uint8Array[], datas: Uint8Array[], params: number[] of PARAMS per file) -> Promise of a sparse
// array: per file, the errors of the metadata calls that failed ({ owner?, mode?, times? }). Files are created in
// order; the first that cannot be created or written rejects the promise with its errno error (`index` = which).
static napi_value js_write_new_files(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t n, n2, np;
  if (!get_args(env, info, 3, argv) || napi_get_array_length(env, argv[0], &n) != napi_ok ||
      napi_get_array_length(env, argv[1], &n2) != napi_ok || napi_get_array_length(env, argv[2], &np) != napi_ok ||
      n != n2 || np != n * PARAMS)
    return throw_type(env, "writeNewFiles(paths, datas, params) expects arrays of matching lengths");
  write_job *job = calloc(1, sizeof *job);
  if (job == NULL || (n > 0 && (job->files = calloc(n, sizeof *job->files)) == NULL)) {
    free(job);
    return throw_errno(env, ENOMEM, "open");
  }
  for (uint32_t i = 0; i < n; i++) {
    file_rec *f = &job->files[i];
    napi_value pv, dv, x;
    void *pdata, *ddata;
    size_t plen, dlen;
    int64_t p[PARAMS];
    napi_get_element(env, argv[0], i, &pv);
    napi_get_element(env, argv[1], i, &dv);
    if (!get_u8(env, pv, &pdata, &plen) || !get_u8(env, dv, &ddata, &dlen)) goto bad;
    for (int k = 0; k < PARAMS; k++) {
      napi_get_element(env, argv[2], i * PARAMS + k, &x);
      if (!get_int64(env, x, &p[k])) goto bad;
    }
    if (p[0] < 0 || p[0] > 07777 || p[5] < 0 || p[5] > 999999999) goto bad;
    if (plen >= PATH_BUF || memchr(pdata, 0, plen) != NULL) {
      free_job(job);
      return throw_errno(env, ENAMETOOLONG, "open");
    }
    if ((f->path = malloc(plen + 1)) == NULL) {
      job->count = i;
      free_job(job);
      return throw_errno(env, ENOMEM, "open");
    }
    job->count = i + 1;
    memcpy(f->path, pdata, plen);
    f->path[plen] = 0;
    f->data = ddata;
    f->len = dlen;
    f->mode = (uint32_t)p[0];
    f->uid = p[1];
    f->gid = p[2];
    f->chmod_mode = p[3];
    f->mtime_sec = p[4];
    f->mtime_nsec = (uint32_t)p[5];
  }
  // The data buffers (held by the array) must stay alive while the job runs.
  napi_create_reference(env, argv[1], 1, &job->datas_ref);
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "pbsfs_write_new_files", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, write_execute, write_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_reference(env, job->datas_ref);
    free_job(job);
    return throw_errno(env, EAGAIN, "open");
  }
  return promise;
bad:
  free_job(job);
  return throw_type(env, "writeNewFiles got an invalid path, data or parameter");
}

void register_writefile(napi_env env, napi_value exports) {
  set_fn(env, exports, "writeNewFiles", js_write_new_files);
}
