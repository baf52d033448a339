/*
 * store_cache.c: a store's write-back cache: a hash table of byte keys
 * (FNV-1a, chained buckets, power-of-two count), an LRU list, the dirty
 * list, byte accounting and eviction. Invariants: see store_int.h.
 *
 * Hot path (store_get/store_put on a cached key): one hash, one short
 * chain walk, a memcmp, an LRU move; no SQL and no malloc. A value is
 * written in place when it fits the entry's capacity (rounded up to 16
 * bytes, so "9" -> "10" does not reallocate); otherwise the entry is
 * reallocated and relinked. Memory grows only when the table or the dirty
 * list doubles.
 *
 * Budget: s->bytes counts store__entry_cost() (header + malloc overhead +
 * key + value capacity) of every entry. A put makes room first (evicting
 * from the LRU end, flushing the store's dirty entries when the victim is
 * dirty), so on error nothing has changed. A get-miss caches what it read
 * only when clean entries can make room: a read never flushes.
 */
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STORE__MIN_BUCKETS 64
#define STORE__MALLOC_OVERHEAD 16

uint64_t store__hash(const void *key, size_t klen) {
  /* FNV-1a, 64-bit: keys are short (ids, words); simple and well mixed in
   * the low bits after the final multiply. */
  const unsigned char *p = key;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < klen; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h ^ (h >> 29);
}

static size_t store__vcap_for(size_t vlen) { return (vlen + 15) & ~(size_t)15; }

size_t store__cost_for(size_t klen, size_t vlen) {
  return sizeof(store__entry_t) + STORE__MALLOC_OVERHEAD + klen + store__vcap_for(vlen);
}

size_t store__entry_cost(const store__entry_t *e) {
  return sizeof(store__entry_t) + STORE__MALLOC_OVERHEAD + e->klen + e->vcap;
}

int store__cache_init(store_t *s, size_t cap) {
  s->cap = cap;
  s->nbuckets = STORE__MIN_BUCKETS;
  s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
  return s->buckets ? 0 : -ENOMEM;
}

void store__cache_free(store_t *s) {
  store__entry_t *e = s->lru_head;
  while (e) {
    store__entry_t *next = e->next;
    free(e);
    e = next;
  }
  free(s->buckets);
  free(s->dirty);
  s->buckets = NULL;
  s->dirty = NULL;
  s->lru_head = s->lru_tail = NULL;
  s->nentries = s->bytes = s->ndirty = 0;
}

store__entry_t *store__cache_find(store_t *s, const void *key, size_t klen, uint64_t h) {
  for (store__entry_t *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->hnext)
    if (e->hash == h && e->klen == klen && (klen == 0 || memcmp(e->data, key, klen) == 0))
      return e;
  return NULL;
}

static void store__lru_unlink(store_t *s, store__entry_t *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    s->lru_head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    s->lru_tail = e->prev;
  e->prev = e->next = NULL;
}

static void store__lru_push_head(store_t *s, store__entry_t *e) {
  e->prev = NULL;
  e->next = s->lru_head;
  if (s->lru_head)
    s->lru_head->prev = e;
  else
    s->lru_tail = e;
  s->lru_head = e;
}

void store__cache_touch(store_t *s, store__entry_t *e) {
  if (s->lru_head == e)
    return;
  store__lru_unlink(s, e);
  store__lru_push_head(s, e);
}

/* The link in e's bucket chain that points at e. */
static store__entry_t **store__chain_link(store_t *s, const store__entry_t *e) {
  store__entry_t **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
  while (*pp != e) {
    assert(*pp);
    pp = &(*pp)->hnext;
  }
  return pp;
}

/* Doubles the bucket array when the load passes 1 (allocation failure only
 * leaves the chains longer). */
static void store__maybe_grow(store_t *s) {
  if (s->nentries < s->nbuckets)
    return;
  size_t n = s->nbuckets * 2;
  store__entry_t **b = calloc(n, sizeof *b);
  if (!b)
    return;
  for (store__entry_t *e = s->lru_head; e; e = e->next) {
    size_t i = e->hash & (n - 1);
    e->hnext = b[i];
    b[i] = e;
  }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = n;
}

/* Room for one more dirty entry (doubling). */
static int store__dirty_reserve(store_t *s) {
  if (s->ndirty < s->dirty_cap)
    return 0;
  size_t cap = s->dirty_cap ? s->dirty_cap * 2 : 64;
  store__entry_t **v = realloc(s->dirty, cap * sizeof *v);
  if (!v)
    return -ENOMEM;
  s->dirty = v;
  s->dirty_cap = cap;
  return 0;
}

static int store__dirty_push(store_t *s, store__entry_t *e) {
  if (e->dirty)
    return 0;
  if (store__dirty_reserve(s) != 0)
    return -ENOMEM;
  e->dirty = 1;
  e->didx = (uint32_t)s->ndirty;
  s->dirty[s->ndirty++] = e;
  return 0;
}

