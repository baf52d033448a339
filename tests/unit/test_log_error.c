/*
 * test_log_error.c: error names, messages and log__errf (log/log_error.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "log_int.h"

static void test_project_codes(void **state) {
  (void)state;
  assert_string_equal(log_err_name(LOG_E_UNKNOWN_TOPIC), "UNKNOWN_TOPIC");
  assert_string_equal(log_strerror(LOG_E_UNKNOWN_TOPIC), "unknown topic");
  assert_string_equal(log_err_name(LOG_E_CORRUPT), "CORRUPT");
  assert_string_equal(log_strerror(LOG_E_UNSUPPORTED_CODEC), "unsupported compression codec");
  assert_string_equal(log_err_name(LOG_E_TIMED_OUT), "TIMED_OUT");
  /* Every code of the map has a name and a message. */
#define CHECK(name, value, msg)                      \
  assert_string_equal(log_err_name(value), #name);   \
  assert_string_equal(log_strerror(value), msg);
  LOG_ERRNO_MAP(CHECK)
#undef CHECK
}

static void test_errno_values(void **state) {
  (void)state;
  assert_string_equal(log_err_name(-ENOENT), "ENOENT");
  assert_string_equal(log_err_name(-ENOSPC), "ENOSPC");
  assert_string_equal(log_strerror(-ENOENT), strerror(ENOENT));
  assert_string_equal(log_err_name(0), "OK");
  /* Unknown values never give NULL. */
  assert_non_null(log_err_name(-999));
  assert_non_null(log_strerror(-999));
  assert_string_equal(log_err_name(-1500), "UNKNOWN");
  assert_string_equal(log_err_name(42), "UNKNOWN");
  assert_non_null(log_strerror(42));
}

static void test_errf(void **state) {
  (void)state;
  log_error_t err = {0};
  assert_int_equal(log__errf(&err, LOG_E_CORRUPT, "clicks-%d: offset %d", 3, 1042),
                   LOG_E_CORRUPT);
  assert_int_equal(err.code, LOG_E_CORRUPT);
  assert_string_equal(err.msg, "clicks-3: offset 1042");
  assert_int_equal(log__errf(NULL, -ENOENT, "x"), -ENOENT);
  /* Long messages are truncated, still NUL-terminated. */
  char big[2000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log__errf(&err, LOG_E_CORRUPT, "%s", big);
  assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_project_codes),
      cmocka_unit_test(test_errno_values),
      cmocka_unit_test(test_errf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
