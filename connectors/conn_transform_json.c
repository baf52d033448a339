/*
 * conn_transform_json.c: the JSON scope of the transform chain (see
 * conn_transform_int.h): a record's key and value parsed once with
 * yajl_tree, shared by consecutive transforms, and generated back with
 * yajl_gen only when a transform changed them.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- scope ------------------------------------------------------------------ */

void conn__jscope_init(conn__jscope_t *s) {
  memset(s, 0, sizeof *s);
}

void conn__jscope_drop(conn__jscope_t *s) {
  for (int i = 0; i < 2; i++) {
    if (s->slot[i].tree) yajl_tree_free(s->slot[i].tree);
    memset(&s->slot[i], 0, sizeof s->slot[i]);
  }
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
  if (s->gen) yajl_gen_free(s->gen);
  memset(s, 0, sizeof *s);
}

static conn__jscope_t *conn__scope_of(conn_record_t *rec) {
  return conn__bound && conn__bound->rec == rec ? conn__bound : NULL;
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
  char ebuf[256] = "";
  yajl_val tree = conn_json_parse(NULL, data, (size_t)len, ebuf, sizeof ebuf);
  if (!tree) {
    /* A NUL byte cannot be held by a yajl string node either. */
    if (as_string && !memchr(data, '\0', (size_t)len)) {
      tree = conn__jv_string(data, (size_t)len);
      if (!tree) return conn__terr(err, errlen, "out of memory");
    } else {
      return conn__terr(err, errlen, "%s is not JSON (%s)", conn__side_name(side),
                        len == 0 ? "it is empty" : ebuf);
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
  if (!s) { /* cannot happen through conn__json_run; do not leak */
    if (tree) yajl_tree_free(tree);
    return;
  }
  conn__jslot_t *sl = &s->slot[side];
  if (sl->tree && sl->tree != tree) yajl_tree_free(sl->tree);
  sl->tree = tree;
  sl->null = tree == NULL;
  sl->parsed = sl->stale = true;
}

yajl_val conn__json_detach(conn_record_t *rec, conn__side_t side) {
  conn__jscope_t *s = conn__scope_of(rec);
  if (!s) return NULL;
  yajl_val t = s->slot[side].tree;
  s->slot[side].tree = NULL;
  return t;
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
        return conn__terr(err, errlen, "cannot write the %s as JSON (invalid UTF-8 or nested too deep)",
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

yajl_val conn__jv_new(yajl_type type) {
  yajl_val v = calloc(1, sizeof *v);
  if (v) v->type = type;
  return v;
}

yajl_val conn__jv_string(const char *s, size_t len) {
  yajl_val v = conn__jv_new(yajl_t_string);
  if (!v) return NULL;
  v->u.string = malloc(len + 1);
  if (!v->u.string) {
    free(v);
    return NULL;
  }
  memcpy(v->u.string, s, len);
  v->u.string[len] = '\0';
  return v;
}

static yajl_val conn__jv_number(const char *text) {
  yajl_val v = conn__jv_new(yajl_t_number);
  if (!v) return NULL;
  v->u.number.r = strdup(text);
  if (!v->u.number.r) {
    free(v);
    return NULL;
  }
  return v;
}

yajl_val conn__jv_int(int64_t i) {
  char buf[24];
  snprintf(buf, sizeof buf, "%lld", (long long)i);
  yajl_val v = conn__jv_number(buf);
  if (v) {
    v->u.number.i = i;
    v->u.number.d = (double)i;
    v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
  }
  return v;
}

yajl_val conn__jv_double(double d) {
  /* Always with a '.' or an exponent, so that a float stays a float for
   * readers that type numbers by their text (as luavm_json does). */
  char buf[40];
  snprintf(buf, sizeof buf, "%.17g", d);
  if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
  yajl_val v = conn__jv_number(buf);
  if (v) {
    v->u.number.d = d;
    v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
  }
  return v;
}

yajl_val conn__jv_copy(yajl_val v) {
  if (!v) return NULL;
  yajl_val c = conn__jv_new(v->type);
  if (!c) return NULL;
  switch (v->type) {
  case yajl_t_string:
    free(c);
    return conn__jv_string(v->u.string, strlen(v->u.string));
  case yajl_t_number:
    c->u.number = v->u.number;
    c->u.number.r = strdup(v->u.number.r);
    if (!c->u.number.r) {
      free(c);
      return NULL;
    }
    return c;
  case yajl_t_object:
    for (size_t i = 0; i < v->u.object.len; i++) {
      yajl_val e = conn__jv_copy(v->u.object.values[i]);
      if (!e || conn__jv_put(c, v->u.object.keys[i], e) != 0) {
        yajl_tree_free(c);
        return NULL;
      }
    }
    return c;
  case yajl_t_array:
    if (v->u.array.len > 0) {
      c->u.array.values = calloc(v->u.array.len, sizeof(yajl_val));
      if (!c->u.array.values) {
        free(c);
        return NULL;
      }
      c->u.array.len = v->u.array.len;
      for (size_t i = 0; i < v->u.array.len; i++) {
        c->u.array.values[i] = conn__jv_copy(v->u.array.values[i]);
        if (!c->u.array.values[i] && v->u.array.values[i]) {
          yajl_tree_free(c);
          return NULL;
        }
      }
    }
    return c;
  default: return c;
  }
}

int conn__jv_put(yajl_val obj, const char *key, yajl_val v) {
  if (!v) return -ENOMEM; /* a builder that failed */
  for (size_t i = 0; i < obj->u.object.len; i++) {
    if (strcmp(obj->u.object.keys[i], key) == 0) {
      yajl_tree_free(obj->u.object.values[i]);
      obj->u.object.values[i] = v;
      return 0;
    }
  }
  size_t n = obj->u.object.len;
  char *k = strdup(key);
  const char **keys = k ? realloc(obj->u.object.keys, (n + 1) * sizeof *keys) : NULL;
  if (keys) obj->u.object.keys = keys;
  yajl_val *vals = keys ? realloc(obj->u.object.values, (n + 1) * sizeof *vals) : NULL;
  if (!vals) {
    free(k);
    yajl_tree_free(v);
    return -ENOMEM;
  }
  obj->u.object.values = vals;
  keys[n] = k;
  vals[n] = v;
  obj->u.object.len = n + 1;
  return 0;
}

yajl_val conn__jv_take(yajl_val obj, const char *key) {
  if (!obj || obj->type != yajl_t_object) return NULL;
  size_t n = obj->u.object.len;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(obj->u.object.keys[i], key) != 0) continue;
    yajl_val v = obj->u.object.values[i];
    free((char *)obj->u.object.keys[i]);
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
