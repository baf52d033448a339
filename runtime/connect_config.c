/*
 * connect_config.c: the config keys every connector takes (Kafka Connect's
 * ConnectorConfig, SourceConnectorConfig and SinkConnectorConfig names and
 * defaults), the converters, and the validation behind POST /connectors
 * and PUT /connector-plugins/{plugin}/config/validate (Kafka's
 * ConfigInfos).
 *
 * Converters: records cross the framework as bytes. StringConverter and
 * ByteArrayConverter pass them through; JsonConverter (always with
 * schemas.enable=false semantics) requires the bytes to be JSON, so a
 * record whose value is not JSON is a conversion error handled by
 * errors.tolerance (stage VALUE_CONVERTER), as Kafka's JsonConverter
 * throws a DataException. Source plugins already write the bytes they
 * mean (a line, a JSON row), so on the source side a converter only checks.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect_int.h"

static const struct {
  const char *names[4];
  connect_conv_t conv;
} connect_convs[] = {
    {{"org.apache.kafka.connect.storage.StringConverter", "StringConverter", "string", NULL},
     CONNECT_CONV_STRING},
    {{"org.apache.kafka.connect.json.JsonConverter", "JsonConverter", "json", NULL},
     CONNECT_CONV_JSON},
    {{"org.apache.kafka.connect.converters.ByteArrayConverter", "ByteArrayConverter",
      "bytearray", NULL},
     CONNECT_CONV_BYTES},
};

int connect_conv_parse(const char *cls, connect_conv_t *out) {
  for (size_t i = 0; cls && i < sizeof connect_convs / sizeof connect_convs[0]; i++)
    for (const char *const *n = connect_convs[i].names; *n; n++)
      if (!strcmp(*n, cls)) {
        *out = connect_convs[i].conv;
        return 0;
      }
  return -1;
}

const char *connect_conv_class(connect_conv_t conv) {
  for (size_t i = 0; i < sizeof connect_convs / sizeof connect_convs[0]; i++)
    if (connect_convs[i].conv == conv) return connect_convs[i].names[0];
  return "?";
}

int connect_conv_check(connect_conv_t conv, const void *data, int32_t len, char *err,
                       size_t errlen) {
  if (conv != CONNECT_CONV_JSON || !data) return 0;
  char e[256];
  yajl_val v = conn_json_parse(NULL, data, (size_t)len, e, sizeof e);
  if (v) {
    yajl_tree_free(v);
    return 0;
  }
  snprintf(err, errlen,
           "Converting byte[] to Kafka Connect data failed due to serialization error: %s", e);
  return -1;
}

static int connect_validate_converter(const char *value, char *msg, size_t len) {
  connect_conv_t c;
  if (!*value || connect_conv_parse(value, &c) == 0) return 0;
  snprintf(msg, len, "Class %s could not be found: expected "
           "org.apache.kafka.connect.json.JsonConverter, "
           "org.apache.kafka.connect.storage.StringConverter or "
           "org.apache.kafka.connect.converters.ByteArrayConverter", value);
  return -1;
}

static int connect_validate_regex(const char *value, char *msg, size_t len) {
  regex_t re;
  if (!*value) return 0;
  int rc = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
  if (rc == 0) {
    regfree(&re);
    return 0;
  }
  char e[128];
  regerror(rc, &re, e, sizeof e);
  snprintf(msg, len, "not a valid regular expression: %s", e);
  return -1;
}

static const char *const connect_tolerance_choices[] = {"none", "all", NULL};

#define CONNECT_COMMON_DEFS                                                                     \
  {"name", CONN_T_STRING, NULL, false, CONN_IMP_HIGH,                                           \
   "Globally unique name to use for this connector.", "Common", NULL, 0, 0, NULL},              \
  {"connector.class", CONN_T_STRING, NULL, false, CONN_IMP_HIGH,                               \
   "Name or alias of the connector plugin: file-source, file-sink, sqlite-source, "            \
   "sqlite-sink, postgres-source, postgres-sink (Kafka's FileStreamSource and "                 \
   "FileStreamSink class names are aliases).", "Common", NULL, 0, 0, NULL},                     \
  {"tasks.max", CONN_T_INT, "1", false, CONN_IMP_HIGH,                                          \
   "Maximum number of tasks to use for this connector.", "Common", NULL, 1, 1024, NULL},        \
  {"key.converter", CONN_T_CLASS, NULL, true, CONN_IMP_LOW,                                     \
   "Converter class for keys (the worker's key.converter when absent): JsonConverter, "         \
   "StringConverter or ByteArrayConverter.", "Common", NULL, 0, 0, connect_validate_converter}, \
  {"value.converter", CONN_T_CLASS, NULL, true, CONN_IMP_LOW,                                   \
   "Converter class for values (the worker's value.converter when absent).", "Common", NULL,    \
   0, 0, connect_validate_converter},                                                           \
  {"transforms", CONN_T_LIST, "", false, CONN_IMP_LOW,                                          \
   "Aliases for the transformations to be applied to records.", "Transforms", NULL, 0, 0,       \
   NULL},                                                                                       \
  {"predicates", CONN_T_LIST, "", false, CONN_IMP_LOW,                                          \
   "Aliases for the predicates used by transformations.", "Predicates", NULL, 0, 0, NULL},      \
  {"errors.retry.timeout", CONN_T_LONG, "0", false, CONN_IMP_MEDIUM,                            \
   "How long (ms) a retriable failure of the connector (a database that went away) is "         \
   "retried before the task fails; 0 or -1: without limit (see docs/connectors.md).",           \
   "Error Handling", NULL, -1, INT64_MAX, NULL},                                                \
  {"errors.retry.delay.max.ms", CONN_T_LONG, "60000", false, CONN_IMP_MEDIUM,                   \
   "The maximum duration in milliseconds between consecutive retry attempts.",                 \
   "Error Handling", NULL, 1, INT64_MAX, NULL},                                                 \
  {"errors.tolerance", CONN_T_STRING, "none", false, CONN_IMP_MEDIUM,                           \
   "Behavior for tolerating errors during connector operation: 'none' fails the task on "      \
   "the first bad record, 'all' skips bad records.", "Error Handling",                          \
   connect_tolerance_choices, 0, 0, NULL},                                                      \
  {"errors.log.enable", CONN_T_BOOLEAN, "false", false, CONN_IMP_MEDIUM,                        \
   "If true, write each error and the details of the failed operation to the log.",            \
   "Error Handling", NULL, 0, 0, NULL},                                                         \
  {"errors.log.include.messages", CONN_T_BOOLEAN, "false", false, CONN_IMP_MEDIUM,              \
   "Whether to include the record's key and value in the error log.", "Error Handling", NULL, \
   0, 0, NULL}

const conn_def_t connect_source_defs[] = {
    CONNECT_COMMON_DEFS,
    {"topic.creation.default.partitions", CONN_T_INT, "1", false, CONN_IMP_LOW,
     "Partitions of a destination topic the connector creates because it does not exist.",
     "Topic Creation", NULL, 1, 100000, NULL},
    {"poll.interval.ms", CONN_T_LONG, "100", false, CONN_IMP_LOW,
     "How long the framework waits before polling again when a poll returned nothing.",
     "Common", NULL, 1, 3600000, NULL},
    CONN_DEF_END,
};

const conn_def_t connect_sink_defs[] = {
    CONNECT_COMMON_DEFS,
    {"topics", CONN_T_LIST, "", false, CONN_IMP_HIGH,
     "List of topics to consume, separated by commas.", "Common", NULL, 0, 0, NULL},
    {"topics.regex", CONN_T_STRING, "", false, CONN_IMP_HIGH,
     "Regular expression (POSIX extended, matched against the whole name) giving the topics "
     "to consume.", "Common", NULL, 0, 0, connect_validate_regex},
    {"errors.deadletterqueue.topic.name", CONN_T_STRING, "", false, CONN_IMP_MEDIUM,
     "The name of the topic to be used as the dead letter queue (DLQ) for records that error "
     "when processed by this sink connector, its transformations or converters. Empty: none.",
     "Error Handling", NULL, 0, 0, NULL},
    {"errors.deadletterqueue.topic.partitions", CONN_T_INT, "1", false, CONN_IMP_LOW,
     "Partitions of the dead letter queue topic when the framework creates it.",
     "Error Handling", NULL, 1, 100000, NULL},
    {"errors.deadletterqueue.context.headers.enable", CONN_T_BOOLEAN, "false", false,
     CONN_IMP_MEDIUM,
     "If true, add headers containing error context to the messages written to the dead "
     "letter queue (__connect.errors.*).", "Error Handling", NULL, 0, 0, NULL},
    {"consumer.override.max.poll.records", CONN_T_INT, "500", false, CONN_IMP_LOW,
     "Most records one put receives (the sink's batch bound, Kafka's max.poll.records).",
     "Common", NULL, 1, 1000000, NULL},
    CONN_DEF_END,
};

static const conn_def_t *connect_common_defs(const conn_plugin_t *p) {
  return p && p->kind == CONN_SINK ? connect_sink_defs : connect_source_defs;
}

int connect_common_parse(const connect_t *c, const conn_config_t *cfg, connect_common_t *out) {
  memset(out, 0, sizeof *out);
  const conn_plugin_t *p = conn_plugin_find(conn_config_get(cfg, "connector.class"));
  const conn_def_t *d = connect_common_defs(p);
  const char *kc = conn_config_get(cfg, "key.converter");
  const char *vc = conn_config_get(cfg, "value.converter");
  if (!kc || !*kc) kc = c->key_conv;
  if (!vc || !*vc) vc = c->value_conv;
  if (connect_conv_parse(kc, &out->key_conv) != 0) out->key_conv = CONNECT_CONV_STRING;
  if (connect_conv_parse(vc, &out->value_conv) != 0) out->value_conv = CONNECT_CONV_STRING;
  out->tolerate_all = !strcmp(conn_get_string(d, cfg, "errors.tolerance"), "all");
  out->retry_timeout_ms = conn_get_long(d, cfg, "errors.retry.timeout");
  out->retry_delay_max_ms = conn_get_long(d, cfg, "errors.retry.delay.max.ms");
  out->log_errors = conn_get_bool(d, cfg, "errors.log.enable");
  out->log_messages = conn_get_bool(d, cfg, "errors.log.include.messages");
  if (d == connect_sink_defs) {
    const char *dlq = conn_get_string(d, cfg, "errors.deadletterqueue.topic.name");
    if (dlq && *dlq && !(out->dlq_topic = strdup(dlq))) return -ENOMEM;
    out->dlq_context = conn_get_bool(d, cfg, "errors.deadletterqueue.context.headers.enable");
    out->dlq_partitions = (int32_t)conn_get_long(d, cfg, "errors.deadletterqueue.topic.partitions");
    out->max_poll_records = conn_get_long(d, cfg, "consumer.override.max.poll.records");
    if (c->o.offset_flush_interval_ms > 0 && out->max_poll_records <= 0) out->max_poll_records = 500;
  } else {
    out->create_partitions = (int32_t)conn_get_long(d, cfg, "topic.creation.default.partitions");
    out->poll_interval_ms = conn_get_long(d, cfg, "poll.interval.ms");
    /* A plugin's own poll.interval.ms (the JDBC sources' 5000) governs how
     * often it is asked; the framework then waits at most a second. */
    if (out->poll_interval_ms > 1000) out->poll_interval_ms = 1000;
  }
  return 0;
}

