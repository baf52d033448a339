/* Tests for the sqlite-source and sqlite-sink connectors
 * (connectors/conn_jdbc_source.c, conn_jdbc_sink.c over
 * conn_dialect_sqlite.c), driven through their plugin callbacks the way
 * the framework drives them, against real SQLite files.
 *
 * The framework's side of connector.h (conn_ctx_*) is played by
 * conn_test_ctx.h: it records seeks, reports and offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "conn_jdbc_int.h"
#include "conn_test_ctx.h"
#include "scratch_util.h"

/* ---- helpers ------------------------------------------------------------------ */

typedef struct {
  char *dir;
  char db[512];
  char url[600];
  conn_ctx_t ctx;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->dir = scratch_mkdtemp("conn_jdbc_sqlite");
  snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
  snprintf(f->url, sizeof f->url, "sqlite://%s", f->db);
  test_ctx_init(&f->ctx);
  f->ctx.name = "sink1";
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  test_ctx_free(&f->ctx);
  scratch_rmrf(f->dir);
  free(f);
  return 0;
}

/* cfg from "k=v" pairs, validated against the plugin like the framework
 * does (per-key, then cross-key). */
static void mkcfg(const conn_plugin_t *p, conn_config_t *cfg, const char *url, ...) {
  conn_config_init(cfg);
  assert_int_equal(conn_config_set(cfg, "connection.url", url), 0);
  va_list ap;
  va_start(ap, url);
  for (const char *kv; (kv = va_arg(ap, const char *)) != NULL;) {
    const char *eq = strchr(kv, '=');
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    assert_int_equal(conn_config_set(cfg, key, eq + 1), 0);
  }
  va_end(ap);
  char err[512] = "";
  assert_int_equal(conn_config_validate(p->defs, cfg, NULL, NULL, err, sizeof err), 0);
  const char *key = NULL;
  if (p->validate) assert_int_equal(p->validate(cfg, &key, err, sizeof err), 0);
}

static void exec_sql(const char *db, const char *sql) {
  sqlite3 *h;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  char *msg = NULL;
  int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fail_msg("%s: %s", sql, msg);
  sqlite3_close(h);
}

/* The rows of a query as "a|b\n" lines. */
static char *dump(const char *db, const char *sql) {
  sqlite3 *h;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s", sqlite3_errmsg(h));
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  conn_jdbc_buf_adds(&b, "");
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      const unsigned char *t = sqlite3_column_text(st, i);
      conn_jdbc_buf_addf(&b, "%s%s", i ? "|" : "", t ? (const char *)t : "NULL");
    }
    conn_jdbc_buf_adds(&b, "\n");
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return b.p;
}

static void assert_dump(const char *db, const char *sql, const char *want) {
  char *got = dump(db, sql);
  assert_string_equal(got, want);
  free(got);
}

/* Sink records: "key|value" specs, value "-" for a tombstone, key "" for
 * none; offsets from first. */
static conn_record_t *mkrecs(const char *topic, int64_t first, size_t n, const char **specs) {
  conn_record_t *r = calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) {
    conn_record_init(&r[i]);
    assert_int_equal(conn_record_set_topic(&r[i], topic), 0);
    r[i].partition = 0;
    r[i].offset = first + (int64_t)i;
    const char *bar = strchr(specs[i], '|');
    if (bar > specs[i]) conn_record_set_key(&r[i], specs[i], (int32_t)(bar - specs[i]));
    if (strcmp(bar + 1, "-") != 0)
      conn_record_set_value(&r[i], bar + 1, (int32_t)strlen(bar + 1));
  }
  return r;
}

static void freerecs(conn_record_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) conn_record_clear(&r[i]);
  free(r);
}

static int put(const conn_plugin_t *p, void *task, const char *topic, int64_t first, size_t n,
               const char **specs, char *err, size_t errlen) {
  conn_record_t *r = mkrecs(topic, first, n, specs);
  int rc = p->put(task, r, n, err, errlen);
  freerecs(r, n);
  return rc;
}

