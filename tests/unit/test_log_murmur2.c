/*
 * test_log_murmur2.c: Kafka's murmur2 and the keyed partitioner
 * (log/log_murmur2.c).
 *
 * The hash values are Kafka's own: UtilsTest.testMurmur2 in
 * clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, plus
 * short strings that exercise every tail length (1..5 bytes), as computed
 * by Kafka's Utils.murmur2. If these pass, a key goes to the same partition
 * here as with a Java producer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log_int.h"

static const struct {
  const char *key;
  int32_t hash;
} kafka_cases[] = {
    /* UtilsTest.testMurmur2 */
    {"21", -973932308},
    {"foobar", -790332482},
    {"a-little-bit-long-string", -985981536},
    {"a-little-bit-longer-string", -1486304829},
    {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
    {"abc", 479470107},
    /* tails of 1, 2, 3 bytes, none, and 4 + 1 */
    {"1", -1993445489},
    {"12", 126087238},
    {"123", -267702483},
    {"1234", -1614185708},
    {"12345", -1188365604},
};

static void test_kafka_known_answers(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof kafka_cases / sizeof kafka_cases[0]; i++) {
    const char *k = kafka_cases[i].key;
    assert_int_equal(log__murmur2(k, (int32_t)strlen(k)), kafka_cases[i].hash);
  }
}

/* The tail bytes are taken unsigned (Java's `& 0xff`): a byte >= 0x80 in
 * the tail must not sign-extend into the high bits. */
static void test_high_bytes_in_tail(void **state) {
  (void)state;
  const uint8_t a[] = {0xff, 0xfe, 0xfd};
  const uint8_t b[] = {0x7f, 0xfe, 0xfd};
  assert_int_not_equal(log__murmur2(a, 3), log__murmur2(b, 3));
  /* Hash depends only on the bytes, not on their address or alignment. */
  uint8_t buf[16];
  memcpy(buf + 1, "foobar", 6);
  assert_int_equal(log__murmur2(buf + 1, 6), -790332482);
}

static void test_partition_for_key(void **state) {
  (void)state;
  /* murmur2("foobar") = -790332482; & 0x7fffffff = 1357151166. */
  assert_int_equal(log_partition_for_key("foobar", 6, 10), 1357151166 % 10); /* 6 */
  assert_int_equal(log_partition_for_key("foobar", 6, 16), 14);
  assert_int_equal(log_partition_for_key("foobar", 6, 100), 66);
  /* murmur2("21") = -973932308; & 0x7fffffff = 1173551340. */
  assert_int_equal(log_partition_for_key("21", 2, 16), 1173551340 % 16); /* 12 */
  /* murmur2("abc") = 479470107, already positive. */
  assert_int_equal(log_partition_for_key("abc", 3, 10), 7);
  /* One partition: always 0. */
  assert_int_equal(log_partition_for_key("abc", 3, 1), 0);

  /* Every key lands in range. */
  char key[32];
  for (int i = 0; i < 10000; i++) {
    int n = snprintf(key, sizeof key, "key-%d", i);
    int32_t p = log_partition_for_key(key, n, 7);
    assert_in_range(p, 0, 6);
  }
}

static void test_unkeyed_and_bad_arguments(void **state) {
  (void)state;
  /* NULL key: no keyed partition, the partition layer round-robins. */
  assert_int_equal(log_partition_for_key(NULL, -1, 8), -1);
  assert_int_equal(log_partition_for_key(NULL, 0, 8), -1);
  assert_int_equal(log_partition_for_key("x", -1, 8), -1);
  assert_int_equal(log_partition_for_key("abc", 3, 0), -1);
  /* An empty key is a key. */
  int32_t p = log_partition_for_key("", 0, 8);
  assert_in_range(p, 0, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kafka_known_answers),
      cmocka_unit_test(test_high_bytes_in_tail),
      cmocka_unit_test(test_partition_for_key),
      cmocka_unit_test(test_unkeyed_and_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