void connect_common_free(connect_common_t *cc) {
  free(cc->dlq_topic);
  cc->dlq_topic = NULL;
}

/* ---- ConfigInfos ---------------------------------------------------------- */

static void cg_str(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}
static void cg_kv(yajl_gen g, const char *k, const char *v) {
  cg_str(g, k);
  if (v) cg_str(g, v);
  else yajl_gen_null(g);
}

static const char *connect_type_name(conn_type_t t) {
  static const char *const names[] = {"STRING", "INT",      "LONG", "DOUBLE",
                                      "BOOLEAN", "LIST", "PASSWORD", "CLASS"};
  return names[t];
}

void connect_gen_definition(yajl_gen g, const conn_def_t *d, int order) {
  static const char *const imp[] = {"HIGH", "MEDIUM", "LOW"};
  yajl_gen_map_open(g);
  cg_kv(g, "name", d->name);
  cg_kv(g, "type", connect_type_name(d->type));
  cg_str(g, "required");
  yajl_gen_bool(g, !d->default_value && !d->optional);
  cg_kv(g, "default_value", d->default_value);
  cg_kv(g, "importance", imp[d->importance]);
  cg_kv(g, "documentation", d->doc ? d->doc : "");
  cg_kv(g, "group", d->group);
  cg_kv(g, "width", "NONE");
  cg_kv(g, "display_name", d->name);
  cg_str(g, "dependents");
  yajl_gen_array_open(g);
  yajl_gen_array_close(g);
  cg_str(g, "order");
  yajl_gen_integer(g, order);
  yajl_gen_map_close(g);
}

