/* Tests for connectors/conn_config.c (string maps, JSON) and
 * connectors/conn_config_def.c (Kafka ConfigDef validation, getters), and
 * the JSON helpers of connectors/conn_json.c they use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_int.h"

static void from_json_ok(conn_config_t *c, const char *json) {
  char err[256] = "";
  conn_config_init(c);
  int rc = conn_config_from_json(c, "c.json", json, strlen(json), err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
}

static void test_map_set_get_replace_unset_keeps_order(void **state) {
  (void)state;
  conn_config_t c;
  conn_config_init(&c);
  assert_int_equal(conn_config_set(&c, "b", "1"), 0);
  assert_int_equal(conn_config_set(&c, "a", "2"), 0);
  assert_int_equal(conn_config_set(&c, "c", "3"), 0);
  assert_int_equal(conn_config_set(&c, "b", "4"), 0); /* replace in place */
  assert_int_equal(c.count, 3);
  assert_string_equal(conn_config_get(&c, "b"), "4");
  assert_null(conn_config_get(&c, "zz"));
  conn_config_unset(&c, "a");
  conn_config_unset(&c, "nope");
  assert_int_equal(c.count, 2);
  char *js = conn_config_to_json(&c);
  assert_string_equal(js, "{\"b\":\"4\",\"c\":\"3\"}");
  free(js);
  conn_config_t d;
  assert_int_equal(conn_config_copy(&d, &c), 0);
  conn_config_set(&c, "c", "changed");
  assert_string_equal(conn_config_get(&d, "c"), "3");
  conn_config_free(&c);
  conn_config_free(&d);
  /* Many keys: growth keeps every pair. */
  conn_config_init(&c);
  char k[16], v[16];
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "v%d", i * 7);
    assert_int_equal(conn_config_set(&c, k, v), 0);
  }
  assert_string_equal(conn_config_get(&c, "k63"), "v441");
  assert_string_equal(c.keys[99], "k99");
  conn_config_free(&c);
}

static void test_from_json_scalars_as_text(void **state) {
  (void)state;
  conn_config_t c;
  from_json_ok(&c, "{\"connector.class\": \"file-source\", \"tasks.max\": 1,\n"
                   " \"ratio\": 2.50, \"on\": true, \"off\": false, \"gone\": null,"
                   " \"s\": \"caf\\u00e9 \\\"q\\\"\"}");
  assert_int_equal(c.count, 6);
  assert_string_equal(conn_config_get(&c, "tasks.max"), "1");
  assert_string_equal(conn_config_get(&c, "ratio"), "2.50"); /* text kept as written */
  assert_string_equal(conn_config_get(&c, "on"), "true");
  assert_string_equal(conn_config_get(&c, "off"), "false");
  assert_null(conn_config_get(&c, "gone"));
  assert_string_equal(conn_config_get(&c, "s"), "caf\xc3\xa9 \"q\"");
  /* Round trip through to_json. */
  char *js = conn_config_to_json(&c);
  conn_config_t d;
  from_json_ok(&d, js);
  assert_int_equal(d.count, c.count);
  for (size_t i = 0; i < c.count; i++) {
    assert_string_equal(d.keys[i], c.keys[i]);
    assert_string_equal(d.values[i], c.values[i]);
  }
  free(js);
  conn_config_free(&c);
  conn_config_free(&d);
}

static void test_from_json_errors_name_place_and_key(void **state) {
  (void)state;
  conn_config_t c;
  char err[256];
  conn_config_init(&c);
  const char *bad = "{\"a\": \"1\",\n  \"b\": }";
  assert_int_equal(conn_config_from_json(&c, "conn.json", bad, strlen(bad), err, sizeof err), -1);
  assert_non_null(strstr(err, "conn.json:2:"));
  const char *nested = "{\"a\": \"1\", \"b\": {\"x\": 1}}";
  assert_int_equal(conn_config_from_json(&c, "conn.json", nested, strlen(nested), err,
                                         sizeof err), -1);
  assert_string_equal(err, "conn.json: \"b\": expected a string, number or boolean, got an object");
  const char *arr = "[1,2]";
  assert_int_equal(conn_config_from_json(&c, "conn.json", arr, strlen(arr), err, sizeof err), -1);
  assert_string_equal(err, "conn.json: expected a JSON object of config keys");
  const char nul[] = "{\"a\":\"x\0\"}";
  assert_int_equal(conn_config_from_json(&c, "conn.json", nul, sizeof nul - 1, err, sizeof err),
                   -1);
  assert_string_equal(err, "conn.json: contains a NUL byte");
  conn_config_free(&c);
}

static int must_be_even(const char *value, char *msg, size_t len) {
  if (atoi(value) % 2 != 0) {
    snprintf(msg, len, "must be even");
    return -1;
  }
  return 0;
}

static const char *const formats[] = {"string", "json", NULL};

