// Batched metadata reader for the archiver (spec §8.3, §8.4): one call lists a directory and reads, for every entry,
// what a pxar ENTRY needs (lstat fields, the xattrs pxar may archive incl. ACLs and fcaps, chattr flags, project id).
// scanDir runs on the libuv thread pool, so the JS thread gets a whole directory in one callback instead of a few
// synchronous syscalls per file. Regular files and directories are opened O_PATH first and reopened through
// /proc/self/fd only after fstat says what they are, so no device node or fifo is ever opened for reading.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "inode-fd.h"
#include "napi-util.h"

#define PATH_BUF 4097
#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX 65536

// Per entry: mode, nlink, uid, gid, size, mtime seconds, mtime nanoseconds, chattr flags (-1: none), project id (-1: none).
#define NUM_FIELDS 9
// Per entry: st_dev, st_ino, st_rdev.
#define ID_FIELDS 3

typedef struct {
  char *name;
  double nums[NUM_FIELDS];
  int64_t ids[ID_FIELDS];
  // xattrs as name NUL u32le-length value, repeated; NULL when none were read
  char *xattrs;
  size_t xattrs_len;
  int err;
  const char *syscall;
  // contents read along (small regular files, see scanDir's readLimit): offset into the job's arena, or -1
  int64_t content_off;
  // a symlink's target (NULL when not a symlink or it could not be read: the archiver then reads it itself)
  char *link;
  size_t link_len;
} entry_rec;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char path[PATH_BUF];
  entry_rec *entries;
  size_t count, cap;
  int err;
  const char *syscall;
  // small files are read along while they fit: at most max_file bytes each, budget bytes in all
  size_t max_file, budget;
  char *arena;
  size_t arena_len;
} scan_job;

// The xattrs an archive may carry (read-metadata.ts decides which become XATTR, ACL or FCAPS items).
static int wanted_xattr(const char *name, int is_dir) {
  return strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 || strcmp(name, "security.NTACL") == 0 ||
         strcmp(name, "security.capability") == 0 || strcmp(name, "system.posix_acl_access") == 0 ||
         (is_dir && strcmp(name, "system.posix_acl_default") == 0);
}

static int append(entry_rec *r, size_t *cap, const void *data, size_t len) {
  if (r->xattrs_len + len > *cap) {
    size_t ncap = *cap ? *cap * 2 : 256;
    while (ncap < r->xattrs_len + len) ncap *= 2;
    char *n = realloc(r->xattrs, ncap);
    if (n == NULL) return -ENOMEM;
    r->xattrs = n;
    *cap = ncap;
  }
  memcpy(r->xattrs + r->xattrs_len, data, len);
  r->xattrs_len += len;
  return 0;
}

// Reads the wanted xattrs of open file fd into r->xattrs. Returns 0 or -errno (with r->syscall set).
static int read_xattrs(int fd, int is_dir, entry_rec *r) {
  char *list = NULL, *value = NULL;
  ssize_t n;
  size_t cap = 0;
  int rc = 0;
  // The list can grow between the size query and the read; retry a few times on ERANGE.
  for (int attempt = 0;; attempt++) {
    n = flistxattr(fd, NULL, 0);
    if (n < 0) {
      rc = errno == EOPNOTSUPP ? 0 : -errno;
      goto out;
    }
    if (n == 0) goto out;
    if (n > XATTR_LIST_MAX_BYTES) {
      rc = -E2BIG;
      goto out;
    }
    free(list);
    list = malloc((size_t)n);
    if (list == NULL) {
      rc = -ENOMEM;
      goto out;
    }
    n = flistxattr(fd, list, (size_t)n);
    if (n >= 0) break;
    if (errno != ERANGE || attempt >= 3) {
      rc = -errno;
      goto out;
    }
  }
  for (ssize_t at = 0; at < n;) {
    const char *name = list + at;
    size_t len = strnlen(name, (size_t)(n - at));
    at += (ssize_t)len + 1;
    if (len == 0 || !wanted_xattr(name, is_dir)) continue;
    if (value == NULL && (value = malloc(XATTR_VALUE_MAX)) == NULL) {
      rc = -ENOMEM;
      goto out;
    }
    ssize_t vn = fgetxattr(fd, name, value, XATTR_VALUE_MAX);
    if (vn < 0) {
      if (errno == ENODATA) continue; // removed since the listing
      rc = -errno;
      r->syscall = "fgetxattr";
      goto out;
    }
    uint32_t vlen = (uint32_t)vn;
    if ((rc = append(r, &cap, name, len + 1)) || (rc = append(r, &cap, &vlen, 4)) || (rc = append(r, &cap, value, (size_t)vn))) goto out;
  }
out:
  if (rc && r->syscall == NULL) r->syscall = "flistxattr";
  free(list);
  free(value);
  return rc;
}

