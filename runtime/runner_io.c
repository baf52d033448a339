/*
 * runner_io.c: the embedded log behind topo_io_t, for tasks on the worker.
 * Appends from several stream threads to one partition are serialized by
 * the log's per-partition append lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runner_int.h"

static int runner_io_partitions(void *opaque, const char *topic) {
  runner_t *r = opaque;
  return log_topic_partitions(r->opts.log, topic, NULL);
}

static int runner_io_create(void *opaque, const char *topic, int32_t partitions, bool compact,
                            char *err, size_t errlen) {
  runner_t *r = opaque;
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  if (compact) cfg.cleanup_policy = LOG_CLEANUP_COMPACT;
  log_error_t e = {0};
  int rc = log_topic_create(r->opts.log, topic, partitions > 0 ? partitions : 1,
                            compact ? &cfg : NULL, &e);
  if (rc == LOG_E_TOPIC_EXISTS) return 0; /* another thread was first */
  if (rc != 0) snprintf(err, errlen, "%s", e.msg[0] ? e.msg : log_strerror(rc));
  return rc;
}

static int runner_io_append(void *opaque, const char *topic, int32_t partition,
                            const log_record_t *recs, size_t n, int64_t *base, char *err,
                            size_t errlen) {
  runner_t *r = opaque;
  log_error_t e = {0};
  log_partition_t *p;
  int64_t b = 0;
  int rc = log_partition_get(r->opts.log, topic, partition, &p, &e);
  if (rc == 0) rc = log_partition_append(p, recs, n, &b, &e);
  if (rc != 0) {
    snprintf(err, errlen, "%s", e.msg[0] ? e.msg : log_strerror(rc));
    return rc;
  }
  if (base) *base = b;
  return 0;
}

static int runner_io_read(void *opaque, const char *topic, int32_t partition, int64_t from,
                          int64_t to, int (*fn)(void *arg, const log_record_t *rec), void *arg,
                          int64_t *end, char *err, size_t errlen) {
  runner_t *r = opaque;
  log_error_t e = {0};
  log_partition_t *p;
  int rc = log_partition_get(r->opts.log, topic, partition, &p, &e);
  if (rc != 0) {
    /* No changelog yet: nothing to restore. */
    *end = from;
    return 0;
  }
  int64_t start = log_partition_start_offset(p), stop = log_partition_end_offset(p);
  if (to >= 0 && to < stop) stop = to;
  if (from < start) from = start;
  if (from >= stop) {
    *end = from;
    return 0;
  }
  log_reader_t *rd;
  rc = log_reader_new(r->opts.log, topic, partition, from, 0, &rd, &e);
  if (rc != 0) {
    snprintf(err, errlen, "%s", e.msg[0] ? e.msg : log_strerror(rc));
    return rc;
  }
  log_record_t rec;
  while (log_reader_position(rd) < stop && (rc = log_reader_next(rd, &rec, &e)) == 1) {
    if (fn(arg, &rec) != 0) {
      rc = -EIO;
      break;
    }
  }
  if (rc < 0) snprintf(err, errlen, "%s", e.msg[0] ? e.msg : log_strerror(rc));
  *end = log_reader_position(rd);
  log_reader_free(rd);
  return rc < 0 ? rc : 0;
}

static void runner_io_compaction_limit(void *opaque, const char *topic, int32_t partition,
                                       int64_t offset) {
  runner_t *r = opaque;
  log_partition_t *p;
  if (log_partition_get(r->opts.log, topic, partition, &p, NULL) == 0)
    log_partition_set_compaction_limit(p, offset);
}

void runner__io_init(runner_t *r, topo_io_t *io) {
  *io = (topo_io_t){.opaque = r, .ordered = false, .partitions = runner_io_partitions,
                    .create_topic = runner_io_create, .append = runner_io_append,
                    .read = runner_io_read, .compaction_limit = runner_io_compaction_limit};
}
