/* Tests for the transform chain (connectors/conn_chain.c), the built-in
 * SMTs (conn_transform_field.c, conn_transform_shape.c,
 * conn_transform_route.c), the predicates (conn_predicate.c) and the JSON
 * scope they share (conn_transform_json.c). Outputs are compared byte for
 * byte with what Kafka Connect's schemaless SMTs produce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_transform_int.h"

/* A config from "key=value" strings (split at the first '='). */
static void cfg_of(conn_config_t *c, const char *const *kv) {
  conn_config_init(c);
  for (size_t i = 0; kv[i]; i++) {
    const char *eq = strchr(kv[i], '=');
    assert_non_null(eq);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv[i]), kv[i]);
    assert_int_equal(conn_config_set(c, key, eq + 1), 0);
  }
}

static conn_chain_t *chain_of(const char *const *kv) {
  conn_config_t c;
  cfg_of(&c, kv);
  conn_chain_t *chain = NULL;
  char err[512] = "";
  int rc = conn_chain_new(&c, &chain, err, sizeof err);
  conn_config_free(&c);
  if (rc != 0) fail_msg("conn_chain_new: %s", err);
  return chain;
}

/* Expects conn_chain_new to fail with an error starting with prefix and
 * containing needle. */
static void chain_fails(const char *const *kv, const char *prefix, const char *needle) {
  conn_config_t c;
  cfg_of(&c, kv);
  conn_chain_t *chain = NULL;
  char err[512] = "";
  int rc = conn_chain_new(&c, &chain, err, sizeof err);
  conn_config_free(&c);
  assert_int_equal(rc, -1);
  assert_null(chain);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || (needle && !strstr(err, needle)))
    fail_msg("error '%s' does not start with '%s' / contain '%s'", err, prefix,
             needle ? needle : "");
}

/* A record: key/value NULL for null. */
static void rec_make(conn_record_t *r, const char *topic, int32_t partition, int64_t offset,
                     int64_t ts, const char *key, const char *value) {
  conn_record_init(r);
  assert_int_equal(conn_record_set_topic(r, topic), 0);
  r->partition = partition;
  r->offset = offset;
  r->timestamp = ts;
  assert_int_equal(conn_record_set_key(r, key, key ? (int32_t)strlen(key) : -1), 0);
  assert_int_equal(conn_record_set_value(r, value, value ? (int32_t)strlen(value) : -1), 0);
}

static void assert_bytes(const void *data, int32_t len, const char *expect) {
  if (!expect) {
    if (data) fail_msg("expected null, got '%.*s'", (int)len, (const char *)data);
    assert_int_equal(len, -1);
    return;
  }
  if (!data) fail_msg("expected '%s', got null", expect);
  if ((size_t)len != strlen(expect) || memcmp(data, expect, (size_t)len) != 0)
    fail_msg("expected '%s', got '%.*s'", expect, (int)len, (const char *)data);
}

/* Runs value (and key) through chain; checks the result (1 kept, 0
 * dropped) and the key and value afterwards. */
static void run_kv(conn_chain_t *chain, const char *key, const char *value, int expect_rc,
                   const char *expect_key, const char *expect_value) {
  conn_record_t r;
  rec_make(&r, "clicks", 2, 42, 1700000000000, key, value);
  char err[512] = "";
  int rc = conn_chain_apply(chain, &r, err, sizeof err);
  if (rc != expect_rc) fail_msg("rc %d (expected %d): %s", rc, expect_rc, err);
  if (rc == 1) {
    assert_bytes(r.key, r.key_len, expect_key);
    assert_bytes(r.value, r.value_len, expect_value);
  }
  conn_record_clear(&r);
}

static void run_v(conn_chain_t *chain, const char *value, const char *expect_value) {
  run_kv(chain, NULL, value, 1, NULL, expect_value);
}

/* Expects the chain to fail on rec with an error containing each needle. */
static void apply_fails(conn_chain_t *chain, conn_record_t *r, const char *n1, const char *n2) {
  char err[512] = "";
  assert_int_equal(conn_chain_apply(chain, r, err, sizeof err), -1);
  if (!strstr(err, n1) || (n2 && !strstr(err, n2)))
    fail_msg("error '%s' lacks '%s' or '%s'", err, n1, n2 ? n2 : "");
}

static void value_fails(conn_chain_t *chain, const char *value, const char *n1, const char *n2) {
  conn_record_t r;
  rec_make(&r, "clicks", 2, 42, 1700000000000, NULL, value);
  apply_fails(chain, &r, n1, n2);
  conn_record_clear(&r);
}

