/*
 * luavm.h: one sandboxed Lua 5.4 state, as every job (and later the Lua
 * transform of connectors) runs its code in.
 *
 * - Memory: a lua_Alloc that counts bytes and refuses allocations past
 *   memory_limit, so a memory bomb fails with a Lua "not enough memory"
 *   error inside that call instead of taking the worker down.
 * - CPU: an instruction-count hook (lua_sethook with LUA_MASKCOUNT) armed by
 *   luavm_pcall; a call that runs more than instruction_budget VM
 *   instructions is stopped with LUAVM_E_BUDGET.
 * - Sandbox: user code is loaded in text mode only, into the global table
 *   from which os.execute, os.exit, os.remove, os.rename, os.tmpname,
 *   os.getenv, io, loadfile, dofile, load of binary chunks, debug,
 *   package.loadlib, package.cpath/path searchers and require of files are
 *   removed unless the options allow them. "Removed" means replaced by a
 *   refusing function that raises "<name> is not allowed in the sandbox"
 *   (io and debug become empty tables whose every field raises so; require finds only
 *   package.preload modules and says why it searched no files), so a job
 *   author gets a clear message rather than "attempt to call a nil value".
 *   Also removed: os.setlocale (process-wide), package.searchpath, and
 *   collectgarbage options other than collect/count/step/isrunning.
 *   Kept: base functions (pairs,
 *   ipairs, type, tostring, tonumber, select, error, assert, pcall, xpcall,
 *   next, rawget/rawset/rawequal/rawlen, setmetatable, getmetatable,
 *   print -> the worker's log), string, table, math, utf8, coroutine,
 *   os.time, os.clock, os.date, and load of text chunks into a given env.
 * - Errors: every call goes through lua_pcall with a message handler that
 *   appends a traceback; messages keep Lua's "file:line:" prefix.
 * - warn() is a no-op (no warning function is installed).
 *
 * Threads: a luavm_t belongs to one thread at a time.
 */
#ifndef RUNNEL_LUAVM_H
#define RUNNEL_LUAVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>

/* Results of luavm_pcall and luavm_load_*. */
enum {
  LUAVM_OK = 0,
  LUAVM_E_SYNTAX = -2001,  /* the chunk does not compile */
  LUAVM_E_RUNTIME = -2002, /* a Lua error was raised */
  LUAVM_E_MEMORY = -2003,  /* memory_limit reached */
  LUAVM_E_BUDGET = -2004,  /* instruction_budget exhausted */
};

typedef struct {
  size_t memory_limit;          /* bytes for the whole state; 0 = none */
  int64_t instruction_budget;   /* per luavm_pcall; 0 = none */
  bool allow_os;                /* keep os.execute/exit/remove/rename/getenv/tmpname */
  bool allow_io;                /* keep io */
  bool allow_debug;             /* keep debug */
  bool allow_load;              /* keep loadfile/dofile/require of files */
  /* Where print() goes (one call per print, text without newline); NULL:
   * stderr. */
  void (*print)(void *opaque, const char *text, size_t len);
  void *print_opaque;
} luavm_options_t;

typedef struct luavm_s luavm_t;

void luavm_options_defaults(luavm_options_t *opts); /* 256 MiB, 10M instructions */

/* Creates a state with the sandbox applied and the `runnel` global table
 * created (empty; the runtime registers its primitives into it). opts is
 * copied (NULL: defaults). Returns 0 and *out, LUAVM_E_MEMORY when
 * memory_limit is too small for the state itself, or -ENOMEM; err says
 * why. */
int luavm_new(const luavm_options_t *opts, luavm_t **out, char *err, size_t errlen);
void luavm_free(luavm_t *vm);

lua_State *luavm_state(luavm_t *vm);

/* Loads a text chunk (chunkname as Lua wants it, e.g. "@jobs/wc.lua" so
 * messages read "jobs/wc.lua:3: ...") and leaves the compiled function on
 * the stack. LUAVM_E_SYNTAX with the compiler's message in err. */
int luavm_load(luavm_t *vm, const char *chunkname, const char *text, size_t len, char *err,
               size_t errlen);
/* Reads path and loads it as above (chunkname "@path"); a first line
 * starting with '#' is a comment, as for the lua command. -errno (and
 * "path: reason" in err) when the file cannot be read. */
int luavm_load_file(luavm_t *vm, const char *path, char *err, size_t errlen);

