/*
 * conn_chain.c: a connector's transform chain, built from Kafka Connect's
 * keys:
 *
 *   transforms=insert,route               aliases, applied in this order
 *   transforms.<alias>.type=<name>        a transform (short or Kafka class name)
 *   transforms.<alias>.<key>=...          the transform's own keys
 *   transforms.<alias>.predicate=<name>   apply only when the predicate holds
 *   transforms.<alias>.negate=true        ... or only when it does not
 *   predicates=<name>,...                 predicates (KIP-585)
 *   predicates.<name>.type=<name>, predicates.<name>.<key>=...
 *
 * Every error names the key it is about ("transforms.route.regex: ...").
 *
 * Applying: the chain binds its JSON scope (conn_transform_int.h) to the
 * record, so consecutive built-in transforms share one parse of the key
 * and value and the record's bytes are generated once at the end. Before
 * a plugin that is not built in (it reads the bytes) the scope is flushed,
 * and after it the parsed trees are dropped (it may have changed the
 * bytes). Predicates look at the record's bytes, so the scope is flushed
 * before a predicate is tested.
 *
 * Threads: a chain is used by one thread at a time (its task's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn_transform_int.h"

typedef struct {
  char *alias;
  const conn_transform_plugin_t *plugin;
  void *state;
  bool inited;
  bool builtin;
  int pred; /* index into preds, or -1 */
  bool negate;
} conn_chain_step_t;

typedef struct {
  char *name;
  const conn_predicate_plugin_t *plugin;
  void *state;
  bool inited;
} conn_chain_pred_t;

struct conn_chain {
  conn_chain_step_t *steps;
  size_t n_steps;
  conn_chain_pred_t *preds;
  size_t n_preds;
  conn__jscope_t scope;
  const char *failed; /* the plugin name of the step the last apply failed at */
};

const char *conn_chain_failed_class(const conn_chain_t *chain) {
  return chain && chain->failed ? chain->failed : "transforms";
}

static const conn_def_t conn_chain_defs[] = {
    {.name = "transforms", .type = CONN_T_LIST, .default_value = "",
     .importance = CONN_IMP_LOW, .doc = "Aliases for the transformations to be applied to records."},
    {.name = "predicates", .type = CONN_T_LIST, .default_value = "",
     .importance = CONN_IMP_LOW, .doc = "Aliases for the predicates used by transformations."},
    CONN_DEF_END,
};

void conn_chain_free(conn_chain_t *chain) {
  if (!chain) return;
  for (size_t i = 0; i < chain->n_steps; i++) {
    conn_chain_step_t *s = &chain->steps[i];
    if (s->inited && s->plugin->close) s->plugin->close(s->state);
    free(s->state);
    free(s->alias);
  }
  for (size_t i = 0; i < chain->n_preds; i++) {
    conn_chain_pred_t *p = &chain->preds[i];
    if (p->inited && p->plugin->close) p->plugin->close(p->state);
    free(p->state);
    free(p->name);
  }
  free(chain->steps);
  free(chain->preds);
  conn__jscope_free(&chain->scope);
  free(chain);
}

/* The keys under prefix ("transforms.<alias>."), prefix removed, without
 * the chain's own type/predicate/negate. */
static int conn_chain_subconfig(const conn_config_t *cfg, const char *prefix,
                                conn_config_t *sub) {
  size_t plen = strlen(prefix);
  conn_config_init(sub);
  for (size_t i = 0; i < cfg->count; i++) {
    const char *k = cfg->keys[i];
    if (strncmp(k, prefix, plen) != 0) continue;
    k += plen;
    if (strcmp(k, "type") == 0 || strcmp(k, "predicate") == 0 || strcmp(k, "negate") == 0)
      continue;
    if (conn_config_set(sub, k, cfg->values[i]) != 0) return -ENOMEM;
  }
  return 0;
}

/* Writes msg (from a plugin's validation or init) into err under prefix:
 * "<prefix><key>: why" when msg starts with one of defs' keys, else
 * "<prefix without the dot>: msg". */
static int conn_chain_keyed_err(char *err, size_t errlen, const char *prefix,
                                const conn_def_t *defs, const char *msg) {
  for (size_t i = 0; defs && defs[i].name; i++) {
    size_t n = strlen(defs[i].name);
    if (strncmp(msg, defs[i].name, n) == 0 && msg[n] == ':')
      return conn__terr(err, errlen, "%s%s", prefix, msg);
  }
  return conn__terr(err, errlen, "%.*s: %s", (int)(strlen(prefix) - 1), prefix, msg);
}

