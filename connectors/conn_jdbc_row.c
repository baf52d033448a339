/*
 * conn_jdbc_row.c: how the SQLite and PostgreSQL sinks turn a record into
 * a row, following Kafka's JDBC sink with JSON instead of Connect structs.
 *
 * The value must be a JSON object: each top-level field is a column
 * (string -> text, integer -> integer, other number -> double, or the
 * exact decimal text when it fits neither, true/false -> boolean, null ->
 * NULL, object or array -> its JSON text). Key columns come first, by
 * pk.mode:
 *   none          no key columns
 *   kafka         pk.fields (default __connect_topic, __connect_partition,
 *                 __connect_offset) = the record's coordinates
 *   record_key    the key: a JSON object contributes its fields (pk.fields
 *                 selects them, all when empty); a primitive key (a JSON
 *                 number or string, or bytes that are not JSON, taken as
 *                 text) is one column named pk.fields (default
 *                 __connect_key)
 *   record_value  pk.fields of the value (all its fields when empty)
 * A tombstone (null value) is a delete by key when delete.enabled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "conn_jdbc_int.h"

static const char *const kafka_cols[] = {"__connect_topic", "__connect_partition",
                                         "__connect_offset"};

static int row_own(conn_jdbc_row_t *row, char *s) {
  char **o = realloc(row->owned, (size_t)(row->nowned + 1) * sizeof *o);
  if (!o) {
    free(s);
    return JDBC_E_NOMEM;
  }
  row->owned = o;
  o[row->nowned++] = s;
  return 0;
}

/* A NUL-terminated copy of len bytes, owned by row. */
static char *row_copy(conn_jdbc_row_t *row, const void *data, size_t len) {
  char *s = malloc(len + 1);
  if (!s) return NULL;
  memcpy(s, data, len);
  s[len] = '\0';
  return row_own(row, s) == 0 ? s : NULL;
}

/* v as a column value; nested values become JSON text owned by row. */
static int row_val(conn_jdbc_row_t *row, yajl_val v, conn_jdbc_val_t *out) {
  memset(out, 0, sizeof *out);
  switch (v ? v->type : yajl_t_null) {
  case yajl_t_string:
    out->type = JDBC_TEXT;
    out->s = v->u.string;
    out->len = strlen(v->u.string);
    return 0;
  case yajl_t_number:
    if (YAJL_IS_INTEGER(v)) {
      out->type = JDBC_INT;
      out->i = YAJL_GET_INTEGER(v);
    } else if (YAJL_IS_DOUBLE(v)) {
      out->type = JDBC_DOUBLE;
      out->d = YAJL_GET_DOUBLE(v);
    } else { /* out of range for both: keep the digits */
      out->type = JDBC_NUMERIC;
      out->s = v->u.number.r;
      out->len = strlen(v->u.number.r);
    }
    return 0;
  case yajl_t_true:
  case yajl_t_false:
    out->type = JDBC_BOOL;
    out->i = v->type == yajl_t_true;
    return 0;
  case yajl_t_object:
  case yajl_t_array: {
    size_t len = 0;
    char *text = conn_json_text(v, &len);
    if (!text || row_own(row, text) < 0) return JDBC_E_NOMEM;
    out->type = JDBC_TEXT;
    out->s = text;
    out->len = len;
    return 0;
  }
  default:
    out->type = JDBC_NULL;
    return 0;
  }
}

static yajl_val obj_get(yajl_val obj, const char *name) {
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], name) == 0) return obj->u.object.values[i];
  return NULL;
}

static bool obj_has(yajl_val obj, const char *name) {
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], name) == 0) return true;
  return false;
}

static bool is_key_col(const conn_jdbc_row_t *row, const char *name) {
  for (int i = 0; i < row->nkeys; i++)
    if (strcmp(row->cols[i], name) == 0) return true;
  return false;
}

static size_t list_len(char **l) {
  size_t n = 0;
  while (l && l[n]) n++;
  return n;
}

