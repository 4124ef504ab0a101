// Large FUSE read replies, written to the kernel by a thread of their own (see fuse-reply-thread.c).
#ifndef PBSFS_FUSE_REPLY_THREAD_H
#define PBSFS_FUSE_REPLY_THREAD_H
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <stddef.h>

// Replies smaller than this go out at once: handing them over would cost more than the kernel's copy.
#define REPLY_LATER_MIN (256 * 1024)
// Largest reply taken over (the mount's max_read).
#define REPLY_LATER_MAX (1024 * 1024)

/** Copies `data` and queues the reply; `*pending` counts the session's queued replies. Returns 0 when queued, -1 when
 *  the caller must reply itself (too large, queue full, no memory). Called from the JS thread only. */
int reply_later(fuse_req_t req, unsigned *pending, const void *data, size_t len);

/** Returns once none of the session's replies is queued or being written (before the session is destroyed). */
void reply_wait(unsigned *pending);

#endif
