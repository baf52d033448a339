/*
 * conn_config_def.c: validation of a config map against a plugin's
 * definitions, and the typed getters. Kafka's ConfigDef is the reference,
 * including its messages, so that what users see in a 400 response or in
 * PUT /connector-plugins/{plugin}/config/validate reads as Kafka's:
 *
 *   Missing required configuration "topic" which has no default value.
 *   Invalid value abc for configuration batch.size: Not a number of type INT
 *   Invalid value 0 for configuration tasks.max: Value must be at least 1
 *   Invalid value x for configuration format: String must be one of: string, json
 *   Invalid value maybe for configuration k: Expected value to be either true or false
 *
 * As in Kafka, numbers and booleans are trimmed before parsing and booleans
 * are case-insensitive; a PASSWORD's value never appears in a message
 * ("[hidden]"); keys not in the definitions are accepted and ignored (the
 * framework and the transforms own them). runnel checks a CLASS value only
 * for being non-empty: the framework resolves connector.class itself and
 * the transform chain resolves transforms.*.type.
 *
 * The effective value of an absent key is its default, which is validated
 * like a given value, so a bad default in a plugin's table shows up in its
 * tests rather than in a running task.
 */
#include "conn_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const conn_def_t *conn_def_find(const conn_def_t *defs, const char *key) {
  for (const conn_def_t *d = defs; d && d->name; d++)
    if (strcmp(d->name, key) == 0)
      return d;
  return NULL;
}

static const char *conn_type_name(conn_type_t t) {
  switch (t) {
  case CONN_T_STRING: return "STRING";
  case CONN_T_INT: return "INT";
  case CONN_T_LONG: return "LONG";
  case CONN_T_DOUBLE: return "DOUBLE";
  case CONN_T_BOOLEAN: return "BOOLEAN";
  case CONN_T_LIST: return "LIST";
  case CONN_T_PASSWORD: return "PASSWORD";
  case CONN_T_CLASS: return "CLASS";
  }
  return "?";
}

/* s without leading and trailing white space, copied into buf (truncated
 * to its size). */
static const char *conn_trim(const char *s, char *buf, size_t len) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    n--;
  if (n >= len)
    n = len - 1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return buf;
}

/* Parses an integer as Java's Long.parseLong: optional sign, decimal
 * digits, nothing else. Returns 0 or -1. */
