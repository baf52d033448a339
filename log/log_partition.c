/*
 * log_partition.c: one partition: its list of segments, appends (with
 * segment rolls), reads, offset-for-time, flushes, time/size retention,
 * and the wait/watch notifications. Opening and recovery are in
 * log_recovery.c.
 *
 * Threads and locks (see log_store_int.h for the order):
 *   - append_mu: one appender at a time. The appender encodes into p->buf,
 *     writes the bytes at the active segment's end WITHOUT holding mu, then
 *     takes mu to publish them (index entries, segment size, end offset).
 *   - mu: the segment list, offsets, index arrays, watchers. Readers take
 *     it to find their segment, its visible size and an index position,
 *     take a reference on the segment, and read with pread after dropping
 *     it. A reader therefore sees only whole batches below the end offset
 *     (the high watermark), and retention can drop a segment it reads.
 *   - flush_mu: one flusher at a time (fsync, then the recovery point).
 *
 * Invariants:
 *   P1. segs[] is sorted by base offset, holds at least one segment, and
 *       the last one is the active segment (the only one appended to).
 *   P2. start_offset == segs[0]->base_offset; end_offset ==
 *       active->next_offset: the offset the next append gets.
 *   P3. an append is acknowledged (returns 0) only after all its bytes are
 *       written and, with log.flush=always, fdatasync'd. A failed append
 *       leaves the file as it was before it (see log__segment_write).
 */
#include "log_store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void cfg_fixup(log_topic_config_t *cfg) {
  if (cfg->index_interval_bytes < 0)
    cfg->index_interval_bytes = 0;
}

int log__partition_open(log_t *log, const char *topic, int32_t id,
                        const log_topic_config_t *cfg, bool create,
                        log_partition_t **out, log_error_t *err) {
  log_partition_t *p = calloc(1, sizeof *p);
  if (!p)
    return log__errf(err, -ENOMEM, "out of memory");
  p->log = log;
  p->id = id;
  p->cfg = *cfg;
  cfg_fixup(&p->cfg);
  p->topic = strdup(topic);
  snprintf(p->label, sizeof p->label, "%s-%" PRId32, topic, id);
  size_t dlen = strlen(log->dir) + strlen(p->label) + 2;
  p->dir = malloc(dlen);
  if (!p->topic || !p->dir) {
    free(p->topic);
    free(p->dir);
    free(p);
    return log__errf(err, -ENOMEM, "out of memory");
  }
  snprintf(p->dir, dlen, "%s/%s", log->dir, p->label);
  pthread_mutex_init(&p->append_mu, NULL);
  pthread_mutex_init(&p->flush_mu, NULL);
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cond, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&p->dirty, false);
  p->last_flush_ms = log_now_ms();
  p->compact_limit = INT64_MAX;

  int rc = 0;
  if (create && mkdir(p->dir, 0755) < 0 && errno != EEXIST)
    rc = log__errf(err, -errno, "%s: mkdir: %s", p->dir, strerror(errno));
  if (rc == 0 && create)
    rc = log__fsync_dir(log->dir);
  if (rc == 0)
    rc = log__recovery_run(p, err);
  if (rc < 0) {
    log__partition_close(p, false);
    return rc;
  }
  *out = p;
  return 0;
}

/* Detaches every segment and marks p closed; caller holds append_mu. */
static void partition_release(log_partition_t *p) {
  pthread_mutex_lock(&p->mu);
  log__segment_t **segs = p->segs;
  size_t n = p->nsegs;
  p->segs = NULL;
  p->nsegs = p->cap_segs = 0;
  p->closed = true;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < n; i++)
    log__segment_unref(segs[i]);
  free(segs);
}

void log__partition_kill(log_partition_t *p) {
  pthread_mutex_lock(&p->append_mu);
  partition_release(p);
  pthread_mutex_unlock(&p->append_mu);
}

static int partition_flush(log_partition_t *p, log_error_t *err);

int log__partition_close(log_partition_t *p, bool flush) {
  int rc = 0;
  if (flush && !p->closed)
    rc = partition_flush(p, NULL);
  log__partition_kill(p);
  pthread_mutex_destroy(&p->append_mu);
  pthread_mutex_destroy(&p->flush_mu);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cond);
  free(p->watch_fds);
  free(p->buf);
  free(p->dir);
  free(p->topic);
  free(p);
  return rc;
}

static int closed_err(log_partition_t *p, log_error_t *err) {
  return log__errf(err, LOG_E_UNKNOWN_TOPIC, "%s: partition was deleted or the log closed",
                   p->label);
}

