/*
 * test_log_batch.c: RecordBatch v2 (log/log_batch.c).
 *
 * The first test builds a batch byte by byte from the specification (the
 * layout comment of log_batch.c, which is Kafka's message format v2) and
 * requires log__batch_encode to produce exactly those bytes, CRC included;
 * the CRC literal was computed by a separate bitwise CRC-32C, not by the
 * code under test. The rest round-trip records through encode, validate
 * and the iterator, and feed validate and the iterator damaged and random
 * input in buffers of exactly the batch's size, so that ASan reports any
 * read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log_int.h"

/* ---- helpers ----------------------------------------------------------- */

static uint8_t *dup_bytes(const void *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  memcpy(p, src, n);
  return p;
}

/* Recomputes the CRC after a test changed a covered byte on purpose, so
 * that validation reaches the check the test is aiming at. */
static void fix_crc(uint8_t *b, size_t size) {
  log__put_be32(b + 17, log__crc32c_sw(0, b + 21, size - 21));
}

static uint8_t *encode_alloc(const log_record_t *recs, size_t n, int64_t base,
                             const int64_t *offsets, int64_t now_ms, size_t *size) {
  size_t cap = log__batch_encoded_size_exact(recs, n, base, offsets, now_ms);
  uint8_t *b = malloc(cap);
  assert_non_null(b);
  *size = log__batch_encode(b, base, recs, n, offsets, now_ms);
  assert_int_equal(*size, cap);
  return b;
}

/* ---- the batch built by hand ------------------------------------------- */

/* One record: offset 0, timestamp 1000, key "k", value "v", header h=x. */
static const uint8_t hand_batch[74] = {
    /*  0 baseOffset           */ 0, 0, 0, 0, 0, 0, 0, 0,
    /*  8 batchLength = 74-12  */ 0x00, 0x00, 0x00, 0x3e,
    /* 12 partitionLeaderEpoch */ 0, 0, 0, 0,
    /* 16 magic                */ 0x02,
    /* 17 crc                  */ 0x85, 0xd4, 0x93, 0x6f,
    /* 21 attributes           */ 0x00, 0x00,
    /* 23 lastOffsetDelta      */ 0, 0, 0, 0,
    /* 27 baseTimestamp 1000   */ 0, 0, 0, 0, 0, 0, 0x03, 0xe8,
    /* 35 maxTimestamp 1000    */ 0, 0, 0, 0, 0, 0, 0x03, 0xe8,
    /* 43 producerId -1        */ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    /* 51 producerEpoch -1     */ 0xff, 0xff,
    /* 53 baseSequence -1      */ 0xff, 0xff, 0xff, 0xff,
    /* 57 recordCount 1        */ 0, 0, 0, 1,
    /* 61 record:
     *    length 12 (zz 24)    */ 0x18,
    /*    attributes           */ 0x00,
    /*    timestampDelta 0     */ 0x00,
    /*    offsetDelta 0        */ 0x00,
    /*    keyLength 1 (zz 2)   */ 0x02, 'k',
    /*    valueLength 1        */ 0x02, 'v',
    /*    headerCount 1        */ 0x02,
    /*    headerKeyLength 1    */ 0x02, 'h',
    /*    headerValueLength 1  */ 0x02, 'x',
};

static const log_header_t hand_header = {"h", 1, "x", 1};
static const log_record_t hand_record = {
    .offset = 0, .timestamp = 1000,
    .key = "k", .key_len = 1, .value = "v", .value_len = 1,
    .headers = &hand_header, .header_count = 1,
};

static void test_encode_matches_hand_built(void **state) {
  (void)state;
  assert_int_equal(log__batch_encoded_size(&hand_record, 1), sizeof hand_batch);
  uint8_t out[sizeof hand_batch + 8];
  memset(out, 0xAA, sizeof out);
  size_t n = log__batch_encode(out, 0, &hand_record, 1, NULL, 5555);
  assert_int_equal(n, sizeof hand_batch);
  assert_memory_equal(out, hand_batch, sizeof hand_batch);
  assert_int_equal(out[n], 0xAA);
  assert_int_equal(log__be32(out + 17), 0x85D4936Fu);
  assert_int_equal(log__crc32c(0, hand_batch + 21, sizeof hand_batch - 21), 0x85D4936Fu);
  assert_int_equal(log__batch_size(hand_batch), sizeof hand_batch);
}

