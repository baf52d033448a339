/*
 * conn_dialect_postgres.c: the PostgreSQL dialect (libpq) of the
 * JDBC-style connectors.
 *
 * connection.url is a libpq connection URI (postgresql://user@host:port/db
 * or postgres://..., optionally prefixed with jdbc:, query parameters such
 * as ?sslmode= or ?host=/socket/dir allowed), passed to PQconnectdbParams
 * with expand_dbname; connection.user and connection.password, when set,
 * override the URI's. A connect_timeout of 5 s applies unless the URI sets
 * one.
 *
 * Every value travels as a text parameter of the extended protocol (server
 * infers its type from the column): never spliced into SQL. Statements the
 * sink runs for every batch are prepared once per connection (PQprepare,
 * names r1, r2, ...) and cached by their text.
 *
 * Sessions run with TimeZone=UTC, so timestamps read by the source are
 * rendered the same whatever the server's default. Plain inserts go
 * through COPY .. FROM STDIN (text format), upserts through multi-row
 * INSERT .. ON CONFLICT.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "conn_jdbc_int.h"

#define PG_CACHE 64

/* Type OIDs of pg_type.h (stable across server versions). */
#define PG_BOOLOID 16
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_NUMERICOID 1700

typedef struct {
  char *sql;
  char name[16];
  uint64_t used;
} pg_cached_t;

struct conn_jdbc_db {
  PGconn *conn;
  pg_cached_t cache[PG_CACHE];
  uint64_t tick;
  unsigned next_name;
  conn_jdbc_buf_t copy; /* COPY rows not yet handed to libpq */
};

struct conn_jdbc_rows {
  PGresult *res;
  int row, nrows;
  double d; /* scratch for col_value */
};

static int pg_check_url(const char *url, char *msg, size_t len) {
  if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
    snprintf(msg, len, "must start with postgresql:// (e.g. postgresql://user@host:5432/db)");
    return -1;
  }
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(url, &perr);
  if (!opts) {
    snprintf(msg, len, "not a valid PostgreSQL URI: %s", perr ? perr : "out of memory");
    if (perr) {
      size_t n = strlen(msg);
      while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    }
    PQfreemem(perr);
    return -1;
  }
  /* PQconninfoParse takes any text for a keyword; the connection would
   * then fail the same way at every attempt. Check what a retry can never
   * fix here, so the config is refused instead of retried forever. */
  int rc = 0;
  for (PQconninfoOption *o = opts; rc == 0 && o->keyword; o++) {
    if (!o->val) continue;
    if (strcmp(o->keyword, "port") == 0) {
      /* one port, or one per host: "5432" or "5432,5433" (empty: default) */
      const char *p = o->val;
      while (rc == 0) {
        char *end;
        long port = strtol(p, &end, 10);
        bool empty = end == p && (*p == ',' || *p == '\0'); /* that host's default */
        if (!empty && (end == p || port < 1 || port > 65535 || (*end && *end != ','))) {
          snprintf(msg, len, "port must be a number from 1 to 65535, got \"%s\"", o->val);
          rc = -1;
        }
        if (*end != ',') break;
        p = end + 1;
      }
    } else if (strcmp(o->keyword, "sslmode") == 0) {
      static const char *const modes[] = {"disable", "allow",     "prefer",
                                          "require", "verify-ca", "verify-full"};
      bool ok = false;
      for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) ok |= strcmp(o->val, modes[i]) == 0;
      if (!ok) {
        snprintf(msg, len,
                 "sslmode must be disable, allow, prefer, require, verify-ca or verify-full, "
                 "got \"%s\"", o->val);
        rc = -1;
      }
    } else if (strcmp(o->keyword, "connect_timeout") == 0 || strcmp(o->keyword, "keepalives") == 0) {
      char *end;
      (void)strtol(o->val, &end, 10);
      if (end == o->val || *end) {
        snprintf(msg, len, "%s must be an integer, got \"%s\"", o->keyword, o->val);
        rc = -1;
      }
    }
  }
  PQconninfoFree(opts);
  return rc;
}

/* libpq messages end with a newline; ours are one line. */
static void pg_msg(char *err, size_t errlen, const char *what, const char *m) {
  snprintf(err, errlen, "postgresql: %s%s", what, m ? m : "");
  /* CONTEXT only says "unnamed portal parameter $3 = '...'": noise. */
  char *ctx = strstr(err, "\nCONTEXT:");
  if (ctx) *ctx = '\0';
  size_t n = strlen(err);
  while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
  for (char *p = err; *p; p++)
    if (*p == '\n') *p = ' ';
}