/* Room for one more column (arrays in the put's pool). */
static int row_grow(conn_jdbc_row_t *row) {
  if (row->ncols < row->cap) return 0;
  int cap = row->cap ? row->cap * 2 : 16;
  const char **cols = conn_pool_realloc(row->pool, row->cols,
                                             (size_t)row->cap * sizeof *cols,
                                             (size_t)cap * sizeof *cols);
  if (!cols) return JDBC_E_NOMEM;
  row->cols = cols;
  conn_jdbc_val_t *vals = conn_pool_realloc(row->pool, row->vals,
                                                 (size_t)row->cap * sizeof *vals,
                                                 (size_t)cap * sizeof *vals);
  if (!vals) return JDBC_E_NOMEM;
  row->vals = vals;
  row->cap = cap;
  return 0;
}

static int row_push(conn_jdbc_row_t *row, const char *name, conn_jdbc_val_t v) {
  if (row_grow(row) < 0) return JDBC_E_NOMEM;
  row->cols[row->ncols] = name;
  row->vals[row->ncols++] = v;
  return 0;
}

static int row_add(conn_jdbc_row_t *row, const char *name, yajl_val v) {
  if (row_grow(row) < 0) return JDBC_E_NOMEM;
  int rc = row_val(row, v, &row->vals[row->ncols]);
  if (rc < 0) return rc;
  row->cols[row->ncols++] = name;
  return 0;
}

static uint64_t key_hash(const conn_jdbc_row_t *row) {
  uint64_t h = 1469598103934665603ull;
#define MIX(byte) (h = (h ^ (uint8_t)(byte)) * 1099511628211ull)
  for (int i = 0; i < row->nkeys; i++) {
    const conn_jdbc_val_t *v = &row->vals[i];
    MIX(v->type);
    if (v->type == JDBC_TEXT || v->type == JDBC_NUMERIC) {
      for (size_t j = 0; j < v->len; j++) MIX(v->s[j]);
    } else {
      for (int j = 0; j < 8; j++) MIX((uint64_t)v->i >> (8 * j));
    }
  }
#undef MIX
  return h;
}

bool conn_jdbc_row_same_key(const conn_jdbc_row_t *a, const conn_jdbc_row_t *b) {
  if (a->key_hash != b->key_hash || a->nkeys != b->nkeys) return false;
  for (int i = 0; i < a->nkeys; i++) {
    const conn_jdbc_val_t *x = &a->vals[i], *y = &b->vals[i];
    if (x->type != y->type) return false;
    if (x->type == JDBC_TEXT || x->type == JDBC_NUMERIC) {
      if (x->len != y->len || memcmp(x->s, y->s, x->len) != 0) return false;
    } else if (x->type == JDBC_DOUBLE ? x->d != y->d : x->i != y->i) {
      return false;
    }
  }
  return true;
}

/* Key columns from the record's key (pk.mode=record_key). */
static int row_key_from_key(const conn_jdbc_pk_t *pk, const conn_record_t *rec,
                            conn_jdbc_row_t *row, char *reason, size_t len) {
  if (!rec->key) {
    snprintf(reason, len, "pk.mode=record_key but the record has a null key");
    return JDBC_BAD_RECORD;
  }
  char *text = row_copy(row, rec->key, (size_t)rec->key_len);
  if (!text) return JDBC_E_NOMEM;
  char perr[8];
  yajl_val k = conn_json_parse(NULL, text, (size_t)rec->key_len, perr, sizeof perr);
  row->key_tree = k;
  size_t nf = list_len(pk->fields);
  if (k && YAJL_IS_OBJECT(k)) {
    if (nf == 0) {
      for (size_t i = 0; i < k->u.object.len; i++) {
        int rc = row_add(row, k->u.object.keys[i], k->u.object.values[i]);
        if (rc < 0) return rc;
      }
    } else {
      for (size_t i = 0; i < nf; i++) {
        if (!obj_has(k, pk->fields[i])) {
          snprintf(reason, len, "the key has no field \"%s\" (pk.fields)", pk->fields[i]);
          return JDBC_BAD_RECORD;
        }
        int rc = row_add(row, pk->fields[i], obj_get(k, pk->fields[i]));
        if (rc < 0) return rc;
      }
    }
    if (row->ncols == 0) {
      snprintf(reason, len, "the key is an empty JSON object: no primary key");
      return JDBC_BAD_RECORD;
    }
  } else {
    if (nf > 1) {
      snprintf(reason, len, "a primitive key gives one column but pk.fields names %zu", nf);
      return JDBC_BAD_RECORD;
    }
    const char *name = nf == 1 ? pk->fields[0] : "__connect_key";
    if (k && YAJL_IS_NULL(k)) {
      snprintf(reason, len, "pk.mode=record_key but the key is JSON null");
      return JDBC_BAD_RECORD;
    }
    if (k && !YAJL_IS_OBJECT(k) && !YAJL_IS_ARRAY(k)) {
      int rc = row_add(row, name, k);
      if (rc < 0) return rc;
    } else {
      /* Not JSON (or an array): the key's bytes as text. */
      int rc = row_push(row, name, (conn_jdbc_val_t){.type = JDBC_TEXT, .s = text,
                                                      .len = (size_t)rec->key_len});
      if (rc < 0) return rc;
    }
  }
  return 0;
}

