/*
 * conn_jdbc_source.c: the sqlite-source and postgres-source connectors,
 * Kafka's JDBC Source connector over a dialect.
 *
 * Each table of table.whitelist (or the one custom `query`) is polled on
 * its own schedule; each row becomes one record whose value is a JSON
 * object (column name -> number, string, boolean or null) on topic
 * topic.prefix + table (query mode: topic.prefix). Keys are null, as
 * Kafka's source produces them.
 *
 * Source partitions and offsets are Kafka JDBC's:
 *   partition {"table": "<name>"} (query mode: {"query": "query"})
 *   offset    bulk: {}; incrementing: {"incrementing": <last id>};
 *             timestamp: {"timestamp": <ms>, "timestamp_nanos": <ns in the
 *             second>}; timestamp+incrementing: all three.
 * A task resumes from conn_ctx_offset at start.
 *
 * Modes:
 *   bulk                    the whole table every poll.interval.ms
 *   incrementing            id > last, ORDER BY id, LIMIT batch.max.rows
 *   timestamp               last < ts < now - delay, ORDER BY ts (read to
 *                           the end, so rows sharing a timestamp are never
 *                           split between two polls)
 *   timestamp+incrementing  (ts = last AND id > last id) OR ts > last,
 *                           ts < now - delay, ORDER BY ts, id, LIMIT
 * A bulk or timestamp result stays open across polls (batch.max.rows rows
 * per poll); an incrementing query is re-issued from the offset.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "conn_jdbc_int.h"

/* Before any real timestamp: the first poll reads every row. */
#define TS_INITIAL_US (INT64_MIN / 2)

typedef struct {
  char *table;      /* NULL: the custom query */
  char *topic;
  char *partition;  /* source partition JSON */
  int64_t inc;      /* last incrementing value (Kafka's initial: -1) */
  int64_t ts_us;    /* last timestamp, microseconds since the epoch */
  conn_jdbc_rows_t *rows; /* open result (bulk, timestamp) */
  int inc_idx, ts_idx;    /* column indexes in rows, -1 when absent */
  int64_t due_ms;   /* next poll, monotonic */
} source_table_t;

typedef struct {
  const conn_jdbc_dialect_t *d;
  const conn_def_t *defs;
  conn_ctx_t *ctx;
  conn_config_t cfg;
  conn_jdbc_db_t *db;
  conn_jdbc_mode_t mode;
  const char *inc_col, *ts_col, *query, *prefix;
  int64_t poll_ms, max_rows, delay_ms;
  source_table_t *tables;
  size_t ntables, next;
  conn_jdbc_buf_t sql;
} source_task_t;

static const char *const source_modes[] = {"bulk", "incrementing", "timestamp",
                                           "timestamp+incrementing", NULL};

