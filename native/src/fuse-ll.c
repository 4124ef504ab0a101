// A libfuse 3 low-level session driven from the JS thread: the session fd is non-blocking and watched with
// uv_poll; each request calls one JS dispatcher (op, request id, args…) and is answered, now or later, through
// the reply functions below. Request ids go through a slot table, so a request is answered at most once.
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "fuse-node-cache.h"
#include "napi-util.h"

// Operation numbers shared with mount/fuse-lowlevel.ts.
enum {
  OP_LOOKUP = 1, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR,
  OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR,
  OP_READDIR, OP_READDIRPLUS, OP_RELEASEDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR,
  OP_REMOVEXATTR, OP_CREATE, OP_GONE
};

// Attribute record layout (Float64Array), shared with mount/fuse-lowlevel.ts.
enum {
  A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLKSIZE, A_ATIME_S, A_ATIME_NS, A_MTIME_S, A_MTIME_NS,
  A_CTIME_S, A_CTIME_NS, A_ATTR_TIMEOUT, A_ENTRY_TIMEOUT, A_FIELDS
};

// Open reply flags.
enum { OF_DIRECT_IO = 1, OF_KEEP_CACHE = 2, OF_CACHE_DIR = 4, OF_NONSEEKABLE = 8, OF_NOFLUSH = 16 };

// Ids stay below 2^30 (small integers in V8, no heap number per request): 16 bits of slot, 14 of generation.
#define SLOT_BITS 16
#define GEN_MASK 0x3fffu
#define SLOT_MAX (1u << SLOT_BITS)

typedef struct {
  napi_env env;
  struct fuse_session *se;
  uv_poll_t poll;
  struct fuse_buf buf;
  napi_ref dispatch;
  napi_ref resource;
  napi_async_context actx;
  unsigned max_write;
  unsigned max_readahead;
  int readdirplus; // 0 off, 1 always, 2 auto
  long spin_ns;    // busy-wait for the next request after a batch (0: never)
  node_cache_t facts;             // nodes answered here without JS
  uint32_t answered_here[OP_GONE]; // requests so answered, by op
  int watching;
  int gone;
} session_t;

typedef struct {
  fuse_req_t req;
  uint32_t gen;
} slot_t;

static slot_t *slots;
static uint32_t nslots, *free_slots, nfree;

/** A new request id: slot index in the low bits, the slot's generation above (a stale id never matches). */
static int32_t req_put(fuse_req_t req) {
  uint32_t i;
  if (nfree > 0) {
    i = free_slots[--nfree];
  } else {
    if (nslots == SLOT_MAX) return -1;
    if ((nslots & (nslots - 1)) == 0) {
      uint32_t cap = nslots ? nslots * 2 : 64;
      slots = realloc(slots, cap * sizeof *slots);
      free_slots = realloc(free_slots, cap * sizeof *free_slots);
    }
    i = nslots++;
    slots[i].gen = 0;
  }
  slots[i].req = req;
  slots[i].gen = (slots[i].gen + 1) & GEN_MASK;
  if (slots[i].gen == 0) slots[i].gen = 1;
  return (int32_t)((slots[i].gen << SLOT_BITS) | i);
}

/** The request for an id, removed from the table; NULL when it was answered already. */
static fuse_req_t req_take(napi_env env, napi_value v) {
  int32_t id;
  if (napi_get_value_int32(env, v, &id) != napi_ok || id <= 0) return NULL;
  uint32_t i = (uint32_t)id & (SLOT_MAX - 1);
  uint32_t gen = ((uint32_t)id >> SLOT_BITS) & GEN_MASK;
  if (i >= nslots || slots[i].req == NULL || slots[i].gen != gen) return NULL;
  fuse_req_t req = slots[i].req;
  slots[i].req = NULL;
  free_slots[nfree++] = i;
  return req;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/** Calls the dispatcher; a request it leaves unanswered after throwing gets EIO. */
static void dispatch(session_t *s, int op, fuse_req_t req, size_t argc, napi_value *args) {
  napi_env env = s->env;
  napi_value argv[8], fn, recv, result;
  int32_t id = req ? req_put(req) : 0;
  if (id < 0) {
    fuse_reply_err(req, EAGAIN);
    return;
  }
  napi_create_int32(env, op, &argv[0]);
  napi_create_int32(env, id, &argv[1]);
  napi_get_undefined(env, &recv);
  // Always the full argument count, so the dispatcher is called with one shape.
  for (size_t i = 0; i < 6; i++) argv[2 + i] = i < argc ? args[i] : recv;
  napi_get_reference_value(env, s->dispatch, &fn);
  if (napi_call_function(env, recv, fn, 8, argv, &result) != napi_ok) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    fprintf(stderr, "pbsfs: FUSE dispatcher threw on op %d\n", op);
    if (req) {
      fuse_req_t r = req_take(env, argv[1]);
      if (r) fuse_reply_err(r, EIO);
    }
  }
}

