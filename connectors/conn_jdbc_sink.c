/*
 * conn_jdbc_sink.c: the sqlite-sink and postgres-sink connectors, Kafka's
 * JDBC Sink connector over a dialect.
 *
 * Each put is one transaction:
 *
 *   BEGIN
 *     rows, in record order, grouped: consecutive rows of one table, one
 *     operation and the same columns go into one multi-row INSERT (upsert:
 *     INSERT .. ON CONFLICT (pk) DO UPDATE) of up to batch.size rows, a
 *     prepared statement reused for every group of that shape; updates and
 *     deletes go one row per statement
 *     the consumed offsets: one row per (connector, topic, partition) of
 *     __runnel_sink_offsets, the highest offset of the put
 *   COMMIT
 *
 * so the rows and the position they came from commit together: after a
 * crash, start reads the table and seeks (conn_ctx_seek) every partition
 * to the offset after it. Nothing is written twice, nothing is skipped:
 * exactly once, in SQLite and in PostgreSQL alike.
 *
 * Failures:
 *   - connection lost, database busy: ROLLBACK, close, CONN_E_RETRY; the
 *     framework calls put again with the same records, which reconnects;
 *   - the database refuses a statement (a constraint, a type): ROLLBACK,
 *     then the put again one row at a time, each under a SAVEPOINT, and
 *     every row refused goes to conn_ctx_report with the database's
 *     message; the rest commits;
 *   - a record that can not be a row (not a JSON object, no key, a field
 *     without a column and auto.evolve off) goes to conn_ctx_report before
 *     the transaction. When the framework does not tolerate it, nothing of
 *     the put is written and the task fails.
 * A record reported and then retried after a lost connection is reported
 * again (the dead letter queue is at least once).
 *
 * Tables: the first record of a table that does not exist creates it when
 * auto.create (columns typed from its JSON values, the key as PRIMARY
 * KEY); a later field without a column adds one when auto.evolve. Both
 * run before the put's transaction, in their own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn_jdbc_int.h"

/* Rows per multi-row statement at most, whatever batch.size says: beyond
 * this the statement text grows without making writes faster. */
#define SINK_MAX_CHUNK 500

typedef struct {
  char *name;
  char **cols;
  size_t ncols;
} sink_table_t;

typedef struct {
  char *topic;
  sink_table_t *table;
} sink_topic_t;

typedef struct {
  const conn_jdbc_dialect_t *d;
  const conn_def_t *defs;
  conn_ctx_t *ctx;
  conn_config_t cfg;
  conn_jdbc_db_t *db;
  const char *name_format;
  bool upsert, update, auto_create, auto_evolve;
  int64_t batch_size;
  conn_jdbc_pk_t pk;
  char **pk_fields;
  sink_table_t **tables;
  size_t ntables;
  sink_topic_t *topics;
  size_t ntopics;
  bool offsets_ready;
  /* per put, reused */
  conn_jdbc_row_t *rows;
  size_t rows_cap;
  conn_jdbc_val_t *params;
  size_t params_cap;
  conn_jdbc_buf_t sql;
  conn_pool_t pool; /* the put's rows */
  int32_t *chunk_set; /* open-addressing set of row indexes (same-key check) */
  size_t chunk_set_cap;
  conn_jdbc_lane_t *lane; /* the streamed COPY's fast lane */
  conn_jdbc_val_t *lane_vals;
  int lane_cap;
} sink_task_t;

static const char *const insert_modes[] = {"insert", "upsert", "update", NULL};
static const char *const pk_modes[] = {"none", "kafka", "record_key", "record_value", NULL};

#define SINK_DEFS(validator, example)                                                         \
  {                                                                                           \
    CONN_JDBC_CONNECTION_DEFS(validator, example),                                            \
    {.name = "insert.mode", .type = CONN_T_STRING, .default_value = "insert",                 \
     .importance = CONN_IMP_HIGH, .choices = insert_modes, .group = "Writes",                 \
     .doc = "insert: plain INSERT; upsert: INSERT .. ON CONFLICT (pk) DO UPDATE "             \
            "(idempotent); update: UPDATE .. WHERE pk."},                                     \
    {.name = "batch.size", .type = CONN_T_INT, .default_value = "3000",                       \
     .importance = CONN_IMP_MEDIUM, .group = "Writes", .min = 1, .max = 1000000,              \
     .doc = "Most records written by one statement: a COPY (PostgreSQL, insert mode) or a "  \
            "multi-row INSERT (at most 500 rows and the database's parameter limit); a put "  \
            "is one transaction."},                                                           \
    {.name = "delete.enabled", .type = CONN_T_BOOLEAN, .default_value = "false",              \
     .importance = CONN_IMP_MEDIUM, .group = "Writes",                                        \
     .doc = "A tombstone (null value) deletes the row of its key. Needs "                     \
            "pk.mode=record_key. When false, a tombstone is a bad record."},                  \
    {.name = "table.name.format", .type = CONN_T_STRING, .default_value = "${topic}",         \
     .importance = CONN_IMP_MEDIUM, .group = "Data Mapping",                                  \
     .doc = "The table of a record; ${topic} is replaced by the record's topic. Quoted as "   \
            "an identifier, never spliced."},                                                 \
    {.name = "pk.mode", .type = CONN_T_STRING, .default_value = "none",                       \
     .importance = CONN_IMP_HIGH, .choices = pk_modes, .group = "Data Mapping",               \
     .doc = "Where the primary key comes from: none, kafka (topic, partition, offset), "      \
            "record_key (the key's fields, or the key itself), record_value (fields of "      \
            "the value)."},                                                                   \
    {.name = "pk.fields", .type = CONN_T_LIST, .default_value = "",                           \
     .importance = CONN_IMP_MEDIUM, .group = "Data Mapping",                                  \
     .doc = "The primary key columns. record_key: fields of a JSON object key (all when "     \
            "empty) or the one column of a primitive key (default __connect_key); "           \
            "record_value: fields of the value (all when empty); kafka: three names "         \
            "(default __connect_topic,__connect_partition,__connect_offset)."},               \
    {.name = "auto.create", .type = CONN_T_BOOLEAN, .default_value = "false",                 \
     .importance = CONN_IMP_MEDIUM, .group = "DDL Support",                                   \
     .doc = "Create a missing table (CREATE TABLE) from the first record's JSON fields, "     \
            "with the primary key."},                                                         \
    {.name = "auto.evolve", .type = CONN_T_BOOLEAN, .default_value = "false",                 \
     .importance = CONN_IMP_MEDIUM, .group = "DDL Support",                                   \
     .doc = "Add a column (ALTER TABLE .. ADD COLUMN) for a field the table lacks; when "     \
            "false such a record is a bad record."},                                          \
    CONN_DEF_END                                                                              \
  }

