/*
 * log_batch.c: Kafka RecordBatch v2 (magic 2), the unit runnel writes to
 * segment files, byte for byte as Kafka writes it, so that a Kafka tool or
 * a future Kafka-protocol listener can read our segments unchanged.
 *
 * This file knows bytes only: it parses, validates, sizes, encodes and
 * iterates batches held in memory. Files are the storage layer's business
 * (log_segment.c). docs/log-format.md repeats this layout for users.
 *
 * A BATCH. All integers are big-endian, two's complement:
 *
 *   off len field                 runnel writes
 *    0   8  baseOffset            offset of the first record
 *    8   4  batchLength           size of the batch - 12 (bytes after this field)
 *   12   4  partitionLeaderEpoch  0 (one leader, forever)
 *   16   1  magic                 2
 *   17   4  crc                   CRC-32C (unsigned) of bytes 21 .. end of batch
 *   21   2  attributes            0; bits 0-2 codec (0 none, 1 gzip, 2 snappy,
 *                                 3 lz4, 4 zstd), bit 3 timestampType (0
 *                                 CreateTime, 1 LogAppendTime), bit 4
 *                                 isTransactional, bit 5 isControlBatch,
 *                                 bit 6 hasDeleteHorizonMs, 7-15 unused
 *   23   4  lastOffsetDelta       offset of the last record - baseOffset
 *   27   8  baseTimestamp         timestamp of the first record
 *   35   8  maxTimestamp          greatest timestamp of the batch's records
 *   43   8  producerId            -1 (no idempotent producer)
 *   51   2  producerEpoch         -1
 *   53   4  baseSequence          -1
 *   57   4  recordCount           number of records that follow
 *   61      records               recordCount records, back to back
 *
 * baseOffset and batchLength (the "log overhead") are outside the CRC, so
 * the storage layer can assign offsets to an encoded batch without
 * recomputing it; partitionLeaderEpoch and magic are outside it too.
 *
 * A RECORD. "varint"/"varlong" are zig-zag varints (log_varint.c):
 *
 *   length             varint   bytes of the record after this field
 *   attributes         int8     0 (unused by Kafka)
 *   timestampDelta     varlong  timestamp - baseTimestamp
 *   offsetDelta        varint   offset - baseOffset
 *   keyLength          varint   -1: null key
 *   key                keyLength bytes
 *   valueLength        varint   -1: null value (a tombstone)
 *   value              valueLength bytes
 *   headerCount        varint
 *   headerCount times:
 *     headerKeyLength    varint  >= 0 (header keys are never null)
 *     headerKey          headerKeyLength bytes (UTF-8)
 *     headerValueLength  varint  -1: null value
 *     headerValue        headerValueLength bytes
 *
 * A record's offset is baseOffset + offsetDelta; its timestamp is
 * baseTimestamp + timestampDelta under CreateTime, and maxTimestamp under
 * LogAppendTime.
 *
 * A batch is valid if and only if all of the following hold:
 *
 *   1. at least 61 bytes are present, batchLength >= 49, and all
 *      batchLength + 12 bytes of the batch are present;
 *   2. magic is 2;
 *   3. crc equals the CRC-32C of bytes 21 through the end of the batch;
 *   4. the codec (attributes bits 0-2) is 0. Codecs 1-4 are Kafka's
 *      compressions, which runnel does not read: LOG_E_UNSUPPORTED_CODEC.
 *      Codecs 5-7 do not exist: LOG_E_CORRUPT;
 *   5. baseOffset >= 0, lastOffsetDelta >= 0, recordCount >= 0, and
 *      baseOffset + lastOffsetDelta does not overflow;
 *   6. the bytes after the header are exactly recordCount records: each
 *      record's fields lie within its `length`, and they fill it exactly;
 *      key, value and header value lengths are >= -1; header key lengths
 *      and headerCount are >= 0; the last record ends at the batch's end;
 *   7. offsetDeltas are strictly increasing and lie in [0, lastOffsetDelta]
 *      (compaction leaves gaps; lastOffsetDelta keeps the batch's original
 *      last offset).
 *
 * Anything else is LOG_E_CORRUPT. Not checked, as Kafka does not check
 * them on read either: timestamps (maxTimestamp against the records), the
 * producer fields, a record's attributes byte, UTF-8 in header keys.
 * Control and transactional batches are valid; their records are framed
 * like any other.
 *
 * Every read below is bounds-checked against the end of the batch, so that
 * garbage (a torn write, a flipped bit, a fuzzer) yields LOG_E_CORRUPT and
 * never an out-of-bounds read.
 */
