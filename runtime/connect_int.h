/*
 * connect_int.h: the connector framework's internals, shared by the
 * connect_*.c files (see connect.h for the map of files).
 *
 * Locking: connect_t.mu guards the connector list, every connector's and
 * task's state, trace and flags. Only the herder thread creates, starts,
 * joins and frees tasks (it drops mu while joining). A task thread takes
 * mu only to publish its state. Each internal-topic store has its own
 * mutex (held across its appends, so the log and memory agree).
 */
#ifndef RUNNEL_CONNECT_INT_H
#define RUNNEL_CONNECT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "conn_int.h"
#include "connect.h"

/* Statuses, Kafka Connect's AbstractStatus.State (plus STOPPED, KIP-875). */
typedef enum {
  CONNECT_UNASSIGNED,
  CONNECT_RUNNING,
  CONNECT_PAUSED,
  CONNECT_STOPPED,
  CONNECT_FAILED,
  CONNECT_RESTARTING,
} connect_state_t;

const char *connect_state_name(connect_state_t s);

/* ---- connect_store.c: config and status records ------------------------ */

/* Kafka Connect's config topic keys and values:
 *   "connector-<name>"     {"properties": {..}}        null: deleted
 *   "target-state-<name>"  {"state": "STARTED"|"PAUSED", "state.v2": ..}
 * and the status topic's:
 *   "status-connector-<name>"  {"state":..,"trace":..,"worker_id":..,"generation":N}
 *   "status-task-<name>-<id>"  the same */
char *connect_store_config_value(const conn_config_t *cfg, size_t *len);
char *connect_store_target_value(connect_target_t t, size_t *len);
char *connect_store_status_value(connect_state_t s, const char *trace, const char *worker_id,
                                 int64_t generation, size_t *len);
/* Parses a target-state value; returns 0 or -1. */
int connect_store_target_parse(const char *v, size_t len, connect_target_t *t);

/* What reading the config topic found, one entry per connector, in
 * first-seen order; an entry whose config is empty has only a target state
 * (its config record was never written): skip it. */
typedef struct {
  char *name;
  conn_config_t config;
  connect_target_t target;
} connect_stored_t;

/* Applies one config-topic record to the list (*items, *n): later records
 * win, null values delete. Unknown keys are ignored (Kafka's task-* and
 * commit-* records, written by a future cluster). Returns 0 or -ENOMEM. */
int connect_store_apply(connect_stored_t **items, size_t *n, const char *key, size_t klen,
                        const char *value, int32_t vlen);
void connect_stored_free(connect_stored_t *items, size_t n);

/* Creates topic compacted with one partition (flush always) when missing. */
int connect_store_topic(log_t *log, const char *topic, char *err, size_t errlen);
/* Appends one record (value NULL: tombstone) to partition 0 of topic. */
int connect_store_append(log_t *log, const char *topic, const char *key, const char *value,
                         size_t vlen, char *err, size_t errlen);
/* Reads every record of topic partition 0 into cb. Returns 0 or < 0. */
int connect_store_read(log_t *log, const char *topic,
                       int (*cb)(void *arg, const log_record_t *rec), void *arg, char *err,
                       size_t errlen);

/* ---- connect_offsets.c: source offsets ------------------------------- */

/* The offset store: the latest offset per (connector, source partition),
 * read from offset.storage.topic at start and kept in memory. Keys are
 * Kafka's ["<connector>", {partition}] JSON arrays. */
typedef struct connect_offsets_s connect_offsets_t;

/* Header every source record carries:
 * ["<connector>", {partition}, {offset}, seq], seq growing per task (so
 * that the newest of a partition's records is known even when transforms
 * route them to several destination partitions). */
#define CONNECT_SOURCE_HEADER "__runnel.connect.source"

int connect_offsets_open(log_t *log, const char *topic, connect_offsets_t **out, char *err,
                         size_t errlen);
void connect_offsets_free(connect_offsets_t *o);

/* The offsets key for (connector, partition JSON): canonical JSON text
 * (malloc'd), or NULL when partition is not a JSON object. */
char *connect_offsets_key(const char *connector, const char *partition);
/* Splits a key back; returns 0 and malloc'd *connector and *partition
 * (compact JSON), or -1 when it is not ["name", {..}]. */
int connect_offsets_key_parse(const char *key, size_t len, char **connector, char **partition);
/* The source header's value for one record (malloc'd); parse splits it. */
char *connect_offsets_header(const char *connector, const char *partition, const char *offset,
                             int64_t seq, size_t *len);
int connect_offsets_header_parse(const void *v, size_t len, char **connector, char **partition,
                                 char **offset, int64_t *seq);

/* The committed offset of a source partition (malloc'd JSON) or NULL. */
char *connect_offsets_get(connect_offsets_t *o, const char *connector, const char *partition);