/* ---- registry ---------------------------------------------------------------- */

static void test_registry_names_and_aliases(void **state) {
  (void)state;
  const char *names[] = {"InsertField$Key", "InsertField$Value", "ReplaceField$Key",
                         "ReplaceField$Value", "MaskField$Key", "MaskField$Value", "ValueToKey",
                         "HoistField$Key", "HoistField$Value", "ExtractField$Key",
                         "ExtractField$Value", "RegexRouter", "TimestampRouter", "Filter"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const conn_transform_plugin_t *t = conn_transform_find(names[i]);
    assert_non_null(t);
    assert_string_equal(t->name, names[i]);
    char fq[128];
    snprintf(fq, sizeof fq, "org.apache.kafka.connect.transforms.%s", names[i]);
    assert_ptr_equal(conn_transform_find(fq), t);
  }
  size_t n = 0;
  while (conn_transforms()[n]) n++;
  assert_true(n >= 14);
  assert_null(conn_transform_find("Nope"));
  assert_null(conn_transform_find("insertfield$value")); /* names are exact, as class names */
  assert_non_null(conn_predicate_find("TopicNameMatches"));
  assert_ptr_equal(conn_predicate_find("org.apache.kafka.connect.transforms.predicates.HasHeaderKey"),
                   conn_predicate_find("HasHeaderKey"));
  assert_non_null(conn_predicate_find("RecordIsTombstone"));
  assert_null(conn_predicate_find("Nope"));
  /* Registering a second plugin under a taken name is refused. */
  static const conn_transform_plugin_t dup = {.name = "Filter"};
  assert_int_equal(conn_transform_register(&dup), -17 /* EEXIST */);
  assert_int_equal(conn_transform_register(&conn__filter), 0); /* itself: a no-op */
}

/* ---- InsertField ----------------------------------------------------------------- */

static void test_insert_field_value_every_key(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=ins", "transforms.ins.type=org.apache.kafka.connect.transforms.InsertField$Value",
      "transforms.ins.topic.field=t!", "transforms.ins.partition.field=p?",
      "transforms.ins.offset.field=o", "transforms.ins.timestamp.field=ts",
      "transforms.ins.static.field=src", "transforms.ins.static.value=web", NULL});
  run_v(c, "{\"a\":1,\"t\":\"old\"}",
        "{\"a\":1,\"t\":\"clicks\",\"p\":2,\"o\":42,\"ts\":1700000000000,\"src\":\"web\"}");
  /* Tombstones pass unchanged. */
  run_v(c, NULL, NULL);
  value_fails(c, "[1,2]", "InsertField needs a JSON object value, found array", NULL);
  /* Not JSON: the error names the alias, the type and where the record is. */
  value_fails(c, "hello",
              "transform 'ins' (InsertField$Value) failed on record topic=clicks partition=2 "
              "offset=42: value is not JSON",
              NULL);
  /* A source record has no offset: Kafka refuses offset.field there. */
  conn_record_t r;
  rec_make(&r, "clicks", -1, -1, -1, NULL, "{}");
  assert_int_equal(conn_record_set_topic(&r, "clicks"), 0);
  free(r.source_offset);
  r.source_offset = strdup("{\"position\":10}");
  apply_fails(c, &r, "offset.field: offset insertion is only supported for sink connectors",
              "topic=clicks source_offset={\"position\":10}");
  conn_record_clear(&r);
  conn_chain_free(c);

  /* Source record without offset.field: no partition or timestamp known,
   * only topic and the static field are inserted. */
  c = chain_of((const char *const[]){"transforms=ins", "transforms.ins.type=InsertField$Value",
                                      "transforms.ins.topic.field=t",
                                      "transforms.ins.partition.field=p",
                                      "transforms.ins.timestamp.field=ts",
                                      "transforms.ins.static.field=s",
                                      "transforms.ins.static.value=v", NULL});
  rec_make(&r, "logs", -1, -1, -1, NULL, "{\"x\":true}");
  char err[256];
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_bytes(r.value, r.value_len, "{\"x\":true,\"t\":\"logs\",\"s\":\"v\"}");
  conn_record_clear(&r);
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=ins", "transforms.ins.type=InsertField$Value",
                                     "transforms.ins.static.field=s", NULL},
              "transforms.ins.static.value: required", NULL);
}

static void test_insert_field_key(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=k", "transforms.k.type=InsertField$Key", "transforms.k.topic.field=topic", NULL});
  run_kv(c, "{\"id\":1}", "{\"v\":2}", 1, "{\"id\":1,\"topic\":\"clicks\"}", "{\"v\":2}");
  run_kv(c, NULL, "{\"v\":2}", 1, NULL, "{\"v\":2}"); /* null key passes */
  conn_chain_free(c);
}

