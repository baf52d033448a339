/*
 * conn_file_json.c: one line of a JSON-lines file (the file source's
 * format=json) checked and turned into the record's key and timestamp.
 *
 * This is on the per-line path, so the line goes through yajl's streaming
 * parser with callbacks that only watch for the top-level fields named by
 * key.field and timestamp.field: no tree is built and nothing is allocated
 * beyond the parser. A line that is an object or an array goes through a
 * parser kept from line to line (yajl_allow_multiple_values): the callback
 * that closes the top-level value notes where it ended, and the line is
 * good when only whitespace follows (so nothing is left half-read in the
 * parser for the next line); otherwise the parser is dropped. Other lines
 * get a parser of their own, as a top-level number ends only at the end
 * of the text. (A yajl tree per line made the source about six times
 * slower than the string format.) Only the rare cases fall back to the
 * tree: a key field whose value is an object or an array (the key is then
 * its JSON text), and a malformed line (to locate the error as
 * file:line:col, see conn_json.c).
 *
 * The first occurrence of a duplicated field wins, as conn_json_member.
 */
#include "conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_parse.h>

enum { WANT_KEY = 1, WANT_TS = 2 };

typedef struct {
  const char *key_field, *ts_field;
  conn_record_t *r;
  yajl_handle h;      /* the parser calling back */
  size_t end;         /* where the top-level object or array ended; 0: not yet */
  int depth;          /* open containers; top-level fields are at depth 1 */
  int want;           /* what the next value at depth 1 is */
  int seen;           /* fields already taken */
  bool key_container; /* the key field holds an object or an array */
  bool ts_bad;
  bool oom;
} file_json_t;

int conn_file_parse_iso(const char *s, int64_t *out) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int n = 0;
  if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
    return -1;
  const char *p = s + n;
  int64_t ms = 0;
  if (*p == '.' || *p == ',') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3)
        ms = ms * 10 + (*p - '0');
    if (digits == 0)
      return -1;
    for (; digits < 3; digits++)
      ms *= 10;
  }
  int64_t zone = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int hh, mm, k = 0;
    if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
      return -1;
    zone = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
    p += 1 + k;
  }
  if (*p != '\0')
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  *out = ((int64_t)t - zone) * 1000 + ms;
  return 0;
}

/* A timestamp from a field's text: epoch milliseconds (digits, from a
 * number or a string), or an ISO-8601 date-time (strings only); -1 when
 * neither. */
static int64_t file_json_ts(const unsigned char *s, size_t n, bool is_string) {
  char buf[64];
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (strspn(buf, "0123456789") == n) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    return errno == 0 ? v : -1;
  }
  int64_t ms;
  if (is_string && conn_file_parse_iso(buf, &ms) == 0)
    return ms;
  return -1;
}

/* A scalar value: taken when it is the value of a wanted field. text is
 * NULL for null. */
static int file_json_scalar(file_json_t *j, const unsigned char *text, size_t n, bool is_string) {
  if (j->depth == 1 && j->want) {
    if ((j->want & WANT_KEY) && text &&
        conn_record_set_key(j->r, text, (int32_t)n) != 0) {
      j->oom = true;
      return 0; /* cancels the parse */
    }
    if (j->want & WANT_TS) {
      j->r->timestamp = text ? file_json_ts(text, n, is_string) : -1;
      j->ts_bad = j->r->timestamp < 0;
    }
    j->seen |= j->want;
  }
  j->want = 0;
  return 1;
}

static int file_json_null(void *ctx) {
  return file_json_scalar(ctx, NULL, 0, false);
}

static int file_json_bool(void *ctx, int b) {
  return file_json_scalar(ctx, (const unsigned char *)(b ? "true" : "false"), b ? 4 : 5, false);
}

static int file_json_number(void *ctx, const char *s, size_t n) {
  return file_json_scalar(ctx, (const unsigned char *)s, n, false);
}

static int file_json_string(void *ctx, const unsigned char *s, size_t n) {
  return file_json_scalar(ctx, s, n, true);
}

static int file_json_open(void *ctx) {
  file_json_t *j = ctx;
  if (j->depth == 0 && j->end) return 0; /* a second value on the line */
  if (j->depth == 1 && j->want) {
    if (j->want & WANT_KEY)
      j->key_container = true;
    if (j->want & WANT_TS)
      j->ts_bad = true;
    j->seen |= j->want;
  }
  j->want = 0;
  j->depth++;
  return 1;
}

static int file_json_close(void *ctx) {
  file_json_t *j = ctx;
  if (--j->depth == 0) j->end = yajl_get_bytes_consumed(j->h);
  return 1;
}

