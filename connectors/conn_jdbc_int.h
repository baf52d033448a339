/*
 * conn_jdbc_int.h: internals shared by the SQLite and PostgreSQL
 * connectors (sqlite-source, sqlite-sink, postgres-source, postgres-sink).
 *
 * One source (conn_jdbc_source.c) and one sink (conn_jdbc_sink.c) run over
 * a dialect (conn_dialect_sqlite.c, conn_dialect_postgres.c): a small table
 * of callbacks that connects, executes parameterised statements, reads rows
 * and names its SQL types. SQL text is built in one place
 * (conn_jdbc_sql.c), from quoted identifiers and placeholders only: a value
 * is never spliced into SQL, it is always bound as a parameter.
 *
 * Names follow Kafka's Confluent JDBC connector (connection.url, mode,
 * insert.mode, pk.mode, ...); docs/connectors.md says where runnel
 * differs.
 *
 * Threads: a conn_jdbc_db_t belongs to one task thread.
 */
#ifndef RUNNEL_CONN_JDBC_INT_H
#define RUNNEL_CONN_JDBC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_common.h>

#include "conn_int.h"
#include "connector.h"

/* ---- results of database calls -------------------------------------------- */

enum {
  JDBC_OK = 0,
  JDBC_BAD_RECORD = 1, /* a record that can not become a row (reported) */
  JDBC_E_DATA = -1, /* the database refused this statement (constraint, type,
                       missing table): the connection is still good */
  JDBC_E_CONN = -2, /* connection lost, database busy or unreachable: close,
                       reconnect later, retry the whole batch */
  JDBC_E_NOMEM = -3,
  JDBC_E_REFUSED = -4, /* the framework does not tolerate a reported record:
                          the task fails */
};

/* ---- values ----------------------------------------------------------------- */

typedef enum {
  JDBC_NULL,
  JDBC_INT,
  JDBC_DOUBLE,
  JDBC_TEXT,   /* UTF-8 text (also nested JSON, stored as its JSON text) */
  JDBC_BOOL,
  JDBC_NUMERIC /* an exact decimal kept as its text (PostgreSQL numeric); in a
                  sink always a JSON number's text, which the COPY writer
                  relies on (no tab, newline or backslash to escape) */
} conn_jdbc_type_t;

/* A value bound to a placeholder or read from a row. s is borrowed (not
 * NUL-terminated necessarily; len says how long). */
typedef struct {
  conn_jdbc_type_t type;
  int64_t i;   /* JDBC_INT, JDBC_BOOL (0/1) */
  double d;    /* JDBC_DOUBLE */
  const char *s;
  size_t len;  /* JDBC_TEXT, JDBC_NUMERIC */
} conn_jdbc_val_t;

/* ---- growable text buffer (SQL and JSON building) ----------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
  bool oom; /* an append failed: the text is incomplete */
} conn_jdbc_buf_t;

void conn_jdbc_buf_init(conn_jdbc_buf_t *b);
void conn_jdbc_buf_free(conn_jdbc_buf_t *b);
void conn_jdbc_buf_reset(conn_jdbc_buf_t *b);
void conn_jdbc_buf_add(conn_jdbc_buf_t *b, const char *s, size_t len);
/* Room for n more bytes (and a NUL) at the end: the caller writes there,
 * then adds what it wrote to b->len. NULL (and b->oom) when out of memory. */
