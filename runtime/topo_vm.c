/*
 * topo_vm.c: a job's Lua state: the C primitives the DSL calls
 * (runnel._emit, runnel._store_get/_store_put, runnel.record.*), loading
 * the embedded DSL and the job script, and compiling the topology.
 *
 * The primitives find their topo_ctx_t through an upvalue (a light
 * userdata), so no lookup happens per call. Record metadata is read from
 * the context without building a table: runnel.record.timestamp() is one C
 * call returning a number.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "topo_int.h"

static topo_ctx_t *topo_ctx(lua_State *L) {
  return (topo_ctx_t *)lua_touserdata(L, lua_upvalueindex(1));
}

/* runnel._emit(topic, key_bytes_or_nil, value_bytes_or_nil) */
static int topo_l_emit(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  size_t tlen, klen = 0, vlen = 0;
  const char *topic = luaL_checklstring(L, 1, &tlen);
  const char *key = NULL, *val = NULL;
  if (!lua_isnil(L, 2)) {
    if (lua_type(L, 2) != LUA_TSTRING)
      return luaL_error(L, "the key serde produced a %s, not bytes", luaL_typename(L, 2));
    key = lua_tolstring(L, 2, &klen);
  }
  if (!lua_isnil(L, 3)) {
    if (lua_type(L, 3) != LUA_TSTRING)
      return luaL_error(L, "the value serde produced a %s, not bytes", luaL_typename(L, 3));
    val = lua_tolstring(L, 3, &vlen);
  }
  if (!ctx->task) return luaL_error(L, "records can only be written while processing");
  char err[256];
  if (topo__task_emit(ctx->task, topic, tlen, key, klen, key != NULL, val, vlen, val != NULL,
                      err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  return 0;
}

store_t *topo__l_store(lua_State *L, topo_ctx_t *ctx) {
  lua_Integer idx = luaL_checkinteger(L, 1);
  if (!ctx->task) luaL_error(L, "stores can only be used while processing");
  store_t *s = topo__task_store(ctx->task, (int)idx);
  if (!s) luaL_error(L, "store %d is not part of this task", (int)idx);
  return s;
}

int topo__l_store_get(lua_State *L, topo_ctx_t *ctx, store_t **s, const char **key,
                      size_t *klen, const void **val, size_t *vlen) {
  *s = topo__l_store(L, ctx);
  *key = luaL_checklstring(L, 2, klen);
  int rc = store_get(*s, *key, *klen, val, vlen);
  if (rc < 0) return luaL_error(L, "store %s: read failed (%d)", store_name(*s), rc);
  return rc;
}

/* runnel._store_get(index, key_bytes) -> value_bytes or nil */
static int topo_l_store_get(lua_State *L) {
  store_t *s;
  const char *key;
  size_t klen, vlen;
  const void *val;
  int rc = topo__l_store_get(L, topo_ctx(L), &s, &key, &klen, &val, &vlen);
  if (rc == 0) lua_pushnil(L);
  else lua_pushlstring(L, val, vlen);
  return 1;
}

/* The decimal digits of v (as Lua's tostring and JSON write an integer);
 * buf holds at least 21 bytes. Returns the length. */
static size_t topo_fmt_int(char *buf, lua_Integer v) {
  char tmp[24];
  size_t n = 0, len = 0;
  lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) buf[len++] = '-';
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

/* runnel._store_put(index, key_bytes, value_bytes_or_nil). An integer value
 * is stored as its decimal digits (what luaL_checklstring would make of
 * it, without the trip through snprintf): counts pass their number. */
static int topo_l_store_put(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t klen, vlen = 0;
  const char *key = luaL_checklstring(L, 2, &klen);
  char num[24];
  const char *val = NULL;
  if (lua_isinteger(L, 3)) {
    vlen = topo_fmt_int(num, lua_tointeger(L, 3));
    val = num;
  } else if (!lua_isnil(L, 3)) {
    val = luaL_checklstring(L, 3, &vlen);
  }
  int rc = store_put(s, key, klen, val, vlen);
  if (rc < 0) return luaL_error(L, "store %s: write failed (%d)", store_name(s), rc);
  return 0;
}

/* ---- window stores, ranges, stream time ------------------------------------ */

static const log_record_t *topo_l_rec(lua_State *L, topo_ctx_t *ctx);

/* runnel._wstore_get(index, key_bytes, start, end) -> value_bytes or nil */
static int topo_l_wstore_get(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  int64_t start = luaL_checkinteger(L, 3), end = luaL_checkinteger(L, 4);
  const void *val;
  size_t vlen;
  int rc = store_window_get(s, key, klen, start, end, &val, &vlen);
  if (rc < 0) return luaL_error(L, "store %s: read failed (%d)", store_name(s), rc);
  if (rc == 0) lua_pushnil(L);
  else lua_pushlstring(L, val, vlen);
  return 1;
}

/* runnel._wstore_put(index, key_bytes, start, end, value_bytes_or_nil);
 * an integer value is stored as its digits, as _store_put does. */
static int topo_l_wstore_put(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t klen, vlen = 0;
  const char *key = luaL_checklstring(L, 2, &klen);
  int64_t start = luaL_checkinteger(L, 3), end = luaL_checkinteger(L, 4);
  char num[24];
  const char *val = NULL;
  if (lua_isinteger(L, 5)) {
    vlen = topo_fmt_int(num, lua_tointeger(L, 5));
    val = num;
  } else if (!lua_isnil(L, 5)) {
    val = luaL_checklstring(L, 5, &vlen);
  }
  int rc = store_window_put(s, key, klen, start, end, val, vlen);
  if (rc < 0) return luaL_error(L, "store %s: write failed (%d)", store_name(s), rc);
  return 0;
}

static int64_t topo_be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return (int64_t)v;
}

static void topo_put_be64(unsigned char *p, int64_t x) {
  uint64_t v = (uint64_t)x;
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

/* runnel._wcount_add(index, key_bytes, start, end, ts) -> new, old, window_ts:
 * adds one to a count window (value: 8-byte timestamp, 8-byte count, both
 * big-endian, as the DSL's wval_enc writes them) in one call; old is nil
 * for a new window. The fast path of tumbling and hopping count(). */
static int topo_l_wcount_add(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  int64_t start = luaL_checkinteger(L, 3), end = luaL_checkinteger(L, 4);
  int64_t ts = luaL_checkinteger(L, 5);
  const void *val;
  size_t vlen;
  int rc = store_window_get(s, key, klen, start, end, &val, &vlen);
  if (rc < 0) return luaL_error(L, "store %s: read failed (%d)", store_name(s), rc);
  int64_t wts = ts, old = 0;
  int found = rc == 1;
  if (found) {
    if (vlen != 16) return luaL_error(L, "store %s: not a count window value", store_name(s));
    int64_t t = topo_be64(val);
    old = topo_be64((const unsigned char *)val + 8);
    if (t > wts) wts = t;
  }
  unsigned char buf[16];
  topo_put_be64(buf, wts);
  topo_put_be64(buf + 8, old + 1);
  rc = store_window_put(s, key, klen, start, end, buf, sizeof buf);
  if (rc < 0) return luaL_error(L, "store %s: write failed (%d)", store_name(s), rc);
  lua_pushinteger(L, old + 1);
  if (found) lua_pushinteger(L, old);
  else lua_pushnil(L);
  lua_pushinteger(L, wts);
  return 3;
}

typedef struct {
  lua_State *L;
  int n;
} topo_fetch_t;

static int topo_fetch_one(void *opaque, int64_t start, int64_t end, const void *val,
                          size_t vlen) {
  topo_fetch_t *f = opaque;
  lua_pushinteger(f->L, start);
  lua_rawseti(f->L, -2, ++f->n);
  lua_pushinteger(f->L, end);
  lua_rawseti(f->L, -2, ++f->n);
  lua_pushlstring(f->L, val, vlen);
  lua_rawseti(f->L, -2, ++f->n);
  return 0;
}

/* runnel._wstore_fetch(index, key_bytes, start_from, start_to)
 *   -> { start1, end1, value1, start2, ... } in (start, end) order */
static int topo_l_wstore_fetch(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  int64_t from = luaL_checkinteger(L, 3), to = luaL_checkinteger(L, 4);
  lua_newtable(L);
  topo_fetch_t f = {L, 0};
  int rc = store_window_fetch(s, key, klen, from, to, topo_fetch_one, &f);
  if (rc < 0) return luaL_error(L, "store %s: fetch failed (%d)", store_name(s), rc);
  return 1;
}

static int topo_range_one(void *opaque, const void *key, size_t klen, const void *val,
                          size_t vlen) {
  topo_fetch_t *f = opaque;
  lua_pushlstring(f->L, key, klen);
  lua_rawseti(f->L, -2, ++f->n);
  lua_pushlstring(f->L, val, vlen);
  lua_rawseti(f->L, -2, ++f->n);
  return 0;
}

/* runnel._store_range(index, from_or_nil, to_or_nil, limit)
 *   -> { key1, value1, key2, ... } for keys in [from, to], byte order */
static int topo_l_store_range(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  store_t *s = topo__l_store(L, ctx);
  size_t flen = 0, tlen = 0;
  const char *from = lua_isnil(L, 2) ? NULL : luaL_checklstring(L, 2, &flen);
  const char *to = lua_isnil(L, 3) ? NULL : luaL_checklstring(L, 3, &tlen);
  lua_Integer limit = luaL_optinteger(L, 4, 0);
  lua_newtable(L);
  topo_fetch_t f = {L, 0};
  int rc = store_range(s, from, flen, to, tlen, limit > 0 ? (size_t)limit : 0, topo_range_one,
                       &f);
  if (rc < 0) return luaL_error(L, "store %s: range failed (%d)", store_name(s), rc);
  return 1;
}

/* runnel._stream_time() -> the task's stream time, the current record's
 * event time included (-1 before any record). */
static int topo_l_stream_time(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  if (!ctx->task) return luaL_error(L, "stream time is only known while processing");
  lua_pushinteger(L, topo__task_stream_time(ctx->task));
  return 1;
}

/* runnel._window_time() -> the record's timestamp, the stream time (one
 * call per record for windowed operators). */
static int topo_l_window_time(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  if (!ctx->task || !ctx->rec) return luaL_error(L, "event time is only known while processing");
  lua_pushinteger(L, ctx->out_ts);
  lua_pushinteger(L, topo__task_stream_time(ctx->task));
  return 2;
}

/* runnel._late(message, to_dlq): the current record was dropped because
 * its windows had closed; the task counts it and, when to_dlq, sends it to
 * the dead-letter topic with reason "late" after the record. */
static int topo_l_late(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  const char *msg = luaL_checkstring(L, 1);
  if (!ctx->rec) return 0;
  int dlq = lua_toboolean(L, 2) ? 2 : 1;
  if (dlq > ctx->late) ctx->late = dlq;
  snprintf(ctx->late_msg, sizeof ctx->late_msg, "%s", msg);
  return 0;
}

/* runnel._set_event_time(ms): the source's timestamp function's result:
 * the record's timestamp and the event time stream time takes. */
static int topo_l_set_event_time(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  topo_l_rec(L, ctx);
  lua_Number ts = luaL_checknumber(L, 1);
  if (ts < 0 || ts > 9.2e18) return luaL_error(L, "timestamp: %f is not a timestamp in ms", ts);
  ctx->out_ts = ctx->event_ts = (int64_t)ts;
  return 0;
}

/* ---- runnel.record ------------------------------------------------------- */

static const log_record_t *topo_l_rec(lua_State *L, topo_ctx_t *ctx) {
  if (!ctx->rec) luaL_error(L, "runnel.record is only available while processing a record");
  return ctx->rec;
}

static int topo_l_rec_timestamp(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  topo_l_rec(L, ctx);
  lua_pushinteger(L, ctx->out_ts);
  return 1;
}

static int topo_l_rec_topic(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  topo_l_rec(L, ctx);
  lua_pushstring(L, ctx->topic);
  return 1;
}

static int topo_l_rec_partition(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  topo_l_rec(L, ctx);
  lua_pushinteger(L, ctx->partition);
  return 1;
}

static int topo_l_rec_offset(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  lua_pushinteger(L, topo_l_rec(L, ctx)->offset);
  return 1;
}

/* runnel.record.headers() -> { name = value } (a new table per call; only
 * jobs that ask pay for it). Later headers of one name win. */
static int topo_l_rec_headers(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  const log_record_t *rec = topo_l_rec(L, ctx);
  lua_createtable(L, 0, rec->header_count + ctx->nextra);
  for (int pass = 0; pass < 2; pass++) {
    const log_header_t *h = pass == 0 ? rec->headers : ctx->extra;
    int32_t n = pass == 0 ? rec->header_count : ctx->nextra;
    for (int32_t i = 0; i < n; i++) {
      lua_pushlstring(L, h[i].key, (size_t)h[i].key_len);
      if (h[i].value_len < 0) lua_pushboolean(L, 0);
      else lua_pushlstring(L, h[i].value, (size_t)h[i].value_len);
      lua_rawset(L, -3);
    }
  }
  return 1;
}

/* runnel.record.set_header(name, value): added to every output record of
 * the current input record written after the call. */
static int topo_l_rec_set_header(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  topo_l_rec(L, ctx);
  size_t kl, vl;
  const char *k = luaL_checklstring(L, 1, &kl);
  const char *v = luaL_checklstring(L, 2, &vl);
  if (ctx->nextra == ctx->extra_cap) {
    int32_t cap = ctx->extra_cap ? ctx->extra_cap * 2 : 4;
    log_header_t *nh = realloc(ctx->extra, (size_t)cap * sizeof *nh);
    if (!nh) return luaL_error(L, "out of memory");
    ctx->extra = nh;
    ctx->extra_cap = cap;
  }
  /* Bytes go to extra_buf; pointers are fixed up when it moves. */
  if (ctx->extra_len + kl + vl > ctx->extra_cap_bytes) {
    size_t cap = ctx->extra_cap_bytes ? ctx->extra_cap_bytes : 256;
    while (cap < ctx->extra_len + kl + vl) cap *= 2;
    char *old = ctx->extra_buf;
    char *nb = malloc(cap);
    if (!nb) return luaL_error(L, "out of memory");
    if (ctx->extra_len) memcpy(nb, old, ctx->extra_len);
    for (int32_t i = 0; i < ctx->nextra; i++) {
      ctx->extra[i].key = nb + (ctx->extra[i].key - old);
      ctx->extra[i].value = nb + ((const char *)ctx->extra[i].value - old);
    }
    free(old);
    ctx->extra_buf = nb;
    ctx->extra_cap_bytes = cap;
  }
  char *p = ctx->extra_buf + ctx->extra_len;
  memcpy(p, k, kl);
  memcpy(p + kl, v, vl);
  ctx->extra_len += kl + vl;
  ctx->extra[ctx->nextra++] = (log_header_t){p, (int32_t)kl, p + kl, (int32_t)vl};
  return 0;
}

/* Also while a punctuator runs (no record): its outputs' timestamp. */
static int topo_l_rec_set_timestamp(lua_State *L) {
  topo_ctx_t *ctx = topo_ctx(L);
  if (!ctx->task) topo_l_rec(L, ctx);
  lua_Number ts = luaL_checknumber(L, 1);
  if (ts < 0 || ts > 9.2e18) return luaL_error(L, "set_timestamp: %f is not a timestamp in ms", ts);
  ctx->out_ts = (int64_t)ts;
  return 0;
}

/* runnel._where() -> "job.lua:12: ": the first stack frame outside the DSL
 * (the job script's line that called it), for build errors. Tail calls in
 * the DSL make error()'s levels unreliable, hence the walk. */
static int topo_l_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar)) break;
    if (ar.currentline > 0 && strcmp(ar.source, "=runnel.lua") != 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return 1;
    }
  }
  lua_pushliteral(L, "");
  return 1;
}

