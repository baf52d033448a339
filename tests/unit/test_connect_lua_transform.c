/* Tests for runtime/connect_lua_transform.c: the `lua` transform in a
 * connector's chain: the record table it sees, changes and drops, errors
 * with file:line, and the sandbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "connect_lua_transform.h"
#include "scratch_util.h"

static char *dir;

static int setup(void **state) {
  (void)state;
  assert_int_equal(connect_lua_transform_register(), 0);
  assert_int_equal(connect_lua_transform_register(), 0); /* idempotent */
  dir = scratch_mkdtemp("lua-transform");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  scratch_rmrf(dir);
  return 0;
}

/* Writes text to <dir>/<name> and returns the path (static buffer). */
static const char *script(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* A chain of kv ("key=value" strings, plus "transforms.l.script=<path>"
 * when path is given). Returns NULL with err on failure. */
static conn_chain_t *chain_with(const char *path, const char *const *kv, char *err, size_t len) {
  conn_config_t c;
  conn_config_init(&c);
  for (size_t i = 0; kv[i]; i++) {
    const char *eq = strchr(kv[i], '=');
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv[i]), kv[i]);
    assert_int_equal(conn_config_set(&c, key, eq + 1), 0);
  }
  if (path) assert_int_equal(conn_config_set(&c, "transforms.l.script", path), 0);
  conn_chain_t *chain = NULL;
  int rc = conn_chain_new(&c, &chain, err, len);
  conn_config_free(&c);
  return rc == 0 ? chain : NULL;
}

static conn_chain_t *lua_chain(const char *path) {
  char err[512] = "";
  conn_chain_t *c =
      chain_with(path, (const char *const[]){"transforms=l", "transforms.l.type=lua", NULL}, err,
                 sizeof err);
  if (!c) fail_msg("%s", err);
  return c;
}

static void rec_make(conn_record_t *r, const char *key, const char *value) {
  conn_record_init(r);
  assert_int_equal(conn_record_set_topic(r, "clicks"), 0);
  r->partition = 3;
  r->offset = 17;
  r->timestamp = 1700000000000;
  assert_int_equal(conn_record_set_key(r, key, key ? (int32_t)strlen(key) : -1), 0);
  assert_int_equal(conn_record_set_value(r, value, value ? (int32_t)strlen(value) : -1), 0);
}

static void assert_bytes(const void *data, int32_t len, const char *expect) {
  if (!expect) {
    if (data) fail_msg("expected null, got '%.*s'", (int)len, (const char *)data);
    return;
  }
  if (!data) fail_msg("expected '%s', got null", expect);
  if ((size_t)len != strlen(expect) || memcmp(data, expect, (size_t)len) != 0)
    fail_msg("expected '%s', got '%.*s'", expect, (int)len, (const char *)data);
}

