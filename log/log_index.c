/*
 * log_index.c: a segment's sparse offset index and time index, as Kafka's
 * .index and .timeindex files.
 *
 * Offset index (<base>.index), 8-byte entries, big-endian:
 *   0  4  relative offset: last offset of the batch - segment base offset
 *   4  4  position: byte position of that batch in <base>.log
 * An entry is added for a batch when more than index.interval.bytes were
 * appended since the last entry (Kafka's rule, checked before the batch's
 * bytes are counted). Relative offsets and positions strictly increase.
 *
 * Time index (<base>.timeindex), 12-byte entries, big-endian:
 *   0  8  timestamp: the segment's max timestamp so far
 *   8  4  relative offset of the last offset of the batch that first
 *         reached that timestamp
 * Appended with the offset index entries, and when the segment is sealed,
 * only when the timestamp grows. Timestamps strictly increase, offsets do
 * not decrease. Consequence used by lookups: every record at or before the
 * entry's offset has a timestamp <= the entry's timestamp.
 *
 * Neither file is preallocated: the size is entries * entry size. Both are
 * hints: if either is missing, not a whole number of entries, not sorted,
 * or points outside the segment, both are emptied and rebuilt from the
 * segment by the caller (log__segment_load). They are written with the
 * data and fsynced with it; after a crash recovery drops the entries of the
 * unflushed tail and re-creates them from the data.
 *
 * Threads: entries are added by the partition's writer with the
 * partition's mu held; lookups hold the same lock.
 */
#include "log_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int index_open_file(const char *prefix, const char *ext, int *fd, log_error_t *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s%s", prefix, ext);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0)
    return log__errf(err, -errno, "%s: open: %s", path, strerror(errno));
  return 0;
}

/* Reads the whole file fd into a malloc'd buffer; *len its size. */
static int index_slurp(int fd, uint8_t **out, size_t *len) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  *len = (size_t)st.st_size;
  *out = malloc(*len ? *len : 1);
  if (!*out)
    return -ENOMEM;
  size_t done = 0;
  while (done < *len) {
    ssize_t r = pread(fd, *out + done, *len - done, (off_t)done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      free(*out);
      *out = NULL;
      return r < 0 ? -errno : -EIO;
    }
    done += (size_t)r;
  }
  return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 64;
  while (ncap < need)
    ncap *= 2;
  void *n = realloc(*arr, ncap * elem);
  if (!n)
    return -ENOMEM;
  *arr = n;
  *cap = ncap;
  return 0;
}

/* Loads both files; returns 1 when they are inconsistent. */
static int index_load(log__index_t *ix, int64_t seg_size) {
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = index_slurp(ix->fd_off, &data, &len);
  if (rc < 0)
    return rc;
  int bad = len % LOG__OFFSET_ENTRY_SIZE != 0;
  size_t n = len / LOG__OFFSET_ENTRY_SIZE;
  if (!bad && grow((void **)&ix->off, &ix->cap_off, n, sizeof *ix->off) < 0) {
    free(data);
    return -ENOMEM;
  }
  for (size_t i = 0; !bad && i < n; i++) {
    log__offset_entry_t e = {log__be32(data + i * 8), log__be32(data + i * 8 + 4)};
    if ((int64_t)e.position >= seg_size ||
        (i > 0 && (e.rel_offset <= ix->off[i - 1].rel_offset ||
                   e.position <= ix->off[i - 1].position)))
      bad = 1;
    ix->off[i] = e;
  }
  ix->n_off = bad ? 0 : n;
  free(data);
  if (bad)
    return 1;

  rc = index_slurp(ix->fd_time, &data, &len);
  if (rc < 0)
    return rc;
  bad = len % LOG__TIME_ENTRY_SIZE != 0;
  n = len / LOG__TIME_ENTRY_SIZE;
  if (!bad && grow((void **)&ix->time, &ix->cap_time, n, sizeof *ix->time) < 0) {
    free(data);
    return -ENOMEM;
  }
  for (size_t i = 0; !bad && i < n; i++) {
    log__time_entry_t e = {(int64_t)log__be64(data + i * 12), log__be32(data + i * 12 + 8)};
    if (i > 0 && (e.timestamp <= ix->time[i - 1].timestamp ||
                  e.rel_offset < ix->time[i - 1].rel_offset))
      bad = 1;
    ix->time[i] = e;
  }
  ix->n_time = bad ? 0 : n;
  free(data);
  /* An empty segment with entries is inconsistent too. */
  if (!bad && seg_size == 0 && ix->n_time > 0)
    bad = 1;
  return bad;
}

