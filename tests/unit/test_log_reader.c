/*
 * test_log_reader.c: record readers (log/log_reader.c): skipping records
 * below the requested offset inside a batch, and a corrupt batch in the
 * middle of a segment reported as LOG_E_CORRUPT naming the offset, never
 * returned as records, while other partitions keep working.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

static void test_skips_records_below_offset_in_first_batch(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_partition_t *p = tu_create(log, "t", 1, NULL);
  log_record_t recs[10];
  char vals[10][32];
  for (int i = 0; i < 10; i++) {
    snprintf(vals[i], sizeof vals[i], "value-%d", i);
    recs[i] = (log_record_t){.timestamp = -1, .key_len = -1, .value = vals[i],
                             .value_len = (int32_t)strlen(vals[i])};
  }
  assert_int_equal(log_partition_append(p, recs, 10, NULL, NULL), 0); /* one batch */
  assert_int_equal(tu_check_range(log, "t", 0, 7, 0), 3);
  log_reader_t *r;
  log_error_t err = {0};
  log_record_t rec;
  assert_int_equal(log_reader_new(log, "t", 0, 4, 0, &r, &err), 0);
  assert_int_equal(log_reader_position(r), 4);
  assert_int_equal(log_reader_next(r, &rec, &err), 1);
  assert_int_equal(rec.offset, 4);
  assert_int_equal(log_reader_position(r), 5);
  assert_int_equal(log_reader_seek(r, 2, &err), 0);
  assert_int_equal(log_reader_next(r, &rec, &err), 1);
  assert_int_equal(rec.offset, 2);
  log_reader_free(r);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_flipped_byte_mid_segment_is_corrupt(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  cfg.index_interval_bytes = 100;
  log_partition_t *p = tu_create(log, "t", 2, &cfg);
  log_partition_t *p1;
  assert_int_equal(log_partition_get(log, "t", 1, &p1, NULL), 0);
  tu_append_range(p, 0, 40, -1);
  tu_append_range(p1, 0, 40, -1);
  /* Find the position of the batch of offset 20 and flip a byte of its
   * record (inside the CRC-covered part), not the tail. */
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  log_error_t err = {0};
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  int64_t pos = 0;
  for (int64_t o = 0; o < 20; o++) {
    assert_int_equal(log_partition_read(p, o, 1, &buf, &cap, &len, &err), 0);
    pos += (int64_t)len;
  }
  assert_int_equal(log_partition_read(p, 20, 1, &buf, &cap, &len, &err), 0);
  tu_flip_byte(seg, pos + (int64_t)len - 3);
  free(buf);

  log_reader_t *r;
  log_record_t rec;
  assert_int_equal(log_reader_new(log, "t", 0, 15, 0, &r, &err), 0);
  for (int64_t o = 15; o < 20; o++) {
    assert_int_equal(log_reader_next(r, &rec, &err), 1);
    assert_int_equal(rec.offset, o);
  }
  assert_int_equal(log_reader_next(r, &rec, &err), LOG_E_CORRUPT);
  assert_int_equal(err.code, LOG_E_CORRUPT);
  assert_non_null(strstr(err.msg, "t-0 offset 20"));
  assert_non_null(strstr(err.msg, "CRC"));
  /* It stays there: asking again fails again. */
  assert_int_equal(log_reader_position(r), 20);
  assert_int_equal(log_reader_next(r, &rec, &err), LOG_E_CORRUPT);
  /* Starting at it directly fails too. */
  log_reader_t *r2;
  assert_int_equal(log_reader_new(log, "t", 0, 20, 0, &r2, &err), 0);
  assert_int_equal(log_reader_next(r2, &rec, &err), LOG_E_CORRUPT);
  log_reader_free(r2);
  /* Seeking past it goes on. */
  assert_int_equal(log_reader_seek(r, 21, &err), 0);
  assert_int_equal(log_reader_next(r, &rec, &err), 1);
  assert_int_equal(rec.offset, 21);
  log_reader_free(r);
  /* The other partition, and appends to this one, still work. */
  assert_int_equal(tu_check_range(log, "t", 1, 0, 0), 40);
  assert_int_equal(tu_append_range(p, 40, 2, -1), 40);
  assert_int_equal(tu_check_range(log, "t", 0, 21, 0), 21);
  assert_int_equal(log_close(log), 0);
  /* Flushed and not at the tail: a reopen keeps it (and the data after). */
  log = tu_open(dir, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 42);
  assert_int_equal(log_close(log), 0);
  free(seg);
  tu_rmrf(dir);
}

static void test_corrupt_length_field_is_corrupt(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_partition_t *p = tu_create(log, "t", 1, NULL);
  tu_append_range(p, 0, 5, -1);
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  assert_int_equal(log_partition_read(p, 0, 1, &buf, &cap, &len, NULL), 0);
  free(buf);
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  /* batchLength of the second batch: enormous. */
  uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
  tu_write_at(seg, (int64_t)len + 8, big, 4);
  log_reader_t *r;
  log_error_t err = {0};
  log_record_t rec;
  assert_int_equal(log_reader_new(log, "t", 0, 0, 0, &r, &err), 0);
  assert_int_equal(log_reader_next(r, &rec, &err), 1);
  assert_int_equal(log_reader_next(r, &rec, &err), LOG_E_CORRUPT);
  assert_non_null(strstr(err.msg, "t-0"));
  assert_non_null(strstr(err.msg, "offset 1"));
  log_reader_free(r);
  assert_int_equal(log_close(log), 0);
  free(seg);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_skips_records_below_offset_in_first_batch),
      cmocka_unit_test(test_flipped_byte_mid_segment_is_corrupt),
      cmocka_unit_test(test_corrupt_length_field_is_corrupt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
