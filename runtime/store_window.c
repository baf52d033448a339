/*
 * store_window.c: window stores (see store.h, "window stores"): the window
 * key format, fetch by (key, start range), and expiry in bulk.
 *
 * Window key (all integers big-endian):
 *
 *   offset 0        4-byte key length n
 *   offset 4        n key bytes
 *   offset 4+n      8-byte start, sign bit flipped
 *   offset 12+n     8-byte end, sign bit flipped
 *
 * The length prefix makes the windows of one key a contiguous byte range
 * (without it, key "a" with some start could sort between the windows of
 * key "ab"). Flipping the sign bit makes memcmp order equal numeric order
 * for negative times too.
 *
 * The table is a plain store table ("kv_<name>", store_db.c) plus
 *
 *   CREATE INDEX "kvend_<name>" ON "kv_<name>" (substr(k, -8))
 *
 * an index on the expression "last 8 bytes of the key" = the window end.
 * SQLite's substr() on a BLOB counts bytes, a BLOB compares with memcmp,
 * and "DELETE ... WHERE substr(k, -8) < ?1" names the indexed expression
 * verbatim, so the planner walks the index range of expired windows only
 * (EXPLAIN QUERY PLAN in tests/unit/test_store_window.c checks it).
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void store__put_be32(unsigned char *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

static void store__put_time(unsigned char *p, int64_t t) {
  uint64_t v = (uint64_t)t ^ ((uint64_t)1 << 63);
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

static int64_t store__get_time(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return (int64_t)(v ^ ((uint64_t)1 << 63));
}

size_t store_window_key(void *buf, const void *key, size_t klen, int64_t start, int64_t end) {
  unsigned char *p = buf;
  store__put_be32(p, (uint32_t)klen);
  if (klen)
    memcpy(p + 4, key, klen);
  store__put_time(p + 4 + klen, start);
  store__put_time(p + 12 + klen, end);
  return klen + STORE_WINDOW_KEY_EXTRA;
}

int store_window_key_parse(const void *wk, size_t wlen, const void **key, size_t *klen,
                           int64_t *start, int64_t *end) {
  const unsigned char *p = wk;
  if (wlen < STORE_WINDOW_KEY_EXTRA)
    return -EINVAL;
  size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
  if (n != wlen - STORE_WINDOW_KEY_EXTRA)
    return -EINVAL;
  *key = p + 4;
  *klen = n;
  *start = store__get_time(p + 4 + n);
  *end = store__get_time(p + 12 + n);
  return 0;
}

int store_window_open(store_db_t *db, const char *name, size_t cache_bytes, store_t **out,
                      char *err, size_t errlen) {
  int rc = store_open(db, name, cache_bytes, out, err, errlen);
  if (rc != 0)
    return rc;
  store_t *s = *out;
  char text[600];
  /* The name was validated by store_open: no quote can escape. */
  snprintf(text, sizeof text,
           "CREATE INDEX IF NOT EXISTS \"kvend_%s\" ON \"kv_%s\" (substr(k, -8))", name, name);
  int src = sqlite3_exec(db->sql, text, NULL, NULL, NULL);
  const char *what = "creating the window end index";
  if (src == SQLITE_OK) {
    snprintf(text, sizeof text, "DELETE FROM \"kv_%s\" WHERE substr(k, -8) < ?1", name);
    what = "preparing the expiry";
    src = sqlite3_prepare_v3(db->sql, text, -1, SQLITE_PREPARE_PERSISTENT, &s->expire, NULL);
  }
  if (src != SQLITE_OK)
    return store__fail(db, s, src, what, err, errlen); /* s stays owned by db */
  s->window = true;
  return 0;
}

bool store_is_window(const store_t *s) { return s->window; }

/* A window key on the stack for short keys, on the heap for long ones. */
typedef struct {
  unsigned char small[256];
  unsigned char *p;
} store__wkbuf_t;

static unsigned char *store__wk(store__wkbuf_t *b, size_t klen) {
  b->p = klen + STORE_WINDOW_KEY_EXTRA <= sizeof b->small
             ? b->small
             : malloc(klen + STORE_WINDOW_KEY_EXTRA);
  return b->p;
}