static void test_hand_built_parses(void **state) {
  (void)state;
  uint8_t *b = dup_bytes(hand_batch, sizeof hand_batch);
  log_error_t err = {0};
  assert_int_equal(log__batch_validate(b, sizeof hand_batch, &err), 0);

  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(b, sizeof hand_batch, &h), 0);
  assert_true(h.base_offset == 0);
  assert_int_equal(h.batch_length, 62);
  assert_int_equal(h.leader_epoch, 0);
  assert_int_equal(h.magic, 2);
  assert_int_equal(h.crc, 0x85D4936Fu);
  assert_int_equal(h.attributes, 0);
  assert_int_equal(h.last_offset_delta, 0);
  assert_true(h.base_timestamp == 1000 && h.max_timestamp == 1000);
  assert_true(h.producer_id == -1);
  assert_int_equal(h.producer_epoch, -1);
  assert_int_equal(h.base_sequence, -1);
  assert_int_equal(h.record_count, 1);

  log__record_iter_t it;
  log_record_t r;
  assert_int_equal(log__record_iter_init(&it, b, sizeof hand_batch), 0);
  assert_int_equal(log__record_iter_next(&it, &r), 1);
  assert_true(r.offset == 0 && r.timestamp == 1000);
  assert_int_equal(r.key_len, 1);
  assert_memory_equal(r.key, "k", 1);
  assert_int_equal(r.value_len, 1);
  assert_memory_equal(r.value, "v", 1);
  assert_int_equal(r.header_count, 1);
  assert_int_equal(r.headers[0].key_len, 1);
  assert_memory_equal(r.headers[0].key, "h", 1);
  assert_int_equal(r.headers[0].value_len, 1);
  assert_memory_equal(r.headers[0].value, "x", 1);
  assert_int_equal(log__record_iter_next(&it, &r), 0);
  assert_int_equal(log__record_iter_next(&it, &r), 0); /* stays at the end */
  log__record_iter_close(&it);
  free(b);
}

/* ---- round trips ------------------------------------------------------- */

enum { NREC = 500, MAXH = 5 };

/* Records 0..NREC-1 with every combination of null/empty/present key and
 * value, 0..4 headers (some with null values), and timestamps that go
 * both below and above the first one (negative deltas). */
