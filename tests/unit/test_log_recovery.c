/*
 * test_log_recovery.c: opening a log after a crash (log/log_recovery.c).
 *
 * A crash is simulated by copying the log directory while the log is open
 * (nothing flushed since the last flush), then damaging the copy: a torn
 * tail, garbage after the last batch. The bounded-recovery test corrupts a
 * byte in the flushed part of the active segment: if recovery scanned it,
 * it would truncate there, so the end offset staying put is the check (and
 * the scanned-bytes counter must equal the unflushed bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

static log_topic_config_t never_cfg(void) {
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  cfg.segment_bytes = 1 << 20;
  cfg.index_interval_bytes = 100;
  cfg.flush = LOG_FLUSH_NEVER;
  return cfg;
}

/* "Crash": a copy of the live directory, as a power cut after the last
 * flush... minus the page cache subtleties: the copy holds what was
 * written, flushed or not. */
static char *crash_copy(const char *dir) {
  char *copy = tu_mkdtemp();
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", dir, copy);
  assert_int_equal(system(cmd), 0);
  return copy;
}

static void test_torn_tail_recovered_to_last_whole_batch(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = never_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 20, -1);
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  int64_t size20 = tu_file_size(seg);
  tu_append_range(p, 20, 1, -1);
  int64_t size21 = tu_file_size(seg);
  char *copy = crash_copy(dir);
  assert_int_equal(log_close(log), 0);

  /* Cut the last batch in the middle. */
  char *cseg = tu_seg_path(copy, "t", 0, 0, ".log");
  tu_truncate(cseg, size20 + (size21 - size20) / 2);
  tu_events_t ev = {0};
  log = tu_open(copy, &ev);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 20);
  assert_int_equal(tu_file_size(cseg), size20);
  assert_non_null(strstr(ev.text, "t-0: recovery truncated segment 0"));
  assert_non_null(strstr(ev.text, "torn batch"));
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 20);
  /* The offset of the lost record is given again. */
  assert_int_equal(tu_append_range(p, 20, 1, -1), 20);
  assert_int_equal(log_close(log), 0);
  /* And a clean reopen finds nothing to do. */
  memset(&ev, 0, sizeof ev);
  log = tu_open(copy, &ev);
  assert_null(strstr(ev.text, "recovery truncated"));
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 21);
  assert_int_equal(log_close(log), 0);
  free(seg);
  free(cseg);
  tu_rmrf(copy);
  tu_rmrf(dir);
}

static void test_garbage_after_last_batch_truncated(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = never_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 10, -1);
  assert_int_equal(log_partition_flush(p, NULL), 0);
  tu_append_range(p, 10, 5, -1);
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  int64_t size = tu_file_size(seg);
  char *copy = crash_copy(dir);
  assert_int_equal(log_close(log), 0);
  char *cseg = tu_seg_path(copy, "t", 0, 0, ".log");
  /* Three kinds of garbage, each after a fresh copy of the state. */
  uint8_t junk[200];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  tu_write_at(cseg, size, junk, sizeof junk);
  tu_events_t ev = {0};
  log = tu_open(copy, &ev);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 15);
  assert_int_equal(tu_file_size(cseg), size);
  assert_non_null(strstr(ev.text, "200 bytes cut"));
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 15);
  assert_int_equal(log_close(log), 0);

  /* Zeros (what a file system shows for an unwritten extent). */
  uint8_t zeros[100] = {0};
  tu_write_at(cseg, size, zeros, sizeof zeros);
  log = tu_open(copy, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 15);
  assert_int_equal(tu_file_size(cseg), size);
  assert_int_equal(log_close(log), 0);
  free(seg);
  free(cseg);
  tu_rmrf(copy);
  tu_rmrf(dir);
}

static void test_recovery_scans_only_the_unflushed_tail(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = never_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 500, -1);
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  assert_int_equal(log_partition_flush(p, NULL), 0);
  int64_t flushed = tu_file_size(seg);
  tu_append_range(p, 500, 7, -1);
  int64_t unflushed = tu_file_size(seg) - flushed;
  char *copy = crash_copy(dir);
  assert_int_equal(log_close(log), 0);

  /* Corrupt a record in the flushed region (CRC-covered bytes of a batch
   * near the start). A recovery that scanned it would truncate there. */
  char *cseg = tu_seg_path(copy, "t", 0, 0, ".log");
  tu_flip_byte(cseg, 70);
  tu_events_t ev = {0};
  log = tu_open(copy, &ev);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 507);
  assert_int_equal(p->recovery_scanned_bytes, unflushed);
  assert_int_equal(p->recovery_truncated_bytes, 0);
  assert_null(strstr(ev.text, "recovery truncated"));
  /* The damage is still found, by the reader, naming the offset. */
  log_reader_t *r;
  log_error_t err = {0};
  log_record_t rec;
  assert_int_equal(log_reader_new(log, "t", 0, 0, 0, &r, &err), 0);
  assert_int_equal(log_reader_next(r, &rec, &err), LOG_E_CORRUPT);
  assert_non_null(strstr(err.msg, "t-0 offset 0"));
  log_reader_free(r);
  assert_int_equal(log_close(log), 0);

  /* A clean shutdown writes a recovery point at the end: nothing scanned. */
  log = tu_open(copy, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(p->recovery_scanned_bytes, 0);
  assert_int_equal(log_close(log), 0);

  /* Without a recovery point, the scan is full and finds the damage. */
  char *rp = tu_path(copy, "t-0/recovery-point");
  assert_int_equal(unlink(rp), 0);
  memset(&ev, 0, sizeof ev);
  log = tu_open(copy, &ev);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_non_null(strstr(ev.text, "no recovery point"));
  assert_int_equal(log_partition_end_offset(p), 0);
  assert_int_equal(log_close(log), 0);
  free(rp);
  free(seg);
  free(cseg);
  tu_rmrf(copy);
  tu_rmrf(dir);
}

static void test_recovery_across_rolled_segments(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = never_cfg();
  cfg.segment_bytes = 600;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 50, -1);
  assert_int_equal(log_partition_flush(p, NULL), 0);
  tu_append_range(p, 50, 60, -1); /* several rolls after the flush */
  char *copy = crash_copy(dir);
  assert_int_equal(log_close(log), 0);
  /* Recovery starts in the flushed segment and walks the later ones. */
  log = tu_open(copy, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_true(p->recovery_scanned_bytes > 0);
  assert_int_equal(log_partition_end_offset(p), 110);
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 110);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(copy);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_torn_tail_recovered_to_last_whole_batch),
      cmocka_unit_test(test_garbage_after_last_batch_truncated),
      cmocka_unit_test(test_recovery_scans_only_the_unflushed_tail),
      cmocka_unit_test(test_recovery_across_rolled_segments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
