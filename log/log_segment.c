/*
 * log_segment.c: one segment of a partition: the file <base>.log holding
 * Kafka RecordBatch v2 batches back to back, byte for byte, with its two
 * indexes (log_index.c). <base> is the segment's base offset, the offset of
 * its first record, zero-padded to 20 digits.
 *
 * File layout:
 *   position 0: batch, batch, batch, ...   (see log_int.h for the 61-byte
 *   header; a batch is batchLength + 12 bytes)
 *
 * A batch is valid if and only if (log__batch_validate):
 *   1. its 12-byte prefix is whole and batchLength >= 49 and the batch ends
 *      within the file;
 *   2. magic is 2, the CRC-32C of bytes 21..end matches, the codec is none
 *      and the records are framed as the count says;
 *   3. its baseOffset is >= the previous batch's last offset + 1.
 * Recovery (log__segment_recover) keeps the longest prefix of valid batches
 * from where it starts and truncates the file after it: a torn write at
 * the tail (a crash mid-append) and garbage after the last batch both go.
 *
 * Invariants kept by the writer:
 *   I1. bytes [0, seg->size) of the file are whole, valid batches; bytes
 *       beyond seg->size exist only during an append and are removed if the
 *       append fails (log__segment_write truncates back).
 *   I2. readers read only below the seg->size they saw under the
 *       partition's mu, which the writer raises after the write completes.
 *   I3. index entries point at batch starts below seg->size.
 *
 * Lifetime: a segment is reference-counted. The partition's list holds one
 * reference; a reader takes one under the partition's mu for the duration
 * of its pread, so retention can unlink the files while a read is in
 * flight (the descriptor stays valid until the last unref closes it).
 */
#include "log_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t (*log__pwrite_hook)(int fd, const void *buf, size_t n, off_t off) = pwrite;
int (*log__fdatasync_hook)(int fd) = fdatasync;