/* ---- ReplaceField ----------------------------------------------------------------- */

static void test_replace_field(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=r", "transforms.r.type=ReplaceField$Value", "transforms.r.exclude=secret, tmp",
      "transforms.r.renames=a:alpha,b:beta", NULL});
  run_v(c, "{\"a\":1,\"secret\":\"x\",\"b\":[1,{\"c\":null}],\"tmp\":0,\"z\":1.50}",
        "{\"alpha\":1,\"beta\":[1,{\"c\":null}],\"z\":1.50}");
  run_v(c, NULL, NULL);
  value_fails(c, "\"str\"", "ReplaceField needs a JSON object value, found string", NULL);
  conn_chain_free(c);

  /* include keeps only the listed fields; exclude wins over include. */
  c = chain_of((const char *const[]){"transforms=r", "transforms.r.type=ReplaceField$Value",
                                      "transforms.r.include=a,b,c", "transforms.r.exclude=b", NULL});
  run_v(c, "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", "{\"a\":1,\"c\":3}");
  conn_chain_free(c);

  /* The deprecated whitelist/blacklist names, and a rename onto an
   * existing field (the later one wins, as with Kafka's HashMap). */
  c = chain_of((const char *const[]){"transforms=r", "transforms.r.type=ReplaceField$Key",
                                      "transforms.r.whitelist=a,b,x",
                                      "transforms.r.blacklist=x",
                                      "transforms.r.renames=a:b", NULL});
  run_kv(c, "{\"b\":0,\"a\":1,\"x\":9,\"q\":3}", "{}", 1, "{\"b\":1}", "{}");
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=r", "transforms.r.type=ReplaceField$Value",
                                     "transforms.r.renames=a:b:c", NULL},
              "transforms.r.renames: ", "invalid rename mapping 'a:b:c'");
  chain_fails((const char *const[]){"transforms=r", "transforms.r.type=ReplaceField$Value",
                                     "transforms.r.renames=a", NULL},
              "transforms.r.renames: ", NULL);
}

/* ---- ValueToKey ------------------------------------------------------------------- */

static void test_value_to_key(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=v", "transforms.v.type=ValueToKey", "transforms.v.fields=id,missing,obj", NULL});
  run_kv(c, "old", "{\"obj\":{\"n\":[1]},\"id\":7,\"x\":1}", 1,
         "{\"id\":7,\"missing\":null,\"obj\":{\"n\":[1]}}", "{\"obj\":{\"n\":[1]},\"id\":7,\"x\":1}");
  value_fails(c, NULL, "ValueToKey needs a JSON object value, found null", NULL);
  conn_chain_free(c);

  /* topics: only records of those topics get a new key. */
  c = chain_of((const char *const[]){"transforms=v", "transforms.v.type=ValueToKey",
                                      "transforms.v.fields=id", "transforms.v.topics=other,clicks",
                                      NULL});
  run_kv(c, NULL, "{\"id\":1}", 1, "{\"id\":1}", "{\"id\":1}");
  conn_chain_free(c);
  c = chain_of((const char *const[]){"transforms=v", "transforms.v.type=ValueToKey",
                                      "transforms.v.fields=id", "transforms.v.topics=other", NULL});
  run_kv(c, "k", "{\"id\":1}", 1, "k", "{\"id\":1}");
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=v", "transforms.v.type=ValueToKey", NULL},
              "transforms.v.fields: ", "Missing required configuration");
  chain_fails((const char *const[]){"transforms=v", "transforms.v.type=ValueToKey",
                                     "transforms.v.fields= , ", NULL},
              "transforms.v.fields: ", "non-empty list");
}

/* ---- ExtractField ---------------------------------------------------------------- */

