/* Tests for runtime/store_kv.c: get/put/delete through the cache, after a
 * commit and after a reopen; range scans merging dirty entries over
 * SQLite; and a randomised comparison against a plain model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"

static void test_put_get_delete_cache_commit_reopen(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "words", 1 << 20);

  stu_expect(s, "a", NULL);
  stu_put(s, "a", "1");
  stu_put(s, "b", "2");
  stu_put(s, "c", "3");
  stu_expect(s, "a", "1");
  stu_put(s, "a", "one"); /* grows within the entry's capacity */
  stu_put(s, "b", NULL);  /* delete in the cache */
  stu_expect(s, "a", "one");
  stu_expect(s, "b", NULL);
  /* An empty key and an empty value are values, not absences. */
  assert_int_equal(store_put(s, "", 0, "empty-key", 9), 0);
  assert_int_equal(store_put(s, "e", 1, "", 0), 0);
  const void *v;
  size_t vlen = 99;
  assert_int_equal(store_get(s, "e", 1, &v, &vlen), 1);
  assert_int_equal(vlen, 0);
  stu_commit(db, NULL, 0, NULL, NULL);

  stu_expect(s, "a", "one");
  stu_expect(s, "b", NULL);
  stu_put(s, "c", NULL); /* delete of a committed key */
  stu_commit(db, NULL, 0, NULL, NULL);
  stu_put(s, "d", "uncommitted");
  store_db_close(db); /* close does not commit */

  db = stu_open(path, NULL);
  s = stu_store(db, "words", 1 << 20);
  stu_expect(s, "a", "one");
  stu_expect(s, "b", NULL);
  stu_expect(s, "c", NULL);
  stu_expect(s, "d", NULL);
  assert_int_equal(store_get(s, "", 0, &v, &vlen), 1);
  assert_memory_equal(v, "empty-key", 9);
  assert_int_equal(store_get(s, "e", 1, &v, &vlen), 1);
  assert_int_equal(vlen, 0);
  /* Stores are separate tables. */
  store_t *other = stu_store(db, "other", 1 << 20);
  stu_expect(other, "a", NULL);
  store_db_close(db);
}

static void test_get_without_cache_uses_shared_buffer(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "nocache", 0);
  stu_put(s, "x", "10");
  stu_put(s, "y", "20");
  store_stats_t st;
  store_stats(s, &st);
  assert_int_equal(st.entries, 2); /* dirty entries wait for the commit */
  stu_expect(s, "x", "10");
  stu_commit(db, NULL, 0, NULL, NULL);
  store_stats(s, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  stu_expect(s, "x", "10");
  stu_expect(s, "y", "20");
  stu_expect(s, "z", NULL);
  store_stats(s, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.misses, 3);
  store_db_close(db);
}

/* SQLite holds a, c, e, g (committed); the cache adds b, deletes c,
 * updates e, adds h, and deletes a key SQLite never had (f). */
static store_db_t *range_fixture(const char *path, size_t cache, store_t **out) {
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "r", cache);
  stu_put(s, "a", "A");
  stu_put(s, "c", "C");
  stu_put(s, "e", "E");
  stu_put(s, "g", "G");
  stu_commit(db, NULL, 0, NULL, NULL);
  stu_put(s, "b", "B2");
  stu_put(s, "c", NULL);
  stu_put(s, "e", "E2");
  stu_put(s, "h", "H2");
  stu_put(s, "f", NULL);
  *out = s;
  return db;
}

static void scan_expect(store_t *s, const char *from, const char *to, size_t limit, int stop,
                        const char *want) {
  stu_scan_t sc = {.stop_after = stop};
  int rc = store_range(s, from, from ? strlen(from) : 0, to, to ? strlen(to) : 0, limit,
                       stu_scan_fn, &sc);
  assert_int_equal(rc, 0);
  assert_string_equal(sc.text, want);
}

static void test_range_merges_dirty_over_sqlite(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_t *s;
  store_db_t *db = range_fixture(path, 1 << 20, &s);
  scan_expect(s, NULL, NULL, 0, 0, "a=A,b=B2,e=E2,g=G,h=H2,");
  scan_expect(s, "b", "g", 0, 0, "b=B2,e=E2,g=G,");
  scan_expect(s, "bb", "f", 0, 0, "e=E2,");
  scan_expect(s, "c", NULL, 0, 0, "e=E2,g=G,h=H2,");
  scan_expect(s, NULL, "e", 0, 0, "a=A,b=B2,e=E2,");
  scan_expect(s, NULL, NULL, 2, 0, "a=A,b=B2,");
  scan_expect(s, "d", NULL, 2, 0, "e=E2,g=G,");
  scan_expect(s, NULL, NULL, 0, 3, "a=A,b=B2,e=E2,");
  scan_expect(s, "x", NULL, 0, 0, "");
  scan_expect(s, "g", "b", 0, 0, "");
  /* After the commit the same answers come from SQLite alone. */
  stu_commit(db, NULL, 0, NULL, NULL);
  scan_expect(s, NULL, NULL, 0, 0, "a=A,b=B2,e=E2,g=G,h=H2,");
  store_db_close(db);
}

