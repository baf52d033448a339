/*
 * connector.h: the connector interface and the built-in connectors.
 *
 * Kafka Connect's model, as a C struct of callbacks (like a Fluent Bit
 * plugin). A connector plugin says which config keys it takes (a table of
 * conn_def_t: type, default, importance, documentation, validator), how a
 * connector config splits into task configs (tasks.max), and what a task
 * does: a source task polls records, each with a source partition and a
 * source offset (JSON objects, as in Kafka Connect); a sink task receives
 * batches of records and flushes them.
 *
 * The framework (runtime/connect*.c), not the plugin, stores configs,
 * source offsets and statuses in internal compacted topics, converts and
 * transforms records, retries, applies errors.tolerance and the dead letter
 * queue, and meters everything. A plugin only talks to its data: a file, a
 * database.
 *
 * Configs are string maps (conn_config_t), as in Kafka Connect: every
 * value is a string ("tasks.max": "1"); typed getters parse them with the
 * plugin's definitions.
 *
 * Transforms (Single Message Transforms) are the second kind of plugin in
 * this header: conn_transform_plugin_t, applied to one conn_record_t at a
 * time, in the order of the connector's `transforms` list.
 *
 * Threads: the framework runs each task on its own thread; a plugin's task
 * callbacks are called from that thread only. Callbacks may block (a
 * database call); they should return within about a second when
 * conn_ctx_stopping() becomes true.
 *
 * Depends on libc, yajl (JSON values), sqlite3 and libpq; never on the
 * topology engine or on libuv.
 */
#ifndef RUNNEL_CONNECTOR_H
#define RUNNEL_CONNECTOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- return codes ------------------------------------------------------ */

enum {
  CONN_OK = 0,
  CONN_E_FAIL = -1,  /* non-retriable: the task fails (its status shows err) */
  CONN_E_RETRY = -2, /* retriable (a database went away): the framework
                        calls again with backoff, within errors.retry.timeout,
                        and shows the state in the task's status */
};

/* ---- config maps --------------------------------------------------------- */

/* An ordered string map (insertion order kept for JSON output). Keys and
 * values are owned copies. */
typedef struct {
  char **keys;
  char **values;
  size_t count, cap;
} conn_config_t;

void conn_config_init(conn_config_t *c);
void conn_config_free(conn_config_t *c);
/* Sets (replaces) key. Returns 0 or -ENOMEM. */
int conn_config_set(conn_config_t *c, const char *key, const char *value);
/* Removes key if present. */
void conn_config_unset(conn_config_t *c, const char *key);
/* The value of key, or NULL. */
const char *conn_config_get(const conn_config_t *c, const char *key);
int conn_config_copy(conn_config_t *dst, const conn_config_t *src);
/* Parses a JSON object of strings (numbers and booleans are accepted and
 * kept in their JSON text form, as Kafka Connect's REST API does). Errors
 * name `where` and the line:col or key. Returns 0 or -1. */
int conn_config_from_json(conn_config_t *c, const char *where, const char *json, size_t len,
                          char *err, size_t errlen);
/* A malloc'd JSON object of the map. */
char *conn_config_to_json(const conn_config_t *c);

/* ---- config definitions (Kafka's ConfigDef) ------------------------------ */

typedef enum {
  CONN_T_STRING,
  CONN_T_INT,
  CONN_T_LONG,
  CONN_T_DOUBLE,
  CONN_T_BOOLEAN,
  CONN_T_LIST,     /* comma-separated */
  CONN_T_PASSWORD, /* shown as "[hidden]" */
  CONN_T_CLASS,
} conn_type_t;

typedef enum { CONN_IMP_HIGH, CONN_IMP_MEDIUM, CONN_IMP_LOW } conn_importance_t;

