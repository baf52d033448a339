/*
 * test_log_crc32c.c: CRC-32C (log/log_crc32c.c).
 *
 * Known answers are the standard check values of CRC-32C (RFC 3720,
 * appendix B.4 test vectors); the hardware and table implementations must
 * agree on every length and alignment, since a segment written on one
 * machine is read on another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log_int.h"

static void test_known_answers(void **state) {
  (void)state;
  uint8_t zeros[32], ones[32], inc[32];
  memset(zeros, 0, sizeof zeros);
  memset(ones, 0xff, sizeof ones);
  for (int i = 0; i < 32; i++)
    inc[i] = (uint8_t)i;

  assert_int_equal(log__crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(log__crc32c_sw(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(log__crc32c(0, zeros, 32), 0x8A9136AAu);
  assert_int_equal(log__crc32c_sw(0, zeros, 32), 0x8A9136AAu);
  assert_int_equal(log__crc32c(0, ones, 32), 0x62A8AB43u);
  assert_int_equal(log__crc32c_sw(0, ones, 32), 0x62A8AB43u);
  /* RFC 3720 B.4: 32 bytes incrementing 00..1f. */
  assert_int_equal(log__crc32c(0, inc, 32), 0x46DD794Eu);
  assert_int_equal(log__crc32c_sw(0, inc, 32), 0x46DD794Eu);
}

static void test_empty_is_identity(void **state) {
  (void)state;
  assert_int_equal(log__crc32c(0, NULL, 0), 0);
  assert_int_equal(log__crc32c_sw(0, NULL, 0), 0);
  assert_int_equal(log__crc32c(0xE3069283u, "", 0), 0xE3069283u);
}

static void test_chaining(void **state) {
  (void)state;
  const char *s = "123456789";
  for (size_t cut = 0; cut <= 9; cut++) {
    uint32_t c = log__crc32c(0, s, cut);
    assert_int_equal(log__crc32c(c, s + cut, 9 - cut), 0xE3069283u);
    c = log__crc32c_sw(0, s, cut);
    assert_int_equal(log__crc32c_sw(c, s + cut, 9 - cut), 0xE3069283u);
  }
}

/* Hardware (when the CPU has SSE4.2) against the table, on random bytes at
 * every alignment and on lengths around the 8-byte steps of both. */
static void test_hw_equals_sw(void **state) {
  (void)state;
  enum { MAX = 4096 + 16 };
  uint8_t *buf = malloc(MAX);
  assert_non_null(buf);
  srand(12345);
  for (size_t i = 0; i < MAX; i++)
    buf[i] = (uint8_t)rand();

  for (size_t align = 0; align < 16; align++)
    for (size_t len = 0; len <= 300; len++) {
      uint32_t seed = (uint32_t)rand();
      assert_int_equal(log__crc32c(seed, buf + align, len),
                       log__crc32c_sw(seed, buf + align, len));
    }
  for (int k = 0; k < 200; k++) {
    size_t align = (size_t)rand() % 16, len = (size_t)rand() % 4096;
    assert_int_equal(log__crc32c(0, buf + align, len),
                     log__crc32c_sw(0, buf + align, len));
  }
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answers),
      cmocka_unit_test(test_empty_is_identity),
      cmocka_unit_test(test_chaining),
      cmocka_unit_test(test_hw_equals_sw),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
