/*
 * worker_config.h: the worker's configuration (worker.json), its keys,
 * defaults and validation. The table in worker_config.c is the single
 * source of truth; docs/configuration.md embeds its generated Markdown
 * (`runnel worker --config-docs`), and a test keeps the two equal.
 */
#ifndef RUNNEL_WORKER_CONFIG_H
#define RUNNEL_WORKER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "luavm.h"

typedef struct {
  char *listeners;                  /* listeners */
  char *data_dir;                   /* data.dir */
  int64_t shutdown_timeout_ms;      /* task.shutdown.graceful.timeout.ms */
  int64_t http_max_header_bytes;    /* http.max.header.bytes */
  int64_t http_max_body_bytes;      /* http.max.body.bytes */
  int64_t num_partitions;           /* num.partitions */
  int64_t log_segment_bytes;        /* log.segment.bytes */
  int64_t log_segment_ms;           /* log.segment.ms */
  int64_t log_retention_ms;         /* log.retention.ms */
  int64_t log_retention_bytes;      /* log.retention.bytes */
  int64_t log_retention_check_ms;   /* log.retention.check.interval.ms */
  int log_cleanup_policy;           /* log.cleanup.policy: index into choices */
  int log_flush;                    /* log.flush: always|interval|never */
  int64_t log_flush_interval_ms;    /* log.flush.interval.ms */
  int64_t log_index_interval_bytes; /* log.index.interval.bytes */
  int64_t message_max_bytes;        /* message.max.bytes */
  char **jobs;                      /* jobs: Lua job files to run */
  int64_t stream_threads;           /* stream.threads (0: one per core) */
  int64_t commit_interval_ms;       /* commit.interval.ms */
  int64_t cache_max_bytes;          /* cache.max.bytes.buffering */
  int64_t lua_memory_limit;         /* lua.memory.limit.bytes */
  int64_t lua_instruction_budget;   /* lua.instruction.budget */
  char **lua_allow;                 /* lua.sandbox.allow: os, io, debug, load */
  char *config_storage_topic;       /* config.storage.topic */
  char *offset_storage_topic;       /* offset.storage.topic */
  char *status_storage_topic;       /* status.storage.topic */
  int64_t offset_flush_interval_ms; /* offset.flush.interval.ms */
  char *key_converter;              /* key.converter */
  char *value_converter;            /* value.converter */
  bool topic_tracking_enable;       /* topic.tracking.enable */
  bool topic_tracking_allow_reset;  /* topic.tracking.allow.reset */
} worker_config_t;

/* The key table (NULL-key terminated). */
extern const config_def_t worker_config_defs[];

/* Fills cfg with defaults, then applies the file at path (may be NULL).
 * Returns 0, or -1 with a message naming the file and key in err. */
int worker_config_load(worker_config_t *cfg, const char *path, char *err, size_t errlen);
void worker_config_free(worker_config_t *cfg);

/* The Lua sandbox options the config implies. */
void worker_config_lua_options(const worker_config_t *cfg, luavm_options_t *opts);

/* The log options the config implies (topic defaults, partitions, flush). */
void worker_config_log_options(const worker_config_t *cfg, log_options_t *opts);

/* One parsed listener: "http://HOST:PORT". */
typedef struct {
  char host[256];
  int port; /* 0: any free port (the worker logs the one it got) */
} worker_listener_t;

/* Splits a comma-separated `listeners` value. Returns the number parsed
 * (at most max), or -1 when malformed. */
int worker_listeners_parse(const char *value, worker_listener_t *out, int max);

#endif
