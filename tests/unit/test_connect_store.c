/*
 * test_connect_store.c: the connector framework's internal-topic formats
 * (runtime/connect_store.c, connect_offsets.c) and its converters and
 * common-key validation (connect_config.c): the exact bytes of Kafka
 * Connect's config/status/offset records, reading the config topic back
 * (later records win, tombstones delete, a target state written before its
 * config), offsets and markers surviving a reopen of the log, resets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connect_int.h"
#include "log_test_util.h"

static void test_config_and_status_values(void **state) {
  (void)state;
  conn_config_t cfg;
  conn_config_init(&cfg);
  conn_config_set(&cfg, "connector.class", "file-source");
  conn_config_set(&cfg, "tasks.max", "1");
  size_t len = 0;
  char *v = connect_store_config_value(&cfg, &len);
  assert_string_equal(v, "{\"properties\":{\"connector.class\":\"file-source\",\"tasks.max\":\"1\"}}");
  assert_int_equal(len, strlen(v));
  free(v);
  conn_config_free(&cfg);

  v = connect_store_target_value(CONNECT_TARGET_STOPPED, &len);
  assert_string_equal(v, "{\"state\":\"PAUSED\",\"state.v2\":\"STOPPED\"}");
  connect_target_t t;
  assert_int_equal(connect_store_target_parse(v, len, &t), 0);
  assert_int_equal(t, CONNECT_TARGET_STOPPED);
  free(v);
  v = connect_store_target_value(CONNECT_TARGET_STARTED, &len);
  assert_string_equal(v, "{\"state\":\"STARTED\",\"state.v2\":\"STARTED\"}");
  free(v);
  /* An older writer's value (no state.v2) still reads. */
  assert_int_equal(connect_store_target_parse("{\"state\":\"PAUSED\"}", 18, &t), 0);
  assert_int_equal(t, CONNECT_TARGET_PAUSED);
  assert_int_equal(connect_store_target_parse("{\"state\":\"WHAT\"}", 16, &t), -1);
  assert_int_equal(connect_store_target_parse("nope", 4, &t), -1);

  v = connect_store_status_value(CONNECT_FAILED, "boom", "127.0.0.1:8083", 3, &len);
  assert_string_equal(v, "{\"state\":\"FAILED\",\"trace\":\"boom\",\"worker_id\":\"127.0.0.1:8083\","
                         "\"generation\":3}");
  free(v);
  v = connect_store_status_value(CONNECT_RUNNING, NULL, "w:1", 0, &len);
  assert_string_equal(v, "{\"state\":\"RUNNING\",\"trace\":null,\"worker_id\":\"w:1\",\"generation\":0}");
  free(v);
}

static void apply(connect_stored_t **items, size_t *n, const char *key, const char *value) {
  assert_int_equal(connect_store_apply(items, n, key, strlen(key), value,
                                       value ? (int32_t)strlen(value) : -1),
                   0);
}

static void test_config_replay(void **state) {
  (void)state;
  connect_stored_t *items = NULL;
  size_t n = 0;
  apply(&items, &n, "connector-a", "{\"properties\":{\"connector.class\":\"x\",\"k\":\"1\"}}");
  apply(&items, &n, "target-state-b", "{\"state\":\"PAUSED\",\"state.v2\":\"STOPPED\"}");
  apply(&items, &n, "connector-b", "{\"properties\":{\"connector.class\":\"y\"}}");
  apply(&items, &n, "task-a-0", "{\"properties\":{}}"); /* Kafka's: ignored */
  apply(&items, &n, "commit-a", "{\"tasks\":1}");
  apply(&items, &n, "connector-a", "{\"properties\":{\"connector.class\":\"x\",\"k\":\"2\"}}");
  apply(&items, &n, "target-state-a", "{\"state\":\"PAUSED\",\"state.v2\":\"PAUSED\"}");
  apply(&items, &n, "connector-c", "{\"properties\":{\"connector.class\":\"z\"}}");
  apply(&items, &n, "connector-c", NULL); /* deleted */
  apply(&items, &n, "connector-d", "not json"); /* unreadable: skipped */
  assert_int_equal(n, 2);
  assert_string_equal(items[0].name, "a");
  assert_string_equal(conn_config_get(&items[0].config, "k"), "2");
  assert_int_equal(items[0].target, CONNECT_TARGET_PAUSED);
  assert_string_equal(items[1].name, "b");
  assert_string_equal(conn_config_get(&items[1].config, "connector.class"), "y");
  assert_int_equal(items[1].target, CONNECT_TARGET_STOPPED);
  /* A target state whose config never came stays without properties. */
  apply(&items, &n, "target-state-e", "{\"state\":\"STARTED\"}");
  assert_int_equal(n, 3);
  assert_int_equal(items[2].config.count, 0);
  connect_stored_free(items, n);
}