static const conn_def_t sqlite_sink_defs[] =
    SINK_DEFS(conn_jdbc_validate_sqlite_url, "sqlite:///path/to.db or sqlite:relative.db");
static const conn_def_t postgres_sink_defs[] =
    SINK_DEFS(conn_jdbc_validate_postgres_url, "postgresql://user@host:5432/db");

static conn_jdbc_pk_mode_t pk_mode(const char *m) {
  if (!m) return JDBC_PK_NONE;
  if (strcmp(m, "kafka") == 0) return JDBC_PK_KAFKA;
  if (strcmp(m, "record_key") == 0) return JDBC_PK_RECORD_KEY;
  if (strcmp(m, "record_value") == 0) return JDBC_PK_RECORD_VALUE;
  return JDBC_PK_NONE;
}

/* ---- validation ------------------------------------------------------------ */

static int sink_validate(const conn_config_t *cfg, const char **key, char *msg, size_t len) {
  const char *im = conn_config_get(cfg, "insert.mode");
  const char *pm = conn_config_get(cfg, "pk.mode");
  const char *de = conn_config_get(cfg, "delete.enabled");
  conn_jdbc_pk_mode_t mode = pk_mode(pm);
  if (im && (strcmp(im, "upsert") == 0 || strcmp(im, "update") == 0) && mode == JDBC_PK_NONE) {
    *key = "pk.mode";
    snprintf(msg, len, "insert.mode=%s needs a primary key: pk.mode must not be none", im);
    return -1;
  }
  if (de && strcasecmp(de, "true") == 0 && mode != JDBC_PK_RECORD_KEY) {
    *key = "delete.enabled";
    snprintf(msg, len, "delete.enabled=true needs pk.mode=record_key (a tombstone names its "
                       "row by its key)");
    return -1;
  }
  if (mode == JDBC_PK_KAFKA) {
    char **f = conn_get_list(sqlite_sink_defs, cfg, "pk.fields");
    size_t n = 0;
    while (f && f[n]) n++;
    conn_list_free(f);
    if (n != 0 && n != 3) {
      *key = "pk.fields";
      snprintf(msg, len, "pk.mode=kafka takes three names (topic, partition, offset), got %zu",
               n);
      return -1;
    }
  }
  return 0;
}

/* ---- tables -------------------------------------------------------------------- */

static bool sink_name_eq(const sink_task_t *s, const char *a, const char *b) {
  return s->d->ident_nocase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

static void sink_table_free(sink_table_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->ncols; i++) free(t->cols[i]);
  free(t->cols);
  free(t->name);
  free(t);
}

static int sink_table_add_col(sink_table_t *t, const char *col) {
  char **c = realloc(t->cols, (t->ncols + 1) * sizeof *c);
  if (!c) return JDBC_E_NOMEM;
  t->cols = c;
  if (!(c[t->ncols] = strdup(col))) return JDBC_E_NOMEM;
  t->ncols++;
  return JDBC_OK;
}

static bool sink_table_has(const sink_task_t *s, const sink_table_t *t, const char *col) {
  for (size_t i = 0; i < t->ncols; i++)
    if (sink_name_eq(s, t->cols[i], col)) return true;
  return false;
}

/* Reads the columns of t from the database (none: no such table). */
static int sink_table_load(sink_task_t *s, sink_table_t *t, char *err, size_t errlen) {
  conn_jdbc_rows_t *rows = NULL;
  conn_jdbc_val_t p = {.type = JDBC_TEXT, .s = t->name, .len = strlen(t->name)};
  int rc = s->d->query(s->db, s->d->columns_sql, &p, 1, &rows, err, errlen);
  if (rc != JDBC_OK) return rc;
  while ((rc = s->d->next(rows, err, errlen)) == 1) {
    conn_jdbc_val_t v;
    s->d->col_value(rows, 0, &v);
    if (v.type != JDBC_TEXT) continue;
    if (sink_table_add_col(t, v.s) != JDBC_OK) {
      rc = JDBC_E_NOMEM;
      break;
    }
  }
  s->d->rows_close(rows);
  return rc < 0 ? rc : JDBC_OK;
}

/* The table a record of topic goes to (table.name.format). */
static int sink_table_for(sink_task_t *s, const char *topic, sink_table_t **out) {
  for (size_t i = 0; i < s->ntopics; i++)
    if (strcmp(s->topics[i].topic, topic) == 0) {
      *out = s->topics[i].table;
      return JDBC_OK;
    }
  conn_jdbc_buf_t name;
  conn_jdbc_buf_init(&name);
  const char *f = s->name_format;
  for (const char *p; (p = strstr(f, "${topic}")) != NULL; f = p + 8) {
    conn_jdbc_buf_add(&name, f, (size_t)(p - f));
    conn_jdbc_buf_adds(&name, topic);
  }
  conn_jdbc_buf_adds(&name, f);
  if (name.oom) return JDBC_E_NOMEM;
  sink_table_t *t = NULL;
  for (size_t i = 0; i < s->ntables; i++)
    if (strcmp(s->tables[i]->name, name.p) == 0) t = s->tables[i];
  if (!t) {
    sink_table_t **tt = realloc(s->tables, (s->ntables + 1) * sizeof *tt);
    if (!tt || !(t = calloc(1, sizeof *t))) {
      if (tt) s->tables = tt;
      conn_jdbc_buf_free(&name);
      return JDBC_E_NOMEM;
    }
    s->tables = tt;
    t->name = name.p;
    name.p = NULL;
    s->tables[s->ntables++] = t;
  }
  conn_jdbc_buf_free(&name);
  sink_topic_t *tp = realloc(s->topics, (s->ntopics + 1) * sizeof *tp);
  if (!tp) return JDBC_E_NOMEM;
  s->topics = tp;
  if (!(tp[s->ntopics].topic = strdup(topic))) return JDBC_E_NOMEM;
  tp[s->ntopics++].table = t;
  *out = t;
  return JDBC_OK;
}

