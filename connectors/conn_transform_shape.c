/*
 * conn_transform_shape.c: the SMTs that reshape a whole key or value:
 * ValueToKey (a key made of value fields), ExtractField (a field becomes
 * the whole key/value) and HoistField (the whole key/value becomes a
 * field), with Kafka Connect's config names and schemaless semantics.
 *
 * Differences from Kafka (see docs/connectors.md):
 *   - ExtractField takes a top-level field name only (Kafka's
 *     field.syntax.version=V1); V2's nested paths are refused at config
 *     time rather than silently read as one name.
 *   - HoistField wraps a key/value that is not JSON (a plain text line) as
 *     a JSON string, so `format=string` sources can be turned into JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_transform_int.h"

/* ---- ValueToKey ------------------------------------------------------------- */

static const conn_def_t v2k_defs[] = {
    {.name = "fields", .type = CONN_T_LIST, .importance = CONN_IMP_HIGH,
     .doc = "Field names on the record value to extract as the record key.",
     .validate = conn__tv_nonempty_list},
    {.name = "topics", .type = CONN_T_LIST, .default_value = "", .importance = CONN_IMP_HIGH,
     .doc = "Topic names for which this transformation will be applied (empty: all)."},
    CONN_DEF_END,
};

typedef struct {
  char **fields, **topics;
} v2k_t;

static int v2k_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  v2k_t *t = st;
  t->fields = conn_get_list(v2k_defs, cfg, "fields");
  t->topics = conn_get_list(v2k_defs, cfg, "topics");
  if (!t->fields || !t->topics) return conn__terr(err, errlen, "out of memory");
  return 0;
}

static void v2k_close(void *st) {
  v2k_t *t = st;
  if (t->fields) conn_list_free(t->fields);
  if (t->topics) conn_list_free(t->topics);
}

static int v2k_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  v2k_t *t = st;
  if (t->topics[0]) {
    bool listed = false;
    for (size_t i = 0; t->topics[i] && !listed; i++)
      listed = rec->topic && strcmp(t->topics[i], rec->topic) == 0;
    if (!listed) return 1;
  }
  yajl_val value;
  if (conn__json_get(rec, CONN__VALUE, false, &value, err, errlen) != 0) return -1;
  /* Kafka's requireMap: a null value is an error here too. */
  if (!value || value->type != yajl_t_object)
    return conn__terr(err, errlen, "ValueToKey needs a JSON object value, found %s",
                      conn__json_type_name(value));
  conn__arena_t *a = conn__json_arena(rec);
  yajl_val key = conn__jv_new(a, yajl_t_object);
  if (!key) return conn__terr(err, errlen, "out of memory");
  for (size_t i = 0; t->fields[i]; i++) {
    /* A copy: a later transform may change the value's field in place. */
    yajl_val f = conn_json_member(value, t->fields[i]);
    if (conn__jv_put(a, key, t->fields[i], f ? conn__jv_copy(a, f) : conn__jv_new(a, yajl_t_null)))
      return conn__terr(err, errlen, "out of memory");
  }
  conn__json_set(rec, CONN__KEY, key);
  return 1;
}

static int v2k_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(v2k_tree, st, rec, err, errlen);
}

static const char *const v2k_aliases[] = {"org.apache.kafka.connect.transforms.ValueToKey",
                                          NULL};

const conn_transform_plugin_t conn__value_to_key = {
    .name = "ValueToKey", .aliases = v2k_aliases, .defs = v2k_defs, .state_size = sizeof(v2k_t),
    .init = v2k_init, .apply = v2k_apply, .close = v2k_close};

/* ---- ExtractField ------------------------------------------------------------- */

static const char *const extract_syntax[] = {"V1", NULL};

static const conn_def_t extract_defs[] = {
    {.name = "field", .type = CONN_T_STRING, .importance = CONN_IMP_MEDIUM,
     .doc = "Field name to extract.", .validate = conn__tv_nonempty},
    {.name = "field.syntax.version", .type = CONN_T_STRING, .default_value = "V1",
     .importance = CONN_IMP_LOW, .choices = extract_syntax,
     .doc = "V1: field is a top-level field name (the only syntax runnel supports)."},
    CONN_DEF_END,
};

typedef struct {
  conn__side_t side;
  char *field;
} extract_t;

