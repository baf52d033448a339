/*
 * luavm_json.c: JSON <-> Lua values with yajl (see luavm.h for the
 * mapping). Both directions are on the per-record path of every job, so:
 *
 *   - decode builds tables straight from yajl's callbacks onto the Lua
 *     stack (no intermediate tree);
 *   - encode reuses one yajl_gen per lua_State (kept in a registry
 *     userdata, reset before each use), so encoding a record allocates
 *     nothing once the generator's buffer has grown to the record size.
 *
 * Numbers: yajl hands us the number's text (yajl_number callback), so a
 * number without fraction or exponent that fits an int64 becomes a Lua
 * integer ("-0" is the integer 0) and anything else a float; floats are
 * written with the fewest digits that read back the same and always with
 * a '.' or an exponent, so that 1.0 stays a float through a round trip.
 *
 * Depth: at most LUAVM_JSON_MAX_DEPTH nested arrays/objects both ways.
 * yajl_gen refuses more than YAJL_MAX_DEPTH (128, compiled in) open
 * containers, so the encoder writes every JSON_GEN_SPAN levels of nesting
 * with a further generator and inserts its text into the outer one as a
 * raw value (yajl_gen_number writes its argument verbatim, with the
 * separators a value needs).
 *
 * Lua errors: the decoder allocates Lua objects from yajl's callbacks, and
 * running out of Lua memory there raises (longjmps) through yajl. The
 * parser handle in flight is therefore kept in the per-state userdata,
 * freed by the next decode or by the userdata's __gc, never leaked.
 */
#include "luavm.h"
#include "luavm_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#define LUAVM_JSON_MAX_DEPTH 256
#define JSON_GEN_SPAN 100 /* < YAJL_MAX_DEPTH */
#define JSON_GENS (LUAVM_JSON_MAX_DEPTH / JSON_GEN_SPAN + 1)

/* Registry keys (their addresses) and the null sentinel. */
static const char json_state_key = 0;
static const char json_array_key = 0;
static const char json_null = 0;

void *luavm_null(void) {
  return (void *)&json_null;
}

/* An object key being sorted. The value stays on the Lua stack at slot
 * (and the key below it, which keeps `str` alive). */
typedef struct {
  const char *str; /* string keys; NULL: an integer key, text in num */
  size_t len;
  int slot;
  char num[24];
} json_key_t;

/* Per lua_State: the generators, the parser in flight, and the scratch
 * array for sorting keys (a stack: nested objects use the part above
 * their parent's keys). */
typedef struct {
  yajl_gen gens[JSON_GENS]; /* gens[k] writes nesting levels k*SPAN .. */
  yajl_handle inflight;     /* set during a decode, see the file comment */
  json_key_t *keys;
  size_t keys_cap;
} json_state_t;

static int json_state_gc(lua_State *L) {
  json_state_t *js = lua_touserdata(L, 1);
  for (int i = 0; i < JSON_GENS; i++)
    if (js->gens[i] != NULL)
      yajl_gen_free(js->gens[i]);
  if (js->inflight != NULL)
    yajl_free(js->inflight);
  free(js->keys);
  memset(js, 0, sizeof *js);
  return 0;
}

/* The state of L, created on first use (which allocates, and so may raise
 * a memory error). */
static json_state_t *json_state(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &json_state_key) == LUA_TUSERDATA) {
    json_state_t *js = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return js;
  }
  lua_pop(L, 1);
  json_state_t *js = lua_newuserdatauv(L, sizeof *js, 0);
  memset(js, 0, sizeof *js);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, json_state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &json_state_key);
  return js;
}

/* Pushes the metatable that marks a table as an array. */
static void json_push_array_mt(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &json_array_key) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "runnel.json.array");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &json_array_key);
}

/* ---- decode --------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  int depth;                                /* open containers */
  lua_Integer n[LUAVM_JSON_MAX_DEPTH + 1];  /* per depth: items so far; objects: -1
                                               (recording a tape: -1 - keys so far) */
  const char *cancel;                       /* why a callback stopped the parse */
  luavm_json_tape_t *tape;                  /* records what is built, or NULL */
  size_t at[LUAVM_JSON_MAX_DEPTH + 1];      /* per depth: where the tape holds the
                                               container's size (set at its end) */
} json_dec_t;

