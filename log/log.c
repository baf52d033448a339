/*
 * log.c: the log as a whole: open (recovering every partition) and close,
 * options, the background maintenance thread, log_maintain (interval
 * flushes, time/size retention, the compaction hook), and the small file
 * helpers the storage layer shares (atomic writes, directory fsync).
 *
 * Background thread: wakes every MAINTAIN_TICK_MS to run the interval
 * flushes (log.flush.interval.ms is 1000 by default, so a coarser tick
 * would break it) and every retention_check_interval_ms to run the full
 * log_maintain (retention and compaction). log_close wakes it through
 * stop_cond and joins it before anything is freed.
 */
#include "log_store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAINTAIN_TICK_MS 100

int64_t log_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void log_options_defaults(log_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  log_topic_config_defaults(&opts->defaults);
  opts->num_partitions = 1;
  opts->background = true;
  opts->retention_check_interval_ms = 300000;
}

void log__event(log_t *log, int level, const char *fmt, ...) {
  if (!log || !log->opts.on_event)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log->opts.on_event(log->opts.opaque, level, msg);
}

/* ---- file helpers ------------------------------------------------------ */

int log__fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

int log__write_file_atomic(const char *dir, const char *name, const void *data, size_t len) {
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  const uint8_t *p = data;
  size_t done = 0;
  int rc = 0;
  while (done < len) {
    ssize_t w = write(fd, p + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = w < 0 ? -errno : -EIO;
      break;
    }
    done += (size_t)w;
  }
  /* fsync before rename: otherwise a power cut can leave the new name on
   * an empty or partial file. fsync of the dir after: the rename itself. */
  if (rc == 0 && fsync(fd) < 0)
    rc = -errno;
  if (close(fd) < 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = -errno;
  if (rc < 0) {
    unlink(tmp);
    return rc;
  }
  return log__fsync_dir(dir);
}

int log__read_file(const char *path, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t cap = 256, n = 0;
  char *buf = malloc(cap);
  int rc = buf ? 0 : -ENOMEM;
  while (rc == 0) {
    if (n + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        rc = -ENOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      rc = -errno;
    else if (r == 0)
      break;
    else
      n += (size_t)r;
  }
  close(fd);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

int log__remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : -errno;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), de->d_name, 0) < 0 && rc == 0)
      rc = -errno;
  }
  closedir(d);
  if (rmdir(dir) < 0 && rc == 0)
    rc = -errno;
  return rc;
}

/* ---- maintenance ------------------------------------------------------- */

/* Snapshot of every live partition: partitions are freed only at close, so
 * the pointers stay valid after log->mu is dropped. */
static int collect_partitions(log_t *log, log_partition_t ***out, size_t *n) {
  pthread_mutex_lock(&log->mu);
  size_t total = 0;
  for (size_t i = 0; i < log->ntopics; i++)
    total += (size_t)log->topics[i]->nparts;
  log_partition_t **ps = malloc((total ? total : 1) * sizeof *ps);
  if (!ps) {
    pthread_mutex_unlock(&log->mu);
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < log->ntopics; i++)
    for (int32_t j = 0; j < log->topics[i]->nparts; j++)
      ps[k++] = log->topics[i]->parts[j];
  pthread_mutex_unlock(&log->mu);
  *out = ps;
  *n = k;
  return 0;
}

