/*
 * conn_jdbc_pool.c: a bump allocator for the rows of one sink put.
 *
 * Every record of a put becomes a row: a JSON parser, its buffers, an
 * arena of names and strings, arrays of columns and values. With malloc
 * that was a dozen allocations and frees per record, and the profile of
 * the SQLite sink was a third malloc/free. Here they are carved from
 * 256 KiB chunks and released together when the put ends
 * (conn_jdbc_pool_reset), which keeps one chunk for the next put.
 *
 * Not thread-safe: one pool per task.
 */
#include <stdlib.h>
#include <string.h>

#include "conn_jdbc_int.h"

#define POOL_CHUNK (256 * 1024)
#define POOL_ALIGN 16

struct conn_jdbc_pool_chunk {
  struct conn_jdbc_pool_chunk *next;
  size_t used, cap;
  char *last; /* the latest allocation, which realloc may grow in place */
  _Alignas(POOL_ALIGN) char data[];
};

static size_t pool_round(size_t n) { return (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1); }

void *conn_jdbc_pool_alloc(conn_jdbc_pool_t *p, size_t n) {
  n = pool_round(n ? n : 1);
  conn_jdbc_pool_chunk_t *c = p->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > POOL_CHUNK ? n : POOL_CHUNK;
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->used = 0;
    c->cap = cap;
    c->last = NULL;
    c->next = p->head;
    p->head = c;
  }
  char *r = c->data + c->used;
  c->used += n;
  c->last = r;
  return r;
}

void *conn_jdbc_pool_realloc(conn_jdbc_pool_t *p, void *old, size_t old_n, size_t n) {
  if (!old) return conn_jdbc_pool_alloc(p, n);
  conn_jdbc_pool_chunk_t *c = p->head;
  if (c && c->last == old) {
    size_t start = (size_t)((char *)old - c->data);
    if (pool_round(n) <= c->cap - start) {
      c->used = start + pool_round(n);
      return old;
    }
  }
  void *r = conn_jdbc_pool_alloc(p, n);
  if (r) memcpy(r, old, old_n < n ? old_n : n);
  return r;
}

void conn_jdbc_pool_reset(conn_jdbc_pool_t *p) {
  conn_jdbc_pool_chunk_t *keep = NULL;
  for (conn_jdbc_pool_chunk_t *c = p->head, *next; c; c = next) {
    next = c->next;
    if (!keep && c->cap == POOL_CHUNK) {
      keep = c;
      continue;
    }
    free(c);
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
    keep->last = NULL;
  }
  p->head = keep;
}

void conn_jdbc_pool_free(conn_jdbc_pool_t *p) {
  for (conn_jdbc_pool_chunk_t *c = p->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  p->head = NULL;
}

/* yajl's allocator interface over a pool: a 16-byte header keeps each
 * block's size for realloc; free does nothing (the pool's reset does). */
static void *pool_yajl_malloc(void *ctx, size_t n) {
  size_t *h = conn_jdbc_pool_alloc(ctx, n + POOL_ALIGN);
  if (!h) return NULL;
  *h = n;
  return (char *)h + POOL_ALIGN;
}

static void *pool_yajl_realloc(void *ctx, void *ptr, size_t n) {
  if (!ptr) return pool_yajl_malloc(ctx, n);
  size_t *old = (size_t *)((char *)ptr - POOL_ALIGN);
  size_t *h = conn_jdbc_pool_realloc(ctx, old, *old + POOL_ALIGN, n + POOL_ALIGN);
  if (!h) return NULL;
  *h = n;
  return (char *)h + POOL_ALIGN;
}

static void pool_yajl_free(void *ctx, void *ptr) { (void)ctx, (void)ptr; }

void conn_jdbc_pool_yajl(conn_jdbc_pool_t *p, yajl_alloc_funcs *af) {
  af->malloc = pool_yajl_malloc;
  af->realloc = pool_yajl_realloc;
  af->free = pool_yajl_free;
  af->ctx = p;
}
