/*
 * log_recovery.c: opening a partition directory after a clean shutdown or
 * a crash, and the recovery-point file that bounds the work.
 *
 * The recovery-point file (DIR/<topic>-<p>/recovery-point) is one line of
 * ASCII, written atomically (temp, fsync, rename, fsync dir):
 *
 *   v1 <segment base> <position> <next offset> <max ts> <max ts offset>\n
 *
 * It says: every batch of every segment before <segment base>, and the
 * batches of segment <segment base> below byte <position>, were fsynced,
 * and the partition's next offset at that position was <next offset> (the
 * segment's max timestamp so far and the offset where it was reached ride
 * along, so the scan can start mid-segment). It is written after the data
 * it describes is fsynced, so after a crash or a power cut it never claims
 * more than is on disk.
 *
 * Recovery (log__recovery_run):
 *   0. finish or discard an interrupted compaction (finish_compaction; the
 *      protocol is at the top of log_cleaner.c): delete every *.cleaned
 *      file; for each <base>.log.swap whose <base>.log exists, delete
 *      <base>.index and <base>.timeindex (they may be the old or the new
 *      ones) and rename the swap over <base>.log, so the indexes are
 *      rebuilt in step 2; a swap without its .log (retention deleted the
 *      segment) is deleted; then fsync the directory;
 *   1. list <20 digits>.log files; delete *.tmp leftovers and index files
 *      whose segment is gone;
 *   2. segments before the recovery point: load their indexes (rebuild
 *      from batch headers when missing or inconsistent); no CRC scan;
 *   3. from the recovery point on: validate every batch (CRC-32C), and
 *      truncate at the first torn or invalid batch; segments after it are
 *      deleted (their offsets would not follow);
 *   4. fsync what was scanned and write a new recovery point.
 * Without a recovery point (never flushed, or the file was lost) step 3
 * starts at the first segment: a full scan, reported as such.
 * So recovery reads what was written since the last flush, not the log:
 * its time does not grow with the size of the log.
 */
#include "log_store_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RP_FILE "recovery-point"

int log__recovery_point_write(log_partition_t *p, const log__recovery_point_t *rp) {
  char line[160];
  int n = snprintf(line, sizeof line,
                   "v1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
                   rp->base, rp->pos, rp->next_offset, rp->max_ts, rp->max_ts_offset);
  return log__write_file_atomic(p->dir, RP_FILE, line, (size_t)n);
}

