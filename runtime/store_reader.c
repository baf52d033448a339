/*
 * store_reader.c: interactive queries: a read-only SQLite connection to a
 * task's database file, usable from a thread other than the task's.
 *
 * WAL mode lets this connection read the last committed snapshot while
 * the task writes; it never sees the task's cache nor its open
 * transaction (evicted entries wait there until the commit). Each call
 * runs one statement to completion and resets it, so the read transaction
 * ends with the call and never holds a checkpoint back.
 *
 * Statements are prepared once per store name (the same SQL text as the
 * task's, store_db.c) and kept in a small list. A mutex serialises calls,
 * so one reader may serve several HTTP threads.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char name[STORE__NAME_MAX + 1];
  sqlite3_stmt *q[STORE__Q_COUNT]; /* only GET and the RANGE forms */
} store__rstore_t;

struct store_reader_s {
  sqlite3 *sql;
  pthread_mutex_t mu;
  sqlite3_stmt *exists;
  store__rstore_t *stores;
  size_t nstores, cap;
};

int store_reader_open(const char *path, store_reader_t **out, char *err, size_t errlen) {
  *out = NULL;
  store_reader_t *r = calloc(1, sizeof *r);
  if (!r)
    return STORE_E_NOMEM;
  int rc = sqlite3_open_v2(path, &r->sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(r->sql, 1);
    sqlite3_busy_timeout(r->sql, 5000);
    rc = sqlite3_prepare_v3(r->sql,
                            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", -1,
                            SQLITE_PREPARE_PERSISTENT, &r->exists, NULL);
  }
  if (rc != SQLITE_OK) {
    if (err && errlen)
      snprintf(err, errlen, "%s: opening for queries: %s", path,
               r->sql ? sqlite3_errmsg(r->sql) : sqlite3_errstr(rc));
    int code = (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : store__sqlite_err(rc);
    sqlite3_close_v2(r->sql);
    free(r);
    return code;
  }
  pthread_mutex_init(&r->mu, NULL);
  *out = r;
  return 0;
}

void store_reader_close(store_reader_t *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->nstores; i++)
    for (int q = 0; q < STORE__Q_COUNT; q++)
      sqlite3_finalize(r->stores[i].q[q]);
  free(r->stores);
  sqlite3_finalize(r->exists);
  sqlite3_close_v2(r->sql);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* The statements of a store, prepared on first use. -ENOENT when the
 * store's table does not exist (yet). Called with r->mu held. */
static int store__rstore(store_reader_t *r, const char *name, store__rstore_t **out) {
  if (!store__valid_name(name))
    return -EINVAL;
  for (size_t i = 0; i < r->nstores; i++) {
    if (strcmp(r->stores[i].name, name) == 0) {
      *out = &r->stores[i];
      return 0;
    }
  }
  char table[STORE__NAME_MAX + 8];
  snprintf(table, sizeof table, "kv_%s", name);
  int rc = sqlite3_bind_text(r->exists, 1, table, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(r->exists);
  sqlite3_reset(r->exists);
  if (rc == SQLITE_DONE)
    return -ENOENT;
  if (rc != SQLITE_ROW)
    return store__sqlite_err(rc);
  if (r->nstores == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4;
    store__rstore_t *v = realloc(r->stores, cap * sizeof *v);
    if (!v)
      return STORE_E_NOMEM;
    r->stores = v;
    r->cap = cap;
  }
  store__rstore_t *rs = &r->stores[r->nstores];
  memset(rs, 0, sizeof *rs);
  snprintf(rs->name, sizeof rs->name, "%s", name);
  for (int q = STORE__Q_GET; q < STORE__Q_COUNT; q++) {
    if (q == STORE__Q_UPSERT || q == STORE__Q_DELETE)
      continue;
    rc = store__prepare(r->sql, q, name, &rs->q[q]);
    if (rc != SQLITE_OK) {
      for (int j = 0; j < STORE__Q_COUNT; j++)
        sqlite3_finalize(rs->q[j]);
      return store__sqlite_err(rc);
    }
  }
  r->nstores++;
  *out = rs;
  return 0;
}

int store_reader_get(store_reader_t *r, const char *store, const void *key, size_t klen,
                     void **val, size_t *vlen) {
  pthread_mutex_lock(&r->mu);
  store__rstore_t *rs;
  int result = store__rstore(r, store, &rs);
  if (result == 0) {
    sqlite3_stmt *st = rs->q[STORE__Q_GET];
    int rc = store__bind_bytes(st, 1, key, klen);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      size_t n;
      const void *p = store__column_bytes(st, 0, &n);
      void *copy = malloc(n ? n : 1);
      if (copy) {
        memcpy(copy, p, n);
        *val = copy;
        *vlen = n;
        result = 1;
      } else {
        result = STORE_E_NOMEM;
      }
    } else if (rc != SQLITE_DONE) {
      result = store__sqlite_err(rc);
    }
    sqlite3_reset(st);
  }
  pthread_mutex_unlock(&r->mu);
  return result;
}

int store_reader_range(store_reader_t *r, const char *store, const void *from, size_t flen,
                       const void *to, size_t tlen, size_t limit, store_iter_fn fn,
                       void *opaque) {
  pthread_mutex_lock(&r->mu);
  store__rstore_t *rs;
  int result = store__rstore(r, store, &rs);
  if (result == 0) {
    sqlite3_stmt *st = rs->q[store__range_q(from, to)];
    int rc = store__range_bind(st, from, flen, to, tlen);
    size_t emitted = 0;
    while (rc == SQLITE_OK && (limit == 0 || emitted < limit)) {
      rc = sqlite3_step(st);
      if (rc != SQLITE_ROW)
        break;
      size_t kl, vl;
      const void *k = store__column_bytes(st, 0, &kl);
      const void *v = store__column_bytes(st, 1, &vl);
      emitted++;
      rc = fn(opaque, k, kl, v, vl) ? SQLITE_DONE : SQLITE_OK;
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
      result = store__sqlite_err(rc);
    sqlite3_reset(st);
  }
  pthread_mutex_unlock(&r->mu);
  return result;
}
