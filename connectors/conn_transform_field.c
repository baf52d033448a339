/*
 * conn_transform_field.c: the SMTs that change fields of a JSON object
 * key or value in place: InsertField, ReplaceField and MaskField, each in
 * a $Key and a $Value variant, with Kafka Connect's config names and its
 * schemaless semantics (a record whose key/value is null passes unchanged;
 * anything else must be a JSON object).
 *
 * Where runnel differs from Kafka (see docs/connectors.md):
 *   - InsertField's timestamp.field is written as epoch milliseconds (what
 *     Kafka's schemaless path writes, a Long).
 *   - A missing field masked by MaskField is added as null, as Kafka's
 *     schemaless MaskField does (it puts masked(value.get(field))).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_transform_int.h"

static char *conn__strdup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static bool conn__in_list(char *const *list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (strcmp(list[i], s) == 0) return true;
  return false;
}

/* The JSON object of rec's side, or NULL with *keep = 1 when the side is
 * null (passes unchanged). -1 with err when it is not an object. */
static int conn__object_of(conn_record_t *rec, conn__side_t side, const char *smt, yajl_val *out,
                           char *err, size_t errlen) {
  if (conn__json_get(rec, side, false, out, err, errlen) != 0) return -1;
  if (*out && (*out)->type != yajl_t_object)
    return conn__terr(err, errlen, "%s needs a JSON object %s, found %s", smt,
                      conn__side_name(side), conn__json_type_name(*out));
  return 0;
}

/* ---- InsertField ------------------------------------------------------------ */

static const conn_def_t insert_defs[] = {
    {.name = "topic.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM,
     .doc = "Field name for the record's topic. A trailing '!' or '?' (Kafka's required/optional "
            "marker) is accepted and ignored."},
    {.name = "partition.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM,
     .doc = "Field name for the record's partition (not inserted when the partition is not "
            "known yet, as for source records)."},
    {.name = "offset.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM,
     .doc = "Field name for the record's offset; only applicable to sink connectors."},
    {.name = "timestamp.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM,
     .doc = "Field name for the record's timestamp, in milliseconds since the epoch (not "
            "inserted when the record has none)."},
    {.name = "static.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM, .doc = "Field name for a static string."},
    {.name = "static.value", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_MEDIUM, .doc = "The static string, if static.field is set."},
    CONN_DEF_END,
};

typedef struct {
  conn__side_t side;
  char *topic_f, *partition_f, *offset_f, *timestamp_f, *static_f, *static_v;
} insert_t;

/* Kafka's InsertionSpec: "name!" required, "name?" optional; schemaless
 * records have no schema to mark, so only the name matters. */
static char *insert_field_name(const conn_config_t *cfg, const char *key) {
  const char *v = conn_get_string(insert_defs, cfg, key);
  if (!v || !*v) return NULL;
  char *s = strdup(v);
  size_t n = s ? strlen(s) : 0;
  if (n > 1 && (s[n - 1] == '!' || s[n - 1] == '?')) s[n - 1] = '\0';
  return s;
}

static void insert_close(void *st) {
  insert_t *t = st;
  free(t->topic_f), free(t->partition_f), free(t->offset_f);
  free(t->timestamp_f), free(t->static_f), free(t->static_v);
}

static int insert_init(insert_t *t, conn__side_t side, const conn_config_t *cfg, char *err,
                       size_t errlen) {
  t->side = side;
  t->topic_f = insert_field_name(cfg, "topic.field");
  t->partition_f = insert_field_name(cfg, "partition.field");
  t->offset_f = insert_field_name(cfg, "offset.field");
  t->timestamp_f = insert_field_name(cfg, "timestamp.field");
  t->static_f = insert_field_name(cfg, "static.field");
  t->static_v = conn__strdup_or_null(conn_get_string(insert_defs, cfg, "static.value"));
  if (t->static_f && !t->static_v)
    return conn__terr(err, errlen, "static.value: required when static.field is set");
  return 0;
}

static int insert_init_key(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return insert_init(st, CONN__KEY, cfg, err, errlen);
}

static int insert_init_value(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return insert_init(st, CONN__VALUE, cfg, err, errlen);
}

static int insert_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  insert_t *t = st;
  yajl_val obj;
  if (conn__object_of(rec, t->side, "InsertField", &obj, err, errlen) != 0) return -1;
  if (!obj) return 1; /* tombstones pass, as in Kafka */
  conn__arena_t *a = conn__json_arena(rec);
  int rc = 0;
  if (t->topic_f && rec->topic)
    rc = conn__jv_put(a, obj, t->topic_f, conn__jv_string(a, rec->topic, strlen(rec->topic)));
  if (rc == 0 && t->partition_f && rec->partition >= 0)
    rc = conn__jv_put(a, obj, t->partition_f, conn__jv_int(a, rec->partition));
  if (rc == 0 && t->offset_f) {
    if (rec->offset < 0)
      return conn__terr(err, errlen,
                        "offset.field: offset insertion is only supported for sink connectors");
    rc = conn__jv_put(a, obj, t->offset_f, conn__jv_int(a, rec->offset));
  }
  if (rc == 0 && t->timestamp_f && rec->timestamp >= 0)
    rc = conn__jv_put(a, obj, t->timestamp_f, conn__jv_int(a, rec->timestamp));
  if (rc == 0 && t->static_f)
    rc = conn__jv_put(a, obj, t->static_f, conn__jv_string(a, t->static_v, strlen(t->static_v)));
  conn__json_touch(rec, t->side);
  if (rc != 0) return conn__terr(err, errlen, "out of memory");
  return 1;
}

