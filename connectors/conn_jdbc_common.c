/*
 * conn_jdbc_common.c: what the SQLite and PostgreSQL sources and sinks
 * share around the dialects: connection.url forms and their validators,
 * connecting with connection.user / connection.password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "conn_jdbc_int.h"

const char *conn_jdbc_url_strip(const char *url) {
  return strncmp(url, "jdbc:", 5) == 0 ? url + 5 : url;
}

int conn_jdbc_sqlite_path(const char *url, char **path, char *msg, size_t len) {
  *path = NULL;
  const char *u = conn_jdbc_url_strip(url);
  const char *p;
  if (strncmp(u, "sqlite:", 7) != 0) {
    snprintf(msg, len, "must start with sqlite: (sqlite:///absolute/path.db or "
                       "sqlite:relative/path.db)");
    return -1;
  }
  p = u + 7;
  if (strncmp(p, "//", 2) == 0) {
    /* sqlite:///abs: an empty authority, as in file:///. */
    if (p[2] != '/') {
      snprintf(msg, len, "a sqlite: URL has no host: write sqlite:///absolute/path.db or "
                         "sqlite:relative/path.db");
      return -1;
    }
    p += 2;
  }
  if (*p == '\0') {
    snprintf(msg, len, "names no database file (sqlite:///absolute/path.db)");
    return -1;
  }
  if (strchr(p, '?')) {
    snprintf(msg, len, "query parameters are not supported in sqlite: URLs");
    return -1;
  }
  *path = strdup(p);
  return *path ? 0 : -1;
}

int conn_jdbc_validate_sqlite_url(const char *value, char *msg, size_t len) {
  return conn_dialect_sqlite.check_url(conn_jdbc_url_strip(value), msg, len);
}

int conn_jdbc_validate_postgres_url(const char *value, char *msg, size_t len) {
  return conn_dialect_postgres.check_url(conn_jdbc_url_strip(value), msg, len);
}

int conn_jdbc_connect(const conn_jdbc_dialect_t *d, const conn_def_t *defs,
                      const conn_config_t *cfg, bool create, conn_jdbc_db_t **db, char *err,
                      size_t errlen) {
  if (*db) return JDBC_OK;
  const char *url = conn_jdbc_url_strip(conn_get_string(defs, cfg, "connection.url"));
  return d->connect(url, conn_get_string(defs, cfg, "connection.user"),
                    conn_get_string(defs, cfg, "connection.password"), create, db, err, errlen);
}

char *conn_jdbc_json_obj1(const char *key, const char *value) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  const unsigned char *buf;
  size_t len;
  char *out = NULL;
  if (yajl_gen_map_open(g) == yajl_gen_status_ok &&
      yajl_gen_string(g, (const unsigned char *)key, strlen(key)) == yajl_gen_status_ok &&
      yajl_gen_string(g, (const unsigned char *)value, strlen(value)) == yajl_gen_status_ok &&
      yajl_gen_map_close(g) == yajl_gen_status_ok &&
      yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
    out = malloc(len + 1);
    if (out) {
      memcpy(out, buf, len);
      out[len] = '\0';
    }
  }
  yajl_gen_free(g);
  return out;
}