static void store__wk_free(store__wkbuf_t *b) {
  if (b->p != b->small)
    free(b->p);
}

int store_window_get(store_t *s, const void *key, size_t klen, int64_t start, int64_t end,
                     const void **val, size_t *vlen) {
  store__wkbuf_t b;
  if (klen > STORE__MAX_LEN || !store__wk(&b, klen))
    return klen > STORE__MAX_LEN ? -E2BIG : STORE_E_NOMEM;
  size_t n = store_window_key(b.p, key, klen, start, end);
  int rc = store_get(s, b.p, n, val, vlen);
  store__wk_free(&b);
  return rc;
}

int store_window_put(store_t *s, const void *key, size_t klen, int64_t start, int64_t end,
                     const void *val, size_t vlen) {
  store__wkbuf_t b;
  if (klen > STORE__MAX_LEN || !store__wk(&b, klen))
    return klen > STORE__MAX_LEN ? -E2BIG : STORE_E_NOMEM;
  size_t n = store_window_key(b.p, key, klen, start, end);
  int rc = store_put(s, b.p, n, val, vlen);
  store__wk_free(&b);
  return rc;
}

typedef struct {
  store_window_fn fn;
  void *opaque;
} store__fetch_ctx_t;

static int store__fetch_one(void *opaque, const void *key, size_t klen, const void *val,
                            size_t vlen) {
  store__fetch_ctx_t *c = opaque;
  const void *k;
  size_t n;
  int64_t start, end;
  if (store_window_key_parse(key, klen, &k, &n, &start, &end) != 0)
    return 0; /* not a window key: never written by store_window_put */
  return c->fn(c->opaque, start, end, val, vlen);
}

int store_window_fetch(store_t *s, const void *key, size_t klen, int64_t start_from,
                       int64_t start_to, store_window_fn fn, void *opaque) {
  if (start_from > start_to)
    return 0;
  store__wkbuf_t lo, hi;
  if (klen > STORE__MAX_LEN)
    return -E2BIG;
  if (!store__wk(&lo, klen))
    return STORE_E_NOMEM;
  if (!store__wk(&hi, klen)) {
    store__wk_free(&lo);
    return STORE_E_NOMEM;
  }
  /* [key|start_from|INT64_MIN, key|start_to|INT64_MAX]: every end. */
  size_t n = store_window_key(lo.p, key, klen, start_from, INT64_MIN);
  store_window_key(hi.p, key, klen, start_to, INT64_MAX);
  store__fetch_ctx_t c = {fn, opaque};
  int rc = store_range(s, lo.p, n, hi.p, n, 0, store__fetch_one, &c);
  store__wk_free(&lo);
  store__wk_free(&hi);
  return rc;
}

int store_window_expire(store_t *s, int64_t end_before) {
  store_db_t *db = s->db;
  if (!s->window)
    return -EINVAL;
  if (db->broken)
    return db->broken;
  /* The cache first: an expired dirty entry must not reach SQLite again. */
  for (store__entry_t *e = s->lru_head, *next; e; e = next) {
    next = e->next;
    const void *k;
    size_t n;
    int64_t start, end;
    if (store_window_key_parse(e->data, e->klen, &k, &n, &start, &end) == 0 && end < end_before)
      store__cache_drop(s, e);
  }
  unsigned char cut[8];
  store__put_time(cut, end_before);
  int src = store__begin(db);
  if (src == SQLITE_OK)
    src = sqlite3_bind_blob(s->expire, 1, cut, sizeof cut, SQLITE_STATIC);
  if (src == SQLITE_OK) {
    src = sqlite3_step(s->expire);
    src = src == SQLITE_DONE ? SQLITE_OK : src;
  }
  sqlite3_reset(s->expire);
  if (src != SQLITE_OK)
    return store__fail(db, s, src, "expiring windows", NULL, 0);
  s->stats.expired += (uint64_t)sqlite3_changes(db->sql);
  return 0;
}