#define SOURCE_DEFS(validator, example)                                                       \
  {                                                                                           \
    CONN_JDBC_CONNECTION_DEFS(validator, example),                                            \
    {.name = "mode", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH,                      \
     .choices = source_modes, .group = "Mode",                                                \
     .doc = "How rows are found on each poll: bulk (the whole table every time), "            \
            "incrementing (a strictly increasing column), timestamp (a modification "         \
            "timestamp column), timestamp+incrementing (both: exact resume)."},               \
    {.name = "incrementing.column.name", .type = CONN_T_STRING, .default_value = "",          \
     .importance = CONN_IMP_MEDIUM, .group = "Mode",                                          \
     .doc = "A strictly increasing integer column (incrementing modes)."},                    \
    {.name = "timestamp.column.name", .type = CONN_T_STRING, .default_value = "",             \
     .importance = CONN_IMP_MEDIUM, .group = "Mode",                                          \
     .doc = "The modification timestamp column (timestamp modes). One column "                \
            "(Kafka accepts a list and uses COALESCE)."},                                     \
    {.name = "timestamp.delay.interval.ms", .type = CONN_T_LONG, .default_value = "0",        \
     .importance = CONN_IMP_HIGH, .group = "Mode", .min = 0, .max = INT64_MAX / 1000,         \
     .doc = "How long after its timestamp a row becomes visible to the source, so that "      \
            "transactions committing late are not skipped."},                                 \
    {.name = "table.whitelist", .type = CONN_T_LIST, .default_value = "",                     \
     .importance = CONN_IMP_MEDIUM, .group = "Database",                                      \
     .doc = "Tables to copy (comma-separated), split over tasks.max tasks. Give this or "     \
            "query."},                                                                        \
    {.name = "query", .type = CONN_T_STRING, .default_value = "",                             \
     .importance = CONN_IMP_MEDIUM, .group = "Mode",                                          \
     .doc = "A custom SELECT to copy instead of tables; it runs as a subquery, so it may "    \
            "have its own WHERE. Topic: topic.prefix."},                                      \
    {.name = "topic.prefix", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH,              \
     .group = "Connector",                                                                    \
     .doc = "Prefix of the topic of each table (topic = prefix + table); with query, the "    \
            "whole topic name."},                                                             \
    {.name = "poll.interval.ms", .type = CONN_T_INT, .default_value = "5000",                 \
     .importance = CONN_IMP_HIGH, .group = "Connector", .min = 1, .max = INT32_MAX,           \
     .doc = "How often each table is polled for new rows."},                                  \
    {.name = "batch.max.rows", .type = CONN_T_INT, .default_value = "100",                    \
     .importance = CONN_IMP_LOW, .group = "Connector", .min = 1, .max = 1000000,              \
     .doc = "Most rows returned by one poll."},                                               \
    CONN_DEF_END                                                                              \
  }

static const conn_def_t sqlite_source_defs[] =
    SOURCE_DEFS(conn_jdbc_validate_sqlite_url, "sqlite:///path/to.db or sqlite:relative.db");
static const conn_def_t postgres_source_defs[] =
    SOURCE_DEFS(conn_jdbc_validate_postgres_url, "postgresql://user@host:5432/db");

static int64_t source_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static conn_jdbc_mode_t source_mode(const char *m) {
  if (strcmp(m, "incrementing") == 0) return JDBC_MODE_INCREMENTING;
  if (strcmp(m, "timestamp") == 0) return JDBC_MODE_TIMESTAMP;
  if (strcmp(m, "timestamp+incrementing") == 0) return JDBC_MODE_TIMESTAMP_INCREMENTING;
  return JDBC_MODE_BULK;
}

static bool mode_inc(conn_jdbc_mode_t m) {
  return m == JDBC_MODE_INCREMENTING || m == JDBC_MODE_TIMESTAMP_INCREMENTING;
}

static bool mode_ts(conn_jdbc_mode_t m) {
  return m == JDBC_MODE_TIMESTAMP || m == JDBC_MODE_TIMESTAMP_INCREMENTING;
}

/* ---- validation and task configs ------------------------------------------ */

static int source_validate(const conn_config_t *cfg, const char **key, char *msg, size_t len) {
  const char *q = conn_config_get(cfg, "query");
  const char *tw = conn_config_get(cfg, "table.whitelist");
  bool has_q = q && *q, has_t = tw && strspn(tw, " ,") < strlen(tw);
  if (has_q && has_t) {
    *key = "query";
    snprintf(msg, len, "give either query or table.whitelist, not both");
    return -1;
  }
  if (!has_q && !has_t) {
    *key = "table.whitelist";
    snprintf(msg, len, "names no table: give table.whitelist or query");
    return -1;
  }
  const char *m = conn_config_get(cfg, "mode");
  conn_jdbc_mode_t mode = source_mode(m ? m : "bulk");
  const char *inc = conn_config_get(cfg, "incrementing.column.name");
  const char *ts = conn_config_get(cfg, "timestamp.column.name");
  if (mode_inc(mode) && !(inc && *inc)) {
    *key = "incrementing.column.name";
    snprintf(msg, len, "mode %s needs incrementing.column.name", m);
    return -1;
  }
  if (mode_ts(mode) && !(ts && *ts)) {
    *key = "timestamp.column.name";
    snprintf(msg, len, "mode %s needs timestamp.column.name", m);
    return -1;
  }
  return 0;
}

/* Contiguous groups of tables, one per task (Kafka's
 * ConnectorUtils.groupPartitions); each task config gets "tables". */