#define SESSION(req) ((session_t *)fuse_req_userdata(req))
#define ENV(req) (SESSION(req)->env)

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session_t *s = userdata;
  conn->max_write = s->max_write;
  // Must equal the max_read mount option, which the JS side sets to the same size as max_write.
  conn->max_read = s->max_write;
  conn->max_readahead = s->max_readahead;
  conn->time_gran = 1;
  unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS;
  if (s->readdirplus) want |= FUSE_CAP_READDIRPLUS;
  if (s->readdirplus == 2) want |= FUSE_CAP_READDIRPLUS_AUTO;
  conn->want |= want & conn->capable;
  if (s->readdirplus != 2) conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (!s->readdirplus) conn->want &= ~FUSE_CAP_READDIRPLUS;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, parent), str(env, name)};
  dispatch(SESSION(req), OP_LOOKUP, req, 2, a);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  napi_env env = ENV(req);
  session_t *s = SESSION(req);
  fuse_reply_none(req);
  napi_value arr, ab;
  double *d;
  napi_create_arraybuffer(env, 2 * sizeof(double), (void **)&d, &ab);
  d[0] = (double)ino;
  d[1] = (double)nlookup;
  napi_create_typedarray(env, napi_float64_array, 2, ab, 0, &arr);
  dispatch(s, OP_FORGET, NULL, 1, &arr);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  napi_env env = ENV(req);
  session_t *s = SESSION(req);
  napi_value arr, ab;
  double *d;
  napi_create_arraybuffer(env, 2 * count * sizeof(double), (void **)&d, &ab);
  for (size_t i = 0; i < count; i++) {
    d[2 * i] = (double)forgets[i].ino;
    d[2 * i + 1] = (double)forgets[i].nlookup;
  }
  fuse_reply_none(req);
  napi_create_typedarray(env, napi_float64_array, 2 * count, ab, 0, &arr);
  dispatch(s, OP_FORGET, NULL, 1, &arr);
}

static double fh_of(struct fuse_file_info *fi) { return fi ? (double)fi->fh : -1; }

/** The node's facts when they answer `need` (NC_* bits); counts the request as answered here. */
static const node_fact_t *fact_for(fuse_req_t req, fuse_ino_t ino, uint32_t need, int op) {
  session_t *s = SESSION(req);
  const node_fact_t *f = node_cache_get(&s->facts, ino);
  if (!f || (f->flags & need) != need) return NULL;
  s->answered_here[op]++;
  return f;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  const node_fact_t *f = fact_for(req, ino, NC_ATTRS, OP_GETATTR);
  if (f) {
    struct stat st;
    node_fact_stat(f, &st);
    fuse_reply_attr(req, &st, f->timeout);
    return;
  }
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_GETATTR, req, 2, a);
}