typedef struct {
  const char *name;
  conn_type_t type;
  const char *default_value;  /* NULL: no default; required unless optional */
  bool optional;              /* no default and may be absent */
  conn_importance_t importance;
  const char *doc;
  const char *group;          /* "Common", "Connection", "Mode", ... */
  const char *const *choices; /* valid values (NULL-terminated) or NULL */
  int64_t min, max;           /* INT/LONG bounds when min < max */
  /* Extra check: returns 0, or -1 with a message in msg (what is wrong,
   * e.g. "must start with sqlite:// or postgresql://"). May be NULL. */
  int (*validate)(const char *value, char *msg, size_t len);
} conn_def_t;

#define CONN_DEF_END {0}

/* Validation result of one key: Kafka Connect's ConfigValue. */
typedef struct {
  const conn_def_t *def;
  const char *value;       /* effective value (the default when absent) */
  char *errors[4];         /* malloc'd messages; NULL-terminated */
} conn_value_t;

/* Validates cfg against defs: types, bounds, choices, required keys and
 * validators. Returns the number of errors; *out (when not NULL) gets one
 * conn_value_t per def (free with conn_values_free). When err is given,
 * the first error is written there as "<key>: <message>". */
int conn_config_validate(const conn_def_t *defs, const conn_config_t *cfg, conn_value_t **out,
                         size_t *n_out, char *err, size_t errlen);
void conn_values_free(conn_value_t *v, size_t n);

/* Typed getters: the value of key (or its default from defs). They do not
 * fail on a validated config; on a missing key they return def_value. */
const char *conn_get_string(const conn_def_t *defs, const conn_config_t *c, const char *key);
int64_t conn_get_long(const conn_def_t *defs, const conn_config_t *c, const char *key);
bool conn_get_bool(const conn_def_t *defs, const conn_config_t *c, const char *key);
/* A malloc'd NULL-terminated array of trimmed items (free with
 * conn_list_free); an empty list is an array holding only NULL. */
char **conn_get_list(const conn_def_t *defs, const conn_config_t *c, const char *key);
void conn_list_free(char **list);

/* ---- memory carved from chunks (conn_pool.c) ------------------------------ */

/* A bump allocator: blocks are released all at once by conn_pool_reset,
 * which keeps the chunks for reuse. Zero-initialised: empty. Not
 * thread-safe. */
typedef struct conn_pool_chunk conn_pool_chunk_t;
typedef struct {
  conn_pool_chunk_t *head;  /* the chunk being carved, then older ones */
  conn_pool_chunk_t *spare; /* chunks released by conn_pool_reset */
} conn_pool_t;

/* Memory that lives until the next reset (16-byte aligned); NULL on
 * ENOMEM. */
void *conn_pool_alloc(conn_pool_t *p, size_t n);
/* Grows old (old_n bytes) to n: in place when it is the latest block. */
void *conn_pool_realloc(conn_pool_t *p, void *old, size_t old_n, size_t n);
/* Releases every block at once. */
void conn_pool_reset(conn_pool_t *p);
void conn_pool_free(conn_pool_t *p);

/* ---- records ------------------------------------------------------------- */

typedef struct {
  char *key;
  void *value;       /* NULL with value_len -1: null header value */
  int32_t value_len;
} conn_header_t;

/* A record crossing the connector boundary. Every buffer is owned by the
 * record (malloc'd) and freed by conn_record_clear; setters copy. A source
 * may instead lend the topic, key, value, source partition or source
 * offset (its CONN_LENT_* bit set in lent): memory that outlives the
 * batch, such as the batch's own (conn_batch_copy) or the plugin's until
 * its next poll. conn_record_clear leaves lent buffers alone, and a
 * setter replaces one without freeing it. This saves a poll of many small
 * records their mallocs and frees.
 *
 * Source records: topic is the destination (transforms may change it);
 * partition -1 lets the partitioner choose; source_partition and
 * source_offset are JSON object texts ({"filename":"/a.txt"},
 * {"position":1042}); the framework commits source_offset once the record
 * is durably in the log, and gives it back through conn_ctx_offset after a
 * restart.
 *
 * Sink records: topic, partition, offset and timestamp say where the
 * record was read from; source_* are NULL. */