static int source_task_configs(const conn_config_t *cfg, int max_tasks, conn_config_t **out,
                               size_t *n_out, char *err, size_t errlen) {
  *out = NULL;
  *n_out = 0;
  const char *q = conn_config_get(cfg, "query");
  char **tables = NULL;
  size_t nt = 0;
  if (!(q && *q)) {
    tables = conn_get_list(sqlite_source_defs, cfg, "table.whitelist");
    if (!tables) goto nomem;
    while (tables[nt]) nt++;
  }
  size_t ntasks = nt == 0 ? 1 : (nt < (size_t)max_tasks ? nt : (size_t)max_tasks);
  if (ntasks == 0) ntasks = 1;
  conn_config_t *cfgs = calloc(ntasks, sizeof *cfgs);
  if (!cfgs) goto nomem;
  size_t at = 0;
  for (size_t t = 0; t < ntasks; t++) {
    if (conn_config_copy(&cfgs[t], cfg) < 0) goto nomem_cfgs;
    if (nt == 0) continue;
    size_t count = nt / ntasks + (t < nt % ntasks ? 1 : 0);
    conn_jdbc_buf_t b;
    conn_jdbc_buf_init(&b);
    for (size_t i = 0; i < count; i++, at++) {
      if (i) conn_jdbc_buf_add(&b, ",", 1);
      conn_jdbc_buf_adds(&b, tables[at]);
    }
    int rc = b.oom ? -1 : conn_config_set(&cfgs[t], "tables", b.p ? b.p : "");
    conn_jdbc_buf_free(&b);
    if (rc < 0) goto nomem_cfgs;
  }
  conn_list_free(tables);
  *out = cfgs;
  *n_out = ntasks;
  return 0;
nomem_cfgs:
  for (size_t t = 0; t < ntasks; t++) conn_config_free(&cfgs[t]);
  free(cfgs);
nomem:
  conn_list_free(tables);
  snprintf(err, errlen, "out of memory");
  return -1;
}

/* ---- offsets ----------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0)); }

/* Reads the committed offset of t (Kafka's keys). */
static void source_load_offset(source_task_t *s, source_table_t *t) {
  char *json = conn_ctx_offset(s->ctx, t->partition);
  if (!json) return;
  yajl_val root = yajl_tree_parse(json, NULL, 0);
  if (root && YAJL_IS_OBJECT(root)) {
    const char *pi[] = {"incrementing", NULL}, *pt[] = {"timestamp", NULL},
               *pn[] = {"timestamp_nanos", NULL};
    yajl_val inc = yajl_tree_get(root, pi, yajl_t_number);
    yajl_val ts = yajl_tree_get(root, pt, yajl_t_number);
    yajl_val ns = yajl_tree_get(root, pn, yajl_t_number);
    if (inc && YAJL_IS_INTEGER(inc)) t->inc = YAJL_GET_INTEGER(inc);
    if (ts && YAJL_IS_INTEGER(ts)) {
      int64_t ms = YAJL_GET_INTEGER(ts);
      int64_t nanos = ns && YAJL_IS_INTEGER(ns) ? YAJL_GET_INTEGER(ns)
                                                : (ms - floor_div(ms, 1000) * 1000) * 1000000;
      t->ts_us = floor_div(ms, 1000) * 1000000 + nanos / 1000;
    }
    conn_ctx_log(s->ctx, 2, "%s: resuming from offset %s", t->table ? t->table : "query", json);
  } else {
    conn_ctx_log(s->ctx, 1, "%s: ignoring an offset that is not a JSON object: %s",
                 t->table ? t->table : "query", json);
  }
  yajl_tree_free(root);
  free(json);
}

