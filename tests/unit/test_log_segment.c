/*
 * test_log_segment.c: one segment file (log/log_segment.c): write, commit,
 * seek, recovery of a torn tail and of garbage, and a failed write leaving
 * nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

/* Encodes one batch of n records at base into buf; returns its size. */
static size_t make_batch(uint8_t *buf, int64_t base, int n) {
  log_record_t recs[8];
  for (int i = 0; i < n; i++)
    recs[i] = (log_record_t){.timestamp = 1000 + base + i, .key_len = -1, .value = "abcdef",
                             .value_len = 6};
  size_t size = log__batch_encoded_size(recs, (size_t)n);
  assert_int_equal(log__batch_encode(buf, base, recs, (size_t)n, NULL, 0), size);
  return size;
}

static void append(log__segment_t *seg, int64_t base, int n) {
  uint8_t buf[1024];
  size_t size = make_batch(buf, base, n);
  log_error_t err = {0};
  assert_int_equal(log__segment_write(seg, buf, size, &err), 0);
  log__batch_info_t b = {base, base + n - 1, 1000 + base + n - 1, (int32_t)size};
  log__segment_commit(seg, &b, 50);
}

static ssize_t enospc_pwrite(int fd, const void *buf, size_t n, off_t off) {
  if (n > 10)
    return pwrite(fd, buf, 10, off); /* part of it goes in */
  errno = ENOSPC;
  return -1;
}

static void test_segment_write_seek_recover(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_error_t err = {0};
  log__segment_t *seg;
  assert_int_equal(log__segment_open(dir, 100, true, &seg, &err), 0);
  assert_int_equal(log__segment_open(dir, 100, true, &seg, &err), -EEXIST);
  assert_int_equal(log__index_open(&seg->index, seg->path, 0, &err), 0);
  for (int i = 0; i < 20; i++)
    append(seg, 100 + i * 2, 2);
  assert_int_equal(seg->next_offset, 140);
  assert_int_equal(seg->max_timestamp, 1139);
  assert_true(seg->index.n_off > 3);
  int64_t size = seg->size;

  int64_t pos = -1;
  assert_int_equal(log__segment_seek(seg, 100, 0, size, &pos, &err), 0);
  assert_int_equal(pos, 0);
  assert_int_equal(log__segment_seek(seg, 140, 0, size, &pos, &err), 1);
  uint32_t start = log__index_lookup(&seg->index, 127 - 100);
  assert_int_equal(log__segment_seek(seg, 127, start, size, &pos, &err), 0);
  log__batch_header_t h;
  assert_int_equal(log__segment_header(seg, pos, size, &h), 0);
  assert_int_equal(h.base_offset, 126);

  /* A failed write: short, then ENOSPC. Nothing stays. */
  log__pwrite_hook = enospc_pwrite;
  uint8_t buf[1024];
  size_t bsize = make_batch(buf, 140, 3);
  assert_int_equal(log__segment_write(seg, buf, bsize, &err), -ENOSPC);
  log__pwrite_hook = pwrite;
  char *path = tu_path(dir, "00000000000000000100.log");
  assert_int_equal(tu_file_size(path), size);

  /* Torn tail plus garbage: recovery from the middle keeps whole batches. */
  assert_int_equal(pwrite(seg->fd, buf, bsize / 2, size), (ssize_t)(bsize / 2));
  int64_t mid_pos;
  assert_int_equal(log__segment_seek(seg, 120, 0, size, &mid_pos, &err), 0);
  log__segment_unref(seg);

  assert_int_equal(log__segment_open(dir, 100, false, &seg, &err), 0);
  seg->next_offset = 120;
  seg->max_timestamp = 1119;
  seg->offset_of_max_ts = 119;
  int64_t truncated, scanned;
  char reason[600];
  assert_int_equal(log__segment_recover(seg, mid_pos, 50, &truncated, &scanned, reason,
                                        sizeof reason, &err), 0);
  assert_int_equal(truncated, (int64_t)(bsize / 2));
  assert_int_equal(scanned, size - mid_pos);
  assert_non_null(strstr(reason, "torn batch"));
  assert_int_equal(seg->size, size);
  assert_int_equal(seg->next_offset, 140);
  assert_int_equal(seg->max_timestamp, 1139);
  assert_int_equal(tu_file_size(path), size);
  log__segment_unref(seg);

  /* Loading without a scan gives the same state from the index. */
  assert_int_equal(log__segment_open(dir, 100, false, &seg, &err), 0);
  bool rebuilt = true;
  assert_int_equal(log__segment_load(seg, 50, &rebuilt, &err), 0);
  assert_false(rebuilt);
  assert_int_equal(seg->next_offset, 140);
  assert_int_equal(seg->max_timestamp, 1139);
  log__segment_unref(seg);
  free(path);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_segment_write_seek_recover),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