static conn_jdbc_type_t sink_col_type(const conn_jdbc_val_t *v) {
  return v->type == JDBC_NULL ? JDBC_TEXT : v->type;
}

/* Makes sure row's table exists and has row's columns (auto.create,
 * auto.evolve). Returns JDBC_OK, JDBC_BAD_RECORD with reason when the row can not be
 * written (a bad record), or JDBC_E_CONN / JDBC_E_DATA (DDL refused: the
 * task fails) / JDBC_E_NOMEM with err. */
static int sink_table_prepare(sink_task_t *s, conn_jdbc_row_t *row, char *reason, size_t rlen,
                              char *err, size_t errlen) {
  sink_table_t *t = row->table;
  int rc;
  if (t->ncols == 0) {
    rc = sink_table_load(s, t, err, errlen);
    if (rc != JDBC_OK) return rc;
  }
  if (t->ncols == 0) {
    if (!s->auto_create) {
      snprintf(err, errlen, "table \"%s\" does not exist and auto.create is false", t->name);
      return JDBC_E_DATA;
    }
    if (row->op == JDBC_ROW_DELETE) {
      snprintf(reason, rlen, "a delete for table \"%s\", which does not exist yet", t->name);
      return JDBC_BAD_RECORD;
    }
    conn_jdbc_type_t *types = malloc((size_t)row->ncols * sizeof *types);
    if (!types) return JDBC_E_NOMEM;
    for (int i = 0; i < row->ncols; i++) types[i] = sink_col_type(&row->vals[i]);
    conn_jdbc_shape_t shape = {t->name, row->cols, row->ncols, row->nkeys};
    conn_jdbc_buf_reset(&s->sql);
    conn_jdbc_sql_create(&s->sql, s->d, &shape, types);
    free(types);
    if (s->sql.oom) return JDBC_E_NOMEM;
    rc = s->d->exec(s->db, s->sql.p, NULL, 0, false, NULL, err, errlen);
    if (rc != JDBC_OK) return rc;
    conn_ctx_log(s->ctx, 2, "created table \"%s\" (auto.create)", t->name);
    return sink_table_load(s, t, err, errlen);
  }
  for (int i = 0; i < row->ncols; i++) {
    if (sink_table_has(s, t, row->cols[i])) continue;
    if (!s->auto_evolve) {
      snprintf(reason, rlen, "table \"%s\" has no column \"%s\" and auto.evolve is false",
               t->name, row->cols[i]);
      return JDBC_BAD_RECORD;
    }
    if (i < row->nkeys) {
      snprintf(reason, rlen, "table \"%s\" has no key column \"%s\" (auto.evolve adds only "
                             "non-key columns)", t->name, row->cols[i]);
      return JDBC_BAD_RECORD;
    }
    conn_jdbc_buf_reset(&s->sql);
    conn_jdbc_sql_add_column(&s->sql, s->d, t->name, row->cols[i], sink_col_type(&row->vals[i]));
    if (s->sql.oom) return JDBC_E_NOMEM;
    rc = s->d->exec(s->db, s->sql.p, NULL, 0, false, NULL, err, errlen);
    if (rc != JDBC_OK) return rc;
    conn_ctx_log(s->ctx, 2, "added column \"%s\" to table \"%s\" (auto.evolve)", row->cols[i],
                 t->name);
    if (sink_table_add_col(t, row->cols[i]) != JDBC_OK) return JDBC_E_NOMEM;
  }
  return JDBC_OK;
}

/* ---- the offsets table ------------------------------------------------------------ */


static int sink_offsets_init(sink_task_t *s, char *err, size_t errlen) {
  conn_jdbc_shape_t shape = {CONN_JDBC_OFFSETS_TABLE, conn_jdbc_offsets_cols, 4, 3};
  conn_jdbc_buf_reset(&s->sql);
  conn_jdbc_sql_create(&s->sql, s->d, &shape, conn_jdbc_offsets_types);
  if (s->sql.oom) return JDBC_E_NOMEM;
  int rc = s->d->exec(s->db, s->sql.p, NULL, 0, false, NULL, err, errlen);
  if (rc != JDBC_OK) return rc;
  conn_jdbc_buf_reset(&s->sql);
  conn_jdbc_buf_adds(&s->sql, "SELECT \"topic\", \"partition\", \"offset\" FROM ");
  conn_jdbc_sql_ident(&s->sql, CONN_JDBC_OFFSETS_TABLE);
  conn_jdbc_buf_adds(&s->sql, " WHERE \"connector\" = ");
  conn_jdbc_sql_param(&s->sql, s->d, 1);
  if (s->sql.oom) return JDBC_E_NOMEM;
  const char *name = conn_ctx_name(s->ctx);
  conn_jdbc_val_t p = {.type = JDBC_TEXT, .s = name, .len = strlen(name)};
  conn_jdbc_rows_t *rows = NULL;
  rc = s->d->query(s->db, s->sql.p, &p, 1, &rows, err, errlen);
  if (rc != JDBC_OK) return rc;
  while ((rc = s->d->next(rows, err, errlen)) == 1) {
    conn_jdbc_val_t t, pa, o;
    s->d->col_value(rows, 0, &t);
    s->d->col_value(rows, 1, &pa);
    s->d->col_value(rows, 2, &o);
    if (t.type != JDBC_TEXT || pa.type != JDBC_INT || o.type != JDBC_INT) continue;
    char *topic = strndup(t.s, t.len);
    if (!topic) {
      rc = JDBC_E_NOMEM;
      break;
    }
    /* The stored offset is the last one written: resume after it. */
    conn_ctx_log(s->ctx, 2, "resuming %s-%lld at offset %lld (from %s)", topic,
                 (long long)pa.i, (long long)o.i + 1, CONN_JDBC_OFFSETS_TABLE);
    conn_ctx_seek(s->ctx, topic, (int32_t)pa.i, o.i + 1);
    free(topic);
  }
  s->d->rows_close(rows);
  if (rc < 0) return rc;
  s->offsets_ready = true;
  return JDBC_OK;
}