/* One pending write of the offsets store. offset NULL removes the entry. */
typedef struct {
  char *partition; /* JSON object text */
  char *offset;    /* JSON object text, or NULL */
} connect_offset_t;

/* Writes offsets of connector (one record each) and, when task >= 0, the
 * task's destination marker {"<topic>": {"<partition>": end offset}}
 * (marker: JSON text or NULL) in one append. Durable when it returns. */
int connect_offsets_put(connect_offsets_t *o, const char *connector, const connect_offset_t *offs,
                        size_t n, int task, const char *marker, char *err, size_t errlen);
/* Every offset of connector (not the markers): a malloc'd array. */
int connect_offsets_list(connect_offsets_t *o, const char *connector, connect_offset_t **out,
                         size_t *n);
void connect_offset_list_free(connect_offset_t *l, size_t n);
/* The markers of every task of connector: the smallest recorded end
 * offset per destination topic-partition, as calls of cb. */
int connect_offsets_markers(connect_offsets_t *o, const char *connector,
                            void (*cb)(void *arg, const char *topic, int32_t partition,
                                       int64_t end),
                            void *arg);
/* Removes every marker of connector (tombstones). */
int connect_offsets_drop_markers(connect_offsets_t *o, const char *connector, char *err,
                                 size_t errlen);
/* Removes every offset and marker of connector. */
int connect_offsets_reset(connect_offsets_t *o, const char *connector, char *err, size_t errlen);

/* ---- connect_config.c: common keys, converters ------------------------- */

extern const conn_def_t connect_source_defs[], connect_sink_defs[];

typedef enum { CONNECT_CONV_STRING, CONNECT_CONV_JSON, CONNECT_CONV_BYTES } connect_conv_t;
/* Parses a converter class name (Kafka's, or string/json/bytearray); -1 if unknown. */
int connect_conv_parse(const char *cls, connect_conv_t *out);
const char *connect_conv_class(connect_conv_t conv);
/* Checks data as conv reads it: JsonConverter needs JSON (a null is fine).
 * Returns 0, or -1 with the reason. */
int connect_conv_check(connect_conv_t conv, const void *data, int32_t len, char *err,
                       size_t errlen);

/* Validates cfg for plugin p into Kafka's ConfigInfos pieces: returns the
 * error count; with g, writes the ConfigInfos JSON; with err, the first
 * errors as "<key>: <message>" lines. */
int connect_config_check(const connect_t *c, const conn_plugin_t *p, const conn_config_t *cfg,
                         yajl_gen g, char *err, size_t errlen);
/* Writes one ConfigKeyInfo (Kafka's "definition") for def. */
void connect_gen_definition(yajl_gen g, const conn_def_t *def, int order);

/* ---- tasks ---------------------------------------------------------------- */

typedef struct connect_conn connect_conn_t;
typedef struct connect_task connect_task_t;

/* Per-task metrics (connect_metrics.c). */
typedef struct {
  metrics_series_t *polled, *written, *read, *put, *batches, *errors, *dlq, *retries,
      *commits, *lag, *skipped;
} connect_task_metrics_t;
void connect_metrics_task(metrics_t *m, const char *connector, int task, bool source,
                          connect_task_metrics_t *out);
/* Drops every series of connector (its tasks must be freed). */
void connect_metrics_remove(metrics_t *m, const char *connector);

/* The framework's view of a connector config: the keys every task uses. */
typedef struct {
  connect_conv_t key_conv, value_conv;
  bool tolerate_all;           /* errors.tolerance=all */
  int64_t retry_timeout_ms;    /* errors.retry.timeout (-1: forever) */
  int64_t retry_delay_max_ms;  /* errors.retry.delay.max.ms */
  bool log_errors, log_messages;
  char *dlq_topic;             /* NULL: none */
  bool dlq_context;
  int32_t dlq_partitions;      /* errors.deadletterqueue.topic.partitions */
  int32_t create_partitions;   /* topic.creation.default.partitions */
  int64_t poll_interval_ms;
  int64_t max_poll_records;    /* consumer.max.poll.records */
} connect_common_t;

int connect_common_parse(const connect_t *c, const conn_config_t *cfg, connect_common_t *out);
void connect_common_free(connect_common_t *cc);

struct conn_ctx {
  connect_task_t *task;
};