// setattr values: mode, uid, gid, size, atime s/ns, mtime s/ns (the *_NOW flags are resolved here).
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value arr, ab;
  double *d;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  napi_create_arraybuffer(env, 8 * sizeof(double), (void **)&d, &ab);
  d[0] = attr->st_mode;
  d[1] = attr->st_uid;
  d[2] = attr->st_gid;
  d[3] = (double)attr->st_size;
  struct timespec at = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : attr->st_atim;
  struct timespec mt = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : attr->st_mtim;
  d[4] = (double)at.tv_sec;
  d[5] = (double)at.tv_nsec;
  d[6] = (double)mt.tv_sec;
  d[7] = (double)mt.tv_nsec;
  napi_create_typedarray(env, napi_float64_array, 8, ab, 0, &arr);
  int mask = to_set;
  if (mask & FUSE_SET_ATTR_ATIME_NOW) mask |= FUSE_SET_ATTR_ATIME;
  if (mask & FUSE_SET_ATTR_MTIME_NOW) mask |= FUSE_SET_ATTR_MTIME;
  napi_value a[4] = {num(env, ino), arr, num(env, mask), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_SETATTR, req, 4, a);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  napi_value a[1] = {num(ENV(req), ino)};
  dispatch(SESSION(req), OP_READLINK, req, 1, a);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  napi_env env = ENV(req);
  napi_value a[4] = {num(env, parent), str(env, name), num(env, mode), num(env, (double)rdev)};
  dispatch(SESSION(req), OP_MKNOD, req, 4, a);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  napi_env env = ENV(req);
  napi_value a[3] = {num(env, parent), str(env, name), num(env, mode)};
  dispatch(SESSION(req), OP_MKDIR, req, 3, a);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, parent), str(env, name)};
  dispatch(SESSION(req), OP_UNLINK, req, 2, a);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, parent), str(env, name)};
  dispatch(SESSION(req), OP_RMDIR, req, 2, a);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  napi_env env = ENV(req);
  napi_value a[3] = {num(env, parent), str(env, name), str(env, link)};
  dispatch(SESSION(req), OP_SYMLINK, req, 3, a);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  napi_env env = ENV(req);
  napi_value a[5] = {num(env, parent), str(env, name), num(env, newparent), str(env, newname), num(env, flags)};
  dispatch(SESSION(req), OP_RENAME, req, 5, a);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  napi_env env = ENV(req);
  napi_value a[3] = {num(env, ino), num(env, newparent), str(env, newname)};
  dispatch(SESSION(req), OP_LINK, req, 3, a);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  // Reads of such a file go by inode; handle 0 is never one of the daemon's.
  if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC) && fact_for(req, ino, NC_READ_OPEN, OP_OPEN)) {
    fi->fh = 0;
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
    return;
  }
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fi->flags)};
  dispatch(SESSION(req), OP_OPEN, req, 2, a);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[4] = {num(env, ino), num(env, (double)size), num(env, (double)off), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_READ, req, 4, a);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value data;
  void *copy;
  // The session buffer is reused by the next request, and the write completes later.
  napi_create_buffer_copy(env, size, buf, &copy, &data);
  // The writer's uid: direct I/O writes leave dropping setuid/setgid to us.
  napi_value a[5] = {num(env, ino), data, num(env, (double)off), num(env, fh_of(fi)), num(env, fuse_req_ctx(req)->uid)};
  dispatch(SESSION(req), OP_WRITE, req, 5, a);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_FLUSH, req, 2, a);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (fi->fh == 0) {
    SESSION(req)->answered_here[OP_RELEASE]++;
    fuse_reply_err(req, 0);
    return;
  }
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_RELEASE, req, 2, a);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[3] = {num(env, ino), num(env, fh_of(fi)), num(env, datasync)};
  dispatch(SESSION(req), OP_FSYNC, req, 3, a);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fi->flags)};
  dispatch(SESSION(req), OP_OPENDIR, req, 2, a);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[4] = {num(env, ino), num(env, (double)size), num(env, (double)off), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_READDIR, req, 4, a);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[4] = {num(env, ino), num(env, (double)size), num(env, (double)off), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_READDIRPLUS, req, 4, a);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, fh_of(fi))};
  dispatch(SESSION(req), OP_RELEASEDIR, req, 2, a);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  napi_value a[1] = {num(ENV(req), ino)};
  dispatch(SESSION(req), OP_STATFS, req, 1, a);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  napi_env env = ENV(req);
  napi_value data;
  void *copy;
  napi_create_buffer_copy(env, size, value, &copy, &data);
  napi_value a[4] = {num(env, ino), str(env, name), data, num(env, flags)};
  dispatch(SESSION(req), OP_SETXATTR, req, 4, a);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  // ls -l asks for security.selinux and the ACLs of every entry. Where the archive has none at all, "not supported"
  // makes ls stop asking for the rest of the mount (it remembers that per device).
  uint32_t absent = strcmp(name, "security.selinux") == 0 ? NC_NO_SELINUX : strncmp(name, "system.posix_acl_", 17) == 0 ? NC_NO_ACLS : 0;
  if (absent && fact_for(req, ino, absent, OP_GETXATTR)) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  if (fact_for(req, ino, NC_NO_XATTRS, OP_GETXATTR)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  napi_env env = ENV(req);
  napi_value a[3] = {num(env, ino), str(env, name), num(env, (double)size)};
  dispatch(SESSION(req), OP_GETXATTR, req, 3, a);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (fact_for(req, ino, NC_NO_XATTRS, OP_LISTXATTR)) {
    if (size == 0) fuse_reply_xattr(req, 0);
    else fuse_reply_buf(req, NULL, 0);
    return;
  }
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), num(env, (double)size)};
  dispatch(SESSION(req), OP_LISTXATTR, req, 2, a);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  napi_env env = ENV(req);
  napi_value a[2] = {num(env, ino), str(env, name)};
  dispatch(SESSION(req), OP_REMOVEXATTR, req, 2, a);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  napi_env env = ENV(req);
  napi_value a[4] = {num(env, parent), str(env, name), num(env, mode), num(env, fi->flags)};
  dispatch(SESSION(req), OP_CREATE, req, 4, a);
}

