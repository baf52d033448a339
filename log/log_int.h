/*
 * log_int.h: internals shared between the files of log/ (the log__ prefix).
 * Not for use outside log/ (tests excepted).
 *
 * The codec layer (log_crc32c.c, log_varint.c, log_batch.c, log_murmur2.c)
 * knows bytes only; the storage layer (segments, indexes, partitions,
 * topics, groups, cleaner) knows files.
 */
#ifndef RUNNEL_LOG_INT_H
#define RUNNEL_LOG_INT_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>

/* ---- CRC-32C (Castagnoli), as RecordBatch v2 uses ---------------------- */

/* Continues a CRC-32C over buf: crc = log__crc32c(0, buf, len) for a whole
 * buffer. Uses the SSE4.2 crc32 instruction when the CPU has it, a table
 * otherwise. */
uint32_t log__crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable table implementation, exported so tests compare both. */
uint32_t log__crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* ---- varints (zig-zag, as Kafka's ByteUtils.writeVarint) --------------- */

/* Writes v zig-zag encoded; returns bytes written (1..5 / 1..10). */
size_t log__varint_put(uint8_t *dst, int32_t v);
size_t log__varlong_put(uint8_t *dst, int64_t v);
/* Bytes log__varint_put would write. */
size_t log__varint_size(int32_t v);
size_t log__varlong_size(int64_t v);
/* Reads a varint from [p, end); returns bytes consumed, or 0 if truncated
 * or too long (malformed). */
size_t log__varint_get(const uint8_t *p, const uint8_t *end, int32_t *v);
size_t log__varlong_get(const uint8_t *p, const uint8_t *end, int64_t *v);

/* ---- murmur2, as Kafka's Utils.murmur2 (seed 0x9747b28c) --------------- */
int32_t log__murmur2(const void *data, int32_t len);

/* ---- RecordBatch v2 -----------------------------------------------------
 *
 * Batch header, 61 bytes, big-endian:
 *   off len field
 *    0   8  baseOffset
 *    8   4  batchLength (bytes after this field: total size - 12)
 *   12   4  partitionLeaderEpoch
 *   16   1  magic (2)
 *   17   4  crc (CRC-32C of bytes 21 .. end of batch)
 *   21   2  attributes (bits 0-2 codec, 3 timestampType, 4 transactional,
 *           5 control, 6 hasDeleteHorizonMs)
 *   23   4  lastOffsetDelta
 *   27   8  baseTimestamp
 *   35   8  maxTimestamp
 *   43   8  producerId
 *   51   2  producerEpoch
 *   53   4  baseSequence
 *   57   4  records count
 *   61      records
 */
#define LOG__BATCH_HEADER_SIZE 61
#define LOG__BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define LOG__BATCH_MAGIC 2

typedef struct {
  int64_t base_offset;
  int32_t batch_length;       /* as stored: total size - 12 */
  int32_t leader_epoch;
  int8_t magic;
  uint32_t crc;
  int16_t attributes;
  int32_t last_offset_delta;
  int64_t base_timestamp;
  int64_t max_timestamp;
  int64_t producer_id;
  int16_t producer_epoch;
  int32_t base_sequence;
  int32_t record_count;
} log__batch_header_t;

/* Big-endian helpers. */
static inline uint32_t log__be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t log__be64(const uint8_t *p) {
  return (uint64_t)log__be32(p) << 32 | log__be32(p + 4);
}
static inline void log__put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void log__put_be64(uint8_t *p, uint64_t v) {
  log__put_be32(p, (uint32_t)(v >> 32)); log__put_be32(p + 4, (uint32_t)v);
}

/* Parses the 61-byte header at p (no CRC check). Returns 0, or
 * LOG_E_CORRUPT when fewer than 61 bytes are given, the magic is not 2 or
 * batchLength is impossible (< 49). */
int log__batch_header_parse(const uint8_t *p, size_t len, log__batch_header_t *h);

/* Size in bytes of the whole batch whose header starts at p (needs 12
 * bytes): batchLength + 12. */
static inline size_t log__batch_size(const uint8_t *p) {
  return (size_t)(int32_t)log__be32(p + 8) + LOG__BATCH_LOG_OVERHEAD;
}

/* Validates a whole batch of `len` bytes: header, CRC-32C, codec (only
 * none is supported: LOG_E_UNSUPPORTED_CODEC), record count and record
 * framing. Returns 0 or a negative error with err->msg describing it
 * (without topic/partition: the caller prefixes those). */
int log__batch_validate(const uint8_t *batch, size_t len, log_error_t *err);

/* Bytes needed to encode recs[0..n) as one batch. */
size_t log__batch_encoded_size(const log_record_t *recs, size_t n);
/* (Added by the codec layer.) log__batch_encoded_size is exact for
 * log__batch_encode(..., offsets NULL, ...) when no timestamp is -1, when
 * all are, or when n == 1; when -1 is mixed with given timestamps it is an
 * upper bound (encode returns the bytes really written). It does not know
 * offsets: with offsets != NULL (gaps make offset deltas longer) size the
 * buffer with this function, which is exact for every encode call made
 * with the same arguments. */
size_t log__batch_encoded_size_exact(const log_record_t *recs, size_t n,
                                     int64_t base_offset, const int64_t *offsets,
                                     int64_t now_ms);

/* Encodes recs[0..n) (n >= 1) as one uncompressed batch at dst (which has
 * log__batch_encoded_size bytes), with baseOffset base_offset, offset
 * deltas 0..n-1 (or, when offsets is not NULL, offsets[i] - base_offset,
 * for rewriting compacted batches with gaps), timestamps from the records
 * (a record timestamp of -1 becomes now_ms), producer id -1, epoch -1,
 * sequence -1, and the CRC. Returns the bytes written. */
size_t log__batch_encode(uint8_t *dst, int64_t base_offset, const log_record_t *recs,
                         size_t n, const int64_t *offsets, int64_t now_ms);

/* Sets the baseOffset field of an encoded batch (not covered by the CRC). */
static inline void log__batch_set_base_offset(uint8_t *batch, int64_t base_offset) {
  log__put_be64(batch, (uint64_t)base_offset);
}

/* Iterates over the records of one validated batch. Header storage for
 * decoded headers is owned by the iterator (grown as needed) and valid
 * until the next call. */
typedef struct {
  const uint8_t *p, *end;
  log__batch_header_t h;
  int32_t index;               /* records returned so far */
  log_header_t *headers;       /* owned */
  int32_t headers_cap;
} log__record_iter_t;

int log__record_iter_init(log__record_iter_t *it, const uint8_t *batch, size_t len);
/* 1 and *rec filled, 0 at the end, LOG_E_CORRUPT on malformed framing. */
int log__record_iter_next(log__record_iter_t *it, log_record_t *rec);
void log__record_iter_close(log__record_iter_t *it);

/* Formats err->msg (printf-style) and sets err->code; returns code.
 * err may be NULL. */
int log__errf(log_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- compaction hook (log_cleaner.c) ------------------------------------
 * One compaction pass over partition p at now_ms, called by log_maintain
 * for topics whose cleanup.policy has LOG_CLEANUP_COMPACT, from the thread
 * that runs log_maintain. Returns 0 or a negative error. Storage internals
 * it may need are in log_store_int.h. */
int log__cleaner_run(log_partition_t *p, int64_t now_ms, log_error_t *err);

#endif /* RUNNEL_LOG_INT_H */