static int sink_params_reserve(sink_task_t *s, size_t n);
static int sink_exec_sql(sink_task_t *s, const char *sql, char *err, size_t errlen);

/* Writes the highest offset of each (topic, partition) of the put, then
 * COMMITs: in one round trip where the dialect can (exec_commit). */
static int sink_offsets_commit(sink_task_t *s, size_t n, char *err, size_t errlen) {
  conn_jdbc_shape_t shape = {CONN_JDBC_OFFSETS_TABLE, conn_jdbc_offsets_cols, 4, 3};
  conn_jdbc_buf_reset(&s->sql);
  conn_jdbc_sql_insert(&s->sql, s->d, &shape, 1, true);
  if (s->sql.oom) return JDBC_E_NOMEM;
  const char *name = conn_ctx_name(s->ctx);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    const conn_record_t *r = s->rows[i].rec;
    if (r->offset < 0) continue;
    /* Only the last record of each partition in this put. */
    bool later = false;
    for (size_t j = i + 1; j < n && !later; j++) {
      const conn_record_t *q = s->rows[j].rec;
      later = q->partition == r->partition && (q->topic == r->topic || !strcmp(q->topic, r->topic));
    }
    if (later) continue;
    if (sink_params_reserve(s, (size_t)(count + 1) * 4) != JDBC_OK) return JDBC_E_NOMEM;
    conn_jdbc_val_t *p = &s->params[(size_t)count++ * 4];
    p[0] = (conn_jdbc_val_t){.type = JDBC_TEXT, .s = name, .len = strlen(name)};
    p[1] = (conn_jdbc_val_t){.type = JDBC_TEXT, .s = r->topic, .len = strlen(r->topic)};
    p[2] = (conn_jdbc_val_t){.type = JDBC_INT, .i = r->partition};
    p[3] = (conn_jdbc_val_t){.type = JDBC_INT, .i = r->offset};
  }
  if (s->d->exec_commit) return s->d->exec_commit(s->db, s->sql.p, s->params, 4, count, err, errlen);
  for (int k = 0; k < count; k++) {
    int rc = s->d->exec(s->db, s->sql.p, &s->params[(size_t)k * 4], 4, true, NULL, err, errlen);
    if (rc != JDBC_OK) return rc;
  }
  return sink_exec_sql(s, "COMMIT", err, errlen);
}

/* ---- writing rows --------------------------------------------------------------- */

static bool sink_same_shape(const conn_jdbc_row_t *a, const conn_jdbc_row_t *b) {
  if (a->op != b->op || a->table != b->table || a->ncols != b->ncols || a->nkeys != b->nkeys)
    return false;
  for (int i = 0; i < a->ncols; i++)
    if (a->cols[i] != b->cols[i] && strcmp(a->cols[i], b->cols[i]) != 0) return false;
  return true;
}

static int sink_params_reserve(sink_task_t *s, size_t n) {
  if (n <= s->params_cap) return JDBC_OK;
  conn_jdbc_val_t *p = realloc(s->params, n * sizeof *p);
  if (!p) return JDBC_E_NOMEM;
  s->params = p;
  s->params_cap = n;
  return JDBC_OK;
}

/* Runs one statement for rows[first, first + k) (same shape). */
static int sink_exec_rows(sink_task_t *s, size_t first, int k, char *err, size_t errlen) {
  conn_jdbc_row_t *row = &s->rows[first];
  sink_table_t *t = row->table;
  conn_jdbc_shape_t shape = {t->name, row->cols, row->ncols, row->nkeys};
  conn_jdbc_buf_reset(&s->sql);
  int np = 0;
  if (row->op == JDBC_ROW_DELETE) {
    conn_jdbc_sql_delete(&s->sql, s->d, &shape);
    if (sink_params_reserve(s, (size_t)row->nkeys) != JDBC_OK) return JDBC_E_NOMEM;
    for (int i = 0; i < row->nkeys; i++) s->params[np++] = row->vals[i];
  } else if (s->update) {
    if (row->ncols == row->nkeys) return JDBC_OK; /* nothing to update */
    conn_jdbc_sql_update(&s->sql, s->d, &shape);
    if (sink_params_reserve(s, (size_t)row->ncols) != JDBC_OK) return JDBC_E_NOMEM;
    for (int i = row->nkeys; i < row->ncols; i++) s->params[np++] = row->vals[i];
    for (int i = 0; i < row->nkeys; i++) s->params[np++] = row->vals[i];
  } else {
    conn_jdbc_sql_insert(&s->sql, s->d, &shape, k, s->upsert);
    if (sink_params_reserve(s, (size_t)k * (size_t)row->ncols) != JDBC_OK) return JDBC_E_NOMEM;
    for (int r = 0; r < k; r++)
      for (int i = 0; i < row->ncols; i++) s->params[np++] = s->rows[first + (size_t)r].vals[i];
  }
  if (s->sql.oom) return JDBC_E_NOMEM;
  return s->d->exec(s->db, s->sql.p, s->params, np, true, NULL, err, errlen);
}

/* Starts a COPY for rows shaped like row; with begin, the transaction too,
 * in the same round trip ("BEGIN; COPY ..", one simple query). */
static int sink_copy_begin(sink_task_t *s, const conn_jdbc_row_t *row, bool begin, char *err,
                           size_t errlen) {
  const sink_table_t *t = row->table;
  conn_jdbc_shape_t shape = {t->name, row->cols, row->ncols, row->nkeys};
  conn_jdbc_buf_reset(&s->sql);
  if (begin) conn_jdbc_buf_adds(&s->sql, "BEGIN; ");
  conn_jdbc_sql_copy(&s->sql, &shape);
  if (s->sql.oom) return JDBC_E_NOMEM;
  return s->d->copy_begin(s->db, s->sql.p, err, errlen);
}

/* COPY of rows[first, first + k) (same shape). */
static int sink_copy_rows(sink_task_t *s, size_t first, size_t k, char *err, size_t errlen) {
  int rc = sink_copy_begin(s, &s->rows[first], false, err, errlen);
  for (size_t r = 0; rc == JDBC_OK && r < k; r++)
    rc = s->d->copy_row(s->db, s->rows[first + r].vals, s->rows[first + r].ncols, err, errlen);
  if (rc == JDBC_E_NOMEM) {
    char ignored[256];
    s->d->copy_end(s->db, true, ignored, sizeof ignored);
    return rc;
  }
  return rc == JDBC_OK ? s->d->copy_end(s->db, false, err, errlen) : rc;
}