static int fields_find(const conn_jdbc_fields_t *f, const char *name) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->names[i], name) == 0) return (int)i;
  return -1;
}

int conn_jdbc_row_parse(conn_pool_t *pool, const conn_jdbc_pk_t *pk,
                        const conn_record_t *rec, conn_jdbc_row_t *row, char *reason,
                        size_t len) {
  row->pool = pool;
  row->rec = rec;
  row->op = JDBC_ROW_WRITE;
  const conn_jdbc_fields_t *v = &row->fields;
  if (!rec->value) {
    if (!pk->delete_enabled) {
      snprintf(reason, len, "a tombstone (null value) and delete.enabled is false");
      return JDBC_BAD_RECORD;
    }
    row->op = JDBC_ROW_DELETE;
  } else {
    int rc = conn_jdbc_fields_parse(pool, rec->value, (size_t)rec->value_len, &row->fields,
                                    reason, len);
    if (rc != 0) return rc;
  }
  int rc = 0;
  switch (pk->mode) {
  case JDBC_PK_NONE:
    break;
  case JDBC_PK_KAFKA: {
    size_t nf = list_len(pk->fields);
    const char *names[3];
    for (int i = 0; i < 3; i++) names[i] = nf == 3 ? pk->fields[i] : kafka_cols[i];
    rc = row_push(row, names[0], (conn_jdbc_val_t){.type = JDBC_TEXT, .s = rec->topic,
                                                    .len = strlen(rec->topic)});
    if (rc == 0) rc = row_push(row, names[1], (conn_jdbc_val_t){.type = JDBC_INT,
                                                                .i = rec->partition});
    if (rc == 0) rc = row_push(row, names[2], (conn_jdbc_val_t){.type = JDBC_INT,
                                                                .i = rec->offset});
    break;
  }
  case JDBC_PK_RECORD_KEY:
    rc = row_key_from_key(pk, rec, row, reason, len);
    break;
  case JDBC_PK_RECORD_VALUE: {
    if (!rec->value) {
      snprintf(reason, len, "pk.mode=record_value can not delete by a tombstone");
      return JDBC_BAD_RECORD;
    }
    size_t nf = list_len(pk->fields);
    if (nf == 0) {
      for (size_t i = 0; i < v->n && rc == 0; i++) rc = row_push(row, v->names[i], v->vals[i]);
    } else {
      for (size_t i = 0; i < nf && rc == 0; i++) {
        int at = fields_find(v, pk->fields[i]);
        if (at < 0 || v->vals[at].type == JDBC_NULL) {
          snprintf(reason, len, "the value has no field \"%s\" (pk.fields)", pk->fields[i]);
          return JDBC_BAD_RECORD;
        }
        rc = row_push(row, pk->fields[i], v->vals[at]);
      }
    }
    break;
  }
  }
  if (rc != 0) return rc;
  row->nkeys = row->ncols;
  for (size_t i = 0; i < v->n; i++) {
    if (is_key_col(row, v->names[i])) continue; /* the key's value wins */
    rc = row_push(row, v->names[i], v->vals[i]);
    if (rc < 0) return rc;
  }
  if (row->ncols == 0) {
    snprintf(reason, len, "the value is an empty JSON object: no column to write");
    return JDBC_BAD_RECORD;
  }
  row->key_hash = key_hash(row);
  return 0;
}

void conn_jdbc_row_free(conn_jdbc_row_t *row) {
  yajl_tree_free(row->key_tree);
  for (int i = 0; i < row->nowned; i++) free(row->owned[i]);
  free(row->owned);
  memset(row, 0, sizeof *row);
}
