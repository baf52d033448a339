/*
 * conn_predicate.c: the predicates of Kafka Connect (KIP-585) that decide
 * whether a transform applies to a record: TopicNameMatches, HasHeaderKey
 * and RecordIsTombstone, and their registry (connector.h).
 */
#include <stdlib.h>
#include <string.h>

#include "conn_transform_int.h"

/* ---- TopicNameMatches ------------------------------------------------------ */

static const conn_def_t topic_defs[] = {
    {.name = "pattern", .type = CONN_T_STRING, .importance = CONN_IMP_MEDIUM,
     .doc = "A POSIX extended regular expression that must match the whole topic name.",
     .validate = conn__tv_nonempty},
    CONN_DEF_END,
};

typedef struct {
  conn__regex_t re;
  char *last; /* the last topic tested, and its result: records of a task */
  bool last_match; /* mostly share a topic, and strcmp is cheaper than regexec */
} topic_pred_t;

static int topic_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  topic_pred_t *p = st;
  char msg[256];
  if (conn__regex_compile(&p->re, conn_get_string(topic_defs, cfg, "pattern"), msg, sizeof msg))
    return conn__terr(err, errlen, "pattern: %s", msg);
  return 0;
}

static bool topic_test(void *st, const conn_record_t *rec) {
  topic_pred_t *p = st;
  if (!rec->topic) return false;
  if (p->last && strcmp(p->last, rec->topic) == 0) return p->last_match;
  bool m = conn__regex_matches(&p->re, rec->topic, NULL);
  free(p->last);
  p->last = strdup(rec->topic); /* NULL on ENOMEM: no cache */
  p->last_match = m;
  return m;
}

static void topic_close(void *st) {
  topic_pred_t *p = st;
  conn__regex_free(&p->re);
  free(p->last);
}

static const char *const topic_aliases[] = {
    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches", NULL};

static const conn_predicate_plugin_t conn__topic_name_matches = {
    .name = "TopicNameMatches", .aliases = topic_aliases, .defs = topic_defs,
    .state_size = sizeof(topic_pred_t), .init = topic_init, .test = topic_test,
    .close = topic_close};

/* ---- HasHeaderKey ---------------------------------------------------------------- */

static const conn_def_t header_defs[] = {
    {.name = "name", .type = CONN_T_STRING, .importance = CONN_IMP_MEDIUM,
     .doc = "The header name.", .validate = conn__tv_nonempty},
    CONN_DEF_END,
};

typedef struct {
  char *name;
} header_pred_t;

static int header_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  header_pred_t *p = st;
  p->name = strdup(conn_get_string(header_defs, cfg, "name"));
  return p->name ? 0 : conn__terr(err, errlen, "out of memory");
}

static bool header_test(void *st, const conn_record_t *rec) {
  return conn_record_header(rec, ((header_pred_t *)st)->name) != NULL;
}

static void header_close(void *st) {
  free(((header_pred_t *)st)->name);
}

static const char *const header_aliases[] = {
    "org.apache.kafka.connect.transforms.predicates.HasHeaderKey", NULL};

static const conn_predicate_plugin_t conn__has_header_key = {
    .name = "HasHeaderKey", .aliases = header_aliases, .defs = header_defs,
    .state_size = sizeof(header_pred_t), .init = header_init, .test = header_test,
    .close = header_close};

/* ---- RecordIsTombstone ------------------------------------------------------------ */

static const conn_def_t tomb_defs[] = {CONN_DEF_END};

static bool tomb_test(void *st, const conn_record_t *rec) {
  return rec->value == NULL;
}

static const char *const tomb_aliases[] = {
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone", NULL};

static const conn_predicate_plugin_t conn__record_is_tombstone = {
    .name = "RecordIsTombstone", .aliases = tomb_aliases, .defs = tomb_defs, .state_size = 0,
    .test = tomb_test};

/* ---- registry ----------------------------------------------------------------------- */

static const conn_predicate_plugin_t *const conn__predicate_table[] = {
    &conn__topic_name_matches, &conn__has_header_key, &conn__record_is_tombstone, NULL};

const conn_predicate_plugin_t *const *conn_predicates(void) {
  return conn__predicate_table;
}

const conn_predicate_plugin_t *conn_predicate_find(const char *name) {
  for (size_t i = 0; name && conn__predicate_table[i]; i++) {
    const conn_predicate_plugin_t *p = conn__predicate_table[i];
    if (strcmp(p->name, name) == 0) return p;
    for (size_t a = 0; p->aliases && p->aliases[a]; a++)
      if (strcmp(p->aliases[a], name) == 0) return p;
  }
  return NULL;
}