/* ---- tapes: see luavm.h. One op byte each; 'i' and 'd' carry a
 * lua_Integer or a double, 's' and 'k' a size_t length and the bytes,
 * '{' and '[' the container's number of entries (a uint32_t, written when
 * it closes), so that the replay makes each table at its size at once,
 * where the parse grows it. */

static void json_tape_put(json_dec_t *d, unsigned char op, const void *data, size_t n,
                          bool with_len) {
  luavm_json_tape_t *t = d->tape;
  size_t need = t->len + 1 + (with_len ? sizeof n : 0) + n;
  if (need > t->cap) {
    size_t cap = t->cap ? t->cap : 128;
    while (cap < need)
      cap *= 2;
    unsigned char *nb = realloc(t->buf, cap);
    if (nb == NULL) { /* no tape then; the decode goes on */
      free(t->buf);
      *t = (luavm_json_tape_t){0};
      d->tape = NULL;
      return;
    }
    t->buf = nb;
    t->cap = cap;
  }
  t->buf[t->len++] = op;
  if (with_len) {
    memcpy(t->buf + t->len, &n, sizeof n);
    t->len += sizeof n;
  }
  if (n > 0)
    memcpy(t->buf + t->len, data, n);
  t->len += n;
}

static void json_tape_op(json_dec_t *d, unsigned char op) {
  if (d->tape != NULL)
    json_tape_put(d, op, NULL, 0, false);
}

/* Stores the value on top into the open container (none: top level). */
static int json_dec_add(json_dec_t *d) {
  if (d->depth == 0)
    return 1;
  if (d->n[d->depth] < 0)
    lua_rawset(d->L, -3); /* table, key, value */
  else
    lua_rawseti(d->L, -2, ++d->n[d->depth]);
  return 1;
}

static int json_dec_null(void *ctx) {
  json_dec_t *d = ctx;
  lua_pushlightuserdata(d->L, luavm_null());
  return json_dec_add(d);
}

static int json_dec_boolean(void *ctx, int b) {
  json_dec_t *d = ctx;
  lua_pushboolean(d->L, b);
  return json_dec_add(d);
}

/* Pushes the number of the text s; 0 (and d->cancel) if it is none. */
static int json_dec_push_number(json_dec_t *d, const char *s, size_t len) {
  /* Fast path: up to 18 digits cannot overflow an int64. */
  size_t neg = len > 0 && s[0] == '-';
  if (len - neg <= 18 && len > neg) {
    lua_Integer v = 0;
    size_t i = neg;
    while (i < len && s[i] >= '0' && s[i] <= '9')
      v = v * 10 + (s[i++] - '0');
    if (i == len) {
      lua_pushinteger(d->L, neg ? -v : v);
      return 1;
    }
  }
  /* lua_stringtonumber: integer when it fits, float otherwise, and it
   * copes with the locale's decimal point. It needs a terminated string. */
  char buf[64];
  size_t ok;
  if (len < sizeof buf) {
    memcpy(buf, s, len);
    buf[len] = '\0';
    ok = lua_stringtonumber(d->L, buf);
  } else {
    lua_pushlstring(d->L, s, len);
    ok = lua_stringtonumber(d->L, lua_tostring(d->L, -1));
    if (ok)
      lua_remove(d->L, -2);
    else
      lua_pop(d->L, 1);
  }
  if (!ok) { /* yajl accepted it, so this should not happen */
    d->cancel = "number out of range";
    return 0;
  }
  return 1;
}

static int json_dec_number(void *ctx, const char *s, size_t len) {
  json_dec_t *d = ctx;
  return json_dec_push_number(d, s, len) && json_dec_add(d);
}

static int json_dec_string(void *ctx, const unsigned char *s, size_t len) {
  json_dec_t *d = ctx;
  lua_pushlstring(d->L, (const char *)s, len);
  return json_dec_add(d);
}

/* Opens a container, its table made for narr + nrec entries. */
static int json_dec_open(json_dec_t *d, bool object, int narr, int nrec) {
  if (d->depth == LUAVM_JSON_MAX_DEPTH) {
    d->cancel = "nesting deeper than 256 levels";
    return 0;
  }
  /* table + key + value of this level */
  if (!lua_checkstack(d->L, 3)) {
    d->cancel = "not enough memory for the Lua stack";
    return 0;
  }
  lua_createtable(d->L, narr, nrec);
  d->n[++d->depth] = object ? -1 : 0;
  return 1;
}

