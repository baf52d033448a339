/*
 * connect_store.c: the config and status topics' records, in Kafka
 * Connect's formats (KafkaConfigBackingStore, KafkaStatusBackingStore), and
 * the plumbing to create, append to and read back an internal topic.
 *
 * Config topic (config.storage.topic, default connect-configs):
 *   key "connector-<name>"     value {"properties": {"k": "v", ..}}, null = deleted
 *   key "target-state-<name>"  value {"state": "STARTED"|"PAUSED", "state.v2": "STARTED"|"PAUSED"|"STOPPED"}
 *     (STOPPED is written as state PAUSED + state.v2 STOPPED, as KIP-875
 *     does, so an older reader sees a paused connector)
 * Status topic (status.storage.topic, default connect-status):
 *   key "status-connector-<name>" / "status-task-<name>-<id>"
 *   value {"state": "RUNNING", "trace": null|"..", "worker_id": "host:port", "generation": N}
 *
 * Kafka also writes "task-<name>-<n>" and "commit-<name>" records with the
 * task configs; runnel recomputes task configs from the connector config
 * when it starts a connector, so it writes neither and ignores both.
 *
 * Every internal topic has one partition, cleanup.policy=compact and
 * log.flush=always: a REST call that returned has its change on disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect_int.h"

const char *connect_state_name(connect_state_t s) {
  static const char *const names[] = {"UNASSIGNED", "RUNNING", "PAUSED",
                                      "STOPPED",    "FAILED",  "RESTARTING"};
  return names[s];
}

static void store_str(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}


char *connect_store_config_value(const conn_config_t *cfg, size_t *len) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_map_open(g);
  store_str(g, "properties");
  yajl_gen_map_open(g);
  for (size_t i = 0; i < cfg->count; i++) {
    store_str(g, cfg->keys[i]);
    store_str(g, cfg->values[i]);
  }
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  return conn_json_take(g, len);
}

char *connect_store_target_value(connect_target_t t, size_t *len) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  static const char *const v2[] = {"STARTED", "PAUSED", "STOPPED"};
  yajl_gen_map_open(g);
  store_str(g, "state");
  store_str(g, t == CONNECT_TARGET_STARTED ? "STARTED" : "PAUSED");
  store_str(g, "state.v2");
  store_str(g, v2[t]);
  yajl_gen_map_close(g);
  return conn_json_take(g, len);
}

char *connect_store_status_value(connect_state_t s, const char *trace, const char *worker_id,
                                 int64_t generation, size_t *len) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_map_open(g);
  store_str(g, "state");
  store_str(g, connect_state_name(s));
  store_str(g, "trace");
  if (trace) store_str(g, trace);
  else yajl_gen_null(g);
  store_str(g, "worker_id");
  store_str(g, worker_id);
  store_str(g, "generation");
  yajl_gen_integer(g, generation);
  yajl_gen_map_close(g);
  return conn_json_take(g, len);
}

int connect_store_target_parse(const char *v, size_t len, connect_target_t *t) {
  yajl_val root = conn_json_parse(NULL, v, len, NULL, 0);
  if (!root) return -1;
  const char *s = conn_json_scalar(conn_json_member(root, "state.v2"));
  if (!s) s = conn_json_scalar(conn_json_member(root, "state"));
  int rc = 0;
  if (s && !strcmp(s, "STARTED")) *t = CONNECT_TARGET_STARTED;
  else if (s && !strcmp(s, "PAUSED")) *t = CONNECT_TARGET_PAUSED;
  else if (s && !strcmp(s, "STOPPED")) *t = CONNECT_TARGET_STOPPED;
  else rc = -1;
  yajl_tree_free(root);
  return rc;
}

/* ---- reading the config topic back ---------------------------------- */

static connect_stored_t *store_find(connect_stored_t *items, size_t n, const char *name,
                                    size_t *idx) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(items[i].name, name)) {
      if (idx) *idx = i;
      return &items[i];
    }
  return NULL;
}

