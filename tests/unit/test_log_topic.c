/*
 * test_log_topic.c: topics (log/log_topic.c): name validation as Kafka's,
 * config defaults/set/format, create/list/delete, unknown topic and
 * partition, persistence across reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

static void test_name_validation(void **state) {
  (void)state;
  log_error_t err = {0};
  const char *bad[] = {"", ".", "..", "../x", "a/b", "a b", "tö", "x\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(log_topic_name_validate(bad[i], &err), LOG_E_INVALID_TOPIC);
    assert_int_equal(err.code, LOG_E_INVALID_TOPIC);
  }
  assert_int_equal(log_topic_name_validate(NULL, &err), LOG_E_INVALID_TOPIC);
  char name[251];
  memset(name, 'a', 250);
  name[250] = '\0';
  assert_int_equal(log_topic_name_validate(name, &err), LOG_E_INVALID_TOPIC);
  assert_non_null(strstr(err.msg, "250"));
  name[249] = '\0';
  assert_int_equal(log_topic_name_validate(name, &err), 0);
  assert_int_equal(log_topic_name_validate("a.b_c-D9", &err), 0);
  assert_int_equal(log_topic_name_validate("...", &err), 0);
}

static void test_config(void **state) {
  (void)state;
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  assert_int_equal(cfg.retention_ms, 604800000);
  assert_int_equal(cfg.retention_bytes, -1);
  assert_int_equal(cfg.cleanup_policy, LOG_CLEANUP_DELETE);
  assert_int_equal(cfg.segment_bytes, 1073741824);
  assert_int_equal(cfg.segment_ms, 604800000);
  assert_int_equal(cfg.max_message_bytes, 1048588);
  assert_int_equal(cfg.delete_retention_ms, 86400000);
  assert_int_equal(cfg.min_compaction_lag_ms, 0);
  assert_int_equal(cfg.index_interval_bytes, 4096);
  assert_int_equal(cfg.flush, LOG_FLUSH_INTERVAL);
  assert_int_equal(cfg.flush_interval_ms, 1000);
  log_error_t err = {0};
  assert_int_equal(log_topic_config_set(&cfg, "cleanup.policy", "compact,delete", &err), 0);
  assert_int_equal(cfg.cleanup_policy, LOG_CLEANUP_COMPACT | LOG_CLEANUP_DELETE);
  assert_int_equal(log_topic_config_set(&cfg, "log.flush", "always", &err), 0);
  assert_int_equal(cfg.flush, LOG_FLUSH_ALWAYS);
  assert_int_equal(log_topic_config_set(&cfg, "retention.ms", "-1", &err), 0);
  assert_int_equal(log_topic_config_set(&cfg, "segment.bytes", "13", &err),
                   LOG_E_INVALID_CONFIG);
  assert_non_null(strstr(err.msg, "segment.bytes"));
  assert_int_equal(log_topic_config_set(&cfg, "segment.bytes", "12x", &err),
                   LOG_E_INVALID_CONFIG);
  assert_int_equal(log_topic_config_set(&cfg, "nope", "1", &err), LOG_E_INVALID_CONFIG);
  assert_non_null(strstr(err.msg, "nope"));
  assert_int_equal(log_topic_config_set(&cfg, "log.flush", "sometimes", &err),
                   LOG_E_INVALID_CONFIG);
  char buf[1024];
  size_t n = log_topic_config_format(&cfg, buf, sizeof buf);
  assert_int_equal(n, strlen(buf));
  assert_non_null(strstr(buf, "cleanup.policy=compact,delete\n"));
  assert_non_null(strstr(buf, "retention.ms=-1\n"));
  assert_non_null(strstr(buf, "log.flush=always\n"));
  char small[10];
  assert_int_equal(log_topic_config_format(&cfg, small, sizeof small), n);
  assert_int_equal(strlen(small), 9);
  /* Round trip through the file parser. */
  char text[1100];
  snprintf(text, sizeof text, "partitions=3\n%s", buf);
  log_topic_config_t back;
  log_topic_config_defaults(&back);
  int32_t parts;
  assert_int_equal(log__topic_config_parse(text, "x", &back, &parts, &err), 0);
  assert_int_equal(parts, 3);
  assert_memory_equal(&back, &cfg, sizeof cfg);
}