static int json_dec_start_map(void *ctx) {
  return json_dec_open(ctx, true, 0, 0);
}

static int json_dec_map_key(void *ctx, const unsigned char *key, size_t len) {
  json_dec_t *d = ctx;
  lua_pushlstring(d->L, (const char *)key, len);
  return 1;
}

static int json_dec_end_map(void *ctx) {
  json_dec_t *d = ctx;
  d->depth--;
  return json_dec_add(d);
}

static int json_dec_start_array(void *ctx) {
  return json_dec_open(ctx, false, 0, 0);
}

static int json_dec_end_array(void *ctx) {
  json_dec_t *d = ctx;
  if (d->n[d->depth] == 0) {
    json_push_array_mt(d->L);
    lua_setmetatable(d->L, -2);
  }
  d->depth--;
  return json_dec_add(d);
}

static const yajl_callbacks json_dec_callbacks = {
    .yajl_null = json_dec_null,
    .yajl_boolean = json_dec_boolean,
    .yajl_number = json_dec_number, /* so yajl_integer/yajl_double are unused */
    .yajl_string = json_dec_string,
    .yajl_start_map = json_dec_start_map,
    .yajl_map_key = json_dec_map_key,
    .yajl_end_map = json_dec_end_map,
    .yajl_start_array = json_dec_start_array,
    .yajl_end_array = json_dec_end_array,
};

/* Records a container's op with room for its size, filled by
 * json_tape_size when it closes. */
static void json_tape_open(json_dec_t *d, unsigned char op) {
  if (d->tape == NULL || d->depth == LUAVM_JSON_MAX_DEPTH)
    return;
  uint32_t size = 0;
  json_tape_put(d, op, &size, sizeof size, false);
  if (d->tape != NULL)
    d->at[d->depth + 1] = d->tape->len - sizeof size;
}

static void json_tape_size(json_dec_t *d, lua_Integer entries) {
  if (d->tape == NULL)
    return;
  uint32_t size = entries > UINT32_MAX ? UINT32_MAX : (uint32_t)entries;
  memcpy(d->tape->buf + d->at[d->depth], &size, sizeof size);
}

/* The callbacks of a decode that records its tape: each records what the
 * plain callback is about to do, then does it. */

static int json_tape_null(void *ctx) {
  json_tape_op(ctx, '0');
  return json_dec_null(ctx);
}

static int json_tape_boolean(void *ctx, int b) {
  json_tape_op(ctx, b ? 'T' : 'F');
  return json_dec_boolean(ctx, b);
}

static int json_tape_number(void *ctx, const char *s, size_t len) {
  json_dec_t *d = ctx;
  if (!json_dec_push_number(d, s, len))
    return 0;
  if (d->tape != NULL) {
    if (lua_isinteger(d->L, -1)) {
      lua_Integer v = lua_tointeger(d->L, -1);
      json_tape_put(d, 'i', &v, sizeof v, false);
    } else {
      double v = (double)lua_tonumber(d->L, -1);
      json_tape_put(d, 'd', &v, sizeof v, false);
    }
  }
  return json_dec_add(d);
}

static int json_tape_string(void *ctx, const unsigned char *s, size_t len) {
  json_dec_t *d = ctx;
  if (d->tape != NULL)
    json_tape_put(d, 's', s, len, true);
  return json_dec_string(ctx, s, len);
}

static int json_tape_start_map(void *ctx) {
  json_tape_open(ctx, '{');
  return json_dec_start_map(ctx);
}

static int json_tape_map_key(void *ctx, const unsigned char *key, size_t len) {
  json_dec_t *d = ctx;
  if (d->tape != NULL)
    json_tape_put(d, 'k', key, len, true);
  d->n[d->depth]--; /* counts the object's keys (see json_dec_t) */
  return json_dec_map_key(ctx, key, len);
}

static int json_tape_end_map(void *ctx) {
  json_dec_t *d = ctx;
  json_tape_size(d, -1 - d->n[d->depth]);
  json_tape_op(d, '}');
  return json_dec_end_map(ctx);
}