typedef struct {
  char *topic;
  int32_t partition;
  int64_t offset;      /* sink only; -1 for source records */
  int64_t timestamp;   /* ms since the epoch; -1: none (the log sets now) */
  void *key;           /* NULL with key_len -1: null key */
  int32_t key_len;
  void *value;         /* NULL with value_len -1: null value (tombstone) */
  int32_t value_len;
  conn_header_t *headers;
  int32_t header_count;
  char *source_partition;
  char *source_offset;
  unsigned lent;       /* CONN_LENT_* of the buffers the record does not own */
} conn_record_t;

enum {
  CONN_LENT_TOPIC = 1,
  CONN_LENT_KEY = 2,
  CONN_LENT_VALUE = 4,
  CONN_LENT_SOURCE_PARTITION = 8,
  CONN_LENT_SOURCE_OFFSET = 16,
};

void conn_record_init(conn_record_t *r);
void conn_record_clear(conn_record_t *r);  /* frees and re-inits */
int conn_record_copy(conn_record_t *dst, const conn_record_t *src);
int conn_record_set_topic(conn_record_t *r, const char *topic);
/* data NULL (len ignored) sets a null key/value. */
int conn_record_set_key(conn_record_t *r, const void *data, int32_t len);
int conn_record_set_value(conn_record_t *r, const void *data, int32_t len);
/* Adds a header (headers may repeat, as in Kafka). */
int conn_record_add_header(conn_record_t *r, const char *key, const void *value, int32_t len);
/* The first header named key, or NULL. */
const conn_header_t *conn_record_header(const conn_record_t *r, const char *key);

/* A growable array of records, and memory for their lent buffers. */
typedef struct {
  conn_record_t *records;
  size_t count, cap;
  conn_pool_t mem; /* see conn_batch_copy */
} conn_batch_t;

void conn_batch_init(conn_batch_t *b);
/* Appends an empty record and returns it (NULL on ENOMEM). */
conn_record_t *conn_batch_add(conn_batch_t *b);
void conn_batch_clear(conn_batch_t *b);  /* clears records, keeps memory */
/* A NUL-terminated copy of len bytes that lives until the batch is cleared
 * or freed: for buffers a source lends its records. NULL on ENOMEM. */
char *conn_batch_copy(conn_batch_t *b, const void *data, size_t len);
void conn_batch_free(conn_batch_t *b);

/* ---- what the framework gives a task ----------------------------------- */

typedef struct conn_ctx conn_ctx_t;

/* The connector's name and this task's index. */
const char *conn_ctx_name(const conn_ctx_t *ctx);
int conn_ctx_task_id(const conn_ctx_t *ctx);
/* True once the framework asks the task to stop (stop, pause, delete,
 * shutdown). */