/* One entry of the ConfigInfos being built. */
typedef struct {
  const conn_def_t *def;
  const char *value;
  char *errors[8];
  int nerr;
  conn_def_t *owned; /* def when made here (a transform's key): name and group malloc'd */
} cc_item_t;

typedef struct {
  cc_item_t *items;
  size_t n;
  int errors;
  char *first;  /* "<key>: <message>\n" lines */
  size_t first_len, first_cap;
} cc_t;

static void cc_error(cc_t *cc, const char *key, const char *msg) {
  cc->errors++;
  cc_item_t *it = NULL;
  for (size_t i = 0; i < cc->n; i++)
    if (!strcmp(cc->items[i].def->name, key)) it = &cc->items[i];
  if (it && it->nerr < 8) it->errors[it->nerr++] = strdup(msg);
  size_t need = strlen(key) + strlen(msg) + 4;
  if (cc->first_len + need + 1 > cc->first_cap) {
    size_t nc = (cc->first_len + need + 1) * 2;
    char *nf = realloc(cc->first, nc);
    if (!nf) return;
    cc->first = nf;
    cc->first_cap = nc;
  }
  /* Kafka's messages name their key ("Invalid value x for configuration
   * tasks.max: ..."); the others get it in front. */
  if (strstr(msg, key)) cc->first_len += (size_t)sprintf(cc->first + cc->first_len, "%s\n", msg);
  else cc->first_len += (size_t)sprintf(cc->first + cc->first_len, "%s: %s\n", key, msg);
}