static int json_tape_start_array(void *ctx) {
  json_tape_open(ctx, '[');
  return json_dec_start_array(ctx);
}

static int json_tape_end_array(void *ctx) {
  json_dec_t *d = ctx;
  json_tape_size(d, d->n[d->depth]);
  json_tape_op(d, ']');
  return json_dec_end_array(ctx);
}

static const yajl_callbacks json_tape_callbacks = {
    .yajl_null = json_tape_null,
    .yajl_boolean = json_tape_boolean,
    .yajl_number = json_tape_number,
    .yajl_string = json_tape_string,
    .yajl_start_map = json_tape_start_map,
    .yajl_map_key = json_tape_map_key,
    .yajl_end_map = json_tape_end_map,
    .yajl_start_array = json_tape_start_array,
    .yajl_end_array = json_tape_end_array,
};

int luavm_json_decode(lua_State *L, const char *json, size_t len, char *err, size_t errlen) {
  return luavm_json_decode_tape(L, json, len, NULL, err, errlen);
}

int luavm_json_decode_tape(lua_State *L, const char *json, size_t len, luavm_json_tape_t *tape,
                           char *err, size_t errlen) {
  json_state_t *js = json_state(L);
  if (js->inflight != NULL) { /* left by a decode that a memory error cut short */
    yajl_free(js->inflight);
    js->inflight = NULL;
  }
  int top = lua_gettop(L);
  json_dec_t d;
  d.L = L;
  d.depth = 0;
  d.cancel = NULL;
  d.tape = tape;
  if (tape != NULL)
    tape->len = 0;
  yajl_handle h = yajl_alloc(tape ? &json_tape_callbacks : &json_dec_callbacks, NULL, &d);
  if (h == NULL) {
    luavm__seterr(err, errlen, "not enough memory for the JSON parser");
    return -1;
  }
  js->inflight = h;
  const unsigned char *text = (const unsigned char *)json;
  size_t offset = len; /* where yajl_complete_parse fails: at the end */
  yajl_status st = yajl_parse(h, text, len);
  if (st != yajl_status_ok)
    offset = yajl_get_bytes_consumed(h);
  else
    st = yajl_complete_parse(h);
  if (st != yajl_status_ok) {
    if (d.cancel != NULL) {
      luavm__seterr(err, errlen, "invalid JSON at byte %zu: %s", offset, d.cancel);
    } else {
      unsigned char *msg = yajl_get_error(h, 0, text, len);
      size_t n = msg != NULL ? strlen((char *)msg) : 0;
      while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
      luavm__seterr(err, errlen, "invalid JSON at byte %zu: %.*s", offset, (int)n,
                  msg != NULL ? (char *)msg : "parse error");
      if (msg != NULL)
        yajl_free_error(h, msg);
    }
    lua_settop(L, top);
    js->inflight = NULL;
    yajl_free(h);
    return -1;
  }
  js->inflight = NULL;
  yajl_free(h);
  return 0;
}

void luavm_json_push_tape(lua_State *L, const void *tape, size_t len) {
  json_dec_t d;
  d.L = L;
  d.depth = 0;
  d.cancel = NULL;
  d.tape = NULL;
  const unsigned char *p = tape, *end = p + len;
  size_t n;
  while (p < end) {
    int ok = 1;
    unsigned char op = *p++;
    switch (op) {
    case '0': ok = json_dec_null(&d); break;
    case 'T': ok = json_dec_boolean(&d, 1); break;
    case 'F': ok = json_dec_boolean(&d, 0); break;
    case 'i': {
      lua_Integer v;
      memcpy(&v, p, sizeof v);
      p += sizeof v;
      lua_pushinteger(L, v);
      ok = json_dec_add(&d);
      break;
    }
    case 'd': {
      double v;
      memcpy(&v, p, sizeof v);
      p += sizeof v;
      lua_pushnumber(L, (lua_Number)v);
      ok = json_dec_add(&d);
      break;
    }
    case 's':
    case 'k':
      memcpy(&n, p, sizeof n);
      p += sizeof n;
      ok = op == 's' ? json_dec_string(&d, p, n) : json_dec_map_key(&d, p, n);
      p += n;
      break;
    case '{':
    case '[': {
      uint32_t size;
      memcpy(&size, p, sizeof size);
      p += sizeof size;
      int sz = size > INT_MAX ? 0 : (int)size;
      ok = op == '{' ? json_dec_open(&d, true, 0, sz) : json_dec_open(&d, false, sz, 0);
      break;
    }
    case '}': ok = json_dec_end_map(&d); break;
    case ']': ok = json_dec_end_array(&d); break;
    default: d.cancel = "a broken tape"; ok = 0; break;
    }
    if (!ok)
      luaL_error(L, "cannot rebuild a JSON value: %s", d.cancel ? d.cancel : "?");
  }
}