/* Validates and initialises one plugin instance under prefix. */
static int conn_chain_init_one(const conn_config_t *cfg, const char *prefix,
                               const conn_def_t *defs, size_t state_size,
                               int (*init)(void *, const conn_config_t *, char *, size_t),
                               void **state, bool *inited, char *err, size_t errlen) {
  conn_config_t sub;
  char msg[512] = "";
  int rc = conn_chain_subconfig(cfg, prefix, &sub);
  if (rc != 0) {
    conn_config_free(&sub);
    return conn__terr(err, errlen, "out of memory");
  }
  if (conn_config_validate(defs, &sub, NULL, NULL, msg, sizeof msg) > 0) {
    conn_config_free(&sub);
    return conn_chain_keyed_err(err, errlen, prefix, defs, msg);
  }
  *state = calloc(1, state_size ? state_size : 1);
  if (!*state) {
    conn_config_free(&sub);
    return conn__terr(err, errlen, "out of memory");
  }
  *inited = true; /* close runs even after a failed init: it frees what init made */
  rc = init ? init(*state, &sub, msg, sizeof msg) : 0;
  conn_config_free(&sub);
  if (rc != 0) return conn_chain_keyed_err(err, errlen, prefix, defs, msg);
  return 0;
}

static int conn_chain_add_preds(conn_chain_t *c, const conn_config_t *cfg, char *err,
                                size_t errlen) {
  char **names = conn_get_list(conn_chain_defs, cfg, "predicates");
  if (!names) return conn__terr(err, errlen, "out of memory");
  size_t n = 0;
  while (names[n]) n++;
  int rc = 0;
  c->preds = calloc(n ? n : 1, sizeof *c->preds);
  if (!c->preds) rc = conn__terr(err, errlen, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char key[512];
    if (!*names[i]) {
      rc = conn__terr(err, errlen, "predicates: empty predicate name in the list");
      break;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(names[j], names[i]) == 0)
        rc = conn__terr(err, errlen, "predicates: duplicate predicate name '%s'", names[i]);
    if (rc) break;
    conn_chain_pred_t *p = &c->preds[c->n_preds++];
    if (!(p->name = strdup(names[i]))) {
      rc = conn__terr(err, errlen, "out of memory");
      break;
    }
    snprintf(key, sizeof key, "predicates.%s.type", names[i]);
    const char *type = conn_config_get(cfg, key);
    if (!type || !*type) {
      rc = conn__terr(err, errlen, "%s: missing (the predicate's type, e.g. TopicNameMatches)",
                      key);
      break;
    }
    if (!(p->plugin = conn_predicate_find(type))) {
      rc = conn__terr(err, errlen,
                      "%s: unknown predicate '%s' (known: TopicNameMatches, HasHeaderKey, "
                      "RecordIsTombstone)",
                      key, type);
      break;
    }
    snprintf(key, sizeof key, "predicates.%s.", names[i]);
    rc = conn_chain_init_one(cfg, key, p->plugin->defs, p->plugin->state_size, p->plugin->init,
                             &p->state, &p->inited, err, errlen);
  }
  conn_list_free(names);
  return rc;
}

/* Kafka's boolean parsing: "true"/"false", any case. */
static int conn_chain_bool(const char *v, bool *out) {
  if (strcasecmp(v, "true") == 0) *out = true;
  else if (strcasecmp(v, "false") == 0) *out = false;
  else return -1;
  return 0;
}

static int conn_chain_add_steps(conn_chain_t *c, const conn_config_t *cfg, char *err,
                                size_t errlen) {
  char **aliases = conn_get_list(conn_chain_defs, cfg, "transforms");
  if (!aliases) return conn__terr(err, errlen, "out of memory");
  size_t n = 0;
  while (aliases[n]) n++;
  int rc = 0;
  c->steps = calloc(n ? n : 1, sizeof *c->steps);
  if (!c->steps) rc = conn__terr(err, errlen, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *alias = aliases[i];
    char key[512];
    if (!*alias) {
      rc = conn__terr(err, errlen, "transforms: empty alias in the list");
      break;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(aliases[j], alias) == 0)
        rc = conn__terr(err, errlen, "transforms: duplicate alias '%s'", alias);
    if (rc) break;
    conn_chain_step_t *s = &c->steps[c->n_steps++];
    s->pred = -1;
    if (!(s->alias = strdup(alias))) {
      rc = conn__terr(err, errlen, "out of memory");
      break;
    }
    snprintf(key, sizeof key, "transforms.%s.type", alias);
    const char *type = conn_config_get(cfg, key);
    if (!type || !*type) {
      rc = conn__terr(err, errlen, "%s: missing (the transform's type, e.g. InsertField$Value)",
                      key);
      break;
    }
    if (!(s->plugin = conn_transform_find(type))) {
      rc = conn__terr(err, errlen, "%s: unknown transform '%s'", key, type);
      break;
    }
    s->builtin = conn__transform_builtin(s->plugin);
    snprintf(key, sizeof key, "transforms.%s.predicate", alias);
    const char *pred = conn_config_get(cfg, key);
    if (pred && *pred) {
      for (size_t p = 0; p < c->n_preds && s->pred < 0; p++)
        if (strcmp(c->preds[p].name, pred) == 0) s->pred = (int)p;
      if (s->pred < 0) {
        rc = conn__terr(err, errlen, "%s: unknown predicate '%s' (not listed in predicates)", key,
                        pred);
        break;
      }
    }
    snprintf(key, sizeof key, "transforms.%s.negate", alias);
    const char *neg = conn_config_get(cfg, key);
    if (neg && conn_chain_bool(neg, &s->negate) != 0) {
      rc = conn__terr(err, errlen, "%s: must be true or false, not '%s'", key, neg);
      break;
    }
    snprintf(key, sizeof key, "transforms.%s.", alias);
    rc = conn_chain_init_one(cfg, key, s->plugin->defs, s->plugin->state_size, s->plugin->init,
                             &s->state, &s->inited, err, errlen);
  }
  conn_list_free(aliases);
  return rc;
}