int connect_store_apply(connect_stored_t **items, size_t *n, const char *key, size_t klen,
                        const char *value, int32_t vlen) {
  static const char pc[] = "connector-", pt[] = "target-state-";
  char name[512];
  int is_config;
  if (klen > sizeof pc - 1 && !memcmp(key, pc, sizeof pc - 1) &&
      klen - (sizeof pc - 1) < sizeof name) {
    is_config = 1;
    memcpy(name, key + sizeof pc - 1, klen - (sizeof pc - 1));
    name[klen - (sizeof pc - 1)] = '\0';
  } else if (klen > sizeof pt - 1 && !memcmp(key, pt, sizeof pt - 1) &&
             klen - (sizeof pt - 1) < sizeof name) {
    is_config = 0;
    memcpy(name, key + sizeof pt - 1, klen - (sizeof pt - 1));
    name[klen - (sizeof pt - 1)] = '\0';
  } else {
    return 0; /* task-*, commit-*, or something a newer writer added */
  }
  size_t idx;
  connect_stored_t *it = store_find(*items, *n, name, &idx);
  if (!is_config) {
    /* A new connector's target state is written before its config (so a
     * connector created STOPPED never runs): keep it for the config to
     * come, as an entry without properties. */
    connect_target_t t;
    if (!value || connect_store_target_parse(value, (size_t)vlen, &t) != 0) return 0;
    if (!it) {
      connect_stored_t *grown = realloc(*items, (*n + 1) * sizeof *grown);
      char *dup = strdup(name);
      if (!grown || !dup) {
        if (grown) *items = grown;
        free(dup);
        return -ENOMEM;
      }
      *items = grown;
      it = &grown[*n];
      *it = (connect_stored_t){.name = dup};
      conn_config_init(&it->config);
      (*n)++;
    }
    it->target = t;
    return 0;
  }
  if (!value) { /* deleted */
    if (it) {
      free(it->name);
      conn_config_free(&it->config);
      memmove(it, it + 1, (*n - idx - 1) * sizeof *it);
      (*n)--;
    }
    return 0;
  }
  yajl_val root = conn_json_parse(NULL, value, (size_t)vlen, NULL, 0);
  yajl_val props = conn_json_member(root, "properties");
  conn_config_t cfg;
  conn_config_init(&cfg);
  if (!props || conn_config_from_tree(&cfg, name, props, NULL, 0) != 0) {
    conn_config_free(&cfg);
    yajl_tree_free(root);
    return 0; /* unreadable: keep what we had */
  }
  yajl_tree_free(root);
  if (it) {
    conn_config_free(&it->config);
    it->config = cfg;
    return 0;
  }
  connect_stored_t *grown = realloc(*items, (*n + 1) * sizeof *grown);
  char *dup = strdup(name);
  if (!grown || !dup) {
    if (grown) *items = grown;
    free(dup);
    conn_config_free(&cfg);
    return -ENOMEM;
  }
  *items = grown;
  grown[*n] = (connect_stored_t){.name = dup, .config = cfg, .target = CONNECT_TARGET_STARTED};
  (*n)++;
  return 0;
}

void connect_stored_free(connect_stored_t *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(items[i].name);
    conn_config_free(&items[i].config);
  }
  free(items);
}

/* ---- topics -------------------------------------------------------------- */

int connect_store_topic(log_t *log, const char *topic, char *err, size_t errlen) {
  if (log_topic_partitions(log, topic, NULL) > 0) return 0;
  log_topic_config_t tc;
  log_topic_config_defaults(&tc);
  tc.cleanup_policy = LOG_CLEANUP_COMPACT;
  tc.flush = LOG_FLUSH_ALWAYS;
  tc.retention_ms = -1;
  log_error_t le = {0};
  int rc = log_topic_create(log, topic, 1, &tc, &le);
  if (rc == LOG_E_TOPIC_EXISTS) return 0;
  if (rc != 0) snprintf(err, errlen, "cannot create %s: %s", topic, le.msg);
  return rc;
}

int connect_store_append(log_t *log, const char *topic, const char *key, const char *value,
                         size_t vlen, char *err, size_t errlen) {
  log_partition_t *p;
  log_error_t le = {0};
  int rc = log_partition_get(log, topic, 0, &p, &le);
  if (rc == 0) {
    log_record_t rec = {.timestamp = -1, .key = key, .key_len = (int32_t)strlen(key),
                        .value = value, .value_len = value ? (int32_t)vlen : -1};
    rc = log_partition_append(p, &rec, 1, NULL, &le);
  }
  if (rc != 0) snprintf(err, errlen, "%s: %s", topic, le.msg[0] ? le.msg : log_strerror(rc));
  return rc;
}

int connect_store_read(log_t *log, const char *topic,
                       int (*cb)(void *arg, const log_record_t *rec), void *arg, char *err,
                       size_t errlen) {
  log_partition_t *p;
  log_error_t le = {0};
  int rc = log_partition_get(log, topic, 0, &p, &le);
  log_reader_t *r = NULL;
  if (rc == 0)
    rc = log_reader_new(log, topic, 0, log_partition_start_offset(p), 0, &r, &le);
  while (rc == 0) {
    log_record_t rec;
    int n = log_reader_next(r, &rec, &le);
    if (n <= 0) {
      rc = n;
      break;
    }
    if (rec.key && (rc = cb(arg, &rec)) != 0) break;
  }
  log_reader_free(r);
  if (rc < 0 && err) snprintf(err, errlen, "reading %s: %s", topic, le.msg[0] ? le.msg : log_strerror(rc));
  return rc;
}
