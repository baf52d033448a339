/*
 * conn_jdbc_sql.c: every SQL text the SQLite and PostgreSQL connectors
 * send, built from quoted identifiers and placeholders.
 *
 * Invariant: no value ever appears in the text. Table and column names come
 * from configs and from JSON field names, so they may hold quotes, spaces
 * or semicolons; conn_jdbc_sql_ident quotes them as SQL identifiers (the
 * standard form both databases accept: double quotes, inner ones doubled),
 * which makes any such name one identifier and nothing else.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_jdbc_int.h"

/* ---- buffer -------------------------------------------------------------- */

void conn_jdbc_buf_init(conn_jdbc_buf_t *b) { memset(b, 0, sizeof *b); }

void conn_jdbc_buf_free(conn_jdbc_buf_t *b) {
  free(b->p);
  conn_jdbc_buf_init(b);
}

void conn_jdbc_buf_reset(conn_jdbc_buf_t *b) {
  b->len = 0;
  b->oom = false;
  if (b->p) b->p[0] = '\0';
}

static bool buf_reserve(conn_jdbc_buf_t *b, size_t extra) {
  if (b->oom) return false;
  if (b->len + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

char *conn_jdbc_buf_space(conn_jdbc_buf_t *b, size_t n) {
  return buf_reserve(b, n) ? b->p + b->len : NULL;
}

void conn_jdbc_buf_add(conn_jdbc_buf_t *b, const char *s, size_t len) {
  if (!buf_reserve(b, len)) return;
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = '\0';
}

void conn_jdbc_buf_add_i64(conn_jdbc_buf_t *b, int64_t v) {
  char tmp[24];
  conn_jdbc_buf_add(b, tmp, conn_fmt_i64(tmp, v));
}

void conn_jdbc_buf_adds(conn_jdbc_buf_t *b, const char *s) { conn_jdbc_buf_add(b, s, strlen(s)); }

void conn_jdbc_buf_addf(conn_jdbc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !buf_reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* ---- identifiers and placeholders --------------------------------------- */

void conn_jdbc_sql_ident(conn_jdbc_buf_t *b, const char *name) {
  conn_jdbc_buf_add(b, "\"", 1);
  for (const char *p = name; *p; p++) {
    const char *q = strchr(p, '"');
    if (!q) {
      conn_jdbc_buf_adds(b, p);
      break;
    }
    conn_jdbc_buf_add(b, p, (size_t)(q - p));
    conn_jdbc_buf_add(b, "\"\"", 2);
    p = q;
  }
  conn_jdbc_buf_add(b, "\"", 1);
}

void conn_jdbc_sql_param(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d, int n) {
  /* By hand: a 500-row INSERT has thousands of placeholders, and printf
   * per placeholder showed in profiles. */
  char tmp[16];
  size_t i = sizeof tmp;
  unsigned u = n > 0 ? (unsigned)n : 0;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  tmp[--i] = d->param_prefix;
  conn_jdbc_buf_add(b, tmp + i, sizeof tmp - i);
}

static void sql_ident_list(conn_jdbc_buf_t *b, const char *const *cols, int n) {
  for (int i = 0; i < n; i++) {
    if (i) conn_jdbc_buf_add(b, ", ", 2);
    conn_jdbc_sql_ident(b, cols[i]);
  }
}

/* keys = ?, joined by sep, parameters from *param on. */
static void sql_assign_list(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                            const char *const *cols, int n, const char *sep, int *param) {
  for (int i = 0; i < n; i++) {
    if (i) conn_jdbc_buf_adds(b, sep);
    conn_jdbc_sql_ident(b, cols[i]);
    conn_jdbc_buf_add(b, " = ", 3);
    conn_jdbc_sql_param(b, d, (*param)++);
  }
}

/* ---- sink statements ---------------------------------------------------- */

void conn_jdbc_sql_insert(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s, int rows, bool upsert) {
  conn_jdbc_buf_adds(b, "INSERT INTO ");
  conn_jdbc_sql_ident(b, s->table);
  conn_jdbc_buf_add(b, " (", 2);
  sql_ident_list(b, s->cols, s->ncols);
  conn_jdbc_buf_adds(b, ") VALUES ");
  int param = 1;
  for (int r = 0; r < rows; r++) {
    conn_jdbc_buf_adds(b, r ? ", (" : "(");
    for (int i = 0; i < s->ncols; i++) {
      if (i) conn_jdbc_buf_add(b, ", ", 2);
      conn_jdbc_sql_param(b, d, param++);
    }
    conn_jdbc_buf_add(b, ")", 1);
  }
  if (!upsert || s->nkeys == 0) return;
  /* SQLite >= 3.24 and PostgreSQL share this form. */
  conn_jdbc_buf_adds(b, " ON CONFLICT (");
  sql_ident_list(b, s->cols, s->nkeys);
  if (s->ncols == s->nkeys) {
    conn_jdbc_buf_adds(b, ") DO NOTHING");
    return;
  }
  conn_jdbc_buf_adds(b, ") DO UPDATE SET ");
  for (int i = s->nkeys; i < s->ncols; i++) {
    if (i > s->nkeys) conn_jdbc_buf_add(b, ", ", 2);
    conn_jdbc_sql_ident(b, s->cols[i]);
    conn_jdbc_buf_adds(b, " = excluded.");
    conn_jdbc_sql_ident(b, s->cols[i]);
  }
}

void conn_jdbc_sql_copy(conn_jdbc_buf_t *b, const conn_jdbc_shape_t *s) {
  conn_jdbc_buf_adds(b, "COPY ");
  conn_jdbc_sql_ident(b, s->table);
  conn_jdbc_buf_add(b, " (", 2);
  sql_ident_list(b, s->cols, s->ncols);
  conn_jdbc_buf_adds(b, ") FROM STDIN");
}

void conn_jdbc_sql_update(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s) {
  int param = 1;
  conn_jdbc_buf_adds(b, "UPDATE ");
  conn_jdbc_sql_ident(b, s->table);
  conn_jdbc_buf_adds(b, " SET ");
  sql_assign_list(b, d, s->cols + s->nkeys, s->ncols - s->nkeys, ", ", &param);
  conn_jdbc_buf_adds(b, " WHERE ");
  sql_assign_list(b, d, s->cols, s->nkeys, " AND ", &param);
}

void conn_jdbc_sql_delete(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s) {
  int param = 1;
  conn_jdbc_buf_adds(b, "DELETE FROM ");
  conn_jdbc_sql_ident(b, s->table);
  conn_jdbc_buf_adds(b, " WHERE ");
  sql_assign_list(b, d, s->cols, s->nkeys, " AND ", &param);
}

void conn_jdbc_sql_create(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s, const conn_jdbc_type_t *types) {
  conn_jdbc_buf_adds(b, "CREATE TABLE IF NOT EXISTS ");
  conn_jdbc_sql_ident(b, s->table);
  conn_jdbc_buf_add(b, " (", 2);
  for (int i = 0; i < s->ncols; i++) {
    if (i) conn_jdbc_buf_add(b, ", ", 2);
    conn_jdbc_sql_ident(b, s->cols[i]);
    conn_jdbc_buf_add(b, " ", 1);
    conn_jdbc_buf_adds(b, d->type_name(types[i]));
    if (i < s->nkeys) conn_jdbc_buf_adds(b, " NOT NULL");
  }
  if (s->nkeys > 0) {
    conn_jdbc_buf_adds(b, ", PRIMARY KEY (");
    sql_ident_list(b, s->cols, s->nkeys);
    conn_jdbc_buf_add(b, ")", 1);
  }
  conn_jdbc_buf_add(b, ")", 1);
}

void conn_jdbc_sql_add_column(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                              const char *table, const char *col, conn_jdbc_type_t type) {
  conn_jdbc_buf_adds(b, "ALTER TABLE ");
  conn_jdbc_sql_ident(b, table);
  conn_jdbc_buf_adds(b, " ADD COLUMN ");
  conn_jdbc_sql_ident(b, col);
  conn_jdbc_buf_add(b, " ", 1);
  conn_jdbc_buf_adds(b, d->type_name(type));
}

/* ---- source queries ------------------------------------------------------ */

static void sql_ts(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d, const char *col) {
  conn_jdbc_buf_t q;
  conn_jdbc_buf_init(&q);
  conn_jdbc_sql_ident(&q, col);
  if (q.oom) {
    b->oom = true;
  } else {
    /* The format is the dialect's constant, with one %s. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    conn_jdbc_buf_addf(b, d->ts_us_format, q.p);
#pragma GCC diagnostic pop
  }
  conn_jdbc_buf_free(&q);
}

void conn_jdbc_sql_select(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d, const char *table,
                          const char *query, conn_jdbc_mode_t mode, const char *inc_col,
                          const char *ts_col, bool limit) {
  bool ts = mode == JDBC_MODE_TIMESTAMP || mode == JDBC_MODE_TIMESTAMP_INCREMENTING;
  int param = 1;
  conn_jdbc_buf_adds(b, "SELECT *");
  if (ts) {
    conn_jdbc_buf_add(b, ", ", 2);
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " AS " CONN_JDBC_TS_COL);
  }
  conn_jdbc_buf_adds(b, " FROM ");
  if (table) {
    conn_jdbc_sql_ident(b, table);
  } else {
    /* A custom query runs as a subquery, so that its own WHERE, joins
     * and ORDER BY stay untouched (Kafka appends to the query instead,
     * which forbids a WHERE in it). */
    conn_jdbc_buf_add(b, "(", 1);
    conn_jdbc_buf_adds(b, query);
    conn_jdbc_buf_adds(b, ") AS \"__runnel_query\"");
  }
  switch (mode) {
  case JDBC_MODE_BULK:
    break;
  case JDBC_MODE_INCREMENTING:
    conn_jdbc_buf_adds(b, " WHERE ");
    conn_jdbc_sql_ident(b, inc_col);
    conn_jdbc_buf_adds(b, " > ");
    conn_jdbc_sql_param(b, d, param++);
    conn_jdbc_buf_adds(b, " ORDER BY ");
    conn_jdbc_sql_ident(b, inc_col);
    conn_jdbc_buf_adds(b, " ASC");
    break;
  case JDBC_MODE_TIMESTAMP:
    /* Kafka's TimestampIncrementingCriteria: rows newer than the offset
     * and older than the database's now minus timestamp.delay.interval.ms,
     * so that a transaction committing late with an older timestamp is
     * not skipped. */
    conn_jdbc_buf_adds(b, " WHERE ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " > ");
    conn_jdbc_sql_param(b, d, param++);
    conn_jdbc_buf_adds(b, " AND ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " < (");
    conn_jdbc_buf_adds(b, d->now_us_sql);
    conn_jdbc_buf_adds(b, ") - ");
    conn_jdbc_sql_param(b, d, param++);
    conn_jdbc_buf_adds(b, " ORDER BY ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " ASC");
    break;
  case JDBC_MODE_TIMESTAMP_INCREMENTING:
    conn_jdbc_buf_adds(b, " WHERE ((");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " = ");
    conn_jdbc_sql_param(b, d, param++);
    conn_jdbc_buf_adds(b, " AND ");
    conn_jdbc_sql_ident(b, inc_col);
    conn_jdbc_buf_adds(b, " > ");
    conn_jdbc_sql_param(b, d, param + 1);
    conn_jdbc_buf_adds(b, ") OR ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " > ");
    conn_jdbc_sql_param(b, d, param++);
    param++;
    conn_jdbc_buf_adds(b, ") AND ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " < (");
    conn_jdbc_buf_adds(b, d->now_us_sql);
    conn_jdbc_buf_adds(b, ") - ");
    conn_jdbc_sql_param(b, d, param++);
    conn_jdbc_buf_adds(b, " ORDER BY ");
    sql_ts(b, d, ts_col);
    conn_jdbc_buf_adds(b, " ASC, ");
    conn_jdbc_sql_ident(b, inc_col);
    conn_jdbc_buf_adds(b, " ASC");
    break;
  }
  if (limit) {
    conn_jdbc_buf_adds(b, " LIMIT ");
    conn_jdbc_sql_param(b, d, param++);
  }
}
