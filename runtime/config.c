/*
 * config.c: parsing and validation driven by config_def_t tables
 * (see config.h). JSON is parsed into yajl's tree by conn_json_parse, the
 * helper connector configs use too, whose syntax errors name the line and
 * column.
 */
#include "config.h"
#include "conn_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

static const config_def_t *config_find(const config_def_t *defs, const char *key) {
  for (const config_def_t *d = defs; d->key; d++)
    if (strcmp(d->key, key) == 0) return d;
  return NULL;
}

/* Strict integer parse of a whole string. */
static int config_parse_int(const char *s, int64_t *out) {
  if (*s == '\0') return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0') return -1;
  *out = v;
  return 0;
}

/* Describes the expected form of a key's value. */
static void config_expected(const config_def_t *d, char *buf, size_t len) {
  switch (d->type) {
  case CONFIG_INT:
    if (d->min == INT64_MIN && d->max == INT64_MAX)
      snprintf(buf, len, "an integer");
    else if (d->max == INT64_MAX)
      snprintf(buf, len, "an integer >= %" PRId64, d->min);
    else
      snprintf(buf, len, "an integer between %" PRId64 " and %" PRId64, d->min, d->max);
    break;
  case CONFIG_BOOL:
    snprintf(buf, len, "true or false");
    break;
  case CONFIG_ENUM: {
    size_t n = (size_t)snprintf(buf, len, "one of ");
    for (const char *const *c = d->choices; *c && n < len; c++)
      n += (size_t)snprintf(buf + n, len - n, "%s%s", c == d->choices ? "" : ", ", *c);
    break;
  }
  case CONFIG_LIST:
    snprintf(buf, len, "a list of strings");
    break;
  case CONFIG_STRING:
    if (d->validate) {
      d->validate("", buf, len); /* fills the expected form */
    } else {
      snprintf(buf, len, "a string");
    }
    break;
  }
}