/* ---- encode --------------------------------------------------------------- */

typedef struct {
  const char *key; /* NULL: index */
  size_t keylen;
  lua_Integer index;
} json_path_t;

typedef struct {
  lua_State *L;
  json_state_t *js;
  yajl_gen g;           /* the generator of the current nesting span */
  const void *array_mt; /* the array marker, NULL if none was ever made */
  int depth;            /* open containers */
  size_t nkeys;         /* js->keys in use */
  json_path_t path[LUAVM_JSON_MAX_DEPTH + 1]; /* path[d]: the key taken at depth d */
  char *err;
  size_t errlen;
} json_enc_t;

static bool json_is_ident(const char *s, size_t len) {
  if (len == 0 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return false;
  for (size_t i = 1; i < len; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return false;
  return true;
}

/* Writes "value.a[2]["b c"]: <message>" into err. Deep paths (cycles) keep
 * their first and last levels. */
static int json_enc_fail(json_enc_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int json_enc_fail(json_enc_t *e, const char *fmt, ...) {
  if (e->err == NULL || e->errlen == 0)
    return -1;
  char path[512];
  size_t n = 0;
  n += (size_t)snprintf(path, sizeof path, "value");
  for (int d = 1; d <= e->depth && n < sizeof path; d++) {
    if (e->depth > 10 && d == 5) {
      n += (size_t)snprintf(path + n, sizeof path - n, "...");
      d = e->depth - 3;
    }
    const json_path_t *p = &e->path[d];
    if (p->key == NULL)
      n += (size_t)snprintf(path + n, sizeof path - n, "[%lld]", (long long)p->index);
    else if (json_is_ident(p->key, p->keylen))
      n += (size_t)snprintf(path + n, sizeof path - n, ".%.*s", (int)p->keylen, p->key);
    else
      n += (size_t)snprintf(path + n, sizeof path - n, "[\"%.*s\"]",
                            (int)(p->keylen > 60 ? 60 : p->keylen), p->key);
  }
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(e->err, e->errlen, "%s: %s", path, msg);
  return -1;
}

/* Formats an integer; returns its length (buf >= 24 bytes). */
static size_t json_fmt_int(char *buf, lua_Integer v) {
  char tmp[24];
  size_t n = 0;
  lua_Unsigned u = v < 0 ? 0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  size_t len = 0;
  if (v < 0)
    buf[len++] = '-';
  while (n > 0)
    buf[len++] = tmp[--n];
  return len;
}

/* Formats a finite double (buf >= 40 bytes) as text that reads back as
 * the same double, always with a '.' or an exponent so that it reads back
 * as a float. printf+strtod cost more than the rest of a record's
 * encoding, so two exact fast paths come first:
 *   - integral values below 1e15: the integer and ".0";
 *   - up to 6 decimals: if m = x*1e6 is an integer and m/1e6 == x, the
 *     decimal m*10^-6 reads back (correctly rounded) as m/1e6, that is x.
 * Otherwise the shorter of %.15g and %.17g that reads back the same. */
static size_t json_fmt_double(char *buf, size_t cap, double x) {
  size_t n;
  if (fabs(x) < 1e15 && x == floor(x)) {
    n = 0;
    if (signbit(x))
      buf[n++] = '-';
    n += json_fmt_int(buf + n, (lua_Integer)fabs(x));
    memcpy(buf + n, ".0", 3);
    return n + 2;
  }
  double scaled = x * 1e6;
  if (fabs(x) < 1e9 && scaled == floor(scaled) && (double)(lua_Integer)scaled / 1e6 == x) {
    lua_Integer m = (lua_Integer)fabs(scaled);
    n = 0;
    if (x < 0)
      buf[n++] = '-';
    n += json_fmt_int(buf + n, m / 1000000);
    buf[n++] = '.';
    lua_Integer frac = m % 1000000;
    for (lua_Integer div = 100000; div > 0 && frac > 0; div /= 10) {
      buf[n++] = (char)('0' + frac / div);
      frac %= div;
    }
    return n;
  }
  int len = snprintf(buf, cap, "%.15g", x);
  if (strtod(buf, NULL) != x)
    len = snprintf(buf, cap, "%.17g", x);
  n = (size_t)len;
  bool dot = false;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == ',') /* a locale's decimal comma */
      buf[i] = '.';
    if (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'E')
      dot = true;
  }
  if (!dot && n + 3 <= cap) {
    memcpy(buf + n, ".0", 3);
    n += 2;
  }
  return n;
}

static yajl_gen json_gen(json_state_t *js, int k) {
  if (js->gens[k] == NULL) {
    js->gens[k] = yajl_gen_alloc(NULL);
    if (js->gens[k] == NULL)
      return NULL;
    yajl_gen_config(js->gens[k], yajl_gen_validate_utf8, 1);
  }
  yajl_gen_reset(js->gens[k], NULL);
  yajl_gen_clear(js->gens[k]);
  return js->gens[k];
}

static int json_enc_status(json_enc_t *e, yajl_gen_status st) {
  switch (st) {
  case yajl_gen_status_ok:
    return 0;
  case yajl_gen_invalid_string:
    return json_enc_fail(e, "string is not valid UTF-8");
  case yajl_gen_invalid_number:
    return json_enc_fail(e, "cannot encode NaN or infinity");
  case yajl_max_depth_exceeded:
    return json_enc_fail(e, "nested too deep for the generator");
  default:
    return json_enc_fail(e, "JSON generator error %d", (int)st);
  }
}

static int json_enc_value(json_enc_t *e, int idx);

/* A table with keys 1..n only (n = its border). */
static bool json_is_sequence(lua_State *L, int idx, lua_Unsigned n) {
  lua_Unsigned count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) {
      lua_pop(L, 1);
      return false;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || (lua_Unsigned)k > n) {
      lua_pop(L, 1);
      return false;
    }
    count++;
  }
  return count == n;
}