static void test_create_list_delete(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  log_error_t err = {0};
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  cfg.retention_ms = 1234;
  assert_int_equal(log_topic_create(log, "b", 3, &cfg, &err), 0);
  assert_int_equal(log_topic_create(log, "a", 1, NULL, &err), 0);
  assert_int_equal(log_topic_create(log, "a", 1, NULL, &err), LOG_E_TOPIC_EXISTS);
  assert_int_equal(log_topic_create(log, "../x", 1, NULL, &err), LOG_E_INVALID_TOPIC);
  assert_int_equal(log_topic_create(log, "..", 1, NULL, &err), LOG_E_INVALID_TOPIC);
  assert_int_equal(log_topic_create(log, "c", 0, NULL, &err), LOG_E_INVALID_CONFIG);
  char longname[250];
  memset(longname, 'z', 249);
  longname[249] = '\0';
  assert_int_equal(log_topic_create(log, longname, 1, NULL, &err), 0);
  char **names;
  assert_int_equal(log_topic_list(log, false, &names), 3);
  assert_string_equal(names[0], "a");
  assert_string_equal(names[1], "b");
  assert_string_equal(names[2], longname);
  assert_null(names[3]);
  log_names_free(names);
  assert_int_equal(log_topic_list(log, true, &names), 4);
  assert_string_equal(names[0], "__consumer_offsets");
  log_names_free(names);
  assert_int_equal(log_topic_partitions(log, "b", &err), 3);
  assert_int_equal(log_topic_partitions(log, "nope", &err), LOG_E_UNKNOWN_TOPIC);
  assert_non_null(strstr(err.msg, "nope"));
  log_partition_t *p;
  assert_int_equal(log_partition_get(log, "b", 3, &p, &err), LOG_E_UNKNOWN_PARTITION);
  assert_non_null(strstr(err.msg, "b-3"));
  assert_int_equal(log_partition_get(log, "b", -1, &p, &err), LOG_E_UNKNOWN_PARTITION);
  assert_int_equal(log_partition_get(log, "nope", 0, &p, &err), LOG_E_UNKNOWN_TOPIC);
  assert_int_equal(log_partition_get(log, "b", 2, &p, &err), 0);
  tu_append_range(p, 0, 5, -1);
  tu_append_range(p, 5, 5, -1);
  log_partition_t *lp;
  assert_int_equal(log_partition_get(log, longname, 0, &lp, &err), 0);
  tu_append_range(lp, 0, 2, -1);

  /* Persisted: config, partitions, data. */
  assert_int_equal(log_close(log), 0);
  log = tu_open(dir, NULL);
  log_topic_config_t got;
  assert_int_equal(log_topic_config(log, "b", &got, &err), 0);
  assert_int_equal(got.retention_ms, 1234);
  assert_int_equal(log_topic_partitions(log, "b", &err), 3);
  assert_int_equal(tu_check_range(log, "b", 2, 0, 0), 10);
  assert_int_equal(tu_check_range(log, longname, 0, 0, 0), 2);

  /* Delete: the handle fails afterwards instead of crashing. */
  assert_int_equal(log_partition_get(log, "b", 2, &p, &err), 0);
  assert_int_equal(log_topic_delete(log, "b", &err), 0);
  assert_int_equal(log_topic_delete(log, "b", &err), LOG_E_UNKNOWN_TOPIC);
  assert_int_equal(log_topic_partitions(log, "b", &err), LOG_E_UNKNOWN_TOPIC);
  log_record_t r = {.timestamp = -1, .key_len = -1, .value = "x", .value_len = 1};
  assert_int_equal(log_partition_append(p, &r, 1, NULL, &err), LOG_E_UNKNOWN_TOPIC);
  assert_int_equal(log_partition_wait(p, 100, -1), LOG_E_CLOSED);
  char *pdir = tu_path(dir, "b-2");
  assert_int_equal(tu_file_size(pdir), -1);
  /* Recreated empty. */
  assert_int_equal(log_topic_create(log, "b", 1, NULL, &err), 0);
  assert_int_equal(log_partition_get(log, "b", 0, &p, &err), 0);
  assert_int_equal(log_partition_end_offset(p), 0);
  assert_int_equal(log_close(log), 0);
  log = tu_open(dir, NULL);
  assert_int_equal(log_topic_partitions(log, "b", &err), 1);
  assert_int_equal(log_close(log), 0);
  free(pdir);
  tu_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_validation),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_create_list_delete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