static void pg_notice(void *arg, const char *message) { (void)arg, (void)message; }

static void pg_close(conn_jdbc_db_t *c) {
  if (!c) return;
  for (int i = 0; i < PG_CACHE; i++) free(c->cache[i].sql);
  conn_jdbc_buf_free(&c->copy);
  PQfinish(c->conn);
  free(c);
}

static int pg_connect(const char *url, const char *user, const char *password, bool create,
                      conn_jdbc_db_t **out, char *err, size_t errlen) {
  *out = NULL;
  conn_jdbc_db_t *c = calloc(1, sizeof *c);
  if (!c) return JDBC_E_NOMEM;
  /* Later keywords override earlier ones, including what the URI expands
   * to: the timeout goes first (the URI may set its own), the explicit
   * user and password last. */
  const char *keys[6], *vals[6];
  int n = 0;
  keys[n] = "connect_timeout", vals[n++] = "5";
  keys[n] = "application_name", vals[n++] = "runnel";
  keys[n] = "dbname", vals[n++] = url;
  if (user && *user) keys[n] = "user", vals[n++] = user;
  if (password && *password) keys[n] = "password", vals[n++] = password;
  keys[n] = NULL, vals[n] = NULL;
  c->conn = PQconnectdbParams(keys, vals, 1);
  if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
    pg_msg(err, errlen, "cannot connect: ", c->conn ? PQerrorMessage(c->conn) : "out of memory");
    pg_close(c);
    return JDBC_E_CONN;
  }
  PQsetNoticeProcessor(c->conn, pg_notice, NULL);
  /* The sink (create) commits without waiting for the WAL flush: a
   * server crash may lose its last transactions, but each one carries the
   * sink's offsets with its rows, so they are lost together and consumed
   * again: still exactly once, without an fsync per put. */
  PGresult *res = PQexec(c->conn, create ? "SET TIME ZONE 'UTC'; SET synchronous_commit TO off"
                                         : "SET TIME ZONE 'UTC'");
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (!ok) {
    pg_msg(err, errlen, "", PQerrorMessage(c->conn));
    pg_close(c);
    return JDBC_E_CONN;
  }
  *out = c;
  return JDBC_OK;
}

/* Connection trouble (class 08), shutdown or restart (57P01..57P03),
 * resource shortage (53), serialization failure and deadlock are retried;
 * anything else is about the statement. Except a lost race of two
 * sessions creating one table (two sinks, or two tasks, starting at once:
 * CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL, and the loser
 * gets 42P07 or a unique violation of a catalog index, pg_type's or
 * pg_class's): retried too, when the table exists. */
