/*
 * worker_config.c: the worker's config keys. Names, meanings and defaults
 * follow Kafka's broker and Connect worker settings where one exists
 * (listeners, num.partitions, log.segment.bytes, log.retention.ms, ...);
 * docs/configuration.md says where runnel differs.
 */
#include "worker_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WC(field) offsetof(worker_config_t, field)

static const char *const worker_flush_choices[] = {"always", "interval", "never", NULL};
static const char *const worker_cleanup_choices[] = {"delete", "compact", "compact,delete",
                                                     NULL};

static int worker_listeners_validate(const char *value, char *expected, size_t len) {
  worker_listener_t l[16];
  if (worker_listeners_parse(value, l, 16) > 0) return 0;
  snprintf(expected, len, "a comma-separated list of http://HOST:PORT");
  return -1;
}

static int worker_topic_validate(const char *value, char *expected, size_t len) {
  if (log_topic_name_validate(value, NULL) == 0) return 0;
  snprintf(expected, len, "a topic name: 1 to 249 of [a-zA-Z0-9._-]");
  return -1;
}

static int worker_converter_validate(const char *value, char *expected, size_t len) {
  static const char *const ok[] = {
      "org.apache.kafka.connect.storage.StringConverter", "StringConverter",
      "org.apache.kafka.connect.json.JsonConverter", "JsonConverter",
      "org.apache.kafka.connect.converters.ByteArrayConverter", "ByteArrayConverter", NULL};
  for (const char *const *o = ok; *o; o++)
    if (!strcmp(*o, value)) return 0;
  snprintf(expected, len, "org.apache.kafka.connect.json.JsonConverter, "
           "org.apache.kafka.connect.storage.StringConverter or "
           "org.apache.kafka.connect.converters.ByteArrayConverter");
  return -1;
}

