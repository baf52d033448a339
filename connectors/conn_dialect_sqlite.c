/*
 * conn_dialect_sqlite.c: the SQLite dialect of the JDBC-style connectors.
 *
 * connection.url: sqlite:///absolute/path.db, sqlite:/absolute/path.db or
 * sqlite:relative/path.db (relative to the worker's working directory),
 * each optionally prefixed with jdbc: as Kafka's JDBC configs write it.
 *
 * Statements the sink runs for every batch are prepared once and kept in a
 * small cache keyed by their text (SQLITE_PREPARE_PERSISTENT), so a batch
 * costs a bind and a step per row, not a parse.
 *
 * The sink opens the database in WAL mode with synchronous=NORMAL: a power
 * loss may roll back the last transactions, but each one carries the sink's
 * consumed offsets with its rows, so the two roll back together and the
 * records are consumed again: still exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "conn_jdbc_int.h"

#define SQLITE_CACHE 32

typedef struct {
  char *sql;
  sqlite3_stmt *st;
  uint64_t used;
} sqlite_cached_t;

struct conn_jdbc_db {
  sqlite3 *db;
  char *path;
  sqlite_cached_t cache[SQLITE_CACHE];
  uint64_t tick;
};

struct conn_jdbc_rows {
  sqlite3_stmt *st;
  sqlite3 *db;
};

/* Busy, I/O and full-disk errors are worth retrying; everything else is
 * about the statement or its data. */
static int sqlite_code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_PROTOCOL:
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return JDBC_E_CONN;
  case SQLITE_NOMEM:
    return JDBC_E_NOMEM;
  default:
    return JDBC_E_DATA;
  }
}

static int sqlite_fail(conn_jdbc_db_t *c, int rc, char *err, size_t errlen) {
  snprintf(err, errlen, "sqlite %s: %s", c->path, sqlite3_errmsg(c->db));
  return sqlite_code(rc);
}

static int sqlite_check_url(const char *url, char *msg, size_t len) {
  char *path = NULL;
  if (conn_jdbc_sqlite_path(url, &path, msg, len) < 0) return -1;
  free(path);
  return 0;
}

static void sqlite_close(conn_jdbc_db_t *c) {
  if (!c) return;
  for (int i = 0; i < SQLITE_CACHE; i++) {
    sqlite3_finalize(c->cache[i].st);
    free(c->cache[i].sql);
  }
  sqlite3_close_v2(c->db);
  free(c->path);
  free(c);
}

static int sqlite_connect(const char *url, const char *user, const char *password, bool create,
                          conn_jdbc_db_t **out, char *err, size_t errlen) {
  *out = NULL;
  conn_jdbc_db_t *c = calloc(1, sizeof *c);
  if (!c) return JDBC_E_NOMEM;
  if (conn_jdbc_sqlite_path(url, &c->path, err, errlen) < 0) {
    free(c);
    return JDBC_E_CONN;
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(c->path, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "sqlite %s: cannot open: %s", c->path,
             c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    sqlite_close(c);
    return JDBC_E_CONN;
  }
  /* Waits for a writer elsewhere (the sqlite3 shell, another task) for a
   * second, then reports busy: the framework retries with backoff, which
   * keeps the task responsive to stop requests. */
  sqlite3_busy_timeout(c->db, 1000);
  if (create) {
    char *emsg = NULL;
    rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=16384", NULL, NULL,
                      &emsg);
    if (rc != SQLITE_OK) {
      snprintf(err, errlen, "sqlite %s: %s", c->path, emsg ? emsg : sqlite3_errstr(rc));
      sqlite3_free(emsg);
      sqlite_close(c);
      return JDBC_E_CONN;
    }
  }
  *out = c;
  return JDBC_OK;
}

static int sqlite_bind(conn_jdbc_db_t *c, sqlite3_stmt *st, const conn_jdbc_val_t *p, int n,
                       char *err, size_t errlen) {
  for (int i = 0; i < n; i++) {
    int rc;
    switch (p[i].type) {
    case JDBC_INT:
    case JDBC_BOOL:
      rc = sqlite3_bind_int64(st, i + 1, p[i].i);
      break;
    case JDBC_DOUBLE:
      rc = sqlite3_bind_double(st, i + 1, p[i].d);
      break;
    case JDBC_TEXT:
    case JDBC_NUMERIC:
      rc = sqlite3_bind_text64(st, i + 1, p[i].s, p[i].len, SQLITE_STATIC, SQLITE_UTF8);
      break;
    default:
      rc = sqlite3_bind_null(st, i + 1);
      break;
    }
    if (rc != SQLITE_OK) return sqlite_fail(c, rc, err, errlen);
  }
  return JDBC_OK;
}

/* The cached statement for sql, preparing (and evicting the least recently
 * used) when needed. */
static int sqlite_cached(conn_jdbc_db_t *c, const char *sql, sqlite3_stmt **out, char *err,
                         size_t errlen) {
  int victim = 0;
  for (int i = 0; i < SQLITE_CACHE; i++) {
    if (c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0) {
      c->cache[i].used = ++c->tick;
      *out = c->cache[i].st;
      return JDBC_OK;
    }
    if (c->cache[i].used < c->cache[victim].used) victim = i;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK) return sqlite_fail(c, rc, err, errlen);
  char *copy = strdup(sql);
  if (!copy) {
    sqlite3_finalize(st);
    return JDBC_E_NOMEM;
  }
  sqlite3_finalize(c->cache[victim].st);
  free(c->cache[victim].sql);
  c->cache[victim] = (sqlite_cached_t){copy, st, ++c->tick};
  *out = st;
  return JDBC_OK;
}