int log__pwrite_full(ssize_t (*write_fn)(int, const void *, size_t, off_t), int fd,
                     const void *buf, size_t n, int64_t off) {
  const uint8_t *p = buf;
  while (n > 0) {
    ssize_t w = write_fn(fd, p, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO;
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

void log__segment_name(char *buf, int64_t base_offset) {
  snprintf(buf, 21, "%020" PRId64, base_offset);
}

int log__segment_open(const char *dir, int64_t base_offset, bool create,
                      log__segment_t **out, log_error_t *err) {
  char name[32], path[4096];
  log__segment_name(name, base_offset);
  int n = snprintf(path, sizeof path, "%s/%s.log", dir, name);
  if (n < 0 || (size_t)n >= sizeof path)
    return log__errf(err, -ENAMETOOLONG, "%s: path too long", dir);
  log__segment_t *seg = calloc(1, sizeof *seg);
  if (!seg)
    return log__errf(err, -ENOMEM, "out of memory");
  seg->path = strndup(path, strlen(path) - 4);
  seg->fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
  if (!seg->path || seg->fd < 0) {
    int e = seg->path ? errno : ENOMEM;
    if (seg->fd >= 0)
      close(seg->fd);
    free(seg->path);
    free(seg);
    return log__errf(err, -e, "%s: open: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(seg->fd, &st) < 0) {
    int e = errno;
    close(seg->fd);
    free(seg->path);
    free(seg);
    return log__errf(err, -e, "%s: stat: %s", path, strerror(e));
  }
  seg->base_offset = base_offset;
  seg->size = st.st_size;
  seg->next_offset = base_offset;
  seg->max_timestamp = -1;
  seg->offset_of_max_ts = -1;
  seg->first_timestamp = -1;
  seg->index.fd_off = seg->index.fd_time = -1;
  atomic_init(&seg->refs, 1);
  *out = seg;
  return 0;
}

void log__segment_ref(log__segment_t *seg) {
  atomic_fetch_add(&seg->refs, 1);
}

void log__segment_unref(log__segment_t *seg) {
  if (!seg || atomic_fetch_sub(&seg->refs, 1) != 1)
    return;
  log__index_close(&seg->index);
  close(seg->fd);
  free(seg->path);
  free(seg);
}

void log__segment_unlink(log__segment_t *seg) {
  char path[4096];
  snprintf(path, sizeof path, "%s.log", seg->path);
  unlink(path);
  log__index_unlink(seg->path);
}

int log__segment_pread(log__segment_t *seg, void *buf, size_t len, int64_t pos) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = pread(seg->fd, (uint8_t *)buf + done, len - done, (off_t)(pos + (int64_t)done));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return -EIO; /* shorter than the caller was told it is */
    done += (size_t)r;
  }
  return 0;
}

int log__segment_header(log__segment_t *seg, int64_t pos, int64_t limit,
                        log__batch_header_t *h) {
  uint8_t hdr[LOG__BATCH_HEADER_SIZE];
  if (limit - pos < LOG__BATCH_HEADER_SIZE)
    return LOG_E_CORRUPT;
  int rc = log__segment_pread(seg, hdr, sizeof hdr, pos);
  if (rc < 0)
    return rc;
  if (log__batch_header_parse(hdr, sizeof hdr, h) < 0)
    return LOG_E_CORRUPT;
  if ((int64_t)h->batch_length + LOG__BATCH_LOG_OVERHEAD > limit - pos ||
      h->last_offset_delta < 0)
    return LOG_E_CORRUPT;
  return 0;
}

static void batch_info(const log__batch_header_t *h, log__batch_info_t *b) {
  b->base_offset = h->base_offset;
  b->last_offset = h->base_offset + h->last_offset_delta;
  b->max_timestamp = h->max_timestamp;
  b->size = h->batch_length + LOG__BATCH_LOG_OVERHEAD;
}

void log__segment_commit(log__segment_t *seg, const log__batch_info_t *b,
                         int32_t index_interval) {
  if (seg->size == 0)
    seg->first_timestamp = b->max_timestamp;
  /* Strictly greater: offset_of_max_ts is the first batch that reached the
   * max, which the time index lookup relies on. */
  if (b->max_timestamp > seg->max_timestamp) {
    seg->max_timestamp = b->max_timestamp;
    seg->offset_of_max_ts = b->last_offset;
  }
  /* Kafka's LogSegment.append: index this batch if more than
   * index.interval.bytes went in since the last entry. */
  if (seg->bytes_since_index > index_interval) {
    (void)log__index_add_offset(&seg->index, (uint32_t)(b->last_offset - seg->base_offset),
                                (uint32_t)seg->size);
    (void)log__index_add_time(&seg->index, seg->max_timestamp,
                              (uint32_t)(seg->offset_of_max_ts - seg->base_offset));
    seg->bytes_since_index = 0;
  }
  seg->bytes_since_index += b->size;
  seg->size += b->size;
  seg->next_offset = b->last_offset + 1;
}

void log__segment_seal(log__segment_t *seg) {
  if (seg->max_timestamp >= 0)
    (void)log__index_add_time(&seg->index, seg->max_timestamp,
                              (uint32_t)(seg->offset_of_max_ts - seg->base_offset));
}

/* Re-creates the index entries and the state (next offset, max timestamp)
 * of the whole segment from its batch headers; stops at the first insane
 * header (reads report that batch as corrupt). Sets seg->size back to the
 * file size: the bytes are there whatever they hold. */
static void segment_rebuild(log__segment_t *seg, int64_t file_size, int32_t index_interval) {
  log__batch_header_t h;
  seg->size = 0;
  seg->bytes_since_index = 0;
  seg->max_timestamp = seg->offset_of_max_ts = -1;
  seg->next_offset = seg->base_offset;
  while (seg->size < file_size &&
         log__segment_header(seg, seg->size, file_size, &h) == 0 &&
         h.base_offset >= seg->next_offset) {
    log__batch_info_t b;
    batch_info(&h, &b);
    log__segment_commit(seg, &b, index_interval);
  }
  seg->size = file_size;
}

int log__segment_load(log__segment_t *seg, int32_t index_interval, bool *rebuilt,
                      log_error_t *err) {
  int64_t file_size = seg->size;
  int rc = log__index_open(&seg->index, seg->path, file_size, err);
  if (rc < 0)
    return rc;
  *rebuilt = rc == 1;
  if (*rebuilt) {
    /* Rebuild from the data: headers only (this part was flushed; the CRC
     * of each batch is checked by readers). */
    segment_rebuild(seg, file_size, index_interval);
    return 0;
  }
  /* Consistent index: the state at the last entry, then walk from there
   * (at most about one index interval) to find next offset and max ts. */
  const log__index_t *ix = &seg->index;
  if (ix->n_time > 0) {
    seg->max_timestamp = ix->time[ix->n_time - 1].timestamp;
    seg->offset_of_max_ts = seg->base_offset + ix->time[ix->n_time - 1].rel_offset;
  }
  int64_t from = 0;
  if (ix->n_off > 0) {
    log__batch_header_t h;
    from = ix->off[ix->n_off - 1].position;
    if (log__segment_header(seg, from, file_size, &h) != 0 ||
        h.base_offset + h.last_offset_delta !=
            seg->base_offset + ix->off[ix->n_off - 1].rel_offset) {
      /* The last entry does not point at its batch: rebuild after all. */
      (void)log__index_reset(&seg->index);
      *rebuilt = true;
      segment_rebuild(seg, file_size, index_interval);
      return 0;
    }
  }
  if (file_size > 0) {
    log__batch_header_t h;
    if (log__segment_header(seg, 0, file_size, &h) == 0)
      seg->first_timestamp = h.max_timestamp;
  }
  /* Walk without adding entries: from the last entry's batch. */
  int64_t pos = from;
  log__batch_header_t h;
  while (pos < file_size && log__segment_header(seg, pos, file_size, &h) == 0) {
    if (h.max_timestamp > seg->max_timestamp) {
      seg->max_timestamp = h.max_timestamp;
      seg->offset_of_max_ts = h.base_offset + h.last_offset_delta;
    }
    seg->next_offset = h.base_offset + h.last_offset_delta + 1;
    pos += h.batch_length + LOG__BATCH_LOG_OVERHEAD;
  }
  seg->bytes_since_index = pos - from;
  return 0;
}

int log__segment_recover(log__segment_t *seg, int64_t from, int32_t index_interval,
                         int64_t *truncated, int64_t *scanned, char *reason,
                         size_t reason_cap, log_error_t *err) {
  struct stat st;
  if (fstat(seg->fd, &st) < 0)
    return log__errf(err, -errno, "%s.log: stat: %s", seg->path, strerror(errno));
  int64_t file_size = st.st_size;
  *truncated = *scanned = 0;
  reason[0] = '\0';
  if (from > file_size)
    from = 0; /* flushed bytes are missing: the caller warned; scan it all */
  int rc = log__index_open(&seg->index, seg->path, file_size, err);
  if (rc < 0)
    return rc;
  if (rc == 1 && from > 0) {
    /* The flushed part's index is damaged: rebuild it from its headers
     * (cheap: no CRC), which also recomputes the state at `from`. */
    segment_rebuild(seg, from, index_interval);
  } else if (rc == 0) {
    /* Index entries of the part being scanned are re-created by the scan. */
    rc = log__index_truncate(&seg->index, (uint32_t)from,
                             (uint32_t)(seg->next_offset - seg->base_offset));
    if (rc < 0)
      return log__errf(err, rc, "%s.index: truncate: %s", seg->path, strerror(-rc));
  }
  seg->size = from;
  seg->bytes_since_index = 0;

  uint8_t *buf = NULL;
  size_t cap = 0;
  int64_t pos = from;
  while (pos < file_size) {
    uint8_t pre[LOG__BATCH_LOG_OVERHEAD];
    if (file_size - pos < LOG__BATCH_LOG_OVERHEAD) {
      snprintf(reason, reason_cap, "%" PRId64 " trailing bytes, less than a batch header",
               file_size - pos);
      break;
    }
    if ((rc = log__segment_pread(seg, pre, sizeof pre, pos)) < 0)
      break;
    int32_t blen = (int32_t)log__be32(pre + 8);
    int64_t size = (int64_t)blen + LOG__BATCH_LOG_OVERHEAD;
    if (blen < LOG__BATCH_HEADER_SIZE - LOG__BATCH_LOG_OVERHEAD) {
      snprintf(reason, reason_cap, "impossible batch length %" PRId32, blen);
      break;
    }
    if (size > file_size - pos) {
      snprintf(reason, reason_cap, "torn batch: %" PRId64 " bytes of %" PRId64,
               file_size - pos, size);
      break;
    }
    if ((size_t)size > cap) {
      uint8_t *nb = realloc(buf, (size_t)size);
      if (!nb) {
        rc = -ENOMEM;
        break;
      }
      buf = nb;
      cap = (size_t)size;
    }
    if ((rc = log__segment_pread(seg, buf, (size_t)size, pos)) < 0)
      break;
    *scanned += size;
    log_error_t verr = {0};
    if (log__batch_validate(buf, (size_t)size, &verr) < 0) {
      snprintf(reason, reason_cap, "invalid batch: %s", verr.msg);
      break;
    }
    log__batch_header_t h;
    (void)log__batch_header_parse(buf, (size_t)size, &h);
    if (h.base_offset < seg->next_offset) {
      snprintf(reason, reason_cap, "batch base offset %" PRId64 " below expected %" PRId64,
               h.base_offset, seg->next_offset);
      break;
    }
    log__batch_info_t b;
    batch_info(&h, &b);
    log__segment_commit(seg, &b, index_interval);
    pos += size;
  }
  free(buf);
  if (rc < 0)
    return log__errf(err, rc, "%s.log: read at %" PRId64 ": %s", seg->path, pos,
                     strerror(-rc));
  if (pos < file_size) {
    if (ftruncate(seg->fd, (off_t)pos) < 0)
      return log__errf(err, -errno, "%s.log: truncate: %s", seg->path, strerror(errno));
    *truncated = file_size - pos;
  }
  if (seg->first_timestamp < 0 && seg->size > 0) {
    log__batch_header_t h;
    if (log__segment_header(seg, 0, seg->size, &h) == 0)
      seg->first_timestamp = h.max_timestamp;
  }
  return 0;
}

int log__segment_write(log__segment_t *seg, const uint8_t *data, size_t len,
                       log_error_t *err) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = log__pwrite_hook(seg->fd, data + done, len - done,
                                 (off_t)(seg->size + (int64_t)done));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      /* I1: nothing partial may stay after seg->size. If even the truncate
       * fails, recovery would cut the torn bytes at the next open; the next
       * append overwrites them (it writes at seg->size). */
      (void)ftruncate(seg->fd, (off_t)seg->size);
      return log__errf(err, -e, "%s.log: write of %zu bytes at %" PRId64 ": %s", seg->path,
                       len, seg->size, strerror(e));
    }
    done += (size_t)w;
  }
  return 0;
}

void log__segment_unwrite(log__segment_t *seg) {
  (void)ftruncate(seg->fd, (off_t)seg->size);
}

int log__segment_seek(log__segment_t *seg, int64_t offset, int64_t start_pos,
                      int64_t limit, int64_t *pos, log_error_t *err) {
  int64_t p = start_pos;
  log__batch_header_t h;
  while (p < limit) {
    int rc = log__segment_header(seg, p, limit, &h);
    if (rc < 0)
      return log__errf(err, rc == LOG_E_CORRUPT ? LOG_E_CORRUPT : rc,
                       "%s.log position %" PRId64 ": %s", seg->path, p,
                       rc == LOG_E_CORRUPT ? "corrupt batch header" : strerror(-rc));
    if (h.base_offset + h.last_offset_delta >= offset) {
      *pos = p;
      return 0;
    }
    p += h.batch_length + LOG__BATCH_LOG_OVERHEAD;
  }
  return 1;
}

int log__segment_sync(log__segment_t *seg, bool with_index) {
  if (log__fdatasync_hook(seg->fd) < 0)
    return -errno;
  if (with_index)
    return log__index_sync(&seg->index);
  return 0;
}
