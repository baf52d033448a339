/*
 * connect_topics.c: the topics each connector uses (Kafka's KIP-558).
 *
 * A source task's connector uses a topic once a record is appended to it,
 * a sink's once a record is read from it; the set only grows, until PUT
 * /connectors/{name}/topics/reset or the connector's deletion empties it.
 * As Kafka's KafkaStatusBackingStore, each (connector, topic) is a record
 * of the status topic:
 *
 *   key   "status-topic-<topic>:connector-<connector>"
 *   value {"topic": {"name": "<topic>", "connector": "<connector>",
 *                    "task": <id>, "discoverTimestamp": <ms>}}
 *   null: reset (a tombstone)
 *
 * read back at start, so the set survives restarts. Task threads call
 * connect_topic_record for every batch; a per-task cache of the topics
 * already known (emptied when a reset bumps the generation) keeps that to
 * a string compare, so the set's lock is taken only for a topic new to
 * the task. As in Kafka, a reset of a running connector is allowed: its
 * tasks record their topics again with their next records.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "connect_int.h"
#include "logger.h"

#define TOPICS_KEY_PREFIX "status-topic-"
#define TOPICS_KEY_SEP ":connector-"

struct connect_topics {
  pthread_mutex_t mu;
  conn_config_t set;  /* keys "<connector>\n<topic>" (topics_pair), values "" */
  atomic_uint gen;    /* bumped by every reset */
};

/* Kafka's discoverTimestamp: wall-clock milliseconds. */
static int64_t topics_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The set's key of a pair. Connector names may hold any character but
 * control characters, so '\n' cannot occur in one; topic names are
 * [a-zA-Z0-9._-]. */
static char *topics_pair(const char *connector, const char *topic) {
  size_t a = strlen(connector), b = strlen(topic);
  char *k = malloc(a + b + 2);
  if (!k) return NULL;
  memcpy(k, connector, a);
  k[a] = '\n';
  memcpy(k + a + 1, topic, b + 1);
  return k;
}

/* Replays one status-topic record: only the topic records matter here. */
static int topics_replay(void *arg, const log_record_t *rec) {
  struct connect_topics *tp = arg;
  size_t plen = sizeof TOPICS_KEY_PREFIX - 1, slen = sizeof TOPICS_KEY_SEP - 1;
  if ((size_t)rec->key_len <= plen || memcmp(rec->key, TOPICS_KEY_PREFIX, plen) != 0) return 0;
  char *key = strndup((const char *)rec->key, (size_t)rec->key_len);
  if (!key) return -ENOMEM;
  /* topic names hold no ':', so the first ":connector-" ends the topic */
  char *sep = strstr(key + plen, TOPICS_KEY_SEP);
  if (!sep || sep == key + plen || !sep[slen]) {
    logger_warn("connect", "discarding a status record with an invalid topic key %s", key);
    free(key);
    return 0;
  }
  *sep = '\0';
  char *pair = topics_pair(sep + slen, key + plen);
  int rc = pair ? 0 : -ENOMEM;
  if (pair && rec->value) rc = conn_config_set(&tp->set, pair, "");
  else if (pair) conn_config_unset(&tp->set, pair);
  free(pair);
  free(key);
  return rc;
}

int connect_topics_open(connect_t *c, char *err, size_t errlen) {
  struct connect_topics *tp = calloc(1, sizeof *tp);
  if (!tp) return -ENOMEM;
  pthread_mutex_init(&tp->mu, NULL);
  conn_config_init(&tp->set);
  int rc = connect_store_read(c->o.log, c->status_topic, topics_replay, tp, err, errlen);
  if (rc != 0) {
    connect_topics_free(tp);
    return rc;
  }
  c->topics = tp;
  return 0;
}

void connect_topics_free(struct connect_topics *tp) {
  if (!tp) return;
  conn_config_free(&tp->set);
  pthread_mutex_destroy(&tp->mu);
  free(tp);
}