static void make_records(log_record_t *recs, log_header_t (*hdrs)[MAXH],
                         char (*keys)[32], char (*vals)[64]) {
  for (int i = 0; i < NREC; i++) {
    log_record_t *r = &recs[i];
    memset(r, 0, sizeof *r);
    r->timestamp = 1700000000000LL + (i % 7 == 3 ? -5000 : i * 13);
    int kl = snprintf(keys[i], 32, "key-%d", i);
    int vl = snprintf(vals[i], 64, "value-%d-%.*s", i, i % 40, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    switch (i % 3) {
    case 0: r->key = NULL; r->key_len = -1; break;
    case 1: r->key = keys[i]; r->key_len = kl; break;
    default: r->key = ""; r->key_len = 0; break;
    }
    switch (i % 4) {
    case 0: r->value = NULL; r->value_len = -1; break;
    case 3: r->value = ""; r->value_len = 0; break;
    default: r->value = vals[i]; r->value_len = vl; break;
    }
    int hc = i % 5;
    for (int j = 0; j < hc; j++) {
      log_header_t *h = &hdrs[i][j];
      h->key = j % 2 ? "trace-id" : "h";
      h->key_len = (int32_t)strlen(h->key);
      if ((i + j) % 3 == 0) {
        h->value = NULL;
        h->value_len = -1;
      } else {
        h->value = vals[i];
        h->value_len = j;
      }
    }
    r->headers = hc ? hdrs[i] : NULL;
    r->header_count = hc;
  }
}

static void check_record(const log_record_t *want, const log_record_t *got) {
  assert_true(got->timestamp == want->timestamp);
  assert_int_equal(got->key_len, want->key_len);
  if (want->key_len < 0)
    assert_null(got->key);
  else
    assert_memory_equal(got->key, want->key, (size_t)want->key_len);
  assert_int_equal(got->value_len, want->value_len);
  if (want->value_len < 0)
    assert_null(got->value);
  else
    assert_memory_equal(got->value, want->value, (size_t)want->value_len);
  assert_int_equal(got->header_count, want->header_count);
  for (int j = 0; j < want->header_count; j++) {
    const log_header_t *a = &want->headers[j], *b = &got->headers[j];
    assert_int_equal(b->key_len, a->key_len);
    assert_memory_equal(b->key, a->key, (size_t)a->key_len);
    assert_int_equal(b->value_len, a->value_len);
    if (a->value_len < 0)
      assert_null(b->value);
    else
      assert_memory_equal(b->value, a->value, (size_t)a->value_len);
  }
}

static void test_round_trip_many(void **state) {
  (void)state;
  static log_record_t recs[NREC];
  static log_header_t hdrs[NREC][MAXH];
  static char keys[NREC][32], vals[NREC][64];
  make_records(recs, hdrs, keys, vals);

  const int64_t base = 123456789;
  size_t want = log__batch_encoded_size(recs, NREC);
  assert_int_equal(want, log__batch_encoded_size_exact(recs, NREC, base, NULL, 0));
  size_t size;
  uint8_t *b = encode_alloc(recs, NREC, base, NULL, 0, &size);
  assert_int_equal(size, want);

  log_error_t err = {0};
  assert_int_equal(log__batch_validate(b, size, &err), 0);

  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(b, size, &h), 0);
  assert_int_equal(h.record_count, NREC);
  assert_int_equal(h.last_offset_delta, NREC - 1);
  assert_true(h.base_timestamp == recs[0].timestamp);
  int64_t max_ts = INT64_MIN;
  for (int i = 0; i < NREC; i++)
    if (recs[i].timestamp > max_ts)
      max_ts = recs[i].timestamp;
  assert_true(h.max_timestamp == max_ts);

  log__record_iter_t it;
  assert_int_equal(log__record_iter_init(&it, b, size), 0);
  log_record_t r;
  for (int i = 0; i < NREC; i++) {
    assert_int_equal(log__record_iter_next(&it, &r), 1);
    assert_true(r.offset == base + i);
    check_record(&recs[i], &r);
  }
  assert_int_equal(log__record_iter_next(&it, &r), 0);
  log__record_iter_close(&it);
  free(b);
}

/* The iterator's header array grows on demand and is reused. */
static void test_iterator_header_growth(void **state) {
  (void)state;
  log_header_t many[40];
  for (int i = 0; i < 40; i++)
    many[i] = (log_header_t){"k", 1, &"0123456789"[i % 10], 1};
  log_record_t recs[4] = {
      {.timestamp = 1, .value = "a", .value_len = 1, .headers = many, .header_count = 1},
      {.timestamp = 1, .value = "b", .value_len = 1, .headers = many, .header_count = 40},
      {.timestamp = 1, .value = "c", .value_len = 1, .headers = many, .header_count = 3},
      {.timestamp = 1, .value = "d", .value_len = 1},
  };
  size_t size;
  uint8_t *b = encode_alloc(recs, 4, 0, NULL, 0, &size);
  log__record_iter_t it;
  log_record_t r;
  assert_int_equal(log__record_iter_init(&it, b, size), 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(log__record_iter_next(&it, &r), 1);
    recs[i].key_len = -1; /* NULL key means null on encode */
    check_record(&recs[i], &r);
  }
  assert_true(it.headers_cap >= 40);
  assert_null(r.headers);
  log__record_iter_close(&it);
  free(b);
}

static void test_timestamps_now(void **state) {
  (void)state;
  log_record_t recs[3] = {
      {.timestamp = -1, .value = "a", .value_len = 1},
      {.timestamp = -1, .value = "b", .value_len = 1},
      {.timestamp = -1, .value = "c", .value_len = 1},
  };
  const int64_t now = 1700000000000LL;
  size_t size;
  /* All "now": the size without now_ms is exact. */
  assert_int_equal(log__batch_encoded_size(recs, 3),
                   log__batch_encoded_size_exact(recs, 3, 0, NULL, now));
  uint8_t *b = encode_alloc(recs, 3, 0, NULL, now, &size);
  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(b, size, &h), 0);
  assert_true(h.base_timestamp == now && h.max_timestamp == now);
  free(b);

  /* Mixed: an upper bound, and the encoding is still exact and valid. */
  recs[1].timestamp = 5;
  size_t bound = log__batch_encoded_size(recs, 3);
  b = encode_alloc(recs, 3, 0, NULL, now, &size);
  assert_true(size <= bound);
  assert_int_equal(log__batch_validate(b, size, NULL), 0);
  assert_int_equal(log__batch_header_parse(b, size, &h), 0);
  assert_true(h.base_timestamp == now && h.max_timestamp == now);
  log__record_iter_t it;
  log_record_t r;
  assert_int_equal(log__record_iter_init(&it, b, size), 0);
  assert_int_equal(log__record_iter_next(&it, &r), 1);
  assert_true(r.timestamp == now);
  assert_int_equal(log__record_iter_next(&it, &r), 1);
  assert_true(r.timestamp == 5);
  log__record_iter_close(&it);
  free(b);
}