static int insert_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(insert_tree, st, rec, err, errlen);
}

static const char *const insert_key_aliases[] = {
    "org.apache.kafka.connect.transforms.InsertField$Key", NULL};
static const char *const insert_value_aliases[] = {
    "org.apache.kafka.connect.transforms.InsertField$Value", NULL};

const conn_transform_plugin_t conn__insert_field_key = {
    .name = "InsertField$Key", .aliases = insert_key_aliases, .defs = insert_defs,
    .state_size = sizeof(insert_t), .init = insert_init_key, .apply = insert_apply,
    .close = insert_close};
const conn_transform_plugin_t conn__insert_field_value = {
    .name = "InsertField$Value", .aliases = insert_value_aliases, .defs = insert_defs,
    .state_size = sizeof(insert_t), .init = insert_init_value, .apply = insert_apply,
    .close = insert_close};

/* ---- ReplaceField ------------------------------------------------------------ */

static int replace_validate_renames(const char *value, char *msg, size_t len);

static const conn_def_t replace_defs[] = {
    {.name = "exclude", .type = CONN_T_LIST, .default_value = "", .importance = CONN_IMP_MEDIUM,
     .doc = "Fields to exclude. This takes precedence over the fields to include."},
    {.name = "blacklist", .type = CONN_T_LIST, .optional = true, .importance = CONN_IMP_LOW,
     .doc = "Deprecated. Use exclude instead."},
    {.name = "include", .type = CONN_T_LIST, .default_value = "", .importance = CONN_IMP_MEDIUM,
     .doc = "Fields to include. If specified, only these fields will be used."},
    {.name = "whitelist", .type = CONN_T_LIST, .optional = true, .importance = CONN_IMP_LOW,
     .doc = "Deprecated. Use include instead."},
    {.name = "renames", .type = CONN_T_LIST, .default_value = "", .importance = CONN_IMP_MEDIUM,
     .doc = "Field rename mappings: a list of colon-delimited pairs, e.g. foo:bar,abc:xyz.",
     .validate = replace_validate_renames},
    CONN_DEF_END,
};

typedef struct {
  conn__side_t side;
  char **exclude, **include, **renames; /* renames: "old:new" items, split in place */
  size_t n_renames;
  char **from, **to;
} replace_t;

