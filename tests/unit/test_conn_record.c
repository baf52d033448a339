/* Tests for connectors/conn_record.c (records, headers, batches). The
 * registry is tested with the plugins, in test_conn_file_source.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_int.h"

static void test_record_init_null_and_empty(void **state) {
  (void)state;
  conn_record_t r;
  conn_record_init(&r);
  assert_int_equal(r.partition, -1);
  assert_int_equal(r.offset, -1);
  assert_int_equal(r.timestamp, -1);
  assert_null(r.key);
  assert_int_equal(r.key_len, -1);
  assert_null(r.value);
  assert_int_equal(r.value_len, -1);
  /* Empty is not null. */
  assert_int_equal(conn_record_set_value(&r, "", 0), 0);
  assert_non_null(r.value);
  assert_int_equal(r.value_len, 0);
  /* NULL data sets null whatever len says. */
  assert_int_equal(conn_record_set_value(&r, NULL, 5), 0);
  assert_null(r.value);
  assert_int_equal(r.value_len, -1);
  /* Binary data with a NUL inside is copied whole. */
  assert_int_equal(conn_record_set_key(&r, "a\0b", 3), 0);
  assert_int_equal(r.key_len, 3);
  assert_memory_equal(r.key, "a\0b", 3);
  assert_int_equal(conn_record_set_topic(&r, "clicks"), 0);
  assert_int_equal(conn_record_set_topic(&r, "views"), 0);
  assert_string_equal(r.topic, "views");
  conn_record_clear(&r);
  assert_null(r.topic);
  assert_int_equal(r.key_len, -1);
  conn_record_clear(&r); /* idempotent */
}

static void test_headers_repeat_and_null(void **state) {
  (void)state;
  conn_record_t r;
  conn_record_init(&r);
  assert_null(conn_record_header(&r, "a"));
  assert_int_equal(conn_record_add_header(&r, "a", "1", 1), 0);
  assert_int_equal(conn_record_add_header(&r, "b", NULL, -1), 0);
  assert_int_equal(conn_record_add_header(&r, "a", "22", 2), 0);
  assert_int_equal(r.header_count, 3);
  const conn_header_t *h = conn_record_header(&r, "a");
  assert_non_null(h);
  assert_int_equal(h->value_len, 1); /* the first one */
  assert_memory_equal(h->value, "1", 1);
  h = conn_record_header(&r, "b");
  assert_null(h->value);
  assert_int_equal(h->value_len, -1);
  assert_string_equal(r.headers[2].key, "a");
  assert_memory_equal(r.headers[2].value, "22", 2);
  conn_record_clear(&r);
}

static void test_record_copy_is_deep(void **state) {
  (void)state;
  conn_record_t a, b;
  conn_record_init(&a);
  conn_record_set_topic(&a, "t");
  a.partition = 3;
  a.offset = 99;
  a.timestamp = 1700000000000;
  conn_record_set_key(&a, "k", 1);
  conn_record_set_value(&a, "{\"v\":1}", 7);
  conn_record_add_header(&a, "h", "x", 1);
  a.source_partition = strdup("{\"filename\":\"/a\"}");
  a.source_offset = strdup("{\"position\":12}");
  assert_int_equal(conn_record_copy(&b, &a), 0);
  conn_record_set_value(&a, "zz", 2);
  conn_record_clear(&a);
  assert_string_equal(b.topic, "t");
  assert_int_equal(b.partition, 3);
  assert_int_equal(b.offset, 99);
  assert_int_equal(b.timestamp, 1700000000000);
  assert_int_equal(b.key_len, 1);
  assert_memory_equal(b.value, "{\"v\":1}", 7);
  assert_int_equal(b.value_len, 7);
  assert_int_equal(b.header_count, 1);
  assert_string_equal(b.headers[0].key, "h");
  assert_string_equal(b.source_partition, "{\"filename\":\"/a\"}");
  assert_string_equal(b.source_offset, "{\"position\":12}");
  conn_record_clear(&b);
  /* A tombstone stays a tombstone. */
  conn_record_init(&a);
  conn_record_set_key(&a, "k", 1);
  assert_int_equal(conn_record_copy(&b, &a), 0);
  assert_null(b.value);
  assert_int_equal(b.value_len, -1);
  assert_null(b.topic);
  conn_record_clear(&a);
  conn_record_clear(&b);
}

static void test_batch_grows_clears_and_reuses(void **state) {
  (void)state;
  conn_batch_t b;
  conn_batch_init(&b);
  char v[32];
  for (int i = 0; i < 200; i++) {
    conn_record_t *r = conn_batch_add(&b);
    assert_non_null(r);
    assert_int_equal(r->value_len, -1); /* fresh */
    int n = snprintf(v, sizeof v, "line %d", i);
    conn_record_set_value(r, v, n);
  }
  assert_int_equal(b.count, 200);
  assert_memory_equal(b.records[137].value, "line 137", 8);
  conn_record_t *keep = b.records;
  size_t cap = b.cap;
  conn_batch_clear(&b);
  assert_int_equal(b.count, 0);
  assert_ptr_equal(b.records, keep);
  assert_int_equal(b.cap, cap);
  conn_record_t *r = conn_batch_add(&b);
  assert_null(r->value);
  conn_record_set_value(r, "x", 1);
  conn_batch_free(&b);
  assert_null(b.records);
  assert_int_equal(b.count, 0);
}

/* Lent buffers: clear leaves them (ASan would report a bad free), setters
 * replace them with owned copies, copies own everything, and the batch's
 * memory outlives its records until the batch is cleared. */
static void test_lent_buffers(void **state) {
  (void)state;
  static char topic[] = "lent-topic";
  conn_batch_t b;
  conn_batch_init(&b);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 5000; i++) { /* more than one chunk of batch memory */
      conn_record_t *r = conn_batch_add(&b);
      char v[64];
      int n = snprintf(v, sizeof v, "round %d value %d", round, i);
      r->lent = CONN_LENT_TOPIC | CONN_LENT_VALUE | CONN_LENT_SOURCE_PARTITION |
                CONN_LENT_SOURCE_OFFSET;
      r->topic = topic;
      r->value = conn_batch_copy(&b, v, (size_t)n);
      r->value_len = n;
      r->source_partition = conn_batch_copy(&b, "{\"f\":1}", 7);
      r->source_offset = conn_batch_copy(&b, "{\"p\":2}", 7);
      assert_non_null(r->value);
      assert_int_equal(((char *)r->value)[n], '\0');
    }
    assert_memory_equal(b.records[4321].value, "round", 5);
    conn_record_t copy;
    assert_int_equal(conn_record_copy(&copy, &b.records[7]), 0);
    assert_int_equal(copy.lent, 0);
    assert_true(copy.topic != topic);
    assert_string_equal(copy.topic, "lent-topic");
    conn_record_clear(&copy);
    /* A setter replaces a lent buffer with an owned one. */
    conn_record_t *r = &b.records[0];
    assert_int_equal(conn_record_set_topic(r, "routed"), 0);
    assert_int_equal(conn_record_set_value(r, "new", 3), 0);
    assert_int_equal(r->lent & (CONN_LENT_TOPIC | CONN_LENT_VALUE), 0);
    assert_string_equal(topic, "lent-topic"); /* untouched */
    conn_batch_clear(&b);
  }
  conn_batch_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_record_init_null_and_empty),
      cmocka_unit_test(test_headers_repeat_and_null),
      cmocka_unit_test(test_record_copy_is_deep),
      cmocka_unit_test(test_batch_grows_clears_and_reuses),
      cmocka_unit_test(test_lent_buffers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
