/*
 * conn_json.c: JSON helpers for connectors on yajl's tree API (see
 * conn_int.h). Connector configs, source partitions and offsets, and the
 * JSON lines a file source reads are small documents parsed once, so the
 * tree is the simple choice; the per-record Lua path uses luavm_json.c's
 * streaming decoder instead.
 */
#include "conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* yajl_tree_parse reports no position, so a failed parse is run again
 * through the streaming parser, which says how many bytes it consumed
 * before the error; the line and column are counted up to there. */
static void conn_json_syntax_error(const char *where, size_t first_line, const char *text,
                                   size_t len, char *err, size_t errlen) {
  yajl_handle h = yajl_alloc(NULL, NULL, NULL);
  size_t at = len;
  unsigned char *msg = NULL;
  yajl_status st = h ? yajl_parse(h, (const unsigned char *)text, len) : yajl_status_error;
  if (h && st == yajl_status_ok)
    st = yajl_complete_parse(h);
  else if (h)
    at = yajl_get_bytes_consumed(h);
  if (h && st != yajl_status_ok)
    msg = yajl_get_error(h, 0, NULL, 0);
  size_t line = first_line, col = 1;
  for (size_t i = 0; i < at && i < len; i++) {
    if (text[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  char what[200] = "invalid JSON";
  if (msg) {
    snprintf(what, sizeof what, "%s", (const char *)msg);
    char *nl = strchr(what, '\n');
    if (nl)
      *nl = '\0';
    yajl_free_error(h, msg);
  }
  if (where)
    snprintf(err, errlen, "%s:%zu:%zu: %s", where, line, col, what);
  else
    snprintf(err, errlen, "%zu:%zu: %s", line, col, what);
  if (h)
    yajl_free(h);
}

static yajl_val conn_json_parse_from(const char *where, size_t first_line, const char *text,
                                     size_t len, char *err, size_t errlen) {
  if (memchr(text, '\0', len)) {
    snprintf(err, errlen, "%s%scontains a NUL byte", where ? where : "", where ? ": " : "");
    return NULL;
  }
  char *copy = malloc(len + 1); /* yajl_tree_parse wants a C string */
  if (!copy) {
    snprintf(err, errlen, "%s%sout of memory", where ? where : "", where ? ": " : "");
    return NULL;
  }
  memcpy(copy, text, len);
  copy[len] = '\0';
  char ebuf[128];
  yajl_val v = yajl_tree_parse(copy, ebuf, sizeof ebuf);
  if (!v)
    conn_json_syntax_error(where, first_line, copy, len, err, errlen);
  free(copy);
  return v;
}

yajl_val conn_json_parse(const char *where, const char *text, size_t len, char *err,
                         size_t errlen) {
  return conn_json_parse_from(where, 1, text, len, err, errlen);
}

yajl_val conn_json_parse_line(const char *file, int64_t line, const char *text, size_t len,
                              char *err, size_t errlen) {
  return conn_json_parse_from(file, (size_t)line, text, len, err, errlen);
}

int conn_json_gen(yajl_gen g, yajl_val v) {
  yajl_gen_status st = yajl_gen_status_ok;
  if (v == NULL || YAJL_IS_NULL(v)) {
    st = yajl_gen_null(g);
  } else if (YAJL_IS_STRING(v)) {
    st = yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
  } else if (YAJL_IS_NUMBER(v)) {
    st = yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
  } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
    st = yajl_gen_bool(g, YAJL_IS_TRUE(v));
  } else if (YAJL_IS_OBJECT(v)) {
    st = yajl_gen_map_open(g);
    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.object.len; i++) {
      const char *k = v->u.object.keys[i];
      st = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
      if (st == yajl_gen_status_ok && conn_json_gen(g, v->u.object.values[i]) != 0)
        return -1;
    }
    if (st == yajl_gen_status_ok)
      st = yajl_gen_map_close(g);
  } else if (YAJL_IS_ARRAY(v)) {
    st = yajl_gen_array_open(g);
    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.array.len; i++)
      if (conn_json_gen(g, v->u.array.values[i]) != 0)
        return -1;
    if (st == yajl_gen_status_ok)
      st = yajl_gen_array_close(g);
  }
  return st == yajl_gen_status_ok ? 0 : -1;
}

char *conn_json_take(yajl_gen g, size_t *len) {
  if (!g)
    return NULL;
  const unsigned char *buf;
  size_t n;
  char *out = NULL;
  if (yajl_gen_get_buf(g, &buf, &n) == yajl_gen_status_ok && (out = malloc(n + 1)) != NULL) {
    memcpy(out, buf, n);
    out[n] = '\0';
    if (len)
      *len = n;
  }
  yajl_gen_free(g);
  return out;
}

char *conn_json_text(yajl_val v, size_t *len) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g && conn_json_gen(g, v) != 0) {
    yajl_gen_free(g);
    return NULL;
  }
  return conn_json_take(g, len);
}

const char *conn_json_scalar(yajl_val v) {
  if (v == NULL)
    return NULL;
  if (YAJL_IS_STRING(v))
    return v->u.string;
  if (YAJL_IS_NUMBER(v))
    return v->u.number.r;
  if (YAJL_IS_TRUE(v))
    return "true";
  if (YAJL_IS_FALSE(v))
    return "false";
  return NULL;
}

yajl_val conn_json_member(yajl_val obj, const char *key) {
  if (obj == NULL || !YAJL_IS_OBJECT(obj))
    return NULL;
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], key) == 0)
      return obj->u.object.values[i];
  return NULL;
}

size_t conn_fmt_u64(char *dst, uint64_t u) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  memcpy(dst, tmp + i, sizeof tmp - i);
  return sizeof tmp - i;
}

size_t conn_fmt_i64(char *dst, int64_t v) {
  if (v >= 0) return conn_fmt_u64(dst, (uint64_t)v);
  dst[0] = '-';
  return 1 + conn_fmt_u64(dst + 1, 0 - (uint64_t)v);
}
