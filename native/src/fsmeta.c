// pbsfs filesystem metadata calls Node does not expose, needed to archive and restore pxar entries
// (spec §8.3, §8.4): extended attributes without following symlinks, mknod, utimensat with
// nanoseconds, chattr flags (FS_IOC_GETFLAGS/SETFLAGS) and the quota project id
// (FS_IOC_FSGETXATTR/FSSETXATTR). Paths are Buffers (Linux names need not be UTF-8) or strings.
// Every call is one short syscall sequence, so they run synchronously. Errors are thrown as Error
// objects carrying `code` (errno name), `errno` and `syscall`, like Node's own fs errors.
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "inode-fd.h"
#include "napi-util.h"

#define PATH_BUF 4097
#define XATTR_NAME_BUF 256
#define XATTR_VALUE_MAX 65536
#define XATTR_LIST_MAX_BYTES 65536

// Copies a Buffer/Uint8Array or string argument into `out` as a NUL-terminated byte string.
// Returns 0 on a type error, -1 when too long or containing NUL, 1 on success.
static int get_bytes(napi_env env, napi_value v, char *out, size_t cap, size_t *len_out) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    size_t length, offset;
    void *data;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) return 0;
    if (length >= cap || memchr(data, 0, length) != NULL) return -1;
    memcpy(out, data, length);
    out[length] = 0;
    if (len_out) *len_out = length;
    return 1;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return 0;
  if (len >= cap) return -1;
  napi_get_value_string_utf8(env, v, out, cap, &len);
  if (strlen(out) != len) return -1;
  if (len_out) *len_out = len;
  return 1;
}

static int get_path(napi_env env, napi_value v, char *out, const char *syscall, napi_value *err) {
  int r = get_bytes(env, v, out, PATH_BUF, NULL);
  if (r == 0) *err = throw_type(env, "path must be a string or Buffer");
  else if (r < 0) *err = throw_errno(env, ENAMETOOLONG, syscall);
  return r == 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok && lossless;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < -9007199254740991.0 || d > 9007199254740991.0) return 0;
  *out = (int64_t)d;
  return (double)*out == d;
}

static int get_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
  }
  int64_t i;
  if (!get_i64(env, v, &i) || i < 0) return 0;
  *out = (uint64_t)i;
  return 1;
}

// llistxattr(path) -> Buffer[] of names (without NUL).
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], err = NULL;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv)) return throw_type(env, "llistxattr(path)");
  if (!get_path(env, argv[0], path, "llistxattr", &err)) return err;
  char *list = NULL;
  ssize_t n;
  // The list can grow between the size query and the read; retry a few times on ERANGE.
  for (int attempt = 0;; attempt++) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) return throw_errno(env, errno, "llistxattr");
    if (n > XATTR_LIST_MAX_BYTES) return throw_errno(env, E2BIG, "llistxattr");
    free(list);
    list = malloc(n > 0 ? (size_t)n : 1);
    if (list == NULL) return throw_errno(env, ENOMEM, "llistxattr");
    n = llistxattr(path, list, (size_t)n);
    if (n >= 0) break;
    int e = errno;
    if (e != ERANGE || attempt >= 3) {
      free(list);
      return throw_errno(env, e, "llistxattr");
    }
  }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t idx = 0;
  for (ssize_t at = 0; at < n;) {
    size_t len = strnlen(list + at, (size_t)(n - at));
    if (len > 0) {
      napi_value buf;
      void *data;
      napi_create_buffer_copy(env, len, list + at, &data, &buf);
      napi_set_element(env, result, idx++, buf);
    }
    at += (ssize_t)len + 1;
  }
  free(list);
  return result;
}

// lgetxattr(path, name) -> Buffer, or null when the attribute does not exist (ENODATA).
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], err = NULL;
  char path[PATH_BUF], name[XATTR_NAME_BUF];
  if (!get_args(env, info, 2, argv)) return throw_type(env, "lgetxattr(path, name)");
  if (!get_path(env, argv[0], path, "lgetxattr", &err)) return err;
  int r = get_bytes(env, argv[1], name, sizeof name, NULL);
  if (r == 0) return throw_type(env, "xattr name must be a string or Buffer");
  if (r < 0) return throw_errno(env, ERANGE, "lgetxattr");
  char *value = malloc(XATTR_VALUE_MAX);
  if (value == NULL) return throw_errno(env, ENOMEM, "lgetxattr");
  ssize_t n = lgetxattr(path, name, value, XATTR_VALUE_MAX);
  if (n < 0) {
    int e = errno;
    free(value);
    if (e == ENODATA) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, e, "lgetxattr");
  }
  napi_value buf;
  void *data;
  napi_create_buffer_copy(env, (size_t)n, value, &data, &buf);
  free(value);
  return buf;
}