static void test_extract_field(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=e", "transforms.e.type=ExtractField$Value", "transforms.e.field=after", NULL});
  run_v(c, "{\"before\":null,\"after\":{\"id\":1,\"s\":\"\\u00e9\"}}", "{\"id\":1,\"s\":\"é\"}");
  run_v(c, "{\"after\":12345678901234567890}", "12345678901234567890"); /* verbatim number */
  run_v(c, "{\"before\":1}", NULL); /* missing: null value */
  run_v(c, "{\"after\":null}", NULL);
  run_v(c, NULL, NULL);
  value_fails(c, "3", "ExtractField needs a JSON object value, found number", NULL);
  conn_chain_free(c);

  c = chain_of((const char *const[]){"transforms=e", "transforms.e.type=ExtractField$Key",
                                      "transforms.e.field=id", NULL});
  run_kv(c, "{\"id\":5}", "{\"v\":1}", 1, "5", "{\"v\":1}");
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=e", "transforms.e.type=ExtractField$Value",
                                     "transforms.e.field=a.b", "transforms.e.field.syntax.version=V2",
                                     NULL},
              "transforms.e.field.syntax.version: ", NULL);
  chain_fails((const char *const[]){"transforms=e", "transforms.e.type=ExtractField$Value", NULL},
              "transforms.e.field: ", NULL);
}

/* ---- MaskField ------------------------------------------------------------------- */

static void test_mask_field_by_type(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=m", "transforms.m.type=MaskField$Value",
      "transforms.m.fields=i,f,b,s,o,a,n,missing", NULL});
  run_v(c,
        "{\"i\":42,\"f\":2.5,\"b\":true,\"s\":\"secret\",\"o\":{\"x\":1},\"a\":[1],\"n\":null,"
        "\"keep\":\"k\"}",
        "{\"i\":0,\"f\":0.0,\"b\":false,\"s\":\"\",\"o\":{},\"a\":[],\"n\":null,\"keep\":\"k\","
        "\"missing\":null}");
  run_v(c, NULL, NULL);
  conn_chain_free(c);

  c = chain_of((const char *const[]){"transforms=m", "transforms.m.type=MaskField$Value",
                                      "transforms.m.fields=s,i,f",
                                      "transforms.m.replacement=9", NULL});
  run_v(c, "{\"s\":\"card\",\"i\":1234,\"f\":1e3}", "{\"s\":\"9\",\"i\":9,\"f\":9.0}");
  value_fails(c, "{\"s\":\"x\",\"f\":true}", "cannot mask field 'f' of type boolean", NULL);
  conn_chain_free(c);
  c = chain_of((const char *const[]){"transforms=m", "transforms.m.type=MaskField$Value",
                                      "transforms.m.fields=f", "transforms.m.replacement=inf", NULL});
  value_fails(c, "{\"f\":1.5}", "replacement 'inf' is not a number", NULL);
  run_v(c, "{\"f\":\"s\"}", "{\"f\":\"inf\"}");
  conn_chain_free(c);

  c = chain_of((const char *const[]){"transforms=m", "transforms.m.type=MaskField$Key",
                                      "transforms.m.fields=card",
                                      "transforms.m.replacement=****", NULL});
  run_kv(c, "{\"card\":\"4111\"}", "1", 1, "{\"card\":\"****\"}", "1");
  conn_record_t r;
  rec_make(&r, "clicks", 2, 42, 1, "{\"card\":4111}", "1");
  apply_fails(c, &r, "replacement '****' is not an integer", "transform 'm' (MaskField$Key)");
  conn_record_clear(&r);
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=m", "transforms.m.type=MaskField$Value",
                                     "transforms.m.fields=a", "transforms.m.replacement=", NULL},
              "transforms.m.replacement: ", NULL);
}

/* ---- HoistField ------------------------------------------------------------------ */

static void test_hoist_field(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=h", "transforms.h.type=HoistField$Value", "transforms.h.field=line", NULL});
  run_v(c, "{\"a\":1}", "{\"line\":{\"a\":1}}");
  run_v(c, "hello \"world\"", "{\"line\":\"hello \\\"world\\\"\"}"); /* plain text: a string */
  run_v(c, "", "{\"line\":\"\"}");
  run_v(c, NULL, "{\"line\":null}");
  value_fails(c, "\xff\xfe", "cannot write the value as JSON", NULL); /* not UTF-8 */
  conn_chain_free(c);
  c = chain_of((const char *const[]){"transforms=h", "transforms.h.type=HoistField$Key",
                                      "transforms.h.field=id", NULL});
  run_kv(c, "42", "x", 1, "{\"id\":42}", "x");
  conn_chain_free(c);
}

/* ---- RegexRouter ------------------------------------------------------------------ */

static void route(conn_chain_t *c, const char *topic, const char *expect) {
  conn_record_t r;
  rec_make(&r, topic, 0, 0, 1700000000000, NULL, "v");
  char err[512] = "";
  if (conn_chain_apply(c, &r, err, sizeof err) != 1) fail_msg("%s", err);
  assert_string_equal(r.topic, expect);
  conn_record_clear(&r);
}

