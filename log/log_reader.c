/*
 * log_reader.c: records one at a time from one partition.
 *
 * A reader fetches whole batches with log_partition_read into its own
 * buffer (fetch_bytes at a time), validates each batch (CRC-32C and
 * framing, log__batch_validate) before it returns any record of it, and
 * iterates the records with log__record_iter. Records below the requested
 * offset in the first batch are skipped. A batch that fails validation is
 * never returned as records: the call fails with LOG_E_CORRUPT naming
 * "<topic>-<partition> offset N", and the reader stays at N (seek past it
 * to go on).
 *
 * Thread: a reader belongs to one thread; any number of readers may read a
 * partition while its writer appends.
 */
#include "log_store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_FETCH_BYTES (1u << 20)

struct log_reader_s {
  log_partition_t *p;       /* borrowed from the log */
  int64_t position;         /* next offset to return */
  size_t fetch_bytes;
  uint8_t *buf;             /* batches from the last fetch */
  size_t cap, len, at;      /* at: start of the next batch in buf */
  log__record_iter_t it;
  bool in_batch;            /* it is initialised on the batch at buf+at */
  size_t batch_size;
};

int log_reader_new(log_t *log, const char *topic, int32_t partition, int64_t offset,
                   size_t fetch_bytes, log_reader_t **out, log_error_t *err) {
  log_partition_t *p;
  int rc = log_partition_get(log, topic, partition, &p, err);
  if (rc < 0)
    return rc;
  log_reader_t *r = calloc(1, sizeof *r);
  if (!r)
    return log__errf(err, -ENOMEM, "out of memory");
  r->p = p;
  r->fetch_bytes = fetch_bytes ? fetch_bytes : DEFAULT_FETCH_BYTES;
  if ((rc = log_reader_seek(r, offset, err)) < 0) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static void reader_drop(log_reader_t *r) {
  if (r->in_batch)
    log__record_iter_close(&r->it);
  r->in_batch = false;
  r->len = r->at = 0;
}

void log_reader_free(log_reader_t *r) {
  if (!r)
    return;
  reader_drop(r);
  free(r->buf);
  free(r);
}

int64_t log_reader_position(const log_reader_t *r) {
  return r->position;
}

int log_reader_seek(log_reader_t *r, int64_t offset, log_error_t *err) {
  int64_t start = log_partition_start_offset(r->p), end = log_partition_end_offset(r->p);
  if (offset < start || offset > end)
    return log__errf(err, LOG_E_OFFSET_OUT_OF_RANGE,
                     "%s: offset %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                     r->p->label, offset, start, end);
  reader_drop(r);
  r->position = offset;
  return 0;
}

int log_reader_next(log_reader_t *r, log_record_t *rec, log_error_t *err) {
  for (;;) {
    if (r->in_batch) {
      int rc = log__record_iter_next(&r->it, rec);
      if (rc == 1) {
        if (rec->offset < r->position)
          continue; /* before the requested offset, in the first batch */
        r->position = rec->offset + 1;
        return 1;
      }
      int64_t last = r->it.h.base_offset + r->it.h.last_offset_delta;
      log__record_iter_close(&r->it);
      r->in_batch = false;
      if (rc < 0) {
        /* Validated framing failed while iterating: still corrupt, never
         * a crash. Drop the buffer so the next call re-reads. */
        r->len = r->at = 0;
        return log__errf(err, LOG_E_CORRUPT, "%s offset %" PRId64 ": corrupt record framing",
                         r->p->label, r->position);
      }
      /* Compaction can leave the batch's tail empty: move past it. */
      if (last + 1 > r->position)
        r->position = last + 1;
      r->at += r->batch_size;
      continue;
    }
    if (r->at < r->len) {
      const uint8_t *b = r->buf + r->at;
      size_t size = log__batch_size(b);
      log_error_t verr = {0};
      int rc = log__batch_validate(b, size, &verr);
      if (rc < 0) {
        int64_t base = (int64_t)log__be64(b);
        r->len = r->at = 0; /* re-read from the position next time */
        return log__errf(err, rc == LOG_E_UNSUPPORTED_CODEC ? rc : LOG_E_CORRUPT,
                         "%s offset %" PRId64 " (batch at offset %" PRId64 "): %s",
                         r->p->label, r->position, base, verr.msg);
      }
      if (log__record_iter_init(&r->it, b, size) < 0) {
        r->len = r->at = 0;
        return log__errf(err, LOG_E_CORRUPT, "%s offset %" PRId64 ": corrupt batch header",
                         r->p->label, r->position);
      }
      r->in_batch = true;
      r->batch_size = size;
      continue;
    }
    /* The previous records' pointers are invalid from here on. */
    r->len = r->at = 0;
    int rc = log_partition_read(r->p, r->position, r->fetch_bytes, &r->buf, &r->cap, &r->len,
                                err);
    if (rc < 0) {
      r->len = 0;
      return rc;
    }
    if (r->len == 0)
      return 0;
  }
}