static void test_offset_keys_and_headers(void **state) {
  (void)state;
  char *k = connect_offsets_key("src", "{ \"filename\" : \"/a.txt\" }");
  assert_string_equal(k, "[\"src\",{\"filename\":\"/a.txt\"}]");
  char *conn, *part;
  assert_int_equal(connect_offsets_key_parse(k, strlen(k), &conn, &part), 0);
  assert_string_equal(conn, "src");
  assert_string_equal(part, "{\"filename\":\"/a.txt\"}");
  free(conn);
  free(part);
  free(k);
  assert_null(connect_offsets_key("src", "[1]"));
  assert_null(connect_offsets_key("src", "nope"));
  assert_int_equal(connect_offsets_key_parse("[\"a\"]", 5, &conn, &part), -1);
  assert_int_equal(connect_offsets_key_parse("{\"a\":1}", 7, &conn, &part), -1);

  size_t len;
  char *h = connect_offsets_header("a\"b", "{\"f\":1}", "{\"position\":42}", 7, &len);
  assert_string_equal(h, "[\"a\\\"b\",{\"f\":1},{\"position\":42},7]");
  char *off;
  int64_t seq;
  assert_int_equal(connect_offsets_header_parse(h, len, &conn, &part, &off, &seq), 0);
  assert_string_equal(conn, "a\"b");
  assert_string_equal(part, "{\"f\":1}");
  assert_string_equal(off, "{\"position\":42}");
  assert_int_equal(seq, 7);
  free(conn);
  free(part);
  free(off);
  free(h);
  assert_int_equal(connect_offsets_header_parse("[\"a\",{},{}]", 11, &conn, &part, &off, &seq), -1);
}

typedef struct {
  char topics[8][32];
  int32_t parts[8];
  int64_t ends[8];
  int n;
} marks_t;

static void mark_cb(void *arg, const char *topic, int32_t partition, int64_t end) {
  marks_t *m = arg;
  snprintf(m->topics[m->n], sizeof m->topics[0], "%s", topic);
  m->parts[m->n] = partition;
  m->ends[m->n++] = end;
}

static void test_offsets_store(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  connect_offsets_t *o;
  char err[512];
  assert_int_equal(connect_offsets_open(log, "connect-offsets", &o, err, sizeof err), 0);
  connect_offset_t offs[] = {{"{\"filename\":\"/a\"}", "{\"position\":10}"},
                             {"{\"filename\":\"/b\"}", "{\"position\":20}"}};
  assert_int_equal(connect_offsets_put(o, "src", offs, 2, 0, "{\"clicks\":{\"0\":5}}", err,
                                       sizeof err), 0);
  connect_offset_t other = {"{\"filename\":\"/a\"}", "{\"position\":99}"};
  assert_int_equal(connect_offsets_put(o, "other", &other, 1, -1, NULL, err, sizeof err), 0);
  connect_offset_t upd = {"{ \"filename\": \"/a\" }", "{\"position\":11}"};
  assert_int_equal(connect_offsets_put(o, "src", &upd, 1, 1, "{\"clicks\":{\"0\":3,\"1\":8}}",
                                       err, sizeof err), 0);
  connect_offset_t bad = {"[1]", "{}"};
  assert_int_equal(connect_offsets_put(o, "src", &bad, 1, -1, NULL, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "[1]"));
  for (int pass = 0; pass < 2; pass++) {
    char *v = connect_offsets_get(o, "src", "{\"filename\":\"/a\"}");
    assert_string_equal(v, "{\"position\":11}");
    free(v);
    v = connect_offsets_get(o, "other", "{\"filename\":\"/a\"}");
    assert_string_equal(v, "{\"position\":99}");
    free(v);
    assert_null(connect_offsets_get(o, "src", "{\"filename\":\"/c\"}"));
    connect_offset_t *l;
    size_t n;
    assert_int_equal(connect_offsets_list(o, "src", &l, &n), 0);
    assert_int_equal(n, 2); /* markers are not offsets */
    connect_offset_list_free(l, n);
    marks_t m = {0};
    connect_offsets_markers(o, "src", mark_cb, &m);
    assert_int_equal(m.n, 3);
    int64_t sum = 0;
    for (int i = 0; i < m.n; i++) {
      assert_string_equal(m.topics[i], "clicks");
      sum += m.ends[i] * 10 + m.parts[i];
    }
    assert_int_equal(sum, 50 + 30 + 81);
    /* Everything comes back from the topic. */
    connect_offsets_free(o);
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
    assert_int_equal(connect_offsets_open(log, "connect-offsets", &o, err, sizeof err), 0);
  }
  assert_int_equal(connect_offsets_drop_markers(o, "src", err, sizeof err), 0);
  marks_t m = {0};
  connect_offsets_markers(o, "src", mark_cb, &m);
  assert_int_equal(m.n, 0);
  char *v = connect_offsets_get(o, "src", "{\"filename\":\"/b\"}");
  assert_string_equal(v, "{\"position\":20}");
  free(v);
  connect_offset_t del = {"{\"filename\":\"/b\"}", NULL};
  assert_int_equal(connect_offsets_put(o, "src", &del, 1, -1, NULL, err, sizeof err), 0);
  assert_null(connect_offsets_get(o, "src", "{\"filename\":\"/b\"}"));
  assert_int_equal(connect_offsets_reset(o, "src", err, sizeof err), 0);
  for (int pass = 0; pass < 2; pass++) {
    connect_offset_t *l;
    size_t n;
    assert_int_equal(connect_offsets_list(o, "src", &l, &n), 0);
    assert_int_equal(n, 0);
    connect_offset_list_free(l, n);
    v = connect_offsets_get(o, "other", "{\"filename\":\"/a\"}");
    assert_string_equal(v, "{\"position\":99}");
    free(v);
    connect_offsets_free(o);
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
    assert_int_equal(connect_offsets_open(log, "connect-offsets", &o, err, sizeof err), 0);
  }
  /* The internal topics are compacted and always flushed. */
  log_topic_config_t tc;
  assert_int_equal(log_topic_config(log, "connect-offsets", &tc, NULL), 0);
  assert_int_equal(tc.cleanup_policy, LOG_CLEANUP_COMPACT);
  assert_int_equal(tc.flush, LOG_FLUSH_ALWAYS);
  connect_offsets_free(o);
  assert_int_equal(log_close(log), 0);
  scratch_rmrf(dir);
}

