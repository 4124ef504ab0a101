// Large FUSE read replies are written to the kernel by one thread of their own. The write copies the reply into the
// reader's page cache pages (~0.8 ms per MiB here); on the JS thread that was most of a sequential read's cost, while
// the next request and the next chunk decode waited. The JS thread copies the bytes into one of a few reply buffers
// (~0.1 ms per MiB, so transient chunk views stay transient) and goes on; libfuse allows replies from any thread.
#include "fuse-reply-thread.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Replies queued or being written at most; when all are busy the JS thread replies itself (backpressure).
#define QUEUE_MAX 4

typedef struct {
  fuse_req_t req;
  unsigned *pending;
  char *buf;
  size_t len;
} job_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
// A ring of jobs; the one at `head` stays in its slot while it is written.
static job_t queue[QUEUE_MAX];
static unsigned head, count;
// Reply buffers (REPLY_LATER_MAX bytes) not in use: at most QUEUE_MAX exist, allocated on first need.
static char *spare[QUEUE_MAX];
static unsigned nspare;
static int started;

static void *run(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (count == 0) pthread_cond_wait(&work, &mu);
    job_t j = queue[head];
    pthread_mutex_unlock(&mu);
    // The kernel may have dropped the request (interrupted, unmounted): nothing to tell anyone then.
    fuse_reply_buf(j.req, j.buf, j.len);
    pthread_mutex_lock(&mu);
    head = (head + 1) % QUEUE_MAX;
    count--;
    spare[nspare++] = j.buf;
    (*j.pending)--;
    pthread_cond_broadcast(&done);
  }
  return NULL;
}

int reply_later(fuse_req_t req, unsigned *pending, const void *data, size_t len) {
  if (len < REPLY_LATER_MIN || len > REPLY_LATER_MAX) return -1;
  pthread_mutex_lock(&mu);
  if (!started) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&t, &attr, run, NULL) == 0 ? 1 : -1;
    pthread_attr_destroy(&attr);
  }
  if (started < 0 || count == QUEUE_MAX) {
    pthread_mutex_unlock(&mu);
    return -1;
  }
  char *buf = nspare ? spare[--nspare] : NULL;
  pthread_mutex_unlock(&mu);
  if (!buf && !(buf = malloc(REPLY_LATER_MAX))) return -1;
  // Outside the lock: the reply thread may finish a write meanwhile. Only the JS thread queues, so the free slot
  // seen above is still free.
  memcpy(buf, data, len);
  pthread_mutex_lock(&mu);
  queue[(head + count) % QUEUE_MAX] = (job_t){.req = req, .pending = pending, .buf = buf, .len = len};
  count++;
  (*pending)++;
  pthread_cond_signal(&work);
  pthread_mutex_unlock(&mu);
  return 0;
}

void reply_wait(unsigned *pending) {
  pthread_mutex_lock(&mu);
  while (*pending) pthread_cond_wait(&done, &mu);
  pthread_mutex_unlock(&mu);
}