/* ---- append ---------------------------------------------------------- */

/* Upper bound of what a record adds to a batch when it is not the first:
 * its size as a one-record batch minus the header, plus the growth of its
 * offset delta (varint 1 -> 5 bytes), timestamp delta (varlong 1 -> 10) and
 * length prefix (+2). */
#define RECORD_DELTA_SLACK 15

static int grow_buf(log_partition_t *p, size_t need) {
  if (need <= p->buf_cap)
    return 0;
  size_t ncap = p->buf_cap ? p->buf_cap : 4096;
  while (ncap < need)
    ncap *= 2;
  uint8_t *nb = realloc(p->buf, ncap);
  if (!nb)
    return -ENOMEM;
  p->buf = nb;
  p->buf_cap = ncap;
  return 0;
}

/* Creates a new active segment at base; caller holds append_mu. */
static int partition_roll(log_partition_t *p, int64_t base, log_error_t *err) {
  log__segment_t *seg;
  int rc = log__segment_open(p->dir, base, true, &seg, err);
  if (rc < 0)
    return rc;
  if ((rc = log__index_open(&seg->index, seg->path, 0, err)) < 0) {
    log__segment_unlink(seg);
    log__segment_unref(seg);
    return rc;
  }
  pthread_mutex_lock(&p->mu);
  if (p->nsegs == p->cap_segs) {
    size_t ncap = p->cap_segs ? p->cap_segs * 2 : 8;
    log__segment_t **ns = realloc(p->segs, ncap * sizeof *ns);
    if (!ns) {
      pthread_mutex_unlock(&p->mu);
      log__segment_unlink(seg);
      log__segment_unref(seg);
      return log__errf(err, -ENOMEM, "out of memory");
    }
    p->segs = ns;
    p->cap_segs = ncap;
  }
  log__segment_seal(p->segs[p->nsegs - 1]);
  p->segs[p->nsegs++] = seg;
  pthread_mutex_unlock(&p->mu);
  /* The new file's name must survive a power cut before data in it is
   * acknowledged as flushed; the interval flush fsyncs the directory too,
   * but one fsync per roll is cheap. */
  (void)log__fsync_dir(p->dir);
  return 0;
}

static void notify_watchers(log_partition_t *p) {
  uint64_t one = 1;
  for (size_t i = 0; i < p->nwatch; i++) {
    ssize_t w = write(p->watch_fds[i], &one, sizeof one);
    (void)w; /* EAGAIN: the counter or pipe is already signalled */
  }
}