// Reads the whole file into the job's arena when it fits the limits and still has the size fstat reported
// (one byte more is asked for, to notice growth); anything else is left to the archiver's normal read.
static void read_contents(scan_job *job, int fd, const struct stat *st, entry_rec *r) {
  size_t size = (size_t)st->st_size;
  if (!S_ISREG(st->st_mode) || st->st_nlink != 1 || size > job->max_file || size > job->budget) return;
  if (job->arena == NULL && (job->arena = malloc(job->budget + 1)) == NULL) return;
  size_t got = 0;
  while (got <= size) {
    ssize_t n = pread(fd, job->arena + job->arena_len + got, size + 1 - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  if (got != size) return;
  r->content_off = (int64_t)job->arena_len;
  job->arena_len += size;
  job->budget -= size;
}

// Fills r from the entry `name` below dirfd (or the path itself with AT_FDCWD). d_type is readdir's hint.
static void scan_entry(scan_job *job, int dirfd, const char *name, unsigned char d_type, entry_rec *r) {
  struct stat st;
  int fd = -1;
  r->nums[7] = -1;
  r->nums[8] = -1;
  r->content_off = -1;
  if (d_type != DT_UNKNOWN && d_type != DT_REG && d_type != DT_DIR) {
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      r->err = errno;
      r->syscall = "lstat";
      return;
    }
  } else {
    fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
      r->err = errno;
      r->syscall = "lstat";
      if (fd >= 0) close(fd);
      return;
    }
  }
  r->nums[0] = st.st_mode;
  r->nums[1] = (double)st.st_nlink;
  r->nums[2] = st.st_uid;
  r->nums[3] = st.st_gid;
  r->nums[4] = (double)st.st_size;
  r->nums[5] = (double)st.st_mtim.tv_sec;
  r->nums[6] = (double)st.st_mtim.tv_nsec;
  r->ids[0] = (int64_t)st.st_dev;
  r->ids[1] = (int64_t)st.st_ino;
  r->ids[2] = (int64_t)st.st_rdev;
  int is_dir = S_ISDIR(st.st_mode);
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_BUF];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target);
    if (n >= 0 && (size_t)n < sizeof target && (r->link = malloc((size_t)n + 1)) != NULL) {
      memcpy(r->link, target, (size_t)n);
      r->link_len = (size_t)n;
    }
  }
  if (fd < 0) return;
  if (!S_ISREG(st.st_mode) && !is_dir) {
    close(fd);
    return;
  }
  // Reopen the very inode checked above: FS_IOC_GETFLAGS, FSGETXATTR and f*xattr need a real descriptor.
  int rfd = reopen_inode(fd);
  close(fd);
  if (rfd < 0) {
    r->err = -rfd;
    r->syscall = "open";
    return;
  }
  int rc = read_xattrs(rfd, is_dir, r);
  if (rc < 0) {
    r->err = -rc;
    close(rfd);
    return;
  }
  int attr = 0;
  if (ioctl(rfd, FS_IOC_GETFLAGS, &attr) == 0) r->nums[7] = (uint32_t)attr;
  else if (!is_unsupported(errno)) {
    r->err = errno;
    r->syscall = "ioctl(FS_IOC_GETFLAGS)";
  }
  struct fsxattr fsx;
  memset(&fsx, 0, sizeof fsx);
  if (ioctl(rfd, FS_IOC_FSGETXATTR, &fsx) == 0) r->nums[8] = fsx.fsx_projid;
  else if (!is_unsupported(errno) && r->err == 0) {
    r->err = errno;
    r->syscall = "ioctl(FS_IOC_FSGETXATTR)";
  }
  if (r->err == 0 && job->budget > 0) read_contents(job, rfd, &st, r);
  close(rfd);
}

