/* Tests for runtime/store_window.c: the window key format and its order,
 * fetch by (key, start range) through cache and SQLite, expiry in bulk
 * (through the end index: the query plan is checked, and dirty cached
 * windows are dropped too), expiry inside the commit transaction, and a
 * restore from the changelog that rebuilds the same windows. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store_test_util.h"

static store_t *swt_open(store_db_t *db, const char *name, size_t cache) {
  store_t *s = NULL;
  char err[512] = "";
  int rc = store_window_open(db, name, cache, &s, err, sizeof err);
  if (rc != 0) fail_msg("store_window_open(%s): %d %s", name, rc, err);
  assert_true(store_is_window(s));
  return s;
}

static void swt_put(store_t *s, const char *key, int64_t start, int64_t end, const char *val) {
  int rc = store_window_put(s, key, strlen(key), start, end, val, val ? strlen(val) : 0);
  if (rc != 0) fail_msg("store_window_put(%s, %lld): %d", key, (long long)start, rc);
}

/* "start-end=value;" for every fetched window, into buf. */
typedef struct {
  char buf[4096];
  size_t len;
} swt_acc_t;

static int swt_acc(void *opaque, int64_t start, int64_t end, const void *val, size_t vlen) {
  swt_acc_t *a = opaque;
  a->len += (size_t)snprintf(a->buf + a->len, sizeof a->buf - a->len, "%lld-%lld=%.*s;",
                             (long long)start, (long long)end, (int)vlen, (const char *)val);
  return 0;
}

static const char *swt_fetch(store_t *s, const char *key, int64_t from, int64_t to,
                             swt_acc_t *a) {
  a->len = 0;
  a->buf[0] = '\0';
  assert_int_equal(store_window_fetch(s, key, strlen(key), from, to, swt_acc, a), 0);
  return a->buf;
}

static void test_key_format_and_order(void **state) {
  (void)state;
  unsigned char a[64], b[64];
  const void *k;
  size_t klen;
  int64_t st, en;
  size_t n = store_window_key(a, "ab", 2, -5, 7);
  assert_int_equal(n, 2 + STORE_WINDOW_KEY_EXTRA);
  assert_int_equal(store_window_key_parse(a, n, &k, &klen, &st, &en), 0);
  assert_int_equal(klen, 2);
  assert_memory_equal(k, "ab", 2);
  assert_int_equal(st, -5);
  assert_int_equal(en, 7);
  assert_int_equal(store_window_key_parse(a, n - 1, &k, &klen, &st, &en), -EINVAL);
  assert_int_equal(store_window_key_parse(a, 3, &k, &klen, &st, &en), -EINVAL);
  /* Numeric order of starts, negative ones included, is byte order. */
  int64_t times[] = {INT64_MIN, -1000, -1, 0, 1, 255, 256, 60000, INT64_MAX};
  for (size_t i = 0; i + 1 < sizeof times / sizeof times[0]; i++) {
    size_t na = store_window_key(a, "k", 1, times[i], 0);
    size_t nb = store_window_key(b, "k", 1, times[i + 1], 0);
    assert_true(na == nb && memcmp(a, b, na) < 0);
  }
  /* All windows of "a" sort apart from those of "ab", whatever the times. */
  size_t na = store_window_key(a, "a", 1, INT64_MAX, INT64_MAX);
  size_t nb = store_window_key(b, "ab", 2, INT64_MIN, INT64_MIN);
  assert_true(memcmp(a, b, na < nb ? na : nb) < 0);
}

