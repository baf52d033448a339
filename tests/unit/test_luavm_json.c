/* Tests for runtime/luavm_json.c: JSON <-> Lua through yajl, from Lua
 * (runnel.json.*) and from C (luavm_json_decode/encode). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>

#include "luavm.h"

/* Lua helpers every test chunk can use. */
static const char prelude[] =
    "local json = runnel.json\n"
    "D, E = json.decode, json.encode\n"
    "function deq(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then return math.type(a) == math.type(b) and a == b end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not deq(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return getmetatable(a) == getmetatable(b)\n"
    "end\n"
    "function fails(f, want)\n"
    "  local ok, e = pcall(f)\n"
    "  assert(not ok, 'did not fail')\n"
    "  assert(e:find(want, 1, true), 'wanted \"' .. want .. '\" in: ' .. e)\n"
    "end\n";

static luavm_t *vm_new(size_t memory_limit) {
  luavm_options_t o;
  luavm_options_defaults(&o);
  if (memory_limit != 0)
    o.memory_limit = memory_limit;
  luavm_t *vm = NULL;
  char err[256];
  assert_int_equal(luavm_new(&o, &vm, err, sizeof err), LUAVM_OK);
  luavm_json_register(luavm_state(vm));
  assert_int_equal(luavm_load(vm, "=prelude", prelude, sizeof prelude - 1, err, sizeof err),
                   LUAVM_OK);
  assert_int_equal(luavm_pcall(vm, 0, 0, err, sizeof err), LUAVM_OK);
  return vm;
}

static int run(luavm_t *vm, const char *code, char *err, size_t errlen) {
  lua_State *L = luavm_state(vm);
  int top = lua_gettop(L);
  int rc = luavm_load(vm, "@t.lua", code, strlen(code), err, errlen);
  if (rc == LUAVM_OK)
    rc = luavm_pcall(vm, 0, 0, err, errlen);
  assert_int_equal(lua_gettop(L), top);
  return rc;
}

static void run_ok(luavm_t *vm, const char *code) {
  char err[2048];
  int rc = run(vm, code, err, sizeof err);
  if (rc != LUAVM_OK) {
    fprintf(stderr, "%s\n-> %d: %s\n", code, rc, err); /* fail_msg truncates */
    fail();
  }
}

static void test_round_trip_nested(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "local v = D('{\"a\": [1, 2, {\"b\": null, \"c\": [true, false]}], '\n"
             "  .. '\"d\": {\"e\": \"x\", \"f\": {}}, \"g\": []}')\n"
             "assert(v.a[1] == 1 and v.a[3].b == runnel.null and v.a[3].c[2] == false)\n"
             "assert(v.d.e == 'x' and next(v.d.f) == nil and #v.g == 0)\n"
             "assert(deq(D(E(v)), v))\n"
             /* one key per object, so the text is deterministic */
             "local s = '{\"a\":[1,2.5,\"x\",[],{},[[null]],{\"b\":{\"c\":[true]}}]}'\n"
             "assert(E(D(s)) == s, E(D(s)))\n"
             "assert(E({10, 20, 30}) == '[10,20,30]')\n"
             "assert(E({x = {y = 'z'}}) == '{\"x\":{\"y\":\"z\"}}')\n"
             "assert(E('s') == '\"s\"' and E(true) == 'true' and E(nil) == 'null')\n"
             "assert(D('  \"top\"  ') == 'top' and D('17') == 17 and D('false') == false)\n"
             /* duplicate keys: the last wins */
             "assert(D('{\"k\": 1, \"k\": 2}').k == 2)\n"
             /* a sequence with other keys, or with holes, is an object */
             "assert(deq(D(E({1, 2, x = 3})), {['1'] = 1, ['2'] = 2, x = 3}))\n"
             "assert(deq(D(E({[1] = 'a', [3] = 'c'})), {['1'] = 'a', ['3'] = 'c'}))\n"
             "assert(E({[-1] = 'n'}) == '{\"-1\":\"n\"}')\n");
  luavm_free(vm);
}