char *conn_jdbc_buf_space(conn_jdbc_buf_t *b, size_t n);
void conn_jdbc_buf_adds(conn_jdbc_buf_t *b, const char *s);
/* The decimal text of v (what printf("%lld") writes). */
void conn_jdbc_buf_add_i64(conn_jdbc_buf_t *b, int64_t v);
void conn_jdbc_buf_addf(conn_jdbc_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- dialects ------------------------------------------------------------------- */

typedef struct conn_jdbc_db conn_jdbc_db_t;     /* a connection (dialect-owned) */
typedef struct conn_jdbc_rows conn_jdbc_rows_t; /* an open result (dialect-owned) */

typedef struct conn_jdbc_dialect {
  const char *name;        /* "sqlite", "postgresql" */
  const char *url_example; /* for messages */
  /* Placeholders are numbered: '?' for ?1, ?2 (SQLite), '$' for $1, $2
   * (PostgreSQL), so a parameter may appear twice in a statement. */
  char param_prefix;
  /* Identifiers compare case-insensitively even when quoted (SQLite). */
  bool ident_nocase;
  /* One multi-row INSERT .. ON CONFLICT DO UPDATE may touch a key twice
   * (SQLite yes; PostgreSQL refuses: "cannot affect row a second time"). */
  bool upsert_same_key_twice;
  int max_params; /* bound parameters per statement */

  /* Checks a connection.url of this dialect (jdbc: prefix already
   * accepted). Returns 0, or -1 with msg. */
  int (*check_url)(const char *url, char *msg, size_t len);
  /* Connects: *out gets a new connection. create: a sink (SQLite creates
   * the file). Returns JDBC_OK or JDBC_E_CONN with err. */
  int (*connect)(const char *url, const char *user, const char *password, bool create,
                 conn_jdbc_db_t **out, char *err, size_t errlen);
  void (*close)(conn_jdbc_db_t *db);
  /* Executes sql with params (prepared once and cached by its text when
   * cache is true). Returns JDBC_OK, JDBC_E_DATA or JDBC_E_CONN with err;
   * *changes (may be NULL) gets the number of rows changed. */
  int (*exec)(conn_jdbc_db_t *db, const char *sql, const conn_jdbc_val_t *params, int n,
              bool cache, int64_t *changes, char *err, size_t errlen);
  /* Runs a query; rows are read with next/col_* and released with
   * rows_close. */
  int (*query)(conn_jdbc_db_t *db, const char *sql, const conn_jdbc_val_t *params, int n,
               conn_jdbc_rows_t **out, char *err, size_t errlen);
  /* 1: a row is current, 0: no more rows, <0: error (JDBC_E_*). */
  int (*next)(conn_jdbc_rows_t *rows, char *err, size_t errlen);
  int (*ncols)(conn_jdbc_rows_t *rows);
  const char *(*col_name)(conn_jdbc_rows_t *rows, int i);
  /* The value of column i of the current row (borrowed until next). */
  void (*col_value)(conn_jdbc_rows_t *rows, int i, conn_jdbc_val_t *v);
  void (*rows_close)(conn_jdbc_rows_t *rows);

  /* Bulk insert through sql, a COPY .. FROM STDIN (conn_jdbc_sql_copy,
   * possibly after other statements without parameters: "BEGIN; COPY ..."),
   * streamed: copy_begin starts it; copy_row adds one row of ncols values
   * (buffered and handed to the server in large pieces as they fill, so
   * that the server inserts while the caller prepares the next rows);
   * copy_end sends the rest and returns the COPY's result (abort: the COPY
   * is cancelled, which fails the transaction; the result is then
   * JDBC_OK unless the connection is lost). No other call on the
   * connection between copy_begin and copy_end. NULL when the dialect has
   * no COPY. Same results as exec. */
  int (*copy_begin)(conn_jdbc_db_t *db, const char *sql, char *err, size_t errlen);
  int (*copy_row)(conn_jdbc_db_t *db, const conn_jdbc_val_t *vals, int ncols, char *err,
                  size_t errlen);
  int (*copy_end)(conn_jdbc_db_t *db, bool abort, char *err, size_t errlen);

  /* Runs sql (cached like exec) count times, with n of params each
   * (row-major), then COMMIT, without waiting for the server between them.
   * NULL: the caller runs them one by one. Same results as exec. */
  int (*exec_commit)(conn_jdbc_db_t *db, const char *sql, const conn_jdbc_val_t *params, int n,
                     int count, char *err, size_t errlen);

  /* The column type auto.create uses for a JSON value of type t; pk: the
   * column is part of the primary key (TEXT keys are fine in both). */
  const char *(*type_name)(conn_jdbc_type_t t);
  /* SQL returning one row per column of a table (column name first),
   * taking the table name as its only parameter; no rows: no table. */
  const char *columns_sql;
  /* printf format with one %s (a quoted column) giving its value as
   * microseconds since the epoch (BIGINT), for timestamp modes. */
  const char *ts_us_format;
  /* The database's current time as microseconds since the epoch. */
  const char *now_us_sql;
} conn_jdbc_dialect_t;

extern const conn_jdbc_dialect_t conn_dialect_sqlite;
extern const conn_jdbc_dialect_t conn_dialect_postgres;

/* ---- connection.url and the shared config keys ------------------------------- */

/* The URL without an optional "jdbc:" prefix (Kafka JDBC configs carry
 * over). Borrowed from url. */
const char *conn_jdbc_url_strip(const char *url);
/* Parses a SQLite URL into a malloc'd file path: sqlite:///abs/path,
 * sqlite:/abs/path, sqlite:relative/path (relative to the worker's working
 * directory). Returns 0, or -1 with msg. */
int conn_jdbc_sqlite_path(const char *url, char **path, char *msg, size_t len);

/* conn_def_t validators of connection.url for each dialect. */
int conn_jdbc_validate_sqlite_url(const char *value, char *msg, size_t len);
int conn_jdbc_validate_postgres_url(const char *value, char *msg, size_t len);

/* The connection keys every plugin of a dialect starts its table with. */
#define CONN_JDBC_CONNECTION_DEFS(validator, example)                                          {.name = "connection.url", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH,              .doc = "The database: " example ". A jdbc: prefix is accepted (Kafka JDBC configs).",      .group = "Database", .validate = validator},                                                {.name = "connection.user", .type = CONN_T_STRING, .optional = true,                        .importance = CONN_IMP_HIGH, .doc = "Database user (overrides the URL's).",                .group = "Database"},                                                                       {.name = "connection.password", .type = CONN_T_PASSWORD, .optional = true,                  .importance = CONN_IMP_HIGH, .doc = "Database password (overrides the URL's).",            .group = "Database"}

/* Opens db when it is NULL: JDBC_OK or JDBC_E_CONN with err. */
int conn_jdbc_connect(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                      const conn_config_t *cfg, bool create, conn_jdbc_db_t **db, char *err,
                      size_t errlen);

/* JSON text of a one-key object {"key": "value"} (malloc'd; NULL on
 * ENOMEM). */
char *conn_jdbc_json_obj1(const char *key, const char *value);

/* ---- SQL text (conn_jdbc_sql.c) ------------------------------------------------- */

/* Appends name as a quoted identifier: "a""b" (double quotes doubled; a
 * NUL can not occur in a C string). */
void conn_jdbc_sql_ident(conn_jdbc_buf_t *b, const char *name);
/* Appends placeholder number n (1-based). */
void conn_jdbc_sql_param(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d, int n);

/* Describes one statement shape of the sink. */
typedef struct {
  const char *table;
  const char *const *cols; /* every column written, key columns first */
  int ncols;
  int nkeys;               /* the first nkeys of cols are the primary key */
} conn_jdbc_shape_t;

/* INSERT INTO t (cols) VALUES (...) x rows [ON CONFLICT (keys) DO UPDATE
 * SET c = excluded.c ... | DO NOTHING when every column is a key]. */
void conn_jdbc_sql_insert(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s, int rows, bool upsert);
/* COPY t (cols) FROM STDIN (PostgreSQL's bulk load; data travels apart
 * from the statement, in COPY's text format). */
void conn_jdbc_sql_copy(conn_jdbc_buf_t *b, const conn_jdbc_shape_t *s);
/* UPDATE t SET non-keys = ? WHERE keys = ?: parameters are the non-key
 * values first, then the keys. */
void conn_jdbc_sql_update(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s);
/* DELETE FROM t WHERE keys = ? (cols[0..nkeys)). */
void conn_jdbc_sql_delete(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s);
/* CREATE TABLE t (col type, ..., PRIMARY KEY (keys)); types[i] for cols[i]. */
void conn_jdbc_sql_create(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                          const conn_jdbc_shape_t *s, const conn_jdbc_type_t *types);
/* ALTER TABLE t ADD COLUMN col type. */
void conn_jdbc_sql_add_column(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d,
                              const char *table, const char *col, conn_jdbc_type_t type);

/* Source queries. */
typedef enum {
  JDBC_MODE_BULK,
  JDBC_MODE_INCREMENTING,
  JDBC_MODE_TIMESTAMP,
  JDBC_MODE_TIMESTAMP_INCREMENTING,
} conn_jdbc_mode_t;

/* The column the source adds in timestamp modes (value in microseconds)
 * and leaves out of the record. */
#define CONN_JDBC_TS_COL "__runnel_ts_us"

/* SELECT for one poll of a table (table != NULL) or of a custom query
 * (wrapped as a subquery). Parameters, in order: incrementing: last id;
 * timestamp: last ts (us), delay (us); timestamp+incrementing: last ts,
 * last ts, last id, delay; limit (incrementing modes only, as the last
 * parameter). */
void conn_jdbc_sql_select(conn_jdbc_buf_t *b, const conn_jdbc_dialect_t *d, const char *table,
                          const char *query, conn_jdbc_mode_t mode, const char *inc_col,
                          const char *ts_col, bool limit);

/* ---- the sink's rows (conn_jdbc_row.c) ------------------------------------------- */

typedef enum { JDBC_PK_NONE, JDBC_PK_KAFKA, JDBC_PK_RECORD_KEY, JDBC_PK_RECORD_VALUE } conn_jdbc_pk_mode_t;

/* How the sink maps records to rows (Kafka JDBC's pk.mode, pk.fields,
 * delete.enabled). */
typedef struct {
  conn_jdbc_pk_mode_t mode;
  char **fields;     /* pk.fields, NULL-terminated (borrowed) */
  bool delete_enabled;
} conn_jdbc_pk_t;

typedef enum { JDBC_ROW_WRITE, JDBC_ROW_DELETE, JDBC_ROW_SKIP } conn_jdbc_row_op_t;

/* The top-level fields of a JSON object (conn_jdbc_fields.c), all in a
 * pool: names and text values point into arena. */
typedef struct {
  const char **names;
  conn_jdbc_val_t *vals;
  size_t n, cap;
  char *arena;
} conn_jdbc_fields_t;

/* Parses len bytes of JSON; *f is overwritten, its memory comes from pool.
 * Returns 0, JDBC_BAD_RECORD with reason (not JSON, not an object) or
 * JDBC_E_NOMEM. */
int conn_jdbc_fields_parse(conn_pool_t *pool, const char *text, size_t len,
                           conn_jdbc_fields_t *f, char *reason, size_t rlen);

/* One record as a row: the column names and values it writes, key
 * columns first. Names and text values point into the row's own storage
 * (parsed JSON trees, generated JSON text). */
typedef struct {
  conn_jdbc_row_op_t op;
  const conn_record_t *rec; /* borrowed */
  void *table;              /* the sink's table state */
  conn_pool_t *pool;   /* where cols, vals and fields live */
  const char **cols;
  conn_jdbc_val_t *vals;
  int ncols, nkeys, cap;
  uint64_t key_hash;        /* of the key values */
  void *key_tree;           /* yajl_val of the key (pk.mode=record_key) */
  conn_jdbc_fields_t fields; /* of the value */
  char **owned;             /* malloc'd strings the values point into */
  int nowned;
  bool lane;                /* sent by the fast lane, not parsed (yet) */
} conn_jdbc_row_t;

/* Parses rec into row (zeroed by the caller), its arrays and the value's
 * fields in pool (released by the pool's reset; conn_jdbc_row_free frees
 * the rest). Returns 0; JDBC_BAD_RECORD when the
 * record can not become a row (reason says why: not a JSON object, missing
 * key field, tombstone without delete.enabled); JDBC_E_NOMEM. */
int conn_jdbc_row_parse(conn_pool_t *pool, const conn_jdbc_pk_t *pk,
                        const conn_record_t *rec, conn_jdbc_row_t *row, char *reason,
                        size_t len);
void conn_jdbc_row_free(conn_jdbc_row_t *row);
/* True when the key values of a and b are equal. */
bool conn_jdbc_row_same_key(const conn_jdbc_row_t *a, const conn_jdbc_row_t *b);

/* ---- the sink's offsets table ------------------------------------------------------ */

/* ---- the fast lane of a streamed COPY (conn_jdbc_lane.c) ---- */

typedef struct conn_jdbc_lane conn_jdbc_lane_t;

/* Reads text (a record's value) as the n columns names, in that order:
 * 1 and vals[0..n) set (strings valid until the next call) when it is a
 * JSON object of exactly those fields, each a scalar; 0 when it is
 * anything else (the general path decides); JDBC_E_NOMEM. *lane is
 * created on first use. */
int conn_jdbc_lane_row(conn_jdbc_lane_t **lane, const char *const *names, int n,
                       const char *text, size_t len, conn_jdbc_val_t *vals);
void conn_jdbc_lane_free(conn_jdbc_lane_t *lane);

#define CONN_JDBC_OFFSETS_TABLE "__runnel_sink_offsets"
/* Its columns (the first three the key) and their types. */
extern const char *const conn_jdbc_offsets_cols[4];
extern const conn_jdbc_type_t conn_jdbc_offsets_types[4];

/* KIP-875 on that table (conn_jdbc_sink_offsets.c): the sinks' alter_offsets
 * and read_offsets (see conn_plugin_t), for dialect d and its defs. */
int conn_jdbc_sink_alter_offsets(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                                 const conn_config_t *cfg, const char *partition_json,
                                 const char *offset_json, char *msg, size_t len);
int conn_jdbc_sink_read_offsets(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                                const conn_config_t *cfg, char **json, char *msg, size_t len);

#endif
