// The PBS client's buzhash boundary scan (spec §7.1) in C: the same rolling hash and cut rule as
// src/chunker/buzhash.ts, which keeps the state and calls this for the byte loop (several times faster than JS).
#include <stdint.h>
#include <string.h>

#include "napi-util.h"

#define WINDOW 64

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  return is_typed && napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) == napi_ok && type == want;
}

static inline uint32_t rotl1(uint32_t h) {
  return (h << 1) | (h >> 31);
}

// buzhashScan(state: Int32Array [h, count, min, max, mask, threshold], window: Uint8Array(64), table: Int32Array(256),
// data: Uint8Array) -> offset just after the boundary in data, or 0 when data holds none (state then carries over).
// window[p & 63] holds the current chunk's byte at position p for the last 64 positions.
static napi_value js_buzhash_scan(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t *state;
  uint8_t *W, *data;
  const uint32_t *T;
  size_t slen, wlen, tlen, n;
  if (!get_args(env, info, 4, argv) || !typed(env, argv[0], napi_int32_array, (void **)&state, &slen) || slen < 6 ||
      !typed(env, argv[1], napi_uint8_array, (void **)&W, &wlen) || wlen != WINDOW ||
      !typed(env, argv[2], napi_int32_array, (void **)&T, &tlen) || tlen != 256 ||
      !typed(env, argv[3], napi_uint8_array, (void **)&data, &n))
    return throw_type(env, "buzhashScan(state, window, table, data) got invalid arguments");
  uint32_t h = (uint32_t)state[0];
  uint64_t count = (uint32_t)state[1];
  const uint64_t min = (uint32_t)state[2], max = (uint32_t)state[3];
  const uint32_t mask = (uint32_t)state[4], threshold = (uint32_t)state[5];
  size_t i = 0, cut = 0;
  // Window filling: no boundary test during a chunk's first WINDOW bytes (min is far above WINDOW).
  while (count < WINDOW && i < n) {
    uint8_t b = data[i++];
    W[count++] = b;
    h = rotl1(h) ^ T[b];
  }
  // The outgoing byte is still in the ring while fewer than WINDOW bytes of this call are consumed.
  while (i < WINDOW && i < n) {
    uint8_t b = data[i++];
    size_t idx = count & (WINDOW - 1);
    h = rotl1(h) ^ T[W[idx]] ^ T[b];
    W[idx] = b;
    count++;
    if (count >= min && (count >= max || (h & mask) >= threshold)) {
      cut = i;
      goto done;
    }
  }
  if (i >= n) goto keep;
  {
    // Hot path: the outgoing byte is data[i - WINDOW]. Bytes before min need no test.
    const size_t start = i;
    const uint64_t at_start = count;
    size_t end = i + (min > count + 1 ? (size_t)(min - 1 - count < n - i ? min - 1 - count : n - i) : 0);
    for (; i < end; i++) h = rotl1(h) ^ T[data[i - WINDOW]] ^ T[data[i]];
    count = at_start + (i - start);
    end = i + (size_t)(max - count < n - i ? max - count : n - i);
    for (; i < end; i++) {
      h = rotl1(h) ^ T[data[i - WINDOW]] ^ T[data[i]];
      if ((h & mask) >= threshold) {
        cut = i + 1;
        goto done;
      }
    }
    count = at_start + (i - start);
    if (count >= max) {
      cut = i;
      goto done;
    }
    // Whole input consumed without a boundary: keep the last WINDOW bytes for the next call.
    for (size_t j = n - WINDOW; j < n; j++) W[(count - n + j) & (WINDOW - 1)] = data[j];
  }
keep:
  state[0] = (int32_t)h;
  state[1] = (int32_t)count;
  cut = 0;
done:
  if (cut) {
    state[0] = 0;
    state[1] = 0;
  }
  napi_value r;
  napi_create_double(env, (double)cut, &r);
  return r;
}

void register_buzhash(napi_env env, napi_value exports) {
  set_fn(env, exports, "buzhashScan", js_buzhash_scan);
}
