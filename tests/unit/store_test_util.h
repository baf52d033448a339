/*
 * store_test_util.h: helpers shared by the state-store unit tests
 * (test_store_db.c, test_store_cache.c, test_store_kv.c). Everything is
 * static inline so each test executable takes what it uses. Include after
 * <cmocka.h>.
 */
#ifndef RUNNEL_STORE_TEST_UTIL_H
#define RUNNEL_STORE_TEST_UTIL_H

#include "store.h"

#include "scratch_util.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline char *stu_mkdtemp(void) { return scratch_mkdtemp("runnel-store"); }
static inline void stu_rmrf(char *path) { scratch_rmrf(path); }

/* dir + "/task.db" into buf. */
static inline const char *stu_dbpath(const char *dir, char *buf, size_t len) {
  snprintf(buf, len, "%s/task.db", dir);
  return buf;
}

/* A test's scratch directory and database path, as cmocka state. */
typedef struct {
  char *dir;
  char path[512];
} stu_fx_t;

static inline int stu_fx_setup(void **state) {
  stu_fx_t *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  fx->dir = stu_mkdtemp();
  stu_dbpath(fx->dir, fx->path, sizeof fx->path);
  *state = fx;
  return 0;
}

static inline int stu_fx_teardown(void **state) {
  stu_fx_t *fx = *state;
  stu_rmrf(fx->dir);
  free(fx);
  return 0;
}

#define STU_TEST(f) cmocka_unit_test_setup_teardown(f, stu_fx_setup, stu_fx_teardown)

static inline store_db_t *stu_open(const char *path, bool *was_reset) {
  store_db_t *db = NULL;
  char err[512] = "";
  bool reset = false;
  int rc = store_db_open(path, &db, &reset, err, sizeof err);
  if (rc != 0)
    fail_msg("store_db_open(%s): %d %s", path, rc, err);
  if (was_reset)
    *was_reset = reset;
  return db;
}

static inline store_t *stu_store(store_db_t *db, const char *name, size_t cache_bytes) {
  store_t *s = NULL;
  char err[512] = "";
  int rc = store_open(db, name, cache_bytes, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("store_open(%s): %d %s", name, rc, err);
  return s;
}

static inline void stu_put(store_t *s, const char *key, const char *val) {
  int rc = store_put(s, key, strlen(key), val, val ? strlen(val) : 0);
  if (rc != 0)
    fail_msg("store_put(%s): %d %s", key, rc, store_strerror(rc));
}

/* Asserts that key holds want (NULL: absent). */
static inline void stu_expect(store_t *s, const char *key, const char *want) {
  const void *v = NULL;
  size_t vlen = 0;
  int rc = store_get(s, key, strlen(key), &v, &vlen);
  if (rc < 0)
    fail_msg("store_get(%s): %d", key, rc);
  if (!want) {
    if (rc != 0)
      fail_msg("key %s: want absent, got '%.*s'", key, (int)vlen, (const char *)v);
    return;
  }
  if (rc != 1)
    fail_msg("key %s: want '%s', got absent", key, want);
  if (vlen != strlen(want) || memcmp(v, want, vlen) != 0)
    fail_msg("key %s: want '%s', got '%.*s'", key, want, (int)vlen, (const char *)v);
}

static inline void stu_commit(store_db_t *db, const store_offset_t *offs, size_t n,
                              store_changelog_fn fn, void *opaque) {
  char err[512] = "";
  int rc = store_db_commit(db, offs, n, fn, opaque, err, sizeof err);
  if (rc != 0)
    fail_msg("store_db_commit: %d %s", rc, err);
}

/* A changelog that remembers the latest value per key (as text), counts
 * calls and changes, and can be told to fail. */
#define STU_CLOG_MAX 8192
typedef struct {
  int calls, fail;
  size_t changes;
  int64_t end;   /* grows by the number of changes, like a topic's end */
  size_t nkeys;
  char *keys[STU_CLOG_MAX];
  char *vals[STU_CLOG_MAX]; /* NULL: deleted */
} stu_clog_t;

static inline char *stu_strndup(const void *p, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

static inline int stu_clog_fn(void *opaque, store_t *s, const store_change_t *c, size_t n,
                              int64_t *end) {
  (void)s;
  stu_clog_t *cl = opaque;
  if (cl->fail)
    return -5;
  cl->calls++;
  for (size_t i = 0; i < n; i++) {
    char *k = stu_strndup(c[i].key, c[i].klen);
    size_t j = 0;
    while (j < cl->nkeys && strcmp(cl->keys[j], k) != 0)
      j++;
    if (j == cl->nkeys) {
      assert_true(cl->nkeys < STU_CLOG_MAX);
      cl->keys[cl->nkeys++] = k;
    } else {
      free(k);
      free(cl->vals[j]);
    }
    cl->vals[j] = c[i].val ? stu_strndup(c[i].val, c[i].vlen) : NULL;
  }
  cl->changes += n;
  cl->end += (int64_t)n;
  *end = cl->end;
  return 0;
}

/* The latest value the changelog got for key: 1 found (*val set, may be
 * NULL for a delete), 0 never seen. */
static inline int stu_clog_get(const stu_clog_t *cl, const char *key, const char **val) {
  for (size_t j = 0; j < cl->nkeys; j++) {
    if (strcmp(cl->keys[j], key) == 0) {
      *val = cl->vals[j];
      return 1;
    }
  }
  return 0;
}

static inline void stu_clog_free(stu_clog_t *cl) {
  for (size_t j = 0; j < cl->nkeys; j++) {
    free(cl->keys[j]);
    free(cl->vals[j]);
  }
  cl->nkeys = 0;
}

/* Collects a range scan as "k=v," text. */
typedef struct {
  char text[8192];
  int n, stop_after;
} stu_scan_t;

static inline int stu_scan_fn(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
  stu_scan_t *sc = opaque;
  size_t len = strlen(sc->text);
  snprintf(sc->text + len, sizeof sc->text - len, "%.*s=%.*s,", (int)kl, (const char *)k,
           (int)vl, (const char *)v);
  sc->n++;
  return sc->stop_after && sc->n >= sc->stop_after;
}

#endif
