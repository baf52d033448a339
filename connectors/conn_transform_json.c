/*
 * conn_transform_json.c: the JSON scope of the transform chain (see
 * conn_transform_int.h): a record's key and value parsed once, shared by
 * consecutive transforms, and generated back with yajl_gen only when a
 * transform changed them.
 *
 * Parsing uses yajl's event parser and builds yajl_val nodes in the
 * scope's arena: no allocation per JSON value, and the whole tree is
 * released by resetting the arena. (yajl_tree_parse allocates every node,
 * key and string on its own and was four times slower.)
 *
 * Why a thread-local binding: the transform callbacks of connector.h take
 * only (state, record), so the scope cannot be passed to them; the chain
 * binds its scope to the record on the calling thread instead. A bound
 * scope is only ever used for the record it was bound to (checked on every
 * access), so a transform applied to another record gets a scope of its
 * own rather than stale trees.
 */
#include "conn_transform_int.h"

#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

static _Thread_local conn__jscope_t *conn__bound;

int conn__terr(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

const char *conn__side_name(conn__side_t side) {
  return side == CONN__KEY ? "key" : "value";
}

const char *conn__json_type_name(yajl_val v) {
  if (!v) return "null";
  switch (v->type) {
  case yajl_t_object: return "object";
  case yajl_t_array: return "array";
  case yajl_t_string: return "string";
  case yajl_t_number: return "number";
  case yajl_t_true:
  case yajl_t_false: return "boolean";
  default: return "null";
  }
}

/* ---- arena ------------------------------------------------------------------- */

struct conn__chunk {
  conn__chunk_t *next;
  size_t size, used;
  alignas(max_align_t) unsigned char data[];
};

#define CONN__CHUNK_MIN ((size_t)16384)

void *conn__arena_alloc(conn__arena_t *a, size_t n) {
  n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
  conn__chunk_t *c = a->cur;
  while (c && c->size - c->used < n) c = c->next; /* chunks kept by a reset */
  if (!c) {
    size_t size = n > CONN__CHUNK_MIN ? n : CONN__CHUNK_MIN;
    c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    c->next = NULL;
    if (a->cur) { /* append after cur, keeping later (empty) chunks */
      c->next = a->cur->next;
      a->cur->next = c;
    } else {
      a->first = c;
    }
  }
  a->cur = c;
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

/* Empties the arena; keeps its first chunk, frees the others (a record
 * with a huge value does not pin its memory). */
static void conn__arena_reset(conn__arena_t *a) {
  if (!a->first) return;
  conn__chunk_t *c = a->first->next;
  while (c) {
    conn__chunk_t *next = c->next;
    free(c);
    c = next;
  }
  a->first->next = NULL;
  a->first->used = 0;
  a->cur = a->first;
}

static void conn__arena_free(conn__arena_t *a) {
  conn__arena_reset(a);
  free(a->first);
  a->first = a->cur = NULL;
}

static char *conn__arena_strndup(conn__arena_t *a, const char *s, size_t len) {
  char *p = conn__arena_alloc(a, len + 1);
  if (p) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

/* ---- scope ------------------------------------------------------------------ */

void conn__jscope_init(conn__jscope_t *s) {
  memset(s, 0, sizeof *s);
}

void conn__jscope_drop(conn__jscope_t *s) {
  memset(s->slot, 0, sizeof s->slot);
  conn__arena_reset(&s->arena);
}

void conn__jscope_bind(conn__jscope_t *s, conn_record_t *rec) {
  conn__jscope_drop(s);
  s->rec = rec;
  conn__bound = s;
}

void conn__jscope_unbind(conn__jscope_t *s) {
  conn__jscope_drop(s);
  s->rec = NULL;
  if (conn__bound == s) conn__bound = NULL;
}

void conn__jscope_free(conn__jscope_t *s) {
  conn__jscope_unbind(s);
  conn__arena_free(&s->arena);
  if (s->gen) yajl_gen_free(s->gen);
  free(s->stack.open);
  free(s->stack.key);
  memset(s, 0, sizeof *s);
}

static conn__jscope_t *conn__scope_of(conn_record_t *rec) {
  return conn__bound && conn__bound->rec == rec ? conn__bound : NULL;
}

conn__arena_t *conn__json_arena(conn_record_t *rec) {
  conn__jscope_t *s = conn__scope_of(rec);
  return s ? &s->arena : NULL;
}

/* ---- parsing into the arena -------------------------------------------------------- */

typedef struct {
  conn__jscope_t *s;
  yajl_val root;
  bool too_deep;
} conn__jparse_t;

/* Room for a power of two (at least 4) of entries, for n entries. */
static size_t conn__cap(size_t n) {
  size_t c = 4;
  while (c < n) c *= 2;
  return c;
}

/* Appends v to the open array/object (whose pending key is key). */
static int conn__jv_append(conn__arena_t *a, yajl_val c, char *key, yajl_val v) {
  size_t n = c->type == yajl_t_object ? c->u.object.len : c->u.array.len;
  yajl_val *vals = c->type == yajl_t_object ? c->u.object.values : c->u.array.values;
  if (!vals || (n >= 4 && conn__cap(n) == n)) { /* full (or none yet): grow */
    size_t cap = conn__cap(n + 1);
    yajl_val *nv = conn__arena_alloc(a, cap * sizeof *nv);
    if (!nv) return -ENOMEM;
    if (n) memcpy(nv, vals, n * sizeof *nv);
    if (c->type == yajl_t_object) {
      const char **nk = conn__arena_alloc(a, cap * sizeof *nk);
      if (!nk) return -ENOMEM;
      if (n) memcpy(nk, c->u.object.keys, n * sizeof *nk);
      c->u.object.keys = nk;
      c->u.object.values = nv;
    } else {
      c->u.array.values = nv;
    }
  }
  if (c->type == yajl_t_object) {
    c->u.object.keys[n] = key;
    c->u.object.values[n] = v;
    c->u.object.len = n + 1;
  } else {
    c->u.array.values[n] = v;
    c->u.array.len = n + 1;
  }
  return 0;
}

/* Adds a finished value: into the innermost open container, or as root. */
static int conn__jp_add(conn__jparse_t *p, yajl_val v) {
  conn__jstack_t *st = &p->s->stack;
  if (!v) return 0;
  if (st->depth == 0) {
    p->root = v;
    return 1;
  }
  size_t d = st->depth - 1;
  return conn__jv_append(&p->s->arena, st->open[d], st->key[d], v) == 0;
}

static int conn__jp_null(void *ctx) {
  conn__jparse_t *p = ctx;
  return conn__jp_add(p, conn__jv_new(&p->s->arena, yajl_t_null));
}

static int conn__jp_bool(void *ctx, int b) {
  conn__jparse_t *p = ctx;
  return conn__jp_add(p, conn__jv_new(&p->s->arena, b ? yajl_t_true : yajl_t_false));
}

static int conn__jp_number(void *ctx, const char *text, size_t len) {
  conn__jparse_t *p = ctx;
  yajl_val v = conn__jv_new(&p->s->arena, yajl_t_number);
  if (!v || !(v->u.number.r = conn__arena_strndup(&p->s->arena, text, len))) return 0;
  return conn__jp_add(p, v);
}

static int conn__jp_string(void *ctx, const unsigned char *str, size_t len) {
  conn__jparse_t *p = ctx;
  return conn__jp_add(p, conn__jv_string(&p->s->arena, (const char *)str, len));
}

static int conn__jp_key(void *ctx, const unsigned char *str, size_t len) {
  conn__jparse_t *p = ctx;
  conn__jstack_t *st = &p->s->stack;
  return (st->key[st->depth - 1] = conn__arena_strndup(&p->s->arena, (const char *)str, len)) != NULL;
}

static int conn__jp_open(conn__jparse_t *p, yajl_type type) {
  conn__jstack_t *st = &p->s->stack;
  if (st->depth >= CONN__JSON_MAX_DEPTH) {
    p->too_deep = true;
    return 0;
  }
  if (st->depth == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 16;
    yajl_val *o = realloc(st->open, cap * sizeof *o);
    if (o) st->open = o;
    char **k = o ? realloc(st->key, cap * sizeof *k) : NULL;
    if (!k) return 0;
    st->key = k;
    st->cap = cap;
  }
  yajl_val v = conn__jv_new(&p->s->arena, type);
  if (!v) return 0;
  st->open[st->depth] = v;
  st->key[st->depth] = NULL;
  st->depth++;
  return 1;
}

static int conn__jp_close(conn__jparse_t *p) {
  conn__jstack_t *st = &p->s->stack;
  yajl_val v = st->open[--st->depth];
  return conn__jp_add(p, v);
}

static int conn__jp_map_open(void *ctx) {
  return conn__jp_open(ctx, yajl_t_object);
}

static int conn__jp_array_open(void *ctx) {
  return conn__jp_open(ctx, yajl_t_array);
}

static int conn__jp_end(void *ctx) {
  return conn__jp_close(ctx);
}

static const yajl_callbacks conn__jp_callbacks = {
    .yajl_null = conn__jp_null,
    .yajl_boolean = conn__jp_bool,
    .yajl_number = conn__jp_number,
    .yajl_string = conn__jp_string,
    .yajl_start_map = conn__jp_map_open,
    .yajl_map_key = conn__jp_key,
    .yajl_end_map = conn__jp_end,
    .yajl_start_array = conn__jp_array_open,
    .yajl_end_array = conn__jp_end,
};

/* Parses len bytes into s's arena. NULL with err on a syntax error, a
 * nesting too deep, or ENOMEM. */
static yajl_val conn__jparse(conn__jscope_t *s, const char *data, size_t len, char *err,
                             size_t errlen) {
  conn__jparse_t p = {.s = s};
  s->stack.depth = 0;
  yajl_handle h = yajl_alloc(&conn__jp_callbacks, NULL, &p);
  if (!h) {
    conn__terr(err, errlen, "out of memory");
    return NULL;
  }
  yajl_status st = memchr(data, '\0', len) ? yajl_status_error
                   : yajl_parse(h, (const unsigned char *)data, len);
  if (st == yajl_status_ok) st = yajl_complete_parse(h);
  yajl_free(h);
  if (st == yajl_status_ok && p.root) return p.root;
  if (p.too_deep) {
    conn__terr(err, errlen, "nested deeper than %d levels", CONN__JSON_MAX_DEPTH);
  } else {
    /* The error path only: conn_json_parse says where (line:col). */
    yajl_val v = conn_json_parse(NULL, data, len, err, errlen);
    if (v) { /* it parsed there: we ran out of memory */
      yajl_tree_free(v);
      conn__terr(err, errlen, "out of memory");
    }
  }
  return NULL;
}

int conn__json_get(conn_record_t *rec, conn__side_t side, bool as_string, yajl_val *out,
                   char *err, size_t errlen) {
  conn__jscope_t *s = conn__scope_of(rec);
  if (!s) return conn__terr(err, errlen, "no JSON scope bound to the record (internal error)");
  conn__jslot_t *sl = &s->slot[side];
  if (sl->parsed) {
    *out = sl->tree;
    return 0;
  }
  const void *data = side == CONN__KEY ? rec->key : rec->value;
  int32_t len = side == CONN__KEY ? rec->key_len : rec->value_len;
  if (!data || len < 0) {
    sl->parsed = sl->null = true;
    sl->tree = NULL;
    *out = NULL;
    return 0;
  }
  char ebuf[256] = "it is empty";
  yajl_val tree = len > 0 ? conn__jparse(s, data, (size_t)len, ebuf, sizeof ebuf) : NULL;
  if (!tree) {
    /* A NUL byte cannot be held by a yajl string node either. */
    if (as_string && !memchr(data, '\0', (size_t)len)) {
      tree = conn__jv_string(&s->arena, data, (size_t)len);
      if (!tree) return conn__terr(err, errlen, "out of memory");
    } else {
      return conn__terr(err, errlen, "%s is not JSON (%s)", conn__side_name(side), ebuf);
    }
  }
  sl->tree = tree;
  sl->parsed = true;
  sl->null = false;
  *out = tree;
  return 0;
}

void conn__json_set(conn_record_t *rec, conn__side_t side, yajl_val tree) {
  conn__jscope_t *s = conn__scope_of(rec);
  if (!s) return; /* cannot happen through conn__json_run */
  conn__jslot_t *sl = &s->slot[side];
  sl->tree = tree;
  sl->null = tree == NULL;
  sl->parsed = sl->stale = true;
}

void conn__json_touch(conn_record_t *rec, conn__side_t side) {
  conn__jscope_t *s = conn__scope_of(rec);
  if (s) s->slot[side].stale = true;
}

int conn__json_flush(conn__jscope_t *s, char *err, size_t errlen) {
  for (int i = 0; i < 2; i++) {
    conn__jslot_t *sl = &s->slot[i];
    if (!sl->stale) continue;
    int rc;
    if (sl->null) {
      rc = i == CONN__KEY ? conn_record_set_key(s->rec, NULL, -1)
                          : conn_record_set_value(s->rec, NULL, -1);
    } else {
      if (!s->gen) {
        s->gen = yajl_gen_alloc(NULL);
        if (!s->gen) return conn__terr(err, errlen, "out of memory");
        /* Text wrapped by HoistField is not checked when read. */
        yajl_gen_config(s->gen, yajl_gen_validate_utf8, 1);
      } else {
        yajl_gen_reset(s->gen, NULL);
        yajl_gen_clear(s->gen);
      }
      const unsigned char *text;
      size_t len;
      if (conn_json_gen(s->gen, sl->tree) != 0 ||
          yajl_gen_get_buf(s->gen, &text, &len) != yajl_gen_status_ok)
        return conn__terr(err, errlen,
                          "cannot write the %s as JSON (invalid UTF-8 or nested too deep)",
                          conn__side_name((conn__side_t)i));
      if (len > INT32_MAX)
        return conn__terr(err, errlen, "the %s is too large", conn__side_name((conn__side_t)i));
      rc = i == CONN__KEY ? conn_record_set_key(s->rec, text, (int32_t)len)
                          : conn_record_set_value(s->rec, text, (int32_t)len);
    }
    if (rc != 0) return conn__terr(err, errlen, "out of memory");
    sl->stale = false;
  }
  return 0;
}

int conn__json_run(int (*fn)(void *state, conn_record_t *rec, char *err, size_t errlen),
                   void *state, conn_record_t *rec, char *err, size_t errlen) {
  if (conn__scope_of(rec)) return fn(state, rec, err, errlen);
  conn__jscope_t own, *outer = conn__bound;
  conn__jscope_init(&own);
  conn__jscope_bind(&own, rec);
  int rc = fn(state, rec, err, errlen);
  if (rc == 1 && conn__json_flush(&own, err, errlen) != 0) rc = -1;
  conn__jscope_free(&own);
  conn__bound = outer;
  return rc;
}

/* ---- building trees ------------------------------------------------------------ */

yajl_val conn__jv_new(conn__arena_t *a, yajl_type type) {
  if (!a) return NULL;
  yajl_val v = conn__arena_alloc(a, sizeof *v);
  if (v) {
    memset(v, 0, sizeof *v);
    v->type = type;
  }
  return v;
}

yajl_val conn__jv_string(conn__arena_t *a, const char *s, size_t len) {
  yajl_val v = conn__jv_new(a, yajl_t_string);
  if (v && !(v->u.string = conn__arena_strndup(a, s, len))) return NULL;
  return v;
}

static yajl_val conn__jv_number(conn__arena_t *a, const char *text) {
  yajl_val v = conn__jv_new(a, yajl_t_number);
  if (v && !(v->u.number.r = conn__arena_strndup(a, text, strlen(text)))) return NULL;
  return v;
}

yajl_val conn__jv_int(conn__arena_t *a, int64_t i) {
  char buf[24];
  snprintf(buf, sizeof buf, "%lld", (long long)i);
  yajl_val v = conn__jv_number(a, buf);
  if (v) {
    v->u.number.i = i;
    v->u.number.d = (double)i;
    v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
  }
  return v;
}

yajl_val conn__jv_double(conn__arena_t *a, double d) {
  /* Always with a '.' or an exponent, so that a float stays a float for
   * readers that type numbers by their text (as luavm_json does). */
  char buf[40];
  snprintf(buf, sizeof buf, "%.17g", d);
  if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
  yajl_val v = conn__jv_number(a, buf);
  if (v) {
    v->u.number.d = d;
    v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
  }
  return v;
}

yajl_val conn__jv_copy(conn__arena_t *a, yajl_val v) {
  if (!v) return NULL;
  switch (v->type) {
  case yajl_t_string: return conn__jv_string(a, v->u.string, strlen(v->u.string));
  case yajl_t_number: {
    yajl_val c = conn__jv_number(a, v->u.number.r);
    if (c) {
      c->u.number.i = v->u.number.i;
      c->u.number.d = v->u.number.d;
      c->u.number.flags = v->u.number.flags;
    }
    return c;
  }
  case yajl_t_object:
  case yajl_t_array: {
    yajl_val c = conn__jv_new(a, v->type);
    bool obj = v->type == yajl_t_object;
    size_t n = obj ? v->u.object.len : v->u.array.len;
    for (size_t i = 0; c && i < n; i++) {
      yajl_val e = conn__jv_copy(a, obj ? v->u.object.values[i] : v->u.array.values[i]);
      char *k = obj ? conn__arena_strndup(a, v->u.object.keys[i], strlen(v->u.object.keys[i]))
                    : NULL;
      if (!e || (obj && !k) || conn__jv_append(a, c, k, e) != 0) return NULL;
    }
    return c;
  }
  default: return conn__jv_new(a, v->type);
  }
}

int conn__jv_put(conn__arena_t *a, yajl_val obj, const char *key, yajl_val v) {
  if (!v) return -ENOMEM; /* a builder that failed */
  for (size_t i = 0; i < obj->u.object.len; i++) {
    if (strcmp(obj->u.object.keys[i], key) == 0) {
      obj->u.object.values[i] = v;
      return 0;
    }
  }
  char *k = conn__arena_strndup(a, key, strlen(key));
  return k ? conn__jv_append(a, obj, k, v) : -ENOMEM;
}

yajl_val conn__jv_take(yajl_val obj, const char *key) {
  if (!obj || obj->type != yajl_t_object) return NULL;
  size_t n = obj->u.object.len;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(obj->u.object.keys[i], key) != 0) continue;
    yajl_val v = obj->u.object.values[i];
    memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1], (n - i - 1) * sizeof(char *));
    memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1],
            (n - i - 1) * sizeof(yajl_val));
    obj->u.object.len = n - 1;
    return v;
  }
  return NULL;
}

/* ---- config validators ---------------------------------------------------------- */

int conn__tv_nonempty_list(const char *value, char *msg, size_t len) {
  for (const char *p = value; p && *p; p++)
    if (*p != ',' && *p != ' ' && *p != '\t') return 0;
  snprintf(msg, len, "must be a non-empty list");
  return -1;
}

int conn__tv_nonempty(const char *value, char *msg, size_t len) {
  if (value && *value) return 0;
  snprintf(msg, len, "must not be empty");
  return -1;
}