/* Adds defs' values (validated) to cc, skipping keys already present and
 * keys that `exclude` defines (a plugin's own definition of a common key,
 * such as the JDBC sources' poll.interval.ms, wins). */
static void cc_add(cc_t *cc, const conn_def_t *defs, const conn_def_t *exclude,
                   const conn_config_t *cfg) {
  conn_value_t *vals = NULL;
  size_t nv = 0;
  conn_config_validate(defs, cfg, &vals, &nv, NULL, 0);
  cc_item_t *grown = realloc(cc->items, (cc->n + nv + 1) * sizeof *grown);
  if (!grown) {
    conn_values_free(vals, nv);
    return;
  }
  cc->items = grown;
  for (size_t i = 0; i < nv; i++) {
    bool dup = exclude && conn_def_find(exclude, vals[i].def->name);
    for (size_t k = 0; k < cc->n; k++)
      if (!strcmp(cc->items[k].def->name, vals[i].def->name)) dup = true;
    if (dup) continue;
    cc_item_t *it = &cc->items[cc->n++];
    memset(it, 0, sizeof *it);
    it->def = vals[i].def;
    it->value = vals[i].value;
    for (int e = 0; e < 4 && vals[i].errors[e]; e++) cc_error(cc, it->def->name, vals[i].errors[e]);
  }
  conn_values_free(vals, nv);
}

/* Kafka's ConnectorConfig.NAME_CONFIG validator
 * (NonEmptyStringWithoutControlChars): no ASCII control characters. */
static void connect_check_name(cc_t *cc, const char *name) {
  char found[256] = "";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p && o < sizeof found - 8; p++)
    if (*p < 32 || *p == 127)
      o += (size_t)snprintf(found + o, sizeof found - o, "%s%u", o ? ", " : "", *p);
  if (!o) return;
  size_t len = strlen(name) + o + 160;
  char *msg = malloc(len);
  if (!msg) return;
  snprintf(msg, len, "Invalid value %s for configuration name: String may not contain control "
           "sequences but had the following ASCII chars: %s", name, found);
  cc_error(cc, "name", msg);
  free(msg);
}

/* Kafka's SinkConnectorConfig.validate: a sink whose dead letter queue is
 * one of the topics it consumes would feed its own failures back to
 * itself, forever. topics_regex is matched against the whole name. */