bool conn_ctx_stopping(const conn_ctx_t *ctx);
/* Sleeps up to ms, returning early (true) when the task should stop. */
bool conn_ctx_sleep(conn_ctx_t *ctx, int64_t ms);
/* level: 0 error, 1 warn, 2 info, 3 debug. */
void conn_ctx_log(conn_ctx_t *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Source tasks: the last committed source offset (a malloc'd JSON object
 * text) for a source partition (JSON object text), or NULL when none. */
char *conn_ctx_offset(conn_ctx_t *ctx, const char *source_partition);

/* Source tasks: calls cb for every source partition of this connector
 * with a committed offset (JSON object texts, as conn_ctx_offset gives
 * them), for a source whose data moves between partitions: a file
 * renamed by a rotation into another name of the file source's glob. */
void conn_ctx_offsets_each(conn_ctx_t *ctx,
                           void (*cb)(void *arg, const char *partition, const char *offset),
                           void *arg);

/* Sink tasks: start reading topic/partition at offset instead of the
 * consumer group's committed offset (for sinks that keep their own
 * offsets, such as the SQLite sink; Kafka's SinkTaskContext.offset). Call
 * from start or from put; takes effect before the next put. */
void conn_ctx_seek(conn_ctx_t *ctx, const char *topic, int32_t partition, int64_t offset);

/* Sink tasks: reports one record of the current put as bad (a value that
 * is not JSON, a row the database refuses). With errors.tolerance=all the
 * framework sends it to the dead letter queue (when configured) and logs
 * it; with none, the task fails after put returns. Kafka's
 * ErrantRecordReporter. Returns 0 when tolerated, -1 when the task will
 * fail. */
int conn_ctx_report(conn_ctx_t *ctx, const conn_record_t *rec, const char *reason);

/* Source tasks have no conn_ctx_report: a record a source could read but
 * not make sense of (a malformed JSON line) is still returned by poll,
 * never dropped, with a header of this name whose value says what is wrong
 * ("/var/log/a.json:12:5: invalid JSON: ..."). The framework handles such a
 * record like one its converter rejects (stage TASK_POLL): with
 * errors.tolerance=none the task fails naming the reason; with all it is
 * logged (errors.log.enable) and skipped, its source offset still
 * committed so that it is not read again. */
#define CONN_HEADER_ERROR "__runnel.connect.error"

/* ---- connector plugins --------------------------------------------------- */

typedef enum { CONN_SOURCE, CONN_SINK } conn_kind_t;

typedef struct conn_plugin {
  const char *name;              /* connector.class value: "file-source" */
  const char *const *aliases;    /* other accepted names (Kafka's class
                                    names), NULL-terminated, or NULL */
  conn_kind_t kind;
  const char *version;
  const conn_def_t *defs;        /* connector-specific keys */

  /* Cross-key checks after per-key validation (e.g. "incrementing mode
   * needs incrementing.column.name"). Returns 0, or -1 with the key in
   * *key (static string) and the message in msg. May be NULL. */
  int (*validate)(const conn_config_t *cfg, const char **key, char *msg, size_t len);

  /* Splits a validated connector config into at most max_tasks task
   * configs: *out gets a malloc'd array of *n_out maps (each freed by the
   * framework with conn_config_free, then the array with free). NULL: one
   * task with the connector's config. */
  int (*task_configs)(const conn_config_t *cfg, int max_tasks, conn_config_t **out,
                      size_t *n_out, char *err, size_t errlen);

  size_t task_size;  /* bytes of task state; the framework zeroes it */

  /* Starts a task: cfg is the task config (already validated). Returns
   * CONN_OK, CONN_E_RETRY (try again later), or CONN_E_FAIL. */
  int (*start)(void *task, conn_ctx_t *ctx, const conn_config_t *cfg, char *err, size_t errlen);
  /* Releases everything start acquired; called once after a successful
   * start, also after a failure of poll/put. */
  void (*stop)(void *task);

  /* Source: appends up to max records to out. Returns the number added,
   * 0 when nothing is available now (the framework waits up to the
   * connector's poll interval, or returns at once when conn_ctx_stopping),
   * or CONN_E_RETRY / CONN_E_FAIL. */
  int (*poll)(void *task, conn_batch_t *out, size_t max, char *err, size_t errlen);
  /* Source: the records up to and including these offsets are durable in
   * the log (Kafka's SourceTask.commit). May be NULL. */
  void (*commit)(void *task);

  /* Sink: writes n records (possibly buffered). Returns CONN_OK, or
   * CONN_E_RETRY (the framework calls put again with the same records
   * after a backoff), or CONN_E_FAIL. Bad single records go through
   * conn_ctx_report, not the return code. */
  int (*put)(void *task, const conn_record_t *records, size_t n, char *err, size_t errlen);
  /* Sink: makes everything put so far durable; after CONN_OK the framework
   * commits the consumed offsets. May be NULL when put is durable. */
  int (*flush)(void *task, char *err, size_t errlen);

  /* ---- optional, added later (a plugin that leaves them NULL keeps the
   * framework's behaviour) ---- */

  /* KIP-875, Kafka's SourceConnector/SinkConnector.alterOffsets: called
   * with the connector STOPPED, before the framework changes its own
   * offsets, once per entry of PATCH /connectors/{name}/offsets
   * (partition_json and offset_json are the entry's JSON objects in the
   * framework's shape, a sink's {"kafka_topic", "kafka_partition"} and
   * {"kafka_offset"}; offset_json NULL: reset that partition), and once for
   * DELETE with both NULL (reset every partition). cfg is the connector's
   * config (its "name" included). It checks the offset's shape and, for a
   * connector that keeps its offsets itself (a sink writing them in its
   * target), applies the change there. Returns 0, or -1 with msg: the
   * request fails with 400 and msg, and the framework changes nothing. */
  int (*alter_offsets)(const conn_config_t *cfg, const char *partition_json,
                       const char *offset_json, char *msg, size_t len);
  /* The offsets a connector keeps itself, for GET .../offsets: *json gets
   * a malloc'd JSON array of {"partition": {..}, "offset": {..}} in the
   * framework's shape. Returns 0, or -1 with msg (500). NULL: the
   * framework shows its own. */
  int (*read_offsets)(const conn_config_t *cfg, char **json, char *msg, size_t len);
} conn_plugin_t;

/* The built-in connector plugins, NULL-terminated. */
const conn_plugin_t *const *conn_plugins(void);
/* The plugin whose name or alias is name, or NULL. */
const conn_plugin_t *conn_plugin_find(const char *name);

/* ---- transforms (SMTs) ---------------------------------------------------- */

typedef struct conn_transform_plugin {
  const char *name;            /* "InsertField$Value", "RegexRouter", "lua" */
  const char *const *aliases;  /* e.g. "org.apache.kafka.connect.transforms.RegexRouter" */
  const conn_def_t *defs;      /* keys under transforms.<alias>. */
  size_t state_size;
  /* cfg holds the transform's own keys with the "transforms.<alias>."
   * prefix removed. */
  int (*init)(void *state, const conn_config_t *cfg, char *err, size_t errlen);
  /* Returns 1 to keep the (possibly changed) record, 0 to drop it, or -1
   * with err (the record is then handled by errors.tolerance). */
  int (*apply)(void *state, conn_record_t *rec, char *err, size_t errlen);
  void (*close)(void *state);
} conn_transform_plugin_t;

/* Predicates for transforms' `predicate` / `negate` keys. */
typedef struct conn_predicate_plugin {
  const char *name;            /* "TopicNameMatches", "HasHeaderKey", "RecordIsTombstone" */
  const char *const *aliases;
  const conn_def_t *defs;
  size_t state_size;
  int (*init)(void *state, const conn_config_t *cfg, char *err, size_t errlen);
  bool (*test)(void *state, const conn_record_t *rec);
  void (*close)(void *state);
} conn_predicate_plugin_t;

/* Built-in transforms and predicates, NULL-terminated; find by name or
 * alias. The runtime registers the `lua` transform, which needs the Lua
 * sandbox, through conn_transform_register. */
const conn_transform_plugin_t *const *conn_transforms(void);
const conn_transform_plugin_t *conn_transform_find(const char *name);
int conn_transform_register(const conn_transform_plugin_t *t);
const conn_predicate_plugin_t *const *conn_predicates(void);
const conn_predicate_plugin_t *conn_predicate_find(const char *name);

/* A connector's transform chain, built from its config's `transforms`,
 * `transforms.<alias>.type`, `transforms.<alias>.predicate`,
 * `transforms.<alias>.negate` and `predicates.*` keys. */
typedef struct conn_chain conn_chain_t;

/* Returns 0 (*out NULL when there are no transforms), or -1 with err
 * naming the key ("transforms.route.regex: ..."). */
int conn_chain_new(const conn_config_t *cfg, conn_chain_t **out, char *err, size_t errlen);
/* Applies the chain: 1 keep, 0 dropped, -1 error (err names the transform
 * alias). */
int conn_chain_apply(conn_chain_t *chain, conn_record_t *rec, char *err, size_t errlen);
/* After conn_chain_apply returned -1: the name of the failing transform's
 * plugin ("RegexRouter"), for Kafka's "with class '...'" in traces. */
const char *conn_chain_failed_class(const conn_chain_t *chain);
void conn_chain_free(conn_chain_t *chain);

/* Internal helpers shared by the built-in connectors and transforms (JSON
 * value access, SQL identifier quoting) live in conn_int.h. */

#endif
