/*
 * conn_jdbc_fields.c: the top-level fields of a JSON object value, parsed
 * in one pass with yajl's event parser straight into column values.
 *
 * Why not yajl_tree: the sink parses every record, and a tree costs a
 * malloc per node plus a walk; profiles of the SQLite sink showed the tree
 * parse and its frees as half of the sink's time. Here each record costs
 * one parser and one arena: names and string values are copied into the
 * arena (NUL-terminated, as libpq wants its text parameters), and a nested
 * object or array is re-generated as compact JSON text into it.
 *
 * Numbers keep JSON's distinction: digits only and within int64 -> JDBC_INT;
 * other finite numbers -> JDBC_DOUBLE; anything beyond (1e400, a 30-digit
 * integer) -> JDBC_NUMERIC with its text.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "conn_jdbc_int.h"

typedef struct {
  conn_jdbc_fields_t *f;
  conn_pool_t *pool;
  struct {
    char *p;
    size_t len, cap;
  } arena;
  size_t *name_off, *str_off; /* arena offsets, fixed up into pointers at the end */
  size_t cur_name;            /* offset of the current top-level key */
  int depth;
  bool not_object;
  bool oom;
  yajl_gen g;                 /* nested value being re-generated */
} fields_ctx_t;

/* Copies s and a NUL into the arena; returns its offset. */
static size_t arena_put(fields_ctx_t *c, const void *s, size_t len) {
  size_t off = c->arena.len;
  if (off + len + 1 > c->arena.cap) {
    size_t cap = c->arena.cap * 2 + len + 1;
    char *p = conn_pool_realloc(c->pool, c->arena.p, c->arena.len, cap);
    if (!p) {
      c->oom = true;
      return 0;
    }
    c->arena.p = p;
    c->arena.cap = cap;
  }
  memcpy(c->arena.p + off, s, len);
  c->arena.p[off + len] = '\0';
  c->arena.len += len + 1;
  return off;
}

static void *pool_grow(fields_ctx_t *c, void *old, size_t n_old, size_t n, size_t size) {
  return conn_pool_realloc(c->pool, old, n_old * size, n * size);
}

static int fields_add(fields_ctx_t *c, conn_jdbc_val_t v, size_t str_off) {
  conn_jdbc_fields_t *f = c->f;
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    const char **names = pool_grow(c, f->names, f->cap, cap, sizeof *names);
    if (names) f->names = names;
    conn_jdbc_val_t *vals = pool_grow(c, f->vals, f->cap, cap, sizeof *vals);
    if (vals) f->vals = vals;
    size_t *no = pool_grow(c, c->name_off, f->cap, cap, sizeof *no);
    if (no) c->name_off = no;
    size_t *so = pool_grow(c, c->str_off, f->cap, cap, sizeof *so);
    if (so) c->str_off = so;
    if (!names || !vals || !no || !so) {
      c->oom = true;
      return 0;
    }
    f->cap = cap;
  }
  c->name_off[f->n] = c->cur_name;
  c->str_off[f->n] = str_off;
  f->vals[f->n++] = v;
  return 1;
}

/* A scalar at depth 1 is a field; deeper it belongs to a nested value;
 * at depth 0 the value is not an object. */
#define SCALAR(gen_call, field_val, str)                         \
  do {                                                           \
    if (c->depth == 0) {                                         \
      c->not_object = true;                                      \
      return 0;                                                  \
    }                                                            \
    if (c->depth > 1) return (gen_call) == yajl_gen_status_ok;   \
    return fields_add(c, field_val, str);                        \
  } while (0)

static int cb_null(void *ctx) {
  fields_ctx_t *c = ctx;
  SCALAR(yajl_gen_null(c->g), ((conn_jdbc_val_t){.type = JDBC_NULL}), SIZE_MAX);
}

static int cb_bool(void *ctx, int b) {
  fields_ctx_t *c = ctx;
  SCALAR(yajl_gen_bool(c->g, b), ((conn_jdbc_val_t){.type = JDBC_BOOL, .i = b != 0}), SIZE_MAX);
}

static conn_jdbc_val_t number_val(fields_ctx_t *c, const char *s, size_t len, size_t *str) {
  char tmp[64];
  *str = SIZE_MAX;
  if (len < sizeof tmp) {
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    if (!strpbrk(tmp, ".eE")) {
      errno = 0;
      long long i = strtoll(tmp, &end, 10);
      if (errno == 0 && *end == '\0') return (conn_jdbc_val_t){.type = JDBC_INT, .i = i};
    } else {
      double d = strtod(tmp, &end);
      if (*end == '\0' && isfinite(d)) return (conn_jdbc_val_t){.type = JDBC_DOUBLE, .d = d};
    }
  }
  *str = arena_put(c, s, len);
  return (conn_jdbc_val_t){.type = JDBC_NUMERIC, .len = len};
}