static const struct fuse_lowlevel_ops ll_ops = {
  .init = ll_init, .lookup = ll_lookup, .forget = ll_forget, .forget_multi = ll_forget_multi,
  .getattr = ll_getattr, .setattr = ll_setattr, .readlink = ll_readlink, .mknod = ll_mknod, .mkdir = ll_mkdir,
  .unlink = ll_unlink, .rmdir = ll_rmdir, .symlink = ll_symlink, .rename = ll_rename, .link = ll_link,
  .open = ll_open, .read = ll_read, .write = ll_write, .flush = ll_flush, .release = ll_release,
  .fsync = ll_fsync, .opendir = ll_opendir, .readdir = ll_readdir, .readdirplus = ll_readdirplus,
  .releasedir = ll_releasedir, .statfs = ll_statfs, .setxattr = ll_setxattr, .getxattr = ll_getxattr,
  .listxattr = ll_listxattr, .removexattr = ll_removexattr, .create = ll_create,
};

static void on_closed(uv_handle_t *h) {
  session_t *s = h->data;
  fuse_session_destroy(s->se);
  s->se = NULL;
  node_cache_free(&s->facts);
  free(s->buf.mem);
  s->buf.mem = NULL;
  napi_async_destroy(s->env, s->actx);
  napi_delete_reference(s->env, s->dispatch);
  napi_delete_reference(s->env, s->resource);
}

/** Stops watching the fd; the session is destroyed (fd closed) once libuv has let go of it. */
static void stop_watching(session_t *s) {
  if (!s->watching) return;
  s->watching = 0;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

// Requests handled per wake-up before other I/O gets a turn (the poll is level-triggered and fires again).
#define BATCH 64
// Longest stay in one wake-up while requests keep coming, so timers and other I/O are never starved.
#define MAX_STAY_NS 2000000L

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

/** Handles the requests already queued (at most BATCH); replies given in this JS turn (microtasks included) are sent
 *  when the callback scope closes. Returns the count handled, or -1 when the session ended. */
static int run_batch(session_t *s) {
  napi_env env = s->env;
  napi_callback_scope cs;
  napi_value resource;
  napi_get_reference_value(env, s->resource, &resource);
  napi_open_callback_scope(env, resource, s->actx, &cs);
  int n = 0, ended = 0;
  while (n < BATCH && s->watching) {
    int r = fuse_session_receive_buf(s->se, &s->buf);
    if (r == -EAGAIN || r == -EINTR) break;
    if (r <= 0 || fuse_session_exited(s->se)) {
      ended = 1;
      break;
    }
    napi_handle_scope inner;
    napi_open_handle_scope(env, &inner);
    fuse_session_process_buf(s->se, &s->buf);
    napi_close_handle_scope(env, inner);
    n++;
  }
  if (ended && !s->gone) {
    s->gone = 1;
    stop_watching(s);
    dispatch(s, OP_GONE, NULL, 0, NULL);
  }
  napi_close_callback_scope(env, cs);
  return ended ? -1 : n;
}

/** Waits up to spin_ns for the next request by polling, without sleeping. On this kind of VM an idle vCPU halts and
 *  every cross-CPU wake-up costs tens of µs; a client issuing requests one after another (ls -lR, tar, cp -a) sends
 *  its next one soon after our reply (within µs, or after reading its next source file: cp -a), so catching it awake
 *  halves each round trip. Gives up early when the event loop has other work ready (its epoll fd turns readable), and
 *  does not start while thread-pool jobs (chunk decoding) are in flight: they need the CPU, and their completion
 *  wakes the loop anyway. Returns 1 when a request is waiting. */
static int spin_for_request(session_t *s, long spin_ns) {
  if (s->poll.loop->active_reqs.count > 0) return 0;
  struct pollfd p[2] = {
    {.fd = fuse_session_fd(s->se), .events = POLLIN},
    {.fd = uv_backend_fd(s->poll.loop), .events = POLLIN},
  };
  long until = now_ns() + spin_ns;
  do {
    if (poll(p, 2, 0) > 0) return (p[0].revents & POLLIN) != 0;
  } while (now_ns() < until);
  return 0;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  session_t *s = h->data;
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  if (status < 0) {
    if (!s->gone) {
      s->gone = 1;
      stop_watching(s);
      dispatch(s, OP_GONE, NULL, 0, NULL);
    }
  } else {
    long deadline = now_ns() + MAX_STAY_NS;
    while (s->watching && run_batch(s) >= 0 && s->spin_ns > 0 && now_ns() < deadline &&
           spin_for_request(s, s->spin_ns)) {
    }
  }
  napi_close_handle_scope(env, hs);
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *out = malloc(len + 1);
  napi_get_value_string_utf8(env, v, out, len + 1, &len);
  return out;
}

static session_t *get_session(napi_env env, napi_value v) {
  session_t *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok) return NULL;
  return s;
}