/* Compaction rewrites: offsets with gaps. */
static void test_offsets_with_gaps(void **state) {
  (void)state;
  log_record_t recs[3] = {
      {.timestamp = 10, .key = "a", .key_len = 1, .value = "1", .value_len = 1},
      {.timestamp = 20, .key = "b", .key_len = 1, .value = "2", .value_len = 1},
      {.timestamp = 30, .key = "c", .key_len = 1, .value = NULL, .value_len = -1},
  };
  const int64_t offsets[3] = {1000, 1070, 100000};
  size_t size;
  uint8_t *b = encode_alloc(recs, 3, 1000, offsets, 0, &size);
  assert_true(size > log__batch_encoded_size(recs, 3)); /* longer deltas */
  assert_int_equal(log__batch_validate(b, size, NULL), 0);
  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(b, size, &h), 0);
  assert_int_equal(h.last_offset_delta, 99000);
  log__record_iter_t it;
  log_record_t r;
  assert_int_equal(log__record_iter_init(&it, b, size), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(log__record_iter_next(&it, &r), 1);
    assert_true(r.offset == offsets[i]);
  }
  assert_int_equal(log__record_iter_next(&it, &r), 0);
  log__record_iter_close(&it);

  /* baseOffset is outside the CRC: moving the batch keeps it valid. */
  log__batch_set_base_offset(b, 5000);
  assert_int_equal(log__batch_validate(b, size, NULL), 0);
  assert_int_equal(log__record_iter_init(&it, b, size), 0);
  assert_int_equal(log__record_iter_next(&it, &r), 1);
  assert_true(r.offset == 5000);
  log__record_iter_close(&it);
  free(b);
}

/* ---- validation failures ----------------------------------------------- */

static void expect_invalid(const uint8_t *bytes, size_t size, int code, const char *needle) {
  uint8_t *b = dup_bytes(bytes, size); /* exact size: ASan sees overreads */
  log_error_t err = {0};
  int rc = log__batch_validate(b, size, &err);
  if (rc != code)
    fail_msg("validate returned %d (%s), expected %d", rc, err.msg, code);
  assert_int_equal(err.code, code);
  if (needle != NULL && strstr(err.msg, needle) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
  free(b);
}

static void test_validate_flipped_bits(void **state) {
  (void)state;
  /* Every bit from the CRC to the end is protected. */
  for (size_t i = 17; i < sizeof hand_batch; i++)
    for (int bit = 0; bit < 8; bit++) {
      uint8_t b[sizeof hand_batch];
      memcpy(b, hand_batch, sizeof b);
      b[i] ^= (uint8_t)(1u << bit);
      expect_invalid(b, sizeof b, LOG_E_CORRUPT, "CRC mismatch");
    }
}

static void test_validate_bad_magic(void **state) {
  (void)state;
  uint8_t b[sizeof hand_batch];
  memcpy(b, hand_batch, sizeof b);
  b[16] = 1;
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "magic");
  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(b, sizeof b, &h), LOG_E_CORRUPT);
  b[16] = 3;
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "magic");
}

static void test_validate_truncated(void **state) {
  (void)state;
  for (size_t len = 0; len < sizeof hand_batch; len++)
    expect_invalid(hand_batch, len, LOG_E_CORRUPT, "truncated");
  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(hand_batch, 60, &h), LOG_E_CORRUPT);

  /* batchLength below the header, or negative. */
  uint8_t b[sizeof hand_batch];
  memcpy(b, hand_batch, sizeof b);
  log__put_be32(b + 8, 48);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "batchLength");
  log__put_be32(b + 8, 0xffffffffu);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "batchLength");
  /* batchLength shorter than the records (CRC recomputed over it). */
  log__put_be32(b + 8, 62 - 2);
  fix_crc(b, sizeof b - 2);
  expect_invalid(b, sizeof b - 2, LOG_E_CORRUPT, "record 0");
}