static void test_regex_router(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=route", "transforms.route.type=RegexRouter",
      "transforms.route.regex=([a-z]+)-(raw|tmp)", "transforms.route.replacement=$1_clean\\$$2",
      NULL});
  route(c, "clicks-raw", "clicks_clean$raw");
  route(c, "clicks-raw", "clicks_clean$raw"); /* the same topic again (remembered) */
  route(c, "clicks-tmp", "clicks_clean$tmp");
  route(c, "clicks-raw2", "clicks-raw2"); /* the whole name must match */
  route(c, "clicks-raw2", "clicks-raw2");
  route(c, "clicks-raw", "clicks_clean$raw");
  route(c, "clicks.raw", "clicks.raw");
  route(c, "Clicks-raw", "Clicks-raw");
  conn_chain_free(c);

  /* An unmatched optional group adds nothing; $0 is the whole name. */
  c = chain_of((const char *const[]){"transforms=r", "transforms.r.type=RegexRouter",
                                      "transforms.r.regex=a(b)?c", "transforms.r.replacement=<$1|$0>",
                                      NULL});
  route(c, "ac", "<|ac>");
  route(c, "abc", "<b|abc>");
  route(c, "abcd", "abcd");
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=route", "transforms.route.type=RegexRouter",
                                     "transforms.route.regex=(", "transforms.route.replacement=x",
                                     NULL},
              "transforms.route.regex: invalid regular expression '('", "POSIX");
  /* glibc reads a stray ')' as a literal: the whole name ")" matches. */
  c = chain_of((const char *const[]){"transforms=r", "transforms.r.type=RegexRouter",
                                      "transforms.r.regex=)", "transforms.r.replacement=[$0]", NULL});
  route(c, ")", "[)]");
  conn_chain_free(c);
  chain_fails((const char *const[]){"transforms=route", "transforms.route.type=RegexRouter",
                                     "transforms.route.regex=(a)", "transforms.route.replacement=$2",
                                     NULL},
              "transforms.route.replacement: no group 2", NULL);
  chain_fails((const char *const[]){"transforms=route", "transforms.route.type=RegexRouter",
                                     "transforms.route.regex=(a)",
                                     "transforms.route.replacement=${name}", NULL},
              "transforms.route.replacement: ", "named groups");
  chain_fails((const char *const[]){"transforms=route", "transforms.route.type=RegexRouter",
                                     "transforms.route.replacement=x", NULL},
              "transforms.route.regex: ", "Missing required configuration");
}

/* ---- TimestampRouter --------------------------------------------------------------- */

static void test_timestamp_router(void **state) {
  (void)state;
  /* 1700000000123 ms = 2023-11-14T22:13:20.123Z */
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=ts", "transforms.ts.type=TimestampRouter", NULL});
  conn_record_t r;
  rec_make(&r, "clicks", 0, 0, 1700000000123, NULL, "v");
  char err[256];
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_string_equal(r.topic, "clicks-20231114");
  conn_record_clear(&r);
  rec_make(&r, "clicks", 0, 0, -1, NULL, "v");
  apply_fails(c, &r, "timestamp missing on record", "transform 'ts' (TimestampRouter)");
  conn_record_clear(&r);
  conn_chain_free(c);

  c = chain_of((const char *const[]){
      "transforms=ts", "transforms.ts.type=org.apache.kafka.connect.transforms.TimestampRouter",
      "transforms.ts.topic.format=${timestamp}_${topic}/${topic}",
      "transforms.ts.timestamp.format=yy-M-d'T'HH.mm.ss.SSS''", NULL});
  rec_make(&r, "clicks", 0, 0, 1700000000123, NULL, "v");
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_string_equal(r.topic, "23-11-14T22.13.20.123'_clicks/clicks");
  conn_record_clear(&r);
  /* The epoch itself is a timestamp (only -1 means none). */
  rec_make(&r, "t", 0, 0, 0, NULL, "v");
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_string_equal(r.topic, "70-1-1T00.00.00.000'_t/t");
  conn_record_clear(&r);
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=ts", "transforms.ts.type=TimestampRouter",
                                     "transforms.ts.timestamp.format=EEE yyyy", NULL},
              "transforms.ts.timestamp.format: pattern letters 'EEE' are not supported", NULL);
  chain_fails((const char *const[]){"transforms=ts", "transforms.ts.type=TimestampRouter",
                                     "transforms.ts.timestamp.format=MMM", NULL},
              "transforms.ts.timestamp.format: ", NULL);
  chain_fails((const char *const[]){"transforms=ts", "transforms.ts.type=TimestampRouter",
                                     "transforms.ts.timestamp.format='open", NULL},
              "transforms.ts.timestamp.format: unterminated quote", NULL);
}