static void test_fetch_by_key_and_start(void **state) {
  stu_fx_t *fx = *state;
  store_db_t *db = stu_open(fx->path, NULL);
  store_t *s = swt_open(db, "win", 1 << 20);
  swt_acc_t acc;
  /* Committed windows, then uncommitted ones in the cache. */
  swt_put(s, "a", 0, 10, "a0");
  swt_put(s, "a", 10, 20, "a10");
  swt_put(s, "ab", 10, 20, "ab10");
  swt_put(s, "a", 30, 40, "a30");
  stu_commit(db, NULL, 0, NULL, NULL);
  swt_put(s, "a", 20, 30, "a20");
  swt_put(s, "a", 10, 20, "a10b");
  swt_put(s, "a", 0, 10, NULL); /* a dirty tombstone hides the row */
  swt_put(s, "a", 10, 15, "a10s"); /* same start, other end: ordered by end */
  assert_string_equal(swt_fetch(s, "a", 0, 100, &acc), "10-15=a10s;10-20=a10b;20-30=a20;30-40=a30;");
  assert_string_equal(swt_fetch(s, "a", 11, 30, &acc), "20-30=a20;30-40=a30;");
  assert_string_equal(swt_fetch(s, "a", 10, 10, &acc), "10-15=a10s;10-20=a10b;");
  assert_string_equal(swt_fetch(s, "ab", INT64_MIN, INT64_MAX, &acc), "10-20=ab10;");
  assert_string_equal(swt_fetch(s, "b", INT64_MIN, INT64_MAX, &acc), "");
  assert_string_equal(swt_fetch(s, "a", 50, 40, &acc), ""); /* empty range */
  const void *v;
  size_t vlen;
  assert_int_equal(store_window_get(s, "a", 1, 20, 30, &v, &vlen), 1);
  assert_memory_equal(v, "a20", 3);
  assert_int_equal(store_window_get(s, "a", 1, 20, 31, &v, &vlen), 0);
  stu_commit(db, NULL, 0, NULL, NULL);
  store_db_close(db);
  /* After a reopen, from SQLite alone. */
  db = stu_open(fx->path, NULL);
  s = swt_open(db, "win", 0);
  assert_string_equal(swt_fetch(s, "a", 0, 100, &acc), "10-15=a10s;10-20=a10b;20-30=a20;30-40=a30;");
  store_db_close(db);
}