#include "log_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Attributes bits. */
#define LOG__ATTR_CODEC_MASK 0x07
#define LOG__ATTR_LOG_APPEND_TIME 0x08

/* The smallest record body: attributes + five one-byte varints
 * (timestampDelta, offsetDelta, keyLength, valueLength, headerCount). */
#define LOG__RECORD_MIN_BODY 6

static const char *const log__codec_names[8] = {
    "none", "gzip", "snappy", "lz4", "zstd", "codec 5", "codec 6", "codec 7",
};

/* ---- header ------------------------------------------------------------ */

static inline uint16_t log__be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void log__put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

int log__batch_header_parse(const uint8_t *p, size_t len, log__batch_header_t *h) {
  if (len < LOG__BATCH_HEADER_SIZE)
    return LOG_E_CORRUPT;
  h->base_offset = (int64_t)log__be64(p + 0);
  h->batch_length = (int32_t)log__be32(p + 8);
  h->leader_epoch = (int32_t)log__be32(p + 12);
  h->magic = (int8_t)p[16];
  h->crc = log__be32(p + 17);
  h->attributes = (int16_t)log__be16(p + 21);
  h->last_offset_delta = (int32_t)log__be32(p + 23);
  h->base_timestamp = (int64_t)log__be64(p + 27);
  h->max_timestamp = (int64_t)log__be64(p + 35);
  h->producer_id = (int64_t)log__be64(p + 43);
  h->producer_epoch = (int16_t)log__be16(p + 51);
  h->base_sequence = (int32_t)log__be32(p + 53);
  h->record_count = (int32_t)log__be32(p + 57);
  if (h->magic != LOG__BATCH_MAGIC)
    return LOG_E_CORRUPT;
  if (h->batch_length < LOG__BATCH_HEADER_SIZE - LOG__BATCH_LOG_OVERHEAD)
    return LOG_E_CORRUPT;
  return 0;
}

/* ---- records: the one bounds-checked parser ---------------------------- */

/* A record located in a batch, with its fields checked against the
 * record's length; headers are checked but not decoded. */
typedef struct {
  int64_t timestamp_delta;
  int32_t offset_delta;
  int32_t key_len, value_len, header_count;
  const uint8_t *key, *value;
  const uint8_t *headers; /* first header */
  const uint8_t *next;    /* first byte after the record */
} log__rec_view_t;

/* Reads a varint length field that must be >= min and, when non-negative,
 * no longer than the bytes left before end. On success advances *pp. */
static bool log__get_len(const uint8_t **pp, const uint8_t *end, int32_t min,
                         int32_t *out) {
  int32_t v;
  size_t n = log__varint_get(*pp, end, &v);
  if (n == 0 || v < min)
    return false;
  *pp += n;
  if (v > 0 && (size_t)v > (size_t)(end - *pp))
    return false;
  *out = v;
  return true;
}

/* Parses the record at p (ending at most at end). Returns NULL and fills
 * *rv, or a static string saying what is wrong. */