// mount(mountpoint, args: string[] (argv[0] first, then -o …), maxWrite, maxReadahead, readdirplus, dispatch, spinMicros)
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return throw_type(env, "mount(mountpoint, args, maxWrite, maxReadahead, readdirplus, dispatch, spinMicros)");
  uint32_t argc = 0, max_write, max_ra, spin_us;
  int32_t rdp;
  napi_get_array_length(env, argv[1], &argc);
  napi_get_value_uint32(env, argv[2], &max_write);
  napi_get_value_uint32(env, argv[3], &max_ra);
  napi_get_value_int32(env, argv[4], &rdp);
  napi_get_value_uint32(env, argv[6], &spin_us);
  char *mnt = get_string(env, argv[0]);
  char **args = calloc(argc + 1, sizeof *args);
  for (uint32_t i = 0; i < argc; i++) {
    napi_value e;
    napi_get_element(env, argv[1], i, &e);
    args[i] = get_string(env, e);
  }
  session_t *s = calloc(1, sizeof *s);
  s->env = env;
  s->max_write = max_write;
  s->max_readahead = max_ra;
  s->readdirplus = rdp;
  s->spin_ns = (long)spin_us * 1000L;
  struct fuse_args fargs = FUSE_ARGS_INIT((int)argc, args);
  s->se = fuse_session_new(&fargs, &ll_ops, sizeof ll_ops, s);
  fuse_opt_free_args(&fargs);
  for (uint32_t i = 0; i < argc; i++) free(args[i]);
  free(args);
  if (!s->se) {
    free(mnt);
    free(s);
    return throw_errno(env, EINVAL, "fuse_session_new");
  }
  if (fuse_session_mount(s->se, mnt) != 0) {
    free(mnt);
    fuse_session_destroy(s->se);
    free(s);
    return throw_errno(env, EIO, "fuse_session_mount");
  }
  free(mnt);
  int fd = fuse_session_fd(s->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "pbsfs:fuse", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->actx);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_create_reference(env, argv[5], 1, &s->dispatch);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->watching = 1;
  napi_value ext;
  napi_create_external(env, s, NULL, NULL, &ext);
  return ext;
}

// close(session): stops serving (after an unmount, or to give up); the kernel side then fails with ENOTCONN.
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return throw_type(env, "close(session)");
  session_t *s = get_session(env, argv[0]);
  if (s) {
    s->gone = 1;
    stop_watching(s);
  }
  return undefined(env);
}