static void test_numbers(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "local function int(s, v)\n"
             "  local x = D(s)\n"
             "  assert(math.type(x) == 'integer' and x == v, s)\n"
             "  return x\n"
             "end\n"
             "local function flt(s, v, out)\n"
             "  local x = D(s)\n"
             "  assert(math.type(x) == 'float' and x == v, s)\n"
             "  assert(E(x) == (out or s), s .. ' -> ' .. E(x))\n"
             "end\n"
             "int('0', 0) int('-1', -1) int('42', 42)\n"
             "assert(E(int('9007199254740993', 9007199254740993)) == '9007199254740993')\n"
             "assert(E(int('-9007199254740993', -9007199254740993)) == '-9007199254740993')\n"
             "assert(E(int('9223372036854775807', math.maxinteger)) == '9223372036854775807')\n"
             "assert(E(int('-9223372036854775808', math.mininteger)) == '-9223372036854775808')\n"
             "assert(E(int('123456789012345678', 123456789012345678)) == '123456789012345678')\n"
             "assert(E(int('-0', 0)) == '0')\n"
             /* beyond int64: floats */
             "flt('9223372036854775808', 2^63, '9.2233720368547758e+18')\n"
             "flt('-9223372036854775809', -2^63, '-9.2233720368547758e+18')\n"
             "flt('100000000000000000000', 1e20, '1e+20')\n"
             "flt('1.5', 1.5) flt('-0.25', -0.25) flt('0.1', 0.1) flt('1.0', 1.0)\n"
             "flt('1e300', 1e300, '1e+300') flt('2.5E-3', 0.0025, '0.0025')\n"
             "flt('1E2', 100.0, '100.0') flt('123456789.125', 123456789.125)\n"
             "local nz = D('-0.0') assert(math.type(nz) == 'float' and 1/nz < 0 and E(nz) == '-0.0')\n"
             /* shortest text that reads back the same */
             "for _, x in ipairs({1/3, 2^-1074, 1.7976931348623157e308, 5e-324, 1e15, 1e16,\n"
             "                    -123.456, 3.141592653589793}) do\n"
             "  local y = D(E(x)) assert(math.type(y) == 'float' and y == x, E(x))\n"
             "end\n"
             "assert(E(0.1 + 0.2) == '0.30000000000000004')\n"
             "assert(E(12.34) == '12.34' and E(-0.5) == '-0.5' and E(1e-7) == '1e-07')\n"
             "assert(E(0.000001) == '0.000001' and E(123456.789) == '123456.789')\n"
             "math.randomseed(42)\n"
             "for i = 1, 20000 do\n"
             "  local x = math.random() * 10 ^ math.random(-8, 20)\n"
             "  if i % 2 == 0 then x = math.floor(x * 1000 + 0.5) / 1000 end\n"
             "  if i % 3 == 0 then x = -x end\n"
             "  local s = E(x) local y = D(s)\n"
             "  assert(math.type(y) == 'float' and y == x, s)\n"
             "  assert(#s <= 24, s)\n"
             "end\n"
             "assert(E({1.0, 2}) == '[1.0,2]')\n"
             "local long = '1' .. string.rep('0', 80)\n"
             "assert(math.type(D(long)) == 'float' and D(long) == 1e80)\n"
             "assert(D('0.' .. string.rep('5', 70)) == 0.5555555555555556)\n");
  luavm_free(vm);
}

static void test_keys_are_sorted(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "assert(E({b = 1, a = 2, c = {z = 1, y = 2}}) == '{\"a\":2,\"b\":1,\"c\":{\"y\":2,\"z\":1}}')\n"
             "assert(E({ab = 1, b = 2, a = 3, [''] = 4}) == '{\"\":4,\"a\":3,\"ab\":1,\"b\":2}')\n"
             "assert(E({[10] = 'x', [2] = 'y', a = 1}) == '{\"10\":\"x\",\"2\":\"y\",\"a\":1}')\n"
             "assert(E({['\\xc3\\xa9'] = 1, z = 2}) == '{\"z\":2,\"\\xc3\\xa9\":1}')\n"
             /* the same bytes whatever the insertion order */
             "local a, b = {}, {}\n"
             "for i = 1, 500 do a['k' .. i] = i end\n"
             "for i = 500, 1, -1 do b['k' .. i] = i end\n"
             "for i = 1, 400 do b['k' .. i] = nil end for i = 1, 400 do b['k' .. i] = i end\n"
             "assert(E(a) == E(b))\n"
             "local prev = nil\n"
             "for k in E(a):gmatch('\"(k%d+)\"') do assert(prev == nil or prev < k) prev = k end\n"
             /* nested objects, wide enough to move the key scratch array */
             "local wide = {}\n"
             "for i = 1, 100 do local c = {} for j = 1, 100 do c['c' .. j] = j end wide['p' .. i] = c end\n"
             "local s = E(wide)\n"
             "assert(deq(D(s), wide) and s:sub(1, 14) == '{\"p1\":{\"c1\":1,')\n"
             "fails(function() E({p = {q = {r = print, a = 1}, b = 1}, a = 1}) end, 'value.p.q.r: cannot encode a function')\n"
             "fails(function() E({[3] = {x = {print}}}) end, 'value[\"3\"].x[1]: cannot encode a function')\n");
  luavm_free(vm);
}

