/*
 * connect_herder.c: the herder (Kafka Connect's StandaloneHerder, with the
 * distributed herder's storage): the connectors of this worker, their
 * target states and statuses, and the thread that brings every connector
 * to its target.
 *
 * REST calls (the loop thread) only validate, append to the internal
 * topics, change the in-memory target and wake the herder; the herder
 * thread then reconciles each connector (herder_reconcile):
 *
 *   deleted             stop and free its tasks, tombstone its statuses
 *   config changed      stop its tasks, recompute task configs (generation)
 *   target STOPPED      no tasks                          status STOPPED
 *   target PAUSED       task threads stopped (committed)  status PAUSED
 *   target STARTED      one thread per task config        status RUNNING
 *   task FAILED         stays FAILED until a REST restart
 *
 * Stopping a task waits for its thread (a sink's final flush and commit, a
 * source's final offset commit), so it happens here, never on the loop
 * thread. The herder drops the lock while it joins threads; only it
 * creates, joins and frees tasks and connectors, so nothing it walks can
 * disappear meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect_int.h"
#include "logger.h"

/* ---- statuses --------------------------------------------------------------- */

void connect__status_write(connect_t *c, const char *connector, int task, connect_state_t s,
                           const char *trace) {
  char key[600];
  if (task < 0) snprintf(key, sizeof key, "status-connector-%s", connector);
  else snprintf(key, sizeof key, "status-task-%s-%d", connector, task);
  size_t len = 0;
  char *v = connect_store_status_value(s, trace, c->worker_id, 0, &len);
  char err[512];
  pthread_mutex_lock(&c->store_mu);
  if (v && connect_store_append(c->o.log, c->status_topic, key, v, len, err, sizeof err) != 0)
    logger_warn("connect", "cannot record the status of %s: %s", key, err);
  pthread_mutex_unlock(&c->store_mu);
  free(v);
}

static void herder_set_trace(char **dst, const char *trace) {
  free(*dst);
  *dst = trace ? strdup(trace) : NULL;
}

/* c->mu held. */
static void herder_conn_state(connect_t *c, connect_conn_t *conn, connect_state_t s,
                              const char *trace) {
  if (conn->state == s && !trace && !conn->trace) return;
  conn->state = s;
  herder_set_trace(&conn->trace, trace);
  connect__status_write(c, conn->name, -1, s, trace);
  logger_info("connect", "connector %s is %s%s%s", conn->name, connect_state_name(s),
              trace ? ": " : "", trace ? trace : "");
}

void connect__task_state(connect_task_t *t, connect_state_t s, const char *trace) {
  pthread_mutex_lock(&t->c->mu);
  bool changed = t->state != s || (trace != NULL) != (t->trace != NULL) ||
                 (trace && strcmp(trace, t->trace) != 0);
  t->state = s;
  herder_set_trace(&t->trace, trace);
  /* Retry traces change every attempt; the status topic records states. */
  if (changed && !(s == CONNECT_RUNNING && trace))
    connect__status_write(t->c, t->connector, t->id, s, trace);
  pthread_mutex_unlock(&t->c->mu);
}

/* ---- the herder thread ------------------------------------------------------ */

static connect_conn_t *herder_find(connect_t *c, const char *name) {
  for (connect_conn_t *k = c->conns; k; k = k->next)
    if (!k->deleted && !strcmp(k->name, name)) return k;
  return NULL;
}

/* Stops the threads of conn's tasks (all, or only those asking for a
 * restart) and, with free_them, frees those tasks. c->mu held; dropped while
 * joining. */
static void herder_stop_tasks(connect_t *c, connect_conn_t *conn, bool only_restart,
                              bool free_them) {
  size_t n = conn->ntasks;
  connect_task_t **victims = calloc(n + 1, sizeof *victims);
  if (!victims) return;
  size_t nv = 0;
  for (size_t i = 0; i < n; i++) {
    connect_task_t *t = conn->tasks[i];
    if (!t || (only_restart && !t->restart)) continue;
    connect_task_signal_stop(t);
    victims[nv++] = t;
  }
  pthread_mutex_unlock(&c->mu);
  for (size_t i = 0; i < nv; i++) connect_task_join(victims[i]);
  pthread_mutex_lock(&c->mu);
  if (free_them) {
    for (size_t i = 0; i < n; i++)
      for (size_t k = 0; k < nv; k++)
        if (conn->tasks[i] == victims[k]) {
          connect_task_free(victims[k]);
          conn->tasks[i] = NULL;
        }
  }
  free(victims);
}

static void herder_drop_task_cfgs(connect_conn_t *conn) {
  for (size_t i = 0; i < conn->ntask_cfgs; i++) conn_config_free(&conn->task_cfgs[i]);
  free(conn->task_cfgs);
  conn->task_cfgs = NULL;
  conn->ntask_cfgs = 0;
  free(conn->tasks);
  conn->tasks = NULL;
  conn->ntasks = 0;
}