static int file_json_map_key(void *ctx, const unsigned char *s, size_t n) {
  file_json_t *j = ctx;
  j->want = 0;
  if (j->depth != 1)
    return 1;
  if (j->key_field && !(j->seen & WANT_KEY) && strlen(j->key_field) == n &&
      memcmp(j->key_field, s, n) == 0)
    j->want |= WANT_KEY;
  if (j->ts_field && !(j->seen & WANT_TS) && strlen(j->ts_field) == n &&
      memcmp(j->ts_field, s, n) == 0)
    j->want |= WANT_TS;
  return 1;
}

static const yajl_callbacks file_json_callbacks = {
    .yajl_null = file_json_null,
    .yajl_boolean = file_json_bool,
    .yajl_number = file_json_number,
    .yajl_string = file_json_string,
    .yajl_start_map = file_json_open,
    .yajl_map_key = file_json_map_key,
    .yajl_end_map = file_json_close,
    .yajl_start_array = file_json_open,
    .yajl_end_array = file_json_close,
};

/* The key field's object or array value, as JSON text, through the tree. */
static int file_json_container_key(file_json_t *j, const char *text, size_t len) {
  char err[16];
  yajl_val v = conn_json_parse(NULL, text, len, err, sizeof err);
  size_t n = 0;
  char *js = v ? conn_json_text(conn_json_member(v, j->key_field), &n) : NULL;
  int rc = js && conn_record_set_key(j->r, js, (int32_t)n) == 0 ? 0 : -1;
  free(js);
  yajl_tree_free(v);
  return rc;
}

struct conn_file_json {
  const char *key_field, *ts_field;
  yajl_handle h; /* kept from line to line; NULL after a bad line */
  file_json_t j; /* its callbacks' state */
};

conn_file_json_t *conn_file_json_new(const char *key_field, const char *ts_field) {
  conn_file_json_t *c = calloc(1, sizeof *c);
  if (c) {
    c->key_field = key_field;
    c->ts_field = ts_field;
  }
  return c;
}

void conn_file_json_free(conn_file_json_t *c) {
  if (!c) return;
  if (c->h) yajl_free(c->h);
  free(c);
}

static bool all_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
  return true;
}

/* Parses one line; true when it is one JSON value. */
static bool file_json_parse(conn_file_json_t *c, const char *text, size_t len) {
  size_t lead = 0;
  while (lead < len && all_space(text + lead, 1)) lead++;
  if (lead < len && (text[lead] == '{' || text[lead] == '[')) {
    if (!c->h) {
      if (!(c->h = yajl_alloc(&file_json_callbacks, NULL, &c->j))) return false;
      yajl_config(c->h, yajl_allow_multiple_values, 1);
    }
    c->j.h = c->h;
    bool ok = yajl_parse(c->h, (const unsigned char *)text, len) == yajl_status_ok &&
              c->j.end > 0 && all_space(text + c->j.end, len - c->j.end);
    if (!ok) { /* the parser may hold part of a token, or an error */
      yajl_free(c->h);
      c->h = NULL;
    }
    return ok;
  }
  yajl_handle h = yajl_alloc(&file_json_callbacks, NULL, &c->j);
  if (!h) return false;
  c->j.h = h;
  bool ok = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
            yajl_complete_parse(h) == yajl_status_ok;
  yajl_free(h);
  return ok;
}

int conn_file_json_line(conn_file_json_t *c, const char *file, int64_t line, const char *text,
                        size_t len, conn_record_t *r, bool *ts_bad, char *err, size_t errlen) {
  c->j = (file_json_t){.key_field = c->key_field, .ts_field = c->ts_field, .r = r};
  bool ok = file_json_parse(c, text, len);
  file_json_t *j = &c->j;
  if (j->oom)
    return CONN_E_FAIL;
  if (!ok) {
    /* The tree parser fails the same way and says where. */
    yajl_val v = conn_json_parse_line(file, line, text, len, err, errlen);
    if (v) { /* yajl takes text after a top-level value that it ends
                with an unfinished string: not one JSON value */
      yajl_tree_free(v);
      size_t at = j->end; /* where the value ended; the column of what follows */
      while (at < len && all_space(text + at, 1)) at++;
      snprintf(err, errlen, "%s:%lld:%zu: invalid JSON: text after the value", file,
               (long long)line, at + 1);
    }
    conn_record_set_key(r, NULL, -1);
    r->timestamp = -1;
    return 0;
  }
  if (j->key_container && file_json_container_key(j, text, len) != 0)
    return CONN_E_FAIL;
  *ts_bad = j->ts_bad;
  return 1;
}
