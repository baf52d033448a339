/*
 * luavm.c: one sandboxed Lua 5.4 state (see luavm.h): the counting
 * allocator, the sandboxed globals, loading in text mode and protected
 * calls under an instruction budget.
 *
 * Invariants:
 *   1. vm->used is the sum of the sizes of the blocks Lua holds; an
 *      allocation that would take it past memory_limit returns NULL (Lua
 *      then runs an emergency collection, retries once, and raises
 *      LUA_ERRMEM). Frees and shrinks always succeed.
 *   2. The count hook, when a budget is set, is installed once at creation
 *      on the main thread and is never removed, so every coroutine inherits
 *      it (lua_newthread copies the creator's hook). Between calls it is
 *      "disarmed" by vm->calls == 0: it returns at once.
 *   3. Once a call has exceeded its budget, the hook of the thread that
 *      noticed fires on every instruction and raises each time, so user
 *      code that catches the error with pcall cannot go on running: the
 *      next instruction outside the pcall raises again, up to ours.
 *
 * Sandbox (unless the options allow them): removed functions are replaced
 * by refusing functions that raise "<name> is not allowed in the sandbox" (clearer for
 * job authors than "attempt to call a nil value"); io and debug become
 * empty tables whose every field access raises the same error.
 *   - os.execute/exit/remove/rename/tmpname/getenv/setlocale (setlocale
 *     also because the locale is process-wide, shared by all jobs)
 *   - io.*, debug.*
 *   - loadfile, dofile, package.loadlib, package.searchpath; require finds
 *     only modules in package.preload (and what is already loaded)
 *   - load always compiles in text mode ("t"), whatever mode is asked for
 *   - collectgarbage only with "collect", "count", "step", "isrunning": a
 *     stopped collector would look like a leak until the memory limit
 *   - print goes to opts.print
 */
#include "luavm.h"
#include "luavm_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

/* Instructions between two hook calls: small enough to stop a runaway
 * loop promptly, large enough that the hook costs nothing measurable. */
#define LUAVM_HOOK_PERIOD 1000

struct luavm_s {
  lua_State *L;
  luavm_options_t opts;
  size_t used;           /* bytes held by Lua (invariant 1) */
  int64_t executed;      /* instructions run by the current outermost call */
  int hook_period;       /* min(LUAVM_HOOK_PERIOD, budget) */
  int calls;             /* nesting depth of luavm_pcall; 0 = hook disarmed */
  bool budget_exceeded;  /* set by the hook during the current call */
  bool memory_refused;   /* the allocator refused during the current call */
};

void luavm__seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

void luavm_options_defaults(luavm_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->memory_limit = (size_t)256 << 20;
  opts->instruction_budget = 10000000;
}

/* ---- memory --------------------------------------------------------------- */

/* Lua passes the object type in osize when ptr is NULL, so the old size is
 * osize only for an existing block. */
static void *luavm__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  luavm_t *vm = ud;
  size_t old = ptr != NULL ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    vm->used -= old;
    return NULL;
  }
  size_t limit = vm->opts.memory_limit;
  if (limit != 0 && nsize > old && (vm->used > limit || nsize - old > limit - vm->used)) {
    vm->memory_refused = true;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL)
    return NULL; /* on a failed shrink Lua keeps the old block: used unchanged */
  vm->used = vm->used - old + nsize;
  return p;
}

size_t luavm_memory(const luavm_t *vm) {
  return vm->used;
}

/* ---- instruction budget --------------------------------------------------- */

static void luavm__hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  void *ud;
  lua_getallocf(L, &ud);
  luavm_t *vm = ud;
  int period = lua_gethookcount(L);
  if (vm->calls == 0 || (vm->executed += period) <= vm->opts.instruction_budget) {
    if (period != vm->hook_period) /* a coroutine left at 1 by invariant 3 */
      lua_sethook(L, luavm__hook, LUA_MASKCOUNT, vm->hook_period);
    return;
  }
  vm->budget_exceeded = true;
  if (period != 1)
    lua_sethook(L, luavm__hook, LUA_MASKCOUNT, 1);
  /* Level 0 is the Lua function being run: a hook has no frame of its own. */
  luaL_where(L, 0);
  lua_pushfstring(L, "instruction budget of %I exceeded", (lua_Integer)vm->opts.instruction_budget);
  lua_concat(L, 2);
  lua_error(L);
}

/* ---- protected calls ------------------------------------------------------ */

/* The message handler: as lua.c's, the message plus a traceback. */
static int luavm__traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void luavm__take_message(lua_State *L, char *err, size_t errlen) {
  const char *msg = lua_tostring(L, -1);
  luavm__seterr(err, errlen, "%s", msg != NULL ? msg : "(error object is not a string)");
  lua_pop(L, 1);
}

