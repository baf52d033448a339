/*
 * connect.h: the connector framework (Kafka Connect's worker, standalone
 * flavour, with distributed mode's storage): it hosts connectors built from
 * the plugins of connectors/connector.h, runs each task on its own thread,
 * and keeps everything it must remember in compacted internal topics of
 * the log:
 *
 *   config.storage.topic  (connect-configs)  connector configs, target states
 *   offset.storage.topic  (connect-offsets)  source offsets
 *   status.storage.topic  (connect-status)   connector and task statuses
 *
 * Sink tasks keep their positions in the consumer group `connect-<name>`
 * (log_group_commit), as Kafka Connect's sink consumers do.
 *
 * The herder (connect_herder.c) owns the connectors and drives each one's
 * state machine on its own thread:
 *
 *                 put / resume            pause              stop
 *   UNASSIGNED ──► RUNNING (tasks up) ◄──► PAUSED ──► STOPPED (no tasks)
 *                    │ task error                     ▲ resume → RUNNING
 *                    ▼
 *                  FAILED ── restart ──► RESTARTING ──► RUNNING
 *
 * Files, one job each: connect_store.c (the internal topics' record
 * formats, read back at start), connect_offsets.c (source offsets and the
 * exactly-once scan), connect_herder.c (connectors, states, REST
 * operations), connect_config.c (common keys, validation, converters),
 * connect_task.c (a task's context, thread and retries),
 * connect_source.c / connect_sink.c (the task loops), connect_errors.c
 * (errors.tolerance, error log, dead letter queue), connect_metrics.c.
 * The REST routes live in worker_connect.c.
 *
 * Threads: every connect_* function here may be called from any thread
 * (the libuv loop thread calls them for REST requests); none blocks on a
 * task or a database: they change the desired state, append to the
 * internal topics and wake the herder thread, which starts and stops
 * tasks.
 */
#ifndef RUNNEL_CONNECT_H
#define RUNNEL_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connector.h"
#include "log.h"
#include "metrics.h"

struct yajl_gen_t;

typedef struct {
  log_t *log;                     /* borrowed; outlives the framework */
  metrics_t *metrics;             /* borrowed; may be NULL */
  const char *worker_id;          /* "host:port" shown in statuses */
  const char *config_topic;       /* config.storage.topic */
  const char *offset_topic;       /* offset.storage.topic */
  const char *status_topic;       /* status.storage.topic */
  int64_t offset_flush_interval_ms; /* offset.flush.interval.ms */
  const char *key_converter;      /* worker default key.converter */
  const char *value_converter;    /* worker default value.converter */
  bool topic_tracking_disable;    /* topic.tracking.enable=false */
} connect_options_t;

typedef struct connect_s connect_t;

/* Target states, as Kafka Connect's TargetState (STARTED shows RUNNING). */
typedef enum { CONNECT_TARGET_STARTED, CONNECT_TARGET_PAUSED, CONNECT_TARGET_STOPPED } connect_target_t;

/* Opens the internal topics (creating them compacted when missing), reads
 * back every connector with its target state, and starts them. opts is
 * copied. Returns 0, or -1 with err. */
int connect_new(const connect_options_t *opts, connect_t **out, char *err, size_t errlen);
/* Stops every task (sinks flush and commit, sources commit offsets), then
 * frees. NULL is fine. */
void connect_free(connect_t *c);

/* Errors of the operations below: -EINVAL (bad config: err names the key),
 * -ENOENT (no such connector or task), -EEXIST (exists), -EBUSY (the
 * connector is not STOPPED, for offset changes), -EIO (the log refused). */

/* Parses a connector file or REST body {"name": .., "config": {..}} (the
 * name may also be given inside config). Errors name `where` and the key. */
int connect_parse_request(const char *where, const char *json, size_t len, char **name,
                          conn_config_t *cfg, char *err, size_t errlen);

/* Validates a connector config (class, common keys, the plugin's keys and
 * cross-key checks, transforms). err gets Kafka's message listing every
 * error as "<key>: <message>" lines. Returns 0 or -EINVAL. */
int connect_validate(const connect_t *c, const char *name, const conn_config_t *cfg, char *err,
                     size_t errlen);

/* Creates (or, unless create_only, replaces) a connector's config. A new
 * connector starts in `initial` state. *created says which happened. */
int connect_put(connect_t *c, const char *name, const conn_config_t *cfg, bool create_only,
                connect_target_t initial, bool *created, char *err, size_t errlen);
int connect_delete(connect_t *c, const char *name);
int connect_set_target(connect_t *c, const char *name, connect_target_t target);
/* Kafka's POST /connectors/{name}/restart: the connector, and with
 * include_tasks its tasks (only the FAILED ones with only_failed). When
 * plan is given, the status as planned (RESTARTING) is written into it. */
int connect_restart(connect_t *c, const char *name, bool include_tasks, bool only_failed,
                    struct yajl_gen_t *plan);
int connect_restart_task(connect_t *c, const char *name, int task);

/* Sorted names, a NULL-terminated malloc'd array (free with log_names_free). */
char **connect_names(connect_t *c);
/* A copy of the connector's config into *out (initialised by the call). */
int connect_config_get(connect_t *c, const char *name, conn_config_t *out);

/* JSON generators for the REST API; each writes one value into g. */
int connect_gen_info(connect_t *c, const char *name, struct yajl_gen_t *g);
int connect_gen_status(connect_t *c, const char *name, struct yajl_gen_t *g);
int connect_gen_task_status(connect_t *c, const char *name, int task, struct yajl_gen_t *g);
int connect_gen_tasks(connect_t *c, const char *name, struct yajl_gen_t *g);
/* GET .../offsets; -ENOENT, or -EIO with err when the connector's own
 * offsets (conn_plugin_t.read_offsets) cannot be read. */
int connect_gen_offsets(connect_t *c, const char *name, struct yajl_gen_t *g, char *err,
                        size_t errlen);
/* KIP-875: body is {"offsets": [{"partition": {..}, "offset": {..}|null}]}
 * (reset: NULL body, every offset removed). Only when STOPPED (-EBUSY). */
int connect_offsets_alter(connect_t *c, const char *name, const char *body, size_t len,
                          bool reset, char *err, size_t errlen);
/* KIP-558: {"<name>": {"topics": [..]}}, the topics the connector has
 * used (sorted), empty for an unknown name (as Kafka); PUT
 * .../topics/reset empties the set (allowed in any state, as Kafka).
 * 0 or -ENOMEM / -EIO. */
int connect_gen_topics(connect_t *c, const char *name, struct yajl_gen_t *g);
int connect_reset_topics(connect_t *c, const char *name);

/* Connector plugin catalogue: GET /connector-plugins, .../config and
 * .../config/validate (Kafka's ConfigInfos). -ENOENT for an unknown plugin. */
void connect_gen_plugins(struct yajl_gen_t *g, bool connectors_only);
int connect_gen_plugin_config(const char *plugin, struct yajl_gen_t *g);
int connect_gen_validate(const connect_t *c, const char *plugin, const conn_config_t *cfg,
                         struct yajl_gen_t *g);

#endif
