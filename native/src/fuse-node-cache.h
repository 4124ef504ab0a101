// Facts about nodes that never change (inside finished snapshots), kept in C so the session answers getattr,
// getxattr/listxattr, read-only open and release of them without entering JS: a tree walk (ls -lR, tar) is mostly
// such requests, and each trip into JS costs more than the answer itself.
#pragma once
#include <stdint.h>
#include <sys/stat.h>

enum {
  NC_ATTRS = 1,     // stat and attribute lifetime below are final
  NC_NO_XATTRS = 2, // no xattrs at all (ACLs and file capabilities included)
  NC_READ_OPEN = 4, // a regular file whose read-only opens need no handle of the daemon's
  NC_NO_SELINUX = 8, // its archive holds no SELinux labels: security.selinux is not supported there
  NC_NO_ACLS = 16,   // its archive holds no POSIX ACLs: system.posix_acl_* are not supported there
};

typedef struct {
  uint64_t ino; // 0: empty slot
  uint64_t rdev, size;
  int64_t mtime_s;
  uint32_t mtime_ns, mode, nlink, uid, gid, blksize, flags;
  double timeout;
} node_fact_t;

typedef struct {
  node_fact_t *slots;
  uint32_t cap, count; // cap is 0 or a power of two
} node_cache_t;

/** Inserts or replaces the facts of fact->ino. */
void node_cache_put(node_cache_t *c, const node_fact_t *fact);
/** The facts of `ino`, or NULL. */
const node_fact_t *node_cache_get(const node_cache_t *c, uint64_t ino);
void node_cache_drop(node_cache_t *c, uint64_t ino);
void node_cache_free(node_cache_t *c);
/** The stat(2) view of a fact (times all equal mtime, as the daemon reports them). */
void node_fact_stat(const node_fact_t *f, struct stat *st);