/* Appends the pair's record (value NULL: its tombstone). Holding tp->mu. */
static int topics_write(connect_t *c, const char *connector, const char *topic, int task) {
  char *key = malloc(sizeof TOPICS_KEY_PREFIX + sizeof TOPICS_KEY_SEP + strlen(topic) +
                     strlen(connector));
  if (!key) return -ENOMEM;
  sprintf(key, TOPICS_KEY_PREFIX "%s" TOPICS_KEY_SEP "%s", topic, connector);
  char *value = NULL;
  size_t vlen = 0;
  if (task >= 0) {
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g) {
      yajl_gen_map_open(g);
      yajl_gen_string(g, (const unsigned char *)"topic", 5);
      yajl_gen_map_open(g);
      yajl_gen_string(g, (const unsigned char *)"name", 4);
      yajl_gen_string(g, (const unsigned char *)topic, strlen(topic));
      yajl_gen_string(g, (const unsigned char *)"connector", 9);
      yajl_gen_string(g, (const unsigned char *)connector, strlen(connector));
      yajl_gen_string(g, (const unsigned char *)"task", 4);
      yajl_gen_integer(g, task);
      yajl_gen_string(g, (const unsigned char *)"discoverTimestamp", 17);
      yajl_gen_integer(g, topics_wall_ms());
      yajl_gen_map_close(g);
      yajl_gen_map_close(g);
    }
    value = conn_json_take(g, &vlen);
    if (!value) {
      free(key);
      return -ENOMEM;
    }
  }
  char err[512];
  pthread_mutex_lock(&c->store_mu);
  int rc = connect_store_append(c->o.log, c->status_topic, key, value, vlen, err, sizeof err);
  pthread_mutex_unlock(&c->store_mu);
  if (rc != 0) logger_warn("connect", "cannot record %s: %s", key, err);
  free(key);
  free(value);
  return rc;
}

void connect_topic_record(connect_task_t *t, const char *topic) {
  connect_t *c = t->c;
  struct connect_topics *tp = c->topics;
  if (!tp || c->o.topic_tracking_disable) return;
  unsigned gen = atomic_load(&tp->gen);
  if (gen != t->topics_gen) { /* a reset: every topic is new again */
    conn_config_free(&t->topics_seen);
    conn_config_init(&t->topics_seen);
    t->topics_gen = gen;
  }
  if (conn_config_get(&t->topics_seen, topic)) return;
  char *pair = topics_pair(t->connector, topic);
  if (!pair) return;
  pthread_mutex_lock(&tp->mu);
  int rc = 0;
  if (!conn_config_get(&tp->set, pair) && (rc = topics_write(c, t->connector, topic, t->id)) == 0)
    rc = conn_config_set(&tp->set, pair, "");
  pthread_mutex_unlock(&tp->mu);
  free(pair);
  /* Remembered only once recorded: a failed write is tried again. */
  if (rc == 0) conn_config_set(&t->topics_seen, topic, "");
}

static int topics_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The topics of connector, sorted (a malloc'd array of n borrowed keys of
 * tp->set, each just past its '\n'). Holding tp->mu. */
static const char **topics_of(struct connect_topics *tp, const char *connector, size_t *n) {
  size_t len = strlen(connector);
  const char **out = malloc((tp->set.count + 1) * sizeof *out);
  *n = 0;
  for (size_t i = 0; out && i < tp->set.count; i++) {
    const char *k = tp->set.keys[i];
    if (strncmp(k, connector, len) == 0 && k[len] == '\n') out[(*n)++] = k + len + 1;
  }
  if (out) qsort(out, *n, sizeof *out, topics_cmp);
  return out;
}

int connect_gen_topics(connect_t *c, const char *connector, yajl_gen g) {
  struct connect_topics *tp = c->topics;
  if (!tp || !g) return -ENOMEM;
  pthread_mutex_lock(&tp->mu);
  size_t n;
  const char **list = topics_of(tp, connector, &n);
  if (list) {
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)connector, strlen(connector));
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"topics", 6);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
      yajl_gen_string(g, (const unsigned char *)list[i], strlen(list[i]));
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
  }
  pthread_mutex_unlock(&tp->mu);
  free(list);
  return list ? 0 : -ENOMEM;
}

int connect_reset_topics(connect_t *c, const char *connector) {
  struct connect_topics *tp = c->topics;
  if (!tp) return -ENOMEM;
  pthread_mutex_lock(&tp->mu);
  size_t n;
  const char **list = topics_of(tp, connector, &n);
  int rc = list ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *pair = topics_pair(connector, list[i]);
    if (!pair || (rc = topics_write(c, connector, list[i], -1)) != 0) {
      free(pair);
      rc = rc ? rc : -ENOMEM;
      break;
    }
    /* (unset frees the key list[i] points into: nothing reads it after) */
    conn_config_unset(&tp->set, pair);
    free(pair);
  }
  atomic_fetch_add(&tp->gen, 1);
  pthread_mutex_unlock(&tp->mu);
  free(list);
  if (rc == 0 && n > 0) logger_info("connect", "%s: active topics reset (%zu)", connector, n);
  return rc;
}