static void topo_register(lua_State *L, topo_ctx_t *ctx, size_t memory_limit) {
  static const luaL_Reg core[] = {
      {"_emit", topo_l_emit},
      {"_store_get", topo_l_store_get},
      {"_store_put", topo_l_store_put},
      {"_where", topo_l_where},
      {"_wstore_get", topo_l_wstore_get},
      {"_wstore_put", topo_l_wstore_put},
      {"_wstore_fetch", topo_l_wstore_fetch},
      {"_wcount_add", topo_l_wcount_add},
      {"_store_range", topo_l_store_range},
      {"_stream_time", topo_l_stream_time},
      {"_window_time", topo_l_window_time},
      {"_late", topo_l_late},
      {"_set_event_time", topo_l_set_event_time},
      {NULL, NULL},
  };
  static const luaL_Reg record[] = {
      {"timestamp", topo_l_rec_timestamp},
      {"topic", topo_l_rec_topic},
      {"partition", topo_l_rec_partition},
      {"offset", topo_l_rec_offset},
      {"headers", topo_l_rec_headers},
      {"set_header", topo_l_rec_set_header},
      {"set_timestamp", topo_l_rec_set_timestamp},
      {NULL, NULL},
  };
  lua_getglobal(L, "runnel");
  luavm_json_register(L);
  lua_pushlightuserdata(L, ctx);
  luaL_setfuncs(L, core, 1);
  topo__rows_register(L, ctx, memory_limit);
  lua_newtable(L);
  lua_pushlightuserdata(L, ctx);
  luaL_setfuncs(L, record, 1);
  lua_setfield(L, -2, "record");
  lua_pop(L, 1);
}