static entry_rec *add_entry(scan_job *job, const char *name) {
  if (job->count == job->cap) {
    size_t ncap = job->cap ? job->cap * 2 : 64;
    entry_rec *n = realloc(job->entries, ncap * sizeof *n);
    if (n == NULL) return NULL;
    job->entries = n;
    job->cap = ncap;
  }
  entry_rec *r = &job->entries[job->count];
  memset(r, 0, sizeof *r);
  if ((r->name = strdup(name)) == NULL) return NULL;
  job->count++;
  return r;
}

static void scan_execute(napi_env env, void *data) {
  (void)env;
  scan_job *job = data;
  int dfd = open(job->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    job->err = errno;
    job->syscall = "opendir";
    return;
  }
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    job->err = errno;
    job->syscall = "opendir";
    close(dfd);
    return;
  }
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno != 0) {
        job->err = errno;
        job->syscall = "readdir";
      }
      break;
    }
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    entry_rec *r = add_entry(job, n);
    if (r == NULL) {
      job->err = ENOMEM;
      job->syscall = "readdir";
      break;
    }
    scan_entry(job, dfd, n, de->d_type, r);
  }
  closedir(d);
}

static void free_job(scan_job *job) {
  for (size_t i = 0; i < job->count; i++) {
    free(job->entries[i].name);
    free(job->entries[i].xattrs);
    free(job->entries[i].link);
  }
  free(job->entries);
  free(job->arena);
  free(job);
}

// The result object: { names: Buffer[], nums: Float64Array, ids: BigInt64Array, xattrs: sparse (Buffer)[],
// errors: sparse (Error)[], contents: sparse (Buffer)[], links: sparse (Buffer)[] }, NUM_FIELDS and ID_FIELDS values
// per entry. The contents are views of one Buffer per directory.
static napi_value build_result(napi_env env, scan_job *job) {
  napi_value result, names, xattrs, errors, contents, links, nums, ids, ab, arena = NULL;
  size_t n = job->count;
  napi_create_object(env, &result);
  napi_create_array_with_length(env, n, &names);
  napi_create_array(env, &xattrs);
  napi_create_array(env, &errors);
  napi_create_array(env, &contents);
  napi_create_array(env, &links);
  void *arena_data = NULL;
  void *nums_data, *ids_data;
  napi_create_arraybuffer(env, n * NUM_FIELDS * sizeof(double), &nums_data, &ab);
  napi_create_typedarray(env, napi_float64_array, n * NUM_FIELDS, ab, 0, &nums);
  napi_create_arraybuffer(env, n * ID_FIELDS * sizeof(int64_t), &ids_data, &ab);
  napi_create_typedarray(env, napi_bigint64_array, n * ID_FIELDS, ab, 0, &ids);
  for (size_t i = 0; i < n; i++) {
    entry_rec *r = &job->entries[i];
    napi_value v;
    void *p;
    napi_create_buffer_copy(env, strlen(r->name), r->name, &p, &v);
    napi_set_element(env, names, (uint32_t)i, v);
    memcpy((double *)nums_data + i * NUM_FIELDS, r->nums, sizeof r->nums);
    memcpy((int64_t *)ids_data + i * ID_FIELDS, r->ids, sizeof r->ids);
    if (r->xattrs_len > 0) {
      napi_create_buffer_copy(env, r->xattrs_len, r->xattrs, &p, &v);
      napi_set_element(env, xattrs, (uint32_t)i, v);
    }
    if (r->link != NULL) {
      napi_create_buffer_copy(env, r->link_len, r->link, &p, &v);
      napi_set_element(env, links, (uint32_t)i, v);
    }
    if (r->content_off >= 0) {
      // One buffer for the directory's inlined contents, made at the first file that has some (0 bytes when all of
      // them are empty files; job->arena exists once a content read was tried).
      if (arena == NULL) napi_create_buffer_copy(env, job->arena_len, job->arena, &arena_data, &arena);
      napi_value arena_ab;
      size_t off;
      napi_get_typedarray_info(env, arena, NULL, NULL, NULL, &arena_ab, &off);
      napi_create_typedarray(env, napi_uint8_array, (size_t)r->nums[4], arena_ab, off + (size_t)r->content_off, &v);
      napi_set_element(env, contents, (uint32_t)i, v);
    }
    if (r->err) {
      throw_errno(env, r->err, r->syscall ? r->syscall : "lstat");
      napi_get_and_clear_last_exception(env, &v);
      napi_set_element(env, errors, (uint32_t)i, v);
    }
  }
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "nums", nums);
  napi_set_named_property(env, result, "ids", ids);
  napi_set_named_property(env, result, "xattrs", xattrs);
  napi_set_named_property(env, result, "errors", errors);
  napi_set_named_property(env, result, "contents", contents);
  napi_set_named_property(env, result, "links", links);
  return result;
}