int log_partition_append(log_partition_t *p, const log_record_t *recs, size_t n,
                         int64_t *base_offset, log_error_t *err) {
  if (n == 0) {
    if (base_offset)
      *base_offset = log_partition_end_offset(p);
    return 0;
  }
  const int64_t max_batch = p->cfg.max_message_bytes;
  int64_t now = log_now_ms();

  /* Validation, all before anything is written. */
  int64_t max_ts = -1;
  for (size_t i = 0; i < n; i++) {
    const log_record_t *r = &recs[i];
    bool bad = (r->key_len > 0 && !r->key) || (r->value_len > 0 && !r->value) ||
               (r->header_count > 0 && !r->headers);
    for (int32_t k = 0; !bad && r->headers && k < r->header_count; k++)
      bad = (r->headers[k].key_len > 0 && !r->headers[k].key) ||
            (r->headers[k].value_len > 0 && !r->headers[k].value);
    if (bad)
      return log__errf(err, -EINVAL, "%s: record %zu of %zu: a NULL pointer with a length > 0",
                       p->label, i, n);
    int64_t ts = r->timestamp == -1 ? now : r->timestamp;
    if (ts > max_ts)
      max_ts = ts;
  }

  pthread_mutex_lock(&p->append_mu);
  pthread_mutex_lock(&p->mu);
  bool closed = p->closed;
  int64_t base = p->end_offset;
  log__segment_t *seg = closed ? NULL : p->segs[p->nsegs - 1];
  pthread_mutex_unlock(&p->mu);
  if (closed) {
    pthread_mutex_unlock(&p->append_mu);
    return closed_err(p, err);
  }

  /* Encode every batch back to back into the reusable buffer; a batch ends
   * where the next record might push it past max.message.bytes. The buffer
   * is grown to that bound, so each record is sized once here and once by
   * the encoder (this is on every append's path). Nothing is written
   * before all are encoded, so a record too large fails the whole append. */
  size_t total = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0;) {
    size_t j = i + 1;
    int64_t bound = (int64_t)log__batch_encoded_size(&recs[i], 1);
    if (bound > max_batch) {
      rc = log__errf(err, LOG_E_RECORD_TOO_LARGE,
                     "%s: record %zu of %zu is %" PRId64 " bytes as a batch, "
                     "max.message.bytes is %" PRId64,
                     p->label, i, n, bound, max_batch);
      break;
    }
    while (j < n) {
      int64_t add = (int64_t)log__batch_encoded_size(&recs[j], 1) - LOG__BATCH_HEADER_SIZE +
                    RECORD_DELTA_SLACK;
      if (bound + add > max_batch)
        break;
      bound += add;
      j++;
    }
    if ((rc = grow_buf(p, total + (size_t)bound)) < 0)
      break;
    size_t w = log__batch_encode(p->buf + total, base + (int64_t)i, &recs[i], j - i, NULL, now);
    if ((int64_t)w > bound) { /* cannot happen: bound is an upper bound */
      rc = log__errf(err, -EINVAL, "%s: encoder wrote %zu bytes, over its bound %" PRId64,
                     p->label, w, bound);
      break;
    }
    total += w;
    i = j;
  }
  if (rc == -ENOMEM)
    rc = log__errf(err, rc, "%s: out of memory for a %zu-record append", p->label, n);
  if (rc < 0)
    goto out;

  /* Roll before the append when it would not fit (or is too old, or its
   * relative offsets would not fit the index). All batches of one append go
   * to one segment, as Kafka does with a produce request, so one write
   * covers them and a failure is undone in one truncate. */
  if (seg->size > 0 &&
      (seg->size + (int64_t)total > p->cfg.segment_bytes ||
       (seg->first_timestamp >= 0 && max_ts - seg->first_timestamp > p->cfg.segment_ms) ||
       base + (int64_t)n - seg->base_offset > (int64_t)INT32_MAX)) {
    if ((rc = partition_roll(p, base, err)) < 0)
      goto out;
    pthread_mutex_lock(&p->mu);
    seg = p->segs[p->nsegs - 1];
    pthread_mutex_unlock(&p->mu);
  }

  if ((rc = log__segment_write(seg, p->buf, total, err)) < 0) {
    log__event(p->log, 0, "%s: append failed: %s", p->label, err ? err->msg : "");
    goto out;
  }
  if (p->cfg.flush == LOG_FLUSH_ALWAYS) {
    if (log__fdatasync_hook(seg->fd) < 0) {
      int e = errno;
      /* After a failed fdatasync the page cache may not reach the disk
       * (and a retry may falsely succeed): do not acknowledge, undo. */
      log__segment_unwrite(seg);
      rc = log__errf(err, -e, "%s: fdatasync: %s", p->label, strerror(e));
      log__event(p->log, 0, "%s", err ? err->msg : "fdatasync failed");
      goto out;
    }
  } else {
    atomic_store(&p->dirty, true);
  }

  /* Publish: index entries, sizes, the high watermark. */
  pthread_mutex_lock(&p->mu);
  for (size_t off = 0; off < total;) {
    log__batch_header_t h;
    (void)log__batch_header_parse(p->buf + off, total - off, &h);
    log__batch_info_t b = {h.base_offset, h.base_offset + h.last_offset_delta,
                           h.max_timestamp, h.batch_length + LOG__BATCH_LOG_OVERHEAD};
    log__segment_commit(seg, &b, p->cfg.index_interval_bytes);
    off += (size_t)b.size;
  }
  p->end_offset = base + (int64_t)n;
  pthread_cond_broadcast(&p->cond);
  notify_watchers(p);
  pthread_mutex_unlock(&p->mu);
  if (base_offset)
    *base_offset = base;
out:
  pthread_mutex_unlock(&p->append_mu);
  return rc;
}

/* ---- offsets and sizes ------------------------------------------------ */

int64_t log_partition_start_offset(log_partition_t *p) {
  pthread_mutex_lock(&p->mu);
  int64_t v = p->start_offset;
  pthread_mutex_unlock(&p->mu);
  return v;
}

int64_t log_partition_end_offset(log_partition_t *p) {
  pthread_mutex_lock(&p->mu);
  int64_t v = p->end_offset;
  pthread_mutex_unlock(&p->mu);
  return v;
}

int64_t log_partition_size(log_partition_t *p) {
  int64_t total = 0;
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->nsegs; i++)
    total += p->segs[i]->size;
  pthread_mutex_unlock(&p->mu);
  return total;
}