static void topo_print(void *opaque, const char *text, size_t len) {
  const char *job = opaque;
  logger_info("job", "%s: %.*s", job ? job : "?", (int)len, text);
}

int topo__vm_base(const luavm_options_t *opts, const char *chunkname, topo_ctx_t *ctx,
                  luavm_t **out, char *err, size_t errlen) {
  luavm_t *vm;
  luavm_options_t o = *opts;
  if (!o.print) {
    o.print = topo_print;
    o.print_opaque = (void *)(chunkname[0] == '@' ? chunkname + 1 : chunkname);
  }
  int rc = luavm_new(&o, &vm, err, errlen);
  if (rc != 0) return rc;
  topo_register(luavm_state(vm), ctx, o.memory_limit);
  rc = luavm_load(vm, "=runnel.lua", topo_dsl_source, topo_dsl_source_len, err, errlen);
  if (rc == 0) rc = luavm_pcall(vm, 0, 0, err, errlen);
  if (rc != 0) {
    luavm_free(vm);
    return rc;
  }
  *out = vm;
  return 0;
}

int topo__vm_open(const luavm_options_t *opts, const char *chunkname, const char *script,
                  size_t len, topo_ctx_t *ctx, luavm_t **out, char *err, size_t errlen) {
  luavm_t *vm;
  int rc = topo__vm_base(opts, chunkname, ctx, &vm, err, errlen);
  if (rc != 0) return rc;
  lua_State *L = luavm_state(vm);
  rc = luavm_load(vm, chunkname, script, len, err, errlen);
  if (rc == 0) rc = luavm_pcall(vm, 0, 1, err, errlen);
  int compiling = 0;
  if (rc == 0) {
    /* runnel._compile(job) -> description, entries */
    compiling = 1;
    lua_getglobal(L, "runnel");
    lua_getfield(L, -1, "_compile");
    lua_remove(L, -2);
    lua_insert(L, -2);
    rc = luavm_pcall(vm, 1, 2, err, errlen);
  }
  if (rc != 0) {
    /* A build error is one line with file:line; the traceback into the
     * DSL would only hide it. Errors found while compiling have no line:
     * they are about the whole script, so they name it. */
    err[strcspn(err, "\n")] = '\0';
    if (compiling) {
      const char *name = chunkname[0] == '@' || chunkname[0] == '=' ? chunkname + 1 : chunkname;
      size_t n = strlen(name) + 2, used = strlen(err);
      if (used + n < errlen) {
        memmove(err + n, err, used + 1);
        memcpy(err, name, n - 2);
        memcpy(err + n - 2, ": ", 2);
      }
    }
    luavm_free(vm);
    return rc;
  }
  *out = vm;
  return 0;
}