static const char *log__record_scan(const uint8_t *p, const uint8_t *end,
                                    log__rec_view_t *rv) {
  int32_t length;
  size_t n = log__varint_get(p, end, &length);
  if (n == 0)
    return "truncated or malformed record length";
  p += n;
  if (length < LOG__RECORD_MIN_BODY)
    return "record length too small";
  if ((size_t)length > (size_t)(end - p))
    return "record length beyond the end of the batch";
  const uint8_t *rend = p + length;

  p++; /* attributes: unused */
  n = log__varlong_get(p, rend, &rv->timestamp_delta);
  if (n == 0)
    return "malformed timestampDelta";
  p += n;
  n = log__varint_get(p, rend, &rv->offset_delta);
  if (n == 0)
    return "malformed offsetDelta";
  p += n;

  if (!log__get_len(&p, rend, -1, &rv->key_len))
    return "bad key length";
  rv->key = p;
  if (rv->key_len > 0)
    p += rv->key_len;
  if (!log__get_len(&p, rend, -1, &rv->value_len))
    return "bad value length";
  rv->value = p;
  if (rv->value_len > 0)
    p += rv->value_len;

  int32_t count;
  n = log__varint_get(p, rend, &count);
  if (n == 0 || count < 0)
    return "bad header count";
  p += n;
  /* Each header takes at least two bytes: a count beyond that is garbage,
   * and must not reach the iterator's allocation. */
  if ((size_t)count > (size_t)(rend - p) / 2)
    return "header count beyond the record's length";
  rv->header_count = count;
  rv->headers = p;
  for (int32_t i = 0; i < count; i++) {
    int32_t klen, vlen;
    if (!log__get_len(&p, rend, 0, &klen))
      return "bad header key length";
    p += klen;
    if (!log__get_len(&p, rend, -1, &vlen))
      return "bad header value length";
    if (vlen > 0)
      p += vlen;
  }
  if (p != rend)
    return "record fields do not fill its length";
  rv->next = rend;
  return NULL;
}

/* ---- validation -------------------------------------------------------- */

int log__batch_validate(const uint8_t *batch, size_t len, log_error_t *err) {
  log__batch_header_t h;
  if (len < LOG__BATCH_HEADER_SIZE)
    return log__errf(err, LOG_E_CORRUPT,
                     "truncated batch: %zu bytes, a header needs %d", len,
                     LOG__BATCH_HEADER_SIZE);
  if (log__batch_header_parse(batch, len, &h) != 0) {
    if (h.magic != LOG__BATCH_MAGIC)
      return log__errf(err, LOG_E_CORRUPT, "bad magic %d (expected %d)",
                       h.magic, LOG__BATCH_MAGIC);
    return log__errf(err, LOG_E_CORRUPT, "impossible batchLength %" PRId32,
                     h.batch_length);
  }
  size_t size = log__batch_size(batch);
  if (size > len)
    return log__errf(err, LOG_E_CORRUPT,
                     "truncated batch: batchLength %" PRId32
                     " needs %zu bytes, %zu present",
                     h.batch_length, size, len);

  uint32_t crc = log__crc32c(0, batch + 21, size - 21);
  if (crc != h.crc)
    return log__errf(err, LOG_E_CORRUPT,
                     "CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
                     h.crc, crc);

  int codec = h.attributes & LOG__ATTR_CODEC_MASK;
  if (codec >= 1 && codec <= 4)
    return log__errf(err, LOG_E_UNSUPPORTED_CODEC,
                     "batch compressed with %s (codec %d); runnel reads "
                     "uncompressed batches only",
                     log__codec_names[codec], codec);
  if (codec != 0)
    return log__errf(err, LOG_E_CORRUPT, "unknown compression codec %d", codec);

  if (h.base_offset < 0)
    return log__errf(err, LOG_E_CORRUPT, "negative baseOffset %" PRId64,
                     h.base_offset);
  if (h.last_offset_delta < 0 || h.base_offset > INT64_MAX - h.last_offset_delta)
    return log__errf(err, LOG_E_CORRUPT, "bad lastOffsetDelta %" PRId32,
                     h.last_offset_delta);
  if (h.record_count < 0)
    return log__errf(err, LOG_E_CORRUPT, "negative record count %" PRId32,
                     h.record_count);

  const uint8_t *p = batch + LOG__BATCH_HEADER_SIZE;
  const uint8_t *end = batch + size;
  int64_t prev_delta = -1;
  for (int32_t i = 0; i < h.record_count; i++) {
    if (p == end)
      return log__errf(err, LOG_E_CORRUPT,
                       "record count %" PRId32 " but the batch ends after %" PRId32
                       " records",
                       h.record_count, i);
    log__rec_view_t rv;
    const char *why = log__record_scan(p, end, &rv);
    if (why != NULL)
      return log__errf(err, LOG_E_CORRUPT, "record %" PRId32 " at byte %td: %s",
                       i, p - batch, why);
    if (rv.offset_delta <= prev_delta || rv.offset_delta > h.last_offset_delta)
      return log__errf(err, LOG_E_CORRUPT,
                       "record %" PRId32 ": offsetDelta %" PRId32
                       " out of order or beyond lastOffsetDelta %" PRId32,
                       i, rv.offset_delta, h.last_offset_delta);
    prev_delta = rv.offset_delta;
    p = rv.next;
  }
  if (p != end)
    return log__errf(err, LOG_E_CORRUPT,
                     "record count %" PRId32 " but %td bytes follow the last record",
                     h.record_count, end - p);
  return 0;
}

