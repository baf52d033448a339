/* Tests for connectors/conn_file_sink.c, driven through the plugin's
 * callbacks with the test context of conn_test_ctx.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "conn_int.h"
#include "conn_test_ctx.h"
#include "scratch_util.h"

typedef struct {
  char *dir;
  char path[512];
  conn_ctx_t ctx;
  conn_config_t cfg;
  void *task;
  int64_t next_offset;
} fixture_t;

static int setup(void **state) {
  fixture_t *fx = calloc(1, sizeof *fx);
  fx->dir = scratch_mkdtemp("conn-file-sink");
  snprintf(fx->path, sizeof fx->path, "%s/out.txt", fx->dir);
  test_ctx_init(&fx->ctx);
  conn_config_init(&fx->cfg);
  conn_config_set(&fx->cfg, "file", fx->path);
  *state = fx;
  return 0;
}

static void stop_task(fixture_t *fx) {
  if (fx->task)
    conn_file_sink_plugin.stop(fx->task);
  free(fx->task);
  fx->task = NULL;
}

static int teardown(void **state) {
  fixture_t *fx = *state;
  stop_task(fx);
  conn_config_free(&fx->cfg);
  test_ctx_free(&fx->ctx);
  scratch_rmrf(fx->dir);
  free(fx);
  return 0;
}

static void start_task(fixture_t *fx) {
  char err[512] = "";
  if (conn_config_validate(conn_file_sink_plugin.defs, &fx->cfg, NULL, NULL, err, sizeof err))
    fail_msg("invalid config: %s", err);
  fx->task = calloc(1, conn_file_sink_plugin.task_size);
  if (conn_file_sink_plugin.start(fx->task, &fx->ctx, &fx->cfg, err, sizeof err) != CONN_OK)
    fail_msg("start: %s", err);
}

/* Puts records given as "key=value" ("value" alone: null key; "~": a
 * tombstone; "k=~": a tombstone with a key). */
static void put(fixture_t *fx, const char *const *specs, size_t n) {
  conn_batch_t b;
  conn_batch_init(&b);
  for (size_t i = 0; i < n; i++) {
    conn_record_t *r = conn_batch_add(&b);
    conn_record_set_topic(r, "t");
    r->partition = 0;
    r->offset = fx->next_offset++;
    const char *eq = strchr(specs[i], '=');
    const char *v = eq ? eq + 1 : specs[i];
    if (eq)
      conn_record_set_key(r, specs[i], (int32_t)(eq - specs[i]));
    if (strcmp(v, "~") != 0)
      conn_record_set_value(r, v, (int32_t)strlen(v));
  }
  char err[512] = "";
  int rc = conn_file_sink_plugin.put(fx->task, b.records, b.count, err, sizeof err);
  if (rc != CONN_OK)
    fail_msg("put: %s", err);
  conn_batch_free(&b);
}

static void flush(fixture_t *fx) {
  char err[512] = "";
  if (conn_file_sink_plugin.flush(fx->task, err, sizeof err) != CONN_OK)
    fail_msg("flush: %s", err);
}

/* The file's content (static buffer); "" when missing. */
static const char *slurp(const char *path) {
  static char buf[8192];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f)
    return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_string_lines_tombstones_skipped(void **state) {
  fixture_t *fx = *state;
  start_task(fx);
  const char *recs[] = {"one", "k=two", "~", "", "multi\nline"};
  put(fx, recs, 5);
  flush(fx);
  /* Value bytes as they are; the tombstone skipped; an empty value is an
   * empty line. */
  assert_string_equal(slurp(fx->path), "one\ntwo\n\nmulti\nline\n");
  /* Appends to an existing file after a restart, as Kafka. */
  stop_task(fx);
  start_task(fx);
  const char *more[] = {"three"};
  put(fx, more, 1);
  flush(fx);
  assert_string_equal(slurp(fx->path), "one\ntwo\n\nmulti\nline\nthree\n");
}

static void test_string_with_key_and_written_nulls(void **state) {
  fixture_t *fx = *state;
  conn_config_set(&fx->cfg, "include.key", "true");
  conn_config_set(&fx->cfg, "behavior.on.null.values", "write");
  start_task(fx);
  const char *recs[] = {"k1=v1", "novalue-key", "k3=~"};
  put(fx, recs, 3);
  flush(fx);
  assert_string_equal(slurp(fx->path), "k1\tv1\nnull\tnovalue-key\nk3\tnull\n");
}

static void test_json_values_compacted_bad_ones_reported(void **state) {
  fixture_t *fx = *state;
  conn_config_set(&fx->cfg, "format", "json");
  start_task(fx);
  const char *recs[] = {"{\"a\": 1}", "not json", "{\n  \"b\": [1,\n 2]\n}", "42", "~",
                        "\"s\""};
  put(fx, recs, 6);
  flush(fx);
  assert_string_equal(slurp(fx->path), "{\"a\": 1}\n{\"b\":[1,2]}\n42\n\"s\"\n");
  assert_int_equal(fx->ctx.reports, 1);
  assert_string_equal(fx->ctx.last_report,
                      "file sink (format=json): the value of t-0@1 is not JSON");
}

static void test_json_envelope_with_key(void **state) {
  fixture_t *fx = *state;
  conn_config_set(&fx->cfg, "format", "json");
  conn_config_set(&fx->cfg, "include.key", "true");
  start_task(fx);
  const char *recs[] = {"user1={\"n\": 1}", "{\"id\":7}={\"n\": 2}", "{\"n\": 3}", "k=oops"};
  put(fx, recs, 4);
  flush(fx);
  assert_string_equal(slurp(fx->path), "{\"key\":\"user1\",\"value\":{\"n\":1}}\n"
                                       "{\"key\":{\"id\":7},\"value\":{\"n\":2}}\n"
                                       "{\"key\":null,\"value\":{\"n\":3}}\n");
  assert_int_equal(fx->ctx.reports, 1);
}