/* The offset of the row just read, as Kafka's JDBC source writes it. */
static char *source_offset_json(const source_task_t *s, const source_table_t *t) {
  char buf[160];
  int64_t ms = floor_div(t->ts_us, 1000);
  int64_t nanos = (t->ts_us - floor_div(t->ts_us, 1000000) * 1000000) * 1000;
  switch (s->mode) {
  case JDBC_MODE_INCREMENTING:
    snprintf(buf, sizeof buf, "{\"incrementing\":%lld}", (long long)t->inc);
    break;
  case JDBC_MODE_TIMESTAMP:
    snprintf(buf, sizeof buf, "{\"timestamp\":%lld,\"timestamp_nanos\":%lld}", (long long)ms,
             (long long)nanos);
    break;
  case JDBC_MODE_TIMESTAMP_INCREMENTING:
    snprintf(buf, sizeof buf,
             "{\"timestamp\":%lld,\"timestamp_nanos\":%lld,\"incrementing\":%lld}",
             (long long)ms, (long long)nanos, (long long)t->inc);
    break;
  default:
    snprintf(buf, sizeof buf, "{}");
    break;
  }
  return strdup(buf);
}

/* ---- start / stop -------------------------------------------------------------- */

static void source_stop(void *task) {
  source_task_t *s = task;
  for (size_t i = 0; i < s->ntables; i++) {
    source_table_t *t = &s->tables[i];
    if (s->d) s->d->rows_close(t->rows);
    free(t->table);
    free(t->topic);
    free(t->partition);
  }
  free(s->tables);
  if (s->d && s->db) s->d->close(s->db);
  conn_jdbc_buf_free(&s->sql);
  conn_config_free(&s->cfg);
  memset(s, 0, sizeof *s);
}

static int source_add_table(source_task_t *s, const char *table) {
  source_table_t *t = &s->tables[s->ntables];
  memset(t, 0, sizeof *t);
  t->inc = -1;
  t->ts_us = TS_INITIAL_US;
  t->inc_idx = t->ts_idx = -1;
  if (table) {
    t->table = strdup(table);
    t->partition = conn_jdbc_json_obj1("table", table);
    size_t n = strlen(s->prefix) + strlen(table) + 1;
    t->topic = malloc(n);
    if (t->topic) snprintf(t->topic, n, "%s%s", s->prefix, table);
    if (!t->table || !t->partition || !t->topic) return -1;
  } else {
    /* Kafka's JDBC source names the partition of a query "query". */
    t->partition = conn_jdbc_json_obj1("query", "query");
    t->topic = strdup(s->prefix);
    if (!t->partition || !t->topic) return -1;
  }
  s->ntables++;
  source_load_offset(s, t);
  return 0;
}

static int source_start(source_task_t *s, const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                        conn_ctx_t *ctx, const conn_config_t *cfg, char *err, size_t errlen) {
  s->d = d;
  s->defs = defs;
  s->ctx = ctx;
  conn_config_init(&s->cfg);
  if (conn_config_copy(&s->cfg, cfg) < 0) goto nomem;
  s->mode = source_mode(conn_get_string(defs, &s->cfg, "mode"));
  s->inc_col = conn_get_string(defs, &s->cfg, "incrementing.column.name");
  s->ts_col = conn_get_string(defs, &s->cfg, "timestamp.column.name");
  s->query = conn_get_string(defs, &s->cfg, "query");
  s->prefix = conn_get_string(defs, &s->cfg, "topic.prefix");
  if (!s->prefix) s->prefix = "";
  s->poll_ms = conn_get_long(defs, &s->cfg, "poll.interval.ms");
  s->max_rows = conn_get_long(defs, &s->cfg, "batch.max.rows");
  s->delay_ms = conn_get_long(defs, &s->cfg, "timestamp.delay.interval.ms");

  /* A task config carries its share of the tables in "tables"; a config
   * used directly (no task_configs) copies the whole whitelist. */
  const char *list = conn_config_get(&s->cfg, "tables");
  if (!list) list = conn_config_get(&s->cfg, "table.whitelist");
  if (s->query && *s->query) list = NULL;
  size_t cap = 1;
  for (const char *p = list; p && *p; p++) cap += *p == ',';
  s->tables = calloc(cap, sizeof *s->tables);
  if (!s->tables) goto nomem;
  if (!list) {
    if (source_add_table(s, NULL) < 0) goto nomem;
  } else {
    char *copy = strdup(list), *save = NULL;
    if (!copy) goto nomem;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      while (*tok == ' ' || *tok == '\t') tok++;
      size_t n = strlen(tok);
      while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t')) tok[--n] = '\0';
      if (n == 0) continue;
      if (source_add_table(s, tok) < 0) {
        free(copy);
        goto nomem;
      }
    }
    free(copy);
  }
  int rc = conn_jdbc_connect(d, defs, &s->cfg, false, &s->db, err, errlen);
  if (rc != JDBC_OK) {
    conn_ctx_log(ctx, 1, "%s", err);
    source_stop(s);
    return CONN_E_RETRY;
  }
  return CONN_OK;