static void test_validate_codecs(void **state) {
  (void)state;
  static const char *names[] = {NULL, "gzip", "snappy", "lz4", "zstd"};
  uint8_t b[sizeof hand_batch];
  for (int codec = 1; codec <= 7; codec++) {
    memcpy(b, hand_batch, sizeof b);
    b[22] = (uint8_t)codec;
    fix_crc(b, sizeof b);
    if (codec <= 4) {
      expect_invalid(b, sizeof b, LOG_E_UNSUPPORTED_CODEC, names[codec]);
      log__record_iter_t it;
      assert_int_equal(log__record_iter_init(&it, b, sizeof b), LOG_E_UNSUPPORTED_CODEC);
      log__record_iter_close(&it);
    } else {
      expect_invalid(b, sizeof b, LOG_E_CORRUPT, "codec");
    }
  }
  /* Control and transactional batches pass. */
  memcpy(b, hand_batch, sizeof b);
  b[22] = 0x20 | 0x10;
  fix_crc(b, sizeof b);
  assert_int_equal(log__batch_validate(b, sizeof b, NULL), 0);
}

static void test_validate_record_count(void **state) {
  (void)state;
  uint8_t b[sizeof hand_batch];
  memcpy(b, hand_batch, sizeof b);
  log__put_be32(b + 57, 2); /* claims 2, holds 1 */
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "record count 2");

  log__put_be32(b + 57, 0); /* claims 0, holds 1 */
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "follow the last record");

  log__put_be32(b + 57, 0xffffffffu);
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "record count");

  log_error_t err;
  assert_int_equal(log__batch_validate(b, sizeof b, NULL), LOG_E_CORRUPT); /* err optional */
  (void)err;
}

static void test_validate_offset_deltas(void **state) {
  (void)state;
  log_record_t recs[2] = {
      {.timestamp = 1, .value = "a", .value_len = 1},
      {.timestamp = 1, .value = "b", .value_len = 1},
  };
  size_t size;
  uint8_t *b = encode_alloc(recs, 2, 0, NULL, 0, &size);
  /* Record 1 starts after the header and record 0 (length byte + body);
   * its offsetDelta is at +3 (length, attributes, timestampDelta). */
  size_t r1 = LOG__BATCH_HEADER_SIZE + 1 + b[LOG__BATCH_HEADER_SIZE] / 2;
  assert_int_equal(b[r1 + 3], 0x02); /* zz(1) */
  b[r1 + 3] = 0x00;                  /* same delta as record 0 */
  fix_crc(b, size);
  expect_invalid(b, size, LOG_E_CORRUPT, "offsetDelta");

  b[r1 + 3] = 0x02;
  log__put_be32(b + 23, 0); /* lastOffsetDelta below record 1's delta */
  fix_crc(b, size);
  expect_invalid(b, size, LOG_E_CORRUPT, "offsetDelta");

  log__put_be32(b + 23, 1);
  fix_crc(b, size);
  assert_int_equal(log__batch_validate(b, size, NULL), 0);
  log__put_be64(b, (uint64_t)-5); /* negative baseOffset */
  expect_invalid(b, size, LOG_E_CORRUPT, "baseOffset");
  log__put_be64(b, (uint64_t)INT64_MAX); /* base + lastOffsetDelta overflows */
  expect_invalid(b, size, LOG_E_CORRUPT, "lastOffsetDelta");
  free(b);
}

static void test_validate_record_framing(void **state) {
  (void)state;
  uint8_t b[sizeof hand_batch];
  /* Record length one more than the record has. */
  memcpy(b, hand_batch, sizeof b);
  b[61] = 0x1a; /* 13 */
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "record 0");
  /* Key length -2. */
  memcpy(b, hand_batch, sizeof b);
  b[65] = 0x03;
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "key length");
  /* Header key length -1 (null header keys do not exist). */
  memcpy(b, hand_batch, sizeof b);
  b[70] = 0x01;
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "header key length");
  /* Header count huge. */
  memcpy(b, hand_batch, sizeof b);
  b[69] = 0x7e; /* 63 headers in 4 bytes */
  fix_crc(b, sizeof b);
  expect_invalid(b, sizeof b, LOG_E_CORRUPT, "header count");
}