/* Kafka splits each mapping on ':' and wants exactly two parts. */
static int replace_validate_renames(const char *value, char *msg, size_t len) {
  const char *p = value;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n > 0 && (*p == ' ' || *p == '\t')) p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    const char *colon = memchr(p, ':', n);
    if (n > 0 && (!colon || colon == p || colon == p + n - 1 ||
                  memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)))) {
      snprintf(msg, len, "invalid rename mapping '%.*s' (expected old:new)", (int)n, p);
      return -1;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

static void replace_close(void *st) {
  replace_t *t = st;
  if (t->exclude) conn_list_free(t->exclude);
  if (t->include) conn_list_free(t->include);
  if (t->renames) conn_list_free(t->renames);
  free(t->from);
  free(t->to);
}

static int replace_init(replace_t *t, conn__side_t side, const conn_config_t *cfg, char *err,
                        size_t errlen) {
  t->side = side;
  /* Kafka's translateDeprecatedConfigs: the old name counts only when the
   * new one is absent. */
  const char *ex = conn_config_get(cfg, "exclude") ? "exclude"
                   : conn_config_get(cfg, "blacklist") ? "blacklist" : "exclude";
  const char *in = conn_config_get(cfg, "include") ? "include"
                   : conn_config_get(cfg, "whitelist") ? "whitelist" : "include";
  t->exclude = conn_get_list(replace_defs, cfg, ex);
  t->include = conn_get_list(replace_defs, cfg, in);
  t->renames = conn_get_list(replace_defs, cfg, "renames");
  if (!t->exclude || !t->include || !t->renames) return conn__terr(err, errlen, "out of memory");
  size_t n = 0;
  while (t->renames[n]) n++;
  t->from = calloc(n + 1, sizeof *t->from);
  t->to = calloc(n + 1, sizeof *t->to);
  if (!t->from || !t->to) return conn__terr(err, errlen, "out of memory");
  for (size_t i = 0; i < n; i++) {
    char *colon = strchr(t->renames[i], ':');
    if (!colon) /* validated already; defensive */
      return conn__terr(err, errlen, "renames: invalid rename mapping '%s'", t->renames[i]);
    *colon = '\0';
    t->from[i] = t->renames[i];
    t->to[i] = colon + 1;
  }
  t->n_renames = n;
  return 0;
}

static int replace_init_key(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return replace_init(st, CONN__KEY, cfg, err, errlen);
}

static int replace_init_value(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return replace_init(st, CONN__VALUE, cfg, err, errlen);
}

static int replace_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  replace_t *t = st;
  yajl_val obj;
  if (conn__object_of(rec, t->side, "ReplaceField", &obj, err, errlen) != 0) return -1;
  if (!obj) return 1;
  /* A new object, taking the kept values over from the old one (renames
   * may make two fields collide: the later one wins, as with Kafka's
   * HashMap.put). The old object stays in the arena until the record is
   * done. */
  conn__arena_t *a = conn__json_arena(rec);
  yajl_val out = conn__jv_new(a, yajl_t_object);
  if (!out) return conn__terr(err, errlen, "out of memory");
  for (size_t i = 0; i < obj->u.object.len; i++) {
    const char *name = obj->u.object.keys[i];
    if (conn__in_list(t->exclude, name) || (t->include[0] && !conn__in_list(t->include, name)))
      continue;
    for (size_t r = 0; r < t->n_renames; r++)
      if (strcmp(t->from[r], name) == 0) {
        name = t->to[r];
        break;
      }
    if (conn__jv_put(a, out, name, obj->u.object.values[i]) != 0)
      return conn__terr(err, errlen, "out of memory");
  }
  conn__json_set(rec, t->side, out);
  return 1;
}

static int replace_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(replace_tree, st, rec, err, errlen);
}

static const char *const replace_key_aliases[] = {
    "org.apache.kafka.connect.transforms.ReplaceField$Key", NULL};
static const char *const replace_value_aliases[] = {
    "org.apache.kafka.connect.transforms.ReplaceField$Value", NULL};

const conn_transform_plugin_t conn__replace_field_key = {
    .name = "ReplaceField$Key", .aliases = replace_key_aliases, .defs = replace_defs,
    .state_size = sizeof(replace_t), .init = replace_init_key, .apply = replace_apply,
    .close = replace_close};
const conn_transform_plugin_t conn__replace_field_value = {
    .name = "ReplaceField$Value", .aliases = replace_value_aliases, .defs = replace_defs,
    .state_size = sizeof(replace_t), .init = replace_init_value, .apply = replace_apply,
    .close = replace_close};

/* ---- MaskField ------------------------------------------------------------------ */

static const conn_def_t mask_defs[] = {
    {.name = "fields", .type = CONN_T_LIST, .importance = CONN_IMP_HIGH,
     .doc = "Names of fields to mask.", .validate = conn__tv_nonempty_list},
    {.name = "replacement", .type = CONN_T_STRING, .optional = true, .importance = CONN_IMP_LOW,
     .doc = "Custom value replacement, that will be applied to all 'fields' values (numeric or "
            "non-empty string values only).",
     .validate = conn__tv_nonempty},
    CONN_DEF_END,
};

typedef struct {
  conn__side_t side;
  char **fields;
  char *replacement;
  bool repl_is_int, repl_is_num; /* the replacement read as an integer / a number */
  long long repl_int;
  double repl_double;
} mask_t;

static void mask_close(void *st) {
  mask_t *t = st;
  if (t->fields) conn_list_free(t->fields);
  free(t->replacement);
}