nomem:
  snprintf(err, errlen, "out of memory");
  source_stop(s);
  return CONN_E_FAIL;
}

static int sqlite_source_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg, char *err,
                               size_t errlen) {
  return source_start(task, &conn_dialect_sqlite, sqlite_source_defs, ctx, cfg, err, errlen);
}

static int postgres_source_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg,
                                 char *err, size_t errlen) {
  return source_start(task, &conn_dialect_postgres, postgres_source_defs, ctx, cfg, err, errlen);
}

/* ---- poll ------------------------------------------------------------------------- */

static bool source_name_eq(const source_task_t *s, const char *a, const char *b) {
  return s->d->ident_nocase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

static int source_open(source_task_t *s, source_table_t *t, bool limit, int64_t lim,
                       char *err, size_t errlen) {
  conn_jdbc_buf_reset(&s->sql);
  conn_jdbc_sql_select(&s->sql, s->d, t->table, s->query, s->mode, s->inc_col, s->ts_col, limit);
  if (s->sql.oom) return JDBC_E_NOMEM;
  conn_jdbc_val_t p[5];
  int n = 0;
  int64_t delay_us = s->delay_ms * 1000;
  switch (s->mode) {
  case JDBC_MODE_INCREMENTING:
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = t->inc};
    break;
  case JDBC_MODE_TIMESTAMP:
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = t->ts_us};
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = delay_us};
    break;
  case JDBC_MODE_TIMESTAMP_INCREMENTING:
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = t->ts_us};
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = t->ts_us};
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = t->inc};
    p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = delay_us};
    break;
  default:
    break;
  }
  if (limit) p[n++] = (conn_jdbc_val_t){.type = JDBC_INT, .i = lim};
  int rc = s->d->query(s->db, s->sql.p, p, n, &t->rows, err, errlen);
  if (rc != JDBC_OK) return rc;
  t->inc_idx = t->ts_idx = -1;
  int nc = s->d->ncols(t->rows);
  for (int i = 0; i < nc; i++) {
    const char *name = s->d->col_name(t->rows, i);
    if (mode_inc(s->mode) && t->inc_idx < 0 && source_name_eq(s, name, s->inc_col))
      t->inc_idx = i;
    if (strcmp(name, CONN_JDBC_TS_COL) == 0) t->ts_idx = i;
  }
  if (mode_inc(s->mode) && t->inc_idx < 0) {
    snprintf(err, errlen, "%s has no column %s (incrementing.column.name)",
             t->table ? t->table : "the query", s->inc_col);
    s->d->rows_close(t->rows);
    t->rows = NULL;
    return JDBC_E_DATA;
  }
  return JDBC_OK;
}

static int64_t val_int(const conn_jdbc_val_t *v) {
  switch (v->type) {
  case JDBC_INT:
  case JDBC_BOOL:
    return v->i;
  case JDBC_DOUBLE:
    return (int64_t)v->d;
  case JDBC_TEXT:
  case JDBC_NUMERIC:
    return strtoll(v->s, NULL, 10);
  default:
    return 0;
  }
}

static int gen_value(yajl_gen g, const conn_jdbc_val_t *v) {
  switch (v->type) {
  case JDBC_INT:
    return yajl_gen_integer(g, v->i);
  case JDBC_BOOL:
    return yajl_gen_bool(g, v->i != 0);
  case JDBC_DOUBLE: {
    if (!isfinite(v->d)) return yajl_gen_null(g);
    /* The shortest text that reads back as the same double (yajl's %.20g
     * writes 0.1 as 0.10000000000000000555), with ".0" kept on integral
     * values so that they stay doubles. */
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v->d);
      if (strtod(buf, NULL) == v->d) break;
    }
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    return yajl_gen_number(g, buf, strlen(buf));
  }
  case JDBC_NUMERIC:
    return yajl_gen_number(g, v->s, v->len);
  case JDBC_TEXT:
    return yajl_gen_string(g, (const unsigned char *)v->s, v->len);
  default:
    return yajl_gen_null(g);
  }
}

