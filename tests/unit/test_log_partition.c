/*
 * test_log_partition.c: partitions (log/log_partition.c): append and read
 * across segment rolls, batching under max.message.bytes, offsets out of
 * range, offset_for_time, time and size retention, wait/watch, a reader
 * racing a writer, and injected write/fsync failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

#include <pthread.h>
#include <sys/eventfd.h>

static log_topic_config_t small_cfg(void) {
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  cfg.segment_bytes = 1024;
  cfg.index_interval_bytes = 100;
  cfg.flush = LOG_FLUSH_NEVER;
  return cfg;
}

static int count_files(const char *dir, const char *ext) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '[0-9]%s$' > '%s/../count.txt'", dir, ext, dir);
  if (system(cmd) < 0)
    return -1;
  char *path = tu_path(dir, "../count.txt");
  char *text;
  size_t len;
  assert_int_equal(log__read_file(path, &text, &len), 0);
  int n = atoi(text);
  free(text);
  unlink(path);
  free(path);
  return n;
}

static void test_roundtrip_across_rolls(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  assert_int_equal(tu_append_range(p, 0, 300, -1), 0);
  assert_int_equal(log_partition_end_offset(p), 300);
  assert_int_equal(log_partition_start_offset(p), 0);
  char *pdir = tu_path(dir, "t-0");
  int segs = count_files(pdir, ".log");
  assert_true(segs > 5);
  assert_int_equal(count_files(pdir, ".index"), segs);
  assert_int_equal(count_files(pdir, ".timeindex"), segs);

  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 300);
  /* Every offset as a starting point, so every index entry is used. */
  for (int64_t o = 0; o < 300; o += 7)
    assert_int_equal(tu_check_range(log, "t", 0, o, 0), 300 - o);

  /* Raw reads return whole batches only, starting with the one holding
   * the offset, at least one even when max_bytes is smaller. */
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  log_error_t err = {0};
  assert_int_equal(log_partition_read(p, 123, 1, &buf, &cap, &len, &err), 0);
  assert_true(len > LOG__BATCH_HEADER_SIZE);
  assert_int_equal(log__batch_size(buf), len);
  assert_int_equal((int64_t)log__be64(buf), 123);
  assert_int_equal(log_partition_read(p, 123, 500, &buf, &cap, &len, &err), 0);
  size_t at = 0;
  int64_t expect = 123;
  while (at < len) {
    assert_int_equal(log__batch_validate(buf + at, log__batch_size(buf + at), &err), 0);
    assert_int_equal((int64_t)log__be64(buf + at), expect++);
    at += log__batch_size(buf + at);
  }
  assert_int_equal(at, len);
  assert_true(len <= 500);
  free(buf);

  int64_t size = log_partition_size(p);
  assert_int_equal(log_close(log), 0);
  log = tu_open(dir, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 300);
  assert_int_equal(log_partition_size(p), size);
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 300);
  /* Appends continue after the reopen. */
  assert_int_equal(tu_append_range(p, 300, 20, -1), 300);
  assert_int_equal(tu_check_range(log, "t", 0, 250, 0), 70);
  assert_int_equal(log_close(log), 0);
  free(pdir);
  tu_rmrf(dir);
}

