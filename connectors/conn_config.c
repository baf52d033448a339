/*
 * conn_config.c: connector config maps (conn_config_t) and their JSON form.
 *
 * A config is an ordered string map, as Kafka Connect's Map<String,String>:
 * every value is a string, insertion order is kept so that GET
 * /connectors/{name}/config returns keys in the order they were given.
 * Maps are small (tens of keys) and read at task start, so lookups are
 * linear scans.
 *
 * JSON: a flat object. Strings are kept; numbers and booleans are kept in
 * their JSON text form ({"tasks.max": 1} is "1"), as Kafka Connect's REST
 * API accepts them; a null member is skipped (the key is absent); nested
 * objects and arrays are refused naming the key. Typed validation against a
 * plugin's definitions is conn_config_def.c's job.
 */
#include "conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void conn_config_init(conn_config_t *c) {
  memset(c, 0, sizeof *c);
}

void conn_config_free(conn_config_t *c) {
  for (size_t i = 0; i < c->count; i++) {
    free(c->keys[i]);
    free(c->values[i]);
  }
  free(c->keys);
  free(c->values);
  conn_config_init(c);
}

static long conn_config_index(const conn_config_t *c, const char *key) {
  for (size_t i = 0; i < c->count; i++)
    if (strcmp(c->keys[i], key) == 0)
      return (long)i;
  return -1;
}

int conn_config_set(conn_config_t *c, const char *key, const char *value) {
  char *v = strdup(value);
  if (!v)
    return -ENOMEM;
  long i = conn_config_index(c, key);
  if (i >= 0) { /* replace in place: the key keeps its position */
    free(c->values[i]);
    c->values[i] = v;
    return 0;
  }
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    char **k = realloc(c->keys, cap * sizeof *k);
    if (!k) {
      free(v);
      return -ENOMEM;
    }
    c->keys = k;
    char **vs = realloc(c->values, cap * sizeof *vs);
    if (!vs) {
      free(v);
      return -ENOMEM;
    }
    c->values = vs;
    c->cap = cap;
  }
  char *k = strdup(key);
  if (!k) {
    free(v);
    return -ENOMEM;
  }
  c->keys[c->count] = k;
  c->values[c->count] = v;
  c->count++;
  return 0;
}

void conn_config_unset(conn_config_t *c, const char *key) {
  long i = conn_config_index(c, key);
  if (i < 0)
    return;
  free(c->keys[i]);
  free(c->values[i]);
  /* Shift down rather than swap with the last: keeps insertion order. */
  memmove(&c->keys[i], &c->keys[i + 1], (c->count - (size_t)i - 1) * sizeof *c->keys);
  memmove(&c->values[i], &c->values[i + 1], (c->count - (size_t)i - 1) * sizeof *c->values);
  c->count--;
}

const char *conn_config_get(const conn_config_t *c, const char *key) {
  long i = conn_config_index(c, key);
  return i < 0 ? NULL : c->values[i];
}

int conn_config_copy(conn_config_t *dst, const conn_config_t *src) {
  conn_config_init(dst);
  for (size_t i = 0; i < src->count; i++) {
    if (conn_config_set(dst, src->keys[i], src->values[i]) != 0) {
      conn_config_free(dst);
      return -ENOMEM;
    }
  }
  return 0;
}

static const char *conn_json_kind(yajl_val v) {
  if (YAJL_IS_OBJECT(v))
    return "an object";
  if (YAJL_IS_ARRAY(v))
    return "an array";
  return "a value of unknown type";
}

int conn_config_from_tree(conn_config_t *c, const char *where, yajl_val obj, char *err,
                          size_t errlen) {
  if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
    snprintf(err, errlen, "%s: expected a JSON object of config keys", where);
    return -1;
  }
  for (size_t i = 0; i < obj->u.object.len; i++) {
    const char *key = obj->u.object.keys[i];
    yajl_val v = obj->u.object.values[i];
    if (YAJL_IS_NULL(v))
      continue;
    const char *text = conn_json_scalar(v);
    if (text == NULL) {
      snprintf(err, errlen, "%s: \"%s\": expected a string, number or boolean, got %s", where,
               key, conn_json_kind(v));
      return -1;
    }
    if (conn_config_set(c, key, text) != 0) {
      snprintf(err, errlen, "%s: out of memory", where);
      return -1;
    }
  }
  return 0;
}

int conn_config_from_json(conn_config_t *c, const char *where, const char *json, size_t len,
                          char *err, size_t errlen) {
  yajl_val root = conn_json_parse(where, json, len, err, errlen);
  if (!root)
    return -1;
  int rc = conn_config_from_tree(c, where, root, err, errlen);
  yajl_tree_free(root);
  return rc;
}

char *conn_config_to_json(const conn_config_t *c) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return NULL;
  yajl_gen_map_open(g);
  for (size_t i = 0; i < c->count; i++) {
    yajl_gen_string(g, (const unsigned char *)c->keys[i], strlen(c->keys[i]));
    yajl_gen_string(g, (const unsigned char *)c->values[i], strlen(c->values[i]));
  }
  yajl_gen_map_close(g);
  return conn_json_take(g, NULL);
}