static void test_lua_sees_and_changes_the_record(void **state) {
  (void)state;
  conn_chain_t *c = lua_chain(script("modify.lua",
      "-- a transform returning a function\n"
      "return function(r)\n"
      "  r.value.seen = r.topic .. '/' .. r.partition .. '/' .. r.offset .. '/' .. r.timestamp\n"
      "  r.value.n = r.value.n * 2\n"
      "  r.value.key_was = r.key\n"
      "  r.topic = 'clicks-out'\n"
      "  r.key = r.value.user\n"
      "  r.timestamp = r.timestamp + 1\n"
      "  r.headers.h2 = 'x'\n"
      "  r.headers.n = 5\n"
      "  return r\n"
      "end\n"));
  conn_record_t r;
  rec_make(&r, "k1", "{\"user\":\"ann\",\"n\":21}");
  assert_int_equal(conn_record_add_header(&r, "h1", "a", 1), 0);
  assert_int_equal(conn_record_add_header(&r, "h1", "b", 1), 0);
  assert_int_equal(conn_record_add_header(&r, "nul", NULL, -1), 0);
  free(r.source_offset);
  r.source_offset = strdup("{\"position\":9}");
  char err[512] = "";
  int rc = conn_chain_apply(c, &r, err, sizeof err);
  if (rc != 1) fail_msg("%d %s", rc, err);
  assert_string_equal(r.topic, "clicks-out");
  assert_int_equal(r.partition, 3);
  assert_int_equal(r.offset, 17);
  assert_int_equal(r.timestamp, 1700000000001);
  assert_bytes(r.key, r.key_len, "ann"); /* a string is written raw */
  assert_bytes(r.value, r.value_len,
               "{\"key_was\":\"k1\",\"n\":42,\"seen\":\"clicks/3/17/1700000000000\",\"user\":\"ann\"}");
  assert_string_equal(r.source_offset, "{\"position\":9}");
  /* Headers sorted by name; the repeated one and the null one survive. */
  assert_int_equal(r.header_count, 5);
  const char *names[] = {"h1", "h1", "h2", "n", "nul"};
  const char *vals[] = {"a", "b", "x", "5", NULL};
  for (int i = 0; i < 5; i++) {
    assert_string_equal(r.headers[i].key, names[i]);
    assert_bytes(r.headers[i].value, r.headers[i].value_len, vals[i]);
  }
  conn_record_clear(&r);

  /* Non-JSON text, a JSON string and a null value reach Lua as given and
   * come back unchanged. */
  const char *same[] = {"plain text", "\"quoted\"", "null", "", NULL};
  for (int i = 0; i < 5; i++) {
    conn_chain_t *id = lua_chain(script("id.lua", "function transform(r) return r end\n"));
    rec_make(&r, NULL, same[i]);
    assert_int_equal(conn_chain_apply(id, &r, err, sizeof err), 1);
    assert_bytes(r.value, r.value_len, same[i]);
    assert_null(r.key);
    conn_record_clear(&r);
    conn_chain_free(id);
  }
  conn_chain_free(c);
}

static void test_lua_drops_with_nil(void **state) {
  (void)state;
  char err[512] = "";
  /* Inline source, in a chain between built-ins: InsertField's change is
   * visible to Lua, Lua's to MaskField. */
  conn_chain_t *c = chain_with(NULL, (const char *const[]){
      "transforms=ins,l,mask", "transforms.ins.type=InsertField$Value",
      "transforms.ins.static.field=s", "transforms.ins.static.value=v", "transforms.l.type=lua",
      "transforms.l.source=return function(r) if r.value.drop then return nil end "
      "r.value.lua = r.value.s; return r end",
      "transforms.mask.type=MaskField$Value", "transforms.mask.fields=s", NULL}, err, sizeof err);
  if (!c) fail_msg("%s", err);
  conn_record_t r;
  rec_make(&r, NULL, "{\"drop\":true}");
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 0);
  conn_record_clear(&r);
  rec_make(&r, NULL, "{\"drop\":false}");
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_bytes(r.value, r.value_len, "{\"drop\":false,\"lua\":\"v\",\"s\":\"\"}");
  conn_record_clear(&r);
  conn_chain_free(c);
}

static void apply_err(conn_chain_t *c, const char *value, char *err, size_t len) {
  conn_record_t r;
  rec_make(&r, NULL, value);
  assert_int_equal(conn_chain_apply(c, &r, err, len), -1);
  conn_record_clear(&r);
}

static void assert_has(const char *s, const char *needle) {
  if (!strstr(s, needle)) fail_msg("'%s' lacks '%s'", s, needle);
}