static void fill_stat(struct stat *st, const double *a) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)a[A_INO];
  st->st_mode = (mode_t)a[A_MODE];
  st->st_nlink = (nlink_t)a[A_NLINK];
  st->st_uid = (uid_t)a[A_UID];
  st->st_gid = (gid_t)a[A_GID];
  st->st_rdev = (dev_t)a[A_RDEV];
  st->st_size = (off_t)a[A_SIZE];
  st->st_blksize = (blksize_t)a[A_BLKSIZE];
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim.tv_sec = (time_t)a[A_ATIME_S];
  st->st_atim.tv_nsec = (long)a[A_ATIME_NS];
  st->st_mtim.tv_sec = (time_t)a[A_MTIME_S];
  st->st_mtim.tv_nsec = (long)a[A_MTIME_NS];
  st->st_ctim.tv_sec = (time_t)a[A_CTIME_S];
  st->st_ctim.tv_nsec = (long)a[A_CTIME_NS];
}

static void fill_entry(struct fuse_entry_param *e, const double *a) {
  memset(e, 0, sizeof *e);
  e->ino = (fuse_ino_t)a[A_INO];
  fill_stat(&e->attr, a);
  e->attr_timeout = a[A_ATTR_TIMEOUT];
  e->entry_timeout = a[A_ENTRY_TIMEOUT];
}

static const double *get_attrs(napi_env env, napi_value v, size_t min) {
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL) != napi_ok || type != napi_float64_array || len < min) return NULL;
  return data;
}

/** Record `index` of an attribute array (records are A_FIELDS doubles). */
static const double *get_record(napi_env env, napi_value array, napi_value index) {
  uint32_t i = 0;
  napi_get_value_uint32(env, index, &i);
  const double *a = get_attrs(env, array, ((size_t)i + 1) * A_FIELDS);
  return a ? a + (size_t)i * A_FIELDS : NULL;
}

static napi_value result(napi_env env, int r) {
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

// Every reply returns 0, a negative errno from libfuse (the kernel dropped the request), or 1 when the id was
// answered already.
#define TAKE(n, usage)                                                    \
  napi_value argv[n];                                                     \
  if (!get_args(env, info, n, argv)) return throw_type(env, usage);       \
  fuse_req_t req = req_take(env, argv[0]);                                \
  if (!req) return result(env, 1);

// keepNode(session, attrs, index, flags): record `index` of `attrs` describes a node that never changes; `flags`
// (NC_*) say which requests about it the session may answer by itself from now on.
static napi_value js_keep_node(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return throw_type(env, "keepNode(session, attrs, index, flags)");
  session_t *s = get_session(env, argv[0]);
  const double *a = get_record(env, argv[1], argv[2]);
  uint32_t flags = 0;
  napi_get_value_uint32(env, argv[3], &flags);
  if (!s || !a) return throw_type(env, "keepNode(session, attrs, index, flags)");
  node_fact_t f = {
    .ino = (uint64_t)a[A_INO], .rdev = (uint64_t)a[A_RDEV], .size = (uint64_t)a[A_SIZE], .mtime_s = (int64_t)a[A_MTIME_S],
    .mtime_ns = (uint32_t)a[A_MTIME_NS], .mode = (uint32_t)a[A_MODE], .nlink = (uint32_t)a[A_NLINK], .uid = (uint32_t)a[A_UID],
    .gid = (uint32_t)a[A_GID], .blksize = (uint32_t)a[A_BLKSIZE], .flags = flags, .timeout = a[A_ATTR_TIMEOUT],
  };
  node_cache_put(&s->facts, &f);
  return undefined(env);
}

/** The (session, ino) arguments of a call; false when they are missing. */
static int session_and_ino(napi_env env, napi_callback_info info, session_t **s, double *ino) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return 0;
  *s = get_session(env, argv[0]);
  *ino = 0;
  napi_get_value_double(env, argv[1], ino);
  return 1;
}

// dropNode(session, ino): the kernel forgot the node.
static napi_value js_drop_node(napi_env env, napi_callback_info info) {
  session_t *s;
  double ino;
  if (!session_and_ino(env, info, &s, &ino)) return throw_type(env, "dropNode(session, ino)");
  if (s) node_cache_drop(&s->facts, (uint64_t)ino);
  return undefined(env);
}