static int pg_fail(conn_jdbc_db_t *c, PGresult *res, char *err, size_t errlen) {
  pg_msg(err, errlen, "", res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
  if (!res || PQstatus(c->conn) != CONNECTION_OK) return JDBC_E_CONN;
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (!state) return JDBC_E_CONN;
  if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
      strncmp(state, "53", 2) == 0 || strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
    return JDBC_E_CONN;
  const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
  if (strcmp(state, "42P07") == 0 ||
      (strcmp(state, "23505") == 0 && cons && strncmp(cons, "pg_", 3) == 0))
    return JDBC_E_CONN;
  return JDBC_E_DATA;
}

/* Text forms of n parameters: numbers are formatted into scratch (32
 * bytes each), text is passed as is. */
typedef struct {
  const char **values;
  int *lengths;
  char *scratch;
} pg_params_t;

static int pg_params(pg_params_t *pp, const conn_jdbc_val_t *p, int n) {
  memset(pp, 0, sizeof *pp);
  if (n == 0) return JDBC_OK;
  pp->values = malloc((size_t)n * sizeof *pp->values);
  pp->lengths = malloc((size_t)n * sizeof *pp->lengths);
  pp->scratch = malloc((size_t)n * 32);
  if (!pp->values || !pp->lengths || !pp->scratch) return JDBC_E_NOMEM;
  for (int i = 0; i < n; i++) {
    char *s = pp->scratch + (size_t)i * 32;
    pp->lengths[i] = 0;
    switch (p[i].type) {
    case JDBC_INT:
      snprintf(s, 32, "%lld", (long long)p[i].i);
      pp->values[i] = s;
      break;
    case JDBC_BOOL:
      pp->values[i] = p[i].i ? "true" : "false";
      break;
    case JDBC_DOUBLE:
      if (isnan(p[i].d)) pp->values[i] = "NaN";
      else if (isinf(p[i].d)) pp->values[i] = p[i].d > 0 ? "Infinity" : "-Infinity";
      else snprintf(s, 32, "%.17g", p[i].d), pp->values[i] = s;
      break;
    case JDBC_TEXT:
    case JDBC_NUMERIC:
      /* Text parameters are NUL-terminated C strings for libpq: values
       * come from yajl or from our own buffers, which are. */
      pp->values[i] = p[i].s;
      break;
    default:
      pp->values[i] = NULL;
      break;
    }
  }
  return JDBC_OK;
}

static void pg_params_free(pg_params_t *pp) {
  free(pp->values);
  free(pp->lengths);
  free(pp->scratch);
}

/* The name of the prepared statement for sql, preparing it when needed. */
static int pg_prepared(conn_jdbc_db_t *c, const char *sql, int n, const char **name, char *err,
                       size_t errlen) {
  int victim = 0;
  for (int i = 0; i < PG_CACHE; i++) {
    if (c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0) {
      c->cache[i].used = ++c->tick;
      *name = c->cache[i].name;
      return JDBC_OK;
    }
    if (c->cache[i].used < c->cache[victim].used) victim = i;
  }
  pg_cached_t *e = &c->cache[victim];
  if (e->sql) {
    char dealloc[32];
    snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", e->name);
    PGresult *res = PQexec(c->conn, dealloc);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    int rc = ok ? JDBC_OK : pg_fail(c, res, err, errlen);
    PQclear(res);
    free(e->sql);
    memset(e, 0, sizeof *e);
    if (!ok) return rc;
  }
  char fresh[16];
  snprintf(fresh, sizeof fresh, "r%u", ++c->next_name);
  PGresult *res = PQprepare(c->conn, fresh, sql, n, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    int rc = pg_fail(c, res, err, errlen);
    PQclear(res);
    return rc;
  }
  PQclear(res);
  e->sql = strdup(sql);
  if (!e->sql) return JDBC_E_NOMEM;
  memcpy(e->name, fresh, sizeof fresh);
  e->used = ++c->tick;
  *name = e->name;
  return JDBC_OK;
}

static int pg_run(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params, int n,
                  bool cache, PGresult **out, char *err, size_t errlen) {
  *out = NULL;
  if (PQstatus(c->conn) != CONNECTION_OK) {
    pg_msg(err, errlen, "connection lost: ", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  /* libpq takes text parameters as C strings: a NUL inside would cut the
   * value short without a word. PostgreSQL text can not hold one anyway. */
  for (int i = 0; i < n; i++)
    if ((params[i].type == JDBC_TEXT || params[i].type == JDBC_NUMERIC) &&
        memchr(params[i].s, '\0', params[i].len)) {
      snprintf(err, errlen, "postgresql: a text value holds a NUL character (\\u0000), which "
                            "PostgreSQL text can not store");
      return JDBC_E_DATA;
    }
  pg_params_t pp;
  int rc = pg_params(&pp, params, n);
  if (rc != JDBC_OK) {
    pg_params_free(&pp);
    return rc;
  }
  PGresult *res;
  if (cache) {
    const char *name = NULL;
    rc = pg_prepared(c, sql, n, &name, err, errlen);
    if (rc != JDBC_OK) {
      pg_params_free(&pp);
      return rc;
    }
    res = PQexecPrepared(c->conn, name, n, pp.values, NULL, NULL, 0);
  } else {
    res = PQexecParams(c->conn, sql, n, NULL, pp.values, NULL, NULL, 0);
  }
  pg_params_free(&pp);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    rc = pg_fail(c, res, err, errlen);
    PQclear(res);
    return rc;
  }
  *out = res;
  return JDBC_OK;
}

static int pg_exec(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params, int n,
                   bool cache, int64_t *changes, char *err, size_t errlen) {
  PGresult *res;
  int rc = pg_run(c, sql, params, n, cache, &res, err, errlen);
  if (rc != JDBC_OK) return rc;
  if (changes) *changes = strtoll(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  return JDBC_OK;
}

/* The bytes COPY's text format escapes. */
static const bool pg_copy_special[256] = {['\\'] = true, ['\t'] = true, ['\n'] = true,
                                          ['\r'] = true};

/* One value in COPY's text format at o, which has room for the value's
 * bound (pg_copy_bound); returns the end. \N for NULL; backslash, tab,
 * newline and carriage return escaped in text. */
static char *pg_copy_value(char *o, const conn_jdbc_val_t *v) {
  switch (v->type) {
  case JDBC_INT:
    return o + conn_fmt_i64(o, v->i);
  case JDBC_BOOL:
    *o++ = v->i ? 't' : 'f';
    return o;
  case JDBC_DOUBLE:
    if (isnan(v->d)) return memcpy(o, "NaN", 3), o + 3;
    if (isinf(v->d)) {
      const char *w = v->d > 0 ? "Infinity" : "-Infinity";
      size_t n = strlen(w);
      return memcpy(o, w, n), o + n;
    }
    return o + snprintf(o, 40, "%.17g", v->d);
  case JDBC_NUMERIC: /* a JSON number's text: nothing to escape */
    return memcpy(o, v->s, v->len), o + v->len;
  case JDBC_TEXT:
    for (const char *p = v->s, *end = v->s + v->len; p < end; p++) {
      unsigned char ch = (unsigned char)*p;
      if (!pg_copy_special[ch]) {
        *o++ = (char)ch;
        continue;
      }
      *o++ = '\\';
      *o++ = ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r';
    }
    return o;
  default:
    return memcpy(o, "\\N", 2), o + 2;
  }
}

/* The most bytes pg_copy_value writes for v. */
static size_t pg_copy_bound(const conn_jdbc_val_t *v) {
  return v->type == JDBC_TEXT || v->type == JDBC_NUMERIC ? 2 * v->len : 40;
}

/* Sends what copy_row buffered; libpq passes it on to the socket (in
 * blocking mode waiting only while the server is behind). */
static int pg_copy_flush(conn_jdbc_db_t *c, char *err, size_t errlen) {
  if (c->copy.oom) return JDBC_E_NOMEM;
  if (c->copy.len == 0) return JDBC_OK;
  int ok = PQputCopyData(c->conn, c->copy.p, (int)c->copy.len);
  conn_jdbc_buf_reset(&c->copy);
  if (ok != 1) {
    pg_msg(err, errlen, "COPY: ", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  return JDBC_OK;
}

static int pg_copy_begin(conn_jdbc_db_t *c, const char *sql, char *err, size_t errlen) {
  if (PQstatus(c->conn) != CONNECTION_OK) {
    pg_msg(err, errlen, "connection lost: ", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  conn_jdbc_buf_reset(&c->copy);
  PGresult *res = PQexec(c->conn, sql);
  if (PQresultStatus(res) != PGRES_COPY_IN) {
    int rc = pg_fail(c, res, err, errlen);
    PQclear(res);
    return rc;
  }
  PQclear(res);
  return JDBC_OK;
}

/* Rows are formatted into c->copy and sent in pieces of about this size:
 * the server parses and inserts one piece while the sink parses the next
 * records (what psql's \copy gets from reading and sending in one loop).
 * Small, so that the server starts on a put's first rows early and has
 * little left to do when the sink ends the COPY: 64 KiB pieces (about 800
 * rows of the benchmark) left each side waiting for the other at every
 * put's start and end, and 1M rows took 1.60 s instead of 1.20 s. */
#define PG_COPY_PIECE 8192

static int pg_copy_row(conn_jdbc_db_t *c, const conn_jdbc_val_t *vals, int ncols, char *err,
                       size_t errlen) {
  size_t need = 1;
  for (int i = 0; i < ncols; i++) need += 1 + pg_copy_bound(&vals[i]);
  char *start = conn_jdbc_buf_space(&c->copy, need), *o = start;
  if (!o) return JDBC_E_NOMEM;
  for (int i = 0; i < ncols; i++) {
    if (i) *o++ = '\t';
    o = pg_copy_value(o, &vals[i]);
  }
  *o++ = '\n';
  *o = '\0';
  c->copy.len += (size_t)(o - start);
  return c->copy.len >= PG_COPY_PIECE ? pg_copy_flush(c, err, errlen) : JDBC_OK;
}

static int pg_copy_end(conn_jdbc_db_t *c, bool abort, char *err, size_t errlen) {
  int rc = abort ? JDBC_OK : pg_copy_flush(c, err, errlen);
  conn_jdbc_buf_reset(&c->copy);
  if (abort || rc != JDBC_OK) {
    /* The server fails the COPY (and so the transaction) with this. */
    if (PQputCopyEnd(c->conn, "abandoned by the sink") != 1 && rc == JDBC_OK) {
      pg_msg(err, errlen, "COPY: ", PQerrorMessage(c->conn));
      rc = JDBC_E_CONN;
    }
  } else if (PQputCopyEnd(c->conn, NULL) != 1) {
    pg_msg(err, errlen, "COPY: ", PQerrorMessage(c->conn));
    rc = JDBC_E_CONN;
  }
  /* The COPY's own result, then nothing more (drained either way). */
  PGresult *res;
  while ((res = PQgetResult(c->conn)) != NULL) {
    if (!abort && rc == JDBC_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
      rc = pg_fail(c, res, err, errlen);
    PQclear(res);
  }
  return rc;
}

/* count runs of sql (prepared) with n parameters each, then COMMIT, in one
 * round trip (libpq's pipeline mode): a put's offsets and its COMMIT do not
 * each wait for the server. After an error the rest of the pipeline is
 * skipped by the server (the transaction stays open, failed: the caller
 * rolls back). */
static int pg_exec_commit(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params,
                          int n, int count, char *err, size_t errlen) {
  if (PQstatus(c->conn) != CONNECTION_OK) {
    pg_msg(err, errlen, "connection lost: ", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  const char *name = NULL;
  int rc = count > 0 ? pg_prepared(c, sql, n, &name, err, errlen) : JDBC_OK;
  if (rc != JDBC_OK) return rc;
  if (PQenterPipelineMode(c->conn) != 1) {
    pg_msg(err, errlen, "pipeline: ", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  int sent = 0;
  for (int k = 0; rc == JDBC_OK && k < count; k++) {
    pg_params_t pp;
    rc = pg_params(&pp, params + (size_t)k * (size_t)n, n);
    if (rc == JDBC_OK && PQsendQueryPrepared(c->conn, name, n, pp.values, NULL, NULL, 0) != 1) {
      pg_msg(err, errlen, "", PQerrorMessage(c->conn));
      rc = JDBC_E_CONN;
    }
    pg_params_free(&pp);
    if (rc == JDBC_OK) sent++;
  }
  if (rc == JDBC_OK) {
    if (PQsendQueryParams(c->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1) {
      pg_msg(err, errlen, "", PQerrorMessage(c->conn));
      rc = JDBC_E_CONN;
    } else {
      sent++;
    }
  }
  if (PQpipelineSync(c->conn) != 1) {
    /* Nothing to wait for: the connection is closed by the caller. */
    if (rc == JDBC_OK) pg_msg(err, errlen, "", PQerrorMessage(c->conn));
    return JDBC_E_CONN;
  }
  /* Each statement's result then NULL; then the sync point. */
  for (int k = 0; k < sent && PQstatus(c->conn) == CONNECTION_OK; k++) {
    PGresult *res = PQgetResult(c->conn);
    if (!res) break;
    ExecStatusType st = PQresultStatus(res);
    if (rc == JDBC_OK && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      if (st == PGRES_PIPELINE_ABORTED) {
        snprintf(err, errlen, "postgresql: pipeline aborted");
        rc = JDBC_E_DATA;
      } else {
        rc = pg_fail(c, res, err, errlen);
      }
    }
    PQclear(res);
    while ((res = PQgetResult(c->conn)) != NULL) PQclear(res);
  }
  for (;;) {
    if (PQstatus(c->conn) != CONNECTION_OK) {
      if (rc == JDBC_OK) pg_msg(err, errlen, "connection lost: ", PQerrorMessage(c->conn));
      return JDBC_E_CONN;
    }
    PGresult *res = PQgetResult(c->conn);
    if (!res) continue; /* between results */
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    if (st == PGRES_PIPELINE_SYNC) break;
    if (st == PGRES_FATAL_ERROR) {
      if (rc == JDBC_OK) pg_msg(err, errlen, "", PQerrorMessage(c->conn));
      if (rc == JDBC_OK) rc = JDBC_E_CONN;
      if (PQstatus(c->conn) != CONNECTION_OK) return rc;
    }
  }
  if (PQexitPipelineMode(c->conn) != 1 && rc == JDBC_OK) {
    pg_msg(err, errlen, "pipeline: ", PQerrorMessage(c->conn));
    rc = JDBC_E_CONN;
  }
  return rc;
}

static int pg_query(conn_jdbc_db_t *c, const char *sql, const conn_jdbc_val_t *params, int n,
                    conn_jdbc_rows_t **out, char *err, size_t errlen) {
  *out = NULL;
  PGresult *res;
  int rc = pg_run(c, sql, params, n, false, &res, err, errlen);
  if (rc != JDBC_OK) return rc;
  conn_jdbc_rows_t *r = calloc(1, sizeof *r);
  if (!r) {
    PQclear(res);
    return JDBC_E_NOMEM;
  }
  r->res = res;
  r->row = -1;
  r->nrows = PQntuples(res);
  *out = r;
  return JDBC_OK;
}

static int pg_next(conn_jdbc_rows_t *r, char *err, size_t errlen) {
  (void)err, (void)errlen;
  if (r->row + 1 >= r->nrows) return 0;
  r->row++;
  return 1;
}

static int pg_ncols(conn_jdbc_rows_t *r) { return PQnfields(r->res); }

static const char *pg_col_name(conn_jdbc_rows_t *r, int i) { return PQfname(r->res, i); }

static void pg_col_value(conn_jdbc_rows_t *r, int i, conn_jdbc_val_t *v) {
  memset(v, 0, sizeof *v);
  if (PQgetisnull(r->res, r->row, i)) {
    v->type = JDBC_NULL;
    return;
  }
  const char *s = PQgetvalue(r->res, r->row, i);
  v->s = s;
  v->len = (size_t)PQgetlength(r->res, r->row, i);
  v->type = JDBC_TEXT;
  switch (PQftype(r->res, i)) {
  case PG_BOOLOID:
    v->type = JDBC_BOOL;
    v->i = s[0] == 't';
    break;
  case PG_INT2OID:
  case PG_INT4OID:
  case PG_INT8OID:
  case PG_OIDOID:
    v->type = JDBC_INT;
    v->i = strtoll(s, NULL, 10);
    break;
  case PG_FLOAT4OID:
  case PG_FLOAT8OID:
    /* The server's own shortest text (extra_float_digits default) is a
     * valid JSON number; NaN and infinities are not: they stay text. */
    v->d = strtod(s, NULL);
    if (isfinite(v->d)) v->type = JDBC_NUMERIC;
    break;
  case PG_NUMERICOID:
    if (strcmp(s, "NaN") != 0 && strstr(s, "Infinity") == NULL) v->type = JDBC_NUMERIC;
    break;
  default:
    break;
  }
}

static void pg_rows_close(conn_jdbc_rows_t *r) {
  if (!r) return;
  PQclear(r->res);
  free(r);
}

static const char *pg_type_name(conn_jdbc_type_t t) {
  switch (t) {
  case JDBC_INT:
    return "BIGINT";
  case JDBC_DOUBLE:
    return "DOUBLE PRECISION";
  case JDBC_BOOL:
    return "BOOLEAN";
  case JDBC_NUMERIC:
    return "NUMERIC";
  default:
    return "TEXT";
  }
}

const conn_jdbc_dialect_t conn_dialect_postgres = {
    .name = "postgresql",
    .url_example = "postgresql://user@host:5432/db",
    .param_prefix = '$',
    .ident_nocase = false,
    .upsert_same_key_twice = false,
    .max_params = 65535,
    .check_url = pg_check_url,
    .connect = pg_connect,
    .close = pg_close,
    .exec = pg_exec,
    .query = pg_query,
    .next = pg_next,
    .ncols = pg_ncols,
    .col_name = pg_col_name,
    .col_value = pg_col_value,
    .rows_close = pg_rows_close,
    .copy_begin = pg_copy_begin,
    .copy_row = pg_copy_row,
    .copy_end = pg_copy_end,
    .exec_commit = pg_exec_commit,
    .type_name = pg_type_name,
    .columns_sql = "SELECT column_name FROM information_schema.columns "
                   "WHERE table_schema = current_schema() AND table_name = $1 "
                   "ORDER BY ordinal_position",
    /* Timestamp modes need a timestamp, timestamptz or date column.
     * extract() is exact (numeric) since PostgreSQL 14. */
    .ts_us_format = "(extract(epoch from %1$s) * 1000000)::bigint",
    .now_us_sql = "(extract(epoch from now()) * 1000000)::bigint",
};
