/* Tests for runtime/config.c and runtime/worker_config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "worker_config.h"

static int parse(worker_config_t *cfg, const char *json, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  assert_int_equal(config_defaults(worker_config_defs, cfg, err, errlen), 0);
  return config_parse_json(worker_config_defs, cfg, "worker.json", json, strlen(json), err,
                           errlen);
}

static void test_defaults_are_valid_and_kafka_like(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(worker_config_load(&cfg, NULL, err, sizeof err), 0);
  assert_string_equal(cfg.listeners, "http://127.0.0.1:8083");
  assert_string_equal(cfg.data_dir, "./data");
  assert_int_equal(cfg.log_segment_bytes, 1073741824);
  assert_int_equal(cfg.log_retention_ms, 604800000);
  assert_int_equal(cfg.log_flush_interval_ms, 1000);
  assert_int_equal(cfg.num_partitions, 1);
  assert_int_equal(cfg.log_flush, 1); /* interval */
  worker_config_free(&cfg);
}

static void test_flat_and_nested_keys(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(parse(&cfg, "{\"log.segment.bytes\": 2097152, \"data.dir\": \"/x\"}", err,
                         sizeof err), 0);
  assert_int_equal(cfg.log_segment_bytes, 2097152);
  assert_string_equal(cfg.data_dir, "/x");
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"log\": {\"segment\": {\"bytes\": \"3145728\"}, "
                               "\"flush\": \"always\"}}", err, sizeof err), 0);
  assert_int_equal(cfg.log_segment_bytes, 3145728);
  assert_int_equal(cfg.log_flush, 0);
  worker_config_free(&cfg);
}

static void test_wrong_type_names_file_key_and_form(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(parse(&cfg, "{\"log.segment.bytes\": \"big\"}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: log.segment.bytes: expected an integer between "
                           "1048576 and 2147483647, "
                           "got \"big\"");
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"log\": {\"segment.bytes\": 10}}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: log.segment.bytes: expected an integer between "
                           "1048576 and 2147483647, "
                           "got 10");
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"num.partitions\": 1.5}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: num.partitions: expected an integer between 1 and "
                           "100000, got 1.5");
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"log.flush\": \"sometimes\"}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: log.flush: expected one of always, interval, never, "
                           "got \"sometimes\"");
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"data.dir\": 7}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: data.dir: expected a string, got 7");
  worker_config_free(&cfg);
}

static void test_unknown_key(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(parse(&cfg, "{\"log\": {\"segement.bytes\": 1}}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: unknown key \"log.segement.bytes\"");
  worker_config_free(&cfg);
}

static void test_syntax_error_has_line_and_column(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(parse(&cfg, "{\n  \"data.dir\": \"x\",\n  oops\n}", err, sizeof err), -1);
  assert_non_null(strstr(err, "worker.json:3:"));
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "{\"data.dir\": \"x\"", err, sizeof err), -1);
  assert_non_null(strstr(err, "worker.json:1:"));
  worker_config_free(&cfg);
  assert_int_equal(parse(&cfg, "[1]", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: expected a JSON object at the top level");
  worker_config_free(&cfg);
}

static void test_listeners(void **state) {
  (void)state;
  worker_listener_t l[4];
  assert_int_equal(worker_listeners_parse("http://127.0.0.1:8083", l, 4), 1);
  assert_string_equal(l[0].host, "127.0.0.1");
  assert_int_equal(l[0].port, 8083);
  assert_int_equal(worker_listeners_parse("http://0.0.0.0:0, http://[::1]:9000", l, 4), 2);
  assert_string_equal(l[1].host, "::1");
  assert_int_equal(l[1].port, 9000);
  assert_int_equal(worker_listeners_parse("https://x:1", l, 4), -1);
  assert_int_equal(worker_listeners_parse("http://x", l, 4), -1);
  assert_int_equal(worker_listeners_parse("http://x:70000", l, 4), -1);
  assert_int_equal(worker_listeners_parse("http://:80", l, 4), -1);

  worker_config_t cfg;
  char err[512];
  assert_int_equal(parse(&cfg, "{\"listeners\": \"localhost\"}", err, sizeof err), -1);
  assert_string_equal(err, "worker.json: listeners: expected a comma-separated list of "
                           "http://HOST:PORT, got \"localhost\"");
  worker_config_free(&cfg);
}

static void test_set_string_override(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(worker_config_load(&cfg, NULL, err, sizeof err), 0);
  assert_int_equal(config_set_string(worker_config_defs, &cfg, "--set", "log.flush.interval.ms",
                                     "250", err, sizeof err), 0);
  assert_int_equal(cfg.log_flush_interval_ms, 250);
  assert_int_equal(config_set_string(worker_config_defs, &cfg, "--set", "nope", "1", err,
                                     sizeof err), -1);
  assert_string_equal(err, "--set: unknown key \"nope\"");
  worker_config_free(&cfg);
}

static void test_missing_file(void **state) {
  (void)state;
  worker_config_t cfg;
  char err[512];
  assert_int_equal(worker_config_load(&cfg, "/nonexistent/worker.json", err, sizeof err), -1);
  assert_string_equal(err, "/nonexistent/worker.json: cannot read: No such file or directory");
}

static void test_docs_list_every_key(void **state) {
  (void)state;
  char *md = config_docs_markdown(worker_config_defs);
  assert_non_null(md);
  for (const config_def_t *d = worker_config_defs; d->key; d++) {
    char needle[256];
    snprintf(needle, sizeof needle, "| `%s` |", d->key);
    assert_non_null(strstr(md, needle));
  }
  free(md);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_are_valid_and_kafka_like),
      cmocka_unit_test(test_flat_and_nested_keys),
      cmocka_unit_test(test_wrong_type_names_file_key_and_form),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_syntax_error_has_line_and_column),
      cmocka_unit_test(test_listeners),
      cmocka_unit_test(test_set_string_override),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_docs_list_every_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
