/*
 * helper_crash_appender.c: the process that test_log_crash.sh SIGKILLs.
 *
 *   helper_crash_appender append DIR [SEED]
 *   helper_crash_appender verify DIR
 *
 * append opens the log in DIR (log.flush=always, so an append returns only
 * after fdatasync), creates topic "crash" with 2 partitions when missing,
 * prints "START <partition> <end offset>" for each partition (the offsets
 * recovery kept), then appends forever: batches of 1..50 records to a
 * random partition, printing "ACK <partition> <base offset> <count>" and
 * flushing stdout after each log_partition_append returns. The ACK is the
 * promise the test holds the log to: after any crash, those offsets exist.
 *
 * Every record's value is a pure function of (partition, offset):
 *
 *   "p<partition>-o<offset>-<16 hex digits of h>-<padding>"
 *
 * where h = mix(partition, offset) and the padding is 0..199 letters also
 * drawn from h. The offset is not known before the append returns, so the
 * appender predicts it (the partition's end offset, which it tracks from
 * the value the log reported at start) and checks that the log assigned
 * exactly that base offset; a mismatch means offsets were not dense and is
 * an error (exit 3). verify reads every partition from offset 0 and
 * compares each value byte for byte with the one its offset implies, so a
 * record that is lost, duplicated, moved, or corrupted is caught.
 *
 * Exit status: 0 ok (verify), 1 a log call failed, 2 usage, 3 a check failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TOPIC "crash"
#define PARTITIONS 2
#define MAX_BATCH 50
#define MAX_VALUE 256

/* splitmix64: a well-mixed, cheap function of its input. */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Writes the value that belongs at (partition, offset) into buf (at least
 * MAX_VALUE bytes) and returns its length. */
static int32_t expected_value(int32_t partition, int64_t offset, char *buf) {
  uint64_t h = mix64((uint64_t)offset * 2654435761u ^ (uint64_t)partition << 56);
  int n = snprintf(buf, MAX_VALUE, "p%" PRId32 "-o%" PRId64 "-%016" PRIx64 "-", partition,
                   offset, h);
  int pad = (int)(h % 200);
  uint64_t s = h;
  for (int i = 0; i < pad && n < MAX_VALUE; i++) {
    s = mix64(s);
    buf[n++] = (char)('a' + s % 26);
  }
  return (int32_t)n;
}

static void on_event(void *opaque, int level, const char *msg) {
  (void)opaque;
  fprintf(stderr, "helper_crash_appender: log event (level %d): %s\n", level, msg);
}

static int open_log(const char *dir, log_t **log) {
  log_options_t opts;
  log_options_defaults(&opts);
  opts.defaults.flush = LOG_FLUSH_ALWAYS;
  opts.on_event = on_event;
  log_error_t err = {0};
  int rc = log_open(dir, &opts, log, &err);
  if (rc != 0) {
    fprintf(stderr, "helper_crash_appender: log_open %s: %s\n", dir,
            err.msg[0] ? err.msg : log_strerror(rc));
    return -1;
  }
  return 0;
}

static int run_append(const char *dir, uint64_t seed) {
  log_t *log;
  if (open_log(dir, &log) != 0) return 1;
  log_error_t err = {0};
  int rc = log_topic_create(log, TOPIC, PARTITIONS, NULL, &err);
  if (rc != 0 && rc != LOG_E_TOPIC_EXISTS) {
    fprintf(stderr, "helper_crash_appender: create %s: %s\n", TOPIC, err.msg);
    return 1;
  }
  log_partition_t *parts[PARTITIONS];
  int64_t next[PARTITIONS];
  for (int32_t p = 0; p < PARTITIONS; p++) {
    if (log_partition_get(log, TOPIC, p, &parts[p], &err) != 0) {
      fprintf(stderr, "helper_crash_appender: %s\n", err.msg);
      return 1;
    }
    next[p] = log_partition_end_offset(parts[p]);
    printf("START %" PRId32 " %" PRId64 "\n", p, next[p]);
  }
  fflush(stdout);

  static char values[MAX_BATCH][MAX_VALUE];
  log_record_t recs[MAX_BATCH];
  uint64_t rng = seed ? seed : 1;
  for (;;) {
    rng = mix64(rng);
    int32_t p = (int32_t)(rng % PARTITIONS);
    size_t n = 1 + (size_t)(rng >> 8) % MAX_BATCH;
    for (size_t i = 0; i < n; i++) {
      memset(&recs[i], 0, sizeof recs[i]);
      recs[i].timestamp = -1;
      recs[i].key = NULL;
      recs[i].key_len = -1;
      recs[i].value = values[i];
      recs[i].value_len = expected_value(p, next[p] + (int64_t)i, values[i]);
    }
    int64_t base = -1;
    rc = log_partition_append(parts[p], recs, n, &base, &err);
    if (rc != 0) {
      fprintf(stderr, "helper_crash_appender: append to %s-%" PRId32 ": %s\n", TOPIC, p,
              err.msg[0] ? err.msg : log_strerror(rc));
      return 1;
    }
    if (base != next[p]) {
      fprintf(stderr,
              "helper_crash_appender: %s-%" PRId32 ": append got base offset %" PRId64
              ", expected %" PRId64 "\n",
              TOPIC, p, base, next[p]);
      return 3;
    }
    next[p] += (int64_t)n;
    printf("ACK %" PRId32 " %" PRId64 " %zu\n", p, base, n);
    fflush(stdout);
  }
}