const config_def_t worker_config_defs[] = {
    {"listeners", CONFIG_STRING, "http://127.0.0.1:8083", 0, 0, NULL, WC(listeners),
     worker_listeners_validate,
     "Where the REST API listens: comma-separated `http://HOST:PORT` (port 0 picks a "
     "free port and logs it). Kafka Connect's name and default."},
    {"data.dir", CONFIG_STRING, "./data", 0, 0, NULL, WC(data_dir), NULL,
     "Directory holding the log, state stores and the lock; one process at a time."},
    {"task.shutdown.graceful.timeout.ms", CONFIG_INT, "5000", 0, 3600000, NULL,
     WC(shutdown_timeout_ms), NULL,
     "How long SIGTERM/SIGINT may take to finish in-flight work before the worker "
     "gives up and exits with status 1."},
    {"http.max.header.bytes", CONFIG_INT, "8192", 1024, 1048576, NULL,
     WC(http_max_header_bytes), NULL,
     "Largest request line plus headers; larger requests get 431."},
    {"http.max.body.bytes", CONFIG_INT, "10485760", 1024, 1073741824, NULL,
     WC(http_max_body_bytes), NULL, "Largest request body; larger requests get 413."},
    {"num.partitions", CONFIG_INT, "1", 1, 100000, NULL, WC(num_partitions), NULL,
     "Partitions of a topic created without an explicit count."},
    {"log.segment.bytes", CONFIG_INT, "1073741824", 1048576, 2147483647, NULL,
     WC(log_segment_bytes), NULL, "Default `segment.bytes` of topics: roll a segment at this size."},
    {"log.segment.ms", CONFIG_INT, "604800000", 1, INT64_MAX, NULL, WC(log_segment_ms), NULL,
     "Default `segment.ms`: roll a segment at this age."},
    {"log.retention.ms", CONFIG_INT, "604800000", -1, INT64_MAX, NULL, WC(log_retention_ms),
     NULL, "Default `retention.ms`: delete segments older than this; -1 keeps forever."},
    {"log.retention.bytes", CONFIG_INT, "-1", -1, INT64_MAX, NULL, WC(log_retention_bytes),
     NULL, "Default `retention.bytes` per partition; -1: no size limit."},
    {"log.retention.check.interval.ms", CONFIG_INT, "300000", 1, INT64_MAX, NULL,
     WC(log_retention_check_ms), NULL, "How often retention and compaction run."},
    {"log.cleanup.policy", CONFIG_ENUM, "delete", 0, 0, worker_cleanup_choices,
     WC(log_cleanup_policy), NULL, "Default `cleanup.policy` of topics."},
    {"log.flush", CONFIG_ENUM, "interval", 0, 0, worker_flush_choices, WC(log_flush), NULL,
     "When appends are fsynced: `always` (before an append is acknowledged), `interval` "
     "(every `log.flush.interval.ms`), `never` (the OS decides). See docs/durability.md."},
    {"log.flush.interval.ms", CONFIG_INT, "1000", 1, INT64_MAX, NULL,
     WC(log_flush_interval_ms), NULL, "Flush period for `log.flush=interval`."},
    {"log.index.interval.bytes", CONFIG_INT, "4096", 1, 104857600, NULL,
     WC(log_index_interval_bytes), NULL, "Bytes between offset index entries."},
    {"message.max.bytes", CONFIG_INT, "1048588", 64, 2147483647, NULL,
     WC(message_max_bytes), NULL, "Default `max.message.bytes`: largest record batch."},
    {"jobs", CONFIG_LIST, NULL, 0, 0, NULL, WC(jobs), NULL,
     "Lua job files the worker runs at start (paths, relative to the working directory). "
     "Jobs submitted through `POST /jobs` are kept in the log and come back by themselves."},
    {"stream.threads", CONFIG_INT, "0", 0, 256, NULL, WC(stream_threads), NULL,
     "Stream threads that run job tasks; 0: one per CPU core."},
    {"commit.interval.ms", CONFIG_INT, "1000", 1, INT64_MAX, NULL, WC(commit_interval_ms), NULL,
     "How often tasks commit their state and input positions (Kafka Streams' name)."},
    {"cache.max.bytes.buffering", CONFIG_INT, "10485760", 0, INT64_MAX, NULL,
     WC(cache_max_bytes), NULL,
     "Bytes of write-back cache for all state stores of a thread (Kafka Streams' name); "
     "0 disables caching."},
    {"lua.memory.limit.bytes", CONFIG_INT, "268435456", 1048576, INT64_MAX, NULL,
     WC(lua_memory_limit), NULL, "Memory one job may use on one thread; past it the "
     "operator call fails (the record goes to the dead-letter topic)."},
    {"lua.instruction.budget", CONFIG_INT, "10000000", 1000, INT64_MAX, NULL,
     WC(lua_instruction_budget), NULL, "Lua VM instructions one record may take through a "
     "job; past it the call is stopped (the record goes to the dead-letter topic)."},
    {"lua.sandbox.allow", CONFIG_LIST, NULL, 0, 0, NULL, WC(lua_allow), NULL,
     "Libraries job code may use beyond the sandbox: any of `os`, `io`, `debug`, `load`."},
    {"config.storage.topic", CONFIG_STRING, "connect-configs", 0, 0, NULL,
     WC(config_storage_topic), worker_topic_validate,
     "Compacted topic holding connector configs and target states (Kafka Connect's name, "
     "format and the default of its example config)."},
    {"offset.storage.topic", CONFIG_STRING, "connect-offsets", 0, 0, NULL,
     WC(offset_storage_topic), worker_topic_validate,
     "Compacted topic holding source connectors' offsets (Kafka Connect's format: key "
     "`[\"<connector>\", {partition}]`, value the offset)."},
    {"status.storage.topic", CONFIG_STRING, "connect-status", 0, 0, NULL,
     WC(status_storage_topic), worker_topic_validate,
     "Compacted topic holding connector and task statuses."},
    {"offset.flush.interval.ms", CONFIG_INT, "60000", 1, INT64_MAX, NULL,
     WC(offset_flush_interval_ms), NULL,
     "How often connector tasks commit: sources write their offsets, sinks flush and "
     "commit their consumer group (Kafka Connect's name and default)."},
    {"key.converter", CONFIG_STRING, "org.apache.kafka.connect.storage.StringConverter", 0, 0,
     NULL, WC(key_converter), worker_converter_validate,
     "Converter of record keys for connectors that set none. StringConverter and "
     "ByteArrayConverter pass bytes through; JsonConverter (schemas.enable=false) requires "
     "JSON. See docs/connectors.md."},
    {"value.converter", CONFIG_STRING, "org.apache.kafka.connect.storage.StringConverter", 0, 0,
     NULL, WC(value_converter), worker_converter_validate,
     "Converter of record values for connectors that set none."},
    {"topic.tracking.enable", CONFIG_BOOL, "true", 0, 0, NULL, WC(topic_tracking_enable), NULL,
     "Track the topics each connector uses (KIP-558: GET /connectors/{name}/topics), kept in "
     "status.storage.topic (Kafka Connect's name and default)."},
    {"topic.tracking.allow.reset", CONFIG_BOOL, "true", 0, 0, NULL,
     WC(topic_tracking_allow_reset), NULL,
     "Allow PUT /connectors/{name}/topics/reset (Kafka Connect's name and default)."},
    CONFIG_END,
};

