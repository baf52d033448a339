/*
 * bench_log.c: throughput and recovery of the embedded log, each beside
 * the physical limit of the same disk and beside Redis Streams.
 *
 *   bench_log --dir DIR [--size-mb N] [--redis SOCKET]
 *
 * DIR is scratch space on the disk to measure (emptied first, left for
 * the caller to delete). N (default 1024, or $BENCH_SIZE_MB) is the size
 * of each log written. SOCKET is the unix socket of a redis-server that
 * tests/bench/run.sh started with AOF on (appendfsync everysec); without
 * it the Redis column says "skipped".
 *
 * What is measured, in this order:
 *   a) append: records of 100 B and of 1 KiB, batches of 100, one writer,
 *      log.flush=interval (1000 ms), until the partition holds N MB; the
 *      time includes the final flush. Beside it: write(2) of the same
 *      number of bytes in chunks of the same size as runnel's batches to a
 *      file in the same directory, fdatasync every 1000 ms and at the end
 *      (the disk's limit for this pattern); and XADD of the same payloads
 *      to Redis, pipelined 100 deep (at most REDIS_MAX_BYTES of
 *      payload, as Redis holds a stream in memory).
 *   b) read: log_reader_next over every record of the 1 KiB log (value
 *      bytes summed, the count checked), beside read(2) of the same
 *      segment files in 1 MiB chunks; cold (page cache dropped) when that
 *      is possible, and warm.
 *   c) recovery: a child appends 1 KiB records (flush=interval) until the
 *      log holds N MB and is SIGKILLed mid-append; the parent times
 *      log_open (page cache warm, as after a process crash). Then a second
 *      child reopens the log, appends for 300 ms, is killed, the page cache
 *      is dropped (as after a power loss) and log_open is timed again.
 * a) and b) run $BENCH_REPS times (default 3), runnel and raw alternating,
 * and report medians with the spread: on a VM the disk drifts.
 *
 * Exit status 0 when everything ran (targets missed or not; a Redis that
 * fails is reported as skipped); 1 when a runnel or raw measurement failed
 * or read back the wrong number of records; 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define BATCH 100
#define MAX_REPS 9
#define REDIS_MAX_BYTES (256ll << 20) /* Redis keeps streams in memory */
#define TARGET_APPEND_RAW 0.5
#define TARGET_APPEND_REDIS 3.0
#define TARGET_READ_RAW 0.7
#define TARGET_RECOVERY_S 1.0

static char payload[4u << 20]; /* random bytes values are cut from */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc, const log_error_t *err) {
  fprintf(stderr, "bench_log: %s: %s\n", what,
          err && err->msg[0] ? err->msg : rc < 0 ? log_strerror(rc) : strerror(errno));
  exit(1);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* The value of record i: size bytes of payload from an offset that varies
 * with i, so consecutive records differ. */
static const void *value_at(uint64_t i, size_t size) {
  return payload + (i * 7919u) % (sizeof payload - size);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  if (remove(path) != 0) fprintf(stderr, "bench_log: remove %s: %s\n", path, strerror(errno));
  return 0;
}

/* rm -rf path (missing is fine). */
static void rm_rf(const char *path) {
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

/* The *.log files of partition dir, sorted by name (= base offset). */
static int segment_files(const char *pdir, char files[][4200], int max) {
  DIR *d = opendir(pdir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < max) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0)
      snprintf(files[n++], 4200, "%s/%s", pdir, e->d_name);
  }
  closedir(d);
  qsort(files, (size_t)n, 4200, cmp_names);
  return n;
}

/* Drops the page cache: all of it when we may (root), else the pages of
 * the given files (posix_fadvise DONTNEED drops clean pages, so fsync
 * first). Returns how, or NULL when the cache could not be dropped. */
static const char *drop_cache(char files[][4200], int n) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd >= 0) {
    ssize_t w = write(fd, "3\n", 2);
    close(fd);
    if (w == 2) return "dropped (drop_caches)";
  }
  int ok = n > 0;
  for (int i = 0; i < n; i++) {
    int f = open(files[i], O_RDONLY);
    if (f < 0 || fdatasync(f) != 0 || posix_fadvise(f, 0, 0, POSIX_FADV_DONTNEED) != 0) ok = 0;
    if (f >= 0) close(f);
  }
  return ok ? "dropped (fadvise)" : NULL;
}