/* ---- Filter and predicates ------------------------------------------------------------ */

static int apply_topic(conn_chain_t *c, const char *topic, const char *value, const char *header) {
  conn_record_t r;
  rec_make(&r, topic, 0, 0, 1, NULL, value);
  if (header) assert_int_equal(conn_record_add_header(&r, header, "1", 1), 0);
  char err[256] = "";
  int rc = conn_chain_apply(c, &r, err, sizeof err);
  if (rc < 0) fail_msg("%s", err);
  conn_record_clear(&r);
  return rc;
}

static void test_filter_with_predicates_and_negate(void **state) {
  (void)state;
  /* Filter alone drops everything. */
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=f", "transforms.f.type=org.apache.kafka.connect.transforms.Filter", NULL});
  assert_int_equal(apply_topic(c, "a", "{}", NULL), 0);
  conn_chain_free(c);

  /* Drop tombstones. */
  c = chain_of((const char *const[]){
      "transforms=dropTomb", "transforms.dropTomb.type=Filter",
      "transforms.dropTomb.predicate=isTomb", "predicates=isTomb",
      "predicates.isTomb.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
      NULL});
  assert_int_equal(apply_topic(c, "a", NULL, NULL), 0);
  assert_int_equal(apply_topic(c, "a", "{}", NULL), 1);
  conn_chain_free(c);

  /* Keep only topics matching test-.* (Filter negated), and drop records
   * with a "skip" header. */
  c = chain_of((const char *const[]){
      "transforms=onlyTest,skip", "transforms.onlyTest.type=Filter",
      "transforms.onlyTest.predicate=isTest", "transforms.onlyTest.negate=true",
      "transforms.skip.type=Filter", "transforms.skip.predicate=hasSkip", "transforms.skip.negate=FALSE",
      "predicates=isTest,hasSkip", "predicates.isTest.type=TopicNameMatches",
      "predicates.isTest.pattern=test-.*", "predicates.hasSkip.type=HasHeaderKey",
      "predicates.hasSkip.name=skip", NULL});
  assert_int_equal(apply_topic(c, "test-1", "{}", NULL), 1);
  assert_int_equal(apply_topic(c, "test-1", "{}", NULL), 1);
  assert_int_equal(apply_topic(c, "prod-1", "{}", NULL), 0);
  assert_int_equal(apply_topic(c, "prod-1", "{}", NULL), 0);
  assert_int_equal(apply_topic(c, "test-1", "{}", NULL), 1);
  assert_int_equal(apply_topic(c, "xtest-1", "{}", NULL), 0); /* whole-name match */
  assert_int_equal(apply_topic(c, "test-1", "{}", "skip"), 0);
  assert_int_equal(apply_topic(c, "test-1", "{}", "other"), 1);
  conn_chain_free(c);

  /* A predicate sees the record as the earlier transforms left it: here
   * ExtractField makes a tombstone, which the next Filter drops. */
  c = chain_of((const char *const[]){
      "transforms=e,drop", "transforms.e.type=ExtractField$Value", "transforms.e.field=after",
      "transforms.drop.type=Filter", "transforms.drop.predicate=t", "predicates=t",
      "predicates.t.type=RecordIsTombstone", NULL});
  assert_int_equal(apply_topic(c, "a", "{\"before\":1}", NULL), 0);
  assert_int_equal(apply_topic(c, "a", "{\"after\":1}", NULL), 1);
  conn_chain_free(c);

  chain_fails((const char *const[]){"transforms=f", "transforms.f.type=Filter",
                                     "transforms.f.predicate=nope", NULL},
              "transforms.f.predicate: unknown predicate 'nope'", NULL);
  chain_fails((const char *const[]){"transforms=f", "transforms.f.type=Filter",
                                     "transforms.f.negate=maybe", NULL},
              "transforms.f.negate: must be true or false", NULL);
  chain_fails((const char *const[]){"predicates=p", NULL}, "predicates.p.type: missing", NULL);
  chain_fails((const char *const[]){"predicates=p", "predicates.p.type=Bogus", NULL},
              "predicates.p.type: unknown predicate 'Bogus'", NULL);
  chain_fails((const char *const[]){"predicates=p", "predicates.p.type=TopicNameMatches", NULL},
              "predicates.p.pattern: ", "Missing required configuration");
  chain_fails((const char *const[]){"predicates=p", "predicates.p.type=TopicNameMatches",
                                     "predicates.p.pattern=a[", NULL},
              "predicates.p.pattern: invalid regular expression", NULL);
  chain_fails((const char *const[]){"predicates=p", "predicates.p.type=HasHeaderKey", NULL},
              "predicates.p.name: ", NULL);
}

