/* Tests for the pure parts of the SQLite/PostgreSQL connectors:
 * connectors/conn_jdbc_sql.c (SQL text), connection.url forms
 * (conn_jdbc_common.c, the dialects' check_url) and records to rows
 * (conn_jdbc_row.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conn_jdbc_int.h"

static char *sql_of(void (*fn)(conn_jdbc_buf_t *, const conn_jdbc_dialect_t *,
                               const conn_jdbc_shape_t *),
                    const conn_jdbc_dialect_t *d, const conn_jdbc_shape_t *s) {
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  fn(&b, d, s);
  assert_false(b.oom);
  return b.p;
}

static void test_ident_quoting(void **state) {
  (void)state;
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  conn_jdbc_sql_ident(&b, "plain");
  conn_jdbc_buf_adds(&b, " ");
  conn_jdbc_sql_ident(&b, "we\"ird\"\"; DROP TABLE x; --");
  conn_jdbc_buf_adds(&b, " ");
  conn_jdbc_sql_ident(&b, "");
  assert_string_equal(b.p, "\"plain\" \"we\"\"ird\"\"\"\"; DROP TABLE x; --\" \"\"");
  conn_jdbc_buf_free(&b);
}

static void test_insert_upsert(void **state) {
  (void)state;
  const char *cols[] = {"id", "name", "o\"k"};
  conn_jdbc_shape_t s = {"t\"1", cols, 3, 1};
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  conn_jdbc_sql_insert(&b, &conn_dialect_sqlite, &s, 2, false);
  assert_string_equal(b.p, "INSERT INTO \"t\"\"1\" (\"id\", \"name\", \"o\"\"k\") VALUES "
                           "(?1, ?2, ?3), (?4, ?5, ?6)");
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_insert(&b, &conn_dialect_postgres, &s, 1, true);
  assert_string_equal(b.p, "INSERT INTO \"t\"\"1\" (\"id\", \"name\", \"o\"\"k\") VALUES "
                           "($1, $2, $3) ON CONFLICT (\"id\") DO UPDATE SET "
                           "\"name\" = excluded.\"name\", \"o\"\"k\" = excluded.\"o\"\"k\"");
  /* Only key columns: nothing to update. */
  conn_jdbc_shape_t keys = {"t", cols, 1, 1};
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_insert(&b, &conn_dialect_sqlite, &keys, 1, true);
  assert_string_equal(b.p, "INSERT INTO \"t\" (\"id\") VALUES (?1) ON CONFLICT (\"id\") DO NOTHING");
  conn_jdbc_buf_free(&b);
}

static void test_update_delete_create(void **state) {
  (void)state;
  const char *cols[] = {"a", "b", "c", "d"};
  conn_jdbc_shape_t s = {"t", cols, 4, 2};
  char *q = sql_of(conn_jdbc_sql_update, &conn_dialect_postgres, &s);
  assert_string_equal(q, "UPDATE \"t\" SET \"c\" = $1, \"d\" = $2 WHERE \"a\" = $3 AND \"b\" = $4");
  free(q);
  q = sql_of(conn_jdbc_sql_delete, &conn_dialect_sqlite, &s);
  assert_string_equal(q, "DELETE FROM \"t\" WHERE \"a\" = ?1 AND \"b\" = ?2");
  free(q);
  conn_jdbc_type_t types[] = {JDBC_INT, JDBC_TEXT, JDBC_DOUBLE, JDBC_BOOL};
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  conn_jdbc_sql_create(&b, &conn_dialect_postgres, &s, types);
  assert_string_equal(b.p, "CREATE TABLE IF NOT EXISTS \"t\" (\"a\" BIGINT NOT NULL, \"b\" TEXT "
                           "NOT NULL, \"c\" DOUBLE PRECISION, \"d\" BOOLEAN, PRIMARY KEY "
                           "(\"a\", \"b\"))");
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_create(&b, &conn_dialect_sqlite, &s, types);
  assert_string_equal(b.p, "CREATE TABLE IF NOT EXISTS \"t\" (\"a\" INTEGER NOT NULL, \"b\" TEXT "
                           "NOT NULL, \"c\" REAL, \"d\" BOOLEAN, PRIMARY KEY (\"a\", \"b\"))");
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_add_column(&b, &conn_dialect_sqlite, "t", "n\"ew", JDBC_TEXT);
  assert_string_equal(b.p, "ALTER TABLE \"t\" ADD COLUMN \"n\"\"ew\" TEXT");
  conn_jdbc_buf_free(&b);
}

