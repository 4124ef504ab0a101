// Open-addressing hash table (linear probing, backward-shift deletion) of node facts by inode number.
#include "fuse-node-cache.h"

#include <stdlib.h>
#include <string.h>

static uint32_t home(const node_cache_t *c, uint64_t ino) {
  return (uint32_t)((ino * 0x9E3779B97F4A7C15ull) >> 32) & (c->cap - 1);
}

static void grow(node_cache_t *c) {
  node_cache_t bigger = {calloc(c->cap ? c->cap * 2 : 1024, sizeof(node_fact_t)), c->cap ? c->cap * 2 : 1024, 0};
  if (!bigger.slots) return;
  for (uint32_t i = 0; i < c->cap; i++)
    if (c->slots[i].ino) node_cache_put(&bigger, &c->slots[i]);
  free(c->slots);
  *c = bigger;
}

void node_cache_put(node_cache_t *c, const node_fact_t *fact) {
  if (fact->ino == 0) return;
  // At most half full: probes stay short.
  if ((c->count + 1) * 2 > c->cap) grow(c);
  if (!c->cap) return; // out of memory: the facts are only an accelerator
  for (uint32_t i = home(c, fact->ino);; i = (i + 1) & (c->cap - 1)) {
    if (c->slots[i].ino == 0 || c->slots[i].ino == fact->ino) {
      if (c->slots[i].ino == 0) c->count++;
      c->slots[i] = *fact;
      return;
    }
  }
}

const node_fact_t *node_cache_get(const node_cache_t *c, uint64_t ino) {
  if (!c->cap || ino == 0) return NULL;
  for (uint32_t i = home(c, ino);; i = (i + 1) & (c->cap - 1)) {
    if (c->slots[i].ino == ino) return &c->slots[i];
    if (c->slots[i].ino == 0) return NULL;
  }
}

void node_cache_drop(node_cache_t *c, uint64_t ino) {
  if (!c->cap || ino == 0) return;
  uint32_t mask = c->cap - 1, i = home(c, ino);
  while (c->slots[i].ino != ino) {
    if (c->slots[i].ino == 0) return;
    i = (i + 1) & mask;
  }
  // Shift later members of the probe run back so every remaining key stays reachable from its home slot.
  for (uint32_t j = (i + 1) & mask; c->slots[j].ino; j = (j + 1) & mask) {
    uint32_t h = home(c, c->slots[j].ino);
    // Movable into the hole at i unless its home lies cyclically in (i, j].
    if (((j - h) & mask) >= ((j - i) & mask)) {
      c->slots[i] = c->slots[j];
      i = j;
    }
  }
  c->slots[i].ino = 0;
  c->count--;
}

void node_cache_free(node_cache_t *c) {
  free(c->slots);
  memset(c, 0, sizeof *c);
}

void node_fact_stat(const node_fact_t *f, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)f->ino;
  st->st_mode = f->mode;
  st->st_nlink = f->nlink;
  st->st_uid = f->uid;
  st->st_gid = f->gid;
  st->st_rdev = (dev_t)f->rdev;
  st->st_size = (off_t)f->size;
  st->st_blksize = f->blksize;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = (time_t)f->mtime_s;
  st->st_atim.tv_nsec = st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = (long)f->mtime_ns;
}