void store__cache_drop(store_t *s, store__entry_t *e) {
  if (e->dirty) { /* restore only: the changelog value replaces it */
    store__entry_t *last = s->dirty[--s->ndirty];
    s->dirty[e->didx] = last;
    last->didx = e->didx;
  }
  *store__chain_link(s, e) = e->hnext;
  store__lru_unlink(s, e);
  s->nentries--;
  s->bytes -= store__entry_cost(e);
  free(e);
}

int store__cache_make_room(store_t *s, size_t need, const store__entry_t *keep,
                           bool may_flush) {
  if (s->cap == 0) /* dirty entries wait for the commit; nothing clean is kept */
    return may_flush ? 0 : 1;
  while (s->bytes + need > s->cap) {
    store__entry_t *victim = s->lru_tail;
    if (victim && victim == keep)
      victim = victim->prev;
    if (!victim)
      return 0; /* nothing else to evict: a single entry may exceed cap */
    if (victim->dirty) {
      if (!may_flush)
        return 1;
      /* One flush cleans every dirty entry of the store, so the next
       * evictions are cheap: one transaction per cache-full of puts. */
      int rc = store__flush(s);
      if (rc)
        return rc;
      continue;
    }
    store__cache_drop(s, victim);
    s->stats.evictions++;
  }
  return 0;
}

store__entry_t *store__cache_set(store_t *s, store__entry_t *e, const void *key, size_t klen,
                                 uint64_t h, const void *val, size_t vlen, bool present,
                                 bool dirty) {
  if (!present)
    vlen = 0;
  /* Grow the dirty list before changing anything. */
  if (dirty && !(e && e->dirty) && store__dirty_reserve(s) != 0)
    return NULL;
  if (!e || vlen > e->vcap) {
    size_t vcap = store__vcap_for(vlen);
    store__entry_t *n = malloc(sizeof *n + klen + vcap);
    if (!n)
      return NULL;
    if (e) {
      /* Take e's place in its chain, the LRU list and the dirty list. */
      *n = *e;
      memcpy(n->data, e->data, klen);
      *store__chain_link(s, e) = n;
      if (n->prev)
        n->prev->next = n;
      else
        s->lru_head = n;
      if (n->next)
        n->next->prev = n;
      else
        s->lru_tail = n;
      if (n->dirty)
        s->dirty[n->didx] = n;
      s->bytes -= store__entry_cost(e);
      free(e);
    } else {
      memset(n, 0, sizeof *n);
      n->hash = h;
      n->klen = (uint32_t)klen;
      if (klen)
        memcpy(n->data, key, klen);
      size_t i = h & (s->nbuckets - 1);
      n->hnext = s->buckets[i];
      s->buckets[i] = n;
      store__lru_push_head(s, n);
      s->nentries++;
    }
    n->vcap = (uint32_t)vcap;
    s->bytes += store__entry_cost(n);
    e = n;
    store__maybe_grow(s);
  }
  if (vlen)
    memcpy(e->data + e->klen, val, vlen);
  e->vlen = (uint32_t)vlen;
  e->present = present;
  store__cache_touch(s, e);
  if (dirty) {
    int rc = store__dirty_push(s, e);
    assert(rc == 0); /* capacity was reserved above */
    (void)rc;
  }
  return e;
}

static int store__entry_cmp(const void *a, const void *b) {
  const store__entry_t *x = *(store__entry_t *const *)a, *y = *(store__entry_t *const *)b;
  return store__bytes_cmp(x->data, x->klen, y->data, y->klen);
}

int store__dirty_prepare(store_t *s) {
  if (s->changes_cap < s->ndirty) {
    store_change_t *c = realloc(s->changes, s->dirty_cap * sizeof *c);
    if (!c)
      return -ENOMEM;
    s->changes = c;
    s->changes_cap = s->dirty_cap;
  }
  /* Key order: the changelog batch is deterministic and SQLite's B-tree is
   * walked left to right instead of at random. */
  qsort(s->dirty, s->ndirty, sizeof *s->dirty, store__entry_cmp);
  for (size_t i = 0; i < s->ndirty; i++) {
    store__entry_t *e = s->dirty[i];
    e->didx = (uint32_t)i;
    s->changes[i] = (store_change_t){
        .key = e->data,
        .klen = e->klen,
        .val = e->present ? e->data + e->klen : NULL,
        .vlen = e->vlen,
    };
  }
  return 0;
}

void store__dirty_clear(store_t *s) {
  for (size_t i = 0; i < s->ndirty; i++)
    s->dirty[i]->dirty = 0;
  s->ndirty = 0;
}

void store__cache_trim(store_t *s) {
  while (s->lru_tail && !s->lru_tail->dirty && (s->cap == 0 || s->bytes > s->cap)) {
    store__cache_drop(s, s->lru_tail);
    s->stats.evictions++;
  }
}