/* 0 read, 1 missing, 2 malformed. */
static int rp_read(log_partition_t *p, log__recovery_point_t *rp) {
  char path[4096], *text = NULL;
  size_t len;
  snprintf(path, sizeof path, "%s/%s", p->dir, RP_FILE);
  int rc = log__read_file(path, &text, &len);
  if (rc == -ENOENT)
    return 1;
  if (rc < 0)
    return 2;
  char tail = 0;
  int got = sscanf(text, "v1 %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 "%c",
                   &rp->base, &rp->pos, &rp->next_offset, &rp->max_ts, &rp->max_ts_offset,
                   &tail);
  free(text);
  if (got != 6 || tail != '\n' || rp->base < 0 || rp->pos < 0 ||
      rp->next_offset < rp->base)
    return 2;
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static bool is_segment_name(const char *name, const char *ext, int64_t *base) {
  size_t n = strlen(name), e = strlen(ext);
  if (n != 20 + e || strcmp(name + 20, ext) != 0)
    return false;
  int64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (name[i] < '0' || name[i] > '9')
      return false;
    if (v > (INT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (name[i] - '0');
  }
  *base = v;
  return true;
}

/* Step 0: the compaction leftovers. A crash before the commit point (the
 * rename to .log.swap) leaves only *.cleaned files: the original is whole.
 * After it the swap holds the compacted segment: finish the rename. */
static int finish_compaction(log_partition_t *p, log_error_t *err) {
  DIR *d = opendir(p->dir);
  if (!d)
    return log__errf(err, -errno, "%s: %s", p->dir, strerror(errno));
  bool changed = false;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int64_t base;
    if (is_segment_name(de->d_name, ".log.cleaned", &base) ||
        is_segment_name(de->d_name, ".index.cleaned", &base) ||
        is_segment_name(de->d_name, ".timeindex.cleaned", &base)) {
      unlinkat(dirfd(d), de->d_name, 0);
      changed = true;
      continue;
    }
    if (!is_segment_name(de->d_name, ".log.swap", &base))
      continue;
    char name[48];
    struct stat st;
    log__segment_name(name, base);
    strcat(name, ".log");
    changed = true;
    if (fstatat(dirfd(d), name, &st, 0) < 0 && errno == ENOENT) {
      unlinkat(dirfd(d), de->d_name, 0);
      log__event(p->log, 1, "%s: dropped the compacted copy of segment %" PRId64
                 ": the segment was deleted", p->label, base);
      continue;
    }
    log__segment_name(name, base);
    strcat(name, ".index");
    unlinkat(dirfd(d), name, 0);
    log__segment_name(name, base);
    strcat(name, ".timeindex");
    unlinkat(dirfd(d), name, 0);
    log__segment_name(name, base);
    strcat(name, ".log");
    if (renameat(dirfd(d), de->d_name, dirfd(d), name) < 0) {
      int e = errno;
      closedir(d);
      return log__errf(err, -e, "%s/%s: rename: %s", p->dir, de->d_name, strerror(e));
    }
    log__event(p->log, 1, "%s: finished an interrupted compaction of segment %" PRId64,
               p->label, base);
  }
  closedir(d);
  int rc = changed ? log__fsync_dir(p->dir) : 0;
  if (rc < 0)
    return log__errf(err, rc, "%s: fsync: %s", p->dir, strerror(-rc));
  return 0;
}

/* Lists segment base offsets (sorted) and removes leftovers. */
static int list_segments(log_partition_t *p, int64_t **bases, size_t *n, log_error_t *err) {
  DIR *d = opendir(p->dir);
  if (!d)
    return log__errf(err, -errno, "%s: %s", p->dir, strerror(errno));
  size_t cap = 16;
  *n = 0;
  *bases = malloc(cap * sizeof **bases);
  if (!*bases) {
    closedir(d);
    return log__errf(err, -ENOMEM, "out of memory");
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int64_t base;
    size_t len = strlen(de->d_name);
    if (is_segment_name(de->d_name, ".log", &base)) {
      if (*n == cap) {
        int64_t *nb = realloc(*bases, cap * 2 * sizeof **bases);
        if (!nb) {
          closedir(d);
          free(*bases);
          return log__errf(err, -ENOMEM, "out of memory");
        }
        *bases = nb;
        cap *= 2;
      }
      (*bases)[(*n)++] = base;
    } else if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
      /* An atomic write that did not reach its rename: never visible. */
      unlinkat(dirfd(d), de->d_name, 0);
    } else if (is_segment_name(de->d_name, ".index", &base) ||
               is_segment_name(de->d_name, ".timeindex", &base)) {
      char logname[32];
      struct stat st;
      log__segment_name(logname, base);
      strcat(logname, ".log");
      if (fstatat(dirfd(d), logname, &st, 0) < 0 && errno == ENOENT)
        unlinkat(dirfd(d), de->d_name, 0); /* a deletion that was cut short */
    }
    /* Other files (the cleaner's) are not ours to judge. */
  }
  closedir(d);
  qsort(*bases, *n, sizeof **bases, cmp_i64);
  return 0;
}

static int add_segment(log_partition_t *p, log__segment_t *seg) {
  if (p->nsegs == p->cap_segs) {
    size_t ncap = p->cap_segs ? p->cap_segs * 2 : 8;
    log__segment_t **ns = realloc(p->segs, ncap * sizeof *ns);
    if (!ns)
      return -ENOMEM;
    p->segs = ns;
    p->cap_segs = ncap;
  }
  p->segs[p->nsegs++] = seg;
  return 0;
}

