/*
 * conn_jdbc_sink_offsets.c: KIP-875 for the sqlite-sink and postgres-sink,
 * which keep their consumed offsets in the target database
 * (__runnel_sink_offsets, written in each put's transaction; see
 * conn_jdbc_sink.c) and resume from that table at start, whatever the
 * group offsets say. So GET /connectors/{name}/offsets reads the table,
 * and PATCH / DELETE change its rows, on a connection of their own made
 * with the connector's config (the connector is STOPPED: no task writes
 * meanwhile).
 *
 * A row holds the last offset written; Kafka's sink offset ("kafka_offset")
 * is the next one to read: row = kafka_offset - 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "conn_jdbc_int.h"

const char *const conn_jdbc_offsets_cols[4] = {"connector", "topic", "partition", "offset"};
const conn_jdbc_type_t conn_jdbc_offsets_types[4] = {JDBC_TEXT, JDBC_TEXT, JDBC_INT, JDBC_INT};

/* Connects and makes sure the table exists (as the sink's start does). */
static int offs_open(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                     const conn_config_t *cfg, conn_jdbc_db_t **db, conn_jdbc_buf_t *sql,
                     char *msg, size_t len) {
  *db = NULL;
  char err[512] = "";
  int rc = conn_jdbc_connect(d, defs, cfg, true, db, err, sizeof err);
  conn_jdbc_shape_t shape = {CONN_JDBC_OFFSETS_TABLE, conn_jdbc_offsets_cols, 4, 3};
  if (rc == JDBC_OK) {
    conn_jdbc_sql_create(sql, d, &shape, conn_jdbc_offsets_types);
    rc = sql->oom ? JDBC_E_NOMEM : d->exec(*db, sql->p, NULL, 0, false, NULL, err, sizeof err);
  }
  if (rc != JDBC_OK) {
    snprintf(msg, len, "cannot reach the connector's database: %s",
             rc == JDBC_E_NOMEM ? "out of memory" : err);
    if (*db) d->close(*db);
    *db = NULL;
    return -1;
  }
  return 0;
}

int conn_jdbc_sink_alter_offsets(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                                 const conn_config_t *cfg, const char *partition_json,
                                 const char *offset_json, char *msg, size_t len) {
  const char *name = conn_config_get(cfg, "name");
  yajl_val part = NULL, off = NULL;
  const char *topic = NULL;
  int64_t pn = 0, next = 0;
  if (partition_json) { /* the framework checked the shape */
    part = conn_json_parse(NULL, partition_json, strlen(partition_json), NULL, 0);
    yajl_val t = conn_json_member(part, "kafka_topic"), p = conn_json_member(part, "kafka_partition");
    if (!t || !YAJL_IS_STRING(t) || !p || !YAJL_IS_INTEGER(p)) {
      snprintf(msg, len, "a sink connector's partition is {\"kafka_topic\": string, "
               "\"kafka_partition\": integer}");
      yajl_tree_free(part);
      return -1;
    }
    topic = t->u.string;
    pn = YAJL_GET_INTEGER(p);
  }
  if (offset_json) {
    off = conn_json_parse(NULL, offset_json, strlen(offset_json), NULL, 0);
    yajl_val o = conn_json_member(off, "kafka_offset");
    if (!o || !YAJL_IS_INTEGER(o) || YAJL_GET_INTEGER(o) < 0) {
      snprintf(msg, len, "a sink connector's offset is {\"kafka_offset\": integer >= 0} or null");
      yajl_tree_free(part);
      yajl_tree_free(off);
      return -1;
    }
    next = YAJL_GET_INTEGER(o);
  }
  conn_jdbc_db_t *db;
  conn_jdbc_buf_t sql;
  conn_jdbc_buf_init(&sql);
  int ret = offs_open(d, defs, cfg, &db, &sql, msg, len);
  if (ret == 0) {
    conn_jdbc_val_t p[4] = {
        {.type = JDBC_TEXT, .s = name, .len = strlen(name)},
        {.type = JDBC_TEXT, .s = topic, .len = topic ? strlen(topic) : 0},
        {.type = JDBC_INT, .i = pn},
        {.type = JDBC_INT, .i = next - 1},
    };
    conn_jdbc_buf_reset(&sql);
    int np;
    if (offset_json) { /* upsert the row */
      conn_jdbc_shape_t shape = {CONN_JDBC_OFFSETS_TABLE, conn_jdbc_offsets_cols, 4, 3};
      conn_jdbc_sql_insert(&sql, d, &shape, 1, true);
      np = 4;
    } else { /* delete the partition's row, or all the connector's rows */
      conn_jdbc_buf_adds(&sql, "DELETE FROM ");
      conn_jdbc_sql_ident(&sql, CONN_JDBC_OFFSETS_TABLE);
      conn_jdbc_buf_adds(&sql, " WHERE \"connector\" = ");
      conn_jdbc_sql_param(&sql, d, 1);
      np = 1;
      if (topic) {
        conn_jdbc_buf_adds(&sql, " AND \"topic\" = ");
        conn_jdbc_sql_param(&sql, d, 2);
        conn_jdbc_buf_adds(&sql, " AND \"partition\" = ");
        conn_jdbc_sql_param(&sql, d, 3);
        np = 3;
      }
    }
    char err[512] = "";
    int rc = sql.oom ? JDBC_E_NOMEM : d->exec(db, sql.p, p, np, false, NULL, err, sizeof err);
    if (rc != JDBC_OK) {
      snprintf(msg, len, "cannot change %s in the connector's database: %s",
               CONN_JDBC_OFFSETS_TABLE, rc == JDBC_E_NOMEM ? "out of memory" : err);
      ret = -1;
    }
    d->close(db);
  }
  conn_jdbc_buf_free(&sql);
  yajl_tree_free(part);
  yajl_tree_free(off);
  return ret;
}