static log_t *open_log(const char *dir, bool background) {
  log_options_t opts;
  log_options_defaults(&opts);
  opts.background = background;
  opts.defaults.flush = LOG_FLUSH_INTERVAL;
  opts.defaults.flush_interval_ms = 1000;
  log_t *log;
  log_error_t err = {0};
  int rc = log_open(dir, &opts, &log, &err);
  if (rc != 0) die("log_open", rc, &err);
  return log;
}

/* Appends batches of BATCH records of `size` bytes to topic-0 until the
 * partition holds `bytes`. Returns the number of records. */
static int64_t append_until(log_partition_t *p, size_t size, int64_t bytes, uint64_t *seq) {
  log_record_t recs[BATCH];
  log_error_t err = {0};
  int64_t n = 0;
  while (log_partition_size(p) < bytes) {
    for (int i = 0; i < BATCH; i++) {
      recs[i] = (log_record_t){.timestamp = -1, .key = NULL, .key_len = -1,
                               .value = value_at((*seq)++, size), .value_len = (int32_t)size};
    }
    int64_t base;
    int rc = log_partition_append(p, recs, BATCH, &base, &err);
    if (rc != 0) die("append", rc, &err);
    n += BATCH;
  }
  return n;
}

typedef struct {
  double secs;
  int64_t records, disk_bytes;
} run_t;

static int cmp_runs(const void *a, const void *b) {
  return cmp_doubles(&((const run_t *)a)->secs, &((const run_t *)b)->secs);
}

static run_t bench_runnel_append(const char *dir, const char *topic, size_t size, int64_t bytes) {
  log_t *log = open_log(dir, true);
  log_error_t err = {0};
  int rc = log_topic_create(log, topic, 1, NULL, &err);
  if (rc != 0) die("topic create", rc, &err);
  log_partition_t *p;
  if ((rc = log_partition_get(log, topic, 0, &p, &err)) != 0) die("partition", rc, &err);
  uint64_t seq = 0;
  double t0 = now_s();
  run_t r = {0};
  r.records = append_until(p, size, bytes, &seq);
  if ((rc = log_partition_flush(p, &err)) != 0) die("flush", rc, &err);
  r.secs = now_s() - t0;
  r.disk_bytes = log_partition_size(p);
  if ((rc = log_close(log)) != 0) die("log_close", rc, NULL);
  return r;
}

/* write(2) of `bytes` in chunks of `chunk`, fdatasync every second and at
 * the end: what the disk gives this write pattern. */