/* ---- encoding ---------------------------------------------------------- */

/* The null conventions of log_record_t: a NULL pointer or a negative
 * length is null (-1 on disk). A non-NULL pointer with length 0 is an
 * empty key or value, which Kafka keeps distinct from null. */
static inline int32_t log__wire_len(const void *ptr, int32_t len) {
  assert(ptr != NULL || len <= 0); /* NULL with a length is a caller bug */
  return ptr == NULL || len < 0 ? -1 : len;
}

/* Header keys are never null on the wire: NULL/negative becomes "". */
static inline int32_t log__wire_key_len(const char *key, int32_t len) {
  assert(key != NULL || len <= 0);
  return key == NULL || len < 0 ? 0 : len;
}

static inline int32_t log__header_count(const log_record_t *r) {
  return r->headers == NULL || r->header_count < 0 ? 0 : r->header_count;
}

static size_t log__len_field_size(int32_t wire_len) {
  return log__varint_size(wire_len) + (wire_len > 0 ? (size_t)wire_len : 0);
}

/* Bytes of a record after its length field. */
static size_t log__record_body_size(const log_record_t *r, int64_t ts_delta,
                                    int32_t offset_delta) {
  size_t n = 1 + log__varlong_size(ts_delta) + log__varint_size(offset_delta);
  n += log__len_field_size(log__wire_len(r->key, r->key_len));
  n += log__len_field_size(log__wire_len(r->value, r->value_len));
  int32_t hc = log__header_count(r);
  n += log__varint_size(hc);
  for (int32_t i = 0; i < hc; i++) {
    const log_header_t *hd = &r->headers[i];
    n += log__len_field_size(log__wire_key_len(hd->key, hd->key_len));
    n += log__len_field_size(log__wire_len(hd->value, hd->value_len));
  }
  return n;
}

static size_t log__record_size(const log_record_t *r, int64_t ts_delta,
                               int32_t offset_delta) {
  size_t body = log__record_body_size(r, ts_delta, offset_delta);
  return log__varint_size((int32_t)body) + body;
}

static inline int64_t log__record_ts(const log_record_t *r, int64_t now_ms) {
  return r->timestamp == -1 ? now_ms : r->timestamp;
}

/* Differences wrap instead of overflowing; the reader adds them back with
 * the same wrap, so any pair of timestamps round-trips. */
static inline int64_t log__ts_delta(int64_t ts, int64_t base) {
  return (int64_t)((uint64_t)ts - (uint64_t)base);
}

size_t log__batch_encoded_size_exact(const log_record_t *recs, size_t n,
                                     int64_t base_offset, const int64_t *offsets,
                                     int64_t now_ms) {
  assert(n >= 1);
  int64_t base_ts = log__record_ts(&recs[0], now_ms);
  size_t size = LOG__BATCH_HEADER_SIZE;
  for (size_t i = 0; i < n; i++) {
    int64_t ts_delta = log__ts_delta(log__record_ts(&recs[i], now_ms), base_ts);
    int32_t off_delta = offsets ? (int32_t)(offsets[i] - base_offset) : (int32_t)i;
    size += log__record_size(&recs[i], ts_delta, off_delta);
  }
  return size;
}