/* Checks what one key's table entry cannot: the names in lua.sandbox.allow. */
static int worker_config_check(worker_config_t *cfg, const char *where, char *err,
                               size_t errlen) {
  for (char **a = cfg->lua_allow; a && *a; a++) {
    if (strcmp(*a, "os") && strcmp(*a, "io") && strcmp(*a, "debug") && strcmp(*a, "load")) {
      snprintf(err, errlen, "%s: lua.sandbox.allow: expected os, io, debug or load, got \"%s\"",
               where, *a);
      return -1;
    }
  }
  return 0;
}

int worker_config_load(worker_config_t *cfg, const char *path, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  if (config_defaults(worker_config_defs, cfg, err, errlen) != 0) return -1;
  if (path && (config_parse_file(worker_config_defs, cfg, path, err, errlen) != 0 ||
               worker_config_check(cfg, path, err, errlen) != 0)) {
    worker_config_free(cfg);
    return -1;
  }
  return 0;
}

void worker_config_lua_options(const worker_config_t *cfg, luavm_options_t *opts) {
  luavm_options_defaults(opts);
  opts->memory_limit = (size_t)cfg->lua_memory_limit;
  opts->instruction_budget = cfg->lua_instruction_budget;
  for (char **a = cfg->lua_allow; a && *a; a++) {
    if (!strcmp(*a, "os")) opts->allow_os = true;
    if (!strcmp(*a, "io")) opts->allow_io = true;
    if (!strcmp(*a, "debug")) opts->allow_debug = true;
    if (!strcmp(*a, "load")) opts->allow_load = true;
  }
}

void worker_config_free(worker_config_t *cfg) { config_free(worker_config_defs, cfg); }

void worker_config_log_options(const worker_config_t *cfg, log_options_t *opts) {
  log_options_defaults(opts);
  log_topic_config_t *t = &opts->defaults;
  t->segment_bytes = cfg->log_segment_bytes;
  t->segment_ms = cfg->log_segment_ms;
  t->retention_ms = cfg->log_retention_ms;
  t->retention_bytes = cfg->log_retention_bytes;
  t->cleanup_policy = cfg->log_cleanup_policy == 0   ? LOG_CLEANUP_DELETE
                      : cfg->log_cleanup_policy == 1 ? LOG_CLEANUP_COMPACT
                                                     : LOG_CLEANUP_COMPACT | LOG_CLEANUP_DELETE;
  t->flush = cfg->log_flush == 0 ? LOG_FLUSH_ALWAYS
             : cfg->log_flush == 1 ? LOG_FLUSH_INTERVAL : LOG_FLUSH_NEVER;
  t->flush_interval_ms = cfg->log_flush_interval_ms;
  t->index_interval_bytes = (int32_t)cfg->log_index_interval_bytes;
  t->max_message_bytes = (int32_t)cfg->message_max_bytes;
  opts->num_partitions = (int32_t)cfg->num_partitions;
  opts->retention_check_interval_ms = cfg->log_retention_check_ms;
}

int worker_listeners_parse(const char *value, worker_listener_t *out, int max) {
  int n = 0;
  const char *p = value;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len > 0 && *p == ' ') { p++; len--; }
    while (len > 0 && p[len - 1] == ' ') len--;
    static const char scheme[] = "http://";
    if (n >= max || len <= sizeof scheme - 1 || strncmp(p, scheme, sizeof scheme - 1) != 0)
      return -1;
    const char *host = p + sizeof scheme - 1;
    const char *hend = p + len;
    const char *colon = NULL;
    for (const char *q = host; q < hend; q++)
      if (*q == ':') colon = q;
    if (!colon || colon == host || (size_t)(colon - host) >= sizeof out[n].host) return -1;
    char port[8];
    size_t plen = (size_t)(hend - colon - 1);
    if (plen == 0 || plen >= sizeof port) return -1;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    char *pe;
    long pv = strtol(port, &pe, 10);
    if (*pe != '\0' || pv < 0 || pv > 65535) return -1;
    memcpy(out[n].host, host, (size_t)(colon - host));
    out[n].host[colon - host] = '\0';
    if (out[n].host[0] == '[') { /* [::1] */
      size_t hl = strlen(out[n].host);
      if (hl < 3 || out[n].host[hl - 1] != ']') return -1;
      memmove(out[n].host, out[n].host + 1, hl - 2);
      out[n].host[hl - 2] = '\0';
    }
    out[n].port = (int)pv;
    n++;
    if (!end) break;
    p = end + 1;
  }
  return n;
}
