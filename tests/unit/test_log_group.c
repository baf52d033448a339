/*
 * test_log_group.c: consumer group offsets (log/log_group.c): commit,
 * fetch, overwrite, and survival across close and reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

static void test_commit_fetch_reopen(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_error_t err = {0};
  int64_t off = 0;
  assert_int_equal(log_group_fetch(log, "g", "t", 0, &off, &err), 0);
  assert_int_equal(off, -1);
  assert_int_equal(log_group_commit(log, "g", "t", 0, 10, &err), 0);
  assert_int_equal(log_group_commit(log, "g", "t", 1, 20, &err), 0);
  assert_int_equal(log_group_commit(log, "g2", "t", 0, 30, &err), 0);
  assert_int_equal(log_group_commit(log, "g", "t", 0, 11, &err), 0);
  /* "g\0t" vs "g" + "\0t": the separators keep keys apart. */
  assert_int_equal(log_group_commit(log, "gt", "", 0, 99, &err), 0);
  assert_int_equal(log_group_commit(log, "g", "t", 0, -5, &err), LOG_E_OFFSET_OUT_OF_RANGE);
  for (int i = 0; i < 300; i++) /* grows the table */
    assert_int_equal(log_group_commit(log, "many", "t", i, i, &err), 0);
  for (int pass = 0; pass < 2; pass++) {
    assert_int_equal(log_group_fetch(log, "g", "t", 0, &off, &err), 0);
    assert_int_equal(off, 11);
    assert_int_equal(log_group_fetch(log, "g", "t", 1, &off, &err), 0);
    assert_int_equal(off, 20);
    assert_int_equal(log_group_fetch(log, "g2", "t", 0, &off, &err), 0);
    assert_int_equal(off, 30);
    assert_int_equal(log_group_fetch(log, "g2", "t", 1, &off, &err), 0);
    assert_int_equal(off, -1);
    assert_int_equal(log_group_fetch(log, "gt", "", 0, &off, &err), 0);
    assert_int_equal(off, 99);
    for (int i = 0; i < 300; i += 17) {
      assert_int_equal(log_group_fetch(log, "many", "t", i, &off, &err), 0);
      assert_int_equal(off, i);
    }
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
  }
  /* The offsets topic is an internal, compacted, always-flushed topic. */
  log_topic_config_t cfg;
  assert_int_equal(log_topic_config(log, "__consumer_offsets", &cfg, &err), 0);
  assert_int_equal(cfg.cleanup_policy, LOG_CLEANUP_COMPACT);
  assert_int_equal(cfg.flush, LOG_FLUSH_ALWAYS);
  assert_int_equal(log_topic_partitions(log, "__consumer_offsets", &err), 1);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

/* log_group_delete removes an entry for good (a tombstone survives a
 * reopen); removing what is not there writes nothing. */
static void test_delete(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_error_t err = {0};
  int64_t off = 0;
  assert_int_equal(log_group_commit(log, "g", "t", 0, 10, &err), 0);
  assert_int_equal(log_group_commit(log, "g", "t", 1, 20, &err), 0);
  log_partition_t *p;
  assert_int_equal(log_partition_get(log, "__consumer_offsets", 0, &p, &err), 0);
  assert_int_equal(log_group_delete(log, "g", "t", 0, &err), 0);
  int64_t end = log_partition_end_offset(p);
  assert_int_equal(end, 3);
  assert_int_equal(log_group_delete(log, "g", "t", 0, &err), 0);
  assert_int_equal(log_group_delete(log, "g", "nope", 0, &err), 0);
  assert_int_equal(log_partition_end_offset(p), end);
  for (int pass = 0; pass < 2; pass++) {
    assert_int_equal(log_group_fetch(log, "g", "t", 0, &off, &err), 0);
    assert_int_equal(off, -1);
    assert_int_equal(log_group_fetch(log, "g", "t", 1, &off, &err), 0);
    assert_int_equal(off, 20);
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
  }
  assert_int_equal(log_group_commit(log, "g", "t", 0, 5, &err), 0);
  assert_int_equal(log_group_fetch(log, "g", "t", 0, &off, &err), 0);
  assert_int_equal(off, 5);
  assert_int_equal(log_close(log), 0);
  scratch_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commit_fetch_reopen),
      cmocka_unit_test(test_delete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