static void config_list_free(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* Replaces the list in field (freeing the old one). */
static void config_store_list(char *field, char **list) {
  char **old;
  memcpy(&old, field, sizeof old);
  config_list_free(old);
  memcpy(field, &list, sizeof list);
}

/* Stores a value given as a string into target. Returns 0 or -1. */
static int config_store(const config_def_t *d, void *target, const char *s) {
  char *field = (char *)target + d->offset;
  switch (d->type) {
  case CONFIG_INT: {
    int64_t v;
    if (config_parse_int(s, &v) != 0 || v < d->min || v > d->max) return -1;
    memcpy(field, &v, sizeof v);
    return 0;
  }
  case CONFIG_BOOL: {
    bool b;
    if (strcmp(s, "true") == 0) b = true;
    else if (strcmp(s, "false") == 0) b = false;
    else return -1;
    memcpy(field, &b, sizeof b);
    return 0;
  }
  case CONFIG_ENUM:
    for (int i = 0; d->choices[i]; i++) {
      if (strcmp(d->choices[i], s) == 0) {
        memcpy(field, &i, sizeof i);
        return 0;
      }
    }
    return -1;
  case CONFIG_LIST: {
    /* One comma-separated string; empty items are dropped. */
    size_t n = 1;
    for (const char *c = s; *c; c++) n += *c == ',';
    char **list = calloc(n + 1, sizeof *list);
    if (!list) return -1;
    size_t k = 0;
    for (const char *c = s; *c;) {
      size_t l = strcspn(c, ",");
      const char *b = c, *e = c + l;
      while (b < e && *b == ' ') b++;
      while (e > b && e[-1] == ' ') e--;
      if (e > b && !(list[k++] = strndup(b, (size_t)(e - b)))) {
        config_list_free(list);
        return -1;
      }
      c += l + (c[l] == ',');
    }
    config_store_list(field, list);
    return 0;
  }
  case CONFIG_STRING: {
    char why[256];
    if (d->validate && d->validate(s, why, sizeof why) != 0) return -1;
    char *old;
    memcpy(&old, field, sizeof old);
    free(old);
    char *copy = strdup(s);
    if (!copy) return -1;
    memcpy(field, &copy, sizeof copy);
    return 0;
  }
  }
  return -1;
}

int config_defaults(const config_def_t *defs, void *target, char *err, size_t errlen) {
  for (const config_def_t *d = defs; d->key; d++) {
    if (d->type == CONFIG_STRING || d->type == CONFIG_LIST) {
      char *null = NULL;
      memcpy((char *)target + d->offset, &null, sizeof null);
    }
    if (d->default_value && config_store(d, target, d->default_value) != 0) {
      snprintf(err, errlen, "%s: invalid default \"%s\"", d->key, d->default_value);
      return -1;
    }
  }
  return 0;
}

int config_set_string(const config_def_t *defs, void *target, const char *where,
                      const char *key, const char *value, char *err, size_t errlen) {
  const config_def_t *d = config_find(defs, key);
  if (!d) {
    snprintf(err, errlen, "%s: unknown key \"%s\"", where, key);
    return -1;
  }
  if (config_store(d, target, value) != 0) {
    char expected[256];
    config_expected(d, expected, sizeof expected);
    snprintf(err, errlen, "%s: %s: expected %s, got \"%s\"", where, key, expected, value);
    return -1;
  }
  return 0;
}

/* Renders a JSON node for "got ..." in messages. */
static void config_describe_node(yajl_val v, char *buf, size_t len) {
  if (YAJL_IS_STRING(v)) snprintf(buf, len, "\"%s\"", YAJL_GET_STRING(v));
  else if (YAJL_IS_NUMBER(v)) snprintf(buf, len, "%s", YAJL_GET_NUMBER(v));
  else if (YAJL_IS_TRUE(v)) snprintf(buf, len, "true");
  else if (YAJL_IS_FALSE(v)) snprintf(buf, len, "false");
  else if (YAJL_IS_NULL(v)) snprintf(buf, len, "null");
  else if (YAJL_IS_OBJECT(v)) snprintf(buf, len, "an object");
  else snprintf(buf, len, "an array");
}

/* Applies one leaf value at key path `path`. */
static int config_apply(const config_def_t *defs, void *target, const char *name,
                        const char *path, yajl_val v, char *err, size_t errlen) {
  const config_def_t *d = config_find(defs, path);
  if (!d) {
    snprintf(err, errlen, "%s: unknown key \"%s\"", name, path);
    return -1;
  }
  const char *s = NULL;
  char num[64];
  if (YAJL_IS_STRING(v)) {
    s = YAJL_GET_STRING(v);
  } else if (YAJL_IS_NUMBER(v) && d->type == CONFIG_INT && YAJL_IS_INTEGER(v)) {
    snprintf(num, sizeof num, "%lld", YAJL_GET_INTEGER(v));
    s = num;
  } else if ((YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) && d->type == CONFIG_BOOL) {
    s = YAJL_IS_TRUE(v) ? "true" : "false";
  }
  if (YAJL_IS_ARRAY(v) && d->type == CONFIG_LIST) {
    size_t n = v->u.array.len;
    char **list = calloc(n + 1, sizeof *list);
    int ok = list != NULL;
    for (size_t i = 0; ok && i < n; i++) {
      yajl_val item = v->u.array.values[i];
      if (!YAJL_IS_STRING(item)) {
        char got[256];
        config_describe_node(item, got, sizeof got);
        snprintf(err, errlen, "%s: %s[%zu]: expected a string, got %s", name, path, i, got);
        config_list_free(list);
        return -1;
      }
      ok = (list[i] = strdup(item->u.string)) != NULL;
    }
    if (!ok) {
      config_list_free(list);
      snprintf(err, errlen, "%s: out of memory", name);
      return -1;
    }
    config_store_list((char *)target + d->offset, list);
    return 0;
  }
  if (s && config_store(d, target, s) == 0) return 0;

  char expected[256], got[256];
  config_expected(d, expected, sizeof expected);
  config_describe_node(v, got, sizeof got);
  snprintf(err, errlen, "%s: %s: expected %s, got %s", name, path, expected, got);
  return -1;
}

/* Walks an object, joining nested keys with '.'. */
static int config_walk(const config_def_t *defs, void *target, const char *name,
                       const char *prefix, yajl_val obj, char *err, size_t errlen) {
  for (size_t i = 0; i < obj->u.object.len; i++) {
    char path[512];
    int n = prefix[0] ? snprintf(path, sizeof path, "%s.%s", prefix, obj->u.object.keys[i])
                      : snprintf(path, sizeof path, "%s", obj->u.object.keys[i]);
    if (n < 0 || (size_t)n >= sizeof path) {
      snprintf(err, errlen, "%s: key path too long: %.64s...", name, path);
      return -1;
    }
    yajl_val v = obj->u.object.values[i];
    int rc = (YAJL_IS_OBJECT(v) && !config_find(defs, path))
                 ? config_walk(defs, target, name, path, v, err, errlen)
                 : config_apply(defs, target, name, path, v, err, errlen);
    if (rc != 0) return rc;
  }
  return 0;
}

int config_parse_json(const config_def_t *defs, void *target, const char *name,
                      const char *json, size_t len, char *err, size_t errlen) {
  yajl_val root = conn_json_parse(name, json, len, err, errlen);
  if (!root)
    return -1;
  int rc;
  if (!YAJL_IS_OBJECT(root)) {
    snprintf(err, errlen, "%s: expected a JSON object at the top level", name);
    rc = -1;
  } else {
    rc = config_walk(defs, target, name, "", root, err, errlen);
  }
  yajl_tree_free(root);
  return rc;
}

int config_parse_file(const config_def_t *defs, void *target, const char *path, char *err,
                      size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    return -1;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      if (cap > (64u << 20)) {
        snprintf(err, errlen, "%s: larger than 64 MiB", path);
        free(buf);
        fclose(f);
        return -1;
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    snprintf(err, errlen, "%s: read error", path);
    return -1;
  }
  int rc = config_parse_json(defs, target, path, buf ? buf : "", len, err, errlen);
  free(buf);
  return rc;
}

void config_free(const config_def_t *defs, void *target) {
  for (const config_def_t *d = defs; d->key; d++) {
    if (d->type == CONFIG_LIST) {
      config_store_list((char *)target + d->offset, NULL);
      continue;
    }
    if (d->type != CONFIG_STRING) continue;
    char *s;
    memcpy(&s, (char *)target + d->offset, sizeof s);
    free(s);
    s = NULL;
    memcpy((char *)target + d->offset, &s, sizeof s);
  }
}

/* Appends text to a growing buffer; returns 0 or -1 (out of memory). */
static int config_append(char **out, size_t *len, size_t *cap, const char *text) {
  size_t n = strlen(text);
  if (*len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (*len + n + 1 > ncap) ncap *= 2;
    char *nb = realloc(*out, ncap);
    if (!nb) return -1;
    *out = nb;
    *cap = ncap;
  }
  memcpy(*out + *len, text, n + 1);
  *len += n;
  return 0;
}

char *config_docs_markdown(const config_def_t *defs) {
  static const char *const type_names[] = {"string", "integer", "boolean", "enum", "list"};
  char *out = NULL;
  size_t len = 0, cap = 0;
  int rc = config_append(&out, &len, &cap,
                         "| key | type | default | valid values | description |\n"
                         "|---|---|---|---|---|\n");
  for (const config_def_t *d = defs; rc == 0 && d->key; d++) {
    char expected[256], row[2048];
    config_expected(d, expected, sizeof expected);
    snprintf(row, sizeof row, "| `%s` | %s | `%s` | %s | %s |\n", d->key,
             type_names[d->type], d->default_value ? d->default_value : "", expected,
             d->doc);
    rc = config_append(&out, &len, &cap, row);
  }
  if (rc != 0) {
    free(out);
    return NULL;
  }
  return out;
}