/* ---- chain --------------------------------------------------------------------------- */

static void test_chain_config_errors(void **state) {
  (void)state;
  chain_fails((const char *const[]){"transforms=x", "transforms.x.type=Nope", NULL},
              "transforms.x.type: unknown transform 'Nope'", NULL);
  chain_fails((const char *const[]){"transforms=x", NULL}, "transforms.x.type: missing", NULL);
  chain_fails((const char *const[]){"transforms=a,a", "transforms.a.type=Filter", NULL},
              "transforms: duplicate alias 'a'", NULL);
  chain_fails((const char *const[]){"transforms=a,,b", "transforms.a.type=Filter", NULL},
              "transforms: empty alias", NULL);
  /* The first error wins, later transforms are not built (nothing leaks). */
  chain_fails((const char *const[]){"transforms=ok,bad", "transforms.ok.type=InsertField$Value",
                                     "transforms.ok.topic.field=t", "transforms.bad.type=RegexRouter",
                                     "transforms.bad.regex=[z-a]", "transforms.bad.replacement=", NULL},
              "transforms.bad.regex: ", NULL);
  /* No transforms at all: an empty chain keeps records unchanged. */
  conn_chain_t *c = chain_of((const char *const[]){"name=x", NULL});
  run_kv(c, "k", "not json", 1, "k", "not json");
  conn_chain_free(c);
  conn_chain_free(NULL);
}

static void test_chain_order_and_shared_parse(void **state) {
  (void)state;
  /* hoist then insert: a text line becomes an object that gets a field. */
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=h,i", "transforms.h.type=HoistField$Value", "transforms.h.field=line",
      "transforms.i.type=InsertField$Value", "transforms.i.topic.field=topic", NULL});
  run_v(c, "GET /index.html", "{\"line\":\"GET /index.html\",\"topic\":\"clicks\"}");
  conn_chain_free(c);
  /* The other order: InsertField sees text, which is an error. */
  c = chain_of((const char *const[]){"transforms=i,h", "transforms.h.type=HoistField$Value",
                                      "transforms.h.field=line",
                                      "transforms.i.type=InsertField$Value",
                                      "transforms.i.topic.field=topic", NULL});
  value_fails(c, "GET /index.html", "transform 'i' (InsertField$Value)", "value is not JSON");
  conn_chain_free(c);

  /* Five field transforms on one parse: each sees what the previous did. */
  c = chain_of((const char *const[]){
      "transforms=drop,mask,key,ins,route", "transforms.drop.type=ReplaceField$Value",
      "transforms.drop.exclude=debug", "transforms.drop.renames=uid:user",
      "transforms.mask.type=MaskField$Value", "transforms.mask.fields=email",
      "transforms.key.type=ValueToKey", "transforms.key.fields=user",
      "transforms.ins.type=InsertField$Key", "transforms.ins.partition.field=p",
      "transforms.route.type=RegexRouter", "transforms.route.regex=(.*)",
      "transforms.route.replacement=users-$1", NULL});
  conn_record_t r;
  rec_make(&r, "clicks", 2, 42, 5, NULL,
           "{\"uid\":\"u1\",\"email\":\"a@b.c\",\"debug\":true,\"n\":1}");
  char err[256];
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_string_equal(r.topic, "users-clicks");
  assert_bytes(r.key, r.key_len, "{\"user\":\"u1\",\"p\":2}");
  assert_bytes(r.value, r.value_len, "{\"user\":\"u1\",\"email\":\"\",\"n\":1}");
  /* The same chain again on the same record object: no stale tree. */
  assert_int_equal(conn_record_set_value(&r, "{\"uid\":\"u2\"}", 12), 0);
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_bytes(r.key, r.key_len, "{\"user\":\"u2\",\"p\":2}");
  assert_bytes(r.value, r.value_len, "{\"user\":\"u2\",\"email\":null}");
  assert_string_equal(r.topic, "users-users-clicks");
  conn_record_clear(&r);
  conn_chain_free(c);
}

/* The parser and the arena: objects and arrays that outgrow their first
 * slots, values larger than an arena chunk, many records through one
 * chain, duplicate keys, escapes, and a nesting limit. */