static int json_enc_array(json_enc_t *e, int idx, lua_Unsigned n) {
  lua_State *L = e->L;
  if (json_enc_status(e, yajl_gen_array_open(e->g)) != 0)
    return -1;
  e->depth++;
  for (lua_Unsigned i = 1; i <= n; i++) {
    e->path[e->depth].key = NULL;
    e->path[e->depth].index = (lua_Integer)i;
    lua_rawgeti(L, idx, (lua_Integer)i);
    if (json_enc_value(e, lua_gettop(L)) != 0)
      return -1;
    lua_pop(L, 1);
  }
  e->depth--;
  return json_enc_status(e, yajl_gen_array_close(e->g));
}

static const char *json_key_str(const json_key_t *k) {
  return k->str != NULL ? k->str : k->num;
}

static int json_key_cmp(const void *a, const void *b) {
  const json_key_t *x = a, *y = b;
  int c = memcmp(json_key_str(x), json_key_str(y), x->len < y->len ? x->len : y->len);
  return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static void json_sort_keys(json_key_t *k, size_t n) {
  if (n > 16) {
    qsort(k, n, sizeof *k, json_key_cmp);
    return;
  }
  for (size_t i = 1; i < n; i++) { /* insertion sort: records are small */
    json_key_t t = k[i];
    size_t j = i;
    for (; j > 0 && json_key_cmp(&k[j - 1], &t) > 0; j--)
      k[j] = k[j - 1];
    k[j] = t;
  }
}

/* Objects are written with their keys sorted (bytewise; integer keys by
 * their text), so that equal tables give equal bytes whatever their
 * insertion history or Lua's per-state hash seed. Every key/value pair is
 * kept on the Lua stack while the keys are sorted. */
static int json_enc_object(json_enc_t *e, int idx) {
  lua_State *L = e->L;
  json_state_t *js = e->js;
  int top = lua_gettop(L);
  size_t base = e->nkeys, n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!lua_checkstack(L, 3)) {
      lua_settop(L, top);
      return json_enc_fail(e, "object too large to encode");
    }
    if (base + n == js->keys_cap) {
      size_t ncap = js->keys_cap != 0 ? js->keys_cap * 2 : 64;
      json_key_t *p = realloc(js->keys, ncap * sizeof *p);
      if (p == NULL) {
        lua_settop(L, top);
        return json_enc_fail(e, "not enough memory to sort %zu keys", n);
      }
      js->keys = p;
      js->keys_cap = ncap;
    }
    json_key_t *k = &js->keys[base + n];
    if (lua_type(L, -2) == LUA_TSTRING) {
      /* never lua_tolstring a number key: it would convert it in place
       * and confuse lua_next */
      k->str = lua_tolstring(L, -2, &k->len);
    } else if (lua_isinteger(L, -2)) {
      k->str = NULL;
      k->len = json_fmt_int(k->num, lua_tointeger(L, -2));
    } else {
      int t = lua_type(L, -2);
      lua_settop(L, top);
      return json_enc_fail(e, "cannot use a %s as an object key", lua_typename(L, t));
    }
    k->slot = lua_gettop(L);
    n++;
    lua_pushvalue(L, -2); /* lua_next's key; the pair stays below it */
  }
  json_sort_keys(&js->keys[base], n);
  e->nkeys = base + n;
  if (json_enc_status(e, yajl_gen_map_open(e->g)) != 0)
    return -1;
  e->depth++;
  for (size_t i = 0; i < n; i++) {
    /* copied out: nested objects may move js->keys */
    json_key_t k = js->keys[base + i];
    json_path_t *p = &e->path[e->depth];
    p->key = json_key_str(&k);
    p->keylen = k.len;
    if (json_enc_status(e, yajl_gen_string(e->g, (const unsigned char *)p->key, p->keylen)) != 0)
      return -1;
    if (json_enc_value(e, k.slot) != 0)
      return -1;
  }
  e->depth--;
  e->nkeys = base;
  lua_settop(L, top);
  return json_enc_status(e, yajl_gen_map_close(e->g));
}