static void connect_check_dlq(cc_t *cc, const char *dlq, const char *topics,
                              const char *topics_regex) {
  bool loop = false;
  if (topics) {
    char *list = strdup(topics);
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t;
         t = strtok_r(NULL, ",", &save)) {
      while (*t == ' ' || *t == '\t') t++;
      size_t n = strlen(t);
      while (n && (t[n - 1] == ' ' || t[n - 1] == '\t')) t[--n] = '\0';
      if (!strcmp(t, dlq)) loop = true;
    }
    free(list);
  } else if (topics_regex) {
    size_t n = strlen(topics_regex) + 5;
    char *anchored = malloc(n);
    regex_t re;
    if (anchored) {
      snprintf(anchored, n, "^(%s)$", topics_regex);
      if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) == 0) {
        loop = regexec(&re, dlq, 0, NULL, 0) == 0;
        regfree(&re);
      }
      free(anchored);
    }
  }
  if (!loop) return;
  const char *val = topics ? topics : topics_regex;
  size_t len = strlen(dlq) + strlen(val) + 200;
  char *msg = malloc(len);
  if (!msg) return;
  if (topics)
    snprintf(msg, len, "The DLQ topic '%s' may not be included in the list of topics "
             "('topics=%s') consumed by the connector", dlq, val);
  else
    snprintf(msg, len, "The DLQ topic '%s' may not be included in the regex matching the "
             "topics ('topics.regex=%s') consumed by the connector", dlq, val);
  cc_error(cc, "errors.deadletterqueue.topic.name", msg);
  free(msg);
}

/* Appends an item for key prefix+d->name (value from cfg, else the
 * default), its definition d renamed and put in group. */
static void cc_add_prefixed(cc_t *cc, const char *prefix, const char *group, const conn_def_t *d,
                            const conn_config_t *cfg) {
  cc_item_t *grown = realloc(cc->items, (cc->n + 1) * sizeof *grown);
  conn_def_t *def = calloc(1, sizeof *def);
  size_t n = strlen(prefix) + strlen(d->name) + 1;
  char *name = malloc(n), *grp = strdup(group);
  if (grown) cc->items = grown;
  if (!grown || !def || !name || !grp) {
    free(def), free(name), free(grp);
    return;
  }
  snprintf(name, n, "%s%s", prefix, d->name);
  *def = *d;
  def->name = name;
  def->group = grp;
  const char *v = conn_config_get(cfg, name);
  cc_item_t *it = &cc->items[cc->n++];
  memset(it, 0, sizeof *it);
  it->def = it->owned = def;
  it->value = v ? v : d->default_value;
}

/* Kafka's ConnectorConfig.enrich: entries for each transformation's and
 * predicate's keys (type, predicate, negate and the plugin's own), in a
 * group "Transforms: <alias>" / "Predicates: <alias>", so that validate
 * puts an error on the key it is about. */
static void cc_add_chain(cc_t *cc, const conn_config_t *cfg) {
  static const conn_def_t tdefs[] = {
      {"type", CONN_T_CLASS, NULL, false, CONN_IMP_HIGH,
       "Class (or runnel name) of this transformation.", NULL, NULL, 0, 0, NULL},
      {"negate", CONN_T_BOOLEAN, "false", false, CONN_IMP_MEDIUM,
       "Whether the configured predicate should be negated.", NULL, NULL, 0, 0, NULL},
      {"predicate", CONN_T_STRING, NULL, true, CONN_IMP_MEDIUM,
       "The alias of a predicate used to determine whether to apply this transformation.",
       NULL, NULL, 0, 0, NULL},
  };
  static const conn_def_t pdefs[] = {
      {"type", CONN_T_CLASS, NULL, false, CONN_IMP_HIGH,
       "Class (or runnel name) of this predicate.", NULL, NULL, 0, 0, NULL},
  };
  for (int kind = 0; kind < 2; kind++) {
    const char *list = kind ? "predicates" : "transforms";
    char **aliases = conn_get_list(connect_source_defs, cfg, list);
    for (char **a = aliases; a && *a; a++) {
      if (!**a) continue;
      size_t n = strlen(*a) + 32;
      char *prefix = malloc(n), *group = malloc(n);
      if (!prefix || !group) {
        free(prefix), free(group);
        break;
      }
      snprintf(prefix, n, "%s.%s.", list, *a);
      snprintf(group, n, "%s: %s", kind ? "Predicates" : "Transforms", *a);
      size_t nd = kind ? 1 : 3;
      for (size_t i = 0; i < nd; i++) cc_add_prefixed(cc, prefix, group, kind ? &pdefs[i] : &tdefs[i], cfg);
      char key[600];
      snprintf(key, sizeof key, "%stype", prefix);
      const char *type = conn_config_get(cfg, key);
      const conn_def_t *own = NULL;
      if (type && kind == 0 && conn_transform_find(type)) own = conn_transform_find(type)->defs;
      if (type && kind == 1 && conn_predicate_find(type)) own = conn_predicate_find(type)->defs;
      for (const conn_def_t *d = own; d && d->name; d++) cc_add_prefixed(cc, prefix, group, d, cfg);
      free(prefix);
      free(group);
    }
    conn_list_free(aliases);
  }
}