/* Statement sizes: a group of k rows runs as statements of these sizes
 * (largest first), so a handful of prepared statements serve any k. */
static int sink_chunk_size(int remaining, int max) {
  static const int sizes[] = {64, 8, 1};
  if (remaining >= max) return max;
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    if (remaining >= sizes[i] && sizes[i] < max) return sizes[i];
  return 1;
}

/* True when rows[i] has the key of a row in [first, i) (PostgreSQL can not
 * upsert one key twice in a statement). */
static bool sink_key_seen(sink_task_t *s, size_t first, size_t i) {
  size_t mask = s->chunk_set_cap - 1;
  size_t h = (size_t)s->rows[i].key_hash & mask;
  for (;; h = (h + 1) & mask) {
    int32_t j = s->chunk_set[h];
    if (j < 0 || (size_t)j < first) {
      s->chunk_set[h] = (int32_t)i;
      return false;
    }
    if (conn_jdbc_row_same_key(&s->rows[j], &s->rows[i])) return true;
  }
}

/* The fast path: every row, grouped into multi-row statements. */
static int sink_write_batch(sink_task_t *s, size_t n, char *err, size_t errlen) {
  size_t i = 0;
  while (i < n) {
    if (s->rows[i].op == JDBC_ROW_SKIP) {
      i++;
      continue;
    }
    conn_jdbc_row_t *row = &s->rows[i];
    bool multi = row->op == JDBC_ROW_WRITE && !s->update;
    int64_t max = multi ? s->batch_size : 1;
    if (max > SINK_MAX_CHUNK) max = SINK_MAX_CHUNK;
    if (max > s->d->max_params / row->ncols) max = s->d->max_params / row->ncols;
    if (max < 1) max = 1;
    if (multi && !s->upsert && s->d->copy_begin) {
      /* Plain inserts into PostgreSQL: one COPY for the whole run of rows
       * of this shape (up to batch.size), the fastest way in. */
      size_t end = i + 1;
      while (end < n && (int64_t)(end - i) < s->batch_size && s->rows[end].op != JDBC_ROW_SKIP &&
             sink_same_shape(row, &s->rows[end]))
        end++;
      int rc = sink_copy_rows(s, i, end - i, err, errlen);
      if (rc != JDBC_OK) return rc;
      i = end;
      continue;
    }
    bool dedup = multi && s->upsert && row->nkeys > 0 && !s->d->upsert_same_key_twice;
    if (dedup) {
      size_t need = 1;
      while (need < (size_t)max * 2) need *= 2;
      if (need > s->chunk_set_cap) {
        int32_t *cs = realloc(s->chunk_set, need * sizeof *cs);
        if (!cs) return JDBC_E_NOMEM;
        s->chunk_set = cs;
        s->chunk_set_cap = need;
      }
      memset(s->chunk_set, 0xff, s->chunk_set_cap * sizeof *s->chunk_set);
      sink_key_seen(s, i, i);
    }
    size_t end = i + 1;
    while (end < n && (int64_t)(end - i) < max && s->rows[end].op != JDBC_ROW_SKIP &&
           sink_same_shape(row, &s->rows[end]) && !(dedup && sink_key_seen(s, i, end)))
      end++;
    int left = (int)(end - i);
    while (left > 0) {
      int k = sink_chunk_size(left, (int)max);
      int rc = sink_exec_rows(s, i, k, err, errlen);
      if (rc != JDBC_OK) return rc;
      i += (size_t)k;
      left -= k;
    }
  }
  return JDBC_OK;
}

static int sink_exec_sql(sink_task_t *s, const char *sql, char *err, size_t errlen) {
  return s->d->exec(s->db, sql, NULL, 0, true, NULL, err, errlen);
}

/* The slow path after a refused statement: one row at a time under a
 * savepoint, refused rows reported. Returns JDBC_OK, a database error, or
 * JDBC_E_REFUSED when the framework does not tolerate a reported row. */
static int sink_write_rows(sink_task_t *s, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (s->rows[i].op == JDBC_ROW_SKIP) continue;
    int rc = sink_exec_sql(s, "SAVEPOINT runnel_row", err, errlen);
    if (rc != JDBC_OK) return rc;
    char why[512];
    rc = sink_exec_rows(s, i, 1, why, sizeof why);
    if (rc == JDBC_E_DATA) {
      rc = sink_exec_sql(s, "ROLLBACK TO SAVEPOINT runnel_row", err, errlen);
      if (rc != JDBC_OK) return rc;
      s->rows[i].op = JDBC_ROW_SKIP;
      const conn_record_t *r = s->rows[i].rec;
      if (conn_ctx_report(s->ctx, r, why) < 0) {
        snprintf(err, errlen, "%s-%d offset %lld: %s", r->topic, r->partition,
                 (long long)r->offset, why);
        return JDBC_E_REFUSED;
      }
    } else if (rc != JDBC_OK) {
      snprintf(err, errlen, "%s", why);
      return rc;
    }
    rc = sink_exec_sql(s, "RELEASE SAVEPOINT runnel_row", err, errlen);
    if (rc != JDBC_OK) return rc;
  }
  return JDBC_OK;
}

/* Parses the rows the fast lane sent to a stream that was then given up:
 * the usual way writes every row of the put from its parsed columns. */
static int sink_lane_parse(sink_task_t *s, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    conn_jdbc_row_t *row = &s->rows[i];
    if (!row->lane) continue;
    row->lane = false;
    char reason[512];
    int rc = conn_jdbc_row_parse(&s->pool, &s->pk, row->rec, row, reason, sizeof reason);
    if (rc == JDBC_BAD_RECORD) { /* not expected: the lane takes only what the parser takes */
      row->op = JDBC_ROW_SKIP;
      if (conn_ctx_report(s->ctx, row->rec, reason) < 0) {
        snprintf(err, errlen, "%s-%d offset %lld: %s", row->rec->topic, row->rec->partition,
                 (long long)row->rec->offset, reason);
        return JDBC_E_REFUSED;
      }
      continue;
    }
    if (rc != JDBC_OK) return rc;
  }
  return JDBC_OK;
}