static int json_enc_table(json_enc_t *e, int idx) {
  lua_State *L = e->L;
  if (e->depth == LUAVM_JSON_MAX_DEPTH)
    return json_enc_fail(e, "nested deeper than 256 levels (a cycle?)");
  if (!lua_checkstack(L, 4))
    return json_enc_fail(e, "not enough memory for the Lua stack");
  bool marked = false;
  if (e->array_mt != NULL && lua_getmetatable(L, idx)) {
    marked = lua_topointer(L, -1) == e->array_mt;
    lua_pop(L, 1);
  }
  lua_Unsigned n = lua_rawlen(L, idx);
  if (marked || (n > 0 && json_is_sequence(L, idx, n)))
    return json_enc_array(e, idx, n);
  return json_enc_object(e, idx);
}

/* Every JSON_GEN_SPAN levels the nesting continues in a further generator
 * whose text goes into the outer one verbatim (see the file comment). */
static int json_enc_table_spanned(json_enc_t *e, int idx) {
  if (e->depth == 0 || e->depth % JSON_GEN_SPAN != 0 || e->depth == LUAVM_JSON_MAX_DEPTH)
    return json_enc_table(e, idx);
  yajl_gen outer = e->g;
  e->g = json_gen(e->js, e->depth / JSON_GEN_SPAN);
  if (e->g == NULL) {
    e->g = outer;
    return json_enc_fail(e, "not enough memory for the JSON generator");
  }
  int rc = json_enc_table(e, idx);
  const unsigned char *text;
  size_t len;
  if (rc == 0)
    yajl_gen_get_buf(e->g, &text, &len);
  e->g = outer;
  if (rc != 0)
    return -1;
  return json_enc_status(e, yajl_gen_number(outer, (const char *)text, len));
}