static int mask_init(mask_t *t, conn__side_t side, const conn_config_t *cfg, char *err,
                     size_t errlen) {
  t->side = side;
  t->fields = conn_get_list(mask_defs, cfg, "fields");
  if (!t->fields) return conn__terr(err, errlen, "out of memory");
  const char *r = conn_get_string(mask_defs, cfg, "replacement");
  if (r) {
    if (!(t->replacement = strdup(r))) return conn__terr(err, errlen, "out of memory");
    /* Kafka converts the replacement to the field's number type per
     * record; parse it once. Not a number: masking a number fails. */
    char *end;
    errno = 0;
    long long i = strtoll(r, &end, 10);
    if (*r && !*end && errno == 0) t->repl_is_int = true, t->repl_int = i;
    /* strtod also reads hex, inf and nan, which are not JSON numbers. */
    errno = 0;
    double d = strtod(r, &end);
    if (*r && !*end && errno == 0 && isfinite(d) && !strpbrk(r, "xX"))
      t->repl_is_num = true, t->repl_double = d;
  }
  return 0;
}

static int mask_init_key(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return mask_init(st, CONN__KEY, cfg, err, errlen);
}

static int mask_init_value(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  return mask_init(st, CONN__VALUE, cfg, err, errlen);
}

/* A number is an integer when its text has no fraction and no exponent. */
static bool mask_is_int(yajl_val v) {
  return !strpbrk(v->u.number.r, ".eE");
}

/* The masked form of v, a new tree; NULL with err when v cannot be masked
 * with the replacement. */
static yajl_val mask_value(const mask_t *t, conn__arena_t *a, const char *field, yajl_val v,
                           char *err, size_t errlen) {
  yajl_val m = NULL;
  switch (v ? v->type : yajl_t_null) {
  case yajl_t_number:
    if (!t->replacement) m = mask_is_int(v) ? conn__jv_int(a, 0) : conn__jv_double(a, 0);
    else if (mask_is_int(v) ? !t->repl_is_int : !t->repl_is_num) {
      conn__terr(err, errlen, "cannot mask field '%s': replacement '%s' is not %s", field,
                 t->replacement, mask_is_int(v) ? "an integer" : "a number");
      return NULL;
    } else m = mask_is_int(v) ? conn__jv_int(a, t->repl_int) : conn__jv_double(a, t->repl_double);
    break;
  case yajl_t_string: {
    const char *s = t->replacement ? t->replacement : "";
    m = conn__jv_string(a, s, strlen(s));
    break;
  }
  case yajl_t_true:
  case yajl_t_false:
  case yajl_t_object:
  case yajl_t_array:
    if (t->replacement) {
      conn__terr(err, errlen, "cannot mask field '%s' of type %s with a custom replacement",
                 field, conn__json_type_name(v));
      return NULL;
    }
    m = conn__jv_new(a, v->type == yajl_t_true ? yajl_t_false : v->type);
    break;
  default: m = conn__jv_new(a, yajl_t_null); break;
  }
  if (!m) conn__terr(err, errlen, "out of memory");
  return m;
}

static int mask_tree(void *st, conn_record_t *rec, char *err, size_t errlen) {
  mask_t *t = st;
  yajl_val obj;
  if (conn__object_of(rec, t->side, "MaskField", &obj, err, errlen) != 0) return -1;
  if (!obj) return 1;
  conn__arena_t *a = conn__json_arena(rec);
  for (size_t i = 0; t->fields[i]; i++) {
    yajl_val m = mask_value(t, a, t->fields[i], conn_json_member(obj, t->fields[i]), err, errlen);
    if (!m || conn__jv_put(a, obj, t->fields[i], m) != 0) {
      conn__json_touch(rec, t->side);
      return m ? conn__terr(err, errlen, "out of memory") : -1;
    }
  }
  conn__json_touch(rec, t->side);
  return 1;
}

static int mask_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return conn__json_run(mask_tree, st, rec, err, errlen);
}

static const char *const mask_key_aliases[] = {
    "org.apache.kafka.connect.transforms.MaskField$Key", NULL};
static const char *const mask_value_aliases[] = {
    "org.apache.kafka.connect.transforms.MaskField$Value", NULL};

const conn_transform_plugin_t conn__mask_field_key = {
    .name = "MaskField$Key", .aliases = mask_key_aliases, .defs = mask_defs,
    .state_size = sizeof(mask_t), .init = mask_init_key, .apply = mask_apply,
    .close = mask_close};
const conn_transform_plugin_t conn__mask_field_value = {
    .name = "MaskField$Value", .aliases = mask_value_aliases, .defs = mask_defs,
    .state_size = sizeof(mask_t), .init = mask_init_value, .apply = mask_apply,
    .close = mask_close};