// lsetxattr(path, name, value): creates or replaces the attribute.
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3], err = NULL;
  char path[PATH_BUF], name[XATTR_NAME_BUF];
  if (!get_args(env, info, 3, argv)) return throw_type(env, "lsetxattr(path, name, value)");
  if (!get_path(env, argv[0], path, "lsetxattr", &err)) return err;
  int r = get_bytes(env, argv[1], name, sizeof name, NULL);
  if (r == 0) return throw_type(env, "xattr name must be a string or Buffer");
  if (r < 0) return throw_errno(env, ERANGE, "lsetxattr");
  bool is_typed = false;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (!is_typed) return throw_type(env, "xattr value must be a Uint8Array");
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[2], &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array)
    return throw_type(env, "xattr value must be a Uint8Array");
  if (length > XATTR_VALUE_MAX) return throw_errno(env, E2BIG, "lsetxattr");
  if (lsetxattr(path, name, length > 0 ? data : "", length, 0) != 0) return throw_errno(env, errno, "lsetxattr");
  return undefined(env);
}

// mknod(path, mode, dev): mode includes the file type bits; dev is a Linux dev_t (number or bigint).
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3], err = NULL;
  char path[PATH_BUF];
  uint32_t mode;
  uint64_t dev;
  if (!get_args(env, info, 3, argv) || napi_get_value_uint32(env, argv[1], &mode) != napi_ok || !get_u64(env, argv[2], &dev))
    return throw_type(env, "mknod(path, mode, dev) expects (path, integer, integer)");
  if (!get_path(env, argv[0], path, "mknod", &err)) return err;
  if (mknod(path, (mode_t)mode, (dev_t)dev) != 0) return throw_errno(env, errno, "mknod");
  return undefined(env);
}

// utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, nofollow)
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  napi_value argv[6], err = NULL;
  char path[PATH_BUF];
  int64_t asec, msec;
  uint32_t ansec, mnsec;
  bool nofollow;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[1], &asec) || napi_get_value_uint32(env, argv[2], &ansec) != napi_ok ||
      !get_i64(env, argv[3], &msec) || napi_get_value_uint32(env, argv[4], &mnsec) != napi_ok ||
      napi_get_value_bool(env, argv[5], &nofollow) != napi_ok || ansec > 999999999 || mnsec > 999999999)
    return throw_type(env, "utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, nofollow) got invalid arguments");
  if (!get_path(env, argv[0], path, "utimensat", &err)) return err;
  struct timespec times[2];
  times[0].tv_sec = (time_t)asec;
  times[0].tv_nsec = (long)ansec;
  times[1].tv_sec = (time_t)msec;
  times[1].tv_nsec = (long)mnsec;
  if (utimensat(AT_FDCWD, path, times, nofollow ? AT_SYMLINK_NOFOLLOW : 0) != 0) return throw_errno(env, errno, "utimensat");
  return undefined(env);
}

// The inode ioctls need an open descriptor. Open the path without following a final symlink and
// without blocking (fifos) or acquiring a terminal; only regular files and directories are queried
// (opening a device node can have side effects), anything else reports ENOTTY like an fs without
// support. Returns the fd, or -errno.
static int open_inode(const char *path) {
  int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    close(fd);
    return -ENOTTY;
  }
  int rfd = reopen_inode(fd);
  close(fd);
  return rfd;
}

static napi_value null_value(napi_env env) {
  napi_value nul;
  napi_get_null(env, &nul);
  return nul;
}


// getInodeAttrs(path) -> [flags or null, projid or null]: both ioctls on one open, for archiving (hot path).
static napi_value js_get_inode_attrs(napi_env env, napi_callback_info info) {
  napi_value argv[1], err = NULL, result, v;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv)) return throw_type(env, "getInodeAttrs(path)");
  if (!get_path(env, argv[0], path, "open", &err)) return err;
  napi_create_array_with_length(env, 2, &result);
  int fd = open_inode(path);
  if (fd < 0) {
    if (!is_unsupported(-fd)) return throw_errno(env, -fd, "open");
    napi_set_element(env, result, 0, null_value(env));
    napi_set_element(env, result, 1, null_value(env));
    return result;
  }
  int attr = 0;
  int rc = ioctl(fd, FS_IOC_GETFLAGS, &attr);
  int e = errno;
  if (rc == 0) napi_create_uint32(env, (uint32_t)attr, &v);
  else if (is_unsupported(e)) v = null_value(env);
  else {
    close(fd);
    return throw_errno(env, e, "ioctl(FS_IOC_GETFLAGS)");
  }
  napi_set_element(env, result, 0, v);
  struct fsxattr fsx;
  memset(&fsx, 0, sizeof fsx);
  rc = ioctl(fd, FS_IOC_FSGETXATTR, &fsx);
  e = errno;
  close(fd);
  if (rc == 0) napi_create_uint32(env, fsx.fsx_projid, &v);
  else if (is_unsupported(e)) v = null_value(env);
  else return throw_errno(env, e, "ioctl(FS_IOC_FSGETXATTR)");
  napi_set_element(env, result, 1, v);
  return result;
}