/* Computes conn's task configs. c->mu held. */
static int herder_task_configs(connect_t *c, connect_conn_t *conn) {
  char err[1024] = "";
  /* A config read back from connect-configs was valid when written; a
   * plugin of another version may see it differently. */
  if (connect_config_check(c, conn->plugin, &conn->config, NULL, err, sizeof err) != 0) {
    herder_conn_state(c, conn, CONNECT_FAILED, err);
    return -1;
  }
  int max = (int)conn_get_long(connect_source_defs, &conn->config, "tasks.max");
  conn_config_t *cfgs = NULL;
  size_t n = 0;
  int rc;
  if (conn->plugin->task_configs) {
    rc = conn->plugin->task_configs(&conn->config, max, &cfgs, &n, err, sizeof err);
  } else {
    cfgs = calloc(1, sizeof *cfgs);
    rc = cfgs ? conn_config_copy(cfgs, &conn->config) : -ENOMEM;
    n = cfgs ? 1 : 0;
  }
  if (rc == 0 && n == 0) { /* nothing to run (yet): try again later */
    free(cfgs);
    return -1;
  }
  if (rc != 0 || !(conn->tasks = calloc(n, sizeof *conn->tasks))) {
    for (size_t i = 0; cfgs && i < n; i++) conn_config_free(&cfgs[i]);
    free(cfgs);
    herder_conn_state(c, conn, CONNECT_FAILED, err[0] ? err : "out of memory");
    return -1;
  }
  conn->task_cfgs = cfgs;
  conn->ntask_cfgs = conn->ntasks = n;
  conn->running_generation = conn->generation;
  return 0;
}

static void herder_free_conn(connect_conn_t *conn) {
  herder_drop_task_cfgs(conn);
  free(conn->name);
  free(conn->trace);
  conn_config_free(&conn->config);
  free(conn);
}

/* Brings conn to its target. c->mu held. Returns false when conn was freed. */
static bool herder_reconcile(connect_t *c, connect_conn_t **link) {
  connect_conn_t *conn = *link;
  bool stale = conn->ntask_cfgs > 0 && conn->running_generation != conn->generation;
  if (conn->deleted || stale || conn->target == CONNECT_TARGET_STOPPED || !conn->plugin) {
    herder_stop_tasks(c, conn, false, true);
    herder_drop_task_cfgs(conn);
  }
  if (conn->deleted) {
    for (connect_conn_t **l = &c->conns; *l; l = &(*l)->next)
      if (*l == conn) {
        *l = conn->next;
        break;
      }
    logger_info("connect", "connector %s deleted", conn->name);
    /* Its tasks are freed; a connector created again under this name is
     * later in the list, so its tasks register their series afterwards. */
    connect_metrics_remove(c->o.metrics, conn->name);
    herder_free_conn(conn);
    return false;
  }
  if (conn->restart) {
    conn->restart = false;
    if (conn->state == CONNECT_FAILED || conn->state == CONNECT_RESTARTING) {
      conn->state = CONNECT_UNASSIGNED;
      herder_set_trace(&conn->trace, NULL);
    }
  }
  if (conn->target == CONNECT_TARGET_STOPPED) {
    herder_conn_state(c, conn, CONNECT_STOPPED, NULL);
    return true;
  }
  if (!conn->plugin) {
    char msg[600];
    snprintf(msg, sizeof msg, "connector.class %s: no such connector plugin",
             conn_config_get(&conn->config, "connector.class"));
    herder_conn_state(c, conn, CONNECT_FAILED, msg);
    return true;
  }
  if (conn->state == CONNECT_FAILED) return true;
  if (conn->ntask_cfgs == 0 && herder_task_configs(c, conn) != 0) return true;
  if (conn->target == CONNECT_TARGET_PAUSED) {
    herder_stop_tasks(c, conn, false, false);
    for (size_t i = 0; i < conn->ntasks; i++) {
      char err[512];
      if (!conn->tasks[i])
        conn->tasks[i] = connect_task_new(c, conn, (int)i, &conn->task_cfgs[i], err, sizeof err);
      if (conn->tasks[i] && conn->tasks[i]->state != CONNECT_PAUSED) {
        pthread_mutex_unlock(&c->mu); /* connect__task_state takes it */
        connect__task_state(conn->tasks[i], CONNECT_PAUSED, NULL);
        pthread_mutex_lock(&c->mu);
      }
    }
    herder_conn_state(c, conn, CONNECT_PAUSED, NULL);
    return true;
  }
  herder_conn_state(c, conn, CONNECT_RUNNING, NULL);
  herder_stop_tasks(c, conn, true, true); /* restart requests */
  for (size_t i = 0; i < conn->ntasks; i++) {
    connect_task_t *t = conn->tasks[i];
    if (t && t->thread_live) continue; /* running, or finished as FAILED */
    if (t) { /* left from a pause (no thread, kept for its status): replaced */
      connect_task_free(t);
      conn->tasks[i] = NULL;
    }
    char err[1024];
    t = connect_task_new(c, conn, (int)i, &conn->task_cfgs[i], err, sizeof err);
    if (!t) {
      logger_error("connect", "connector %s task %zu: %s", conn->name, i, err);
      continue;
    }
    conn->tasks[i] = t;
    if (connect_task_start(t) != 0) logger_error("connect", "%s-%zu: cannot start its thread", conn->name, i);
  }
  return true;
}