/* lua_pcall with the traceback handler, the instruction budget armed and
 * the memory limit enforced. On error the stack is as before the call
 * minus the function and arguments, err holds the message (first line is
 * Lua's "file:line: message"; then "stack traceback:"), and the return
 * value says which kind of failure. LUAVM_E_MEMORY has no position or
 * traceback (Lua unwinds without calling the handler): the message is
 * "not enough memory (memory limit of N bytes reached)"; the state stays
 * usable and the memory is reclaimed by the next collection.
 * LUAVM_E_BUDGET is reported even if the script caught the error itself.
 * A luavm_pcall made from a C function that an outer luavm_pcall is
 * running shares the outer call's budget; it must be made on the running
 * (main) thread, not from inside a coroutine. */
int luavm_pcall(luavm_t *vm, int nargs, int nresults, char *err, size_t errlen);

/* Bytes currently allocated by the state. */
size_t luavm_memory(const luavm_t *vm);

/* ---- JSON <-> Lua (luavm_json.c, with yajl) -----------------------------
 * Objects become tables with string keys; arrays become sequences 1..n
 * (an empty array becomes an empty table marked as an array through a
 * metatable so that it encodes back as []); integers stay integers
 * (lua_Integer), other numbers become floats; null becomes runnel.null
 * (a light userdata sentinel, also available from C as luavm_null()).
 * Encoding: a table with keys 1..n only (n >= 1), or the array marker, is
 * an array; any other table an object (non-string keys: integers are
 * written as strings, other key types are an error), its keys written
 * sorted (bytewise), so equal tables always encode to equal bytes; NaN and infinities
 * are an error; nesting deeper than 256 is an error; cycles are caught by
 * the depth limit.
 * Details: a number without fraction or exponent that fits int64 is an
 * integer ("-0" is the integer 0), any other a float; floats are written
 * with the fewest digits that read back the same and always with '.' or
 * an exponent (1.0 -> "1.0"), so types survive a round trip. A table with
 * the array marker encodes as an array of its elements 1..#t. Strings must
 * be valid UTF-8. runnel.json.array([t]) sets the marker on t (or a new
 * table) and returns it. */

/* The sentinel for JSON null. */
void *luavm_null(void);

/* Decodes JSON text and pushes the value. Returns 0, or -1 with a message
 * in err ("invalid JSON at byte N: " and yajl's message, N being how many
 * bytes yajl consumed) and nothing pushed. Like any lua_ function, raises
 * a Lua error if the state runs out of memory (no C memory is leaked). */
int luavm_json_decode(lua_State *L, const char *json, size_t len, char *err, size_t errlen);

/* A decode's record: what the parser reported, numbers already converted
 * and containers' sizes known, so that luavm_json_push_tape builds an
 * equal value again (new tables, the same strings, numbers of the same
 * types, the array marker on empty arrays) without parsing: the rows that
 * joins read again and again (runtime/topo_rows.c). Tables are made at
 * their final size, so pairs() may visit keys in another order than after
 * a parse (an order Lua leaves unspecified). buf is malloc'd and the
 * caller's (free it). */
typedef struct {
  unsigned char *buf;
  size_t len, cap;
} luavm_json_tape_t;

/* luavm_json_decode that also records the value into *tape (from its
 * start: tape->len is reset; buf is grown with realloc). If the tape
 * cannot grow, it is freed and zeroed and the decode goes on: the value
 * is pushed and 0 returned with tape->buf NULL. */
int luavm_json_decode_tape(lua_State *L, const char *json, size_t len, luavm_json_tape_t *tape,
                           char *err, size_t errlen);

/* Pushes the value of a tape that luavm_json_decode_tape recorded. Raises
 * a Lua error when the state runs out of memory (or the stack cannot
 * grow). */
void luavm_json_push_tape(lua_State *L, const void *tape, size_t len);

/* Encodes the value at idx as JSON into *buf (grown with realloc; *cap in
 * and out), setting *len. Returns 0, or -1 with a message naming the path
 * of the bad value (e.g. "value.items[3]: cannot encode a function";
 * indices are Lua's, from 1; object keys that are not identifiers are
 * written ["key"]). The stack is left as it was. *buf stays the caller's
 * and is NUL-terminated on success. */
int luavm_json_encode(lua_State *L, int idx, char **buf, size_t *cap, size_t *len, char *err,
                      size_t errlen);

/* Registers runnel.json.decode(text), runnel.json.encode(value) (both
 * raise on error, with the messages above), runnel.json.array([t]) and
 * runnel.null in the runnel table of L (created if missing). */
void luavm_json_register(lua_State *L);

#endif