static int run_verify(const char *dir) {
  log_t *log;
  if (open_log(dir, &log) != 0) return 1;
  log_error_t err = {0};
  int status = 0;
  int nparts = log_topic_partitions(log, TOPIC, &err);
  if (nparts != PARTITIONS) {
    fprintf(stderr, "helper_crash_appender: %s has %d partitions, expected %d (%s)\n", TOPIC,
            nparts, PARTITIONS, err.msg);
    log_close(log);
    return 3;
  }
  char want[MAX_VALUE];
  for (int32_t p = 0; p < PARTITIONS; p++) {
    log_partition_t *part;
    if (log_partition_get(log, TOPIC, p, &part, &err) != 0) {
      fprintf(stderr, "helper_crash_appender: %s\n", err.msg);
      status = 1;
      break;
    }
    int64_t start = log_partition_start_offset(part), end = log_partition_end_offset(part);
    if (start != 0) {
      fprintf(stderr, "helper_crash_appender: %s-%" PRId32 ": start offset %" PRId64
              ", expected 0\n", TOPIC, p, start);
      status = 3;
    }
    log_reader_t *r;
    int rc = log_reader_new(log, TOPIC, p, 0, 0, &r, &err);
    if (rc != 0) {
      fprintf(stderr, "helper_crash_appender: reader %s-%" PRId32 ": %s\n", TOPIC, p, err.msg);
      status = 1;
      break;
    }
    int64_t expect = 0;
    log_record_t rec;
    while ((rc = log_reader_next(r, &rec, &err)) == 1) {
      if (rec.offset != expect) {
        fprintf(stderr, "helper_crash_appender: %s-%" PRId32 ": got offset %" PRId64
                ", expected %" PRId64 " (offsets not dense)\n", TOPIC, p, rec.offset, expect);
        status = 3;
        break;
      }
      int32_t wlen = expected_value(p, rec.offset, want);
      if (rec.value_len != wlen || memcmp(rec.value, want, (size_t)wlen) != 0) {
        fprintf(stderr, "helper_crash_appender: %s-%" PRId32 ": offset %" PRId64
                ": value is \"%.*s\", expected \"%.*s\"\n", TOPIC, p, rec.offset,
                rec.value_len > 0 ? (int)rec.value_len : 0,
                rec.value ? (const char *)rec.value : "", (int)wlen, want);
        status = 3;
        break;
      }
      expect++;
    }
    if (rc < 0) {
      fprintf(stderr, "helper_crash_appender: reading %s-%" PRId32 " at %" PRId64 ": %s\n",
              TOPIC, p, expect, err.msg[0] ? err.msg : log_strerror(rc));
      status = 3;
    } else if (status == 0 && expect != end) {
      fprintf(stderr, "helper_crash_appender: %s-%" PRId32 ": read %" PRId64
              " records, end offset is %" PRId64 "\n", TOPIC, p, expect, end);
      status = 3;
    }
    log_reader_free(r);
    printf("END %" PRId32 " %" PRId64 "\n", p, end);
  }
  int rc = log_close(log);
  if (rc != 0 && status == 0) {
    fprintf(stderr, "helper_crash_appender: log_close: %s\n", log_strerror(rc));
    status = 1;
  }
  if (status == 0) printf("OK\n");
  return status;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "append") == 0) {
    uint64_t seed = argc >= 4 ? strtoull(argv[3], NULL, 10)
                              : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    return run_append(argv[2], seed);
  }
  if (argc == 3 && strcmp(argv[1], "verify") == 0) return run_verify(argv[2]);
  fprintf(stderr, "usage: helper_crash_appender append DIR [SEED] | verify DIR\n");
  return 2;
}