int conn_chain_new(const conn_config_t *cfg, conn_chain_t **out, char *err, size_t errlen) {
  *out = NULL;
  conn_chain_t *c = calloc(1, sizeof *c);
  if (!c) return conn__terr(err, errlen, "out of memory");
  conn__jscope_init(&c->scope);
  if (conn_chain_add_preds(c, cfg, err, errlen) != 0 ||
      conn_chain_add_steps(c, cfg, err, errlen) != 0) {
    conn_chain_free(c);
    return -1;
  }
  if (c->n_steps == 0) { /* nothing to apply: callers skip the copy a chain needs */
    conn_chain_free(c);
    c = NULL;
  }
  *out = c;
  return 0;
}

/* "<msg> (transform '<alias>' (<type>), record topic=.. partition=..
 * offset=..)": where the record is, as far as it is known. */
static int conn_chain_record_err(char *err, size_t errlen, const conn_chain_step_t *s,
                                 const conn_record_t *rec, const char *msg) {
  char where[512];
  int n = snprintf(where, sizeof where, "topic=%s", rec->topic ? rec->topic : "(none)");
  if (rec->partition >= 0 && n < (int)sizeof where)
    n += snprintf(where + n, sizeof where - (size_t)n, " partition=%d", (int)rec->partition);
  if (rec->offset >= 0 && n < (int)sizeof where)
    n += snprintf(where + n, sizeof where - (size_t)n, " offset=%lld", (long long)rec->offset);
  else if (rec->source_offset && n < (int)sizeof where)
    snprintf(where + n, sizeof where - (size_t)n, " source_offset=%s", rec->source_offset);
  return conn__terr(err, errlen, "transform '%s' (%s) failed on record %s: %s", s->alias,
                    s->plugin->name, where, msg);
}

int conn_chain_apply(conn_chain_t *chain, conn_record_t *rec, char *err, size_t errlen) {
  if (!chain || chain->n_steps == 0) return 1;
  char msg[512];
  int rc = 1;
  conn__jscope_bind(&chain->scope, rec);
  chain->failed = NULL;
  for (size_t i = 0; i < chain->n_steps && rc == 1; i++) {
    conn_chain_step_t *s = &chain->steps[i];
    chain->failed = s->plugin->name;
    msg[0] = '\0';
    if (s->pred >= 0) {
      conn_chain_pred_t *p = &chain->preds[s->pred];
      if (conn__json_flush(&chain->scope, msg, sizeof msg) != 0) {
        rc = conn_chain_record_err(err, errlen, s, rec, msg);
        break;
      }
      if (p->plugin->test(p->state, rec) == s->negate) continue; /* not applicable */
    }
    if (s->builtin) {
      rc = s->plugin->apply(s->state, rec, msg, sizeof msg);
    } else {
      if (conn__json_flush(&chain->scope, msg, sizeof msg) != 0) {
        rc = conn_chain_record_err(err, errlen, s, rec, msg);
        break;
      }
      rc = s->plugin->apply(s->state, rec, msg, sizeof msg);
      conn__jscope_drop(&chain->scope);
    }
    if (rc < 0) rc = conn_chain_record_err(err, errlen, s, rec, msg[0] ? msg : "unknown error");
  }
  if (rc == 1 && conn__json_flush(&chain->scope, msg, sizeof msg) != 0)
    rc = conn__terr(err, errlen, "transforms: %s", msg); /* the last step's output */
  if (rc >= 0) chain->failed = NULL;
  conn__jscope_unbind(&chain->scope);
  return rc;
}