static void test_converters(void **state) {
  (void)state;
  connect_conv_t c;
  assert_int_equal(connect_conv_parse("org.apache.kafka.connect.json.JsonConverter", &c), 0);
  assert_int_equal(c, CONNECT_CONV_JSON);
  assert_int_equal(connect_conv_parse("StringConverter", &c), 0);
  assert_int_equal(c, CONNECT_CONV_STRING);
  assert_int_equal(connect_conv_parse("org.apache.kafka.connect.converters.ByteArrayConverter", &c), 0);
  assert_int_equal(c, CONNECT_CONV_BYTES);
  assert_int_equal(connect_conv_parse("io.confluent.connect.avro.AvroConverter", &c), -1);
  char err[512];
  assert_int_equal(connect_conv_check(CONNECT_CONV_JSON, "{\"a\":1}", 7, err, sizeof err), 0);
  assert_int_equal(connect_conv_check(CONNECT_CONV_JSON, NULL, -1, err, sizeof err), 0);
  assert_int_equal(connect_conv_check(CONNECT_CONV_JSON, "hello", 5, err, sizeof err), -1);
  assert_non_null(strstr(err, "Converting byte[] to Kafka Connect data failed"));
  assert_int_equal(connect_conv_check(CONNECT_CONV_STRING, "hello", 5, err, sizeof err), 0);
}

static void test_common_keys(void **state) {
  (void)state;
  conn_config_t cfg;
  conn_config_init(&cfg);
  conn_config_set(&cfg, "name", "n");
  conn_config_set(&cfg, "connector.class", "no-such-plugin");
  conn_config_set(&cfg, "tasks.max", "0");
  conn_config_set(&cfg, "errors.tolerance", "some");
  char err[2048];
  int n = connect_config_check(NULL, NULL, &cfg, NULL, err, sizeof err);
  assert_int_equal(n, 3);
  assert_non_null(strstr(err, "contains the following 3 error(s)"));
  assert_non_null(strstr(err, "tasks.max"));
  assert_non_null(strstr(err, "errors.tolerance"));
  assert_non_null(strstr(err, "connector.class: Failed to find any class"));
  /* The ConfigInfos shape. */
  yajl_gen g = yajl_gen_alloc(NULL);
  connect_config_check(NULL, NULL, &cfg, g, NULL, 0);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  yajl_val v = yajl_tree_parse((const char *)buf, NULL, 0);
  assert_non_null(v);
  const char *pc[] = {"error_count", NULL}, *pg[] = {"groups", NULL}, *pf[] = {"configs", NULL};
  assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(v, pc, yajl_t_number)), 3);
  assert_non_null(yajl_tree_get(v, pg, yajl_t_array));
  yajl_val configs = yajl_tree_get(v, pf, yajl_t_array);
  assert_non_null(configs);
  bool found = false;
  for (size_t i = 0; i < configs->u.array.len; i++) {
    const char *pn[] = {"definition", "name", NULL}, *pe[] = {"value", "errors", NULL};
    yajl_val name = yajl_tree_get(configs->u.array.values[i], pn, yajl_t_string);
    if (!name || strcmp(name->u.string, "tasks.max")) continue;
    yajl_val errs = yajl_tree_get(configs->u.array.values[i], pe, yajl_t_array);
    assert_int_equal(errs->u.array.len, 1);
    found = true;
  }
  assert_true(found);
  yajl_tree_free(v);
  yajl_gen_free(g);
  conn_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_and_status_values),
      cmocka_unit_test(test_config_replay),
      cmocka_unit_test(test_offset_keys_and_headers),
      cmocka_unit_test(test_offsets_store),
      cmocka_unit_test(test_converters),
      cmocka_unit_test(test_common_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
