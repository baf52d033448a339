/*
 * log_test_util.h: helpers shared by the storage-layer unit tests
 * (test_log_segment.c, test_log_partition.c, ...). Everything is static
 * inline so each test executable takes what it uses. Include after
 * <cmocka.h>.
 */
#ifndef RUNNEL_LOG_TEST_UTIL_H
#define RUNNEL_LOG_TEST_UTIL_H

#include "log.h"
#include "log_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include "scratch_util.h"
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline char *tu_mkdtemp(void) { return scratch_mkdtemp("runnel-log"); }
static inline void tu_rmrf(char *path) { scratch_rmrf(path); }

/* Events collected from on_event, for assertions on what recovery said. */
typedef struct {
  char text[16384];
  int count;
} tu_events_t;

static inline void tu_on_event(void *opaque, int level, const char *msg) {
  tu_events_t *ev = opaque;
  (void)level;
  if (!ev)
    return;
  size_t len = strlen(ev->text);
  snprintf(ev->text + len, sizeof ev->text - len, "%s\n", msg);
  ev->count++;
}

static inline log_t *tu_open(const char *dir, tu_events_t *ev) {
  log_options_t opts;
  log_options_defaults(&opts);
  opts.background = false;
  opts.on_event = tu_on_event;
  opts.opaque = ev;
  log_t *log = NULL;
  log_error_t err = {0};
  int rc = log_open(dir, &opts, &log, &err);
  if (rc != 0)
    fail_msg("log_open(%s): %d %s", dir, rc, err.msg);
  return log;
}

static inline log_partition_t *tu_create(log_t *log, const char *topic, int32_t parts,
                                         const log_topic_config_t *cfg) {
  log_error_t err = {0};
  int rc = log_topic_create(log, topic, parts, cfg, &err);
  if (rc != 0)
    fail_msg("create %s: %d %s", topic, rc, err.msg);
  log_partition_t *p;
  assert_int_equal(log_partition_get(log, topic, 0, &p, &err), 0);
  return p;
}

/* Appends records "k<i>"/"value-<i>" for i in [from, from + n), one call
 * per record, with timestamp ts (or -1). Returns the first offset. */
static inline int64_t tu_append_range(log_partition_t *p, int from, int n, int64_t ts) {
  int64_t first = -1;
  for (int i = from; i < from + n; i++) {
    char key[32], val[64];
    snprintf(key, sizeof key, "k%d", i);
    snprintf(val, sizeof val, "value-%d", i);
    log_record_t r = {.timestamp = ts, .key = key, .key_len = (int32_t)strlen(key),
                      .value = val, .value_len = (int32_t)strlen(val)};
    int64_t base;
    log_error_t err = {0};
    int rc = log_partition_append(p, &r, 1, &base, &err);
    if (rc != 0)
      fail_msg("append %d: %d %s", i, rc, err.msg);
    if (first < 0)
      first = base;
  }
  return first;
}

/* Reads every record from `from` to the end and checks they are
 * value-<offset + delta>, consecutive. Returns how many were read. */
static inline int64_t tu_check_range(log_t *log, const char *topic, int32_t part, int64_t from,
                                     int64_t delta) {
  log_reader_t *r;
  log_error_t err = {0};
  int rc = log_reader_new(log, topic, part, from, 0, &r, &err);
  if (rc != 0)
    fail_msg("reader: %d %s", rc, err.msg);
  log_record_t rec;
  int64_t n = 0, expect = from;
  while ((rc = log_reader_next(r, &rec, &err)) == 1) {
    char val[64];
    snprintf(val, sizeof val, "value-%" PRId64, rec.offset + delta);
    assert_int_equal(rec.offset, expect);
    assert_int_equal(rec.value_len, (int32_t)strlen(val));
    assert_memory_equal(rec.value, val, strlen(val));
    expect++;
    n++;
  }
  if (rc != 0)
    fail_msg("reader_next: %d %s", rc, err.msg);
  log_reader_free(r);
  return n;
}

static inline char *tu_path(const char *dir, const char *sub) {
  char *p = malloc(strlen(dir) + strlen(sub) + 2);
  assert_non_null(p);
  sprintf(p, "%s/%s", dir, sub);
  return p;
}

static inline int64_t tu_file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0)
    return -1;
  return st.st_size;
}

static inline void tu_truncate(const char *path, int64_t size) {
  assert_int_equal(truncate(path, (off_t)size), 0);
}

static inline void tu_write_at(const char *path, int64_t pos, const void *data, size_t len) {
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, data, len, (off_t)pos), (ssize_t)len);
  close(fd);
}

static inline void tu_flip_byte(const char *path, int64_t pos) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, (off_t)pos), 1);
  b ^= 0xff;
  assert_int_equal(pwrite(fd, &b, 1, (off_t)pos), 1);
  close(fd);
}

/* Copies the regular files of src (one level) into dst (created). */
static inline void tu_copy_dir(const char *src, const char *dst) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -p '%s'/* '%s'/", dst, src, dst);
  assert_int_equal(system(cmd), 0);
}

/* Segment path "DIR/<topic>-<p>/<base 20 digits><ext>". */
static inline char *tu_seg_path(const char *dir, const char *topic, int32_t p, int64_t base,
                                const char *ext) {
  char *s = malloc(strlen(dir) + strlen(topic) + 64);
  assert_non_null(s);
  sprintf(s, "%s/%s-%" PRId32 "/%020" PRId64 "%s", dir, topic, p, base, ext);
  return s;
}

#endif /* RUNNEL_LOG_TEST_UTIL_H */