static int sqlite_exec(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params, int n,
                       bool cache, int64_t *changes, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (cache) {
    rc = sqlite_cached(c, sql, &st, err, errlen);
    if (rc != JDBC_OK) return rc;
  } else {
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return sqlite_fail(c, rc, err, errlen);
  }
  int ret = sqlite_bind(c, st, params, n, err, errlen);
  if (ret == JDBC_OK) {
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) ret = sqlite_fail(c, rc, err, errlen);
    else if (changes) *changes = sqlite3_changes64(c->db);
  }
  if (cache) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
  return ret;
}

static int sqlite_query(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params, int n,
                        conn_jdbc_rows_t **out, char *err, size_t errlen) {
  *out = NULL;
  conn_jdbc_rows_t *r = calloc(1, sizeof *r);
  if (!r) return JDBC_E_NOMEM;
  r->db = c->db;
  int rc = sqlite3_prepare_v2(c->db, sql, -1, &r->st, NULL);
  if (rc != SQLITE_OK) {
    free(r);
    return sqlite_fail(c, rc, err, errlen);
  }
  rc = sqlite_bind(c, r->st, params, n, err, errlen);
  if (rc != JDBC_OK) {
    sqlite3_finalize(r->st);
    free(r);
    return rc;
  }
  *out = r;
  return JDBC_OK;
}

static int sqlite_next(conn_jdbc_rows_t *r, char *err, size_t errlen) {
  int rc = sqlite3_step(r->st);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(r->db));
  return sqlite_code(rc);
}

static int sqlite_ncols(conn_jdbc_rows_t *r) { return sqlite3_column_count(r->st); }

static const char *sqlite_col_name(conn_jdbc_rows_t *r, int i) {
  return sqlite3_column_name(r->st, i);
}

/* Booleans have no storage class in SQLite: a column declared BOOLEAN (as
 * auto.create makes them) reads back as true/false. */
static bool sqlite_decl_bool(sqlite3_stmt *st, int i) {
  const char *t = sqlite3_column_decltype(st, i);
  return t && strcasestr(t, "BOOL") != NULL;
}

static void sqlite_col_value(conn_jdbc_rows_t *r, int i, conn_jdbc_val_t *v) {
  memset(v, 0, sizeof *v);
  switch (sqlite3_column_type(r->st, i)) {
  case SQLITE_INTEGER:
    v->i = sqlite3_column_int64(r->st, i);
    v->type = sqlite_decl_bool(r->st, i) ? JDBC_BOOL : JDBC_INT;
    break;
  case SQLITE_FLOAT:
    v->type = JDBC_DOUBLE;
    v->d = sqlite3_column_double(r->st, i);
    break;
  case SQLITE_TEXT:
  case SQLITE_BLOB: /* kept as its bytes; JSON output escapes them */
    v->type = JDBC_TEXT;
    v->s = (const char *)sqlite3_column_text(r->st, i);
    v->len = (size_t)sqlite3_column_bytes(r->st, i);
    if (!v->s) v->type = JDBC_NULL;
    break;
  default:
    v->type = JDBC_NULL;
    break;
  }
}

static void sqlite_rows_close(conn_jdbc_rows_t *r) {
  if (!r) return;
  sqlite3_finalize(r->st);
  free(r);
}

static const char *sqlite_type_name(conn_jdbc_type_t t) {
  switch (t) {
  case JDBC_INT:
    return "INTEGER";
  case JDBC_DOUBLE:
    return "REAL";
  case JDBC_BOOL:
    return "BOOLEAN";
  case JDBC_NUMERIC:
    return "NUMERIC";
  default:
    return "TEXT";
  }
}

/* Timestamps in SQLite are either numbers (milliseconds since the epoch)
 * or ISO-8601 text ("2026-11-21 10:00:00.123", what datetime() and
 * CURRENT_TIMESTAMP write; julianday parses it, to the millisecond). */
#define SQLITE_TS_US                                                                     \
  "(CASE WHEN typeof(%1$s) IN ('integer', 'real') THEN CAST(%1$s AS INTEGER) * 1000 "     \
  "ELSE CAST(round((julianday(%1$s) - 2440587.5) * 86400000.0) AS INTEGER) * 1000 END)"

const conn_jdbc_dialect_t conn_dialect_sqlite = {
    .name = "sqlite",
    .url_example = "sqlite:///path/to/file.db",
    .param_prefix = '?',
    .ident_nocase = true,
    .upsert_same_key_twice = true,
    .max_params = 32766,
    .check_url = sqlite_check_url,
    .connect = sqlite_connect,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .query = sqlite_query,
    .next = sqlite_next,
    .ncols = sqlite_ncols,
    .col_name = sqlite_col_name,
    .col_value = sqlite_col_value,
    .rows_close = sqlite_rows_close,
    .type_name = sqlite_type_name,
    .columns_sql = "SELECT name FROM pragma_table_info(?1)",
    .ts_us_format = SQLITE_TS_US,
    .now_us_sql = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000",
};