static int cb_number(void *ctx, const char *s, size_t len) {
  fields_ctx_t *c = ctx;
  if (c->depth == 0) {
    c->not_object = true;
    return 0;
  }
  if (c->depth > 1) return yajl_gen_number(c->g, s, len) == yajl_gen_status_ok;
  size_t str;
  conn_jdbc_val_t v = number_val(c, s, len, &str);
  return fields_add(c, v, str);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len) {
  fields_ctx_t *c = ctx;
  if (c->depth == 0) {
    c->not_object = true;
    return 0;
  }
  if (c->depth > 1) return yajl_gen_string(c->g, s, len) == yajl_gen_status_ok;
  return fields_add(c, (conn_jdbc_val_t){.type = JDBC_TEXT, .len = len}, arena_put(c, s, len));
}

static int nested_open(fields_ctx_t *c, bool map) {
  if (c->depth == 0 && !map) {
    c->not_object = true;
    return 0;
  }
  c->depth++;
  if (c->depth == 1) return 1;
  if (c->depth == 2) {
    yajl_alloc_funcs af;
    conn_pool_yajl(c->pool, &af);
    if (!c->g && !(c->g = yajl_gen_alloc(&af))) {
      c->oom = true;
      return 0;
    }
    yajl_gen_reset(c->g, NULL);
    yajl_gen_clear(c->g);
  }
  return (map ? yajl_gen_map_open(c->g) : yajl_gen_array_open(c->g)) == yajl_gen_status_ok;
}

static int nested_close(fields_ctx_t *c, bool map) {
  c->depth--;
  if (c->depth == 0) return 1;
  if ((map ? yajl_gen_map_close(c->g) : yajl_gen_array_close(c->g)) != yajl_gen_status_ok)
    return 0;
  if (c->depth > 1) return 1;
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(c->g, &buf, &len);
  return fields_add(c, (conn_jdbc_val_t){.type = JDBC_TEXT, .len = len}, arena_put(c, buf, len));
}

static int cb_start_map(void *ctx) { return nested_open(ctx, true); }
static int cb_end_map(void *ctx) { return nested_close(ctx, true); }
static int cb_start_array(void *ctx) { return nested_open(ctx, false); }
static int cb_end_array(void *ctx) { return nested_close(ctx, false); }

static int cb_map_key(void *ctx, const unsigned char *s, size_t len) {
  fields_ctx_t *c = ctx;
  if (c->depth > 1) return yajl_gen_string(c->g, s, len) == yajl_gen_status_ok;
  c->cur_name = arena_put(c, s, len);
  return 1;
}

static const yajl_callbacks fields_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

int conn_jdbc_fields_parse(conn_pool_t *pool, const char *text, size_t len,
                           conn_jdbc_fields_t *f, char *reason, size_t rlen) {
  memset(f, 0, sizeof *f);
  fields_ctx_t c = {.f = f, .pool = pool};
  /* Names and strings never outgrow the text (plus their NULs), nested
   * values hardly: one arena block, sized once. */
  c.arena.cap = len * 2 + 64;
  c.arena.p = conn_pool_alloc(pool, c.arena.cap);
  yajl_alloc_funcs af;
  conn_pool_yajl(pool, &af);
  yajl_handle h = c.arena.p ? yajl_alloc(&fields_callbacks, &af, &c) : NULL;
  if (!h) return JDBC_E_NOMEM;
  yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
  if (st == yajl_status_ok) st = yajl_complete_parse(h);
  int rc = 0;
  if (c.oom) {
    rc = JDBC_E_NOMEM;
  } else if (c.not_object) {
    snprintf(reason, rlen, "the value is not a JSON object");
    rc = JDBC_BAD_RECORD;
  } else if (st != yajl_status_ok) {
    /* The shared parser words the error with line and column. */
    char perr[256];
    yajl_val v = conn_json_parse(NULL, text, len, perr, sizeof perr);
    yajl_tree_free(v);
    snprintf(reason, rlen, "the value is not JSON: %s", v ? "invalid" : perr);
    rc = JDBC_BAD_RECORD;
  }
  yajl_free(h);
  if (c.g) yajl_gen_free(c.g);
  if (rc == 0) {
    f->arena = c.arena.p;
    for (size_t i = 0; i < f->n; i++) {
      f->names[i] = f->arena + c.name_off[i];
      if (c.str_off[i] != SIZE_MAX) f->vals[i].s = f->arena + c.str_off[i];
    }
  } else {
    memset(f, 0, sizeof *f);
  }
  return rc;
}