static int json_enc_value(json_enc_t *e, int idx) {
  lua_State *L = e->L;
  char num[40];
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return json_enc_status(e, yajl_gen_null(e->g));
  case LUA_TBOOLEAN:
    return json_enc_status(e, yajl_gen_bool(e->g, lua_toboolean(L, idx)));
  case LUA_TNUMBER: {
    size_t len;
    if (lua_isinteger(L, idx)) {
      len = json_fmt_int(num, lua_tointeger(L, idx));
    } else {
      double x = (double)lua_tonumber(L, idx);
      if (!isfinite(x))
        return json_enc_fail(e, "cannot encode %s", isnan(x) ? "NaN" : "infinity");
      len = json_fmt_double(num, sizeof num, x);
    }
    return json_enc_status(e, yajl_gen_number(e->g, num, len));
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return json_enc_status(e, yajl_gen_string(e->g, (const unsigned char *)s, len));
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == luavm_null())
      return json_enc_status(e, yajl_gen_null(e->g));
    return json_enc_fail(e, "cannot encode a light userdata other than runnel.null");
  case LUA_TTABLE:
    return json_enc_table_spanned(e, idx);
  default:
    return json_enc_fail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* Encodes the value at idx into the state's generator; *out points into
 * the generator's buffer, valid until the next encode on this state. */
static int json_encode(lua_State *L, int idx, const unsigned char **out, size_t *outlen,
                       char *err, size_t errlen) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  json_enc_t e; /* ~6 KiB, mostly the path, written only as deep as we go */
  e.L = L;
  e.js = json_state(L);
  e.depth = 0;
  e.nkeys = 0;
  e.err = err;
  e.errlen = errlen;
  e.g = json_gen(e.js, 0);
  if (e.g == NULL) {
    luavm__seterr(err, errlen, "not enough memory for the JSON generator");
    return -1;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &json_array_key);
  e.array_mt = lua_topointer(L, -1); /* NULL when nil */
  lua_pop(L, 1);
  int rc = json_enc_value(&e, idx);
  lua_settop(L, top);
  if (e.js->keys_cap > 4096) { /* do not keep a huge object's scratch */
    free(e.js->keys);
    e.js->keys = NULL;
    e.js->keys_cap = 0;
  }
  if (rc != 0)
    return -1;
  yajl_gen_get_buf(e.g, out, outlen);
  return 0;
}

int luavm_json_encode(lua_State *L, int idx, char **buf, size_t *cap, size_t *len, char *err,
                      size_t errlen) {
  const unsigned char *out;
  size_t outlen;
  if (json_encode(L, idx, &out, &outlen, err, errlen) != 0)
    return -1;
  if (*buf == NULL || *cap < outlen + 1) {
    size_t ncap = outlen + 1 > 64 ? outlen + 1 : 64;
    char *p = realloc(*buf, ncap);
    if (p == NULL) {
      luavm__seterr(err, errlen, "not enough memory for %zu bytes of JSON", outlen);
      return -1;
    }
    *buf = p;
    *cap = ncap;
  }
  memcpy(*buf, out, outlen);
  (*buf)[outlen] = '\0';
  *len = outlen;
  return 0;
}

/* ---- Lua functions -------------------------------------------------------- */

/* runnel.json.decode(text) -> value; raises on invalid JSON. */
static int json_lua_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  char err[256];
  if (luavm_json_decode(L, text, len, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  return 1;
}

/* runnel.json.encode(value) -> string; raises naming the bad value. */
static int json_lua_encode(lua_State *L) {
  luaL_checkany(L, 1);
  const unsigned char *out;
  size_t len;
  char err[512];
  if (json_encode(L, 1, &out, &len, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  lua_pushlstring(L, (const char *)out, len);
  return 1;
}

/* runnel.json.array([t]) -> t (or a new table) marked to encode as an
 * array, even when empty. */
static int json_lua_array(lua_State *L) {
  if (lua_isnoneornil(L, 1))
    lua_newtable(L);
  else
    luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  json_push_array_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

void luavm_json_register(lua_State *L) {
  json_state(L);
  json_push_array_mt(L);
  lua_pop(L, 1);
  if (lua_getglobal(L, "runnel") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "runnel");
  }
  static const luaL_Reg fns[] = {
      {"decode", json_lua_decode},
      {"encode", json_lua_encode},
      {"array", json_lua_array},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "json");
  lua_pushlightuserdata(L, luavm_null());
  lua_setfield(L, -2, "null");
  lua_pop(L, 1);
}