int luavm_pcall(luavm_t *vm, int nargs, int nresults, char *err, size_t errlen) {
  lua_State *L = vm->L;
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, luavm__traceback);
  lua_insert(L, base);
  if (vm->calls++ == 0) { /* a nested call shares the outer call's budget */
    vm->executed = 0;
    vm->budget_exceeded = false;
    vm->memory_refused = false;
  }
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  bool exceeded = vm->budget_exceeded, refused = vm->memory_refused;
  if (--vm->calls == 0 && vm->hook_period != 0 && lua_gethookcount(L) != vm->hook_period)
    lua_sethook(L, luavm__hook, LUA_MASKCOUNT, vm->hook_period);
  if (status == LUA_OK)
    return LUAVM_OK;
  if (exceeded) {
    luavm__take_message(L, err, errlen);
    return LUAVM_E_BUDGET;
  }
  if (status == LUA_ERRMEM || (status == LUA_ERRERR && refused)) {
    lua_pop(L, 1); /* "not enough memory" without a position: make it useful */
    if (refused)
      luavm__seterr(err, errlen, "not enough memory (memory limit of %zu bytes reached)",
                    vm->opts.memory_limit);
    else
      luavm__seterr(err, errlen, "not enough memory");
    /* Lua 5.4 does not collect and retry when an allocation is refused, so
     * the failed call's garbage would keep every later call at the limit:
     * collect it now, once the outermost call has unwound. */
    if (vm->calls == 0) lua_gc(L, LUA_GCCOLLECT);
    return LUAVM_E_MEMORY;
  }
  luavm__take_message(L, err, errlen);
  return LUAVM_E_RUNTIME;
}

/* ---- loading -------------------------------------------------------------- */

int luavm_load(luavm_t *vm, const char *chunkname, const char *text, size_t len, char *err,
               size_t errlen) {
  int status = luaL_loadbufferx(vm->L, text, len, chunkname, "t");
  if (status == LUA_OK)
    return LUAVM_OK;
  luavm__take_message(vm->L, err, errlen);
  return status == LUA_ERRMEM ? LUAVM_E_MEMORY : LUAVM_E_SYNTAX;
}

int luavm_load_file(luavm_t *vm, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    luavm__seterr(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16384;
      char *p = realloc(text, ncap);
      if (p == NULL) {
        rc = -ENOMEM;
        break;
      }
      text = p;
      cap = ncap;
    }
    size_t n = fread(text + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f))
        rc = -EIO;
      break;
    }
  }
  fclose(f);
  if (rc != 0) {
    luavm__seterr(err, errlen, "%s: %s", path, strerror(-rc));
    free(text);
    return rc;
  }
  /* As lua.c: a first line starting with '#' (#!/usr/bin/env ...) is a
   * comment. Blank it rather than drop it so line numbers stay right. */
  if (len > 0 && text[0] == '#')
    for (size_t i = 0; i < len && text[i] != '\n'; i++)
      text[i] = ' ';
  size_t namelen = strlen(path) + 2;
  char *chunkname = malloc(namelen);
  if (chunkname == NULL) {
    free(text);
    luavm__seterr(err, errlen, "%s: %s", path, strerror(ENOMEM));
    return -ENOMEM;
  }
  snprintf(chunkname, namelen, "@%s", path);
  rc = luavm_load(vm, chunkname, text, len, err, errlen);
  free(chunkname);
  free(text);
  return rc;
}

/* ---- sandbox -------------------------------------------------------------- */

static int luavm__forbidden(lua_State *L) {
  return luaL_error(L, "%s is not allowed in the sandbox", lua_tostring(L, lua_upvalueindex(1)));
}

/* Replaces t[field] (t at idx) with a refusing function named "prefix.field". */
static void luavm__forbid(lua_State *L, int idx, const char *prefix, const char *field) {
  idx = lua_absindex(L, idx);
  if (prefix != NULL)
    lua_pushfstring(L, "%s.%s", prefix, field);
  else
    lua_pushstring(L, field);
  lua_pushcclosure(L, luavm__forbidden, 1);
  lua_setfield(L, idx, field);
}

/* __index of a forbidden library: names the field the script reached for. */
static int luavm__forbidden_lib(lua_State *L) {
  return luaL_error(L, "%s.%s is not allowed in the sandbox",
                    lua_tostring(L, lua_upvalueindex(1)), luaL_tolstring(L, 2, NULL));
}

/* Replaces the library `name` (global and package.loaded) by an empty
 * table whose every field raises. */
static void luavm__forbid_lib(lua_State *L, const char *name) {
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  lua_pushcclosure(L, luavm__forbidden_lib, 1);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setglobal(L, name);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_insert(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t". The
 * env argument keeps its none-ness: load sets _ENV only when one is given,
 * and the default is the (sandboxed) global table. */
static int luavm__load(lua_State *L) {
  int n = lua_gettop(L);
  if (n < 3)
    lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n < 3 ? 3 : n, LUA_MULTRET);
  return lua_gettop(L);
}

static int luavm__collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "collect") != 0 && strcmp(opt, "count") != 0 && strcmp(opt, "step") != 0 &&
      strcmp(opt, "isrunning") != 0)
    return luaL_error(L, "collectgarbage(\"%s\") is not allowed in the sandbox", opt);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* print: as Lua's (tostring of each argument, tab-separated), one callback
 * per call, without the newline. */