/* ---- garbage ----------------------------------------------------------- */

/* Runs validate and the iterator over b (malloc'd, exactly size bytes).
 * Whatever the bytes, nothing may read outside them; when validate
 * accepts, the iterator must return exactly recordCount records. */
static void poke(const uint8_t *bytes, size_t size) {
  uint8_t *b = dup_bytes(bytes, size);
  log_error_t err;
  int vrc = log__batch_validate(b, size, &err);
  assert_true(vrc == 0 || vrc == LOG_E_CORRUPT || vrc == LOG_E_UNSUPPORTED_CODEC);

  log__record_iter_t it;
  int rc = log__record_iter_init(&it, b, size);
  if (rc == 0) {
    log_record_t r;
    int32_t n = 0;
    while ((rc = log__record_iter_next(&it, &r)) == 1) {
      n++;
      if (r.key_len > 0)
        assert_true((const uint8_t *)r.key >= b &&
                    (const uint8_t *)r.key + r.key_len <= b + size);
      if (r.value_len > 0)
        assert_true((const uint8_t *)r.value >= b &&
                    (const uint8_t *)r.value + r.value_len <= b + size);
    }
    assert_true(rc == 0 || rc == LOG_E_CORRUPT);
    if (vrc == 0) {
      assert_int_equal(rc, 0);
      assert_int_equal(n, it.h.record_count);
    }
  }
  log__record_iter_close(&it);
  free(b);
}

static void test_garbage_after_valid_header(void **state) {
  (void)state;
  srand(7);
  uint8_t b[61 + 512];
  for (int round = 0; round < 20000; round++) {
    size_t body = (size_t)rand() % 512;
    size_t size = 61 + body;
    memcpy(b, hand_batch, 61);
    log__put_be32(b + 8, (uint32_t)(size - 12));
    log__put_be32(b + 57, (uint32_t)(rand() % 8));
    for (size_t i = 61; i < size; i++) {
      /* Bias towards small varints and continuation bytes. */
      int k = rand() % 4;
      b[i] = (uint8_t)(k == 0 ? rand() : k == 1 ? rand() % 16 : k == 2 ? 0x80 | rand() : 0x02);
    }
    fix_crc(b, size);
    poke(b, size);
  }
}

static void test_mutated_valid_batches(void **state) {
  (void)state;
  static log_record_t recs[NREC];
  static log_header_t hdrs[NREC][MAXH];
  static char keys[NREC][32], vals[NREC][64];
  make_records(recs, hdrs, keys, vals);
  size_t size;
  uint8_t *good = encode_alloc(recs, 20, 0, NULL, 0, &size);
  uint8_t *b = malloc(size);
  assert_non_null(b);
  srand(99);
  for (int round = 0; round < 20000; round++) {
    memcpy(b, good, size);
    int flips = 1 + rand() % 4;
    for (int k = 0; k < flips; k++) {
      size_t at = 21 + (size_t)rand() % (size - 21);
      b[at] = (uint8_t)rand();
    }
    if (rand() % 4)
      fix_crc(b, size); /* usually: reach the framing checks */
    size_t len = rand() % 8 == 0 ? (size_t)rand() % size : size;
    if (len >= 12 && len < size)
      log__put_be32(b + 8, (uint32_t)(len - 12));
    poke(b, len);
  }
  free(b);
  free(good);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_matches_hand_built),
      cmocka_unit_test(test_hand_built_parses),
      cmocka_unit_test(test_round_trip_many),
      cmocka_unit_test(test_iterator_header_growth),
      cmocka_unit_test(test_timestamps_now),
      cmocka_unit_test(test_offsets_with_gaps),
      cmocka_unit_test(test_validate_flipped_bits),
      cmocka_unit_test(test_validate_bad_magic),
      cmocka_unit_test(test_validate_truncated),
      cmocka_unit_test(test_validate_codecs),
      cmocka_unit_test(test_validate_record_count),
      cmocka_unit_test(test_validate_offset_deltas),
      cmocka_unit_test(test_validate_record_framing),
      cmocka_unit_test(test_garbage_after_valid_header),
      cmocka_unit_test(test_mutated_valid_batches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
