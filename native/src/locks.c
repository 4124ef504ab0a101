// pbsfs native helpers: the POSIX calls Node does not expose and that the PBS on-disk
// protocol depends on (spec §4): flock on group/snapshot dirs, fcntl record locks on
// <store>/.lock, syncfs for sync-level=filesystem, and utimensat(atime=now, mtime=omit)
// for chunk touches. Errors are thrown as Error objects carrying `code` (errno name),
// `errno` and `syscall`, like Node's own fs errors.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "napi-util.h"

static int get_fd(napi_env env, napi_value v, int *fd) {
  return napi_get_value_int32(env, v, fd) == napi_ok && *fd >= 0;
}

// flock(fd, op): op is a combination of LOCK_SH/LOCK_EX/LOCK_UN and LOCK_NB.
static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd, op;
  if (!get_args(env, info, 2, argv) || !get_fd(env, argv[0], &fd) ||
      napi_get_value_int32(env, argv[1], &op) != napi_ok)
    return throw_type(env, "flock(fd, op) expects two integers");
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return throw_errno(env, errno, "flock");
  return undefined(env);
}

// fcntlLock(fd, type, wait): whole-file POSIX record lock; type 'read' | 'write' | 'unlock'.
static napi_value js_fcntl_lock(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  bool wait;
  char type[16];
  size_t len;
  if (!get_args(env, info, 3, argv) || !get_fd(env, argv[0], &fd) ||
      napi_get_value_string_utf8(env, argv[1], type, sizeof type, &len) != napi_ok ||
      napi_get_value_bool(env, argv[2], &wait) != napi_ok)
    return throw_type(env, "fcntlLock(fd, type, wait) expects (integer, string, boolean)");
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  if (strcmp(type, "read") == 0) fl.l_type = F_RDLCK;
  else if (strcmp(type, "write") == 0) fl.l_type = F_WRLCK;
  else if (strcmp(type, "unlock") == 0) fl.l_type = F_UNLCK;
  else return throw_type(env, "fcntlLock type must be 'read', 'write' or 'unlock'");
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0; // whole file
  int rc;
  do {
    rc = fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return throw_errno(env, errno, "fcntl");
  return undefined(env);
}

// syncfs(fd) -> Promise<void>: flush the whole filesystem that holds fd. It can take seconds,
// so it runs on the libuv thread pool instead of the JS thread.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err;
} syncfs_job;

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  syncfs_job *job = data;
  job->err = syncfs(job->fd) != 0 ? errno : 0;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  syncfs_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_resolve_deferred(env, job->deferred, undefined(env));
  } else {
    // build the error the same way the synchronous calls do, then reject with it
    throw_errno(env, status == napi_ok ? job->err : EINTR, "syncfs");
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !get_fd(env, argv[0], &fd))
    return throw_type(env, "syncfs(fd) expects an integer");
  syncfs_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM, "syncfs");
  job->fd = fd;
  napi_value promise = queue_promise_job(env, "pbsfs_syncfs", syncfs_execute, syncfs_complete, job, &job->work, &job->deferred);
  if (!promise) {
    free(job);
    return throw_errno(env, EAGAIN, "syncfs");
  }
  return promise;
}

// startWriteback(fd): sync_file_range(SYNC_FILE_RANGE_WRITE) starts writing the file's dirty pages without
// waiting, so the one syncfs at the end of a backup (sync-level=filesystem) finds little left to do.
static napi_value js_start_writeback(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !get_fd(env, argv[0], &fd)) return throw_type(env, "startWriteback(fd) expects a file descriptor");
  if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0 && errno != ESPIPE && errno != EINVAL) return throw_errno(env, errno, "sync_file_range");
  return undefined(env);
}

// touchAtime(path): utimensat(atime = now, mtime = omit, no symlink follow).
// Returns false when the path does not exist, true otherwise.
static napi_value js_touch_atime(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[4096];
  size_t len;
  if (!get_args(env, info, 1, argv) ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok)
    return throw_type(env, "touchAtime(path) expects a string");
  if (len >= sizeof path - 1) return throw_errno(env, ENAMETOOLONG, "utimensat");
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_NOW;
  times[1].tv_sec = 0;
  times[1].tv_nsec = UTIME_OMIT;
  napi_value result;
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    return throw_errno(env, errno, "utimensat");
  }
  napi_get_boolean(env, true, &result);
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int err;
} touch_job;

static void touch_execute(napi_env env, void *arg) {
  (void)env;
  touch_job *job = arg;
  struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  job->err = utimensat(AT_FDCWD, job->path, times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

static void touch_complete(napi_env env, napi_status status, void *arg) {
  touch_job *job = arg;
  napi_value v;
  int err = status == napi_ok ? job->err : EINTR;
  if (err == 0 || err == ENOENT) {
    napi_get_boolean(env, err == 0, &v);
    napi_resolve_deferred(env, job->deferred, v);
  } else {
    throw_errno(env, err, "utimensat");
    napi_get_and_clear_last_exception(env, &v);
    napi_reject_deferred(env, job->deferred, v);
  }
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job);
}

// touchAtimeAsync(path) -> Promise<boolean>: touchAtime on the libuv thread pool (a cold directory lookup reads the
// disk; the event loop must not wait for it).
static napi_value js_touch_atime_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t len;
  if (!get_args(env, info, 1, argv) || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok)
    return throw_type(env, "touchAtimeAsync(path) expects a string");
  if (len >= 4095) return throw_errno(env, ENAMETOOLONG, "utimensat");
  touch_job *job = calloc(1, sizeof *job);
  if (job == NULL || (job->path = malloc(len + 1)) == NULL) {
    free(job);
    return throw_errno(env, ENOMEM, "utimensat");
  }
  napi_get_value_string_utf8(env, argv[0], job->path, len + 1, &len);
  napi_value promise = queue_promise_job(env, "pbsfs_touch_atime", touch_execute, touch_complete, job, &job->work, &job->deferred);
  if (!promise) {
    free(job->path);
    free(job);
    return throw_errno(env, EAGAIN, "utimensat");
  }
  return promise;
}

static void set_int(napi_env env, napi_value obj, const char *name, int value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

void register_locks(napi_env env, napi_value exports) {
  set_fn(env, exports, "flock", js_flock);
  set_fn(env, exports, "fcntlLock", js_fcntl_lock);
  set_fn(env, exports, "syncfs", js_syncfs);
  set_fn(env, exports, "startWriteback", js_start_writeback);
  set_fn(env, exports, "touchAtime", js_touch_atime);
  set_fn(env, exports, "touchAtimeAsync", js_touch_atime_async);
  set_int(env, exports, "LOCK_SH", LOCK_SH);
  set_int(env, exports, "LOCK_EX", LOCK_EX);
  set_int(env, exports, "LOCK_UN", LOCK_UN);
  set_int(env, exports, "LOCK_NB", LOCK_NB);
}