static int luavm__print(lua_State *L) {
  luavm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  if (vm->opts.print != NULL) {
    vm->opts.print(vm->opts.print_opaque, text, len);
  } else {
    fwrite(text, 1, len, stderr);
    fputc('\n', stderr);
  }
  return 0;
}

/* Wraps the function t[field] (t at idx) in a C closure fn with the
 * original as upvalue 1. */
static void luavm__wrap(lua_State *L, int idx, const char *field, lua_CFunction fn) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, field);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, idx, field);
}

/* A package.searchers entry that only explains why nothing else is
 * searched (require appends what searchers return to its message). */
static int luavm__no_file_searcher(lua_State *L) {
  lua_pushliteral(L, "\n\trequire of files is not allowed in the sandbox");
  return 1;
}

/* Runs protected (lua_pcall), so that running out of memory while
 * building the globals is an error, not a panic. */
static int luavm__setup(lua_State *L) {
  luavm_t *vm = lua_touserdata(L, 1);
  const luavm_options_t *o = &vm->opts;
  luaL_openlibs(L);
  lua_pushglobaltable(L);
  int g = lua_gettop(L);

  luavm__wrap(L, g, "load", luavm__load);
  luavm__wrap(L, g, "collectgarbage", luavm__collectgarbage);
  lua_pushlightuserdata(L, vm);
  lua_pushcclosure(L, luavm__print, 1);
  lua_setfield(L, g, "print");

  if (!o->allow_os) {
    static const char *const os_forbidden[] = {"execute", "exit",    "remove",   "rename",
                                               "tmpname", "getenv", "setlocale"};
    lua_getfield(L, g, "os");
    for (size_t i = 0; i < sizeof os_forbidden / sizeof os_forbidden[0]; i++)
      luavm__forbid(L, -1, "os", os_forbidden[i]);
    lua_pop(L, 1);
  }
  if (!o->allow_io)
    luavm__forbid_lib(L, "io");
  if (!o->allow_debug)
    luavm__forbid_lib(L, "debug");
  if (!o->allow_load) {
    luavm__forbid(L, g, NULL, "loadfile");
    luavm__forbid(L, g, NULL, "dofile");
    lua_getfield(L, g, "package");
    int pkg = lua_gettop(L);
    luavm__forbid(L, pkg, "package", "loadlib");
    luavm__forbid(L, pkg, "package", "searchpath");
    lua_pushliteral(L, "");
    lua_setfield(L, pkg, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, pkg, "cpath");
    /* Keep searchers[1] (package.preload); drop the file searchers. */
    lua_createtable(L, 2, 0);
    lua_getfield(L, pkg, "searchers");
    lua_rawgeti(L, -1, 1);
    lua_rawseti(L, -3, 1);
    lua_pop(L, 1);
    lua_pushcfunction(L, luavm__no_file_searcher);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, pkg, "searchers");
    lua_pop(L, 1);
  }
  lua_newtable(L);
  lua_setfield(L, g, "runnel");
  return 0;
}

static int luavm__panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "runnel: unprotected Lua error: %s\n", msg != NULL ? msg : "?");
  return 0; /* Lua aborts */
}

int luavm_new(const luavm_options_t *opts, luavm_t **out, char *err, size_t errlen) {
  *out = NULL;
  luavm_t *vm = calloc(1, sizeof *vm);
  if (vm == NULL) {
    luavm__seterr(err, errlen, "cannot allocate a Lua state: %s", strerror(ENOMEM));
    return -ENOMEM;
  }
  if (opts != NULL)
    vm->opts = *opts;
  else
    luavm_options_defaults(&vm->opts);
  if (vm->opts.instruction_budget < 0)
    vm->opts.instruction_budget = 0;
  vm->L = lua_newstate(luavm__alloc, vm);
  if (vm->L == NULL) {
    luavm__seterr(err, errlen, "cannot create a Lua state within %zu bytes",
                  vm->opts.memory_limit);
    free(vm);
    return LUAVM_E_MEMORY;
  }
  lua_atpanic(vm->L, luavm__panic);
  lua_pushcfunction(vm->L, luavm__setup);
  lua_pushlightuserdata(vm->L, vm);
  int status = lua_pcall(vm->L, 1, 0, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(vm->L, -1);
    luavm__seterr(err, errlen, "cannot set up the Lua state: %s", msg != NULL ? msg : "?");
    lua_close(vm->L);
    free(vm);
    return status == LUA_ERRMEM ? LUAVM_E_MEMORY : LUAVM_E_RUNTIME;
  }
  if (vm->opts.instruction_budget > 0) {
    vm->hook_period = vm->opts.instruction_budget < LUAVM_HOOK_PERIOD
                          ? (int)vm->opts.instruction_budget
                          : LUAVM_HOOK_PERIOD;
    lua_sethook(vm->L, luavm__hook, LUA_MASKCOUNT, vm->hook_period);
  }
  *out = vm;
  return LUAVM_OK;
}

void luavm_free(luavm_t *vm) {
  if (vm == NULL)
    return;
  lua_close(vm->L);
  free(vm);
}

lua_State *luavm_state(luavm_t *vm) {
  return vm->L;
}