int topo_vm_new(const topo_job_t *job, topo_vm_t **out, char *err, size_t errlen) {
  topo_vm_t *v = calloc(1, sizeof *v);
  if (!v) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  v->job = job;
  v->ctx = &v->own_ctx;
  int rc = topo__vm_open(&job->vm_options, job->chunkname, job->script, job->script_len,
                         v->ctx, &v->vm, err, errlen);
  if (rc != 0) {
    free(v);
    return rc;
  }
  v->L = luavm_state(v->vm);
  /* Keep the entries table; drop the description (the job has it). */
  v->entries_ref = luaL_ref(v->L, LUA_REGISTRYINDEX);
  lua_pop(v->L, 1);
  *out = v;
  return 0;
}

void topo_vm_free(topo_vm_t *v) {
  if (!v) return;
  if (!v->borrowed) luavm_free(v->vm);
  free(v->own_ctx.extra);
  free(v->own_ctx.extra_buf);
  topo__rows_free(&v->own_ctx);
  free(v);
}

void topo_vm_op_counts(topo_vm_t *v, void (*fn)(void *arg, const char *op, uint64_t n),
                       void *arg) {
  lua_State *L = v->L;
  int top = lua_gettop(L);
  lua_getglobal(L, "runnel");
  lua_getfield(L, -1, "_op_counts");
  if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isinteger(L, -1))
        fn(arg, lua_tostring(L, -2), (uint64_t)lua_tointeger(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}
