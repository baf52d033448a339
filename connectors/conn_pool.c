/*
 * conn_pool.c: a bump allocator for memory that dies all at once: the rows
 * of one JDBC sink put, the lent buffers of one source poll (conn_batch_t).
 *
 * Every record of a put becomes a row: a JSON parser, its buffers, an
 * arena of names and strings, arrays of columns and values. With malloc
 * that was a dozen allocations and frees per record, and the profile of
 * the SQLite sink was a third malloc/free (the file source's four buffers
 * per line were a fifth of its thread). Here they are carved from 256 KiB
 * chunks and released together (conn_pool_reset), which keeps the chunks
 * for the next round.
 *
 * Not thread-safe: one pool per task.
 */
#include <stdlib.h>
#include <string.h>

#include "conn_int.h"

#define POOL_CHUNK (256 * 1024)
#define POOL_ALIGN 16

struct conn_pool_chunk {
  struct conn_pool_chunk *next;
  size_t used, cap;
  char *last; /* the latest allocation, which realloc may grow in place */
  _Alignas(POOL_ALIGN) char data[];
};

static size_t pool_round(size_t n) { return (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1); }

void *conn_pool_alloc(conn_pool_t *p, size_t n) {
  n = pool_round(n ? n : 1);
  conn_pool_chunk_t *c = p->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > POOL_CHUNK ? n : POOL_CHUNK;
    if (cap == POOL_CHUNK && p->spare) { /* one released by a reset */
      c = p->spare;
      p->spare = c->next;
    } else if (!(c = malloc(sizeof *c + cap))) {
      return NULL;
    }
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

void *conn_pool_realloc(conn_pool_t *p, void *old, size_t old_n, size_t n) {
  if (!old) return conn_pool_alloc(p, n);
  conn_pool_chunk_t *c = p->head;
  if (c && c->last == old) {
    size_t start = (size_t)((char *)old - c->data);
    if (pool_round(n) <= c->cap - start) {
      c->used = start + pool_round(n);
      return old;
    }
  }
  void *r = conn_pool_alloc(p, n);
  if (r) memcpy(r, old, old_n < n ? old_n : n);
  return r;
}

/* Chunks a reset keeps for the next round (2 MiB): enough for a steady
 * poll or put, not the peak of one that held huge records. */
#define POOL_SPARE_MAX 8

void conn_pool_reset(conn_pool_t *p) {
  size_t spare = 0;
  for (conn_pool_chunk_t *c = p->spare; c; c = c->next) spare++;
  for (conn_pool_chunk_t *c = p->head, *next; c; c = next) {
    next = c->next;
    if (c->cap == POOL_CHUNK && spare < POOL_SPARE_MAX) {
      c->next = p->spare;
      p->spare = c;
      spare++;
    } else {
      free(c);
    }
  }
  p->head = NULL;
}

void conn_pool_free(conn_pool_t *p) {
  conn_pool_reset(p);
  for (conn_pool_chunk_t *c = p->spare, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  p->spare = NULL;
}

/* yajl's allocator interface over a pool: a 16-byte header keeps each
 * block's size for realloc; free does nothing (the pool's reset does). */
static void *pool_yajl_malloc(void *ctx, size_t n) {
  size_t *h = conn_pool_alloc(ctx, n + POOL_ALIGN);
  if (!h) return NULL;
  *h = n;
  return (char *)h + POOL_ALIGN;
}

static void *pool_yajl_realloc(void *ctx, void *ptr, size_t n) {
  if (!ptr) return pool_yajl_malloc(ctx, n);
  size_t *old = (size_t *)((char *)ptr - POOL_ALIGN);
  size_t *h = conn_pool_realloc(ctx, old, *old + POOL_ALIGN, n + POOL_ALIGN);
  if (!h) return NULL;
  *h = n;
  return (char *)h + POOL_ALIGN;
}

static void pool_yajl_free(void *ctx, void *ptr) { (void)ctx, (void)ptr; }

void conn_pool_yajl(conn_pool_t *p, yajl_alloc_funcs *af) {
  af->malloc = pool_yajl_malloc;
  af->realloc = pool_yajl_realloc;
  af->free = pool_yajl_free;
  af->ctx = p;
}