static int conn_parse_long(const char *s, int64_t *out) {
  char buf[64];
  conn_trim(s, buf, sizeof buf);
  if (buf[0] == '\0' || strlen(s) >= sizeof buf + 32)
    return -1;
  const char *p = buf[0] == '+' || buf[0] == '-' ? buf + 1 : buf;
  if (*p == '\0')
    return -1;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q))
      return -1;
  errno = 0;
  char *end;
  long long v = strtoll(buf, &end, 10);
  if (errno == ERANGE || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

static int conn_parse_double(const char *s, double *out) {
  char buf[128];
  conn_trim(s, buf, sizeof buf);
  if (buf[0] == '\0')
    return -1;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (*end != '\0' || errno == ERANGE)
    return -1;
  *out = v;
  return 0;
}

static int conn_parse_bool(const char *s, bool *out) {
  char buf[16];
  conn_trim(s, buf, sizeof buf);
  if (strcasecmp(buf, "true") == 0)
    *out = true;
  else if (strcasecmp(buf, "false") == 0)
    *out = false;
  else
    return -1;
  return 0;
}

static bool conn_in_choices(const char *const *choices, const char *v) {
  for (const char *const *c = choices; *c; c++)
    if (strcmp(*c, v) == 0)
      return true;
  return false;
}

static void conn_join_choices(const char *const *choices, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  for (const char *const *c = choices; *c && o < len; c++) {
    int n = snprintf(buf + o, len - o, "%s%s", c == choices ? "" : ", ", *c);
    if (n < 0)
      break;
    o += (size_t)n;
  }
}

/* Adds a message to v's errors (keeps at most 3; the array is
 * NULL-terminated). */
static void conn_value_error(conn_value_t *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_value_error(conn_value_t *v, const char *fmt, ...) {
  size_t i = 0;
  while (i < 3 && v->errors[i])
    i++;
  if (i == 3)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  v->errors[i] = msg;
}

/* Checks one value (not NULL) against its def. */
static void conn_check_value(const conn_def_t *d, const char *value, conn_value_t *v) {
  const char *shown = d->type == CONN_T_PASSWORD ? "[hidden]" : value;
  int64_t n = 0;
  double dbl;
  bool b;
  switch (d->type) {
  case CONN_T_INT:
  case CONN_T_LONG:
    if (conn_parse_long(value, &n) != 0 ||
        (d->type == CONN_T_INT && (n < INT32_MIN || n > INT32_MAX))) {
      conn_value_error(v, "Invalid value %s for configuration %s: Not a number of type %s",
                       shown, d->name, conn_type_name(d->type));
      return;
    }
    if (d->min < d->max) {
      if (n < d->min)
        conn_value_error(v, "Invalid value %s for configuration %s: Value must be at least %" PRId64,
                         shown, d->name, d->min);
      else if (n > d->max)
        conn_value_error(v,
                         "Invalid value %s for configuration %s: Value must be no more than %" PRId64,
                         shown, d->name, d->max);
    }
    break;
  case CONN_T_DOUBLE:
    if (conn_parse_double(value, &dbl) != 0) {
      conn_value_error(v, "Invalid value %s for configuration %s: Not a number of type DOUBLE",
                       shown, d->name);
      return;
    }
    break;
  case CONN_T_BOOLEAN:
    if (conn_parse_bool(value, &b) != 0) {
      conn_value_error(v,
                       "Invalid value %s for configuration %s: Expected value to be either true "
                       "or false",
                       shown, d->name);
      return;
    }
    break;
  case CONN_T_CLASS:
    if (value[0] == '\0') {
      conn_value_error(v, "Invalid value %s for configuration %s: Class name must not be empty",
                       shown, d->name);
      return;
    }
    break;
  case CONN_T_LIST:
    if (d->choices) { /* Kafka's ValidList: every item is one of choices */
      conn_config_t one; /* the value alone, to split it as the getter does */
      conn_config_init(&one);
      if (conn_config_set(&one, d->name, value) == 0) {
        char **items = conn_get_list(NULL, &one, d->name);
        for (size_t i = 0; items && items[i]; i++) {
          if (!conn_in_choices(d->choices, items[i])) {
            char list[512];
            conn_join_choices(d->choices, list, sizeof list);
            conn_value_error(v, "Invalid value %s for configuration %s: String must be one of: %s",
                             items[i], d->name, list);
            break;
          }
        }
        conn_list_free(items);
      }
      conn_config_free(&one);
    }
    break;
  case CONN_T_STRING:
  case CONN_T_PASSWORD:
    if (d->choices && !conn_in_choices(d->choices, value)) {
      char list[512];
      conn_join_choices(d->choices, list, sizeof list);
      conn_value_error(v, "Invalid value %s for configuration %s: String must be one of: %s",
                       shown, d->name, list);
      return;
    }
    break;
  }
  if (d->validate && v->errors[0] == NULL) {
    char msg[256] = "";
    if (d->validate(value, msg, sizeof msg) != 0)
      conn_value_error(v, "Invalid value %s for configuration %s: %s", shown, d->name,
                       msg[0] ? msg : "invalid");
  }
}

int conn_config_validate(const conn_def_t *defs, const conn_config_t *cfg, conn_value_t **out,
                         size_t *n_out, char *err, size_t errlen) {
  size_t n = 0;
  for (const conn_def_t *d = defs; d && d->name; d++)
    n++;
  conn_value_t *vals = calloc(n ? n : 1, sizeof *vals);
  if (!vals) {
    if (err)
      snprintf(err, errlen, "out of memory");
    return 1;
  }
  int errors = 0;
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    const conn_def_t *d = &defs[i];
    conn_value_t *v = &vals[i];
    v->def = d;
    v->value = conn_config_get(cfg, d->name);
    if (v->value == NULL)
      v->value = d->default_value;
    if (v->value == NULL) {
      if (!d->optional)
        conn_value_error(v, "Missing required configuration \"%s\" which has no default value.",
                         d->name);
    } else {
      conn_check_value(d, v->value, v);
    }
    for (size_t e = 0; v->errors[e]; e++) {
      errors++;
      if (first && err)
        snprintf(err, errlen, "%s: %s", d->name, v->errors[e]);
      first = false;
    }
  }
  if (out) {
    *out = vals;
    if (n_out)
      *n_out = n;
  } else {
    conn_values_free(vals, n);
  }
  return errors;
}

void conn_values_free(conn_value_t *v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    for (size_t e = 0; e < 4 && v[i].errors[e]; e++)
      free(v[i].errors[e]);
  free(v);
}

/* The value of key in c, else the def's default (defs may be NULL). */
static const char *conn_effective(const conn_def_t *defs, const conn_config_t *c,
                                  const char *key) {
  const char *v = conn_config_get(c, key);
  if (v)
    return v;
  const conn_def_t *d = conn_def_find(defs, key);
  return d ? d->default_value : NULL;
}

const char *conn_get_string(const conn_def_t *defs, const conn_config_t *c, const char *key) {
  return conn_effective(defs, c, key);
}

int64_t conn_get_long(const conn_def_t *defs, const conn_config_t *c, const char *key) {
  const char *v = conn_effective(defs, c, key);
  int64_t n = 0;
  if (v && conn_parse_long(v, &n) == 0)
    return n;
  /* An unvalidated bad value: fall back to the default rather than 0. */
  const conn_def_t *d = conn_def_find(defs, key);
  if (d && d->default_value && conn_parse_long(d->default_value, &n) == 0)
    return n;
  return 0;
}

bool conn_get_bool(const conn_def_t *defs, const conn_config_t *c, const char *key) {
  const char *v = conn_effective(defs, c, key);
  bool b = false;
  if (v && conn_parse_bool(v, &b) == 0)
    return b;
  const conn_def_t *d = conn_def_find(defs, key);
  if (d && d->default_value && conn_parse_bool(d->default_value, &b) == 0)
    return b;
  return false;
}

/* Kafka's LIST parsing: the value trimmed, empty means an empty list,
 * else split at commas with the white space around each item removed
 * (empty items are kept, as Kafka keeps them). */
char **conn_get_list(const conn_def_t *defs, const conn_config_t *c, const char *key) {
  const char *v = conn_effective(defs, c, key);
  if (!v)
    v = "";
  size_t items = 1;
  for (const char *p = v; *p; p++)
    items += *p == ',';
  char **list = calloc(items + 1, sizeof *list);
  if (!list)
    return NULL;
  while (isspace((unsigned char)*v))
    v++;
  if (*v == '\0')
    return list;
  size_t k = 0;
  const char *p = v;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    const char *s = p;
    while (s < end && isspace((unsigned char)*s))
      s++;
    const char *e = end;
    while (e > s && isspace((unsigned char)e[-1]))
      e--;
    list[k] = strndup(s, (size_t)(e - s));
    if (!list[k]) {
      conn_list_free(list);
      return NULL;
    }
    k++;
    if (!comma)
      break;
    p = comma + 1;
  }
  return list;
}

void conn_list_free(char **list) {
  if (!list)
    return;
  for (size_t i = 0; list[i]; i++)
    free(list[i]);
  free(list);
}