static void test_select_modes(void **state) {
  (void)state;
  conn_jdbc_buf_t b;
  conn_jdbc_buf_init(&b);
  conn_jdbc_sql_select(&b, &conn_dialect_sqlite, "t", NULL, JDBC_MODE_BULK, "", "", false);
  assert_string_equal(b.p, "SELECT * FROM \"t\"");
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_select(&b, &conn_dialect_postgres, "t", NULL, JDBC_MODE_INCREMENTING, "id", "",
                       true);
  assert_string_equal(b.p, "SELECT * FROM \"t\" WHERE \"id\" > $1 ORDER BY \"id\" ASC LIMIT $2");
  conn_jdbc_buf_reset(&b);
  conn_jdbc_sql_select(&b, &conn_dialect_postgres, NULL, "SELECT 1 AS x WHERE true",
                       JDBC_MODE_TIMESTAMP_INCREMENTING, "id", "ts", true);
  const char *ts = "(extract(epoch from \"ts\") * 1000000)::bigint";
  char want[1024];
  snprintf(want, sizeof want,
           "SELECT *, %s AS " CONN_JDBC_TS_COL " FROM (SELECT 1 AS x WHERE true) AS "
           "\"__runnel_query\" WHERE ((%s = $1 AND \"id\" > $3) OR %s > $2) AND %s < ("
           "(extract(epoch from now()) * 1000000)::bigint) - $4 ORDER BY %s ASC, \"id\" ASC "
           "LIMIT $5",
           ts, ts, ts, ts, ts);
  assert_string_equal(b.p, want);
  conn_jdbc_buf_free(&b);
}

static void test_sqlite_urls(void **state) {
  (void)state;
  char msg[256], *path = NULL;
  assert_int_equal(conn_jdbc_sqlite_path("sqlite:///var/x.db", &path, msg, sizeof msg), 0);
  assert_string_equal(path, "/var/x.db");
  free(path);
  assert_int_equal(conn_jdbc_sqlite_path("sqlite:rel/x.db", &path, msg, sizeof msg), 0);
  assert_string_equal(path, "rel/x.db");
  free(path);
  assert_int_equal(conn_jdbc_sqlite_path("jdbc:sqlite:/abs.db", &path, msg, sizeof msg), 0);
  assert_string_equal(path, "/abs.db");
  free(path);
  assert_int_equal(conn_jdbc_sqlite_path("sqlite://host/x.db", &path, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "no host"));
  assert_int_equal(conn_jdbc_sqlite_path("sqlite:", &path, msg, sizeof msg), -1);
  assert_int_equal(conn_jdbc_sqlite_path("postgresql://h/db", &path, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "must start with sqlite:"));
  assert_null(path);
}

static void test_postgres_urls(void **state) {
  (void)state;
  char msg[256];
  assert_int_equal(conn_jdbc_validate_postgres_url("postgresql://u@h:5432/db", msg, sizeof msg),
                   0);
  assert_int_equal(
      conn_jdbc_validate_postgres_url("jdbc:postgresql://h/db?sslmode=disable", msg, sizeof msg),
      0);
  assert_int_equal(conn_jdbc_validate_postgres_url("sqlite:///x.db", msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "postgresql://"));
  assert_int_equal(conn_jdbc_validate_postgres_url("postgresql://h:notaport/db?bogus=1", msg,
                                                   sizeof msg),
                   -1);
  assert_non_null(strstr(msg, "not a valid PostgreSQL URI"));
}

/* A record with a JSON value (NULL: tombstone) and key (NULL: null key). */
static void mkrec(conn_record_t *r, const char *key, const char *value) {
  conn_record_init(r);
  assert_int_equal(conn_record_set_topic(r, "t"), 0);
  r->partition = 2;
  r->offset = 41;
  if (key) assert_int_equal(conn_record_set_key(r, key, (int32_t)strlen(key)), 0);
  if (value) assert_int_equal(conn_record_set_value(r, value, (int32_t)strlen(value)), 0);
}