/* One transaction: the rows (fast or slow path) and the offsets. */
static int sink_transaction(sink_task_t *s, size_t n, bool slow, char *err, size_t errlen) {
  int rc = sink_lane_parse(s, n, err, errlen);
  if (rc != JDBC_OK) return rc;
  rc = sink_exec_sql(s, "BEGIN", err, errlen);
  if (rc != JDBC_OK) return rc;
  rc = slow ? sink_write_rows(s, n, err, errlen) : sink_write_batch(s, n, err, errlen);
  if (rc == JDBC_OK) rc = sink_offsets_commit(s, n, err, errlen);
  if (rc != JDBC_OK) {
    char ignored[256];
    sink_exec_sql(s, "ROLLBACK", ignored, sizeof ignored);
  }
  return rc;
}

/* ---- streaming (PostgreSQL plain inserts) ------------------------------------------ */

/* The put's transaction and its COPY start with its first row, and each
 * row goes to the server as soon as it is parsed, so that the server
 * inserts while the sink parses (rather than parsing the whole put, then
 * waiting for the server). Anything the stream can not take (a row of
 * another shape, a table to create or evolve, a delete, a refused COPY)
 * abandons it: the COPY is cancelled, the transaction rolled back, and the
 * put goes the usual way (every row parsed, then sink_transaction). */
typedef struct {
  bool ok;                      /* the put may still stream */
  bool txn;                     /* BEGIN sent */
  bool open;                    /* a COPY in progress */
  const conn_jdbc_row_t *shape; /* the open COPY's columns */
  int64_t rows;                 /* rows in the open COPY */
  int misfits;                  /* records the lane left to the general path */
} sink_stream_t;

/* After this many records that do not fit the lane (nested values, say),
 * the rest of the put skips it: each costs a partial parse and a new
 * parser before the general parse. */
#define SINK_LANE_MISFITS 4

static int sink_stream_send(sink_task_t *s, sink_stream_t *st, const conn_jdbc_row_t *shape,
                            const conn_jdbc_val_t *vals, bool begin, char *err, size_t errlen);

static void sink_stream_abandon(sink_task_t *s, sink_stream_t *st) {
  char ignored[256];
  int rc = JDBC_OK;
  if (st->open) rc = s->d->copy_end(s->db, true, ignored, sizeof ignored);
  if (st->txn && rc == JDBC_OK) sink_exec_sql(s, "ROLLBACK", ignored, sizeof ignored);
  st->ok = st->txn = st->open = false;
}

/* Sends row (parsed, its table checked) to the stream, or abandons the
 * stream. Returns JDBC_OK, or JDBC_E_CONN / JDBC_E_NOMEM with err (the
 * put fails or is retried). */
static int sink_stream_row(sink_task_t *s, sink_stream_t *st, const conn_jdbc_row_t *row,
                           char *err, size_t errlen) {
  if (!st->ok || row->op == JDBC_ROW_SKIP) return JDBC_OK;
  if (row->op != JDBC_ROW_WRITE || (st->open && !sink_same_shape(st->shape, row))) {
    sink_stream_abandon(s, st);
    return JDBC_OK;
  }
  bool begin = !st->txn;
  st->txn = true; /* also when the COPY fails: ROLLBACK is harmless then */
  return sink_stream_send(s, st, row, row->vals, begin, err, errlen);
}

/* Sends one row of shape's columns (vals): in the open COPY, or in a new
 * one (begin: with BEGIN) when none is open or the open one has batch.size
 * rows. Returns as sink_stream_row. */
static int sink_stream_send(sink_task_t *s, sink_stream_t *st, const conn_jdbc_row_t *shape,
                            const conn_jdbc_val_t *vals, bool begin, char *err, size_t errlen) {
  int rc = JDBC_OK;
  if (st->open && st->rows >= s->batch_size) { /* at most batch.size rows per COPY */
    st->open = false;
    rc = s->d->copy_end(s->db, false, err, errlen);
  }
  if (rc == JDBC_OK && !st->open) {
    rc = sink_copy_begin(s, shape, begin, err, errlen);
    st->open = rc == JDBC_OK;
    st->shape = shape;
    st->rows = 0;
  }
  if (rc == JDBC_OK) rc = s->d->copy_row(s->db, vals, shape->ncols, err, errlen);
  if (rc == JDBC_OK) {
    st->rows++;
    return JDBC_OK;
  }
  if (rc == JDBC_E_CONN) { /* the connection is closed next */
    st->ok = st->txn = st->open = false;
    return rc;
  }
  /* A refused COPY (JDBC_E_DATA) is met again, and handled, the usual
   * way; out of memory fails the put. */
  sink_stream_abandon(s, st);
  return rc == JDBC_E_NOMEM ? rc : JDBC_OK;
}

/* The fast lane: a record shaped like the open COPY's rows (same topic,
 * the same value fields in the same order, scalars) goes straight from its
 * JSON to the COPY, unparsed (conn_jdbc_lane.c). Returns 1 when sent, 0
 * when the record goes the usual way, or JDBC_E_CONN / JDBC_E_NOMEM. */
static int sink_lane(sink_task_t *s, sink_stream_t *st, const conn_record_t *rec,
                     conn_jdbc_row_t *row, char *err, size_t errlen) {
  const conn_jdbc_row_t *shape = st->shape;
  if (!st->ok || !st->open || !rec->value || st->misfits >= SINK_LANE_MISFITS ||
      (s->pk.mode != JDBC_PK_NONE && s->pk.mode != JDBC_PK_KAFKA) ||
      (shape->rec->topic != rec->topic && strcmp(shape->rec->topic, rec->topic) != 0))
    return 0;
  if (shape->ncols > s->lane_cap) {
    conn_jdbc_val_t *v = realloc(s->lane_vals, (size_t)shape->ncols * sizeof *v);
    if (!v) return JDBC_E_NOMEM;
    s->lane_vals = v;
    s->lane_cap = shape->ncols;
  }
  conn_jdbc_val_t *vals = s->lane_vals;
  int nk = shape->nkeys;
  int rc = conn_jdbc_lane_row(&s->lane, shape->cols + nk, shape->ncols - nk, rec->value,
                              (size_t)rec->value_len, vals + nk);
  if (rc == 0) st->misfits++;
  if (rc != 1) return rc;
  if (s->pk.mode == JDBC_PK_KAFKA) { /* as conn_jdbc_row_parse */
    vals[0] = (conn_jdbc_val_t){.type = JDBC_TEXT, .s = rec->topic, .len = strlen(rec->topic)};
    vals[1] = (conn_jdbc_val_t){.type = JDBC_INT, .i = rec->partition};
    vals[2] = (conn_jdbc_val_t){.type = JDBC_INT, .i = rec->offset};
  }
  row->rec = rec;
  row->op = JDBC_ROW_WRITE;
  row->table = shape->table;
  row->lane = true;
  rc = sink_stream_send(s, st, shape, vals, false, err, errlen);
  return rc == JDBC_OK ? 1 : rc;
}