static const conn_def_t defs[] = {
    {.name = "topic", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH, .doc = "t"},
    {.name = "batch.size", .type = CONN_T_INT, .default_value = "2000", .min = 1,
     .max = INT32_MAX, .doc = "b"},
    {.name = "big", .type = CONN_T_LONG, .default_value = "5000000000", .doc = "l"},
    {.name = "ratio", .type = CONN_T_DOUBLE, .default_value = "0.5", .doc = "d"},
    {.name = "on", .type = CONN_T_BOOLEAN, .default_value = "false", .doc = "b"},
    {.name = "format", .type = CONN_T_STRING, .default_value = "string", .choices = formats},
    {.name = "fields", .type = CONN_T_LIST, .default_value = "", .doc = "l"},
    {.name = "kinds", .type = CONN_T_LIST, .default_value = "json", .choices = formats},
    {.name = "secret", .type = CONN_T_PASSWORD, .optional = true, .validate = must_be_even},
    {.name = "even", .type = CONN_T_INT, .optional = true, .validate = must_be_even},
    {.name = "cls", .type = CONN_T_CLASS, .optional = true},
    CONN_DEF_END,
};

/* Validates a config given as JSON; returns the error count and the
 * first error in err. */
static int validate_json(const char *json, char *err, size_t errlen) {
  conn_config_t c;
  from_json_ok(&c, json);
  err[0] = '\0';
  int n = conn_config_validate(defs, &c, NULL, NULL, err, errlen);
  conn_config_free(&c);
  return n;
}

static void test_validate_kafka_messages(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(validate_json("{\"topic\": \"t\"}", err, sizeof err), 0);
  assert_string_equal(err, "");

  assert_int_equal(validate_json("{}", err, sizeof err), 1);
  assert_string_equal(err,
                      "topic: Missing required configuration \"topic\" which has no default value.");

  assert_int_equal(validate_json("{\"topic\":\"t\",\"batch.size\":\"abc\"}", err, sizeof err), 1);
  assert_string_equal(err, "batch.size: Invalid value abc for configuration batch.size: Not a "
                           "number of type INT");
  assert_int_equal(validate_json("{\"topic\":\"t\",\"batch.size\":\"0\"}", err, sizeof err), 1);
  assert_string_equal(err, "batch.size: Invalid value 0 for configuration batch.size: Value must "
                           "be at least 1");
  /* INT is 32-bit as in Java; LONG is not. */
  assert_int_equal(validate_json("{\"topic\":\"t\",\"batch.size\":\"3000000000\"}", err,
                                 sizeof err), 1);
  assert_int_equal(validate_json("{\"topic\":\"t\",\"big\":\"-3000000000\"}", err, sizeof err), 0);
  assert_int_equal(validate_json("{\"topic\":\"t\",\"big\":\"12x\"}", err, sizeof err), 1);
  assert_string_equal(err, "big: Invalid value 12x for configuration big: Not a number of type LONG");
  /* Trimmed like Kafka; "1.0" is not an INT. */
  assert_int_equal(validate_json("{\"topic\":\"t\",\"batch.size\":\" 7 \"}", err, sizeof err), 0);
  assert_int_equal(validate_json("{\"topic\":\"t\",\"batch.size\":1.0}", err, sizeof err), 1);

  assert_int_equal(validate_json("{\"topic\":\"t\",\"ratio\":\"x\"}", err, sizeof err), 1);
  assert_string_equal(err, "ratio: Invalid value x for configuration ratio: Not a number of type "
                           "DOUBLE");
  assert_int_equal(validate_json("{\"topic\":\"t\",\"ratio\":1e3}", err, sizeof err), 0);

  assert_int_equal(validate_json("{\"topic\":\"t\",\"on\":\"TRUE\"}", err, sizeof err), 0);
  assert_int_equal(validate_json("{\"topic\":\"t\",\"on\":\"yes\"}", err, sizeof err), 1);
  assert_string_equal(err, "on: Invalid value yes for configuration on: Expected value to be "
                           "either true or false");

  assert_int_equal(validate_json("{\"topic\":\"t\",\"format\":\"xml\"}", err, sizeof err), 1);
  assert_string_equal(err, "format: Invalid value xml for configuration format: String must be "
                           "one of: string, json");
  assert_int_equal(validate_json("{\"topic\":\"t\",\"kinds\":\"json, string\"}", err, sizeof err),
                   0);
  assert_int_equal(validate_json("{\"topic\":\"t\",\"kinds\":\"json,xml\"}", err, sizeof err), 1);
  assert_string_equal(err, "kinds: Invalid value xml for configuration kinds: String must be one "
                           "of: string, json");

  /* Validators run after the type check; passwords are never shown. */
  assert_int_equal(validate_json("{\"topic\":\"t\",\"even\":\"3\"}", err, sizeof err), 1);
  assert_string_equal(err, "even: Invalid value 3 for configuration even: must be even");
  assert_int_equal(validate_json("{\"topic\":\"t\",\"secret\":\"31\"}", err, sizeof err), 1);
  assert_string_equal(err, "secret: Invalid value [hidden] for configuration secret: must be even");
  assert_null(strstr(err, "31"));
  assert_int_equal(validate_json("{\"topic\":\"t\",\"cls\":\"\"}", err, sizeof err), 1);

  /* Several errors are all counted; the first is reported. */
  assert_int_equal(validate_json("{\"batch.size\":\"-1\",\"on\":\"2\"}", err, sizeof err), 3);
  assert_non_null(strstr(err, "Missing required configuration \"topic\""));
  /* Unknown keys are ignored (the framework and transforms own them). */
  assert_int_equal(validate_json("{\"topic\":\"t\",\"transforms\":\"x\"}", err, sizeof err), 0);
}

