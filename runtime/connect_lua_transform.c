/*
 * connect_lua_transform.c: the `lua` transform (see
 * connect_lua_transform.h and docs/connectors.md, "Transforms").
 *
 *   transforms=fix
 *   transforms.fix.type=lua
 *   transforms.fix.script=transforms/fix.lua      (or .source=<inline Lua>)
 *
 * The chunk either returns a function or defines a global one (named by
 * `function`, default "transform"). It is called once per record with a
 * table
 *
 *   { topic=, partition=, offset=, timestamp=, key=, value=, headers= }
 *
 * and returns the (possibly changed) table to keep the record, or nil to
 * drop it. partition, offset and timestamp are nil when unknown (source
 * records). key and value are decoded JSON when the bytes are a JSON
 * object, array, number, boolean or null (runnel.null); anything else,
 * including a JSON string, is given as the raw text; nil is a null
 * key/value. On return, nil is a null key/value, a string is written as it
 * is (raw bytes), anything else (runnel.null included) as JSON. So an
 * unchanged record round-trips byte for byte except for the re-encoding of
 * decoded JSON (keys sorted, numbers written back as Lua reads them).
 * headers is a table name -> text (runnel.null for a null value, a
 * sequence when the name repeats); headers are written back sorted by
 * name. offset is read-only.
 *
 * The VM is the jobs' sandbox (no io, no os.execute, no loadfile...), with
 * its own memory limit and a per-record instruction budget. Errors keep
 * Lua's "file:line:" prefix; the chain adds the alias and the record.
 *
 * Threads: one VM per chain instance, used by that chain's thread only.
 */
#include "connect_lua_transform.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "logger.h"
#include "luavm.h"

static const conn_def_t lua_tf_defs[] = {
    {.name = "script", .type = CONN_T_STRING, .optional = true, .importance = CONN_IMP_HIGH,
     .doc = "Path of the Lua file defining the transform (relative to the worker's working "
            "directory). Exactly one of script and source is required."},
    {.name = "source", .type = CONN_T_STRING, .optional = true, .importance = CONN_IMP_HIGH,
     .doc = "The Lua code itself, instead of a file; errors name it \"source\"."},
    {.name = "function", .type = CONN_T_STRING, .default_value = "transform",
     .importance = CONN_IMP_LOW,
     .doc = "The global function to call when the chunk does not return a function."},
    {.name = "memory.limit.bytes", .type = CONN_T_LONG, .default_value = "67108864",
     .importance = CONN_IMP_LOW, .min = 1 << 20, .max = INT64_MAX,
     .doc = "Memory the transform's Lua state may use."},
    {.name = "instruction.budget", .type = CONN_T_LONG, .default_value = "1000000",
     .importance = CONN_IMP_LOW, .min = 1000, .max = INT64_MAX,
     .doc = "Lua VM instructions one record may take."},
    CONN_DEF_END,
};

typedef struct {
  luavm_t *vm;
  int fn_ref;
  char *name; /* the script's path or "source", for log lines */
  char *buf;  /* JSON encoding scratch */
  size_t cap;
} lua_tf_t;

static void lua_tf_print(void *opaque, const char *text, size_t len) {
  logger_info("connect", "lua transform %s: %.*s", (const char *)opaque, (int)len, text);
}

/* Keeps the first line of a Lua error ("file:line: message"): the
 * traceback would only repeat the transform's own frames. */
static void lua_tf_first_line(char *err) {
  if (err) err[strcspn(err, "\n")] = '\0';
}

static int lua_tf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lua_tf_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static void lua_tf_close(void *st) {
  lua_tf_t *t = st;
  if (t->vm) luavm_free(t->vm);
  free(t->name);
  free(t->buf);
}