static void test_strings(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "local s = D('\"a\\\\nb\\\\t\\\\\"q\\\\\" \\\\\\\\ \\\\/ \\\\u00e9\\\\ud83d\\\\ude00\\\\u0000z\"')\n"
             "assert(s == 'a\\nb\\t\"q\" \\\\ / \\u{e9}\\u{1F600}\\0z', s)\n"
             "assert(D('\"\\u{e9}t\\u{e9}\"') == '\\u{e9}t\\u{e9}')\n"
             "assert(D(E(s)) == s)\n"
             "local ctl = '' for i = 0, 31 do ctl = ctl .. string.char(i) end\n"
             "assert(D(E(ctl)) == ctl)\n"
             "assert(E('a\"b\\\\c\\n') == '\"a\\\\\"b\\\\\\\\c\\\\n\"', E('a\"b\\\\c\\n'))\n"
             "assert(E('\\u{1F600}') == '\"\\u{1F600}\"')\n"
             "assert(E('a/b') == '\"a/b\"')\n"
             "assert(D(E(string.rep('x', 100000))) == string.rep('x', 100000))\n"
             "fails(function() E({k = 'bad\\xff'}) end, 'value.k: string is not valid UTF-8')\n"
             "fails(function() D('\"bad\\xff\"') end, 'invalid JSON')\n"
             "assert(E({['a b'] = 1}) == '{\"a b\":1}')\n");
  luavm_free(vm);
}

static void test_null_and_empty_containers(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  lua_State *L = luavm_state(vm);
  run_ok(vm, "assert(type(runnel.null) == 'userdata')\n"
             "assert(D('null') == runnel.null)\n"
             "local a = D('[null, 1, null]')\n"
             "assert(#a == 3 and a[1] == runnel.null and a[3] == runnel.null)\n"
             "assert(E(a) == '[null,1,null]' and E(runnel.null) == 'null')\n"
             "assert(E({x = runnel.null}) == '{\"x\":null}')\n"
             "assert(E(D('[]')) == '[]' and E(D('{}')) == '{}')\n"
             "assert(E(D('{\"b\":{},\"a\":[]}')) == '{\"a\":[],\"b\":{}}')\n"
             "assert(E({}) == '{}')\n"
             "assert(E(runnel.json.array()) == '[]')\n"
             "local t = runnel.json.array({}) t[1] = 'x'\n"
             "assert(E(t) == '[\"x\"]')\n"
             "assert(E({list = runnel.json.array()}) == '{\"list\":[]}')\n");
  lua_pushlightuserdata(L, luavm_null());
  lua_getglobal(L, "runnel");
  lua_getfield(L, -1, "null");
  assert_true(lua_rawequal(L, -1, -3));
  lua_settop(L, 0);
  luavm_free(vm);
}

static void test_malformed_json(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "fails(function() D('{') end, 'invalid JSON at byte 1: parse error: premature EOF')\n"
             "fails(function() D('[1, 2') end, 'premature EOF')\n"
             "fails(function() D('') end, 'invalid JSON at byte 0')\n"
             "fails(function() D('{\"a\": }') end, 'invalid JSON at byte')\n"
             "fails(function() D('[1,]') end, 'invalid JSON')\n"
             "fails(function() D('tru') end, 'invalid JSON')\n"
             "fails(function() D('{a: 1}') end, 'invalid JSON at byte 2: lexical error: invalid char')\n"
             "fails(function() D('[1] [2]') end, 'trailing garbage')\n"
             "fails(function() D('[01]') end, 'invalid JSON')\n"
             "fails(function() D('// c\\n1') end, 'invalid JSON')\n"
             "fails(function() D('\"\\\\x\"') end, 'invalid JSON')\n"
             "fails(function() D('[NaN]') end, 'invalid JSON')\n"
             /* the Lua error carries the caller's position */
             "fails(function() D('x') end, 't.lua:')\n");
  /* from C: -1, the message, nothing pushed */
  lua_State *L = luavm_state(vm);
  char err[256];
  lua_pushinteger(L, 5);
  static const char bad[] = "{\"a\": [1, 2, {\"b\": tru}]}";
  assert_int_equal(luavm_json_decode(L, bad, sizeof bad - 1, err, sizeof err), -1);
  assert_int_equal(lua_gettop(L), 1);
  assert_non_null(strstr(err, "invalid JSON at byte"));
  assert_non_null(strstr(err, "lexical error"));
  lua_settop(L, 0);
  luavm_free(vm);
}

