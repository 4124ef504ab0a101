// glibc malloc policy for a process that moves multi-MiB chunk buffers between many threads (JS, codec workers,
// the libuv pool). By default glibc raises its mmap threshold to the size of each freed mmapped block (up to 32 MiB),
// so later 4–16 MiB chunk buffers come from per-thread arenas, and what is freed there is kept, not returned: peak
// RSS then grows by tens of MiB per thread. A fixed threshold keeps big buffers mmapped (given back on free), and
// few arenas bound what small allocations leave behind. It lies just above 1 MiB: the mount's 1 MiB write requests
// (one buffer each) then come from the heap and are used again instead of being mapped, faulted in and unmapped
// every time (cp of a 1 GiB image into the mount: daemon system time 1.0 s -> 0.6 s); 4 MiB chunks stay mmapped.
#include <malloc.h>

#include "napi-util.h"

#define MMAP_THRESHOLD (1024 * 1024 + 64 * 1024)
#define ARENA_MAX 2

// tuneMalloc() -> true when glibc accepted both settings. Call before threads start allocating.
static napi_value js_tune_malloc(napi_env env, napi_callback_info info) {
  (void)info;
  int ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1;
  ok = (mallopt(M_ARENA_MAX, ARENA_MAX) == 1) && ok;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

void register_malloc_tuning(napi_env env, napi_value exports) {
  set_fn(env, exports, "tuneMalloc", js_tune_malloc);
}