static int lua_tf_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  lua_tf_t *t = st;
  const char *script = conn_get_string(lua_tf_defs, cfg, "script");
  const char *source = conn_get_string(lua_tf_defs, cfg, "source");
  if (script && !*script) script = NULL;
  if (source && !*source) source = NULL;
  if (!script && !source)
    return lua_tf_err(err, errlen, "script: one of script (a file) or source is required");
  if (script && source)
    return lua_tf_err(err, errlen, "source: only one of script and source may be set");
  t->name = strdup(script ? script : "source");
  if (!t->name) return lua_tf_err(err, errlen, "out of memory");

  luavm_options_t o;
  luavm_options_defaults(&o);
  o.memory_limit = (size_t)conn_get_long(lua_tf_defs, cfg, "memory.limit.bytes");
  o.instruction_budget = conn_get_long(lua_tf_defs, cfg, "instruction.budget");
  o.print = lua_tf_print;
  o.print_opaque = t->name;
  char msg[512];
  if (luavm_new(&o, &t->vm, msg, sizeof msg) != 0)
    return lua_tf_err(err, errlen, "memory.limit.bytes: %s", msg);
  lua_State *L = luavm_state(t->vm);
  lua_getglobal(L, "runnel");
  luavm_json_register(L);
  lua_pop(L, 1);

  int rc = script ? luavm_load_file(t->vm, script, msg, sizeof msg)
                  : luavm_load(t->vm, "=source", source, strlen(source), msg, sizeof msg);
  if (rc == 0) rc = luavm_pcall(t->vm, 0, 1, msg, sizeof msg);
  if (rc != 0) {
    lua_tf_first_line(msg);
    return lua_tf_err(err, errlen, "%s: %s", script ? "script" : "source", msg);
  }
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    const char *fn = conn_get_string(lua_tf_defs, cfg, "function");
    lua_getglobal(L, fn);
    if (!lua_isfunction(L, -1)) {
      lua_pop(L, 1);
      return lua_tf_err(err, errlen,
                         "function: %s neither returns a function nor defines a global "
                         "function '%s'",
                         t->name, fn);
    }
  }
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Pushes a key/value as documented above. */
static void lua_tf_push_data(lua_State *L, const void *data, int32_t len) {
  if (!data || len < 0) {
    lua_pushnil(L);
    return;
  }
  const char *s = data;
  size_t i = 0;
  while (i < (size_t)len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  if (i < (size_t)len && s[i] != '"' && luavm_json_decode(L, s, (size_t)len, NULL, 0) == 0)
    return;
  lua_pushlstring(L, s, (size_t)len);
}

static void lua_tf_push_headers(lua_State *L, const conn_record_t *rec) {
  lua_createtable(L, 0, rec->header_count);
  for (int32_t i = 0; i < rec->header_count; i++) {
    const conn_header_t *h = &rec->headers[i];
    if (h->value) lua_pushlstring(L, h->value, (size_t)h->value_len);
    else lua_pushlightuserdata(L, luavm_null());
    int prev = lua_getfield(L, -2, h->key);
    if (prev == LUA_TNIL) {
      lua_pop(L, 1);
      lua_setfield(L, -2, h->key);
    } else { /* a repeated name: a sequence of its values */
      if (prev != LUA_TTABLE) {
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, -4, h->key);
      }
      lua_insert(L, -2);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 1);
    }
  }
}

static void lua_tf_push_record(lua_State *L, const conn_record_t *rec) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, rec->topic ? rec->topic : "");
  lua_setfield(L, -2, "topic");
  if (rec->partition >= 0) {
    lua_pushinteger(L, rec->partition);
    lua_setfield(L, -2, "partition");
  }
  if (rec->offset >= 0) {
    lua_pushinteger(L, rec->offset);
    lua_setfield(L, -2, "offset");
  }
  if (rec->timestamp >= 0) {
    lua_pushinteger(L, rec->timestamp);
    lua_setfield(L, -2, "timestamp");
  }
  lua_tf_push_data(L, rec->key, rec->key_len);
  lua_setfield(L, -2, "key");
  lua_tf_push_data(L, rec->value, rec->value_len);
  lua_setfield(L, -2, "value");
  lua_tf_push_headers(L, rec);
  lua_setfield(L, -2, "headers");
}

/* Sets the key (is_key) or value of nr from the field at the top of the
 * stack (popped). */
static int lua_tf_take_data(lua_tf_t *t, lua_State *L, conn_record_t *nr, bool is_key, char *err,
                            size_t errlen) {
  const char *what = is_key ? "key" : "value";
  int rc = 0;
  int type = lua_type(L, -1);
  if (type == LUA_TNIL) { /* runnel.null, like any value, is encoded: the text null */
    rc = is_key ? conn_record_set_key(nr, NULL, -1) : conn_record_set_value(nr, NULL, -1);
  } else if (type == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len > INT32_MAX) rc = -1;
    else rc = is_key ? conn_record_set_key(nr, s, (int32_t)len)
                     : conn_record_set_value(nr, s, (int32_t)len);
  } else {
    size_t len;
    char msg[256];
    if (luavm_json_encode(L, -1, &t->buf, &t->cap, &len, msg, sizeof msg) != 0) {
      lua_pop(L, 1);
      return lua_tf_err(err, errlen, "%s: the returned %s cannot be written as JSON: %s",
                        t->name, what, msg);
    }
    rc = len > INT32_MAX ? -1
         : is_key        ? conn_record_set_key(nr, t->buf, (int32_t)len)
                         : conn_record_set_value(nr, t->buf, (int32_t)len);
  }
  lua_pop(L, 1);
  return rc == 0 ? 0 : lua_tf_err(err, errlen, "%s: %s too large or out of memory", t->name, what);
}

static int lua_tf_add_header(conn_record_t *nr, lua_State *L, const char *name, int idx) {
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == luavm_null())
    return conn_record_add_header(nr, name, NULL, -1);
  if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER) return -2;
  size_t len;
  const char *v = lua_tolstring(L, idx, &len);
  return len > INT32_MAX ? -2 : conn_record_add_header(nr, name, v, (int32_t)len);
}

static int lua_tf_name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Headers from the table at the top of the stack (popped), sorted by
 * name so that the order does not depend on Lua's hashing. */