static void test_encode_errors_name_the_path(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "fails(function() E({items = {1, 2, print}}) end, 'value.items[3]: cannot encode a function')\n"
             "fails(function() E(print) end, 'value: cannot encode a function')\n"
             "fails(function() E({a = {b = {0/0}}}) end, 'value.a.b[1]: cannot encode NaN')\n"
             "fails(function() E({x = math.huge}) end, 'value.x: cannot encode infinity')\n"
             "fails(function() E({x = -math.huge}) end, 'value.x: cannot encode infinity')\n"
             "fails(function() E({['a b'] = {coroutine.create(print)}}) end,\n"
             "      'value[\"a b\"][1]: cannot encode a thread')\n"
             "fails(function() E({a = {[true] = 1}}) end, 'value.a: cannot use a boolean as an object key')\n"
             "fails(function() E({[1.5] = 1}) end, 'value: cannot use a number as an object key')\n"
             "fails(function() E({[7] = {x = print}}) end, 'value[\"7\"].x: cannot encode a function')\n"
             "local t = {} t.self = t\n"
             "fails(function() E(t) end, 'nested deeper than 256 levels (a cycle?)')\n"
             "fails(function() E(t) end, 'value.self.self.self.self....self.self.self.self: ')\n"
             "local c = {} c[1] = {c}\n"
             "fails(function() E(c) end, 'value[1][1][1]')\n"
             /* the encoder is usable after errors */
             "assert(E({1, {2}}) == '[1,[2]]')\n");
  /* from C */
  lua_State *L = luavm_state(vm);
  char err[256];
  char *buf = NULL;
  size_t cap = 0, len = 0;
  lua_pushcfunction(L, luaopen_base);
  assert_int_equal(luavm_json_encode(L, -1, &buf, &cap, &len, err, sizeof err), -1);
  assert_string_equal(err, "value: cannot encode a function");
  assert_int_equal(lua_gettop(L), 1);
  lua_settop(L, 0);
  free(buf);
  luavm_free(vm);
}

static void test_depth_limit(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  run_ok(vm, "local ok = string.rep('[', 256) .. string.rep(']', 256)\n"
             "local v = D(ok)\n"
             "assert(E(v) == ok)\n"
             "local deep = string.rep('{\"k\":', 256) .. '1' .. string.rep('}', 256)\n"
             "assert(E(D(deep)) == deep)\n"
             "local mixed = string.rep('[{\"a\":', 128) .. 'null' .. string.rep('}]', 128)\n"
             "assert(E(D(mixed)) == mixed)\n"
             "fails(function() D('[' .. ok .. ']') end, 'nesting deeper than 256 levels')\n"
             "fails(function() D(string.rep('[', 100000)) end, 'nesting deeper than 256 levels')\n"
             /* 257 levels built in Lua */
             "local t = 1 for i = 1, 257 do t = {t} end\n"
             "fails(function() E(t) end, 'nested deeper than 256 levels')\n"
             "t = t[1] assert(#E(t) == 2 * 256 + 1)\n"
             /* siblings at the generator seams (levels 100 and 200) */
             "local w = 'x' for i = 1, 210 do w = {{i}, w, {i}} end\n"
             "local s = E(w) assert(deq(D(s), w))\n");
  luavm_free(vm);
}

static void test_c_api(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  lua_State *L = luavm_state(vm);
  char err[256];
  static const char doc[] = "{\"id\": 12, \"tags\": [\"a\", \"b\"], \"score\": 0.5}";
  assert_int_equal(luavm_json_decode(L, doc, sizeof doc - 1, err, sizeof err), 0);
  assert_int_equal(lua_gettop(L), 1);
  assert_int_equal(lua_getfield(L, 1, "id"), LUA_TNUMBER);
  assert_true(lua_isinteger(L, -1));
  assert_int_equal(lua_tointeger(L, -1), 12);
  lua_pop(L, 1);

  char *buf = NULL;
  size_t cap = 0, len = 0;
  lua_newtable(L);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  assert_int_equal(luavm_json_encode(L, 2, &buf, &cap, &len, err, sizeof err), 0);
  assert_int_equal(lua_gettop(L), 2);
  assert_true(len > 30 && cap > len && buf[0] == '[' && buf[len - 1] == ']');
  assert_int_equal(strlen(buf), len);
  /* the buffer is reused, and grown when needed */
  char *first = buf;
  lua_pushinteger(L, 1);
  assert_int_equal(luavm_json_encode(L, -1, &buf, &cap, &len, err, sizeof err), 0);
  assert_ptr_equal(buf, first);
  assert_int_equal(len, 1);
  assert_string_equal(buf, "1");
  lua_pushlstring(L, "", 0);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < 1000; i++)
    luaL_addstring(&b, "0123456789");
  luaL_pushresult(&b);
  assert_int_equal(luavm_json_encode(L, -1, &buf, &cap, &len, err, sizeof err), 0);
  assert_int_equal(len, 10002);
  assert_true(cap > 10002);
  free(buf);
  lua_settop(L, 0);
  luavm_free(vm);
}