static void test_lua_errors_name_file_and_line(void **state) {
  (void)state;
  char err[512] = "";
  const char *path = script("boom.lua",
                            "function transform(r)\n"
                            "  if r.value.bad then\n"
                            "    error('boom')\n"
                            "  end\n"
                            "  if r.value.ret then return 42 end\n"
                            "  if r.value.topic then r.topic = nil return r end\n"
                            "  if r.value.fn then r.value = {f = print} return r end\n"
                            "  return r.value.missing.field\n"
                            "end\n");
  conn_chain_t *c = lua_chain(path);
  /* Lua shortens long chunk names from the left ("...dir/boom.lua"). */
  apply_err(c, "{\"bad\":true}", err, sizeof err);
  assert_has(err, "transform 'l' (lua) failed on record topic=clicks partition=3 offset=17");
  assert_has(err, "/boom.lua:3: boom");
  assert_null(strchr(err, '\n')); /* no traceback in the one-line error */
  apply_err(c, "{}", err, sizeof err);
  assert_has(err, "/boom.lua:8: attempt to index a nil value");
  apply_err(c, "{\"ret\":1}", err, sizeof err);
  assert_has(err, "must return a record table or nil, not number");
  apply_err(c, "{\"topic\":1}", err, sizeof err);
  assert_has(err, "needs a non-empty string topic");
  apply_err(c, "{\"fn\":1}", err, sizeof err);
  assert_has(err, "cannot be written as JSON");
  conn_chain_free(c);

  /* Config-time errors name the key. */
  assert_null(chain_with(script("syntax.lua", "function transform(r)\n  return r +\nend\n"),
                         (const char *const[]){"transforms=l", "transforms.l.type=lua", NULL}, err,
                         sizeof err));
  assert_has(err, "transforms.l.script: ");
  assert_has(err, "syntax.lua:3:");
  assert_null(chain_with(NULL, (const char *const[]){"transforms=l", "transforms.l.type=lua", NULL},
                         err, sizeof err));
  assert_has(err, "transforms.l.script: one of script (a file) or source is required");
  assert_null(chain_with("/nonexistent/x.lua",
                         (const char *const[]){"transforms=l", "transforms.l.type=lua", NULL}, err,
                         sizeof err));
  assert_has(err, "transforms.l.script: /nonexistent/x.lua: No such file or directory");
  assert_null(chain_with(script("nofn.lua", "x = 1\n"),
                         (const char *const[]){"transforms=l", "transforms.l.type=lua", NULL}, err,
                         sizeof err));
  assert_has(err, "transforms.l.function: ");
  assert_has(err, "neither returns a function nor defines a global function 'transform'");
  assert_null(chain_with(NULL, (const char *const[]){"transforms=l", "transforms.l.type=lua",
                                                     "transforms.l.source=error('at load')", NULL},
                         err, sizeof err));
  assert_has(err, "transforms.l.source: source:1: at load");
}

static void test_lua_sandbox_and_budget(void **state) {
  (void)state;
  char err[512] = "";
  conn_chain_t *c = lua_chain(script("sandbox.lua",
                                     "function transform(r)\n"
                                     "  if r.value.io then io.open('/etc/passwd') end\n"
                                     "  if r.value.os then os.execute('true') end\n"
                                     "  if r.value.loop then while true do end end\n"
                                     "  if r.value.mem then local t = {} for i = 1, 1e8 do t[i] = "
                                     "string.rep('x', 100) .. i end end\n"
                                     "  return r\n"
                                     "end\n"));
  apply_err(c, "{\"io\":1}", err, sizeof err);
  assert_has(err, "sandbox.lua:2:");
  assert_has(err, "not allowed in the sandbox");
  apply_err(c, "{\"os\":1}", err, sizeof err);
  assert_has(err, "sandbox.lua:3:");
  assert_has(err, "os.execute is not allowed in the sandbox");
  apply_err(c, "{\"loop\":1}", err, sizeof err);
  assert_has(err, "instruction budget");
  /* The VM stays usable after a refused call. */
  conn_record_t r;
  rec_make(&r, NULL, "{\"ok\":1}");
  assert_int_equal(conn_chain_apply(c, &r, err, sizeof err), 1);
  assert_bytes(r.value, r.value_len, "{\"ok\":1}");
  conn_record_clear(&r);
  conn_chain_free(c);

  /* A memory limit of its own. */
  c = chain_with(script("mem.lua", "function transform(r) local t = {} for i = 1, 1e8 do "
                                   "t[i] = string.rep('x', 100) .. i end return r end\n"),
                 (const char *const[]){"transforms=l", "transforms.l.type=lua",
                                       "transforms.l.memory.limit.bytes=4194304",
                                       "transforms.l.instruction.budget=100000000", NULL},
                 err, sizeof err);
  if (!c) fail_msg("%s", err);
  apply_err(c, "{}", err, sizeof err);
  assert_has(err, "not enough memory");
  conn_chain_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lua_sees_and_changes_the_record),
      cmocka_unit_test(test_lua_drops_with_nil),
      cmocka_unit_test(test_lua_errors_name_file_and_line),
      cmocka_unit_test(test_lua_sandbox_and_budget),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