static void test_parse_sizes_and_limits(void **state) {
  (void)state;
  conn_chain_t *c = chain_of((const char *const[]){
      "transforms=r", "transforms.r.type=ReplaceField$Value", "transforms.r.renames=f7:seven",
      "transforms.r.exclude=f3", NULL});
  size_t cap = 1 << 20;
  char *in = malloc(cap), *want = malloc(cap);
  for (int fields = 1; fields <= 3000; fields = fields * 3 + 1) {
    size_t n = 0, m = 0;
    n += (size_t)snprintf(in + n, cap - n, "{");
    m += (size_t)snprintf(want + m, cap - m, "{");
    for (int i = 0; i < fields; i++) {
      n += (size_t)snprintf(in + n, cap - n, "%s\"f%d\":[%d,\"%0*d\",{\"x\":[]}]", i ? "," : "",
                            i, i, 1 + i % 20, 0);
      if (i == 3) continue;
      m += (size_t)snprintf(want + m, cap - m, "%s\"%s%d\":[%d,\"%0*d\",{\"x\":[]}]",
                            m > 1 ? "," : "", i == 7 ? "seven" : "f", i == 7 ? 0 : i, i,
                            1 + i % 20, 0);
    }
    snprintf(in + n, cap - n, "}");
    snprintf(want + m, cap - m, "}");
    /* "seven0" above: fix the rename's expected key */
    char *p = strstr(want, "\"seven0\"");
    if (p) memmove(p + 6, p + 7, strlen(p + 7) + 1);
    run_v(c, in, want);
  }
  /* Duplicate keys: ReplaceField keeps the later one (a Java Map would). */
  run_v(c, "{\"a\":1,\"a\":2,\"s\":\"\\u00e9\\n\\\"\"}", "{\"a\":2,\"s\":\"é\\n\\\"\"}");
  /* A big array, masked to []. */
  conn_chain_free(c);
  c = chain_of((const char *const[]){"transforms=m", "transforms.m.type=MaskField$Value",
                                      "transforms.m.fields=arr", NULL});
  size_t n = (size_t)snprintf(in, cap, "{\"arr\":[");
  for (int i = 0; i < 5000; i++) n += (size_t)snprintf(in + n, cap - n, "%s%d", i ? "," : "", i);
  snprintf(in + n, cap - n, "],\"k\":true}");
  run_v(c, in, "{\"arr\":[],\"k\":true}");
  /* Nesting: 128 levels parse, 129 do not. */
  n = 0;
  for (int i = 0; i < 129; i++) in[n++] = '[';
  for (int i = 0; i < 129; i++) in[n++] = ']';
  in[n] = '\0';
  snprintf(want, cap, "{\"arr\":%s}", in + 1); /* 128 levels inside an object: 129 */
  value_fails(c, want, "value is not JSON (nested deeper than 128 levels)", NULL);
  value_fails(c, "{\"a\":1} x", "value is not JSON (1:10: parse error: trailing garbage)", NULL);
  value_fails(c, "{\"a\":\"\xff\"}", "value is not JSON", NULL);
  conn_chain_free(c);
  free(in);
  free(want);
}

/* A plugin called directly (no chain) still writes its result back. */
static void test_plugin_apply_without_chain(void **state) {
  (void)state;
  const conn_transform_plugin_t *t = conn_transform_find("InsertField$Value");
  conn_config_t cfg;
  cfg_of(&cfg, (const char *const[]){"static.field=s", "static.value=v", NULL});
  char err[256];
  void *st = calloc(1, t->state_size);
  assert_int_equal(t->init(st, &cfg, err, sizeof err), 0);
  conn_record_t r;
  rec_make(&r, "a", 0, 0, 0, NULL, "{}");
  assert_int_equal(t->apply(st, &r, err, sizeof err), 1);
  assert_bytes(r.value, r.value_len, "{\"s\":\"v\"}");
  conn_record_clear(&r);
  t->close(st);
  free(st);
  conn_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_names_and_aliases),
      cmocka_unit_test(test_insert_field_value_every_key),
      cmocka_unit_test(test_insert_field_key),
      cmocka_unit_test(test_replace_field),
      cmocka_unit_test(test_value_to_key),
      cmocka_unit_test(test_extract_field),
      cmocka_unit_test(test_mask_field_by_type),
      cmocka_unit_test(test_hoist_field),
      cmocka_unit_test(test_regex_router),
      cmocka_unit_test(test_timestamp_router),
      cmocka_unit_test(test_filter_with_predicates_and_negate),
      cmocka_unit_test(test_chain_config_errors),
      cmocka_unit_test(test_chain_order_and_shared_parse),
      cmocka_unit_test(test_parse_sizes_and_limits),
      cmocka_unit_test(test_plugin_apply_without_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