static void offs_str(yajl_gen g, const char *s, size_t n) {
  yajl_gen_string(g, (const unsigned char *)s, n);
}

int conn_jdbc_sink_read_offsets(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                                const conn_config_t *cfg, char **json, char *msg, size_t len) {
  *json = NULL;
  const char *name = conn_config_get(cfg, "name");
  conn_jdbc_db_t *db;
  conn_jdbc_buf_t sql;
  conn_jdbc_buf_init(&sql);
  if (offs_open(d, defs, cfg, &db, &sql, msg, len) != 0) {
    conn_jdbc_buf_free(&sql);
    return -1;
  }
  conn_jdbc_buf_reset(&sql);
  conn_jdbc_buf_adds(&sql, "SELECT \"topic\", \"partition\", \"offset\" FROM ");
  conn_jdbc_sql_ident(&sql, CONN_JDBC_OFFSETS_TABLE);
  conn_jdbc_buf_adds(&sql, " WHERE \"connector\" = ");
  conn_jdbc_sql_param(&sql, d, 1);
  conn_jdbc_buf_adds(&sql, " ORDER BY \"topic\", \"partition\"");
  conn_jdbc_val_t p = {.type = JDBC_TEXT, .s = name, .len = strlen(name)};
  conn_jdbc_rows_t *rows = NULL;
  char err[512] = "";
  int rc = sql.oom ? JDBC_E_NOMEM : d->query(db, sql.p, &p, 1, &rows, err, sizeof err);
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g) yajl_gen_array_open(g);
  while (rc == JDBC_OK && g && (rc = d->next(rows, err, sizeof err)) == 1) {
    conn_jdbc_val_t t, pa, o;
    d->col_value(rows, 0, &t);
    d->col_value(rows, 1, &pa);
    d->col_value(rows, 2, &o);
    rc = JDBC_OK;
    if (t.type != JDBC_TEXT || pa.type != JDBC_INT || o.type != JDBC_INT) continue;
    yajl_gen_map_open(g);
    offs_str(g, "partition", 9);
    yajl_gen_map_open(g);
    offs_str(g, "kafka_topic", 11);
    offs_str(g, t.s, t.len);
    offs_str(g, "kafka_partition", 15);
    yajl_gen_integer(g, pa.i);
    yajl_gen_map_close(g);
    offs_str(g, "offset", 6);
    yajl_gen_map_open(g);
    offs_str(g, "kafka_offset", 12);
    yajl_gen_integer(g, o.i + 1);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
  }
  if (rows) d->rows_close(rows);
  d->close(db);
  conn_jdbc_buf_free(&sql);
  int ret = 0;
  if (rc < 0 || !g) {
    snprintf(msg, len, "cannot read %s in the connector's database: %s", CONN_JDBC_OFFSETS_TABLE,
             rc == JDBC_E_NOMEM || !g ? "out of memory" : err);
    ret = -1;
  } else {
    yajl_gen_array_close(g);
    *json = conn_json_take(g, NULL);
    g = NULL;
    if (!*json) {
      snprintf(msg, len, "out of memory");
      ret = -1;
    }
  }
  if (g) yajl_gen_free(g);
  return ret;
}