int log__recovery_run(log_partition_t *p, log_error_t *err) {
  int64_t *bases = NULL;
  size_t n = 0;
  int rc = finish_compaction(p, err);
  if (rc == 0)
    rc = list_segments(p, &bases, &n, err);
  if (rc < 0)
    return rc;

  log__recovery_point_t rp = {0};
  int rp_state = n == 0 ? 1 : rp_read(p, &rp);
  size_t scan_idx = 0;
  int64_t scan_pos = 0;
  if (rp_state == 2)
    log__event(p->log, 1, "%s: recovery point unreadable: scanning all %zu segments",
               p->label, n);
  else if (rp_state == 1 && n > 0)
    log__event(p->log, 1, "%s: no recovery point: scanning all %zu segments", p->label, n);
  if (rp_state == 0) {
    /* The segment holding the recovery point, or the first after it when
     * retention deleted it (everything after it is unflushed). */
    while (scan_idx < n && bases[scan_idx] < rp.base)
      scan_idx++;
    if (scan_idx < n && bases[scan_idx] == rp.base)
      scan_pos = rp.pos;
    if (scan_idx == n) {
      log__event(p->log, 1,
                 "%s: recovery point names segment %" PRId64 " past the last one: "
                 "scanning the last segment",
                 p->label, rp.base);
      scan_idx = n - 1;
    }
  }

  for (size_t i = 0; i < n && rc == 0; i++) {
    log__segment_t *seg;
    rc = log__segment_open(p->dir, bases[i], false, &seg, err);
    if (rc < 0)
      break;
    if ((rc = add_segment(p, seg)) < 0) {
      log__segment_unref(seg);
      rc = log__errf(err, rc, "out of memory");
      break;
    }
    if (i < scan_idx) {
      bool rebuilt = false;
      rc = log__segment_load(seg, p->cfg.index_interval_bytes, &rebuilt, err);
      if (rc == 0 && rebuilt)
        log__event(p->log, 1, "%s: rebuilt the index of segment %" PRId64 " (%" PRId64
                   " bytes): missing or inconsistent", p->label, seg->base_offset, seg->size);
      continue;
    }
    int64_t from = i == scan_idx ? scan_pos : 0;
    if (from > seg->size) {
      log__event(p->log, 1,
                 "%s: segment %" PRId64 " is %" PRId64 " bytes but %" PRId64
                 " were flushed: scanning it all",
                 p->label, seg->base_offset, seg->size, from);
      from = 0;
    }
    if (from > 0) {
      seg->next_offset = rp.next_offset;
      seg->max_timestamp = rp.max_ts;
      seg->offset_of_max_ts = rp.max_ts_offset;
    }
    int64_t truncated = 0, scanned = 0;
    char reason[600];
    rc = log__segment_recover(seg, from, p->cfg.index_interval_bytes, &truncated, &scanned,
                              reason, sizeof reason, err);
    if (rc < 0)
      break;
    p->recovery_scanned_bytes += scanned;
    if (truncated > 0) {
      p->recovery_truncated_bytes += truncated;
      log__event(p->log, 1,
                 "%s: recovery truncated segment %" PRId64 " at position %" PRId64
                 " (offset %" PRId64 "), %" PRId64 " bytes cut: %s",
                 p->label, seg->base_offset, seg->size, seg->next_offset, truncated, reason);
      /* Later segments cannot follow a hole: delete them, as Kafka does. */
      for (size_t j = i + 1; j < n; j++) {
        char name[32], path[4096];
        log__segment_name(name, bases[j]);
        snprintf(path, sizeof path, "%s/%s", p->dir, name);
        snprintf(path + strlen(path), sizeof path - strlen(path), ".log");
        unlink(path);
        path[strlen(path) - 4] = '\0';
        log__index_unlink(path);
        log__event(p->log, 1, "%s: recovery deleted segment %" PRId64 " after the truncation",
                   p->label, bases[j]);
      }
      n = i + 1;
    }
  }
  free(bases);
  if (rc < 0)
    return rc;

  if (p->nsegs == 0) {
    log__segment_t *seg;
    if ((rc = log__segment_open(p->dir, 0, true, &seg, err)) < 0)
      return rc;
    if ((rc = add_segment(p, seg)) < 0) {
      log__segment_unref(seg);
      return log__errf(err, rc, "out of memory");
    }
    if ((rc = log__index_open(&seg->index, seg->path, 0, err)) < 0)
      return rc;
    (void)log__fsync_dir(p->dir);
  }
  /* A rolled segment keeps its max timestamp in its last time entry. */
  for (size_t i = 0; i + 1 < p->nsegs; i++)
    log__segment_seal(p->segs[i]);
  log__segment_t *active = p->segs[p->nsegs - 1];
  p->start_offset = p->segs[0]->base_offset;
  p->end_offset = active->next_offset;

  /* Make what was scanned durable and say so, so that the next recovery
   * starts here. */
  p->rp_base = active->base_offset;
  p->rp_pos = active->size;
  p->rp_next = active->next_offset;
  p->rp_max_ts = active->max_timestamp;
  p->rp_max_ts_off = active->offset_of_max_ts;
  if (rp_state != 0 || p->recovery_scanned_bytes > 0 || p->recovery_truncated_bytes > 0 ||
      rp.base != p->rp_base || rp.pos != p->rp_pos) {
    for (size_t i = scan_idx < p->nsegs ? scan_idx : 0; i < p->nsegs; i++)
      if ((rc = log__segment_sync(p->segs[i], true)) < 0)
        return log__errf(err, rc, "%s: fsync after recovery: %s", p->label, strerror(-rc));
    log__recovery_point_t now = {p->rp_base, p->rp_pos, p->rp_next, p->rp_max_ts,
                                 p->rp_max_ts_off};
    if ((rc = log__recovery_point_write(p, &now)) < 0)
      return log__errf(err, rc, "%s: writing the recovery point: %s", p->label, strerror(-rc));
  }
  if (p->recovery_scanned_bytes > 0 || p->recovery_truncated_bytes > 0)
    log__event(p->log, 2,
               "%s: recovered: scanned %" PRId64 " bytes, truncated %" PRId64
               ", offsets %" PRId64 "..%" PRId64,
               p->label, p->recovery_scanned_bytes, p->recovery_truncated_bytes,
               p->start_offset, p->end_offset);
  return 0;
}