/* Index of the last segment whose base <= offset (0 if none); mu held. */
static size_t find_segment(const log_partition_t *p, int64_t offset) {
  size_t lo = 0, hi = p->nsegs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->segs[mid]->base_offset <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == 0 ? 0 : lo - 1;
}

/* Index of the first segment whose base > base (nsegs if none); mu held. */
static size_t segment_after(const log_partition_t *p, int64_t base) {
  size_t i = find_segment(p, base);
  while (i < p->nsegs && p->segs[i]->base_offset <= base)
    i++;
  return i;
}

/* ---- reads ------------------------------------------------------------- */

int log_partition_read(log_partition_t *p, int64_t offset, size_t max_bytes,
                       uint8_t **buf, size_t *cap, size_t *len, log_error_t *err) {
  *len = 0;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return closed_err(p, err);
  }
  if (offset < p->start_offset || offset > p->end_offset) {
    int64_t s = p->start_offset, e = p->end_offset;
    pthread_mutex_unlock(&p->mu);
    return log__errf(err, LOG_E_OFFSET_OUT_OF_RANGE,
                     "%s: offset %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                     p->label, offset, s, e);
  }
  size_t i = find_segment(p, offset);
  for (;;) {
    if (offset >= p->end_offset || i >= p->nsegs) {
      pthread_mutex_unlock(&p->mu);
      return 0;
    }
    log__segment_t *seg = p->segs[i];
    log__segment_ref(seg);
    int64_t limit = seg->size;
    int64_t start_pos = offset > seg->base_offset
                            ? log__index_lookup(&seg->index, (uint32_t)(offset - seg->base_offset))
                            : 0;
    pthread_mutex_unlock(&p->mu);

    int64_t pos;
    log_error_t serr = {0};
    int rc = log__segment_seek(seg, offset, start_pos, limit, &pos, &serr);
    if (rc == 1) {
      /* Not in this segment (compaction can empty a segment's tail). */
      pthread_mutex_lock(&p->mu);
      i = segment_after(p, seg->base_offset);
      log__segment_unref(seg);
      continue;
    }
    log__batch_header_t h;
    if (rc == 0)
      rc = log__segment_header(seg, pos, limit, &h);
    if (rc < 0) {
      log__segment_unref(seg);
      return log__errf(err, rc, "%s: offset %" PRId64 ": %s", p->label, offset,
                       rc == LOG_E_CORRUPT && serr.msg[0] ? serr.msg : log_strerror(rc));
    }
    size_t first = (size_t)h.batch_length + LOG__BATCH_LOG_OVERHEAD;
    size_t want = (size_t)(limit - pos);
    if (want > max_bytes)
      want = max_bytes;
    if (want < first)
      want = first;
    if (want > *cap) {
      uint8_t *nb = realloc(*buf, want);
      if (!nb) {
        log__segment_unref(seg);
        return log__errf(err, -ENOMEM, "%s: out of memory for a %zu-byte read", p->label, want);
      }
      *buf = nb;
      *cap = want;
    }
    rc = log__segment_pread(seg, *buf, want, pos);
    log__segment_unref(seg);
    if (rc < 0)
      return log__errf(err, rc, "%s: offset %" PRId64 ": read: %s", p->label, offset,
                       strerror(-rc));
    /* Whole batches only: cut after the last batch that fits. A batch with
     * an insane length ends the read; the next read reports it. */
    size_t got = first;
    while (got + LOG__BATCH_LOG_OVERHEAD <= want) {
      int32_t blen = (int32_t)log__be32(*buf + got + 8);
      if (blen < LOG__BATCH_HEADER_SIZE - LOG__BATCH_LOG_OVERHEAD ||
          (size_t)blen + LOG__BATCH_LOG_OVERHEAD > want - got)
        break;
      got += (size_t)blen + LOG__BATCH_LOG_OVERHEAD;
    }
    *len = got;
    return 0;
  }
}

/* First record with timestamp >= ts in the batch at pos; 1 when none. */
static int batch_find_time(log__segment_t *seg, int64_t pos, size_t size, int64_t ts,
                           int64_t *offset, uint8_t **buf, size_t *cap) {
  if (size > *cap) {
    uint8_t *nb = realloc(*buf, size);
    if (!nb)
      return -ENOMEM;
    *buf = nb;
    *cap = size;
  }
  int rc = log__segment_pread(seg, *buf, size, pos);
  if (rc < 0)
    return rc;
  if (log__batch_validate(*buf, size, NULL) < 0)
    return LOG_E_CORRUPT;
  log__record_iter_t it;
  if (log__record_iter_init(&it, *buf, size) < 0)
    return LOG_E_CORRUPT;
  log_record_t rec;
  int found = 1;
  while ((rc = log__record_iter_next(&it, &rec)) == 1) {
    if (rec.timestamp >= ts) {
      *offset = rec.offset;
      found = 0;
      break;
    }
  }
  log__record_iter_close(&it);
  return rc < 0 ? LOG_E_CORRUPT : found;
}

