/* Tests for runtime/luavm.c: loading, errors, the sandbox, the instruction
 * budget and the memory limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <lauxlib.h>

#include "luavm.h"

static luavm_t *vm_new(const luavm_options_t *opts) {
  luavm_options_t o;
  if (opts == NULL) {
    luavm_options_defaults(&o);
    opts = &o;
  }
  luavm_t *vm = NULL;
  char err[256];
  assert_int_equal(luavm_new(opts, &vm, err, sizeof err), LUAVM_OK);
  assert_non_null(vm);
  return vm;
}

/* Loads and runs code as "@job.lua" with no results; returns the luavm
 * code and leaves the message in err. The stack must come back as it was. */
static int run(luavm_t *vm, const char *code, char *err, size_t errlen) {
  lua_State *L = luavm_state(vm);
  int top = lua_gettop(L);
  err[0] = '\0';
  int rc = luavm_load(vm, "@job.lua", code, strlen(code), err, errlen);
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

/* Runs code that must fail with rc and a message containing want. */
static void run_fails(luavm_t *vm, const char *code, int want_rc, const char *want) {
  char err[2048];
  int rc = run(vm, code, err, sizeof err);
  if (rc != want_rc || strstr(err, want) == NULL) {
    fprintf(stderr, "%s\n-> %d: %s\nwanted %d with \"%s\"\n", code, rc, err, want_rc, want);
    fail();
  }
}

static void test_defaults(void **state) {
  (void)state;
  luavm_options_t o;
  luavm_options_defaults(&o);
  assert_int_equal(o.memory_limit, 256u << 20);
  assert_int_equal(o.instruction_budget, 10000000);
  assert_false(o.allow_os || o.allow_io || o.allow_debug || o.allow_load);
  luavm_t *vm = vm_new(NULL);
  assert_true(luavm_memory(vm) > 0);
  run_ok(vm, "assert(type(runnel) == 'table' and next(runnel) == nil)");
  luavm_free(vm);
  luavm_free(NULL);
}

static void test_syntax_error_names_file_and_line(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  lua_State *L = luavm_state(vm);
  char err[512];
  const char *code = "local x = 1\nx = = 2\n";
  assert_int_equal(luavm_load(vm, "@jobs/bad.lua", code, strlen(code), err, sizeof err),
                   LUAVM_E_SYNTAX);
  assert_int_equal(lua_gettop(L), 0);
  assert_non_null(strstr(err, "jobs/bad.lua:2:"));
  luavm_free(vm);
}

static void test_runtime_error_has_position_and_traceback(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  lua_State *L = luavm_state(vm);
  char err[2048];
  lua_pushinteger(L, 7); /* something below the call must survive */
  assert_int_equal(run(vm, "local function f()\n  error('boom')\nend\nf()\n", err, sizeof err),
                   LUAVM_E_RUNTIME);
  assert_true(strncmp(err, "job.lua:2: boom\n", 16) == 0);
  assert_non_null(strstr(err, "stack traceback:"));
  assert_non_null(strstr(err, "job.lua:4:"));
  assert_int_equal(lua_tointeger(L, 1), 7);
  run_fails(vm, "error({})", LUAVM_E_RUNTIME, "(error object is a table value)");
  run_fails(vm, "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
            LUAVM_E_RUNTIME, "custom");
  run_fails(vm, "local t = nil; return t.x", LUAVM_E_RUNTIME, "job.lua:1: attempt to index");
  luavm_free(vm);
}

static void test_pcall_returns_results(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  lua_State *L = luavm_state(vm);
  char err[256];
  const char *code = "return function(a, b) return a + b, a * b end";
  assert_int_equal(luavm_load(vm, "=c", code, strlen(code), err, sizeof err), LUAVM_OK);
  assert_int_equal(luavm_pcall(vm, 0, 1, err, sizeof err), LUAVM_OK);
  lua_pushinteger(L, 3);
  lua_pushinteger(L, 4);
  assert_int_equal(luavm_pcall(vm, 2, LUA_MULTRET, err, sizeof err), LUAVM_OK);
  assert_int_equal(lua_gettop(L), 2);
  assert_int_equal(lua_tointeger(L, 1), 7);
  assert_int_equal(lua_tointeger(L, 2), 12);
  luavm_free(vm);
}

static void test_forbidden_functions_raise(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  static const char *const cases[][2] = {
      {"os.execute('true')", "os.execute is not allowed in the sandbox"},
      {"os.exit(1)", "os.exit is not allowed in the sandbox"},
      {"os.remove('/tmp/x')", "os.remove is not allowed"},
      {"os.rename('/tmp/x', '/tmp/y')", "os.rename is not allowed"},
      {"os.tmpname()", "os.tmpname is not allowed"},
      {"os.getenv('HOME')", "os.getenv is not allowed"},
      {"os.setlocale('C')", "os.setlocale is not allowed"},
      {"io.open('/etc/passwd')", "io.open is not allowed in the sandbox"},
      {"io.write('x')", "io.write is not allowed"},
      {"local f = io.lines", "io.lines is not allowed"},
      {"loadfile('/etc/passwd')", "loadfile is not allowed"},
      {"dofile('/etc/passwd')", "dofile is not allowed"},
      {"debug.getinfo(1)", "debug.getinfo is not allowed"},
      {"debug.sethook()", "debug.sethook is not allowed"},
      {"package.loadlib('libc.so.6', 'system')", "package.loadlib is not allowed"},
      {"package.searchpath('x', '/?.lua')", "package.searchpath is not allowed"},
      {"require('socket')", "require of files is not allowed in the sandbox"},
      {"require('io').open('/etc/passwd')", "io.open is not allowed"},
      {"require('debug').getregistry()", "debug.getregistry is not allowed"},
      {"require('os').execute('true')", "os.execute is not allowed"},
      {"package.loaded.io.open('/etc/passwd')", "io.open is not allowed"},
      {"collectgarbage('stop')", "collectgarbage(\"stop\") is not allowed"},
      {"setmetatable(io, {})", "cannot change a protected metatable"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_fails(vm, cases[i][0], LUAVM_E_RUNTIME, cases[i][1]);
  /* the message carries the caller's position */
  run_fails(vm, "\nos.execute('true')", LUAVM_E_RUNTIME, "job.lua:2: os.execute");
  luavm_free(vm);
}

static void test_allowed_functions_work(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  run_ok(vm, "assert(string.format('%d-%s', 3, 'x') == '3-x')\n"
             "assert(('abc'):upper() == 'ABC')\n"
             "assert(math.floor(3.7) == 3 and math.type(math.floor(3.7)) == 'integer')\n"
             "assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
             "assert(os.date('!%Y', 0) == '1970')\n"
             "local t = {3, 1, 2}; table.sort(t); assert(table.concat(t, ',') == '1,2,3')\n"
             "local ok, e = pcall(error, 'x'); assert(not ok and e == 'x')\n"
             "assert(select('#', xpcall(function() return 1, 2 end, print)) == 3)\n"
             "local co = coroutine.wrap(function() coroutine.yield(1) return 2 end)\n"
             "assert(co() == 1 and co() == 2)\n"
             "assert(utf8.char(233) == '\\u{e9}' and utf8.len('\\u{e9}') == 1)\n"
             "assert(tostring(nil) == 'nil' and tonumber('0x10') == 16)\n"
             "assert(rawequal(rawget({a = 1}, 'a'), 1) and rawlen({1, 2}) == 2)\n"
             "assert(getmetatable(setmetatable({}, {__index = {}})) ~= nil)\n"
             "for k, v in pairs({a = 1}) do assert(k == 'a' and v == 1) end\n"
             "for i, v in ipairs({5}) do assert(i == 1 and v == 5) end\n"
             "assert(collectgarbage('count') > 0 and collectgarbage() == 0)\n"
             "assert(collectgarbage('step') ~= nil and collectgarbage('isrunning'))\n"
             "assert(type(string.dump) == 'function' and _VERSION == 'Lua 5.4')\n");
  /* require of a preloaded module */
  run_ok(vm, "package.preload.mymod = function(name) return {name = name} end\n"
             "assert(require('mymod').name == 'mymod')\n"
             "assert(require('string') == string)\n");
  luavm_free(vm);
}

static void test_options_allow(void **state) {
  (void)state;
  luavm_options_t o;
  luavm_options_defaults(&o);
  o.allow_os = o.allow_io = o.allow_debug = o.allow_load = true;
  luavm_t *vm = vm_new(&o);
  run_ok(vm, "assert(type(os.getenv('PATH')) == 'string')\n"
             "assert(io.type(io.stderr) == 'file')\n"
             "assert(debug.getinfo(1).currentline == 3)\n"
             "assert(type(loadfile) == 'function' and package.path ~= '')\n"
             "assert(#package.searchers == 4)\n");
  luavm_free(vm);
}

static void test_load_text_only(void **state) {
  (void)state;
  luavm_t *vm = vm_new(NULL);
  run_ok(vm, "assert(load('return 1+1')() == 2)\n"
             /* an explicit env, and the default: the sandboxed globals */
             "assert(load('return x', 'c', 't', {x = 5})() == 5)\n"
             "assert(load('return string', 'c')() == string)\n"
             "assert(not pcall(load('return io.open(\"/etc/passwd\")')))\n"
             "assert(load('return _ENV', 'c', 't', nil)() == nil)\n"
             /* asking for binary mode still compiles text (mode is forced) */
             "assert(load('return 3', 'c', 'b')() == 3)\n"
             /* a reader function */
             "local parts = {'return ', '4'}\n"
             "assert(load(function() return table.remove(parts, 1) end)() == 4)\n"
             /* binary chunks are refused, whatever mode is asked for */
             "local bin = string.dump(function() return 1 end)\n"
             "local f, e = load(bin)\n"
             "assert(f == nil and e:find('attempt to load a binary chunk'), e)\n"
             "f, e = load(bin, 'b', 'b')\n"
             "assert(f == nil and e:find('binary chunk'), e)\n"
             "f, e = load('\\27Lua\\x54\\0\\x19\\x93\\r\\n\\x1a\\n', 'x', 'bt')\n"
             "assert(f == nil and e:find('binary chunk'), e)\n"
             "local parts2 = {'\\27Lua', '\\x54'}\n"
             "f, e = load(function() return table.remove(parts2, 1) end)\n"
             "assert(f == nil and e:find('binary chunk'), e)\n"
             "f, e = load('return +')\n"
             "assert(f == nil and e:find('unexpected symbol'), e)\n");
  /* from C as well */
  char err[256];
  static const char bin[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n";
  assert_int_equal(luavm_load(vm, "=bin", bin, sizeof bin - 1, err, sizeof err),
                   LUAVM_E_SYNTAX);
  assert_non_null(strstr(err, "binary chunk"));
  luavm_free(vm);
}

static void test_budget_stops_infinite_loop(void **state) {
  (void)state;
  luavm_options_t o;
  luavm_options_defaults(&o);
  o.instruction_budget = 100000;
  luavm_t *vm = vm_new(&o);
  run_fails(vm, "while true do end", LUAVM_E_BUDGET,
            "job.lua:1: instruction budget of 100000 exceeded");
  run_ok(vm, "x = 1 + 1");
  /* catching the budget error does not help: the next instruction raises */
  run_fails(vm, "while true do pcall(function() while true do end end) end", LUAVM_E_BUDGET,
            "instruction budget of 100000 exceeded");
  run_fails(vm, "while true do pcall(function() local i = 0 while i < 5000 do i = i + 1 end end) end",
            LUAVM_E_BUDGET, "instruction budget");
  run_fails(vm, "local t = {} for i = 1, 1e9 do local ok = pcall(error, i) end", LUAVM_E_BUDGET,
            "instruction budget");
  /* a coroutine made in one call is still bounded in the next */
  run_ok(vm, "spin = coroutine.wrap(function() while true do end end)");
  run_fails(vm, "spin()", LUAVM_E_BUDGET, "instruction budget");
  run_ok(vm, "co = coroutine.create(function() while true do end end)");
  run_fails(vm, "while true do coroutine.resume(co) end", LUAVM_E_BUDGET, "instruction budget");
  /* the budget is per call, not cumulative */
  for (int i = 0; i < 50; i++)
    run_ok(vm, "local n = 0 for i = 1, 10000 do n = n + i end assert(n == 50005000)");
  luavm_free(vm);

  /* a budget smaller than the hook period */
  o.instruction_budget = 50;
  vm = vm_new(&o);
  run_ok(vm, "local a = 1");
  run_fails(vm, "for i = 1, 100 do end", LUAVM_E_BUDGET, "instruction budget of 50 exceeded");
  run_ok(vm, "local a = 1");
  luavm_free(vm);

  /* no budget */
  o.instruction_budget = 0;
  vm = vm_new(&o);
  run_ok(vm, "for i = 1, 3e6 do end");
  luavm_free(vm);
}

static void test_memory_limit(void **state) {
  (void)state;
  luavm_options_t o;
  luavm_options_defaults(&o);
  o.memory_limit = 32u << 20;
  o.instruction_budget = 0; /* the memory limit must stop these, not the budget */
  luavm_t *vm = vm_new(&o);
  run_ok(vm, "collectgarbage()");
  size_t base = luavm_memory(vm);
  assert_true(base < 1u << 20);

  run_fails(vm, "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end",
            LUAVM_E_MEMORY, "not enough memory (memory limit of 33554432 bytes reached)");
  assert_true(luavm_memory(vm) <= o.memory_limit);
  run_ok(vm, "assert(#string.rep('y', 100) == 100)");
  run_ok(vm, "collectgarbage()");
  assert_true(luavm_memory(vm) < base + 64 * 1024);

  /* Lua caps strings at INT_MAX bytes; below that the limit refuses */
  run_fails(vm, "local s = string.rep('x', 1e10)", LUAVM_E_RUNTIME, "resulting string too large");
  run_fails(vm, "local s = string.rep('x', 1e9)", LUAVM_E_MEMORY, "not enough memory");
  run_fails(vm, "local s = string.rep('x', 4e7)", LUAVM_E_MEMORY, "not enough memory");
  run_fails(vm, "local s = string.rep('x', 1e6) local t = {} while true do t[#t + 1] = s .. #t end",
            LUAVM_E_MEMORY, "not enough memory");
  run_fails(vm, "local t = {} for i = 1, 1e9 do t[i] = i end", LUAVM_E_MEMORY,
            "not enough memory");
  /* user code may catch it itself */
  run_ok(vm, "local ok, e = pcall(string.rep, 'x', 1e9)\n"
             "assert(not ok and e == 'not enough memory')");
  /* an error raised with the state at its limit (the traceback handler
   * may itself run out) is still a clean failure */
  char err[1024];
  int rc = run(vm, "big = {} pcall(function() for i = 1, 1e9 do big[i] = i end end) error('after')",
               err, sizeof err);
  assert_true(rc == LUAVM_E_MEMORY || (rc == LUAVM_E_RUNTIME && strstr(err, "after") != NULL));
  run_ok(vm, "big = nil collectgarbage()");
  assert_true(luavm_memory(vm) < base + 64 * 1024);
  run_ok(vm, "x = 1");
  luavm_free(vm);

  /* too small to even create the state */
  o.memory_limit = 4096;
  luavm_t *tiny = NULL;
  assert_int_equal(luavm_new(&o, &tiny, err, sizeof err), LUAVM_E_MEMORY);
  assert_null(tiny);
  o.memory_limit = 20000;
  rc = luavm_new(&o, &tiny, err, sizeof err);
  assert_int_equal(rc, LUAVM_E_MEMORY);
  assert_non_null(strstr(err, "not enough memory"));
}

typedef struct {
  char text[256];
  int calls;
} printed_t;

static void capture_print(void *opaque, const char *text, size_t len) {
  printed_t *p = opaque;
  p->calls++;
  snprintf(p->text, sizeof p->text, "%.*s", (int)len, text);
}

static void test_print_goes_to_callback(void **state) {
  (void)state;
  printed_t p = {.calls = 0};
  luavm_options_t o;
  luavm_options_defaults(&o);
  o.print = capture_print;
  o.print_opaque = &p;
  luavm_t *vm = vm_new(&o);
  run_ok(vm, "print('a', 1, nil, true, 1.5)");
  assert_int_equal(p.calls, 1);
  assert_string_equal(p.text, "a\t1\tnil\ttrue\t1.5");
  run_ok(vm, "print(setmetatable({}, {__tostring = function() return 'T' end}))");
  assert_string_equal(p.text, "T");
  run_ok(vm, "print()");
  assert_int_equal(p.calls, 3);
  assert_string_equal(p.text, "");
  luavm_free(vm);
}

static void test_load_file(void **state) {
  (void)state;
  const char *base = getenv("RUNNEL_TEST_TMP");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  mkdir(base, 0755);
  char path[512];
  snprintf(path, sizeof path, "%s/luavm-XXXXXX", base);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *code = "#!/usr/bin/env runnel\nx = 41\nerror('at line three')\n";
  assert_int_equal(write(fd, code, strlen(code)), (ssize_t)strlen(code));
  close(fd);

  luavm_t *vm = vm_new(NULL);
  char err[1024], want[600];
  assert_int_equal(luavm_load_file(vm, path, err, sizeof err), LUAVM_OK);
  assert_int_equal(luavm_pcall(vm, 0, 0, err, sizeof err), LUAVM_E_RUNTIME);
  snprintf(want, sizeof want, "%s:3: at line three", path);
  assert_true(strncmp(err, want, strlen(want)) == 0);
  run_ok(vm, "assert(x == 41)");
  unlink(path);

  assert_true(luavm_load_file(vm, path, err, sizeof err) < 0);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "No such file"));
  assert_int_equal(lua_gettop(luavm_state(vm)), 0);
  luavm_free(vm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_syntax_error_names_file_and_line),
      cmocka_unit_test(test_runtime_error_has_position_and_traceback),
      cmocka_unit_test(test_pcall_returns_results),
      cmocka_unit_test(test_forbidden_functions_raise),
      cmocka_unit_test(test_allowed_functions_work),
      cmocka_unit_test(test_options_allow),
      cmocka_unit_test(test_load_text_only),
      cmocka_unit_test(test_budget_stops_infinite_loop),
      cmocka_unit_test(test_memory_limit),
      cmocka_unit_test(test_print_goes_to_callback),
      cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