// answeredHere(session): requests answered without JS, indexed by op number.
static napi_value js_answered_here(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  if (!get_args(env, info, 1, argv)) return throw_type(env, "answeredHere(session)");
  session_t *s = get_session(env, argv[0]);
  napi_create_array_with_length(env, OP_GONE, &arr);
  for (uint32_t op = 0; op < OP_GONE; op++) napi_set_element(env, arr, op, num(env, s ? s->answered_here[op] : 0));
  return arr;
}

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  TAKE(2, "replyErr(req, errno)");
  int32_t err;
  napi_get_value_int32(env, argv[1], &err);
  return result(env, fuse_reply_err(req, err < 0 ? -err : err));
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  TAKE(3, "replyEntry(req, attrs, index)");
  const double *a = get_record(env, argv[1], argv[2]);
  if (!a) return result(env, fuse_reply_err(req, EIO));
  struct fuse_entry_param e;
  fill_entry(&e, a);
  return result(env, fuse_reply_entry(req, &e));
}

static void fill_open(struct fuse_file_info *fi, double fh, uint32_t flags) {
  memset(fi, 0, sizeof *fi);
  fi->fh = (uint64_t)fh;
  fi->direct_io = !!(flags & OF_DIRECT_IO);
  fi->keep_cache = !!(flags & OF_KEEP_CACHE);
  fi->cache_readdir = !!(flags & OF_CACHE_DIR);
  fi->nonseekable = !!(flags & OF_NONSEEKABLE);
  fi->noflush = !!(flags & OF_NOFLUSH);
}

static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  TAKE(4, "replyCreate(req, attrs, fh, openFlags)");
  const double *a = get_attrs(env, argv[1], A_FIELDS);
  if (!a) return result(env, fuse_reply_err(req, EIO));
  double fh;
  uint32_t flags;
  napi_get_value_double(env, argv[2], &fh);
  napi_get_value_uint32(env, argv[3], &flags);
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  fill_entry(&e, a);
  fill_open(&fi, fh, flags);
  return result(env, fuse_reply_create(req, &e, &fi));
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  TAKE(3, "replyAttr(req, attrs, index)");
  const double *a = get_record(env, argv[1], argv[2]);
  if (!a) return result(env, fuse_reply_err(req, EIO));
  struct stat st;
  fill_stat(&st, a);
  return result(env, fuse_reply_attr(req, &st, a[A_ATTR_TIMEOUT]));
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  TAKE(3, "replyOpen(req, fh, openFlags)");
  double fh;
  uint32_t flags;
  napi_get_value_double(env, argv[1], &fh);
  napi_get_value_uint32(env, argv[2], &flags);
  struct fuse_file_info fi;
  fill_open(&fi, fh, flags);
  return result(env, fuse_reply_open(req, &fi));
}

static napi_value js_reply_data(napi_env env, napi_callback_info info) {
  TAKE(2, "replyData(req, bytes)");
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) {
    return result(env, fuse_reply_err(req, EIO));
  }
  return result(env, fuse_reply_buf(req, data, len));
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  TAKE(2, "replyWrite(req, count)");
  double n;
  napi_get_value_double(env, argv[1], &n);
  return result(env, fuse_reply_write(req, (size_t)n));
}

static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  TAKE(2, "replyReadlink(req, target)");
  char *target = get_string(env, argv[1]);
  if (!target) return result(env, fuse_reply_err(req, EIO));
  int r = fuse_reply_readlink(req, target);
  free(target);
  return result(env, r);
}

static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  TAKE(2, "replyXattrSize(req, size)");
  double n;
  napi_get_value_double(env, argv[1], &n);
  return result(env, fuse_reply_xattr(req, (size_t)n));
}

static napi_value js_reply_none(napi_env env, napi_callback_info info) {
  TAKE(1, "replyNone(req)");
  fuse_reply_none(req);
  return result(env, 0);
}

static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  TAKE(2, "replyStatfs(req, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax])");
  const double *a = get_attrs(env, argv[1], 9);
  if (!a) return result(env, fuse_reply_err(req, EIO));
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = (unsigned long)a[0];
  st.f_frsize = (unsigned long)a[1];
  st.f_blocks = (fsblkcnt_t)a[2];
  st.f_bfree = (fsblkcnt_t)a[3];
  st.f_bavail = (fsblkcnt_t)a[4];
  st.f_files = (fsfilcnt_t)a[5];
  st.f_ffree = (fsfilcnt_t)a[6];
  st.f_favail = (fsfilcnt_t)a[7];
  st.f_namemax = (unsigned long)a[8];
  return result(env, fuse_reply_statfs(req, &st));
}