int log_partition_offset_for_time(log_partition_t *p, int64_t ts, int64_t *offset,
                                  log_error_t *err) {
  uint8_t *buf = NULL;
  size_t cap = 0;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return closed_err(p, err);
  }
  size_t i = 0;
  for (;;) {
    /* The first segment that has a timestamp >= ts (the active one's max
     * is exact; a rolled one's is in its sealed time index). */
    while (i < p->nsegs && p->segs[i]->max_timestamp < ts)
      i++;
    if (i >= p->nsegs) {
      *offset = p->end_offset;
      pthread_mutex_unlock(&p->mu);
      free(buf);
      return 0;
    }
    log__segment_t *seg = p->segs[i];
    log__segment_ref(seg);
    int64_t limit = seg->size;
    int64_t rel = log__index_time_lookup(&seg->index, ts);
    int64_t pos = rel < 0 ? 0 : log__index_lookup(&seg->index, (uint32_t)rel);
    pthread_mutex_unlock(&p->mu);

    int rc = 1;
    log__batch_header_t h;
    while (pos < limit) {
      if ((rc = log__segment_header(seg, pos, limit, &h)) < 0)
        break;
      size_t size = (size_t)h.batch_length + LOG__BATCH_LOG_OVERHEAD;
      if (h.max_timestamp >= ts &&
          (rc = batch_find_time(seg, pos, size, ts, offset, &buf, &cap)) <= 0)
        break;
      rc = 1;
      pos += (int64_t)size;
    }
    if (rc <= 0) {
      log__segment_unref(seg);
      free(buf);
      if (rc < 0)
        return log__errf(err, rc, "%s: offset for time %" PRId64 ": %s at segment %" PRId64
                         " position %" PRId64, p->label, ts, log_strerror(rc),
                         seg->base_offset, pos);
      return 0;
    }
    pthread_mutex_lock(&p->mu);
    i = segment_after(p, seg->base_offset);
    log__segment_unref(seg);
  }
}

/* ---- flush, recovery point, maintenance -------------------------------- */

static int partition_flush(log_partition_t *p, log_error_t *err) {
  pthread_mutex_lock(&p->flush_mu);
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->flush_mu);
    return closed_err(p, err);
  }
  log__segment_t *active = p->segs[p->nsegs - 1];
  log__recovery_point_t rp = {active->base_offset, active->size, active->next_offset,
                              active->max_timestamp, active->offset_of_max_ts};
  if (rp.base == p->rp_base && rp.pos == p->rp_pos) {
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->flush_mu);
    return 0;
  }
  /* Every segment from the old recovery point on may hold unsynced bytes. */
  size_t first = find_segment(p, p->rp_base);
  size_t n = p->nsegs - first;
  log__segment_t **segs = malloc(n * sizeof *segs);
  if (!segs) {
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->flush_mu);
    return log__errf(err, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    segs[i] = p->segs[first + i];
    log__segment_ref(segs[i]);
  }
  pthread_mutex_unlock(&p->mu);

  /* Cleared before the syncs: an append during them sets it again. */
  atomic_store(&p->dirty, false);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && (rc = log__segment_sync(segs[i], true)) < 0)
      rc = log__errf(err, rc, "%s: fsync of segment %" PRId64 ": %s", p->label,
                     segs[i]->base_offset, strerror(-rc));
    log__segment_unref(segs[i]);
  }
  free(segs);
  /* Only after the data is on disk may the recovery point say so. */
  if (rc == 0 && (rc = log__recovery_point_write(p, &rp)) < 0)
    rc = log__errf(err, rc, "%s: writing the recovery point: %s", p->label, strerror(-rc));
  if (rc == 0) {
    p->rp_base = rp.base;
    p->rp_pos = rp.pos;
    p->rp_next = rp.next_offset;
    p->rp_max_ts = rp.max_ts;
    p->rp_max_ts_off = rp.max_ts_offset;
  } else {
    atomic_store(&p->dirty, true);
    log__event(p->log, 0, "%s", err ? err->msg : "flush failed");
  }
  pthread_mutex_unlock(&p->flush_mu);
  return rc;
}