static void test_validate_values_per_def(void **state) {
  (void)state;
  conn_config_t c;
  from_json_ok(&c, "{\"batch.size\": \"0\", \"format\": \"json\"}");
  conn_value_t *vals = NULL;
  size_t n = 0;
  assert_int_equal(conn_config_validate(defs, &c, &vals, &n, NULL, 0), 2);
  assert_int_equal(n, sizeof defs / sizeof defs[0] - 1);
  assert_ptr_equal(vals[0].def, &defs[0]);
  assert_null(vals[0].value);
  assert_non_null(vals[0].errors[0]);
  assert_null(vals[0].errors[1]);
  assert_string_equal(vals[1].value, "0");
  assert_string_equal(vals[1].errors[0],
                      "Invalid value 0 for configuration batch.size: Value must be at least 1");
  assert_string_equal(vals[2].value, "5000000000"); /* default */
  assert_null(vals[2].errors[0]);
  assert_string_equal(vals[5].value, "json");
  assert_null(vals[8].value); /* optional, absent */
  assert_null(vals[8].errors[0]);
  conn_values_free(vals, n);
  conn_config_free(&c);
}

static void test_typed_getters(void **state) {
  (void)state;
  conn_config_t c;
  from_json_ok(&c, "{\"topic\":\"t\",\"batch.size\":\" 42\",\"on\":\"True\","
                   "\"fields\":\" a , b,,c \"}");
  assert_string_equal(conn_get_string(defs, &c, "topic"), "t");
  assert_string_equal(conn_get_string(defs, &c, "format"), "string"); /* default */
  assert_null(conn_get_string(defs, &c, "secret"));
  assert_int_equal(conn_get_long(defs, &c, "batch.size"), 42);
  assert_int_equal(conn_get_long(defs, &c, "big"), 5000000000LL);
  assert_int_equal(conn_get_long(defs, &c, "even"), 0); /* absent, no default */
  assert_true(conn_get_bool(defs, &c, "on"));
  char **l = conn_get_list(defs, &c, "fields");
  assert_non_null(l);
  assert_string_equal(l[0], "a");
  assert_string_equal(l[1], "b");
  assert_string_equal(l[2], ""); /* kept, as Kafka keeps empty items */
  assert_string_equal(l[3], "c");
  assert_null(l[4]);
  conn_list_free(l);
  conn_config_unset(&c, "fields");
  l = conn_get_list(defs, &c, "fields"); /* default "" */
  assert_non_null(l);
  assert_null(l[0]);
  conn_list_free(l);
  l = conn_get_list(defs, &c, "kinds");
  assert_string_equal(l[0], "json");
  assert_null(l[1]);
  conn_list_free(l);
  conn_config_free(&c);
}

static void test_json_helpers(void **state) {
  (void)state;
  char err[256];
  const char *text = "{\"a\": [1, 2.50, \"x\", null, true], \"b\": {\"c\": -0}}";
  yajl_val v = conn_json_parse("x.json", text, strlen(text), err, sizeof err);
  assert_non_null(v);
  size_t len = 0;
  char *out = conn_json_text(v, &len);
  assert_string_equal(out, "{\"a\":[1,2.50,\"x\",null,true],\"b\":{\"c\":-0}}");
  assert_int_equal(len, strlen(out));
  free(out);
  yajl_val b = conn_json_member(v, "b");
  assert_non_null(b);
  assert_string_equal(conn_json_scalar(conn_json_member(b, "c")), "-0");
  assert_null(conn_json_scalar(b));
  assert_null(conn_json_member(v, "zz"));
  assert_null(conn_json_member(b->u.object.values[0], "c")); /* not an object */
  yajl_tree_free(v);
  const char *bad = "{\"a\": 1,\n\"b\": tru}";
  assert_null(conn_json_parse("x.json", bad, strlen(bad), err, sizeof err));
  assert_memory_equal(err, "x.json:2:", 9);
  /* One line of a JSON Lines file: the file's line number, the column. */
  const char *line = "{\"a\": nope}";
  assert_null(conn_json_parse_line("/d/clicks.json", 41, line, strlen(line), err, sizeof err));
  assert_memory_equal(err, "/d/clicks.json:41:8: ", 21);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_set_get_replace_unset_keeps_order),
      cmocka_unit_test(test_from_json_scalars_as_text),
      cmocka_unit_test(test_from_json_errors_name_place_and_key),
      cmocka_unit_test(test_validate_kafka_messages),
      cmocka_unit_test(test_validate_values_per_def),
      cmocka_unit_test(test_typed_getters),
      cmocka_unit_test(test_json_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
