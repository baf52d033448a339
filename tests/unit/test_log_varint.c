/*
 * test_log_varint.c: zig-zag varints (log/log_varint.c).
 *
 * Expected bytes are written by hand from the spec: zig-zag maps v to
 * (v << 1) ^ (v >> 31), then 7-bit groups go out least significant first,
 * with 0x80 on every byte but the last. E.g. 64 -> 128 -> 0x80 0x01.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log_int.h"

typedef struct {
  int64_t v;
  uint8_t bytes[10];
  size_t n;
} vcase_t;

/* int32 cases: value, bytes, length. */
static const vcase_t int_cases[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {-2, {0x03}, 1},
    {63, {0x7e}, 1},                                /* zz 126 */
    {-64, {0x7f}, 1},                               /* zz 127: last 1-byte */
    {64, {0x80, 0x01}, 2},                          /* zz 128 */
    {-65, {0x81, 0x01}, 2},                         /* zz 129 */
    {150, {0xac, 0x02}, 2},                         /* zz 300 = 0b10_0101100 */
    {8191, {0xfe, 0x7f}, 2},                        /* zz 16382 */
    {8192, {0x80, 0x80, 0x01}, 3},                  /* zz 16384 = 2^14 */
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5}, /* zz 0xFFFFFFFE */
    {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5}, /* zz 0xFFFFFFFF */
};

/* int64 cases. */
static const vcase_t long_cases[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {63, {0x7e}, 1},
    {-64, {0x7f}, 1},
    {64, {0x80, 0x01}, 2},
    {1000, {0xd0, 0x0f}, 2},                        /* zz 2000 = 15*128 + 80 */
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
    {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    {(int64_t)INT32_MAX + 1, {0x80, 0x80, 0x80, 0x80, 0x10}, 5}, /* zz 2^32 */
    {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
};

static void test_varint_known_bytes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof int_cases / sizeof int_cases[0]; i++) {
    const vcase_t *c = &int_cases[i];
    uint8_t buf[16];
    memset(buf, 0xAA, sizeof buf);
    int32_t v = (int32_t)c->v;
    assert_int_equal(log__varint_put(buf, v), c->n);
    assert_memory_equal(buf, c->bytes, c->n);
    assert_int_equal(buf[c->n], 0xAA); /* wrote nothing more */
    assert_int_equal(log__varint_size(v), c->n);
    int32_t got = 12345;
    assert_int_equal(log__varint_get(c->bytes, c->bytes + c->n, &got), c->n);
    assert_int_equal(got, v);
    /* Trailing bytes are left alone. */
    assert_int_equal(log__varint_get(buf, buf + sizeof buf, &got), c->n);
    assert_int_equal(got, v);
  }
}

static void test_varlong_known_bytes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof long_cases / sizeof long_cases[0]; i++) {
    const vcase_t *c = &long_cases[i];
    uint8_t buf[16];
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(log__varlong_put(buf, c->v), c->n);
    assert_memory_equal(buf, c->bytes, c->n);
    assert_int_equal(buf[c->n], 0xAA);
    assert_int_equal(log__varlong_size(c->v), c->n);
    int64_t got = 12345;
    assert_int_equal(log__varlong_get(c->bytes, c->bytes + c->n, &got), c->n);
    assert_true(got == c->v);
  }
}

static void test_truncated(void **state) {
  (void)state;
  int32_t v = 7;
  int64_t l = 7;
  const uint8_t cont[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};

  assert_int_equal(log__varint_get(cont, cont, &v), 0); /* empty */
  assert_int_equal(log__varlong_get(cont, cont, &l), 0);
  for (size_t n = 1; n <= 4; n++)
    assert_int_equal(log__varint_get(cont, cont + n, &v), 0);
  for (size_t n = 1; n <= 9; n++)
    assert_int_equal(log__varlong_get(cont, cont + n, &l), 0);
  /* Every proper prefix of a long encoding is truncated. */
  const vcase_t *max = &long_cases[10];
  for (size_t n = 0; n < max->n; n++)
    assert_int_equal(log__varlong_get(max->bytes, max->bytes + n, &l), 0);
  /* end before p (a caller's arithmetic gone wrong) reads nothing. */
  assert_int_equal(log__varint_get(cont + 2, cont, &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(l, 7);
}

static void test_overlong(void **state) {
  (void)state;
  int32_t v;
  int64_t l;
  /* A continuation bit on the 5th (10th) byte: Kafka rejects it too. */
  const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
  assert_int_equal(log__varint_get(six, six + sizeof six, &v), 0);
  const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                            0x80, 0x80, 0x80, 0x80, 0x00};
  assert_int_equal(log__varlong_get(eleven, eleven + sizeof eleven, &l), 0);
  /* Bits beyond 32 (64) in the last byte: malformed here. */
  const uint8_t big32[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
  assert_int_equal(log__varint_get(big32, big32 + sizeof big32, &v), 0);
  const uint8_t big64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  assert_int_equal(log__varlong_get(big64, big64 + sizeof big64, &l), 0);
  /* A 5-byte varint is still a valid varlong prefix. */
  assert_int_equal(log__varlong_get(big32, big32 + sizeof big32, &l), 5);
  assert_true(l == -4294967296LL); /* zz 2^33 - 1 */
  /* Non-minimal encodings are accepted, as Kafka accepts them. */
  const uint8_t zero2[] = {0x80, 0x00};
  assert_int_equal(log__varint_get(zero2, zero2 + 2, &v), 2);
  assert_int_equal(v, 0);
}

static void test_round_trip_random(void **state) {
  (void)state;
  srand(42);
  for (int i = 0; i < 100000; i++) {
    uint64_t r = (uint64_t)rand() << 40 ^ (uint64_t)rand() << 20 ^ (uint64_t)rand();
    int shift = rand() % 64;
    int64_t l = (int64_t)(r >> shift);
    if (rand() & 1)
      l = -l;
    int32_t v = (int32_t)l;
    uint8_t buf[10];

    size_t n = log__varint_put(buf, v);
    assert_int_equal(n, log__varint_size(v));
    int32_t v2;
    assert_int_equal(log__varint_get(buf, buf + n, &v2), n);
    assert_int_equal(v2, v);

    n = log__varlong_put(buf, l);
    assert_int_equal(n, log__varlong_size(l));
    int64_t l2;
    assert_int_equal(log__varlong_get(buf, buf + n, &l2), n);
    assert_true(l2 == l);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_varint_known_bytes),
      cmocka_unit_test(test_varlong_known_bytes),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_overlong),
      cmocka_unit_test(test_round_trip_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