int log_partition_flush(log_partition_t *p, log_error_t *err) {
  return partition_flush(p, err);
}

int log__partition_retention(log_partition_t *p, int64_t now_ms) {
  if (!(p->cfg.cleanup_policy & LOG_CLEANUP_DELETE))
    return 0;
  const int64_t rms = p->cfg.retention_ms, rbytes = p->cfg.retention_bytes;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  int64_t total = 0;
  for (size_t i = 0; i < p->nsegs; i++)
    total += p->segs[i]->size;
  /* Kafka's rules: a prefix of whole segments, never the active one; by
   * time when the newest record of the segment is older than retention.ms,
   * by size while what remains without it is still >= retention.bytes. */
  size_t k = 0;
  while (k + 1 < p->nsegs) {
    log__segment_t *seg = p->segs[k];
    bool by_time = rms >= 0 && seg->max_timestamp >= 0 && now_ms - seg->max_timestamp > rms;
    bool by_size = rbytes >= 0 && total - seg->size >= rbytes;
    if (!by_time && !by_size)
      break;
    total -= seg->size;
    k++;
  }
  if (k == 0) {
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  log__segment_t **gone = malloc(k * sizeof *gone);
  if (!gone) {
    pthread_mutex_unlock(&p->mu);
    return -ENOMEM;
  }
  memcpy(gone, p->segs, k * sizeof *gone);
  memmove(p->segs, p->segs + k, (p->nsegs - k) * sizeof *p->segs);
  p->nsegs -= k;
  p->start_offset = p->segs[0]->base_offset;
  int64_t start = p->start_offset;
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < k; i++) {
    /* Readers holding a reference keep reading the unlinked file. */
    log__segment_unlink(gone[i]);
    log__event(p->log, 2, "%s: retention deleted segment %" PRId64 " (%" PRId64
               " bytes); log start offset now %" PRId64, p->label, gone[i]->base_offset,
               gone[i]->size, start);
    log__segment_unref(gone[i]);
  }
  free(gone);
  (void)log__fsync_dir(p->dir);
  return (int)k;
}

int log__partition_maintain(log_partition_t *p, int64_t now_ms, log_error_t *err) {
  int rc = 0;
  /* interval: sync dirty data. always: data is synced per append, but the
   * recovery point file is written here, at the same pace, so appends pay
   * one fdatasync each and no more. never: nothing until close. */
  if (p->cfg.flush != LOG_FLUSH_NEVER && now_ms - p->last_flush_ms >= p->cfg.flush_interval_ms) {
    p->last_flush_ms = now_ms;
    rc = partition_flush(p, err);
    if (rc == LOG_E_UNKNOWN_TOPIC) /* deleted meanwhile: nothing to do */
      rc = 0;
  }
  int r2 = log__partition_retention(p, now_ms);
  if (r2 < 0 && rc == 0)
    rc = log__errf(err, r2, "%s: retention: %s", p->label, strerror(-r2));
  return rc;
}

/* ---- notifications ------------------------------------------------------ */

int log_partition_wait(log_partition_t *p, int64_t offset, int64_t timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  if (timeout_ms >= 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  while (!p->closed && p->end_offset <= offset) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&p->cond, &p->mu);
    } else if (pthread_cond_timedwait(&p->cond, &p->mu, &deadline) == ETIMEDOUT) {
      rc = p->end_offset > offset ? 0 : LOG_E_TIMED_OUT;
      break;
    }
  }
  if (p->closed)
    rc = LOG_E_CLOSED;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int log_partition_watch(log_partition_t *p, int fd) {
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  if (p->nwatch == p->cap_watch) {
    size_t ncap = p->cap_watch ? p->cap_watch * 2 : 4;
    int *nf = realloc(p->watch_fds, ncap * sizeof *nf);
    if (!nf)
      rc = -ENOMEM;
    else {
      p->watch_fds = nf;
      p->cap_watch = ncap;
    }
  }
  if (rc == 0)
    p->watch_fds[p->nwatch++] = fd;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int log_partition_unwatch(log_partition_t *p, int fd) {
  int rc = -ENOENT;
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->nwatch; i++) {
    if (p->watch_fds[i] == fd) {
      p->watch_fds[i] = p->watch_fds[--p->nwatch];
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void log_partition_set_compaction_limit(log_partition_t *p, int64_t offset) {
  p->compact_limit = offset;
}