int connect_config_check(const connect_t *c, const conn_plugin_t *p, const conn_config_t *cfg,
                         yajl_gen g, char *err, size_t errlen) {
  (void)c;
  cc_t cc = {0};
  const conn_def_t *common = connect_common_defs(p);
  cc_add(&cc, common, p ? p->defs : NULL, cfg);
  const char *cls = conn_config_get(cfg, "connector.class");
  if (cls && *cls && !p) {
    char msg[1024];
    int o = snprintf(msg, sizeof msg, "Failed to find any class that implements Connector and "
                     "which name matches %s, available connectors are:", cls);
    for (const conn_plugin_t *const *q = conn_plugins(); *q && o < (int)sizeof msg; q++)
      o += snprintf(msg + o, sizeof msg - (size_t)o, "%s %s", q == conn_plugins() ? "" : ",",
                    (*q)->name);
    cc_error(&cc, "connector.class", msg);
  }
  if (p) {
    cc_add(&cc, p->defs, NULL, cfg);
    const char *name = conn_config_get(cfg, "name");
    if (name && !*name) cc_error(&cc, "name", "Connector name must not be empty");
    else if (name) connect_check_name(&cc, name);
    if (p->kind == CONN_SINK) {
      const char *topics = conn_config_get(cfg, "topics");
      const char *re = conn_config_get(cfg, "topics.regex");
      bool has_t = topics && *topics, has_r = re && *re;
      if (has_t && has_r)
        cc_error(&cc, "topics", "topics and topics.regex are mutually exclusive options, but "
                 "both are set.");
      else if (!has_t && !has_r)
        cc_error(&cc, "topics", "Must configure one of topics or topics.regex");
      const char *dlq = conn_config_get(cfg, "errors.deadletterqueue.topic.name");
      if (dlq && *dlq && log_topic_name_validate(dlq, NULL) != 0)
        cc_error(&cc, "errors.deadletterqueue.topic.name", "not a valid topic name");
      else if (dlq && *dlq)
        connect_check_dlq(&cc, dlq, has_t ? topics : NULL, has_r && !has_t ? re : NULL);
    }
    static const char *const schema_keys[] = {"key.converter.schemas.enable",
                                              "value.converter.schemas.enable"};
    for (int i = 0; i < 2; i++) {
      const char *v = conn_config_get(cfg, schema_keys[i]);
      if (v && strcmp(v, "false") != 0)
        cc_error(&cc, i ? "value.converter" : "key.converter",
                 i ? "value.converter.schemas.enable: runnel's JsonConverter reads and writes "
                     "plain JSON (schemas.enable=false); only false is accepted"
                   : "key.converter.schemas.enable: runnel's JsonConverter reads and writes "
                     "plain JSON (schemas.enable=false); only false is accepted");
    }
    if (cc.errors == 0 && p->validate) {
      const char *key = NULL;
      char msg[512] = "";
      if (p->validate(cfg, &key, msg, sizeof msg) != 0)
        cc_error(&cc, key ? key : "connector.class", msg);
    }
    cc_add_chain(&cc, cfg);
    if (cc.errors == 0) {
      conn_chain_t *chain = NULL;
      char msg[512] = "";
      if (conn_chain_new(cfg, &chain, msg, sizeof msg) != 0) {
        /* The message starts with the key it is about. */
        char key[256] = "transforms";
        const char *colon = strstr(msg, ": ");
        if (colon && (size_t)(colon - msg) < sizeof key && !memchr(msg, ' ', (size_t)(colon - msg))) {
          memcpy(key, msg, (size_t)(colon - msg));
          key[colon - msg] = '\0';
          cc_error(&cc, key, colon + 2);
        } else {
          cc_error(&cc, "transforms", msg);
        }
      }
      conn_chain_free(chain);
    }
  }
  if (g) {
    yajl_gen_map_open(g);
    cg_kv(g, "name", p ? p->name : (cls ? cls : ""));
    cg_str(g, "error_count");
    yajl_gen_integer(g, cc.errors);
    cg_str(g, "groups");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < cc.n; i++) {
      const char *grp = cc.items[i].def->group ? cc.items[i].def->group : "Common";
      bool seen = false;
      for (size_t k = 0; k < i; k++) {
        const char *gk = cc.items[k].def->group ? cc.items[k].def->group : "Common";
        if (!strcmp(gk, grp)) seen = true;
      }
      if (!seen) cg_str(g, grp);
    }
    yajl_gen_array_close(g);
    cg_str(g, "configs");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < cc.n; i++) {
      cc_item_t *it = &cc.items[i];
      yajl_gen_map_open(g);
      cg_str(g, "definition");
      connect_gen_definition(g, it->def, (int)i + 1);
      cg_str(g, "value");
      yajl_gen_map_open(g);
      cg_kv(g, "name", it->def->name);
      cg_kv(g, "value", it->def->type == CONN_T_PASSWORD && it->value ? "[hidden]" : it->value);
      cg_str(g, "recommended_values");
      yajl_gen_array_open(g);
      for (const char *const *ch = it->def->choices; ch && *ch; ch++) cg_str(g, *ch);
      yajl_gen_array_close(g);
      cg_str(g, "errors");
      yajl_gen_array_open(g);
      for (int e = 0; e < it->nerr; e++) cg_str(g, it->errors[e] ? it->errors[e] : "");
      yajl_gen_array_close(g);
      cg_str(g, "visible");
      yajl_gen_bool(g, 1);
      yajl_gen_map_close(g);
      yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
  }
  if (err && errlen) {
    err[0] = '\0';
    if (cc.errors)
      snprintf(err, errlen, "Connector configuration is invalid and contains the following %d "
               "error(s):\n%sYou can also find the above list of errors at the endpoint "
               "`/connector-plugins/{connectorType}/config/validate`", cc.errors,
               cc.first ? cc.first : "");
  }
  for (size_t i = 0; i < cc.n; i++) {
    for (int e = 0; e < cc.items[i].nerr; e++) free(cc.items[i].errors[e]);
    if (cc.items[i].owned) {
      free((char *)cc.items[i].owned->name);
      free((char *)cc.items[i].owned->group);
      free(cc.items[i].owned);
    }
  }
  free(cc.items);
  free(cc.first);
  return cc.errors;
}

