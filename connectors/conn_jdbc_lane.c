/*
 * conn_jdbc_lane.c: the fast lane of a streamed COPY. While a put streams
 * rows of one shape (PostgreSQL plain inserts), a record whose value is a
 * JSON object with exactly the shape's value columns, in the same order,
 * each a scalar, goes from its JSON text to COPY values in one pass of a
 * yajl parser that is reused from record to record: no row, no field
 * arena, no parser per record. Whatever does not fit (another shape, a
 * nested value, bad JSON) is left to the general path, which parses the
 * record as before (conn_jdbc_row_parse), so the lane decides only speed,
 * never what is written: it gives the values the general path would give
 * for the same text, as the COPY text formats them (pg_copy_value).
 *
 * Profiles of 1M JSON records into PostgreSQL had the general path's
 * parse (a yajl handle per record, the fields into pool memory, integers
 * through strtoll and back to digits) as the largest part of the sink
 * thread.
 *
 * The parser runs with yajl_allow_multiple_values, and each record is
 * followed by one space, which ends a top-level number or literal left
 * after the object (caught as not fitting). A record that breaks off
 * mid-value leaves the parser in a state the next record can not use: the
 * parser is then freed and the next record gets a new one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "conn_jdbc_int.h"

struct conn_jdbc_lane {
  yajl_handle h;
  /* The record being read. */
  const char *const *names;
  int n, at;
  conn_jdbc_val_t *vals;
  int depth;
  bool done, misfit;
  /* Decoded strings and numbers of the record: reserved before the parse
   * at the record's length (no value is longer than its JSON text), so
   * the pointers into it stay valid. */
  char *scratch;
  size_t used, cap;
};

static int lane_misfit(conn_jdbc_lane_t *l) {
  l->misfit = true;
  return 0; /* cancels the parse */
}

/* Room for the next top-level value, or a misfit. */
static conn_jdbc_val_t *lane_slot(conn_jdbc_lane_t *l) {
  if (l->depth != 1 || l->at >= l->n) return NULL;
  return &l->vals[l->at++];
}

static const char *lane_keep(conn_jdbc_lane_t *l, const void *s, size_t len) {
  char *p = l->scratch + l->used;
  memcpy(p, s, len);
  p[len] = '\0';
  l->used += len + 1;
  return p;
}

static int lane_null(void *ctx) {
  conn_jdbc_val_t *v = lane_slot(ctx);
  if (!v) return lane_misfit(ctx);
  *v = (conn_jdbc_val_t){.type = JDBC_NULL};
  return 1;
}

static int lane_bool(void *ctx, int b) {
  conn_jdbc_val_t *v = lane_slot(ctx);
  if (!v) return lane_misfit(ctx);
  *v = (conn_jdbc_val_t){.type = JDBC_BOOL, .i = b != 0};
  return 1;
}

/* The general path (conn_jdbc_fields.c) makes an integer an int64 when it
 * fits and keeps its digits otherwise; COPY writes both as the same
 * digits, so they pass as text (JSON has no '+' or leading zeros; "-0" is
 * the one integer whose int64 prints differently). Other numbers become
 * doubles there, so here too. */
static int lane_number(void *ctx, const char *s, size_t len) {
  conn_jdbc_lane_t *l = ctx;
  conn_jdbc_val_t *v = lane_slot(l);
  if (!v) return lane_misfit(l);
  if (!memchr(s, '.', len) && !memchr(s, 'e', len) && !memchr(s, 'E', len)) {
    if (len == 2 && s[0] == '-' && s[1] == '0') s = "0", len = 1;
    *v = (conn_jdbc_val_t){.type = JDBC_NUMERIC, .s = lane_keep(l, s, len), .len = len};
    return 1;
  }
  const char *text = lane_keep(l, s, len);
  char *end;
  double d = strtod(text, &end);
  if (len < 64 && *end == '\0' && isfinite(d))
    *v = (conn_jdbc_val_t){.type = JDBC_DOUBLE, .d = d};
  else
    *v = (conn_jdbc_val_t){.type = JDBC_NUMERIC, .s = text, .len = len};
  return 1;
}

static int lane_string(void *ctx, const unsigned char *s, size_t len) {
  conn_jdbc_lane_t *l = ctx;
  conn_jdbc_val_t *v = lane_slot(l);
  if (!v) return lane_misfit(l);
  *v = (conn_jdbc_val_t){.type = JDBC_TEXT, .s = lane_keep(l, s, len), .len = len};
  return 1;
}

static int lane_map_key(void *ctx, const unsigned char *s, size_t len) {
  conn_jdbc_lane_t *l = ctx;
  if (l->depth != 1 || l->at >= l->n) return lane_misfit(l);
  const char *want = l->names[l->at];
  if (strlen(want) != len || memcmp(want, s, len) != 0) return lane_misfit(l);
  return 1;
}

static int lane_start_map(void *ctx) {
  conn_jdbc_lane_t *l = ctx;
  if (l->depth != 0 || l->done) return lane_misfit(l); /* nested, or a second value */
  l->depth = 1;
  return 1;
}

static int lane_end_map(void *ctx) {
  conn_jdbc_lane_t *l = ctx;
  l->depth = 0;
  l->done = true;
  return 1;
}

static int lane_start_array(void *ctx) { return lane_misfit(ctx); }

static const yajl_callbacks lane_callbacks = {
    .yajl_null = lane_null,
    .yajl_boolean = lane_bool,
    .yajl_number = lane_number,
    .yajl_string = lane_string,
    .yajl_start_map = lane_start_map,
    .yajl_map_key = lane_map_key,
    .yajl_end_map = lane_end_map,
    .yajl_start_array = lane_start_array,
};

int conn_jdbc_lane_row(conn_jdbc_lane_t **lane, const char *const *names, int n,
                       const char *text, size_t len, conn_jdbc_val_t *vals) {
  conn_jdbc_lane_t *l = *lane;
  if (!l && !(l = *lane = calloc(1, sizeof *l))) return JDBC_E_NOMEM;
  if (len + 1 > l->cap) {
    size_t cap = len + 1 > 2 * l->cap ? len + 1 : 2 * l->cap;
    char *p = realloc(l->scratch, cap);
    if (!p) return JDBC_E_NOMEM;
    l->scratch = p;
    l->cap = cap;
  }
  if (!l->h) {
    if (!(l->h = yajl_alloc(&lane_callbacks, NULL, l))) return JDBC_E_NOMEM;
    yajl_config(l->h, yajl_allow_multiple_values, 1);
  }
  l->names = names;
  l->n = n;
  l->at = 0;
  l->vals = vals;
  l->depth = 0;
  l->done = l->misfit = false;
  l->used = 0;
  yajl_status st = yajl_parse(l->h, (const unsigned char *)text, len);
  if (st == yajl_status_ok) st = yajl_parse(l->h, (const unsigned char *)" ", 1);
  if (st != yajl_status_ok || !l->done) { /* the parser is spent */
    yajl_free(l->h);
    l->h = NULL;
    return 0;
  }
  return !l->misfit && l->at == n;
}

void conn_jdbc_lane_free(conn_jdbc_lane_t *lane) {
  if (!lane) return;
  if (lane->h) yajl_free(lane->h);
  free(lane->scratch);
  free(lane);
}