/*
 * Without now_ms the timestamp deltas are known only when no record's
 * timestamp is -1 ("now"), or all are (then all deltas are 0), or n == 1;
 * in both exact cases the delta is recs[i].timestamp - recs[0].timestamp.
 * When -1 is mixed with given timestamps, every delta is counted at the
 * 10 bytes of the longest varlong, so the result is an upper bound.
 */
size_t log__batch_encoded_size(const log_record_t *recs, size_t n) {
  assert(n >= 1);
  size_t now_count = 0;
  for (size_t i = 0; i < n; i++)
    now_count += recs[i].timestamp == -1;
  bool exact = now_count == 0 || now_count == n || n == 1;
  size_t size = LOG__BATCH_HEADER_SIZE;
  for (size_t i = 0; i < n; i++) {
    int64_t ts_delta = exact ? (n == 1 ? 0 : log__ts_delta(recs[i].timestamp, recs[0].timestamp))
                             : INT64_MIN; /* a 10-byte varlong */
    size += log__record_size(&recs[i], ts_delta, (int32_t)i);
  }
  return size;
}

static uint8_t *log__put_bytes(uint8_t *p, int32_t wire_len, const void *src) {
  p += log__varint_put(p, wire_len);
  if (wire_len > 0) {
    memcpy(p, src, (size_t)wire_len);
    p += wire_len;
  }
  return p;
}

size_t log__batch_encode(uint8_t *dst, int64_t base_offset, const log_record_t *recs,
                         size_t n, const int64_t *offsets, int64_t now_ms) {
  assert(n >= 1);
  assert(n <= INT32_MAX);
  int64_t base_ts = log__record_ts(&recs[0], now_ms);
  int64_t max_ts = base_ts;
  uint8_t *p = dst + LOG__BATCH_HEADER_SIZE;

  for (size_t i = 0; i < n; i++) {
    const log_record_t *r = &recs[i];
    int64_t ts = log__record_ts(r, now_ms);
    if (ts > max_ts)
      max_ts = ts;
    int64_t ts_delta = log__ts_delta(ts, base_ts);
    int32_t off_delta = offsets ? (int32_t)(offsets[i] - base_offset) : (int32_t)i;
    assert(!offsets || (offsets[i] >= base_offset && offsets[i] - base_offset <= INT32_MAX));
    assert(!offsets || i == 0 || offsets[i] > offsets[i - 1]);
    size_t body = log__record_body_size(r, ts_delta, off_delta);
    assert(body <= INT32_MAX);

    p += log__varint_put(p, (int32_t)body);
    *p++ = 0; /* attributes */
    p += log__varlong_put(p, ts_delta);
    p += log__varint_put(p, off_delta);
    p = log__put_bytes(p, log__wire_len(r->key, r->key_len), r->key);
    p = log__put_bytes(p, log__wire_len(r->value, r->value_len), r->value);
    int32_t hc = log__header_count(r);
    p += log__varint_put(p, hc);
    for (int32_t j = 0; j < hc; j++) {
      const log_header_t *hd = &r->headers[j];
      p = log__put_bytes(p, log__wire_key_len(hd->key, hd->key_len), hd->key);
      p = log__put_bytes(p, log__wire_len(hd->value, hd->value_len), hd->value);
    }
  }

  size_t size = (size_t)(p - dst);
  assert(size - LOG__BATCH_LOG_OVERHEAD <= INT32_MAX);
  int32_t last_delta =
      offsets ? (int32_t)(offsets[n - 1] - base_offset) : (int32_t)(n - 1);

  log__put_be64(dst + 0, (uint64_t)base_offset);
  log__put_be32(dst + 8, (uint32_t)(size - LOG__BATCH_LOG_OVERHEAD));
  log__put_be32(dst + 12, 0);                 /* partitionLeaderEpoch */
  dst[16] = LOG__BATCH_MAGIC;
  log__put_be16(dst + 21, 0);                 /* attributes: none, CreateTime */
  log__put_be32(dst + 23, (uint32_t)last_delta);
  log__put_be64(dst + 27, (uint64_t)base_ts);
  log__put_be64(dst + 35, (uint64_t)max_ts);
  log__put_be64(dst + 43, (uint64_t)-1);      /* producerId */
  log__put_be16(dst + 51, (uint16_t)-1);      /* producerEpoch */
  log__put_be32(dst + 53, (uint32_t)-1);      /* baseSequence */
  log__put_be32(dst + 57, (uint32_t)n);
  /* Last: the CRC covers attributes .. end, all written above. */
  log__put_be32(dst + 17, log__crc32c(0, dst + 21, size - 21));
  return size;
}