static void test_flush_policy(void **state) {
  fixture_t *fx = *state;
  conn_config_set(&fx->cfg, "flush.lines", "2"); /* flush.ms 0: no age limit */
  start_task(fx);
  const char *a[] = {"a"};
  const char *b[] = {"b"};
  put(fx, a, 1);
  assert_string_equal(slurp(fx->path), ""); /* one line buffered */
  put(fx, b, 1);
  assert_string_equal(slurp(fx->path), "a\nb\n"); /* flush.lines reached */
  put(fx, a, 1);
  assert_string_equal(slurp(fx->path), "a\nb\n");
  flush(fx); /* the framework's flush writes everything */
  assert_string_equal(slurp(fx->path), "a\nb\na\n");
  stop_task(fx);
  /* Both 0 (the defaults): written at every put. */
  conn_config_set(&fx->cfg, "flush.lines", "0");
  conn_config_set(&fx->cfg, "flush.ms", "0");
  start_task(fx);
  put(fx, b, 1);
  assert_string_equal(slurp(fx->path), "a\nb\na\nb\n");
  /* flush.ms alone: a line older than it is written at the next put. */
  stop_task(fx);
  conn_config_set(&fx->cfg, "flush.ms", "30");
  start_task(fx);
  put(fx, a, 1);
  assert_string_equal(slurp(fx->path), "a\nb\na\nb\n");
  usleep(50000);
  const char *none[] = {"c"};
  put(fx, none, 1);
  assert_string_equal(slurp(fx->path), "a\nb\na\nb\na\nc\n");
}

static void test_rotation_by_size(void **state) {
  fixture_t *fx = *state;
  conn_config_set(&fx->cfg, "file.max.bytes", "10");
  start_task(fx);
  /* 4-byte lines: two per file (8 bytes), a third would make 12. */
  const char *recs[] = {"aaa", "bbb", "ccc", "ddd", "eee"};
  put(fx, recs, 5);
  flush(fx);
  char p1[600], p2[600], p3[600];
  snprintf(p1, sizeof p1, "%s.1", fx->path);
  snprintf(p2, sizeof p2, "%s.2", fx->path);
  snprintf(p3, sizeof p3, "%s.3", fx->path);
  assert_string_equal(slurp(p1), "aaa\nbbb\n");
  assert_string_equal(slurp(p2), "ccc\nddd\n");
  assert_string_equal(slurp(fx->path), "eee\n");
  assert_int_equal(access(p3, F_OK), -1);
  /* A line longer than the limit goes whole into its own file. */
  const char *big[] = {"0123456789abcdef"};
  put(fx, big, 1);
  flush(fx);
  assert_string_equal(slurp(p3), "eee\n");
  assert_string_equal(slurp(fx->path), "0123456789abcdef\n");
  /* After a restart, numbering continues. */
  stop_task(fx);
  start_task(fx);
  const char *next[] = {"fff"};
  put(fx, next, 1);
  flush(fx);
  char p4[600];
  snprintf(p4, sizeof p4, "%s.4", fx->path);
  assert_string_equal(slurp(p4), "0123456789abcdef\n");
  assert_string_equal(slurp(fx->path), "fff\n");
}

static void test_config_validation(void **state) {
  (void)state;
  conn_config_t c;
  conn_config_init(&c);
  char err[512];
  const char *key = NULL;
  const conn_def_t *d = conn_file_sink_plugin.defs;
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 0); /* stdout */
  conn_config_set(&c, "file.max.bytes", "100");
  assert_int_equal(conn_file_sink_plugin.validate(&c, &key, err, sizeof err), -1);
  assert_string_equal(key, "file.max.bytes");
  conn_config_set(&c, "file", "-");
  assert_int_equal(conn_file_sink_plugin.validate(&c, &key, err, sizeof err), -1);
  conn_config_set(&c, "file", "/tmp/x");
  assert_int_equal(conn_file_sink_plugin.validate(&c, &key, err, sizeof err), 0);
  conn_config_set(&c, "behavior.on.null.values", "fail");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 1);
  assert_string_equal(err, "behavior.on.null.values: Invalid value fail for configuration "
                           "behavior.on.null.values: String must be one of: ignore, write");
  conn_config_set(&c, "behavior.on.null.values", "write");
  conn_config_set(&c, "flush.lines", "-1");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 1);
  for (const conn_def_t *x = d; x->name; x++)
    assert_true(x->doc && strlen(x->doc) > 10);
  conn_config_free(&c);
}

static void test_unwritable_file_fails_start_clearly(void **state) {
  fixture_t *fx = *state;
  snprintf(fx->path, sizeof fx->path, "%s/no/such/dir/out.txt", fx->dir);
  conn_config_set(&fx->cfg, "file", fx->path);
  fx->task = calloc(1, conn_file_sink_plugin.task_size);
  char err[512] = "";
  assert_int_equal(conn_file_sink_plugin.start(fx->task, &fx->ctx, &fx->cfg, err, sizeof err),
                   CONN_E_FAIL);
  char want[700];
  snprintf(want, sizeof want, "%s: No such file or directory", fx->path);
  assert_string_equal(err, want);
  free(fx->task);
  fx->task = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_string_lines_tombstones_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_with_key_and_written_nulls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_values_compacted_bad_ones_reported, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_envelope_with_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flush_policy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotation_by_size, setup, teardown),
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test_setup_teardown(test_unwritable_file_fails_start_clearly, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