/* ---- sink ------------------------------------------------------------------------- */

static void test_sink_upsert_delete_and_offsets(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "insert.mode=upsert", "pk.mode=record_key", "auto.create=true",
        "delete.enabled=true", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  assert_string_equal(f->ctx.seeks, "");
  const char *b1[] = {"{\"id\":1}|{\"name\":\"a\",\"n\":1,\"ok\":true,\"o\":{\"x\":[1]}}",
                      "{\"id\":2}|{\"name\":\"b\",\"n\":2,\"ok\":false,\"o\":null}",
                      "{\"id\":1}|{\"name\":\"a2\",\"n\":3,\"ok\":true,\"o\":null}"};
  assert_int_equal(put(p, task, "users", 10, 3, b1, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT id, name, n, ok, o FROM users ORDER BY id",
              "1|a2|3|1|NULL\n2|b|2|0|NULL\n");
  /* A tombstone deletes; a second upsert of the same key in one batch
   * keeps the last. */
  const char *b2[] = {"{\"id\":2}|-", "{\"id\":3}|{\"name\":\"c\",\"n\":4,\"ok\":true,"
                                      "\"o\":{\"k\":\"v\"}}"};
  assert_int_equal(put(p, task, "users", 13, 2, b2, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT id, name, n, o FROM users ORDER BY id",
              "1|a2|3|NULL\n3|c|4|{\"k\":\"v\"}\n");
  assert_dump(f->db, "SELECT connector, topic, partition, \"offset\" FROM __runnel_sink_offsets",
              "sink1|users|0|14\n");
  assert_int_equal(f->ctx.reports, 0);
  p->stop(task);
  /* A restart resumes after the stored offset. */
  memset(task, 0, p->task_size);
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  assert_string_equal(f->ctx.seeks, "users/0@15 ");
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_insert_bad_rows_reported(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  exec_sql(f->db, "CREATE TABLE ev (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "pk.mode=record_value", "pk.fields=id", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  /* Row 2 repeats a key (constraint), row 3 breaks NOT NULL, row 4 is not
   * an object, row 5 has a field without a column: only those are
   * reported; the others commit. */
  const char *b[] = {"|{\"id\":1,\"v\":\"a\"}", "|{\"id\":2,\"v\":\"b\"}", "|{\"id\":1,\"v\":\"dup\"}",
                     "|{\"id\":3,\"v\":null}", "|[1]", "|{\"id\":5,\"v\":\"e\",\"extra\":1}",
                     "|{\"id\":6,\"v\":\"f\"}"};
  assert_int_equal(put(p, task, "ev", 100, 7, b, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT id, v FROM ev ORDER BY id", "1|a\n2|b\n6|f\n");
  assert_int_equal(f->ctx.reports, 4);
  assert_non_null(strstr(f->ctx.report_log, "102:sqlite"));
  assert_non_null(strstr(f->ctx.report_log, "UNIQUE constraint failed"));
  assert_non_null(strstr(f->ctx.report_log, "103:sqlite"));
  assert_non_null(strstr(f->ctx.report_log, "NOT NULL constraint failed"));
  assert_non_null(strstr(f->ctx.report_log, "104:the value is not a JSON object"));
  assert_non_null(strstr(f->ctx.report_log, "105:table \"ev\" has no column \"extra\" and "
                                         "auto.evolve is false"));
  assert_dump(f->db, "SELECT \"offset\" FROM __runnel_sink_offsets", "106\n");

  /* errors.tolerance=none: the put fails and writes nothing, offsets
   * included. */
  f->ctx.fail_reports = true;
  const char *c[] = {"|{\"id\":7,\"v\":\"g\"}", "|{\"id\":2,\"v\":\"dup\"}"};
  assert_int_equal(put(p, task, "ev", 107, 2, c, err, sizeof err), CONN_E_FAIL);
  assert_non_null(strstr(err, "ev-0 offset 108"));
  p->stop(task);
  assert_dump(f->db, "SELECT id FROM ev ORDER BY id", "1\n2\n6\n");
  assert_dump(f->db, "SELECT \"offset\" FROM __runnel_sink_offsets", "106\n");
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_weird_table_name_and_evolve(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "auto.create=true", "auto.evolve=true",
        "table.name.format=x\"; DROP TABLE keep; --${topic}'s", NULL);
  exec_sql(f->db, "CREATE TABLE keep (a)");
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  const char *b[] = {"|{\"a b\":1}", "|{\"a b\":2,\"c\\\"d\":\"x\"}"};
  assert_int_equal(put(p, task, "t\"o", 0, 2, b, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name",
              "__runnel_sink_offsets\nkeep\nx\"; DROP TABLE keep; --t\"o's\n");
  assert_dump(f->db, "SELECT * FROM \"x\"\"; DROP TABLE keep; --t\"\"o's\" ORDER BY 1",
              "1|NULL\n2|x\n");
  assert_int_equal(f->ctx.reports, 0);
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_missing_table_fails(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  const char *b[] = {"|{\"a\":1}"};
  assert_int_equal(put(p, task, "nope", 0, 1, b, err, sizeof err), CONN_E_FAIL);
  assert_string_equal(err, "table \"nope\" does not exist and auto.create is false");
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_busy_database_retries(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "auto.create=true", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  const char *b[] = {"|{\"a\":1}", "|{\"a\":2}"};
  assert_int_equal(put(p, task, "t", 0, 1, b, err, sizeof err), CONN_OK);
  /* Another writer holds the database: retry, nothing half-written. */
  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(put(p, task, "t", 1, 1, b + 1, err, sizeof err), CONN_E_RETRY);
  assert_non_null(strstr(err, "locked"));
  assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(h);
  /* The framework calls again with the same records. */
  assert_int_equal(put(p, task, "t", 1, 1, b + 1, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT a FROM t", "1\n2\n");
  assert_dump(f->db, "SELECT \"offset\" FROM __runnel_sink_offsets", "1\n");
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_update_mode_and_kafka_keys(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  exec_sql(f->db, "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER, note TEXT);"
                  "INSERT INTO acct VALUES (1, 10, 'a'), (2, 20, 'b');");
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "insert.mode=update", "pk.mode=record_key", "pk.fields=id", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  /* A primitive key names the row; a key without a row changes nothing. */
  const char *b[] = {"2|{\"bal\":21}", "3|{\"bal\":30,\"note\":\"new\"}", "1|{\"note\":\"z\"}"};
  assert_int_equal(put(p, task, "acct", 0, 3, b, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT * FROM acct ORDER BY id", "1|10|z\n2|21|b\n");
  p->stop(task);
  conn_config_free(&cfg);

  /* pk.mode=kafka: the record's coordinates are the key (upsert
   * idempotent on redelivery). */
  mkcfg(p, &cfg, f->url, "insert.mode=upsert", "pk.mode=kafka", "auto.create=true", NULL);
  memset(task, 0, p->task_size);
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  const char *k[] = {"|{\"v\":\"x\"}", "|{\"v\":\"y\"}"};
  assert_int_equal(put(p, task, "ev", 7, 2, k, err, sizeof err), CONN_OK);
  assert_int_equal(put(p, task, "ev", 7, 2, k, err, sizeof err), CONN_OK);
  assert_dump(f->db, "SELECT * FROM ev ORDER BY 3", "ev|0|7|x\nev|0|8|y\n");
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_sink_validation(void **state) {
  (void)state;
  const conn_plugin_t *p = &conn_sqlite_sink_plugin;
  conn_config_t cfg;
  conn_config_init(&cfg);
  char err[512] = "";
  conn_config_set(&cfg, "connection.url", "sqlite://host/x.db");
  assert_true(conn_config_validate(p->defs, &cfg, NULL, NULL, err, sizeof err) > 0);
  assert_non_null(strstr(err, "connection.url"));
  assert_non_null(strstr(err, "no host"));
  conn_config_set(&cfg, "connection.url", "sqlite:x.db");
  conn_config_set(&cfg, "batch.size", "many");
  assert_true(conn_config_validate(p->defs, &cfg, NULL, NULL, err, sizeof err) > 0);
  assert_non_null(strstr(err, "batch.size"));
  conn_config_unset(&cfg, "batch.size");
  conn_config_set(&cfg, "insert.mode", "upsert");
  assert_int_equal(conn_config_validate(p->defs, &cfg, NULL, NULL, err, sizeof err), 0);
  const char *key = NULL;
  assert_int_equal(p->validate(&cfg, &key, err, sizeof err), -1);
  assert_string_equal(key, "pk.mode");
  conn_config_set(&cfg, "pk.mode", "record_value");
  conn_config_set(&cfg, "delete.enabled", "true");
  assert_int_equal(p->validate(&cfg, &key, err, sizeof err), -1);
  assert_string_equal(key, "delete.enabled");
  conn_config_free(&cfg);
  /* The source: a missing required key, a missing column name. */
  p = &conn_sqlite_source_plugin;
  conn_config_init(&cfg);
  conn_config_set(&cfg, "connection.url", "sqlite:x.db");
  conn_config_set(&cfg, "mode", "incrementing");
  conn_config_set(&cfg, "table.whitelist", "a");
  assert_true(conn_config_validate(p->defs, &cfg, NULL, NULL, err, sizeof err) > 0);
  assert_non_null(strstr(err, "topic.prefix"));
  conn_config_set(&cfg, "topic.prefix", "db-");
  assert_int_equal(conn_config_validate(p->defs, &cfg, NULL, NULL, err, sizeof err), 0);
  assert_int_equal(p->validate(&cfg, &key, err, sizeof err), -1);
  assert_string_equal(key, "incrementing.column.name");
  conn_config_free(&cfg);
}

/* ---- source ------------------------------------------------------------------------- */

/* Polls once; returns the records as "topic offset value\n" lines. */
static char *poll_all(const conn_plugin_t *p, void *task, size_t max, int *n) {
  conn_batch_t b;
  conn_batch_init(&b);
  char err[512] = "";
  *n = p->poll(task, &b, max, err, sizeof err);
  if (*n < 0) fail_msg("poll: %s", err);
  conn_jdbc_buf_t out;
  conn_jdbc_buf_init(&out);
  conn_jdbc_buf_adds(&out, "");
  for (size_t i = 0; i < b.count; i++) {
    conn_record_t *r = &b.records[i];
    conn_jdbc_buf_addf(&out, "%s %s %s %.*s\n", r->topic, r->source_partition, r->source_offset,
                       (int)r->value_len, (const char *)r->value);
  }
  conn_batch_free(&b);
  return out.p;
}

static void test_source_incrementing_resume(void **state) {
  fixture_t *f = *state;
  exec_sql(f->db, "CREATE TABLE \"we\"\"ird\" (id INTEGER PRIMARY KEY, name TEXT, score REAL, "
                  "ok BOOLEAN, blobby NUMERIC);"
                  "INSERT INTO \"we\"\"ird\" VALUES (1, 'a', 1.5, 1, NULL), (2, 'b\"q', 2, 0, 7),"
                  "(3, 'c', NULL, NULL, NULL);");
  const conn_plugin_t *p = &conn_sqlite_source_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "mode=incrementing", "incrementing.column.name=id",
        "table.whitelist=we\"ird", "topic.prefix=db-", "batch.max.rows=2", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  int n;
  char *got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 2);
  assert_string_equal(got,
                      "db-we\"ird {\"table\":\"we\\\"ird\"} {\"incrementing\":1} "
                      "{\"id\":1,\"name\":\"a\",\"score\":1.5,\"ok\":true,\"blobby\":null}\n"
                      "db-we\"ird {\"table\":\"we\\\"ird\"} {\"incrementing\":2} "
                      "{\"id\":2,\"name\":\"b\\\"q\",\"score\":2.0,\"ok\":false,\"blobby\":7}\n");
  free(got);
  got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 1);
  assert_non_null(strstr(got, "{\"incrementing\":3} {\"id\":3,\"name\":\"c\",\"score\":null"));
  free(got);
  /* Nothing new, and the table waits poll.interval.ms. */
  got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 0);
  free(got);
  p->stop(task);

  /* A restart resumes from the committed offset. */
  exec_sql(f->db, "INSERT INTO \"we\"\"ird\" (id, name) VALUES (4, 'd')");
  conn_config_set(&f->ctx.offsets, "{\"table\":\"we\\\"ird\"}", "{\"incrementing\":2}");
  memset(task, 0, p->task_size);
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 2);
  assert_non_null(strstr(got, "{\"id\":3,"));
  assert_non_null(strstr(got, "{\"id\":4,"));
  assert_null(strstr(got, "{\"id\":2,"));
  free(got);
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_source_timestamp_modes(void **state) {
  fixture_t *f = *state;
  exec_sql(f->db, "CREATE TABLE t (id INTEGER, ts TEXT);"
                  "INSERT INTO t VALUES (1, '2026-01-01 00:00:00.000'), "
                  "(2, '2026-01-01 00:00:00.000'), (3, '2026-01-01 00:00:01.500'), "
                  "(4, '2999-01-01 00:00:00');");
  const conn_plugin_t *p = &conn_sqlite_source_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "mode=timestamp+incrementing", "incrementing.column.name=id",
        "timestamp.column.name=ts", "table.whitelist=t", "topic.prefix=", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  int n;
  char *got = poll_all(p, task, 100, &n);
  /* The row from the future waits; the timestamp column is in the value,
   * the helper column is not. */
  assert_int_equal(n, 3);
  assert_string_equal(
      got,
      "t {\"table\":\"t\"} {\"timestamp\":1767225600000,\"timestamp_nanos\":0,\"incrementing\":1} "
      "{\"id\":1,\"ts\":\"2026-01-01 00:00:00.000\"}\n"
      "t {\"table\":\"t\"} {\"timestamp\":1767225600000,\"timestamp_nanos\":0,\"incrementing\":2} "
      "{\"id\":2,\"ts\":\"2026-01-01 00:00:00.000\"}\n"
      "t {\"table\":\"t\"} {\"timestamp\":1767225601500,\"timestamp_nanos\":500000000,"
      "\"incrementing\":3} {\"id\":3,\"ts\":\"2026-01-01 00:00:01.500\"}\n");
  free(got);
  p->stop(task);
  /* Resume between two rows of one timestamp: the second comes again. */
  conn_config_set(&f->ctx.offsets, "{\"table\":\"t\"}",
                  "{\"timestamp\":1767225600000,\"timestamp_nanos\":0,\"incrementing\":1}");
  memset(task, 0, p->task_size);
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 2);
  assert_non_null(strstr(got, "{\"id\":2,"));
  assert_non_null(strstr(got, "{\"id\":3,"));
  free(got);
  p->stop(task);
  conn_config_free(&cfg);

  /* timestamp alone, with integer milliseconds. */
  exec_sql(f->db, "CREATE TABLE m (v TEXT, at INTEGER);"
                  "INSERT INTO m VALUES ('x', 1000), ('y', 2000);");
  mkcfg(p, &cfg, f->url, "mode=timestamp", "timestamp.column.name=at", "table.whitelist=m",
        "topic.prefix=p.", NULL);
  conn_config_set(&f->ctx.offsets, "{\"table\":\"m\"}", "{\"timestamp\":1000}");
  memset(task, 0, p->task_size);
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  got = poll_all(p, task, 100, &n);
  assert_string_equal(got, "p.m {\"table\":\"m\"} {\"timestamp\":2000,\"timestamp_nanos\":0} "
                           "{\"v\":\"y\",\"at\":2000}\n");
  free(got);
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_source_timestamp_delay(void **state) {
  fixture_t *f = *state;
  /* One row a minute old, one a second old: with a 30 s delay only the
   * first is visible. */
  exec_sql(f->db, "CREATE TABLE d (id INTEGER, at TEXT);"
                  "INSERT INTO d VALUES (1, strftime('%Y-%m-%d %H:%M:%f', 'now', '-60 seconds')),"
                  "(2, strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds'));");
  const conn_plugin_t *p = &conn_sqlite_source_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "mode=timestamp", "timestamp.column.name=at", "table.whitelist=d",
        "topic.prefix=", "timestamp.delay.interval.ms=30000", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  int n;
  char *got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 1);
  assert_non_null(strstr(got, "{\"id\":1,"));
  free(got);
  p->stop(task);
  free(task);
  conn_config_free(&cfg);
}

static void test_source_bulk_query_and_tasks(void **state) {
  fixture_t *f = *state;
  exec_sql(f->db, "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1), (2), (3);"
                  "CREATE TABLE b (y TEXT); CREATE TABLE c (z TEXT);");
  const conn_plugin_t *p = &conn_sqlite_source_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "mode=bulk", "query=SELECT x * 10 AS x10 FROM a WHERE x > 1",
        "topic.prefix=q", "batch.max.rows=1", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_OK);
  int n;
  char *got = poll_all(p, task, 100, &n);
  assert_string_equal(got, "q {\"query\":\"query\"} {} {\"x10\":20}\n");
  free(got);
  got = poll_all(p, task, 100, &n);
  assert_string_equal(got, "q {\"query\":\"query\"} {} {\"x10\":30}\n");
  free(got);
  got = poll_all(p, task, 100, &n);
  assert_int_equal(n, 0);
  free(got);
  p->stop(task);
  free(task);
  conn_config_free(&cfg);

  /* Three tables over two tasks: contiguous groups. */
  mkcfg(p, &cfg, f->url, "mode=bulk", "table.whitelist=a, b,c", "topic.prefix=", NULL);
  conn_config_t *tc = NULL;
  size_t nt = 0;
  assert_int_equal(p->task_configs(&cfg, 2, &tc, &nt, err, sizeof err), 0);
  assert_int_equal(nt, 2);
  assert_string_equal(conn_config_get(&tc[0], "tables"), "a,b");
  assert_string_equal(conn_config_get(&tc[1], "tables"), "c");
  for (size_t i = 0; i < nt; i++) conn_config_free(&tc[i]);
  free(tc);
  conn_config_free(&cfg);
}

static void test_source_missing_database_retries(void **state) {
  fixture_t *f = *state;
  const conn_plugin_t *p = &conn_sqlite_source_plugin;
  conn_config_t cfg;
  mkcfg(p, &cfg, f->url, "mode=bulk", "table.whitelist=a", "topic.prefix=", NULL);
  void *task = calloc(1, p->task_size);
  char err[512] = "";
  assert_int_equal(p->start(task, &f->ctx, &cfg, err, sizeof err), CONN_E_RETRY);
  assert_non_null(strstr(err, "cannot open"));
  assert_non_null(strstr(err, f->db));
  free(task);
  conn_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sink_upsert_delete_and_offsets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_insert_bad_rows_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_weird_table_name_and_evolve, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_missing_table_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_busy_database_retries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_update_mode_and_kafka_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_incrementing_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_timestamp_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_timestamp_delay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_bulk_query_and_tasks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_missing_database_retries, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
