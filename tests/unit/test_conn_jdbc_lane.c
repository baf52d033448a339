/* Tests for connectors/conn_jdbc_lane.c, the streamed COPY's fast lane:
 * it takes exactly the records shaped like the open COPY's rows, gives
 * them the values the general parser (conn_jdbc_fields_parse) gives, and
 * its parser, reused from record to record, recovers after every record
 * it does not take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_jdbc_int.h"

static const char *const cols[] = {"id", "page", "ms", "ok", "note"};
#define NCOLS 5

/* The general parser's value, as the COPY text writes it: an int64 as its
 * digits, as the lane keeps them. */
static void assert_same_value(const conn_jdbc_val_t *lane, const conn_jdbc_val_t *gen) {
  char digits[32];
  switch (gen->type) {
  case JDBC_INT:
    assert_int_equal(lane->type, JDBC_NUMERIC);
    snprintf(digits, sizeof digits, "%lld", (long long)gen->i);
    assert_int_equal(lane->len, strlen(digits));
    assert_memory_equal(lane->s, digits, lane->len);
    return;
  case JDBC_TEXT:
  case JDBC_NUMERIC:
    assert_int_equal(lane->type, gen->type);
    assert_int_equal(lane->len, gen->len);
    assert_memory_equal(lane->s, gen->s, gen->len);
    return;
  case JDBC_DOUBLE:
    assert_int_equal(lane->type, JDBC_DOUBLE);
    assert_true(lane->d == gen->d);
    return;
  case JDBC_BOOL:
    assert_int_equal(lane->type, JDBC_BOOL);
    assert_int_equal(lane->i, gen->i);
    return;
  default:
    assert_int_equal(lane->type, gen->type);
  }
}

/* text through the lane: expect 1 (taken, and equal to the general
 * parser's columns) or 0 (left to the general path). */
static void check(conn_jdbc_lane_t **lane, const char *text, int expect) {
  conn_jdbc_val_t vals[NCOLS];
  int rc = conn_jdbc_lane_row(lane, cols, NCOLS, text, strlen(text), vals);
  if (rc != expect) fail_msg("%s: lane gave %d, expected %d", text, rc, expect);
  if (rc != 1) return;
  conn_pool_t pool = {0};
  conn_jdbc_fields_t f;
  char reason[256];
  assert_int_equal(conn_jdbc_fields_parse(&pool, text, strlen(text), &f, reason, sizeof reason), 0);
  assert_int_equal(f.n, NCOLS);
  for (int i = 0; i < NCOLS; i++) {
    assert_string_equal(f.names[i], cols[i]);
    assert_same_value(&vals[i], &f.vals[i]);
  }
  conn_pool_free(&pool);
}

#define FITS "{\"id\":1,\"page\":\"/p/1\",\"ms\":1700000000000,\"ok\":true,\"note\":null}"

static void test_lane_takes_the_shape(void **state) {
  (void)state;
  conn_jdbc_lane_t *lane = NULL;
  check(&lane, FITS, 1);
  check(&lane, " {\"id\":-0, \"page\":\"tab\\there \\u00e9\\\\\", \"ms\":1.5e3,\n"
               "\"ok\":false, \"note\":\"\"}  ", 1);
  check(&lane, "{\"id\":123456789012345678901234567890,\"page\":\"\",\"ms\":0.1,"
               "\"ok\":true,\"note\":1e400}", 1);
  check(&lane, "{\"id\":-9223372036854775808,\"page\":\"x\",\"ms\":-1.25E-2,\"ok\":true,"
               "\"note\":9223372036854775807}", 1);
  conn_jdbc_lane_free(lane);
}

static void test_lane_leaves_the_rest(void **state) {
  (void)state;
  conn_jdbc_lane_t *lane = NULL;
  const char *misfits[] = {
      "{\"page\":\"/p/1\",\"id\":1,\"ms\":1,\"ok\":true,\"note\":null}",  /* order */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true}",                /* one missing */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":null,\"x\":1}", /* one more */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"notes\":null}", /* another name */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"not\":null}",
      "{\"id\":1,\"page\":{\"a\":1},\"ms\":1,\"ok\":true,\"note\":null}", /* nested */
      "{\"id\":1,\"page\":[1],\"ms\":1,\"ok\":true,\"note\":null}",
      "[1,2,3,4,5]",
      "42",
      "\"text\"",
      "null",
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":null",   /* cut off */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":nul}",   /* bad literal */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":null} 7", /* a second value */
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":null}{}",
      "{\"id\":1,\"page\":\"/p/1\",\"ms\":1,\"ok\":true,\"note\":null} x",
      "{\"id\":1,\"page\":\"/p/\\u0000\",\"ms\":1,\"ok\":true,\"note\":null,\"id\\u0000\":1}",
      "",
      "   ",
  };
  for (size_t i = 0; i < sizeof misfits / sizeof *misfits; i++) {
    check(&lane, misfits[i], 0);
    check(&lane, FITS, 1); /* and the next record is read as usual */
  }
  conn_jdbc_lane_free(lane);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lane_takes_the_shape),
      cmocka_unit_test(test_lane_leaves_the_rest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