static double bench_raw_write(const char *dir, int64_t bytes, size_t chunk) {
  char path[4200];
  snprintf(path, sizeof path, "%s/raw-write.dat", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die(path, 0, NULL);
  double t0 = now_s(), last_sync = t0;
  int64_t done = 0;
  uint64_t i = 0;
  while (done < bytes) {
    size_t n = chunk;
    if ((int64_t)n > bytes - done) n = (size_t)(bytes - done);
    if (write(fd, payload + (i++ * 4099u) % (sizeof payload - n), n) != (ssize_t)n)
      die("raw write", 0, NULL);
    done += (int64_t)n;
    double t = now_s();
    if (t - last_sync >= 1.0) {
      if (fdatasync(fd) != 0) die("raw fdatasync", 0, NULL);
      last_sync = t;
    }
  }
  if (fdatasync(fd) != 0) die("raw fdatasync", 0, NULL);
  double secs = now_s() - t0;
  close(fd);
  unlink(path);
  return secs;
}

/* ---- Redis: RESP over a unix socket ------------------------------------ */

static int redis_connect(const char *sock) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "bench_log: redis %s: %s\n", sock, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads `want` replies; fails on an error reply. Replies to XADD and DEL
 * are bulk strings or integers. */
static int redis_replies(int fd, int want) {
  static char buf[1 << 16];
  static size_t have = 0, pos = 0;
  int got = 0;
  while (got < want) {
    char *eol = pos < have ? memchr(buf + pos, '\n', have - pos) : NULL;
    if (eol) {
      size_t line = (size_t)(eol - (buf + pos)) + 1;
      char kind = buf[pos];
      if (kind == '-') {
        fprintf(stderr, "bench_log: redis: %.*s\n", (int)line, buf + pos);
        return -1;
      }
      if (kind == '$') {
        long len = strtol(buf + pos + 1, NULL, 10);
        size_t total = line + (len >= 0 ? (size_t)len + 2 : 0);
        if (have - pos >= total) {
          pos += total;
          got++;
          continue;
        }
      } else {
        pos += line;
        got++;
        continue;
      }
    }
    /* need more bytes: compact, then read */
    memmove(buf, buf + pos, have - pos);
    have -= pos;
    pos = 0;
    if (have == sizeof buf) return -1;
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  return 0;
}

/* XADD s * f <value> for `records` values of `size` bytes, pipelined BATCH
 * deep. Returns seconds, or -1. */
static double bench_redis(const char *sock, const char *stream, size_t size, int64_t records) {
  int fd = redis_connect(sock);
  if (fd < 0) return -1;
  size_t cap = BATCH * (size + 128);
  char *cmd = malloc(cap);
  double t0 = now_s();
  uint64_t seq = 0;
  for (int64_t done = 0; done < records; done += BATCH) {
    size_t len = 0;
    for (int i = 0; i < BATCH; i++) {
      len += (size_t)sprintf(cmd + len, "*5\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n$1\r\n*\r\n$1\r\nf\r\n$%zu\r\n",
                             strlen(stream), stream, size);
      memcpy(cmd + len, value_at(seq++, size), size);
      len += size;
      memcpy(cmd + len, "\r\n", 2);
      len += 2;
    }
    if (write_all(fd, cmd, len) != 0 || redis_replies(fd, BATCH) != 0) {
      free(cmd);
      close(fd);
      return -1;
    }
  }
  double secs = now_s() - t0;
  /* Free the server's memory for the next run (not timed). */
  int n = snprintf(cmd, cap, "*2\r\n$3\r\nDEL\r\n$%zu\r\n%s\r\n", strlen(stream), stream);
  if (write_all(fd, cmd, (size_t)n) != 0 || redis_replies(fd, 1) != 0) secs = -1;
  free(cmd);
  close(fd);
  return secs;
}

/* ---- read ---------------------------------------------------------------- */

static double bench_runnel_read(const char *dir, const char *topic, int64_t *records,
                                uint64_t *sum) {
  log_t *log = open_log(dir, false);
  log_reader_t *r;
  log_error_t err = {0};
  int rc = log_reader_new(log, topic, 0, 0, 0, &r, &err);
  if (rc != 0) die("reader", rc, &err);
  log_record_t rec;
  int64_t n = 0;
  uint64_t s = 0;
  double t0 = now_s();
  while ((rc = log_reader_next(r, &rec, &err)) == 1) {
    n++;
    s += (uint64_t)rec.value_len + ((const unsigned char *)rec.value)[rec.value_len / 2];
  }
  double secs = now_s() - t0;
  if (rc < 0) die("reader_next", rc, &err);
  log_reader_free(r);
  log_close(log);
  *records = n;
  *sum = s;
  return secs;
}

static double bench_raw_read(char files[][4200], int n, int64_t *bytes) {
  static char buf[1 << 20];
  *bytes = 0;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    int fd = open(files[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(files[i], 0, NULL);
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) *bytes += r;
    close(fd);
  }
  return now_s() - t0;
}

/* ---- recovery ------------------------------------------------------------ */

static char recovery_events[4096];
static void on_event(void *opaque, int level, const char *msg) {
  (void)opaque;
  (void)level;
  size_t l = strlen(recovery_events);
  snprintf(recovery_events + l, sizeof recovery_events - l, "      %s\n", msg);
}

/* Forks a child that appends 1 KiB records to topic-0 until the partition
 * holds `bytes` and then for `extra_ms` more, and SIGKILLs it then. */
static void append_and_kill(const char *dir, const char *topic, int64_t bytes, int extra_ms) {
  int pfd[2];
  if (pipe(pfd) != 0) die("pipe", 0, NULL);
  pid_t pid = fork();
  if (pid < 0) die("fork", 0, NULL);
  if (pid == 0) {
    close(pfd[0]);
    log_t *log = open_log(dir, true);
    log_error_t err = {0};
    int rc = log_topic_create(log, topic, 1, NULL, &err);
    if (rc != 0 && rc != LOG_E_TOPIC_EXISTS) die("topic create", rc, &err);
    log_partition_t *p;
    if ((rc = log_partition_get(log, topic, 0, &p, &err)) != 0) die("partition", rc, &err);
    uint64_t seq = 0;
    append_until(p, 1024, bytes, &seq);
    if (write(pfd[1], "x", 1) != 1) _exit(1);
    for (;;) append_until(p, 1024, log_partition_size(p) + 1, &seq); /* until killed */
  }
  close(pfd[1]);
  char c;
  if (read(pfd[0], &c, 1) != 1) {
    fprintf(stderr, "bench_log: the appending child failed\n");
    exit(1);
  }
  close(pfd[0]);
  struct timespec ts = {.tv_sec = extra_ms / 1000, .tv_nsec = (long)(extra_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
}

/* Times log_open of dir (recovery included) and returns seconds; *end is
 * the recovered partition's end offset. */
static double time_open(const char *dir, const char *topic, int64_t *end, int64_t *size) {
  log_options_t opts;
  log_options_defaults(&opts);
  opts.background = false;
  opts.on_event = on_event;
  recovery_events[0] = '\0';
  log_t *log;
  log_error_t err = {0};
  double t0 = now_s();
  int rc = log_open(dir, &opts, &log, &err);
  double secs = now_s() - t0;
  if (rc != 0) die("log_open after SIGKILL", rc, &err);
  log_partition_t *p;
  if ((rc = log_partition_get(log, topic, 0, &p, &err)) != 0) die("partition", rc, &err);
  *end = log_partition_end_offset(p);
  *size = log_partition_size(p);
  log_close(log);
  return secs;
}

/* ---- report -------------------------------------------------------------- */

static int targets_met, targets_total;
static const char *verdict(int met) {
  targets_total++;
  targets_met += met;
  return met ? "MET" : "MISSED";
}

static void report_append(const char *title, size_t size, run_t r, double raw_s, double redis_s,
                          int64_t redis_n) {
  double mb = 1e6;
  double rps = (double)r.records / r.secs;
  double payload_mbs = (double)r.records * (double)size / r.secs / mb;
  double disk_mbs = (double)r.disk_bytes / r.secs / mb;
  double raw_mbs = (double)r.disk_bytes / raw_s / mb;
  printf("\n%s: %" PRId64 " records, %.1f MB on disk\n", title, r.records,
         (double)r.disk_bytes / mb);
  printf("  %-40s %12s %10s %10s\n", "", "records/s", "MB/s", "seconds");
  printf("  %-40s %12.0f %10.1f %10.2f   (payload %.1f MB/s)\n", "runnel log_partition_append",
         rps, disk_mbs, r.secs, payload_mbs);
  printf("  %-40s %12s %10.1f %10.2f\n", "raw write(2) + fdatasync/1 s", "-", raw_mbs, raw_s);
  if (redis_s > 0)
    printf("  %-40s %12.0f %10.1f %10.2f   (%" PRId64 " records)\n",
           "redis XADD, pipeline 100, AOF everysec", (double)redis_n / redis_s,
           (double)redis_n * (double)size / redis_s / mb, redis_s, redis_n);
  else
    printf("  %-40s %12s\n", "redis XADD, pipeline 100, AOF everysec", "skipped");
  double ratio_raw = disk_mbs / raw_mbs;
  printf("  ratio runnel/raw (MB/s):        %5.2f   target >= %.1f   %s\n", ratio_raw,
         TARGET_APPEND_RAW, verdict(ratio_raw >= TARGET_APPEND_RAW));
  if (redis_s > 0) {
    double ratio_redis = rps / ((double)redis_n / redis_s);
    printf("  ratio runnel/redis (records/s): %5.2f   target >= %.1f   %s\n", ratio_redis,
           TARGET_APPEND_REDIS, verdict(ratio_redis >= TARGET_APPEND_REDIS));
  } else {
    printf("  ratio runnel/redis (records/s):   n/a   (no redis-server)\n");
  }
}

int main(int argc, char **argv) {
  const char *dir = NULL, *redis = NULL;
  const char *env = getenv("BENCH_SIZE_MB");
  int64_t size_mb = env && *env ? strtoll(env, NULL, 10) : 1024;
  env = getenv("BENCH_REPS");
  int reps = env && *env ? atoi(env) : 3;
  if (reps < 1 || reps > MAX_REPS) reps = 3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--size-mb") && i + 1 < argc) size_mb = strtoll(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--redis") && i + 1 < argc) redis = argv[++i];
    else {
      fprintf(stderr, "usage: bench_log --dir DIR [--size-mb N] [--redis SOCKET]\n");
      return 2;
    }
  }
  if (!dir || size_mb < 1) {
    fprintf(stderr, "usage: bench_log --dir DIR [--size-mb N] [--redis SOCKET]\n");
    return 2;
  }
  int64_t bytes = size_mb << 20;
  for (size_t i = 0; i < sizeof payload; i += 8) {
    uint64_t v = rng();
    memcpy(payload + i, &v, 8);
  }
  char logdir[4200];
  snprintf(logdir, sizeof logdir, "%s/log", dir);
  rm_rf(logdir);
  mkdir(dir, 0755);
  printf("runnel log benchmark: %" PRId64 " MB logs in %s, %ld CPUs; MB = 10^6 bytes\n", size_mb,
         dir, sysconf(_SC_NPROCESSORS_ONLN));

  /* a) append */
  static const struct { size_t size; const char *topic, *title; } sizes[] = {
      {100, "a100", "a) append 100 B records, batches of 100, log.flush=interval 1000 ms"},
      {1024, "a1k", "a) append 1 KiB records, batches of 100, log.flush=interval 1000 ms"},
  };
  int64_t kept_records = 0; /* records of the log b) reads */
  for (size_t k = 0; k < 2; k++) {
    /* Alternate runnel and raw, reps times, and keep the medians: the
     * disk's speed drifts from run to run (page cache, host caching). */
    run_t rr[MAX_REPS];
    double raw[MAX_REPS];
    for (int i = 0; i < reps; i++) {
      rm_rf(logdir); /* the 1 KiB log of the last rep stays for b) */
      rr[i] = bench_runnel_append(logdir, sizes[k].topic, sizes[k].size, bytes);
      kept_records = rr[i].records;
      size_t chunk = (size_t)(rr[i].disk_bytes / (rr[i].records / BATCH));
      raw[i] = bench_raw_write(dir, rr[i].disk_bytes, chunk);
    }
    qsort(rr, (size_t)reps, sizeof rr[0], cmp_runs);
    qsort(raw, (size_t)reps, sizeof raw[0], cmp_doubles);
    run_t r = rr[reps / 2];
    int64_t redis_n = r.records;
    if (redis_n * (int64_t)sizes[k].size > REDIS_MAX_BYTES)
      redis_n = REDIS_MAX_BYTES / (int64_t)sizes[k].size / BATCH * BATCH;
    double redis_s = redis ? bench_redis(redis, sizes[k].topic, sizes[k].size, redis_n) : -1;
    report_append(sizes[k].title, sizes[k].size, r, raw[reps / 2], redis_s, redis_n);
    printf("  (runnel %.2f..%.2f s, raw %.2f..%.2f s over %d runs; medians above)\n",
           rr[0].secs, rr[reps - 1].secs, raw[0], raw[reps - 1], reps);
  }

  /* b) read the 1 KiB log */
  char pdir[4300];
  snprintf(pdir, sizeof pdir, "%s/a1k-0", logdir);
  static char files[64][4200];
  int nfiles = segment_files(pdir, files, 64);
  int64_t records, raw_bytes;
  uint64_t sum;
  const char *cold = NULL;
  double rdc[MAX_REPS], rawc[MAX_REPS], rdw[MAX_REPS], raww[MAX_REPS];
  for (int i = 0; i < reps; i++) {
    cold = drop_cache(files, nfiles);
    rdc[i] = bench_runnel_read(logdir, "a1k", &records, &sum);
    if (cold) drop_cache(files, nfiles);
    rawc[i] = bench_raw_read(files, nfiles, &raw_bytes);
  }
  for (int i = 0; i < reps; i++) {
    rdw[i] = bench_runnel_read(logdir, "a1k", &records, &sum);
    raww[i] = bench_raw_read(files, nfiles, &raw_bytes);
  }
  qsort(rdc, (size_t)reps, sizeof rdc[0], cmp_doubles);
  qsort(rawc, (size_t)reps, sizeof rawc[0], cmp_doubles);
  qsort(rdw, (size_t)reps, sizeof rdw[0], cmp_doubles);
  qsort(raww, (size_t)reps, sizeof raww[0], cmp_doubles);
  if (records != kept_records) {
    fprintf(stderr, "bench_log: read %" PRId64 " records of the 1 KiB log, %" PRId64
            " were appended\n", records, kept_records);
    return 1;
  }
  double rd_cold = rdc[reps / 2], raw_cold = rawc[reps / 2];
  double rd_warm = rdw[reps / 2], raw_warm = raww[reps / 2];
  printf("\nb) read the 1 KiB log from the start: %" PRId64 " records, %.1f MB in %d segment(s)"
         " (value checksum %" PRIu64 ")\n",
         records, (double)raw_bytes / 1e6, nfiles, sum);
  printf("  %-40s %12s %10s %10s\n", "", "records/s", "MB/s", "seconds");
  const char *heads[2] = {cold ? "cold cache" : "cold cache: could not drop the cache", "warm cache"};
  double rds[2] = {rd_cold, rd_warm}, raws[2] = {raw_cold, raw_warm};
  for (int w = 0; w < 2; w++) {
    printf("  %s\n", heads[w]);
    printf("  %-40s %12.0f %10.1f %10.3f\n", "  runnel log_reader_next", (double)records / rds[w],
           (double)raw_bytes / rds[w] / 1e6, rds[w]);
    printf("  %-40s %12s %10.1f %10.3f\n", "  raw read(2), 1 MiB chunks", "-",
           (double)raw_bytes / raws[w] / 1e6, raws[w]);
  }
  double ratio_cold = raw_cold / rd_cold, ratio_warm = raw_warm / rd_warm;
  printf("  ratio runnel/raw (MB/s), %s: %5.2f   target >= %.1f   %s\n",
         cold ? "cold" : "warm", cold ? ratio_cold : ratio_warm, TARGET_READ_RAW,
         verdict((cold ? ratio_cold : ratio_warm) >= TARGET_READ_RAW));
  printf("  ratio runnel/raw (MB/s), warm: %5.2f   (information; cold cache is the target: %s)\n",
         ratio_warm, cold ? cold : "cache could not be dropped");
  printf("  (medians of %d runs; cold runnel %.3f..%.3f s, cold raw %.3f..%.3f s)\n", reps,
         rdc[0], rdc[reps - 1], rawc[0], rawc[reps - 1]);
  rm_rf(logdir);

  /* c) recovery */
  int64_t end, size;
  append_and_kill(logdir, "rec", bytes, 20);
  double rec_warm = time_open(logdir, "rec", &end, &size);
  printf("\nc) recovery: log_open after SIGKILL mid-append (1 KiB records, log.flush=interval)\n");
  printf("  page cache warm (process crash): %.3f s for %.1f MB, end offset %" PRId64 "   "
         "target < %.1f s   %s\n%s",
         rec_warm, (double)size / 1e6, end, TARGET_RECOVERY_S,
         verdict(rec_warm < TARGET_RECOVERY_S), recovery_events);
  append_and_kill(logdir, "rec", bytes, 300);
  char rdir[4300];
  snprintf(rdir, sizeof rdir, "%s/rec-0", logdir);
  nfiles = segment_files(rdir, files, 64);
  cold = drop_cache(files, nfiles);
  double rec_cold = time_open(logdir, "rec", &end, &size);
  printf("  page cache %s: %.3f s for %.1f MB, end offset %" PRId64 "   target < %.1f s   %s\n%s",
         cold ? "cold (power loss)" : "not dropped", rec_cold, (double)size / 1e6, end,
         TARGET_RECOVERY_S, verdict(rec_cold < TARGET_RECOVERY_S), recovery_events);
  rm_rf(logdir);

  printf("\ntargets met: %d of %d\n", targets_met, targets_total);
  return 0;
}