/* The plan of the expiry DELETE uses the end index, not a table scan. */
static void test_expiry_uses_the_end_index(void **state) {
  stu_fx_t *fx = *state;
  store_db_t *db = stu_open(fx->path, NULL);
  swt_open(db, "win", 0);
  store_db_close(db);
  sqlite3 *sql;
  assert_int_equal(sqlite3_open(fx->path, &sql), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(sql,
                                      "EXPLAIN QUERY PLAN DELETE FROM \"kv_win\" WHERE "
                                      "substr(k, -8) < ?1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  char plan[1024] = "";
  size_t len = 0;
  while (sqlite3_step(st) == SQLITE_ROW)
    len += (size_t)snprintf(plan + len, sizeof plan - len, "%s\n", sqlite3_column_text(st, 3));
  sqlite3_finalize(st);
  sqlite3_close(sql);
  if (!strstr(plan, "SEARCH kv_win USING") || !strstr(plan, "INDEX kvend_win (<expr><?)"))
    fail_msg("plan without the end index:\n%s", plan);
}

static void test_expire_in_bulk(void **state) {
  stu_fx_t *fx = *state;
  store_db_t *db = stu_open(fx->path, NULL);
  store_t *s = swt_open(db, "win", 1 << 20);
  store_t *kv = stu_store(db, "plain", 1 << 20);
  swt_acc_t acc;
  char key[16];
  /* 200 keys x 10 windows in SQLite; some more in the cache, dirty. */
  for (int k = 0; k < 200; k++) {
    snprintf(key, sizeof key, "k%d", k);
    for (int w = 0; w < 10; w++) swt_put(s, key, w * 100, w * 100 + 100, "v");
  }
  stu_commit(db, NULL, 0, NULL, NULL);
  swt_put(s, "k1", 0, 100, "dirty-old");   /* expires: the dirty update is dropped */
  swt_put(s, "k1", 900, 1000, "dirty-new"); /* stays */
  stu_put(kv, "x", "1");
  /* Windows ending before 500 go: ends 100..400. */
  assert_int_equal(store_window_expire(s, 500), 0);
  store_stats_t stats;
  store_stats(s, &stats);
  assert_int_equal(stats.expired, 200 * 4);
  assert_string_equal(swt_fetch(s, "k1", INT64_MIN, INT64_MAX, &acc),
                      "400-500=v;500-600=v;600-700=v;700-800=v;800-900=v;900-1000=dirty-new;");
  assert_int_equal(store_window_expire(kv, 500), -EINVAL); /* not a window store */
  /* The expiry is part of the next commit: close without commit undoes it. */
  store_db_close(db);
  db = stu_open(fx->path, NULL);
  s = swt_open(db, "win", 1 << 20);
  assert_string_equal(swt_fetch(s, "k1", 0, 0, &acc), "0-100=v;");
  assert_int_equal(store_window_expire(s, 500), 0);
  stu_commit(db, NULL, 0, NULL, NULL);
  store_db_close(db);
  db = stu_open(fx->path, NULL);
  s = swt_open(db, "win", 0);
  assert_string_equal(swt_fetch(s, "k199", INT64_MIN, INT64_MAX, &acc),
                      "400-500=v;500-600=v;600-700=v;700-800=v;800-900=v;900-1000=v;");
  store_db_close(db);
}

/* A changelog kept as raw records, in order. */
typedef struct {
  size_t n;
  unsigned char *keys[256];
  size_t klens[256];
  char *vals[256]; /* NULL: tombstone */
  size_t vlens[256];
} swt_clog_t;

static int swt_clog_fn(void *opaque, store_t *s, const store_change_t *c, size_t n,
                       int64_t *end) {
  (void)s;
  swt_clog_t *cl = opaque;
  for (size_t i = 0; i < n; i++) {
    assert_true(cl->n < 256);
    cl->keys[cl->n] = malloc(c[i].klen);
    memcpy(cl->keys[cl->n], c[i].key, c[i].klen);
    cl->klens[cl->n] = c[i].klen;
    cl->vals[cl->n] = c[i].val ? stu_strndup(c[i].val, c[i].vlen) : NULL;
    cl->vlens[cl->n] = c[i].vlen;
    cl->n++;
  }
  *end = (int64_t)cl->n;
  return 0;
}

static void test_restore_from_changelog(void **state) {
  stu_fx_t *fx = *state;
  swt_clog_t cl = {0};
  store_db_t *db = stu_open(fx->path, NULL);
  store_t *s = swt_open(db, "win", 64); /* tiny cache: evictions go through the changelog */
  store_db_set_changelog(db, swt_clog_fn, &cl);
  swt_put(s, "a", 0, 10, "1");
  swt_put(s, "b", 0, 10, "1");
  stu_commit(db, NULL, 0, swt_clog_fn, &cl);
  swt_put(s, "a", 0, 10, "2");
  swt_put(s, "a", 10, 20, "1");
  swt_put(s, "b", 0, 10, NULL);
  stu_commit(db, NULL, 0, swt_clog_fn, &cl);
  swt_acc_t want_a, want_b, got;
  swt_fetch(s, "a", INT64_MIN, INT64_MAX, &want_a);
  swt_fetch(s, "b", INT64_MIN, INT64_MAX, &want_b);
  store_db_close(db);

  char other[600];
  snprintf(other, sizeof other, "%s.restored", fx->path);
  db = stu_open(other, NULL);
  s = swt_open(db, "win", 1 << 20);
  for (size_t i = 0; i < cl.n; i++)
    assert_int_equal(store_restore_put(s, cl.keys[i], cl.klens[i], cl.vals[i], cl.vlens[i]), 0);
  char err[256];
  assert_int_equal(store_restore_done(s, "j-win-changelog", 0, (int64_t)cl.n, err, sizeof err), 0);
  assert_string_equal(swt_fetch(s, "a", INT64_MIN, INT64_MAX, &got), want_a.buf);
  assert_string_equal(want_a.buf, "0-10=2;10-20=1;");
  assert_string_equal(swt_fetch(s, "b", INT64_MIN, INT64_MAX, &got), want_b.buf);
  assert_string_equal(want_b.buf, "");
  store_db_close(db);
  for (size_t i = 0; i < cl.n; i++) {
    free(cl.keys[i]);
    free(cl.vals[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_format_and_order),
      STU_TEST(test_fetch_by_key_and_start),
      STU_TEST(test_expiry_uses_the_end_index),
      STU_TEST(test_expire_in_bulk),
      STU_TEST(test_restore_from_changelog),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