/* Ends the stream: the last rows, the offsets, COMMIT. */
static int sink_stream_commit(sink_task_t *s, sink_stream_t *st, size_t n, char *err,
                              size_t errlen) {
  st->open = st->txn = false;
  int rc = s->d->copy_end(s->db, false, err, errlen);
  if (rc == JDBC_OK) rc = sink_offsets_commit(s, n, err, errlen);
  if (rc != JDBC_OK) {
    char ignored[256];
    sink_exec_sql(s, "ROLLBACK", ignored, sizeof ignored);
  }
  return rc;
}

static void sink_rows_free(sink_task_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!s->rows[i].lane) conn_jdbc_row_free(&s->rows[i]); /* a lane row holds nothing */
  conn_pool_reset(&s->pool);
}

static int sink_conn_lost(sink_task_t *s, char *err) {
  conn_ctx_log(s->ctx, 1, "%s; will reconnect and retry the batch", err);
  s->d->close(s->db);
  s->db = NULL;
  /* Table columns may have changed while away. */
  for (size_t i = 0; i < s->ntables; i++) {
    sink_table_t *t = s->tables[i];
    for (size_t j = 0; j < t->ncols; j++) free(t->cols[j]);
    t->ncols = 0;
  }
  return CONN_E_RETRY;
}

static int sink_put(void *task, const conn_record_t *records, size_t n, char *err,
                    size_t errlen) {
  sink_task_t *s = task;
  if (n == 0) return CONN_OK;
  int rc = conn_jdbc_connect(s->d, s->defs, &s->cfg, true, &s->db, err, errlen);
  if (rc == JDBC_OK && !s->offsets_ready) rc = sink_offsets_init(s, err, errlen);
  if (rc == JDBC_E_CONN) return sink_conn_lost(s, err);
  if (rc != JDBC_OK) return CONN_E_FAIL;
  if (n > s->rows_cap) {
    conn_jdbc_row_t *rows = realloc(s->rows, n * sizeof *rows);
    if (!rows) {
      snprintf(err, errlen, "out of memory");
      return CONN_E_FAIL;
    }
    s->rows = rows;
    s->rows_cap = n;
  }
  memset(s->rows, 0, n * sizeof *s->rows);
  int ret = CONN_OK;
  sink_stream_t st = {.ok = s->d->copy_begin && !s->upsert && !s->update};
  /* Records to rows; tables created or evolved as needed. */
  const conn_jdbc_row_t *checked = NULL; /* the last row whose columns exist */
  for (size_t i = 0; i < n && ret == CONN_OK; i++) {
    conn_jdbc_row_t *row = &s->rows[i];
    char reason[512];
    rc = sink_lane(s, &st, &records[i], row, err, errlen); /* 1: sent; < 0: handled below */
    if (rc == 1) continue;
    if (rc == 0) rc = conn_jdbc_row_parse(&s->pool, &s->pk, &records[i], row, reason, sizeof reason);
    if (rc == 0) {
      sink_table_t *t = NULL;
      if (checked && (checked->rec->topic == records[i].topic ||
                      strcmp(checked->rec->topic, records[i].topic) == 0))
        t = checked->table;
      else
        rc = sink_table_for(s, records[i].topic, &t);
      row->table = t;
      /* Rows shaped like the last checked one need no second look. */
      if (rc == JDBC_OK && !(checked && sink_same_shape(checked, row))) {
        /* The look may need the connection: a started stream gives way
         * (before the first row, nothing has started). */
        if (st.txn) sink_stream_abandon(s, &st);
        rc = sink_table_prepare(s, row, reason, sizeof reason, err, errlen);
      }
      if (rc == JDBC_OK) {
        checked = row;
        rc = sink_stream_row(s, &st, row, err, errlen);
      }
    }
    if (rc == JDBC_BAD_RECORD) {
      row->op = JDBC_ROW_SKIP;
      if (conn_ctx_report(s->ctx, &records[i], reason) < 0) {
        snprintf(err, errlen, "%s-%d offset %lld: %s", records[i].topic, records[i].partition,
                 (long long)records[i].offset, reason);
        ret = CONN_E_FAIL;
      }
    } else if (rc == JDBC_E_CONN) {
      ret = sink_conn_lost(s, err);
    } else if (rc == JDBC_E_NOMEM) {
      snprintf(err, errlen, "out of memory");
      ret = CONN_E_FAIL;
    } else if (rc != JDBC_OK) {
      ret = CONN_E_FAIL;
    }
  }
  if (ret != CONN_OK && s->db) sink_stream_abandon(s, &st);
  if (ret == CONN_OK) {
    rc = st.txn ? sink_stream_commit(s, &st, n, err, errlen)
                 : sink_transaction(s, n, false, err, errlen);
    if (rc == JDBC_E_DATA) {
      conn_ctx_log(s->ctx, 3, "batch refused (%s); writing it row by row", err);
      rc = sink_transaction(s, n, true, err, errlen);
    }
    if (rc == JDBC_E_CONN) ret = sink_conn_lost(s, err);
    else if (rc == JDBC_E_NOMEM) ret = CONN_E_FAIL, snprintf(err, errlen, "out of memory");
    else if (rc != JDBC_OK) ret = CONN_E_FAIL;
  }
  sink_rows_free(s, n);
  return ret;
}

/* ---- start / stop ------------------------------------------------------------------ */