static int lua_tf_take_headers(lua_tf_t *t, lua_State *L, conn_record_t *nr, char *err,
                               size_t errlen) {
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return lua_tf_err(err, errlen, "%s: headers must be a table", t->name);
  }
  size_t n = 0, cap = 8;
  const char **names = malloc(cap * sizeof *names);
  int rc = names ? 0 : -1;
  lua_pushnil(L);
  while (rc == 0 && lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      rc = -2;
      lua_pop(L, 1);
      lua_tf_err(err, errlen, "%s: header names must be strings", t->name);
      break;
    }
    if (n == cap) {
      const char **p = realloc(names, (cap *= 2) * sizeof *names);
      if (!p) {
        rc = -1;
        lua_pop(L, 1);
        break;
      }
      names = p;
    }
    names[n++] = lua_tostring(L, -1); /* kept alive by the table */
  }
  if (rc == 0) qsort(names, n, sizeof *names, lua_tf_name_cmp);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    lua_getfield(L, -1, names[i]);
    if (lua_istable(L, -1)) {
      lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer k = 1; rc == 0 && k <= len; k++) {
        lua_rawgeti(L, -1, k);
        rc = lua_tf_add_header(nr, L, names[i], -1);
        lua_pop(L, 1);
      }
    } else {
      rc = lua_tf_add_header(nr, L, names[i], -1);
    }
    lua_pop(L, 1);
    if (rc == -2) lua_tf_err(err, errlen, "%s: header '%s' must be a string, a number, "
                              "runnel.null or a sequence of these", t->name, names[i]);
  }
  free(names);
  lua_pop(L, 1);
  if (rc == -2) return -1; /* err set where it was found */
  return rc == 0 ? 0 : lua_tf_err(err, errlen, "%s: out of memory", t->name);
}

/* Builds the record returned at the top of the stack (a table) into nr. */
static int lua_tf_take_record(lua_tf_t *t, lua_State *L, const conn_record_t *rec,
                              conn_record_t *nr, char *err, size_t errlen) {
  lua_getfield(L, -1, "topic");
  if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    return lua_tf_err(err, errlen, "%s: the returned record needs a non-empty string topic", t->name);
  }
  int rc = conn_record_set_topic(nr, lua_tostring(L, -1));
  lua_pop(L, 1);
  const char *ints[] = {"partition", "timestamp"};
  for (int i = 0; rc == 0 && i < 2; i++) {
    lua_getfield(L, -1, ints[i]);
    int64_t v = -1;
    if (lua_isinteger(L, -1)) v = lua_tointeger(L, -1);
    else if (!lua_isnil(L, -1)) rc = -2;
    lua_pop(L, 1);
    if (rc == -2)
      return lua_tf_err(err, errlen, "%s: the returned record's %s must be an integer or nil",
                         t->name, ints[i]);
    if (i == 0) nr->partition = v < 0 || v > INT32_MAX ? -1 : (int32_t)v;
    else nr->timestamp = v < 0 ? -1 : v;
  }
  if (rc != 0) return lua_tf_err(err, errlen, "%s: out of memory", t->name);
  nr->offset = rec->offset;
  lua_getfield(L, -1, "key");
  if (lua_tf_take_data(t, L, nr, true, err, errlen) != 0) return -1;
  lua_getfield(L, -1, "value");
  if (lua_tf_take_data(t, L, nr, false, err, errlen) != 0) return -1;
  lua_getfield(L, -1, "headers");
  return lua_tf_take_headers(t, L, nr, err, errlen);
}

static int lua_tf_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  lua_tf_t *t = st;
  lua_State *L = luavm_state(t->vm);
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  lua_tf_push_record(L, rec);
  int rc = luavm_pcall(t->vm, 1, 1, err, errlen);
  if (rc != 0) {
    lua_tf_first_line(err);
    lua_settop(L, top);
    return -1;
  }
  if (lua_isnil(L, -1)) {
    lua_settop(L, top);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    const char *type = luaL_typename(L, -1);
    lua_tf_err(err, errlen, "%s: the transform must return a record table or nil, not %s",
                t->name, type);
    lua_settop(L, top);
    return -1;
  }
  conn_record_t nr;
  conn_record_init(&nr);
  rc = lua_tf_take_record(t, L, rec, &nr, err, errlen);
  lua_settop(L, top);
  if (rc != 0) {
    conn_record_clear(&nr);
    return -1;
  }
  /* The source position moves over to the new record. */
  nr.source_partition = rec->source_partition;
  nr.source_offset = rec->source_offset;
  nr.lent |= rec->lent & (CONN_LENT_SOURCE_PARTITION | CONN_LENT_SOURCE_OFFSET);
  rec->source_partition = rec->source_offset = NULL;
  conn_record_clear(rec);
  *rec = nr;
  return 1;
}

const conn_transform_plugin_t connect_lua_transform = {
    .name = "lua", .aliases = NULL, .defs = lua_tf_defs, .state_size = sizeof(lua_tf_t),
    .init = lua_tf_init, .apply = lua_tf_apply, .close = lua_tf_close};

int connect_lua_transform_register(void) {
  return conn_transform_register(&connect_lua_transform);
}