static void test_row_mapping(void **state) {
  (void)state;
  conn_pool_t pool = {0};
  conn_record_t r;
  conn_jdbc_row_t row;
  char reason[256];
  char *fields_none[] = {NULL};
  conn_jdbc_pk_t pk = {JDBC_PK_RECORD_KEY, fields_none, true};

  /* An object key gives its fields first; a value field of the same name
   * is left to the key. Nested values become JSON text. */
  mkrec(&r, "{\"id\":7}", "{\"id\":8,\"n\":\"x\",\"f\":1.5,\"b\":true,\"z\":null,"
                         "\"o\":{\"a\":[1,2]}}");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), 0);
  assert_int_equal(row.op, JDBC_ROW_WRITE);
  assert_int_equal(row.nkeys, 1);
  assert_int_equal(row.ncols, 6);
  assert_string_equal(row.cols[0], "id");
  assert_int_equal(row.vals[0].type, JDBC_INT);
  assert_int_equal(row.vals[0].i, 7);
  assert_string_equal(row.cols[1], "n");
  assert_int_equal(row.vals[2].type, JDBC_DOUBLE);
  assert_int_equal(row.vals[3].type, JDBC_BOOL);
  assert_int_equal(row.vals[4].type, JDBC_NULL);
  assert_int_equal(row.vals[5].type, JDBC_TEXT);
  assert_string_equal(row.vals[5].s, "{\"a\":[1,2]}");
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);

  /* A primitive key is one column, __connect_key by default; bytes that
   * are not JSON are text. A tombstone is a delete. */
  mkrec(&r, "not json", NULL);
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), 0);
  assert_int_equal(row.op, JDBC_ROW_DELETE);
  assert_int_equal(row.ncols, 1);
  assert_string_equal(row.cols[0], "__connect_key");
  assert_string_equal(row.vals[0].s, "not json");
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);

  /* Bad records say why. */
  pk.delete_enabled = false;
  mkrec(&r, "1", NULL);
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), JDBC_BAD_RECORD);
  assert_non_null(strstr(reason, "delete.enabled is false"));
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);
  mkrec(&r, "1", "[1,2]");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), JDBC_BAD_RECORD);
  assert_string_equal(reason, "the value is not a JSON object");
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);
  mkrec(&r, "1", "{\"a\":");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), JDBC_BAD_RECORD);
  assert_non_null(strstr(reason, "the value is not JSON: 1:"));
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);
  mkrec(&r, NULL, "{\"a\":1}");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r, &row, reason, sizeof reason), JDBC_BAD_RECORD);
  assert_non_null(strstr(reason, "null key"));
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);

  /* record_value with pk.fields; kafka coordinates. */
  char *fields_v[] = {"b", NULL};
  conn_jdbc_pk_t pkv = {JDBC_PK_RECORD_VALUE, fields_v, false};
  mkrec(&r, NULL, "{\"a\":1,\"b\":\"k\"}");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pkv, &r, &row, reason, sizeof reason), 0);
  assert_int_equal(row.nkeys, 1);
  assert_string_equal(row.cols[0], "b");
  assert_string_equal(row.cols[1], "a");
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);
  mkrec(&r, NULL, "{\"a\":1}");
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pkv, &r, &row, reason, sizeof reason), JDBC_BAD_RECORD);
  assert_non_null(strstr(reason, "no field \"b\""));
  conn_jdbc_row_free(&row);
  conn_jdbc_pk_t pkk = {JDBC_PK_KAFKA, fields_none, false};
  memset(&row, 0, sizeof row);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pkk, &r, &row, reason, sizeof reason), 0);
  assert_int_equal(row.nkeys, 3);
  assert_string_equal(row.cols[2], "__connect_offset");
  assert_int_equal(row.vals[2].i, 41);
  assert_int_equal(row.vals[1].i, 2);
  conn_jdbc_row_free(&row);
  conn_record_clear(&r);
  conn_pool_free(&pool);
}

static void test_row_same_key(void **state) {
  (void)state;
  conn_pool_t pool = {0};
  char *none[] = {NULL};
  conn_jdbc_pk_t pk = {JDBC_PK_RECORD_KEY, none, false};
  conn_record_t r1, r2, r3;
  mkrec(&r1, "{\"a\":1,\"b\":\"x\"}", "{\"v\":1}");
  mkrec(&r2, "{\"a\":1,\"b\":\"x\"}", "{\"v\":2}");
  mkrec(&r3, "{\"a\":1,\"b\":\"y\"}", "{\"v\":1}");
  conn_jdbc_row_t a = {0}, b = {0}, c = {0};
  char reason[128];
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r1, &a, reason, sizeof reason), 0);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r2, &b, reason, sizeof reason), 0);
  assert_int_equal(conn_jdbc_row_parse(&pool, &pk, &r3, &c, reason, sizeof reason), 0);
  assert_true(conn_jdbc_row_same_key(&a, &b));
  assert_false(conn_jdbc_row_same_key(&a, &c));
  conn_jdbc_row_free(&a);
  conn_jdbc_row_free(&b);
  conn_jdbc_row_free(&c);
  conn_record_clear(&r1);
  conn_record_clear(&r2);
  conn_record_clear(&r3);
  conn_pool_free(&pool);
}

static void test_pool(void **state) {
  (void)state;
  conn_pool_t pool = {0};
  /* The latest block grows in place; an older one moves, keeping its
   * bytes; a block beyond the chunk size gets its own chunk. */
  char *a = conn_pool_alloc(&pool, 10);
  memcpy(a, "0123456789", 10);
  char *a2 = conn_pool_realloc(&pool, a, 10, 100);
  assert_ptr_equal(a, a2);
  char *b = conn_pool_alloc(&pool, 8);
  assert_true(((uintptr_t)b % 16) == 0);
  char *a3 = conn_pool_realloc(&pool, a2, 100, 200);
  assert_ptr_not_equal(a3, a2);
  assert_memory_equal(a3, "0123456789", 10);
  char *big = conn_pool_alloc(&pool, 1 << 20);
  assert_non_null(big);
  memset(big, 1, 1 << 20);
  conn_pool_reset(&pool);
  /* After a reset the kept chunk serves again from its start. */
  char *c = conn_pool_alloc(&pool, 10);
  assert_non_null(c);
  conn_pool_free(&pool);
  assert_null(pool.head);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ident_quoting),   cmocka_unit_test(test_insert_upsert),
      cmocka_unit_test(test_update_delete_create), cmocka_unit_test(test_select_modes),
      cmocka_unit_test(test_sqlite_urls),     cmocka_unit_test(test_postgres_urls),
      cmocka_unit_test(test_row_mapping),     cmocka_unit_test(test_row_same_key),
      cmocka_unit_test(test_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