// replyDir(req, plus, size, offset, names: string[], attrs: Float64Array (A_FIELDS per name)): entries from
// `offset` on, as many as fit in `size` bytes; entry i continues at offset i + 1. Returns how many were added
// (readdirplus entries other than . and .. each count as a lookup), or -1 when the request was answered already.
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return throw_type(env, "replyDir(req, plus, size, offset, names, attrs)");
  fuse_req_t req = req_take(env, argv[0]);
  if (!req) return result(env, -1);
  bool plus;
  double size_d, off_d;
  uint32_t count;
  napi_get_value_bool(env, argv[1], &plus);
  napi_get_value_double(env, argv[2], &size_d);
  napi_get_value_double(env, argv[3], &off_d);
  napi_get_array_length(env, argv[4], &count);
  napi_typedarray_type type;
  size_t alen;
  double *attrs;
  if (napi_get_typedarray_info(env, argv[5], &type, &alen, (void **)&attrs, NULL, NULL) != napi_ok || type != napi_float64_array ||
      alen < (size_t)count * A_FIELDS) {
    fuse_reply_err(req, EIO);
    return result(env, 0);
  }
  size_t size = (size_t)size_d, used = 0;
  char *buf = malloc(size ? size : 1);
  char name[1024];
  int added = 0;
  for (uint32_t i = (uint32_t)off_d; i < count; i++) {
    napi_value v;
    size_t nlen;
    napi_get_element(env, argv[4], i, &v);
    if (napi_get_value_string_utf8(env, v, name, sizeof name, &nlen) != napi_ok) continue;
    const double *a = attrs + (size_t)i * A_FIELDS;
    size_t n;
    if (plus) {
      struct fuse_entry_param e;
      fill_entry(&e, a);
      n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
    } else {
      struct stat st;
      fill_stat(&st, a);
      n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
    }
    if (n > size - used) break;
    used += n;
    added++;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
  return result(env, added);
}

// notifyInvalInode(session, ino): the kernel drops the node's cached attributes (no request; it asks at the next
// stat). For changes it cannot see in a reply: an access ACL set with setxattr changes the mode.
static napi_value js_notify_inval_inode(napi_env env, napi_callback_info info) {
  session_t *s;
  double ino;
  if (!session_and_ino(env, info, &s, &ino)) return throw_type(env, "notifyInvalInode(session, ino)");
  if (!s || !s->se || s->gone) return result(env, -ENOTCONN);
  return result(env, fuse_lowlevel_notify_inval_inode(s->se, (fuse_ino_t)ino, -1, 0));
}

void register_fuse(napi_env env, napi_value exports) {
  napi_value fuse;
  napi_create_object(env, &fuse);
  set_fn(env, fuse, "mount", js_mount);
  set_fn(env, fuse, "close", js_close);
  set_fn(env, fuse, "keepNode", js_keep_node);
  set_fn(env, fuse, "dropNode", js_drop_node);
  set_fn(env, fuse, "answeredHere", js_answered_here);
  set_u32(env, fuse, "NC_ATTRS", NC_ATTRS);
  set_u32(env, fuse, "NC_NO_XATTRS", NC_NO_XATTRS);
  set_u32(env, fuse, "NC_READ_OPEN", NC_READ_OPEN);
  set_u32(env, fuse, "NC_NO_SELINUX", NC_NO_SELINUX);
  set_u32(env, fuse, "NC_NO_ACLS", NC_NO_ACLS);
  set_fn(env, fuse, "replyErr", js_reply_err);
  set_fn(env, fuse, "replyEntry", js_reply_entry);
  set_fn(env, fuse, "replyCreate", js_reply_create);
  set_fn(env, fuse, "replyAttr", js_reply_attr);
  set_fn(env, fuse, "replyOpen", js_reply_open);
  set_fn(env, fuse, "replyData", js_reply_data);
  set_fn(env, fuse, "replyWrite", js_reply_write);
  set_fn(env, fuse, "replyReadlink", js_reply_readlink);
  set_fn(env, fuse, "replyXattrSize", js_reply_xattr_size);
  set_fn(env, fuse, "replyNone", js_reply_none);
  set_fn(env, fuse, "replyStatfs", js_reply_statfs);
  set_fn(env, fuse, "replyDir", js_reply_dir);
  set_fn(env, fuse, "notifyInvalInode", js_notify_inval_inode);
  set_u32(env, fuse, "ATTR_FIELDS", A_FIELDS);
  napi_set_named_property(env, exports, "fuse", fuse);
}