/** Sets `value` on the open inode `fd`: 0, or -1 with errno set. */
typedef int (*inode_setter)(int fd, uint32_t value);

static int put_flags(int fd, uint32_t flags) {
  int attr = (int)flags;
  return ioctl(fd, FS_IOC_SETFLAGS, &attr);
}

static int put_projid(int fd, uint32_t projid) {
  struct fsxattr fsx;
  memset(&fsx, 0, sizeof fsx);
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0) return -1;
  fsx.fsx_projid = projid;
  return ioctl(fd, FS_IOC_FSSETXATTR, &fsx);
}

/** (path, u32) -> true, or false where the filesystem does not support what `set` sets; other errors throw. */
static napi_value set_on_inode(napi_env env, napi_callback_info info, const char *usage, const char *what, inode_setter set) {
  napi_value argv[2], err = NULL, result;
  char path[PATH_BUF];
  uint32_t value;
  if (!get_args(env, info, 2, argv) || napi_get_value_uint32(env, argv[1], &value) != napi_ok) return throw_type(env, usage);
  if (!get_path(env, argv[0], path, "open", &err)) return err;
  int fd = open_inode(path);
  if (fd < 0) {
    if (!is_unsupported(-fd)) return throw_errno(env, -fd, "open");
    napi_get_boolean(env, false, &result);
    return result;
  }
  int rc = set(fd, value);
  int e = errno;
  close(fd);
  if (rc != 0 && !is_unsupported(e)) return throw_errno(env, e, what);
  napi_get_boolean(env, rc == 0, &result);
  return result;
}

// setFlags(path, flags) -> true, or false where the filesystem has no such flags.
static napi_value js_set_flags(napi_env env, napi_callback_info info) {
  return set_on_inode(env, info, "setFlags(path, flags) expects (path, integer)", "ioctl(FS_IOC_SETFLAGS)", put_flags);
}

// setProjid(path, projid) -> true, or false where the filesystem has no project ids.
static napi_value js_set_projid(napi_env env, napi_callback_info info) {
  return set_on_inode(env, info, "setProjid(path, projid) expects (path, integer)", "ioctl(FS_IOC_FSSETXATTR)", put_projid);
}

void register_fsmeta(napi_env env, napi_value exports) {
  set_fn(env, exports, "llistxattr", js_llistxattr);
  set_fn(env, exports, "lgetxattr", js_lgetxattr);
  set_fn(env, exports, "lsetxattr", js_lsetxattr);
  set_fn(env, exports, "mknod", js_mknod);
  set_fn(env, exports, "utimensat", js_utimensat);
  set_fn(env, exports, "getInodeAttrs", js_get_inode_attrs);
  set_fn(env, exports, "setFlags", js_set_flags);
  set_fn(env, exports, "setProjid", js_set_projid);
  // linux/fs.h inode flag bits (the chattr flags pxar maps, spec §8.3)
  napi_value fl;
  napi_create_object(env, &fl);
  set_u32(env, fl, "APPEND", FS_APPEND_FL);
  set_u32(env, fl, "NOATIME", FS_NOATIME_FL);
  set_u32(env, fl, "COMPR", FS_COMPR_FL);
  set_u32(env, fl, "NOCOW", FS_NOCOW_FL);
  set_u32(env, fl, "NODUMP", FS_NODUMP_FL);
  set_u32(env, fl, "DIRSYNC", FS_DIRSYNC_FL);
  set_u32(env, fl, "IMMUTABLE", FS_IMMUTABLE_FL);
  set_u32(env, fl, "SYNC", FS_SYNC_FL);
  set_u32(env, fl, "NOCOMP", FS_NOCOMP_FL);
  set_u32(env, fl, "PROJINHERIT", FS_PROJINHERIT_FL);
  napi_set_named_property(env, exports, "FS_FL", fl);
}