struct connect_task {
  connect_t *c;
  char *connector;             /* copy of the connector's name */
  int id;
  const conn_plugin_t *plugin;
  conn_config_t cfg;           /* the task config */
  conn_config_t conn_cfg;      /* the connector's config (transforms, errors) */
  int ntasks;                  /* tasks of the connector (sink assignment) */
  connect_common_t common;
  conn_chain_t *chain;
  conn_ctx_t ctx;
  void *pstate;                /* the plugin's task_size bytes */
  bool started;                /* plugin->start succeeded */
  pthread_t thread;
  bool thread_live;
  atomic_bool stop;
  atomic_bool done;            /* the thread has returned */
  pthread_mutex_t sleep_mu;
  pthread_cond_t sleep_cv;
  /* Under c->mu: */
  connect_state_t state;
  char *trace;
  bool restart;                /* restart requested (REST) */
  connect_task_metrics_t m;
  /* Sink only: conn_ctx_seek requests and conn_ctx_report results. */
  pthread_mutex_t seek_mu;
  struct connect_seek { char *topic; int32_t partition; int64_t offset; } *seeks;
  size_t nseeks;
  int put_errors_fatal;        /* reports under errors.tolerance=none */
  char report_err[512];
  /* Source only: offsets given back by conn_ctx_offset. */
  conn_config_t restored;      /* partition JSON -> offset JSON */
  /* Topics this task recorded as its connector's (connect_topics.c). */
  conn_config_t topics_seen;
  unsigned topics_gen;
};

struct connect_conn {
  connect_conn_t *next;
  char *name;
  conn_config_t config;
  const conn_plugin_t *plugin;     /* NULL: unknown class (FAILED) */
  connect_target_t target;
  connect_state_t state;
  char *trace;
  int64_t generation;              /* bumped by every config change */
  int64_t running_generation;      /* the generation its tasks run with */
  bool deleted;
  bool restart;                    /* connector restart requested */
  conn_config_t *task_cfgs;
  size_t ntask_cfgs;
  connect_task_t **tasks;
  size_t ntasks;
};

struct connect_s {
  connect_options_t o;
  char *worker_id, *config_topic, *offset_topic, *status_topic, *key_conv, *value_conv;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  connect_conn_t *conns;
  bool dirty, quit;
  pthread_t herder;
  bool herder_live;
  pthread_mutex_t store_mu;        /* config and status topic appends */
  connect_offsets_t *offsets;
  struct connect_topics *topics;   /* KIP-558 active topics (connect_topics.c) */
};

/* connect_topics.c: KIP-558 active topics, kept in the status topic. */
/* Reads the status topic's topic records into c->topics. 0 or < 0. */
int connect_topics_open(connect_t *c, char *err, size_t errlen);
void connect_topics_free(struct connect_topics *tp);
/* Task threads: t's connector uses topic (recorded once). */
void connect_topic_record(connect_task_t *t, const char *topic);

/* connect_herder.c */
void connect__status_write(connect_t *c, const char *connector, int task, connect_state_t s,
                           const char *trace);
/* Sets a task's state and trace (copied; NULL clears) and records it. */
void connect__task_state(connect_task_t *t, connect_state_t s, const char *trace);

/* connect_task.c */
connect_task_t *connect_task_new(connect_t *c, connect_conn_t *conn, int id,
                                 const conn_config_t *cfg, char *err, size_t errlen);
/* Starts the task's thread; the herder calls it holding c->mu. */
int connect_task_start(connect_task_t *t);
void connect_task_signal_stop(connect_task_t *t);
void connect_task_join(connect_task_t *t);
void connect_task_free(connect_task_t *t);
/* Runs op (a plugin call returning CONN_*) until it stops asking to be
 * retried: backoff doubling from 100 ms up to errors.retry.delay.max.ms,
 * the status's trace says so; gives up after errors.retry.timeout when it
 * is > 0. Returns CONN_OK, CONN_E_FAIL (err set), or 1 when stopping. */
int connect_task_retry(connect_task_t *t, const char *what,
                       int (*op)(connect_task_t *t, void *arg, char *err, size_t errlen),
                       void *arg, char *err, size_t errlen);
/* Fails the task: logs, state FAILED with err as the trace. */
void connect_task_fail(connect_task_t *t, const char *err);
bool connect_task_stopping(connect_task_t *t);
int64_t connect_now_ms(void);

/* connect_source.c / connect_sink.c: the thread bodies */
void connect_source_run(connect_task_t *t);
void connect_sink_run(connect_task_t *t);

/* connect_errors.c: a record that failed at stage (KEY_CONVERTER,
 * VALUE_CONVERTER, TRANSFORMATION, TASK_PUT, TASK_POLL) with class cls.
 * Logs it (errors.log.enable), sends sink records to the DLQ, counts it.
 * Returns 0 when tolerated, -1 when the task must fail (err says why). */
int connect_errors_handle(connect_task_t *t, const conn_record_t *rec, const char *stage,
                          const char *cls, const char *reason, char *err, size_t errlen);

/* connect_sink.c: the existing topic-partitions a sink config reads
 * (topics, or topics.regex over non-internal topics), sorted; malloc'd
 * arrays of *n entries. */
int connect_sink_partitions(log_t *log, const conn_config_t *cfg, char ***topics,
                            int32_t **parts, size_t *n);

/* connect_source.c: creates topic when missing; 0 or < 0 with err. */
int connect_topic_ensure(log_t *log, const char *topic, int32_t partitions, char *err,
                         size_t errlen);

#endif