/* TAPE(text) -> the decoded value and two values rebuilt from its tape. */
static int lua_tape_fn(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  luavm_json_tape_t tape = {0};
  char err[256];
  if (luavm_json_decode_tape(L, text, len, &tape, err, sizeof err) != 0) {
    free(tape.buf);
    return luaL_error(L, "%s", err);
  }
  /* (a Lua error below would leak the tape: the test then fails anyway) */
  luavm_json_push_tape(L, tape.buf, tape.len);
  luavm_json_push_tape(L, tape.buf, tape.len);
  free(tape.buf);
  return 3;
}

/* A tape rebuilds what the parse built: equal values (numbers of the same
 * types, null, the empty arrays' marker), each time new tables. */
static void test_tape_rebuilds_the_decoded_value(void **state) {
  (void)state;
  luavm_t *vm = vm_new(0);
  lua_register(luavm_state(vm), "TAPE", lua_tape_fn);
  run_ok(vm,
         "local docs = {\n"
         "  '{\"a\":[1,2.5,{\"b\":null,\"c\":[]}],\"o\":{\"x\":\"y\",\"n\":{}},\"e\":[],'\n"
         "  .. '\"t\":true,\"f\":false,\"s\":\"str\\\\u0000\\\\u00e9\",\"one\":1.0,\"neg\":-0,'\n"
         "  .. '\"big\":123456789012345678901234,\"exp\":1e3,\"i\":-9007199254740993}',\n"
         "  '[]', '{}', '\"text\"', '42', '-1.5', 'null', 'true', '[[[[[]]]]]',\n"
         "}\n"
         "for _, doc in ipairs(docs) do\n"
         "  local v, r1, r2 = TAPE(doc)\n"
         "  assert(deq(v, r1) and deq(v, r2), doc)\n"
         "  assert(E(r1) == E(v), doc)\n"
         "  if type(v) == 'table' then assert(r1 ~= v and r2 ~= r1, doc) end\n"
         "end\n"
         "local v, r1, r2 = TAPE(docs[1])\n"
         "assert(math.type(r1.one) == 'float' and math.type(r1.neg) == 'integer')\n"
         "assert(math.type(r1.big) == 'float' and r1.i == -9007199254740993)\n"
         "assert(r1.a[3].b == runnel.null and getmetatable(r1.e) ~= nil)\n"
         "assert(getmetatable(r1.o.n) == nil and r1.s == 'str\\0\\xc3\\xa9')\n"
         "r1.a[3].c[1] = 1; r1.o.x = 'z'; r1.e[1] = 2\n"
         "assert(deq(v, r2) and r2.a[3].c ~= r1.a[3].c)\n"
         "local parts = {}\n"
         "for i = 1, 1000 do parts[i] = '\"k' .. i .. '\":[' .. i .. ']' end\n"
         "local bv, b1 = TAPE('{' .. table.concat(parts, ',') .. '}')\n"
         "assert(deq(bv, b1) and b1.k1000[1] == 1000)\n");
  luavm_free(vm);
}

static void test_decode_out_of_memory(void **state) {
  (void)state;
  luavm_t *vm = vm_new(8u << 20);
  char err[1024];
  /* ~2 MiB of text that decodes into far more than 8 MiB of tables */
  int rc = run(vm, "local text = '[' .. string.rep('[1,2,3,4,5,6,7,8],', 120000) .. '0]'\n"
                   "local v = D(text)\n", err, sizeof err);
  assert_int_equal(rc, LUAVM_E_MEMORY);
  /* the parser cut short is freed by the next decode (ASan checks) */
  run_ok(vm, "collectgarbage() assert(D('[1]')[1] == 1)");
  rc = run(vm, "local text = '[' .. string.rep('{\"k\":\"v\"},', 120000) .. '0]'\n"
               "local v = D(text)\n", err, sizeof err);
  assert_int_equal(rc, LUAVM_E_MEMORY);
  luavm_free(vm); /* ... or by lua_close */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_nested),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_keys_are_sorted),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_null_and_empty_containers),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_encode_errors_name_the_path),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_c_api),
      cmocka_unit_test(test_tape_rebuilds_the_decoded_value),
      cmocka_unit_test(test_decode_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