static int maintain(log_t *log, int64_t now_ms, bool full, log_error_t *err) {
  log_partition_t **ps;
  size_t n;
  int rc = collect_partitions(log, &ps, &n);
  if (rc < 0)
    return log__errf(err, rc, "out of memory");
  int first = 0;
  for (size_t i = 0; i < n; i++) {
    log_partition_t *p = ps[i];
    log_error_t perr;
    if (!full) {
      /* Flush only: the retention and cleaner passes are for full runs. */
      if (p->cfg.flush != LOG_FLUSH_NEVER &&
          now_ms - p->last_flush_ms >= p->cfg.flush_interval_ms) {
        p->last_flush_ms = now_ms;
        rc = log_partition_flush(p, &perr);
        if (rc < 0 && rc != LOG_E_UNKNOWN_TOPIC && first == 0)
          first = log__errf(err, rc, "%s", perr.msg);
      }
      continue;
    }
    rc = log__partition_maintain(p, now_ms, &perr);
    if (rc < 0 && first == 0)
      first = log__errf(err, rc, "%s", perr.msg);
    if (p->cfg.cleanup_policy & LOG_CLEANUP_COMPACT) {
      rc = log__cleaner_run(p, now_ms, &perr);
      if (rc < 0 && first == 0)
        first = log__errf(err, rc, "%s", perr.msg);
    }
  }
  free(ps);
  return first;
}

int log_maintain(log_t *log, int64_t now_ms, log_error_t *err) {
  return maintain(log, now_ms, true, err);
}

static void *background_main(void *arg) {
  log_t *log = arg;
  pthread_mutex_lock(&log->mu);
  while (!log->stopping) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += MAINTAIN_TICK_MS * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&log->stop_cond, &log->mu, &deadline);
    if (log->stopping)
      break;
    pthread_mutex_unlock(&log->mu);
    int64_t now = log_now_ms();
    bool full = now - log->last_retention_ms >= log->opts.retention_check_interval_ms;
    if (full)
      log->last_retention_ms = now;
    log_error_t err;
    if (maintain(log, now, full, &err) < 0)
      log__event(log, 0, "maintenance: %s", err.msg);
    pthread_mutex_lock(&log->mu);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

/* ---- open/close -------------------------------------------------------- */

static int mkdir_p(const char *dir) {
  char path[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof path)
    return -ENAMETOOLONG;
  memcpy(path, dir, len + 1);
  for (char *s = path + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
      return -errno;
    *s = '/';
  }
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int log_open(const char *dir, const log_options_t *opts, log_t **out, log_error_t *err) {
  *out = NULL;
  int rc = mkdir_p(dir);
  if (rc < 0)
    return log__errf(err, rc, "%s: mkdir: %s", dir, strerror(-rc));
  log_t *log = calloc(1, sizeof *log);
  if (!log || !(log->dir = strdup(dir))) {
    free(log);
    return log__errf(err, -ENOMEM, "out of memory");
  }
  if (opts)
    log->opts = *opts;
  else
    log_options_defaults(&log->opts);
  if (log->opts.num_partitions < 1)
    log->opts.num_partitions = 1;
  if (log->opts.retention_check_interval_ms <= 0)
    log->opts.retention_check_interval_ms = 300000;
  pthread_mutex_init(&log->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&log->stop_cond, &ca);
  pthread_condattr_destroy(&ca);
  log->last_retention_ms = log_now_ms();

  rc = log__topics_load(log, err);
  if (rc == 0)
    rc = log__groups_open(log, &log->groups, err);
  if (rc == 0 && log->opts.background) {
    if ((rc = pthread_create(&log->thread, NULL, background_main, log)) != 0)
      rc = log__errf(err, -rc, "starting the log's background thread: %s", strerror(rc));
    else
      log->thread_started = true;
  }
  if (rc < 0) {
    log_close(log);
    return rc;
  }
  *out = log;
  return 0;
}

int log_close(log_t *log) {
  if (!log)
    return 0;
  if (log->thread_started) {
    pthread_mutex_lock(&log->mu);
    log->stopping = true;
    pthread_cond_broadcast(&log->stop_cond);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
  }
  int first = 0;
  log__groups_free(log->groups);
  log__topics_close(log, true, &first);
  for (size_t i = 0; i < log->ngrave; i++)
    log__partition_close(log->graveyard[i], false);
  free(log->graveyard);
  pthread_mutex_destroy(&log->mu);
  pthread_cond_destroy(&log->stop_cond);
  free(log->dir);
  free(log);
  return first;
}
