/*
 * log_varint.c: zig-zag varints, as Kafka's ByteUtils.writeVarint /
 * readVarint (int32) and writeVarlong / readVarlong (int64), which record
 * fields of RecordBatch v2 use.
 *
 * Encoding: the signed value v is first zig-zag mapped to an unsigned one,
 * so that small magnitudes of either sign get small codes:
 *
 *     u = (v << 1) ^ (v >> 31)        (>> 63 for int64)
 *     0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, ..., INT32_MIN -> 0xFFFFFFFF
 *
 * then u is written 7 bits at a time, least significant group first; every
 * byte but the last has its high bit (0x80) set. An int32 takes 1..5
 * bytes, an int64 1..10.
 *
 * Decoding accepts what Kafka's readers accept, with one exception: Kafka
 * silently drops the bits of a 5th (10th) byte that do not fit in 32 (64)
 * bits; we call such input malformed, since no writer produces it. A
 * continuation bit on the 5th (10th) byte is malformed in both, as is
 * input that ends in the middle of a varint. Non-minimal encodings (0x80
 * 0x00 for 0) are accepted, as Kafka accepts them.
 */
#include "log_int.h"

static inline uint32_t log__zigzag32(int32_t v) {
  /* Unsigned arithmetic: shifting a negative int left is undefined. */
  return ((uint32_t)v << 1) ^ (0u - ((uint32_t)v >> 31));
}

static inline uint64_t log__zigzag64(int64_t v) {
  return ((uint64_t)v << 1) ^ (0u - ((uint64_t)v >> 63));
}

/* The unsigned base-128 form, shared by both widths: the zig-zag code of
 * an int32 equals that of the same value as an int64, so a varint is also
 * a valid varlong. */
static size_t log__uvarint_put(uint8_t *dst, uint64_t u) {
  size_t n = 0;
  while (u >= 0x80) {
    dst[n++] = (uint8_t)(u | 0x80);
    u >>= 7;
  }
  dst[n++] = (uint8_t)u;
  return n;
}

static size_t log__uvarint_size(uint64_t u) {
  size_t n = 1;
  while (u >= 0x80) {
    u >>= 7;
    n++;
  }
  return n;
}

/* Reads at most max_bytes; the last of them may be at most last_max (no
 * continuation bit, no bits beyond the width). Returns bytes read or 0. */
static size_t log__uvarint_get(const uint8_t *p, const uint8_t *end, size_t max_bytes,
                               uint8_t last_max, uint64_t *out) {
  size_t avail = p < end ? (size_t)(end - p) : 0;
  uint64_t u = 0;
  for (size_t i = 0; i < max_bytes && i < avail; i++) {
    uint8_t b = p[i];
    if (i == max_bytes - 1 && b > last_max)
      return 0;
    u |= (uint64_t)(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *out = u;
      return i + 1;
    }
  }
  return 0; /* truncated */
}

size_t log__varint_put(uint8_t *dst, int32_t v) {
  return log__uvarint_put(dst, log__zigzag32(v));
}

size_t log__varlong_put(uint8_t *dst, int64_t v) {
  return log__uvarint_put(dst, log__zigzag64(v));
}

size_t log__varint_size(int32_t v) {
  return log__uvarint_size(log__zigzag32(v));
}

size_t log__varlong_size(int64_t v) {
  return log__uvarint_size(log__zigzag64(v));
}

size_t log__varint_get(const uint8_t *p, const uint8_t *end, int32_t *v) {
  uint64_t u;
  size_t n = log__uvarint_get(p, end, 5, 0x0f, &u); /* 4*7 + 4 = 32 bits */
  if (n != 0)
    *v = (int32_t)(uint32_t)((u >> 1) ^ (0u - (u & 1)));
  return n;
}

size_t log__varlong_get(const uint8_t *p, const uint8_t *end, int64_t *v) {
  uint64_t u;
  size_t n = log__uvarint_get(p, end, 10, 0x01, &u); /* 9*7 + 1 = 64 bits */
  if (n != 0)
    *v = (int64_t)((u >> 1) ^ (0u - (u & 1)));
  return n;
}
