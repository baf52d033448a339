/* Tests for runtime/store_cache.c: eviction under a tiny budget flushes
 * dirty entries through the changelog into SQLite, byte accounting, the
 * statistics, growing values, table growth, and a failing eviction. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"

static void test_eviction_flushes_dirty_through_changelog(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  stu_clog_t *cl = calloc(1, sizeof *cl);
  store_db_set_changelog(db, stu_clog_fn, cl);
  const size_t cap = 4096;
  store_t *s = stu_store(db, "evict", cap);
  char k[16], v[32];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 1000; i++) {
      snprintf(k, sizeof k, "key%d", i);
      snprintf(v, sizeof v, "r%d-v%d", round, i);
      stu_put(s, k, v);
      store_stats_t st;
      store_stats(s, &st);
      assert_true(st.bytes <= cap);
    }
  }
  store_stats_t st;
  store_stats(s, &st);
  assert_true(st.evictions > 2900);
  assert_true(st.flushed > 2900);
  assert_true(cl->calls > 0);
  /* Every evicted entry reached the changelog with its latest value, and
   * the store still answers every key (from SQLite's open transaction). */
  size_t in_clog = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "key%d", i);
    snprintf(v, sizeof v, "r2-v%d", i);
    const char *got;
    if (stu_clog_get(cl, k, &got)) {
      in_clog++;
      if (strcmp(got, v) != 0) { /* an older round: must still be dirty */
        const void *cv;
        size_t cl_len;
        assert_int_equal(store_get(s, k, strlen(k), &cv, &cl_len), 1);
      }
    }
    stu_expect(s, k, v);
  }
  assert_true(in_clog > 900);
  /* The commit sends the rest; then the changelog has everything. */
  stu_commit(db, NULL, 0, stu_clog_fn, cl);
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "key%d", i);
    snprintf(v, sizeof v, "r2-v%d", i);
    const char *got;
    assert_int_equal(stu_clog_get(cl, k, &got), 1);
    assert_string_equal(got, v);
  }
  store_db_close(db);
  /* SQLite has them after a reopen. */
  db = stu_open(path, NULL);
  s = stu_store(db, "evict", cap);
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "key%d", i);
    snprintf(v, sizeof v, "r2-v%d", i);
    stu_expect(s, k, v);
  }
  store_db_close(db);
  stu_clog_free(cl);
  free(cl);
}

static void test_stats_counters(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "stats", 1 << 20);
  store_stats_t st;
  store_stats(s, &st);
  assert_int_equal(st.hits + st.misses + st.puts + st.evictions + st.flushed, 0);
  assert_int_equal(st.bytes, 0);

  stu_put(s, "a", "1");
  stu_put(s, "b", "2");
  stu_expect(s, "a", "1");  /* hit */
  stu_expect(s, "c", NULL); /* miss, cached as absent */
  stu_expect(s, "c", NULL); /* hit */
  store_stats(s, &st);
  assert_int_equal(st.puts, 2);
  assert_int_equal(st.hits, 2);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.flushed, 0);
  assert_int_equal(st.evictions, 0);
  size_t three = st.bytes;
  assert_true(three > 3 * 48);

  stu_commit(db, NULL, 0, NULL, NULL);
  store_stats(s, &st);
  assert_int_equal(st.flushed, 2);
  assert_int_equal(st.entries, 3); /* clean entries stay cached */
  assert_int_equal(st.bytes, three);
  stu_commit(db, NULL, 0, NULL, NULL); /* nothing dirty: nothing flushed */
  store_stats(s, &st);
  assert_int_equal(st.flushed, 2);

  /* A reopen starts cold: a get goes to SQLite once, then hits. */
  store_db_close(db);
  db = stu_open(path, NULL);
  s = stu_store(db, "stats", 1 << 20);
  stu_expect(s, "a", "1");
  stu_expect(s, "a", "1");
  store_stats(s, &st);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.entries, 1);
  store_db_close(db);
}

static void test_growing_values_and_many_keys(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "grow", 64 << 20);
  /* 20000 keys: the bucket array doubles many times. */
  char k[16], v[16];
  for (int i = 0; i < 20000; i++) {
    snprintf(k, sizeof k, "%d", i);
    snprintf(v, sizeof v, "v%d", i);
    stu_put(s, k, v);
  }
  /* One key whose value grows past its capacity again and again, while
   * other keys keep it from being the only entry. */
  char *big = malloc(5001);
  assert_non_null(big);
  for (int len = 1; len <= 5000; len += 37) {
    memset(big, 'a' + len % 26, (size_t)len);
    big[len] = '\0';
    stu_put(s, "big", big);
    stu_expect(s, "big", big);
  }
  for (int i = 0; i < 20000; i += 7) {
    snprintf(k, sizeof k, "%d", i);
    snprintf(v, sizeof v, "v%d", i);
    stu_expect(s, k, v);
  }
  store_stats_t st;
  store_stats(s, &st);
  assert_int_equal(st.entries, 20001);
  assert_int_equal(st.evictions, 0);
  stu_commit(db, NULL, 0, NULL, NULL);
  store_db_close(db);
  db = stu_open(path, NULL);
  s = stu_store(db, "grow", 0);
  stu_expect(s, "big", big);
  stu_expect(s, "19999", "v19999");
  free(big);
  store_db_close(db);
}

static void test_entry_larger_than_cache(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "small", 256);
  char big[1024];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  stu_put(s, "a", "1");
  stu_put(s, "huge", big); /* evicts (flushing) everything else */
  stu_expect(s, "huge", big);
  stu_put(s, "b", "2"); /* evicts the huge one, flushing it first */
  stu_expect(s, "a", "1");
  stu_expect(s, "huge", big);
  stu_expect(s, "b", "2");
  stu_commit(db, NULL, 0, NULL, NULL);
  store_db_close(db);
  db = stu_open(path, NULL);
  s = stu_store(db, "small", 256);
  stu_expect(s, "huge", big);
  store_db_close(db);
}

static void test_failed_eviction_changes_nothing(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  stu_clog_t *cl = calloc(1, sizeof *cl);
  store_db_set_changelog(db, stu_clog_fn, cl);
  store_t *s = stu_store(db, "failing", 500);
  char k[16];
  int i = 0;
  cl->fail = 1;
  int rc = 0;
  /* Fill until an eviction needs the (failing) changelog. */
  for (i = 0; i < 100 && rc == 0; i++) {
    snprintf(k, sizeof k, "k%d", i);
    rc = store_put(s, k, strlen(k), "v", 1);
  }
  assert_int_equal(rc, STORE_E_CHANGELOG);
  assert_non_null(strstr(store_db_errmsg(db), "changelog callback failed"));
  snprintf(k, sizeof k, "k%d", i - 1);
  stu_expect(s, k, NULL); /* the failed put did not happen */
  stu_expect(s, "k0", "v");
  assert_int_equal(cl->calls, 0);
  cl->fail = 0;
  stu_put(s, k, "v");
  assert_int_equal(cl->calls, 1);
  for (int j = 0; j < i; j++) {
    snprintf(k, sizeof k, "k%d", j);
    stu_expect(s, k, "v");
  }
  store_db_close(db);
  stu_clog_free(cl);
  free(cl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      STU_TEST(test_eviction_flushes_dirty_through_changelog),
      STU_TEST(test_stats_counters),
      STU_TEST(test_growing_values_and_many_keys),
      STU_TEST(test_entry_larger_than_cache),
      STU_TEST(test_failed_eviction_changes_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
