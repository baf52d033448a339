/*
 * store_kv.c: get, put and range over a store's cache and its SQLite
 * table, and the cache statistics.
 *
 * get: the cache (a hit, including a cached "absent", runs no SQL), then
 * the prepared SELECT; what SQLite returned is cached as a clean entry when
 * clean entries can make room, else copied into the db's reused buffer.
 * put: the cache only (see store_cache.c for room-making and eviction).
 * range: only dirty entries differ from SQLite (store_int.h, invariant 4),
 * so the scan merges the sorted dirty entries in range over the ordered
 * SELECT: at an equal key the dirty entry wins, a dirty tombstone hides
 * the row.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int store__broken(store_db_t *db) {
  if (db->broken)
    snprintf(db->errmsg, sizeof db->errmsg, "%s: %s", db->path, store_strerror(db->broken));
  return db->broken;
}

int store_get(store_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  store_db_t *db = s->db;
  if (store__broken(db))
    return db->broken;
  if (klen > STORE__MAX_LEN)
    return -E2BIG;
  uint64_t h = store__hash(key, klen);
  store__entry_t *e = store__cache_find(s, key, klen, h);
  if (e) {
    s->stats.hits++;
    store__cache_touch(s, e);
    if (!e->present)
      return 0;
    *val = e->data + e->klen;
    *vlen = e->vlen;
    return 1;
  }

  s->stats.misses++;
  sqlite3_stmt *st = s->q[STORE__Q_GET];
  int rc = store__bind_bytes(st, 1, key, klen);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    int code = store__fail(db, s, rc, "reading a key", NULL, 0);
    sqlite3_reset(st);
    return code;
  }
  int found = rc == SQLITE_ROW;
  size_t n = 0;
  const void *p = found ? store__column_bytes(st, 0, &n) : NULL;
  /* A get never flushes (may_flush false): it caches only into room that
   * clean entries make, and the SELECT is still active here. */
  if (n <= STORE__MAX_LEN && store__cache_make_room(s, store__cost_for(klen, n), NULL, false) == 0 &&
      (e = store__cache_set(s, NULL, key, klen, h, p, n, found, false)) != NULL) {
    *val = e->data + e->klen;
    *vlen = n;
  } else if (found) {
    if (db->vbuf_cap < n + 1) {
      unsigned char *b = realloc(db->vbuf, n + 1);
      if (!b) {
        sqlite3_reset(st);
        return STORE_E_NOMEM;
      }
      db->vbuf = b;
      db->vbuf_cap = n + 1;
    }
    memcpy(db->vbuf, p, n);
    *val = db->vbuf;
    *vlen = n;
  }
  sqlite3_reset(st);
  return found;
}

int store_put(store_t *s, const void *key, size_t klen, const void *val, size_t vlen) {
  store_db_t *db = s->db;
  if (store__broken(db))
    return db->broken;
  if (klen > STORE__MAX_LEN || (val && vlen > STORE__MAX_LEN))
    return -E2BIG;
  size_t vl = val ? vlen : 0;
  uint64_t h = store__hash(key, klen);
  store__entry_t *e = store__cache_find(s, key, klen, h);
  if (e)
    store__cache_touch(s, e); /* the MRU end is never the eviction victim */
  if (!e || vl > e->vcap) {
    size_t need = store__cost_for(klen, vl) - (e ? store__entry_cost(e) : 0);
    int rc = store__cache_make_room(s, need, e, true);
    if (rc < 0)
      return rc;
  }
  if (!store__cache_set(s, e, key, klen, h, val, vl, val != NULL, true)) {
    snprintf(db->errmsg, sizeof db->errmsg, "%s: store '%s': out of memory", db->path, s->name);
    return STORE_E_NOMEM;
  }
  s->stats.puts++;
  return 0;
}

static bool store__in_range(const store__entry_t *e, const void *from, size_t flen,
                            const void *to, size_t tlen) {
  if (from && store__bytes_cmp(e->data, e->klen, from, flen) < 0)
    return false;
  if (to && store__bytes_cmp(e->data, e->klen, to, tlen) > 0)
    return false;
  return true;
}

static int store__dirty_cmp(const void *a, const void *b) {
  const store__entry_t *x = *(store__entry_t *const *)a, *y = *(store__entry_t *const *)b;
  return store__bytes_cmp(x->data, x->klen, y->data, y->klen);
}

int store_range(store_t *s, const void *from, size_t flen, const void *to, size_t tlen,
                size_t limit, store_iter_fn fn, void *opaque) {
  store_db_t *db = s->db;
  if (store__broken(db))
    return db->broken;

  /* The dirty entries in range, sorted (a copy: s->dirty keeps its order). */
  store__entry_t **d = NULL;
  size_t nd = 0;
  if (s->ndirty) {
    d = malloc(s->ndirty * sizeof *d);
    if (!d)
      return STORE_E_NOMEM;
    for (size_t i = 0; i < s->ndirty; i++)
      if (store__in_range(s->dirty[i], from, flen, to, tlen))
        d[nd++] = s->dirty[i];
    qsort(d, nd, sizeof *d, store__dirty_cmp);
  }

  sqlite3_stmt *st = s->q[store__range_q(from, to)];
  int rc = store__range_bind(st, from, flen, to, tlen);
  int src = rc == SQLITE_OK ? sqlite3_step(st) : rc;
  size_t i = 0, emitted = 0;
  int result = 0;
  while (limit == 0 || emitted < limit) {
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
      result = store__fail(db, s, src, "range scan", NULL, 0);
      break;
    }
    bool row = src == SQLITE_ROW;
    size_t rk = 0, rv = 0;
    const void *rkey = row ? store__column_bytes(st, 0, &rk) : NULL;
    int c = !row ? 1 : i == nd ? -1 : store__bytes_cmp(rkey, rk, d[i]->data, d[i]->klen);
    if (!row && i == nd)
      break;
    int stop = 0;
    if (c < 0) { /* SQLite's row, not shadowed */
      const void *rval = store__column_bytes(st, 1, &rv);
      stop = fn(opaque, rkey, rk, rval, rv);
      emitted++;
    } else {
      store__entry_t *e = d[i++];
      if (e->present) {
        stop = fn(opaque, e->data, e->klen, e->data + e->klen, e->vlen);
        emitted++;
      }
    }
    if (stop)
      break;
    if (c <= 0)
      src = sqlite3_step(st);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  free(d);
  return result;
}

void store_stats(const store_t *s, store_stats_t *st) {
  *st = s->stats;
  st->bytes = s->bytes;
  st->entries = s->nentries;
}