int log__index_open(log__index_t *ix, const char *path_prefix, int64_t seg_size,
                    log_error_t *err) {
  memset(ix, 0, sizeof *ix);
  ix->fd_off = ix->fd_time = -1;
  int rc = index_open_file(path_prefix, ".index", &ix->fd_off, err);
  if (rc == 0)
    rc = index_open_file(path_prefix, ".timeindex", &ix->fd_time, err);
  if (rc < 0) {
    log__index_close(ix);
    return rc;
  }
  rc = index_load(ix, seg_size);
  if (rc < 0) {
    log__index_close(ix);
    return log__errf(err, rc, "%s.index: read: %s", path_prefix, strerror(-rc));
  }
  if (rc == 1) {
    int r2 = log__index_reset(ix);
    if (r2 < 0) {
      log__index_close(ix);
      return log__errf(err, r2, "%s.index: truncate: %s", path_prefix, strerror(-r2));
    }
    return 1;
  }
  /* Empty files for a non-empty segment: missing (or never written because
   * the segment is smaller than one interval). A rebuild is cheap then. */
  return (seg_size > 0 && ix->n_off == 0 && ix->n_time == 0) ? 1 : 0;
}

void log__index_close(log__index_t *ix) {
  if (ix->fd_off >= 0)
    close(ix->fd_off);
  if (ix->fd_time >= 0)
    close(ix->fd_time);
  ix->fd_off = ix->fd_time = -1;
  free(ix->off);
  free(ix->time);
  ix->off = NULL;
  ix->time = NULL;
  ix->n_off = ix->n_time = ix->cap_off = ix->cap_time = 0;
}

/* Index files are written with plain pwrite: injected data-write
 * failures (log__pwrite_hook) are for segment data. */
static int write_all(int fd, const uint8_t *p, size_t n, off_t off) {
  return log__pwrite_full(pwrite, fd, p, n, (int64_t)off);
}

int log__index_add_offset(log__index_t *ix, uint32_t rel_offset, uint32_t position) {
  if (ix->n_off > 0 && (rel_offset <= ix->off[ix->n_off - 1].rel_offset ||
                        position <= ix->off[ix->n_off - 1].position))
    return 0; /* keeps the file sorted whatever the caller does */
  if (grow((void **)&ix->off, &ix->cap_off, ix->n_off + 1, sizeof *ix->off) < 0)
    return -ENOMEM;
  uint8_t e[LOG__OFFSET_ENTRY_SIZE];
  log__put_be32(e, rel_offset);
  log__put_be32(e + 4, position);
  /* An index write failure is not an append failure: the index is a hint
   * that recovery rebuilds. Keep memory and file in step anyway. */
  int rc = write_all(ix->fd_off, e, sizeof e, (off_t)(ix->n_off * sizeof e));
  if (rc < 0)
    return rc;
  ix->off[ix->n_off++] = (log__offset_entry_t){rel_offset, position};
  return 0;
}

int log__index_add_time(log__index_t *ix, int64_t timestamp, uint32_t rel_offset) {
  if (timestamp < 0 ||
      (ix->n_time > 0 && (timestamp <= ix->time[ix->n_time - 1].timestamp ||
                          rel_offset < ix->time[ix->n_time - 1].rel_offset)))
    return 0;
  if (grow((void **)&ix->time, &ix->cap_time, ix->n_time + 1, sizeof *ix->time) < 0)
    return -ENOMEM;
  uint8_t e[LOG__TIME_ENTRY_SIZE];
  log__put_be64(e, (uint64_t)timestamp);
  log__put_be32(e + 8, rel_offset);
  int rc = write_all(ix->fd_time, e, sizeof e, (off_t)(ix->n_time * sizeof e));
  if (rc < 0)
    return rc;
  ix->time[ix->n_time++] = (log__time_entry_t){timestamp, rel_offset};
  return 0;
}

int log__index_truncate(log__index_t *ix, uint32_t position, uint32_t rel_offset_limit) {
  while (ix->n_off > 0 && ix->off[ix->n_off - 1].position >= position)
    ix->n_off--;
  while (ix->n_time > 0 && ix->time[ix->n_time - 1].rel_offset >= rel_offset_limit)
    ix->n_time--;
  if (ftruncate(ix->fd_off, (off_t)(ix->n_off * LOG__OFFSET_ENTRY_SIZE)) < 0 ||
      ftruncate(ix->fd_time, (off_t)(ix->n_time * LOG__TIME_ENTRY_SIZE)) < 0)
    return -errno;
  return 0;
}

int log__index_reset(log__index_t *ix) {
  return log__index_truncate(ix, 0, 0);
}

uint32_t log__index_lookup(const log__index_t *ix, uint32_t rel) {
  /* Largest entry with rel_offset <= rel: every batch before its position
   * ends at or before that entry's offset, so the batch holding rel is at
   * or after it. */
  size_t lo = 0, hi = ix->n_off;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ix->off[mid].rel_offset <= rel)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == 0 ? 0 : ix->off[lo - 1].position;
}

int64_t log__index_time_lookup(const log__index_t *ix, int64_t ts) {
  size_t lo = 0, hi = ix->n_time;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ix->time[mid].timestamp < ts)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == 0 ? -1 : (int64_t)ix->time[lo - 1].rel_offset;
}

int log__index_sync(log__index_t *ix) {
  if (fsync(ix->fd_off) < 0 || fsync(ix->fd_time) < 0)
    return -errno;
  return 0;
}

void log__index_unlink(const char *path_prefix) {
  char path[4096];
  snprintf(path, sizeof path, "%s.index", path_prefix);
  unlink(path);
  snprintf(path, sizeof path, "%s.timeindex", path_prefix);
  unlink(path);
}