static void *herder_main(void *arg) {
  connect_t *c = arg;
  pthread_mutex_lock(&c->mu);
  while (!c->quit) {
    c->dirty = false;
    for (connect_conn_t **l = &c->conns; *l;) {
      connect_conn_t *conn = *l;
      if (herder_reconcile(c, l) && *l == conn) l = &conn->next;
      if (c->quit) break;
    }
    if (c->dirty || c->quit) continue;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
  }
  /* Shutdown: stop every task (final commits) in parallel. */
  for (connect_conn_t *conn = c->conns; conn; conn = conn->next)
    for (size_t i = 0; i < conn->ntasks; i++)
      if (conn->tasks[i]) connect_task_signal_stop(conn->tasks[i]);
  for (connect_conn_t *conn = c->conns; conn; conn = conn->next)
    herder_stop_tasks(c, conn, false, true);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void herder_wake(connect_t *c) {
  c->dirty = true;
  pthread_cond_signal(&c->cv);
}

/* ---- lifetime --------------------------------------------------------------- */

typedef struct {
  connect_stored_t *items;
  size_t n;
} herder_replay_t;

static int herder_replay(void *arg, const log_record_t *rec) {
  herder_replay_t *r = arg;
  return connect_store_apply(&r->items, &r->n, rec->key, (size_t)rec->key_len, rec->value,
                             rec->value_len);
}

static connect_conn_t *herder_new_conn(const char *name, const conn_config_t *cfg,
                                       connect_target_t target) {
  connect_conn_t *conn = calloc(1, sizeof *conn);
  if (!conn || !(conn->name = strdup(name))) {
    free(conn);
    return NULL;
  }
  conn_config_init(&conn->config);
  if (conn_config_copy(&conn->config, cfg) != 0) {
    free(conn->name);
    free(conn);
    return NULL;
  }
  conn->plugin = conn_plugin_find(conn_config_get(cfg, "connector.class"));
  conn->target = target;
  conn->state = CONNECT_UNASSIGNED;
  conn->generation = 1;
  return conn;
}

static void herder_append(connect_t *c, connect_conn_t *conn) {
  connect_conn_t **l = &c->conns;
  while (*l) l = &(*l)->next;
  *l = conn;
}

int connect_new(const connect_options_t *opts, connect_t **out, char *err, size_t errlen) {
  connect_t *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  c->o = *opts;
  c->worker_id = strdup(opts->worker_id ? opts->worker_id : "localhost:8083");
  c->config_topic = strdup(opts->config_topic ? opts->config_topic : "connect-configs");
  c->offset_topic = strdup(opts->offset_topic ? opts->offset_topic : "connect-offsets");
  c->status_topic = strdup(opts->status_topic ? opts->status_topic : "connect-status");
  c->key_conv = strdup(opts->key_converter ? opts->key_converter : "StringConverter");
  c->value_conv = strdup(opts->value_converter ? opts->value_converter : "StringConverter");
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  pthread_mutex_init(&c->store_mu, NULL);
  herder_replay_t r = {0};
  int rc = (!c->worker_id || !c->config_topic || !c->offset_topic || !c->status_topic ||
            !c->key_conv || !c->value_conv) ? -ENOMEM : 0;
  if (rc == 0) rc = connect_store_topic(opts->log, c->config_topic, err, errlen);
  if (rc == 0) rc = connect_store_topic(opts->log, c->status_topic, err, errlen);
  if (rc == 0) rc = connect_offsets_open(opts->log, c->offset_topic, &c->offsets, err, errlen);
  if (rc == 0) rc = connect_topics_open(c, err, errlen);
  if (rc == 0) rc = connect_store_read(opts->log, c->config_topic, herder_replay, &r, err, errlen);
  for (size_t i = 0; rc == 0 && i < r.n; i++) {
    if (r.items[i].config.count == 0) continue;
    connect_conn_t *conn = herder_new_conn(r.items[i].name, &r.items[i].config, r.items[i].target);
    if (!conn) {
      rc = -ENOMEM;
      break;
    }
    herder_append(c, conn);
    static const char *const tn[] = {"running", "paused", "stopped"};
    logger_info("connect", "connector %s restored from %s (%s)", conn->name, c->config_topic,
                tn[conn->target]);
  }
  connect_stored_free(r.items, r.n);
  if (rc == 0) {
    if (pthread_create(&c->herder, NULL, herder_main, c) != 0) rc = -EAGAIN;
    else c->herder_live = true;
  }
  if (rc != 0) {
    if (rc == -ENOMEM) snprintf(err, errlen, "out of memory");
    connect_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void connect_free(connect_t *c) {
  if (!c) return;
  if (c->herder_live) {
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->herder, NULL);
  }
  for (connect_conn_t *conn = c->conns, *next; conn; conn = next) {
    next = conn->next;
    herder_free_conn(conn);
  }
  connect_offsets_free(c->offsets);
  connect_topics_free(c->topics);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->store_mu);
  free(c->worker_id);
  free(c->config_topic);
  free(c->offset_topic);
  free(c->status_topic);
  free(c->key_conv);
  free(c->value_conv);
  free(c);
}

/* ---- operations ------------------------------------------------------------- */

int connect_parse_request(const char *where, const char *json, size_t len, char **name,
                          conn_config_t *cfg, char *err, size_t errlen) {
  *name = NULL;
  conn_config_init(cfg);
  yajl_val root = conn_json_parse(where, json, len, err, errlen);
  if (!root) return -EINVAL;
  int rc = -EINVAL;
  yajl_val n = conn_json_member(root, "name");
  yajl_val config = conn_json_member(root, "config");
  if (!YAJL_IS_OBJECT(root)) {
    snprintf(err, errlen, "%s: expected a JSON object {\"name\": ..., \"config\": {...}}", where);
  } else if (!config || !YAJL_IS_OBJECT(config)) {
    snprintf(err, errlen, "%s: config: expected an object of connector settings", where);
  } else if (n && !YAJL_IS_STRING(n)) {
    snprintf(err, errlen, "%s: name: expected a string", where);
  } else if (conn_config_from_tree(cfg, where, config, err, errlen) == 0) {
    const char *cn = conn_config_get(cfg, "name");
    /* Kafka's ConnectorsResource trims the request's name; control
     * characters are refused by the name's validator (connect_validate). */
    char *trimmed = strdup(n ? n->u.string : cn ? cn : "");
    char *nm = trimmed;
    if (nm) {
      while (*nm == ' ' || *nm == '\t') nm++;
      size_t l = strlen(nm);
      while (l && (nm[l - 1] == ' ' || nm[l - 1] == '\t')) nm[--l] = '\0';
    }
    if (!trimmed) {
      snprintf(err, errlen, "out of memory");
    } else if (!*nm) {
      snprintf(err, errlen, "%s: name: a connector needs a non-empty name", where);
    } else if (n && cn && strcmp(cn, nm) != 0) {
      snprintf(err, errlen, "%s: config.name: Connector name configuration (%s) doesn't match "
               "connector name in the request (%s)", where, cn, nm);
    } else if (conn_config_set(cfg, "name", nm) == 0 && (*name = strdup(nm))) {
      rc = 0;
    }
    free(trimmed);
  }
  yajl_tree_free(root);
  if (rc != 0) conn_config_free(cfg);
  return rc;
}

int connect_validate(const connect_t *c, const char *name, const conn_config_t *cfg, char *err,
                     size_t errlen) {
  const conn_plugin_t *p = conn_plugin_find(conn_config_get(cfg, "connector.class"));
  (void)name;
  return connect_config_check(c, p, cfg, NULL, err, errlen) ? -EINVAL : 0;
}

/* Appends the target-state record (when target), then the config record
 * (cfg, or a tombstone when del). c->mu held. */
static int herder_store_config(connect_t *c, const char *name, const conn_config_t *cfg,
                               bool del, const connect_target_t *target, char *err,
                               size_t errlen) {
  char key[600];
  int rc = 0;
  pthread_mutex_lock(&c->store_mu);
  if (target) {
    size_t len;
    char *v = connect_store_target_value(*target, &len);
    snprintf(key, sizeof key, "target-state-%s", name);
    rc = v ? connect_store_append(c->o.log, c->config_topic, key, v, len, err, errlen) : -ENOMEM;
    free(v);
  }
  if (rc == 0 && (cfg || del)) {
    size_t len = 0;
    char *v = cfg ? connect_store_config_value(cfg, &len) : NULL;
    snprintf(key, sizeof key, "connector-%s", name);
    rc = (cfg && !v) ? -ENOMEM
                     : connect_store_append(c->o.log, c->config_topic, key, v, len, err, errlen);
    free(v);
  }
  pthread_mutex_unlock(&c->store_mu);
  return rc < 0 && rc != -ENOMEM ? -EIO : rc;
}

static bool herder_same_config(const conn_config_t *a, const conn_config_t *b) {
  if (a->count != b->count) return false;
  for (size_t i = 0; i < a->count; i++) {
    const char *v = conn_config_get(b, a->keys[i]);
    if (!v || strcmp(v, a->values[i]) != 0) return false;
  }
  return true;
}

int connect_put(connect_t *c, const char *name, const conn_config_t *cfg, bool create_only,
                connect_target_t initial, bool *created, char *err, size_t errlen) {
  if (connect_validate(c, name, cfg, err, errlen) != 0) return -EINVAL;
  /* Kafka's source connectors ignore the DLQ keys (not in their ConfigDef);
   * say so rather than let an operator believe bad records go there. */
  const conn_plugin_t *p = conn_plugin_find(conn_config_get(cfg, "connector.class"));
  const char *dlq = conn_config_get(cfg, "errors.deadletterqueue.topic.name");
  if (p && p->kind == CONN_SOURCE && dlq && *dlq)
    logger_warn("connect", "connector %s: errors.deadletterqueue.topic.name (%s) is ignored: "
                "source connectors have no dead letter queue, as in Kafka", name, dlq);
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = 0;
  if (conn && create_only) {
    snprintf(err, errlen, "Connector %s already exists", name);
    rc = -EEXIST;
  } else if (conn && herder_same_config(&conn->config, cfg)) {
    *created = false; /* nothing changes: the tasks keep running */
  } else if (conn) {
    conn_config_t copy;
    conn_config_init(&copy);
    rc = conn_config_copy(&copy, cfg);
    if (rc == 0) rc = herder_store_config(c, name, cfg, false, NULL, err, errlen);
    if (rc == 0) {
      conn_config_free(&conn->config);
      conn->config = copy;
      conn->plugin = conn_plugin_find(conn_config_get(cfg, "connector.class"));
      conn->generation++;
      if (conn->state == CONNECT_FAILED) conn->restart = true;
      logger_info("connect", "connector %s reconfigured", name);
    } else {
      conn_config_free(&copy);
    }
    *created = false;
  } else {
    conn = herder_new_conn(name, cfg, initial);
    rc = conn ? herder_store_config(c, name, cfg, false, &initial, err, errlen) : -ENOMEM;
    if (rc == 0) {
      herder_append(c, conn);
      logger_info("connect", "connector %s created (%s)", name, conn->plugin->name);
    } else if (conn) {
      herder_free_conn(conn);
    }
    *created = true;
  }
  if (rc == 0) herder_wake(c);
  pthread_mutex_unlock(&c->mu);
  if (rc == -ENOMEM) snprintf(err, errlen, "out of memory");
  return rc;
}

int connect_delete(connect_t *c, const char *name) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = -ENOENT;
  char err[512];
  if (conn && (rc = herder_store_config(c, name, NULL, true, NULL, err, sizeof err)) == 0) {
    conn->deleted = true;
    /* Kafka leaves tombstones for the statuses too. */
    pthread_mutex_lock(&c->store_mu);
    char key[600];
    snprintf(key, sizeof key, "status-connector-%s", name);
    connect_store_append(c->o.log, c->status_topic, key, NULL, 0, err, sizeof err);
    for (size_t i = 0; i < conn->ntasks; i++) {
      snprintf(key, sizeof key, "status-task-%s-%zu", name, i);
      connect_store_append(c->o.log, c->status_topic, key, NULL, 0, err, sizeof err);
    }
    pthread_mutex_unlock(&c->store_mu);
    connect_reset_topics(c, name); /* as Kafka's onDeletion */
    herder_wake(c);
  } else if (conn) {
    logger_error("connect", "cannot delete connector %s: %s", name, err);
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int connect_set_target(connect_t *c, const char *name, connect_target_t target) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = conn ? 0 : -ENOENT;
  if (conn && conn->target != target) {
    char err[512];
    rc = herder_store_config(c, name, NULL, false, &target, err, sizeof err);
    if (rc == 0) {
      static const char *const verbs[] = {"resumed", "paused", "stopped"};
      conn->target = target;
      logger_info("connect", "connector %s %s", name, verbs[target]);
      herder_wake(c);
    } else {
      logger_error("connect", "connector %s: %s", name, err);
    }
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

static void herder_gen_status(yajl_gen g, connect_t *c, const connect_conn_t *conn);

int connect_restart(connect_t *c, const char *name, bool include_tasks, bool only_failed,
                    yajl_gen plan) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  if (!conn) {
    pthread_mutex_unlock(&c->mu);
    return -ENOENT;
  }
  /* As Kafka's RestartPlan: what restarts shows RESTARTING, without the
   * trace of its failure (it is being retried). A STOPPED connector has no
   * tasks; its restart, as in Kafka, brings it back to its target state
   * (STOPPED). */
  if (!only_failed || conn->state == CONNECT_FAILED) {
    conn->restart = true;
    if (include_tasks) {
      conn->state = CONNECT_RESTARTING;
      herder_set_trace(&conn->trace, NULL);
    }
  }
  for (size_t i = 0; include_tasks && i < conn->ntasks; i++) {
    connect_task_t *t = conn->tasks[i];
    if (t && (!only_failed || t->state == CONNECT_FAILED)) {
      t->restart = true;
      t->state = CONNECT_RESTARTING;
      herder_set_trace(&t->trace, NULL);
    }
  }
  /* The answer shows the plan, as Kafka's ConnectorStateInfo of a restart
   * request; the herder may be done with it before the reply is sent. */
  if (plan) herder_gen_status(plan, c, conn);
  herder_wake(c);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int connect_restart_task(connect_t *c, const char *name, int task) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = -ENOENT;
  if (conn && task >= 0 && (size_t)task < conn->ntasks && conn->tasks[task]) {
    conn->tasks[task]->restart = true;
    herder_wake(c);
    rc = 0;
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

static int herder_name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

char **connect_names(connect_t *c) {
  pthread_mutex_lock(&c->mu);
  size_t n = 0;
  for (connect_conn_t *k = c->conns; k; k = k->next) n += !k->deleted;
  char **names = calloc(n + 1, sizeof *names);
  size_t i = 0;
  for (connect_conn_t *k = c->conns; names && k; k = k->next)
    if (!k->deleted) names[i++] = strdup(k->name);
  pthread_mutex_unlock(&c->mu);
  if (names) qsort(names, i, sizeof *names, herder_name_cmp);
  return names;
}

int connect_config_get(connect_t *c, const char *name, conn_config_t *out) {
  conn_config_init(out);
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = conn ? conn_config_copy(out, &conn->config) : -ENOENT;
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* ---- JSON views ------------------------------------------------------------- */

static void hg_str(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void herder_gen_config(yajl_gen g, const conn_config_t *cfg) {
  yajl_gen_map_open(g);
  for (size_t i = 0; i < cfg->count; i++) {
    hg_str(g, cfg->keys[i]);
    hg_str(g, cfg->values[i]);
  }
  yajl_gen_map_close(g);
}

static const char *herder_type(const connect_conn_t *conn) {
  return !conn->plugin ? "unknown" : conn->plugin->kind == CONN_SOURCE ? "source" : "sink";
}

/* c->mu held. */
static void herder_gen_info(yajl_gen g, const connect_conn_t *conn) {
  yajl_gen_map_open(g);
  hg_str(g, "name");
  hg_str(g, conn->name);
  hg_str(g, "config");
  herder_gen_config(g, &conn->config);
  hg_str(g, "tasks");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < conn->ntask_cfgs; i++) {
    yajl_gen_map_open(g);
    hg_str(g, "connector");
    hg_str(g, conn->name);
    hg_str(g, "task");
    yajl_gen_integer(g, (long long)i);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  hg_str(g, "type");
  hg_str(g, herder_type(conn));
  yajl_gen_map_close(g);
}

static void herder_gen_state(yajl_gen g, connect_t *c, connect_state_t s, const char *trace) {
  hg_str(g, "state");
  hg_str(g, connect_state_name(s));
  hg_str(g, "worker_id");
  hg_str(g, c->worker_id);
  if (trace) {
    hg_str(g, "trace");
    hg_str(g, trace);
  }
}

static void herder_gen_task_status(yajl_gen g, connect_t *c, const connect_conn_t *conn,
                                   size_t i) {
  const connect_task_t *t = conn->tasks ? conn->tasks[i] : NULL;
  yajl_gen_map_open(g);
  hg_str(g, "id");
  yajl_gen_integer(g, (long long)i);
  herder_gen_state(g, c, t ? t->state : CONNECT_UNASSIGNED, t ? t->trace : NULL);
  yajl_gen_map_close(g);
}

/* c->mu held. */
static void herder_gen_status(yajl_gen g, connect_t *c, const connect_conn_t *conn) {
  yajl_gen_map_open(g);
  hg_str(g, "name");
  hg_str(g, conn->name);
  hg_str(g, "connector");
  yajl_gen_map_open(g);
  herder_gen_state(g, c, conn->state, conn->trace);
  yajl_gen_map_close(g);
  hg_str(g, "tasks");
  yajl_gen_array_open(g);
  if (conn->target != CONNECT_TARGET_STOPPED)
    for (size_t i = 0; i < conn->ntasks; i++) herder_gen_task_status(g, c, conn, i);
  yajl_gen_array_close(g);
  hg_str(g, "type");
  hg_str(g, herder_type(conn));
  yajl_gen_map_close(g);
}

int connect_gen_info(connect_t *c, const char *name, yajl_gen g) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  if (conn) herder_gen_info(g, conn);
  pthread_mutex_unlock(&c->mu);
  return conn ? 0 : -ENOENT;
}

int connect_gen_status(connect_t *c, const char *name, yajl_gen g) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  if (conn) herder_gen_status(g, c, conn);
  pthread_mutex_unlock(&c->mu);
  return conn ? 0 : -ENOENT;
}

int connect_gen_task_status(connect_t *c, const char *name, int task, yajl_gen g) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  int rc = -ENOENT;
  if (conn && task >= 0 && (size_t)task < conn->ntasks &&
      conn->target != CONNECT_TARGET_STOPPED) {
    herder_gen_task_status(g, c, conn, (size_t)task);
    rc = 0;
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int connect_gen_tasks(connect_t *c, const char *name, yajl_gen g) {
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  if (conn) {
    yajl_gen_array_open(g);
    for (size_t i = 0; i < conn->ntask_cfgs; i++) {
      yajl_gen_map_open(g);
      hg_str(g, "id");
      yajl_gen_map_open(g);
      hg_str(g, "connector");
      hg_str(g, conn->name);
      hg_str(g, "task");
      yajl_gen_integer(g, (long long)i);
      yajl_gen_map_close(g);
      hg_str(g, "config");
      herder_gen_config(g, &conn->task_cfgs[i]);
      yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
  }
  pthread_mutex_unlock(&c->mu);
  return conn ? 0 : -ENOENT;
}

/* ---- offsets (KIP-875) ------------------------------------------------------ */

static void herder_gen_raw(yajl_gen g, const char *json) {
  yajl_val v = conn_json_parse(NULL, json, strlen(json), NULL, 0);
  conn_json_gen(g, v);
  yajl_tree_free(v);
}

int connect_gen_offsets(connect_t *c, const char *name, yajl_gen g, char *err, size_t errlen) {
  conn_config_t cfg;
  if (connect_config_get(c, name, &cfg) != 0) {
    conn_config_free(&cfg);
    return -ENOENT;
  }
  const conn_plugin_t *p = conn_plugin_find(conn_config_get(&cfg, "connector.class"));
  /* A connector that keeps its offsets itself shows those: they are what
   * its tasks resume from. */
  char *own = NULL;
  if (p && p->read_offsets && p->read_offsets(&cfg, &own, err, errlen) != 0) {
    conn_config_free(&cfg);
    return -EIO;
  }
  yajl_gen_map_open(g);
  hg_str(g, "offsets");
  if (own) {
    herder_gen_raw(g, own);
    free(own);
    yajl_gen_map_close(g);
    conn_config_free(&cfg);
    return 0;
  }
  yajl_gen_array_open(g);
  if (p && p->kind == CONN_SINK) {
    char **topics = NULL;
    int32_t *parts = NULL;
    size_t n = 0;
    char group[600];
    snprintf(group, sizeof group, "connect-%s", name);
    connect_sink_partitions(c->o.log, &cfg, &topics, &parts, &n);
    for (size_t i = 0; i < n; i++) {
      int64_t off = -1;
      if (log_group_fetch(c->o.log, group, topics[i], parts[i], &off, NULL) != 0 || off < 0)
        continue;
      yajl_gen_map_open(g);
      hg_str(g, "partition");
      yajl_gen_map_open(g);
      hg_str(g, "kafka_topic");
      hg_str(g, topics[i]);
      hg_str(g, "kafka_partition");
      yajl_gen_integer(g, parts[i]);
      yajl_gen_map_close(g);
      hg_str(g, "offset");
      yajl_gen_map_open(g);
      hg_str(g, "kafka_offset");
      yajl_gen_integer(g, off);
      yajl_gen_map_close(g);
      yajl_gen_map_close(g);
    }
    for (size_t i = 0; i < n; i++) free(topics[i]);
    free(topics);
    free(parts);
  } else {
    connect_offset_t *l = NULL;
    size_t n = 0;
    connect_offsets_list(c->offsets, name, &l, &n);
    for (size_t i = 0; i < n; i++) {
      yajl_gen_map_open(g);
      hg_str(g, "partition");
      herder_gen_raw(g, l[i].partition);
      hg_str(g, "offset");
      herder_gen_raw(g, l[i].offset);
      yajl_gen_map_close(g);
    }
    connect_offset_list_free(l, n);
  }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  conn_config_free(&cfg);
  return 0;
}

/* Alters a sink's group offsets from the request entries. */
/* Offers each entry to the plugin's alter_offsets (KIP-875's
 * Connector.alterOffsets), which may refuse it (-EINVAL) or, for a
 * connector keeping its own offsets, apply it. */
static int herder_alter_plugin(const conn_plugin_t *p, const conn_config_t *cfg, yajl_val offs,
                               char *err, size_t errlen) {
  if (!p || !p->alter_offsets) return 0;
  if (!offs) {
    char msg[1024] = "";
    if (p->alter_offsets(cfg, NULL, NULL, msg, sizeof msg) == 0) return 0;
    snprintf(err, errlen, "%s", msg[0] ? msg : "the connector refused to reset its offsets");
    return -EINVAL;
  }
  for (size_t i = 0; i < offs->u.array.len; i++) {
    yajl_val e = offs->u.array.values[i];
    yajl_val part = conn_json_member(e, "partition"), off = conn_json_member(e, "offset");
    char *pj = conn_json_text(part, NULL);
    char *oj = off && !YAJL_IS_NULL(off) ? conn_json_text(off, NULL) : NULL;
    char msg[1024] = "";
    int rc = !pj || (off && !YAJL_IS_NULL(off) && !oj) ? -ENOMEM
             : p->alter_offsets(cfg, pj, oj, msg, sizeof msg) == 0 ? 0
                                                                  : -EINVAL;
    free(pj);
    free(oj);
    if (rc == -EINVAL)
      snprintf(err, errlen, "offsets[%zu]: %s", i, msg[0] ? msg : "refused by the connector");
    if (rc != 0) return rc;
  }
  return 0;
}

static int herder_alter_sink(connect_t *c, const char *name, const conn_plugin_t *plugin,
                             const conn_config_t *cfg, yajl_val offs, char *err, size_t errlen) {
  char group[600];
  snprintf(group, sizeof group, "connect-%s", name);
  for (size_t i = 0; i < offs->u.array.len; i++) {
    yajl_val e = offs->u.array.values[i];
    yajl_val part = conn_json_member(e, "partition"), off = conn_json_member(e, "offset");
    yajl_val t = conn_json_member(part, "kafka_topic"), p = conn_json_member(part, "kafka_partition");
    yajl_val o = conn_json_member(off, "kafka_offset");
    if (!t || !YAJL_IS_STRING(t) || !p || !YAJL_IS_INTEGER(p)) {
      snprintf(err, errlen, "offsets[%zu].partition: a sink connector's partition is "
               "{\"kafka_topic\": string, \"kafka_partition\": integer}", i);
      return -EINVAL;
    }
    if (off && !YAJL_IS_NULL(off) && (!o || !YAJL_IS_INTEGER(o) || YAJL_GET_INTEGER(o) < 0)) {
      snprintf(err, errlen, "offsets[%zu].offset: a sink connector's offset is "
               "{\"kafka_offset\": integer >= 0} or null", i);
      return -EINVAL;
    }
  }
  int prc = herder_alter_plugin(plugin, cfg, offs, err, errlen);
  if (prc != 0) return prc;
  for (size_t i = 0; i < offs->u.array.len; i++) {
    yajl_val e = offs->u.array.values[i];
    yajl_val part = conn_json_member(e, "partition"), off = conn_json_member(e, "offset");
    const char *topic = conn_json_member(part, "kafka_topic")->u.string;
    int32_t pn = (int32_t)YAJL_GET_INTEGER(conn_json_member(part, "kafka_partition"));
    log_error_t le = {0};
    int rc = (!off || YAJL_IS_NULL(off))
                 ? log_group_delete(c->o.log, group, topic, pn, &le)
                 : log_group_commit(c->o.log, group, topic, pn,
                                    YAJL_GET_INTEGER(conn_json_member(off, "kafka_offset")), &le);
    if (rc != 0) {
      snprintf(err, errlen, "%s", le.msg);
      return -EIO;
    }
  }
  return 0;
}

static int herder_alter_source(connect_t *c, const char *name, const conn_plugin_t *plugin,
                               const conn_config_t *cfg, yajl_val offs, char *err,
                               size_t errlen) {
  size_t n = offs->u.array.len;
  connect_offset_t *l = calloc(n + 1, sizeof *l);
  int rc = l ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    yajl_val e = offs->u.array.values[i];
    yajl_val part = conn_json_member(e, "partition"), off = conn_json_member(e, "offset");
    if (!part || !YAJL_IS_OBJECT(part)) {
      snprintf(err, errlen, "offsets[%zu].partition: expected a JSON object", i);
      rc = -EINVAL;
    } else if (off && !YAJL_IS_NULL(off) && !YAJL_IS_OBJECT(off)) {
      snprintf(err, errlen, "offsets[%zu].offset: expected a JSON object or null", i);
      rc = -EINVAL;
    } else {
      l[i].partition = conn_json_text(part, NULL);
      l[i].offset = off && !YAJL_IS_NULL(off) ? conn_json_text(off, NULL) : NULL;
    }
  }
  if (rc == 0) rc = herder_alter_plugin(plugin, cfg, offs, err, errlen);
  if (rc == 0) rc = connect_offsets_put(c->offsets, name, l, n, -1, NULL, err, errlen);
  connect_offset_list_free(l, n);
  return rc;
}

int connect_offsets_alter(connect_t *c, const char *name, const char *body, size_t len,
                          bool reset, char *err, size_t errlen) {
  conn_config_t cfg;
  if (connect_config_get(c, name, &cfg) != 0) {
    snprintf(err, errlen, "Connector %s not found", name);
    return -ENOENT;
  }
  pthread_mutex_lock(&c->mu);
  connect_conn_t *conn = herder_find(c, name);
  bool stopped = conn && conn->target == CONNECT_TARGET_STOPPED && conn->ntasks == 0;
  pthread_mutex_unlock(&c->mu);
  const conn_plugin_t *p = conn_plugin_find(conn_config_get(&cfg, "connector.class"));
  int rc = 0;
  if (!stopped) {
    snprintf(err, errlen, "Connectors must be in the STOPPED state before their offsets can be "
             "modified. This can be done for the specified connector by issuing a 'PUT' "
             "request to the '/connectors/%s/stop' endpoint", name);
    rc = -EBUSY;
  } else if (reset && (rc = herder_alter_plugin(p, &cfg, NULL, err, errlen)) != 0) {
    /* refused, or the connector's own store could not be reset */
  } else if (reset) {
    if (p && p->kind == CONN_SINK) {
      char **topics = NULL;
      int32_t *parts = NULL;
      size_t n = 0;
      char group[600];
      snprintf(group, sizeof group, "connect-%s", name);
      connect_sink_partitions(c->o.log, &cfg, &topics, &parts, &n);
      for (size_t i = 0; i < n; i++) {
        log_error_t le = {0};
        if (rc == 0 && log_group_delete(c->o.log, group, topics[i], parts[i], &le) != 0) {
          snprintf(err, errlen, "%s", le.msg);
          rc = -EIO;
        }
        free(topics[i]);
      }
      free(topics);
      free(parts);
    } else {
      rc = connect_offsets_reset(c->offsets, name, err, errlen) ? -EIO : 0;
    }
  } else {
    yajl_val root = conn_json_parse("request body", body, len, err, errlen);
    yajl_val offs = conn_json_member(root, "offsets");
    if (!root) {
      rc = -EINVAL;
    } else if (!offs || !YAJL_IS_ARRAY(offs)) {
      snprintf(err, errlen, "offsets: expected {\"offsets\": [{\"partition\": {...}, "
               "\"offset\": {...}}, ...]}");
      rc = -EINVAL;
    } else if (offs->u.array.len == 0) {
      snprintf(err, errlen, "offsets: the list of partitions and offsets must not be empty");
      rc = -EINVAL;
    } else if (p && p->kind == CONN_SINK) {
      rc = herder_alter_sink(c, name, p, &cfg, offs, err, errlen);
    } else {
      /* The markers go too: after a crash they could bring back, by a
       * scan at start, positions older than the ones written here. */
      rc = herder_alter_source(c, name, p, &cfg, offs, err, errlen);
      if (rc == 0) rc = connect_offsets_drop_markers(c->offsets, name, err, errlen);
    }
    yajl_tree_free(root);
  }
  conn_config_free(&cfg);
  if (rc == 0) logger_info("connect", "connector %s: offsets %s", name, reset ? "reset" : "altered");
  return rc;
}