static void sink_stop(void *task) {
  sink_task_t *s = task;
  if (s->d && s->db) s->d->close(s->db);
  for (size_t i = 0; i < s->ntables; i++) sink_table_free(s->tables[i]);
  free(s->tables);
  for (size_t i = 0; i < s->ntopics; i++) free(s->topics[i].topic);
  free(s->topics);
  conn_list_free(s->pk_fields);
  free(s->rows);
  free(s->params);
  free(s->chunk_set);
  conn_pool_free(&s->pool);
  conn_jdbc_lane_free(s->lane);
  free(s->lane_vals);
  conn_jdbc_buf_free(&s->sql);
  conn_config_free(&s->cfg);
  memset(s, 0, sizeof *s);
}

static int sink_start(sink_task_t *s, const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                      conn_ctx_t *ctx, const conn_config_t *cfg, char *err, size_t errlen) {
  s->d = d;
  s->defs = defs;
  s->ctx = ctx;
  conn_config_init(&s->cfg);
  if (conn_config_copy(&s->cfg, cfg) < 0) goto nomem;
  const char *im = conn_get_string(defs, &s->cfg, "insert.mode");
  s->upsert = im && strcmp(im, "upsert") == 0;
  s->update = im && strcmp(im, "update") == 0;
  s->auto_create = conn_get_bool(defs, &s->cfg, "auto.create");
  s->auto_evolve = conn_get_bool(defs, &s->cfg, "auto.evolve");
  s->batch_size = conn_get_long(defs, &s->cfg, "batch.size");
  s->name_format = conn_get_string(defs, &s->cfg, "table.name.format");
  if (!s->name_format || !*s->name_format) s->name_format = "${topic}";
  s->pk.mode = pk_mode(conn_get_string(defs, &s->cfg, "pk.mode"));
  s->pk.delete_enabled = conn_get_bool(defs, &s->cfg, "delete.enabled");
  s->pk_fields = conn_get_list(defs, &s->cfg, "pk.fields");
  if (!s->pk_fields) goto nomem;
  s->pk.fields = s->pk_fields;
  int rc = conn_jdbc_connect(d, defs, &s->cfg, true, &s->db, err, errlen);
  if (rc == JDBC_OK) rc = sink_offsets_init(s, err, errlen);
  if (rc != JDBC_OK) {
    /* Unreachable now: start again later (the framework backs off and
     * shows the message in the task's status). */
    int ret = rc == JDBC_E_CONN ? CONN_E_RETRY : CONN_E_FAIL;
    if (rc == JDBC_E_NOMEM) snprintf(err, errlen, "out of memory");
    conn_ctx_log(ctx, ret == CONN_E_RETRY ? 1 : 0, "%s", err);
    sink_stop(s);
    return ret;
  }
  return CONN_OK;
nomem:
  snprintf(err, errlen, "out of memory");
  sink_stop(s);
  return CONN_E_FAIL;
}

static int sqlite_sink_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg, char *err,
                             size_t errlen) {
  return sink_start(task, &conn_dialect_sqlite, sqlite_sink_defs, ctx, cfg, err, errlen);
}

static int postgres_sink_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg, char *err,
                               size_t errlen) {
  return sink_start(task, &conn_dialect_postgres, postgres_sink_defs, ctx, cfg, err, errlen);
}

/* KIP-875: the offsets live in the target (conn_jdbc_sink_offsets.c). */
static int sqlite_sink_alter_offsets(const conn_config_t *cfg, const char *partition_json,
                                     const char *offset_json, char *msg, size_t len) {
  return conn_jdbc_sink_alter_offsets(&conn_dialect_sqlite, sqlite_sink_defs, cfg,
                                      partition_json, offset_json, msg, len);
}
static int sqlite_sink_read_offsets(const conn_config_t *cfg, char **json, char *msg,
                                    size_t len) {
  return conn_jdbc_sink_read_offsets(&conn_dialect_sqlite, sqlite_sink_defs, cfg, json, msg, len);
}
static int postgres_sink_alter_offsets(const conn_config_t *cfg, const char *partition_json,
                                       const char *offset_json, char *msg, size_t len) {
  return conn_jdbc_sink_alter_offsets(&conn_dialect_postgres, postgres_sink_defs, cfg,
                                      partition_json, offset_json, msg, len);
}
static int postgres_sink_read_offsets(const conn_config_t *cfg, char **json, char *msg,
                                      size_t len) {
  return conn_jdbc_sink_read_offsets(&conn_dialect_postgres, postgres_sink_defs, cfg, json, msg,
                                     len);
}

/* Kafka's JDBC sink runs tasks.max tasks; the framework spreads the
 * subscribed partitions over them, so each task gets the same config. */
static int sink_task_configs(const conn_config_t *cfg, int max_tasks, conn_config_t **out,
                             size_t *n_out, char *err, size_t errlen) {
  size_t n = max_tasks > 0 ? (size_t)max_tasks : 1;
  conn_config_t *cfgs = calloc(n, sizeof *cfgs);
  if (!cfgs) goto nomem;
  for (size_t i = 0; i < n; i++) {
    if (conn_config_copy(&cfgs[i], cfg) != 0) {
      for (size_t j = 0; j < i; j++) conn_config_free(&cfgs[j]);
      free(cfgs);
      goto nomem;
    }
  }
  *out = cfgs;
  *n_out = n;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  return -ENOMEM;
}

const conn_plugin_t conn_sqlite_sink_plugin = {
    .name = "sqlite-sink",
    .kind = CONN_SINK,
    .version = "1.0",
    .defs = sqlite_sink_defs,
    .validate = sink_validate,
    .task_configs = sink_task_configs,
    .task_size = sizeof(sink_task_t),
    .start = sqlite_sink_start,
    .stop = sink_stop,
    .put = sink_put,
    .alter_offsets = sqlite_sink_alter_offsets,
    .read_offsets = sqlite_sink_read_offsets,
};

const conn_plugin_t conn_postgres_sink_plugin = {
    .name = "postgres-sink",
    .kind = CONN_SINK,
    .version = "1.0",
    .defs = postgres_sink_defs,
    .validate = sink_validate,
    .task_configs = sink_task_configs,
    .task_size = sizeof(sink_task_t),
    .start = postgres_sink_start,
    .stop = sink_stop,
    .put = sink_put,
    .alter_offsets = postgres_sink_alter_offsets,
    .read_offsets = postgres_sink_read_offsets,
};