static void scan_complete(napi_env env, napi_status status, void *data) {
  scan_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_resolve_deferred(env, job->deferred, build_result(env, job));
  } else {
    throw_errno(env, status == napi_ok ? job->err : EINTR, job->syscall ? job->syscall : "opendir");
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

// Copies a path argument (Buffer/Uint8Array or string) into out; returns 0 (and throws) when it is not usable.
static int path_arg(napi_env env, napi_value v, char *out, const char *syscall) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  size_t len;
  if (is_typed) {
    napi_typedarray_type type;
    size_t offset;
    void *data;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) goto bad_type;
    if (len >= PATH_BUF || memchr(data, 0, len) != NULL) goto too_long;
    memcpy(out, data, len);
    out[len] = 0;
    return 1;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) goto bad_type;
  if (len >= PATH_BUF) goto too_long;
  napi_get_value_string_utf8(env, v, out, PATH_BUF, &len);
  if (strlen(out) != len) goto too_long;
  return 1;
bad_type:
  throw_type(env, "path must be a string or Buffer");
  return 0;
too_long:
  throw_errno(env, ENAMETOOLONG, syscall);
  return 0;
}

// scanDir(path, maxFile, readBudget) -> Promise of the result object above, for every entry of the directory
// (without . and ..); regular files of at most maxFile bytes are read along while readBudget lasts (0: none).
static napi_value js_scan_dir(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t max_file, budget;
  if (!get_args(env, info, 3, argv) || napi_get_value_uint32(env, argv[1], &max_file) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &budget) != napi_ok)
    return throw_type(env, "scanDir(path, maxFile, readBudget)");
  scan_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM, "opendir");
  job->max_file = max_file;
  job->budget = budget;
  if (!path_arg(env, argv[0], job->path, "opendir")) {
    free(job);
    return NULL;
  }
  napi_value promise = queue_promise_job(env, "pbsfs_scandir", scan_execute, scan_complete, job, &job->work, &job->deferred);
  if (!promise) {
    free(job);
    return throw_errno(env, EAGAIN, "opendir");
  }
  return promise;
}

// scanPath(path) -> the same result object for the one entry at path (synchronous: for an archive's root).
static napi_value js_scan_path(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return throw_type(env, "scanPath(path)");
  scan_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM, "lstat");
  if (!path_arg(env, argv[0], job->path, "lstat")) {
    free(job);
    return NULL;
  }
  entry_rec *r = add_entry(job, job->path);
  if (r == NULL) {
    free_job(job);
    return throw_errno(env, ENOMEM, "lstat");
  }
  scan_entry(job, AT_FDCWD, job->path, DT_UNKNOWN, r);
  napi_value result = build_result(env, job);
  free_job(job);
  return result;
}

void register_scandir(napi_env env, napi_value exports) {
  set_fn(env, exports, "scanDir", js_scan_dir);
  set_fn(env, exports, "scanPath", js_scan_path);
}
