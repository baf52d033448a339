/*
 * test_log_index.c: offset and time indexes (log/log_index.c): lookups,
 * the sanity checks on load, and rebuilding a deleted, garbage or
 * truncated index from its segment (checked through lookups that use it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

static void test_lookup_and_time_lookup(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *prefix = tu_path(dir, "00000000000000000000");
  log__index_t ix;
  assert_int_equal(log__index_open(&ix, prefix, 0, NULL), 0);
  assert_int_equal(log__index_lookup(&ix, 5), 0);
  assert_int_equal(log__index_time_lookup(&ix, 5), -1);
  for (uint32_t i = 1; i <= 10; i++) {
    assert_int_equal(log__index_add_offset(&ix, i * 10, i * 1000), 0);
    assert_int_equal(log__index_add_time(&ix, 5000 + i * 100, i * 10), 0);
  }
  assert_int_equal(log__index_add_time(&ix, 5000, 200), 0); /* not growing: ignored */
  assert_int_equal(ix.n_time, 10);
  assert_int_equal(log__index_lookup(&ix, 9), 0);
  assert_int_equal(log__index_lookup(&ix, 10), 1000);
  assert_int_equal(log__index_lookup(&ix, 55), 5000);
  assert_int_equal(log__index_lookup(&ix, 1000), 10000);
  assert_int_equal(log__index_time_lookup(&ix, 5100), -1);
  assert_int_equal(log__index_time_lookup(&ix, 5101), 10);
  assert_int_equal(log__index_time_lookup(&ix, 5350), 30);
  assert_int_equal(log__index_truncate(&ix, 5000, 40), 0);
  assert_int_equal(ix.n_off, 4);
  assert_int_equal(ix.n_time, 3);
  log__index_close(&ix);
  /* Reload: what is on disk matches; positions past the segment fail. */
  assert_int_equal(log__index_open(&ix, prefix, 4001, NULL), 0);
  assert_int_equal(ix.n_off, 4);
  assert_int_equal(ix.n_time, 3);
  log__index_close(&ix);
  assert_int_equal(log__index_open(&ix, prefix, 4000, NULL), 1);
  assert_int_equal(ix.n_off, 0);
  log__index_close(&ix);
  free(prefix);
  tu_rmrf(dir);
}

static log_topic_config_t cfg_small(void) {
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  cfg.segment_bytes = 2048;
  cfg.index_interval_bytes = 64;
  return cfg;
}

/* Writes 200 records with timestamps 1000 + i, closes the log. */
static char *make_log(void) {
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = cfg_small();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  for (int i = 0; i < 200; i++)
    tu_append_range(p, i, 1, 1000 + i);
  assert_int_equal(log_close(log), 0);
  return dir;
}

static void check_lookups(const char *dir, tu_events_t *ev) {
  log_t *log = tu_open(dir, ev);
  log_partition_t *p;
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 200);
  for (int64_t o = 0; o < 200; o += 3)
    assert_int_equal(tu_check_range(log, "t", 0, o, 0), 200 - o);
  for (int i = 0; i < 200; i += 5) {
    int64_t off;
    assert_int_equal(log_partition_offset_for_time(p, 1000 + i, &off, NULL), 0);
    assert_int_equal(off, i);
  }
  assert_int_equal(log_close(log), 0);
}

static void test_index_deleted_is_rebuilt(void **state) {
  (void)state;
  char *dir = make_log();
  char *ix = tu_seg_path(dir, "t", 0, 0, ".index");
  char *tix = tu_seg_path(dir, "t", 0, 0, ".timeindex");
  int64_t size = tu_file_size(ix), tsize = tu_file_size(tix);
  assert_true(size > 8);
  assert_int_equal(unlink(ix), 0);
  assert_int_equal(unlink(tix), 0);
  tu_events_t ev = {0};
  check_lookups(dir, &ev);
  assert_non_null(strstr(ev.text, "rebuilt the index of segment 0"));
  assert_int_equal(tu_file_size(ix), size);
  assert_int_equal(tu_file_size(tix), tsize);
  free(ix);
  free(tix);
  tu_rmrf(dir);
}

static void test_index_garbage_or_truncated_is_rebuilt(void **state) {
  (void)state;
  char *dir = make_log();
  char *ix = tu_seg_path(dir, "t", 0, 0, ".index");
  char *tix = tu_seg_path(dir, "t", 0, 0, ".timeindex");
  int64_t size = tu_file_size(ix);
  /* Garbage: decreasing offsets and positions past the segment. */
  uint8_t junk[64];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(0xf0 - i * 3);
  tu_write_at(ix, 8, junk, sizeof junk);
  tu_events_t ev = {0};
  check_lookups(dir, &ev);
  assert_non_null(strstr(ev.text, "rebuilt the index"));
  assert_int_equal(tu_file_size(ix), size);

  /* Truncated mid-entry. */
  tu_truncate(ix, size - 3);
  memset(&ev, 0, sizeof ev);
  check_lookups(dir, &ev);
  assert_non_null(strstr(ev.text, "rebuilt the index"));
  assert_int_equal(tu_file_size(ix), size);

  /* A time index out of order. */
  uint8_t t[12] = {0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  tu_write_at(tix, 0, t, sizeof t);
  memset(&ev, 0, sizeof ev);
  check_lookups(dir, &ev);
  assert_non_null(strstr(ev.text, "rebuilt the index"));
  free(ix);
  free(tix);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup_and_time_lookup),
      cmocka_unit_test(test_index_deleted_is_rebuilt),
      cmocka_unit_test(test_index_garbage_or_truncated_is_rebuilt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