/* ---- iteration --------------------------------------------------------- */

int log__record_iter_init(log__record_iter_t *it, const uint8_t *batch, size_t len) {
  it->headers = NULL;
  it->headers_cap = 0;
  it->index = 0;
  it->p = it->end = batch;
  int rc = log__batch_header_parse(batch, len, &it->h);
  if (rc != 0)
    return rc;
  size_t size = log__batch_size(batch);
  if (size > len)
    return LOG_E_CORRUPT;
  int codec = it->h.attributes & LOG__ATTR_CODEC_MASK;
  if (codec >= 1 && codec <= 4)
    return LOG_E_UNSUPPORTED_CODEC;
  if (codec != 0 || it->h.record_count < 0)
    return LOG_E_CORRUPT;
  it->p = batch + LOG__BATCH_HEADER_SIZE;
  it->end = batch + size;
  return 0;
}

int log__record_iter_next(log__record_iter_t *it, log_record_t *rec) {
  if (it->index >= it->h.record_count)
    return it->p == it->end ? 0 : LOG_E_CORRUPT; /* trailing bytes */
  log__rec_view_t rv;
  if (log__record_scan(it->p, it->end, &rv) != NULL)
    return LOG_E_CORRUPT;

  /* Grow only when a record has more headers than any before it; the
   * count was bounded by the record's length in log__record_scan. */
  if (rv.header_count > it->headers_cap) {
    int32_t cap = it->headers_cap < 4 ? 4 : it->headers_cap;
    while (cap < rv.header_count)
      cap = cap > INT32_MAX / 2 ? rv.header_count : cap * 2;
    log_header_t *hs = realloc(it->headers, (size_t)cap * sizeof *hs);
    if (hs == NULL)
      return -ENOMEM;
    it->headers = hs;
    it->headers_cap = cap;
  }
  /* Already checked by the scan: this walk cannot leave the record. */
  const uint8_t *p = rv.headers;
  for (int32_t i = 0; i < rv.header_count; i++) {
    log_header_t *hd = &it->headers[i];
    int32_t klen, vlen;
    p += log__varint_get(p, rv.next, &klen);
    hd->key = (const char *)p;
    hd->key_len = klen;
    p += klen;
    p += log__varint_get(p, rv.next, &vlen);
    hd->value = vlen >= 0 ? p : NULL;
    hd->value_len = vlen;
    if (vlen > 0)
      p += vlen;
  }

  rec->offset = (int64_t)((uint64_t)it->h.base_offset + (uint64_t)(int64_t)rv.offset_delta);
  rec->timestamp = (it->h.attributes & LOG__ATTR_LOG_APPEND_TIME)
                       ? it->h.max_timestamp
                       : (int64_t)((uint64_t)it->h.base_timestamp +
                                   (uint64_t)rv.timestamp_delta);
  rec->key = rv.key_len >= 0 ? rv.key : NULL;
  rec->key_len = rv.key_len;
  rec->value = rv.value_len >= 0 ? rv.value : NULL;
  rec->value_len = rv.value_len;
  rec->headers = rv.header_count > 0 ? it->headers : NULL;
  rec->header_count = rv.header_count;

  it->p = rv.next;
  it->index++;
  return 1;
}

void log__record_iter_close(log__record_iter_t *it) {
  free(it->headers);
  it->headers = NULL;
  it->headers_cap = 0;
}
