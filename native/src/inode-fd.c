// See inode-fd.h.
#include "inode-fd.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

int reopen_inode(int path_fd) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", path_fd);
  int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  int fd = open(proc, flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(proc, flags);
  return fd < 0 ? -errno : fd;
}

int is_unsupported(int e) {
  return e == ENOTTY || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL || e == EBADF;
}