/* Turns the current row into a record of out and advances t's offset. */
static int source_row(source_task_t *s, source_table_t *t, conn_batch_t *out) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return JDBC_E_NOMEM;
  int nc = s->d->ncols(t->rows);
  int st = yajl_gen_map_open(g);
  for (int i = 0; i < nc && st == yajl_gen_status_ok; i++) {
    conn_jdbc_val_t v;
    s->d->col_value(t->rows, i, &v);
    if (i == t->inc_idx) t->inc = val_int(&v);
    if (i == t->ts_idx) {
      t->ts_us = val_int(&v);
      continue;
    }
    const char *name = s->d->col_name(t->rows, i);
    st = yajl_gen_string(g, (const unsigned char *)name, strlen(name));
    if (st == yajl_gen_status_ok) st = gen_value(g, &v);
  }
  if (st == yajl_gen_status_ok) st = yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  int rc = JDBC_E_NOMEM;
  conn_record_t *r = NULL;
  if (st == yajl_gen_status_ok && yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok &&
      (r = conn_batch_add(out)) != NULL) {
    char *off = source_offset_json(s, t);
    if (off && conn_record_set_topic(r, t->topic) == 0 &&
        conn_record_set_value(r, buf, (int32_t)len) == 0 &&
        (r->source_partition = strdup(t->partition)) != NULL) {
      r->source_offset = off;
      off = NULL;
      rc = JDBC_OK;
    }
    free(off);
  }
  yajl_gen_free(g);
  if (rc != JDBC_OK && r) {
    conn_record_clear(r);
    out->count--;
  }
  return rc;
}

static int source_fail(source_task_t *s, source_table_t *t, int rc, char *err, size_t errlen) {
  s->d->rows_close(t->rows);
  t->rows = NULL;
  if (rc == JDBC_E_DATA) {
    /* A table dropped or a column renamed: the task fails with the
     * database's words; a restart through REST tries again. */
    return CONN_E_FAIL;
  }
  if (rc == JDBC_E_NOMEM) {
    snprintf(err, errlen, "out of memory");
    return CONN_E_FAIL;
  }
  conn_ctx_log(s->ctx, 1, "%s; reconnecting", err);
  s->d->close(s->db);
  s->db = NULL;
  return CONN_E_RETRY;
}

static int source_poll(void *task, conn_batch_t *out, size_t max, char *err, size_t errlen) {
  source_task_t *s = task;
  int rc = conn_jdbc_connect(s->d, s->defs, &s->cfg, false, &s->db, err, errlen);
  if (rc != JDBC_OK) return rc == JDBC_E_NOMEM ? CONN_E_FAIL : CONN_E_RETRY;
  int64_t now = source_now_ms();
  source_table_t *t = NULL;
  for (size_t i = 0; i < s->ntables; i++) {
    source_table_t *c = &s->tables[(s->next + i) % s->ntables];
    if (c->due_ms <= now) {
      t = c;
      s->next = (s->next + i + 1) % s->ntables;
      break;
    }
  }
  if (!t) return 0;
  size_t want = max < (size_t)s->max_rows ? max : (size_t)s->max_rows;
  if (want == 0) return 0;
  bool paged = mode_inc(s->mode);
  if (!t->rows) {
    rc = source_open(s, t, paged, (int64_t)want, err, errlen);
    if (rc != JDBC_OK) return source_fail(s, t, rc, err, errlen);
  }
  size_t added = 0;
  bool done = false;
  while (added < want) {
    rc = s->d->next(t->rows, err, errlen);
    if (rc < 0) {
      /* Records already added carry their own offsets: hand them over;
       * the next poll re-opens from the last one. */
      if (added > 0) {
        s->d->rows_close(t->rows);
        t->rows = NULL;
        return (int)added;
      }
      return source_fail(s, t, rc, err, errlen);
    }
    if (rc == 0) {
      done = true;
      break;
    }
    rc = source_row(s, t, out);
    if (rc != JDBC_OK) return source_fail(s, t, rc, err, errlen);
    added++;
  }
  if (paged) {
    s->d->rows_close(t->rows);
    t->rows = NULL;
    if (added < want) t->due_ms = now + s->poll_ms;
  } else if (done) {
    s->d->rows_close(t->rows);
    t->rows = NULL;
    t->due_ms = now + s->poll_ms;
  }
  return (int)added;
}