/* ---- the plugin catalogue ----------------------------------------------------- */

static void cg_plugin(yajl_gen g, const char *cls, const char *type, const char *version) {
  yajl_gen_map_open(g);
  cg_kv(g, "class", cls);
  cg_kv(g, "type", type);
  cg_kv(g, "version", version ? version : "");
  yajl_gen_map_close(g);
}

void connect_gen_plugins(yajl_gen g, bool connectors_only) {
  yajl_gen_array_open(g);
  for (const conn_plugin_t *const *p = conn_plugins(); *p; p++)
    cg_plugin(g, (*p)->name, (*p)->kind == CONN_SOURCE ? "source" : "sink", (*p)->version);
  /* Kafka 3.2+ (KIP-769) with connectorsOnly=false: the transformations
   * and predicates too. They are built in, so their version is runnel's,
   * as Kafka's own transforms report Kafka's. */
  for (const conn_transform_plugin_t *const *t = conn_transforms(); !connectors_only && *t; t++)
    cg_plugin(g, (*t)->name, "transformation", RUNNEL_VERSION);
  for (const conn_predicate_plugin_t *const *q = conn_predicates(); !connectors_only && *q; q++)
    cg_plugin(g, (*q)->name, "predicate", RUNNEL_VERSION);
  yajl_gen_array_close(g);
}

int connect_gen_plugin_config(const char *plugin, yajl_gen g) {
  const conn_plugin_t *p = conn_plugin_find(plugin);
  if (!p) return -ENOENT;
  /* As Kafka's KIP-769 endpoint: the plugin's own keys. */
  yajl_gen_array_open(g);
  int order = 1;
  for (const conn_def_t *d = p->defs; d && d->name; d++) connect_gen_definition(g, d, order++);
  yajl_gen_array_close(g);
  return 0;
}

int connect_gen_validate(const connect_t *c, const char *plugin, const conn_config_t *cfg,
                         yajl_gen g) {
  const conn_plugin_t *p = conn_plugin_find(plugin);
  if (!p) return -ENOENT;
  connect_config_check(c, p, cfg, g, NULL, 0);
  return 0;
}