static int extract_init(extract_t *t, conn__side_t side, const conn_config_t *cfg, char *err,
                        size_t errlen) {
  t->side = side;
  t->field = strdup(conn_get_string(extract_defs, cfg, "field"));
  return t->field ? 0 : conn__terr(err, errlen, "out of memory");
}

static int extract_init_key(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return extract_init(st, CONN__KEY, cfg, err, errlen);
}

static int extract_init_value(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return extract_init(st, CONN__VALUE, cfg, err, errlen);
}

static void extract_close(void *st) {
  free(((extract_t *)st)->field);
}

static int extract_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  extract_t *t = st;
  yajl_val obj;
  if (conn__json_get(rec, t->side, false, &obj, err, errlen) != 0) return -1;
  if (!obj) return 1; /* null stays null */
  if (obj->type != yajl_t_object)
    return conn__terr(err, errlen, "ExtractField needs a JSON object %s, found %s",
                      conn__side_name(t->side), conn__json_type_name(obj));
  /* A missing field, or a JSON null, makes the key/value null (in Kafka
   * the Map lookup returns null): for a value, a tombstone. */
  yajl_val f = conn__jv_take(obj, t->field);
  if (f && f->type == yajl_t_null) f = NULL;
  conn__json_set(rec, t->side, f);
  return 1;
}

static int extract_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(extract_tree, st, rec, err, errlen);
}

static const char *const extract_key_aliases[] = {
    "org.apache.kafka.connect.transforms.ExtractField$Key", NULL};
static const char *const extract_value_aliases[] = {
    "org.apache.kafka.connect.transforms.ExtractField$Value", NULL};

const conn_transform_plugin_t conn__extract_field_key = {
    .name = "ExtractField$Key", .aliases = extract_key_aliases, .defs = extract_defs,
    .state_size = sizeof(extract_t), .init = extract_init_key, .apply = extract_apply,
    .close = extract_close};
const conn_transform_plugin_t conn__extract_field_value = {
    .name = "ExtractField$Value", .aliases = extract_value_aliases, .defs = extract_defs,
    .state_size = sizeof(extract_t), .init = extract_init_value, .apply = extract_apply,
    .close = extract_close};

/* ---- HoistField ------------------------------------------------------------------ */

static const conn_def_t hoist_defs[] = {
    {.name = "field", .type = CONN_T_STRING, .importance = CONN_IMP_MEDIUM,
     .doc = "Field name for the single field that will be created in the resulting object.",
     .validate = conn__tv_nonempty},
    CONN_DEF_END,
};

static int hoist_init_key(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return extract_init(st, CONN__KEY, cfg, err, errlen);
}

static int hoist_init_value(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return extract_init(st, CONN__VALUE, cfg, err, errlen);
}

static int hoist_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  extract_t *t = st;
  yajl_val v;
  if (conn__json_get(rec, t->side, true, &v, err, errlen) != 0) return -1;
  /* Kafka: Collections.singletonMap(field, value), null included. */
  conn__arena_t *a = conn__json_arena(rec);
  yajl_val obj = conn__jv_new(a, yajl_t_object);
  if (!obj || conn__jv_put(a, obj, t->field, v ? v : conn__jv_new(a, yajl_t_null)) != 0)
    return conn__terr(err, errlen, "out of memory");
  conn__json_set(rec, t->side, obj);
  return 1;
}

static int hoist_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(hoist_tree, st, rec, err, errlen);
}

static const char *const hoist_key_aliases[] = {
    "org.apache.kafka.connect.transforms.HoistField$Key", NULL};
static const char *const hoist_value_aliases[] = {
    "org.apache.kafka.connect.transforms.HoistField$Value", NULL};

const conn_transform_plugin_t conn__hoist_field_key = {
    .name = "HoistField$Key", .aliases = hoist_key_aliases, .defs = hoist_defs,
    .state_size = sizeof(extract_t), .init = hoist_init_key, .apply = hoist_apply,
    .close = extract_close};
const conn_transform_plugin_t conn__hoist_field_value = {
    .name = "HoistField$Value", .aliases = hoist_value_aliases, .defs = hoist_defs,
    .state_size = sizeof(extract_t), .init = hoist_init_value, .apply = hoist_apply,
    .close = extract_close};