/* KIP-875: an offset PATCHed in must be one the task can resume from
 * (source_load_offset would otherwise ignore it and start over). */
static int source_alter_offsets(const conn_config_t *cfg, const char *partition_json,
                                const char *offset_json, char *msg, size_t len) {
  if (!partition_json) return 0;
  yajl_val part = conn_json_parse(NULL, partition_json, strlen(partition_json), NULL, 0);
  yajl_val off = offset_json ? conn_json_parse(NULL, offset_json, strlen(offset_json), NULL, 0)
                             : NULL;
  yajl_val table = conn_json_member(part, "table"), query = conn_json_member(part, "query");
  const char *m = conn_config_get(cfg, "mode");
  conn_jdbc_mode_t mode = source_mode(m ? m : "bulk");
  int rc = -1;
  if (!(table && YAJL_IS_STRING(table)) && !(query && YAJL_IS_STRING(query))) {
    snprintf(msg, len, "Partition objects should be {\"table\": \"<name>\"} (query mode: "
             "{\"query\": \"query\"})");
    goto out;
  }
  if (!offset_json) {
    rc = 0;
    goto out;
  }
  static const char *const keys[] = {"incrementing", "timestamp", "timestamp_nanos"};
  if (!off || !YAJL_IS_OBJECT(off)) {
    snprintf(msg, len, "Offset objects should either be null or a JSON object");
    goto out;
  }
  for (size_t i = 0; i < off->u.object.len; i++) {
    const char *k = off->u.object.keys[i];
    if (strcmp(k, keys[0]) && strcmp(k, keys[1]) && strcmp(k, keys[2])) {
      snprintf(msg, len, "Offset objects of this connector have only the keys incrementing, "
               "timestamp and timestamp_nanos, not '%s'", k);
      goto out;
    }
    if (!YAJL_IS_INTEGER(off->u.object.values[i])) {
      snprintf(msg, len, "The value for the '%s' key in the offset is expected to be an integer",
               k);
      goto out;
    }
  }
  yajl_val nanos = conn_json_member(off, "timestamp_nanos");
  if (mode_inc(mode) && !conn_json_member(off, "incrementing"))
    snprintf(msg, len, "mode %s: the offset needs the key 'incrementing' (the last id read)",
             m);
  else if (mode_ts(mode) && !conn_json_member(off, "timestamp"))
    snprintf(msg, len, "mode %s: the offset needs the key 'timestamp' (milliseconds since the "
             "epoch)", m);
  else if (nanos && (YAJL_GET_INTEGER(nanos) < 0 || YAJL_GET_INTEGER(nanos) > 999999999))
    snprintf(msg, len, "The value for the 'timestamp_nanos' key in the offset should be "
             "between 0 and 999999999");
  else
    rc = 0;
out:
  yajl_tree_free(part);
  yajl_tree_free(off);
  return rc;
}

const conn_plugin_t conn_sqlite_source_plugin = {
    .name = "sqlite-source",
    .kind = CONN_SOURCE,
    .version = "1.0",
    .defs = sqlite_source_defs,
    .validate = source_validate,
    .task_configs = source_task_configs,
    .task_size = sizeof(source_task_t),
    .start = sqlite_source_start,
    .stop = source_stop,
    .poll = source_poll,
    .alter_offsets = source_alter_offsets,
};

const conn_plugin_t conn_postgres_source_plugin = {
    .name = "postgres-source",
    .kind = CONN_SOURCE,
    .version = "1.0",
    .defs = postgres_source_defs,
    .validate = source_validate,
    .task_configs = source_task_configs,
    .task_size = sizeof(source_task_t),
    .start = postgres_source_start,
    .stop = source_stop,
    .poll = source_poll,
    .alter_offsets = source_alter_offsets,
};