static void test_batches_split_at_max_message_bytes(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  cfg.segment_bytes = 1 << 20;
  cfg.max_message_bytes = 300;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  log_record_t recs[50];
  char vals[50][32];
  for (int i = 0; i < 50; i++) {
    snprintf(vals[i], sizeof vals[i], "value-%d", i);
    recs[i] = (log_record_t){.timestamp = i % 3 ? -1 : 1000 + i, .key = NULL, .key_len = -1,
                             .value = vals[i], .value_len = (int32_t)strlen(vals[i])};
  }
  int64_t base = -1;
  log_error_t err = {0};
  assert_int_equal(log_partition_append(p, recs, 50, &base, &err), 0);
  assert_int_equal(base, 0);
  assert_int_equal(log_partition_end_offset(p), 50);
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  assert_int_equal(log_partition_read(p, 0, 1 << 20, &buf, &cap, &len, &err), 0);
  int batches = 0;
  for (size_t at = 0; at < len; at += log__batch_size(buf + at)) {
    assert_true(log__batch_size(buf + at) <= 300);
    assert_int_equal(log__batch_validate(buf + at, log__batch_size(buf + at), &err), 0);
    batches++;
  }
  assert_true(batches > 1);
  free(buf);
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 50);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_record_too_large(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  cfg.max_message_bytes = 200;
  log_partition_t *p = tu_create(log, "big", 1, &cfg);
  tu_append_range(p, 0, 3, -1);
  int64_t size = log_partition_size(p);
  char value[300];
  memset(value, 'x', sizeof value);
  log_record_t recs[2] = {
      {.timestamp = -1, .key_len = -1, .value = "small", .value_len = 5},
      {.timestamp = -1, .key_len = -1, .value = value, .value_len = sizeof value}};
  log_error_t err = {0};
  int64_t base = -1;
  assert_int_equal(log_partition_append(p, recs, 2, &base, &err), LOG_E_RECORD_TOO_LARGE);
  assert_int_equal(err.code, LOG_E_RECORD_TOO_LARGE);
  assert_non_null(strstr(err.msg, "big-0"));
  assert_non_null(strstr(err.msg, "200"));
  /* All or nothing: the small record before it was not written either. */
  assert_int_equal(log_partition_end_offset(p), 3);
  assert_int_equal(log_partition_size(p), size);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_out_of_range(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 10, -1);
  uint8_t *buf = NULL;
  size_t cap = 0, len = 99;
  log_error_t err = {0};
  assert_int_equal(log_partition_read(p, 11, 100, &buf, &cap, &len, &err),
                   LOG_E_OFFSET_OUT_OF_RANGE);
  assert_non_null(strstr(err.msg, "t-0"));
  assert_non_null(strstr(err.msg, "11"));
  assert_int_equal(log_partition_read(p, -1, 100, &buf, &cap, &len, &err),
                   LOG_E_OFFSET_OUT_OF_RANGE);
  assert_int_equal(log_partition_read(p, 10, 100, &buf, &cap, &len, &err), 0);
  assert_int_equal(len, 0);
  log_reader_t *r;
  assert_int_equal(log_reader_new(log, "t", 0, 11, 0, &r, &err), LOG_E_OFFSET_OUT_OF_RANGE);
  assert_int_equal(log_reader_new(log, "t", 0, 10, 0, &r, &err), 0);
  log_record_t rec;
  assert_int_equal(log_reader_next(r, &rec, &err), 0); /* at the end, for now */
  tu_append_range(p, 10, 1, -1);
  assert_int_equal(log_reader_next(r, &rec, &err), 1);
  assert_int_equal(rec.offset, 10);
  assert_int_equal(log_reader_seek(r, 12, &err), LOG_E_OFFSET_OUT_OF_RANGE);
  log_reader_free(r);
  free(buf);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_offset_for_time(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  /* Record i has timestamp 10000 + 10 * i; a few go in multi-record
   * batches, so some answers are in the middle of a batch. */
  for (int i = 0; i < 200;) {
    int n = i % 7 == 0 ? 3 : 1;
    log_record_t recs[3];
    char vals[3][32];
    for (int k = 0; k < n; k++) {
      snprintf(vals[k], sizeof vals[k], "value-%d", i + k);
      recs[k] = (log_record_t){.timestamp = 10000 + 10 * (i + k), .key_len = -1,
                               .value = vals[k], .value_len = (int32_t)strlen(vals[k])};
    }
    assert_int_equal(log_partition_append(p, recs, (size_t)n, NULL, NULL), 0);
    i += n;
  }
  for (int pass = 0; pass < 2; pass++) {
    int64_t off;
    log_error_t err = {0};
    for (int i = 0; i < 200; i++) {
      assert_int_equal(log_partition_offset_for_time(p, 10000 + 10 * i, &off, &err), 0);
      assert_int_equal(off, i);
      assert_int_equal(log_partition_offset_for_time(p, 10000 + 10 * i - 5, &off, &err), 0);
      assert_int_equal(off, i);
    }
    assert_int_equal(log_partition_offset_for_time(p, 0, &off, &err), 0);
    assert_int_equal(off, 0);
    assert_int_equal(log_partition_offset_for_time(p, 99999999, &off, &err), 0);
    assert_int_equal(off, 200);
    /* Again after a reopen: sealed time indexes and loaded state. */
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
    assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  }
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_time_retention(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  tu_events_t ev = {0};
  log_t *log = tu_open(dir, &ev);
  log_topic_config_t cfg = small_cfg();
  cfg.retention_ms = 60000;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  int64_t now = log_now_ms();
  tu_append_range(p, 0, 100, now - 3600000); /* an hour old */
  tu_append_range(p, 100, 100, now);
  int64_t size = log_partition_size(p);
  log_error_t err = {0};
  assert_int_equal(log_maintain(log, now, &err), 0);
  int64_t start = log_partition_start_offset(p);
  /* Whole old segments went; the one holding both old and new stays. */
  assert_true(start > 0);
  assert_true(start <= 100);
  assert_true(log_partition_size(p) < size);
  assert_non_null(strstr(ev.text, "retention deleted segment"));
  char *first = tu_seg_path(dir, "t", 0, 0, ".log");
  assert_int_equal(tu_file_size(first), -1);
  free(first);
  uint8_t *buf = NULL;
  size_t cap = 0, len;
  assert_int_equal(log_partition_read(p, start - 1, 100, &buf, &cap, &len, &err),
                   LOG_E_OFFSET_OUT_OF_RANGE);
  free(buf);
  assert_int_equal(tu_check_range(log, "t", 0, start, 0), 200 - start);
  /* Nothing more to delete later on, and never the active segment. */
  assert_int_equal(log_maintain(log, now, &err), 0);
  assert_int_equal(log_partition_start_offset(p), start);
  assert_int_equal(log_maintain(log, now + 10 * 3600000LL, &err), 0);
  assert_true(log_partition_end_offset(p) == 200);
  assert_true(log_partition_size(p) > 0);
  int64_t s2 = log_partition_start_offset(p);
  assert_true(s2 > start);
  /* The start offset survives a reopen. */
  assert_int_equal(log_close(log), 0);
  log = tu_open(dir, NULL);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_start_offset(p), s2);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_size_retention(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  cfg.retention_ms = -1;
  cfg.retention_bytes = 3000;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 300, -1);
  assert_true(log_partition_size(p) > 6000);
  log_error_t err = {0};
  assert_int_equal(log_maintain(log, log_now_ms(), &err), 0);
  int64_t size = log_partition_size(p);
  /* At least retention.bytes stay, and less than one more segment. */
  assert_true(size >= 3000);
  assert_true(size < 3000 + 1024 + 200);
  int64_t start = log_partition_start_offset(p);
  assert_true(start > 0);
  assert_int_equal(tu_check_range(log, "t", 0, start, 0), 300 - start);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct {
  log_partition_t *p;
  int n, per;
} writer_arg_t;

static void *writer_main(void *arg) {
  writer_arg_t *w = arg;
  for (int i = 0; i < w->n; i++) {
    log_record_t recs[8];
    char vals[8][32];
    for (int k = 0; k < w->per; k++) {
      snprintf(vals[k], sizeof vals[k], "value-%d", i * w->per + k);
      recs[k] = (log_record_t){.timestamp = -1, .key_len = -1, .value = vals[k],
                               .value_len = (int32_t)strlen(vals[k])};
    }
    if (log_partition_append(w->p, recs, (size_t)w->per, NULL, NULL) != 0)
      return (void *)1;
    if (i % 50 == 0)
      usleep(100);
  }
  return NULL;
}

static void test_wait_woken_by_append(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  assert_int_equal(log_partition_wait(p, 0, 20), LOG_E_TIMED_OUT);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert_true(efd >= 0);
  assert_int_equal(log_partition_watch(p, efd), 0);
  writer_arg_t w = {p, 1, 1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
  assert_int_equal(log_partition_wait(p, 0, 10000), 0);
  assert_true(log_partition_end_offset(p) >= 1);
  void *ret;
  pthread_join(t, &ret);
  assert_null(ret);
  uint64_t v = 0;
  assert_int_equal(read(efd, &v, sizeof v), (ssize_t)sizeof v);
  assert_int_equal(v, 1);
  assert_int_equal(log_partition_unwatch(p, efd), 0);
  assert_int_equal(log_partition_unwatch(p, efd), -ENOENT);
  tu_append_range(p, 1, 1, -1);
  assert_int_equal(read(efd, &v, sizeof v), -1); /* no longer watched */
  close(efd);
  assert_int_equal(log_partition_wait(p, 1, 0), 0); /* already there */
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

static void test_reader_races_writer(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_topic_config_t cfg = small_cfg();
  cfg.segment_bytes = 16384;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  writer_arg_t w = {p, 1500, 5};
  const int64_t total = 1500 * 5;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
  log_reader_t *r;
  log_error_t err = {0};
  assert_int_equal(log_reader_new(log, "t", 0, 0, 700, &r, &err), 0);
  int64_t expect = 0;
  while (expect < total) {
    log_record_t rec;
    int rc = log_reader_next(r, &rec, &err);
    if (rc == 0) {
      rc = log_partition_wait(p, expect, 5000);
      if (rc != 0)
        fail_msg("wait at %" PRId64 ": %d", expect, rc);
      continue;
    }
    if (rc != 1)
      fail_msg("reader at %" PRId64 ": %d %s", expect, rc, err.msg);
    char val[32];
    snprintf(val, sizeof val, "value-%" PRId64, expect);
    assert_int_equal(rec.offset, expect);
    assert_int_equal(rec.value_len, (int32_t)strlen(val));
    assert_memory_equal(rec.value, val, strlen(val));
    expect++;
  }
  void *ret;
  pthread_join(t, &ret);
  assert_null(ret);
  log_reader_free(r);
  assert_int_equal(log_close(log), 0);
  tu_rmrf(dir);
}

/* ---- injected failures -------------------------------------------------- */

static int fail_after_calls;
static ssize_t failing_pwrite(int fd, const void *buf, size_t n, off_t off) {
  if (fail_after_calls-- > 0)
    return pwrite(fd, buf, n, off);
  /* A short write of half, as a full disk gives, then ENOSPC. */
  if (fail_after_calls == -1 && n > 1)
    return pwrite(fd, buf, n / 2, off);
  errno = ENOSPC;
  return -1;
}

static int failing_fdatasync(int fd) {
  (void)fd;
  errno = EIO;
  return -1;
}

static void test_write_error_leaves_partition_consistent(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  tu_events_t ev = {0};
  log_t *log = tu_open(dir, &ev);
  log_topic_config_t cfg = small_cfg();
  cfg.segment_bytes = 1 << 20;
  log_partition_t *p = tu_create(log, "t", 1, &cfg);
  tu_append_range(p, 0, 10, -1);
  char *seg = tu_seg_path(dir, "t", 0, 0, ".log");
  int64_t fsize = tu_file_size(seg);

  fail_after_calls = 0;
  log__pwrite_hook = failing_pwrite;
  log_record_t r = {.timestamp = -1, .key_len = -1, .value = "value-10", .value_len = 8};
  log_error_t err = {0};
  int64_t base = -1;
  int rc = log_partition_append(p, &r, 1, &base, &err);
  log__pwrite_hook = pwrite;
  assert_int_equal(rc, -ENOSPC);
  assert_non_null(strstr(err.msg, "No space"));
  assert_int_equal(base, -1); /* not acknowledged */
  assert_int_equal(log_partition_end_offset(p), 10);
  assert_int_equal(tu_file_size(seg), fsize); /* the half write is gone */

  /* flush=always and a failing fdatasync: not acknowledged either. */
  log_topic_config_t acfg = cfg;
  acfg.flush = LOG_FLUSH_ALWAYS;
  log_partition_t *ap = tu_create(log, "a", 1, &acfg);
  tu_append_range(ap, 0, 3, -1);
  char *aseg = tu_seg_path(dir, "a", 0, 0, ".log");
  int64_t asize = tu_file_size(aseg);
  log__fdatasync_hook = failing_fdatasync;
  rc = log_partition_append(ap, &r, 1, &base, &err);
  log__fdatasync_hook = fdatasync;
  assert_int_equal(rc, -EIO);
  assert_int_equal(log_partition_end_offset(ap), 3);
  assert_int_equal(tu_file_size(aseg), asize);

  /* The partitions go on, and what was kept reads back. */
  assert_int_equal(tu_append_range(p, 10, 5, -1), 10);
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 15);
  assert_int_equal(log_close(log), 0);
  memset(&ev, 0, sizeof ev);
  log = tu_open(dir, &ev);
  assert_int_equal(log_partition_get(log, "t", 0, &p, NULL), 0);
  assert_int_equal(log_partition_end_offset(p), 15);
  assert_null(strstr(ev.text, "recovery truncated"));
  assert_int_equal(tu_check_range(log, "t", 0, 0, 0), 15);
  assert_int_equal(log_close(log), 0);
  free(seg);
  free(aseg);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_across_rolls),
      cmocka_unit_test(test_batches_split_at_max_message_bytes),
      cmocka_unit_test(test_record_too_large),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_offset_for_time),
      cmocka_unit_test(test_time_retention),
      cmocka_unit_test(test_size_retention),
      cmocka_unit_test(test_wait_woken_by_append),
      cmocka_unit_test(test_reader_races_writer),
      cmocka_unit_test(test_write_error_leaves_partition_consistent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