static void test_range_byte_order(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "bytes", 1 << 20);
  /* Committed: "ab", "\xff"; dirty: "a", "a\0", "b", "" (empty key). */
  assert_int_equal(store_put(s, "ab", 2, "2", 1), 0);
  assert_int_equal(store_put(s, "\xff", 1, "5", 1), 0);
  stu_commit(db, NULL, 0, NULL, NULL);
  assert_int_equal(store_put(s, "a", 1, "0", 1), 0);
  assert_int_equal(store_put(s, "a\0", 2, "1", 1), 0);
  assert_int_equal(store_put(s, "b", 1, "3", 1), 0);
  assert_int_equal(store_put(s, "", 0, "e", 1), 0);
  stu_scan_t sc = {0};
  assert_int_equal(store_range(s, NULL, 0, NULL, 0, 0, stu_scan_fn, &sc), 0);
  /* "" < "a" < "a\0" < "ab" < "b" < "\xff": memcmp, shorter first. The
   * "a\0" key prints as "a" because %.*s stops at the NUL; its value says
   * which it is. */
  assert_string_equal(sc.text, "=e,a=0,a=1,ab=2,b=3,\xff=5,");
  /* An empty "from" bound is the lowest key, not an open bound. */
  memset(&sc, 0, sizeof sc);
  assert_int_equal(store_range(s, "", 0, "a\0", 2, 0, stu_scan_fn, &sc), 0);
  assert_string_equal(sc.text, "=e,a=0,a=1,");
  store_db_close(db);
}

static void test_range_with_evictions(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "tiny", 600);
  /* 200 keys into a cache of a handful: most are evicted into the open
   * transaction, some are dirty; the scan must see all of them once. */
  char k[16], v[16];
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof k, "k%03d", i);
    snprintf(v, sizeof v, "%d", i);
    stu_put(s, k, v);
  }
  for (int i = 0; i < 200; i += 3) {
    snprintf(k, sizeof k, "k%03d", i);
    stu_put(s, k, NULL);
  }
  store_stats_t st;
  store_stats(s, &st);
  assert_true(st.evictions > 0);
  assert_true(st.flushed > 0);
  stu_scan_t sc = {0};
  assert_int_equal(store_range(s, "k010", 4, "k020", 4, 0, stu_scan_fn, &sc), 0);
  assert_string_equal(sc.text, "k010=10,k011=11,k013=13,k014=14,k016=16,k017=17,k019=19,k020=20,");
  memset(&sc, 0, sizeof sc);
  assert_int_equal(store_range(s, NULL, 0, NULL, 0, 0, stu_scan_fn, &sc), 0);
  assert_int_equal(sc.n, 200 - 67);
  store_db_close(db);
}

/* Random puts, deletes, gets, scans, commits and reopens against an
 * array model, with a cache small enough to evict all the time. */
#define MODEL_KEYS 64
typedef struct {
  char vals[MODEL_KEYS][24];
  bool present[MODEL_KEYS];
} model_t;

typedef struct {
  const model_t *m;
  int next; /* the next key index the scan should yield */
  int errors;
} model_scan_t;

static int model_scan_fn(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
  model_scan_t *ms = opaque;
  while (ms->next < MODEL_KEYS && !ms->m->present[ms->next])
    ms->next++;
  char want[8];
  snprintf(want, sizeof want, "m%02d", ms->next);
  if (ms->next >= MODEL_KEYS || kl != 3 || memcmp(k, want, 3) != 0 ||
      vl != strlen(ms->m->vals[ms->next]) || memcmp(v, ms->m->vals[ms->next], vl) != 0)
    ms->errors++;
  ms->next++;
  return 0;
}

static void test_random_against_model(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "model", 900);
  model_t committed = {0}, live = {0};
  unsigned seed = 12345;
  for (int step = 0; step < 20000; step++) {
    int op = rand_r(&seed) % 100;
    int k = rand_r(&seed) % MODEL_KEYS;
    char key[8];
    snprintf(key, sizeof key, "m%02d", k);
    if (op < 45) {
      char val[24];
      /* Lengths vary so entries grow and shrink (reallocation path). */
      int len = snprintf(val, sizeof val, "%d", rand_r(&seed));
      val[rand_r(&seed) % len + 1] = '\0';
      stu_put(s, key, val);
      snprintf(live.vals[k], sizeof live.vals[k], "%s", val);
      live.present[k] = true;
    } else if (op < 60) {
      stu_put(s, key, NULL);
      live.present[k] = false;
    } else if (op < 90) {
      stu_expect(s, key, live.present[k] ? live.vals[k] : NULL);
    } else if (op < 95) {
      model_scan_t ms = {.m = &live};
      assert_int_equal(store_range(s, NULL, 0, NULL, 0, 0, model_scan_fn, &ms), 0);
      while (ms.next < MODEL_KEYS && !live.present[ms.next])
        ms.next++;
      assert_int_equal(ms.errors, 0);
      assert_int_equal(ms.next, MODEL_KEYS);
    } else if (op < 99) {
      stu_commit(db, NULL, 0, NULL, NULL);
      committed = live;
    } else {
      store_db_close(db); /* drops what was not committed */
      db = stu_open(path, NULL);
      s = stu_store(db, "model", 900);
      live = committed;
    }
  }
  store_db_close(db);
}

static void test_put_rejects_oversized(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "big", 1024);
  assert_int_equal(store_put(s, "k", (size_t)1 << 31, "v", 1), -E2BIG);
  assert_int_equal(store_put(s, "k", 1, "v", (size_t)1 << 31), -E2BIG);
  store_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      STU_TEST(test_put_get_delete_cache_commit_reopen),
      STU_TEST(test_get_without_cache_uses_shared_buffer),
      STU_TEST(test_range_merges_dirty_over_sqlite),
      STU_TEST(test_range_byte_order),
      STU_TEST(test_range_with_evictions),
      STU_TEST(test_random_against_model),
      STU_TEST(test_put_rejects_oversized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
