/*
 * log.h: the embedded partitioned log, runnel's one public log interface.
 *
 * Kafka's model: a log (one directory) holds topics; a topic has N
 * partitions; a partition is an append-only sequence of records addressed by
 * dense 64-bit offsets. On disk a partition is a directory of segments, each
 * a file of Kafka RecordBatch v2 batches byte for byte (see log_batch.c and
 * docs/log-format.md), with a sparse offset index and a time index.
 *
 * Depends on libc and pthreads only: no libuv, no Lua, no runtime.
 *
 * Layout of a log directory:
 *
 *   DIR/<topic>-<partition>/00000000000000000000.log        segment
 *                           00000000000000000000.index      offset index
 *                           00000000000000000000.timeindex  time index
 *                           recovery-point                  flushed position
 *                           topic.config (partition 0 only) topic config
 *   DIR/__consumer_offsets-0/...                            group offsets
 *
 * Errors: every function returns 0 (or a count) on success and a negative
 * number on failure: -errno for system errors, or one of LOG_E_* below.
 * When a log_error_t is passed (it may be NULL) its message names what was
 * wrong: the topic, partition, offset or file involved.
 *
 * Threads: a log_t may be used from many threads. Per partition, one thread
 * at a time may append (the writer), while any number of threads read; a
 * reader never sees a partially written batch (readers see only offsets
 * below the high watermark, which moves after a batch is fully written).
 * Topic create/delete take the log's lock.
 */
#ifndef RUNNEL_LOG_H
#define RUNNEL_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- errors ------------------------------------------------------------ */

/* X(name, value, message). Values are below -1000 so they never collide
 * with -errno. */
#define LOG_ERRNO_MAP(X)                                                      \
  X(INVALID_TOPIC,      -1001, "invalid topic name")                          \
  X(TOPIC_EXISTS,       -1002, "topic already exists")                        \
  X(UNKNOWN_TOPIC,      -1003, "unknown topic")                               \
  X(UNKNOWN_PARTITION,  -1004, "unknown partition")                           \
  X(RECORD_TOO_LARGE,   -1005, "record batch larger than max.message.bytes")  \
  X(OFFSET_OUT_OF_RANGE,-1006, "offset out of range")                         \
  X(CORRUPT,            -1007, "corrupt record batch")                        \
  X(UNSUPPORTED_CODEC,  -1008, "unsupported compression codec")               \
  X(INVALID_CONFIG,     -1009, "invalid topic config")                        \
  X(CLOSED,             -1010, "log is closed")                               \
  X(TIMED_OUT,          -1011, "timed out")

typedef enum {
#define LOG__ERR_ENUM(name, value, msg) LOG_E_##name = value,
  LOG_ERRNO_MAP(LOG__ERR_ENUM)
#undef LOG__ERR_ENUM
} log_errno_t;

/* Short name of an error code ("UNKNOWN_TOPIC", or "ENOENT"-like text for
 * -errno values). Never NULL; static storage. */
const char *log_err_name(int err);
/* Human message for an error code; static storage, never NULL. */
const char *log_strerror(int err);

/* Error detail for users. Filled by any function that fails, when given. */
typedef struct {
  int code;        /* the same negative number the function returned */
  char msg[512];   /* e.g. "clicks-3: offset 1042: CRC mismatch (...)" */
} log_error_t;

/* ---- records ----------------------------------------------------------- */

typedef struct {
  const char *key;     /* header keys are UTF-8 strings in Kafka */
  int32_t key_len;
  const void *value;   /* NULL with value_len -1 for a null header value */
  int32_t value_len;
} log_header_t;

/* A record to append, or a record read back (then every pointer points
 * into the reader's buffer and stays valid until the next read call). */
typedef struct {
  int64_t offset;        /* set on read; ignored on append */
  int64_t timestamp;     /* ms since the epoch; on append, -1 means "now" */
  const void *key;       /* NULL with key_len -1: null key */
  int32_t key_len;
  const void *value;     /* NULL with value_len -1: null value (tombstone) */
  int32_t value_len;
  const log_header_t *headers;
  int32_t header_count;
} log_record_t;

/* ---- configuration ----------------------------------------------------- */

typedef enum { LOG_FLUSH_ALWAYS, LOG_FLUSH_INTERVAL, LOG_FLUSH_NEVER } log_flush_t;

/* cleanup.policy: a bit set, as Kafka allows "compact,delete". */
enum { LOG_CLEANUP_DELETE = 1, LOG_CLEANUP_COMPACT = 2 };

/* Per-topic config; Kafka's topic-level names and defaults. */
typedef struct {
  int64_t retention_ms;          /* retention.ms, default 604800000; -1 = forever */
  int64_t retention_bytes;       /* retention.bytes per partition, default -1 */
  int cleanup_policy;            /* cleanup.policy, default delete */
  int64_t segment_bytes;         /* segment.bytes, default 1073741824, min 14 */
  int64_t segment_ms;            /* segment.ms, default 604800000 */
  int32_t max_message_bytes;     /* max.message.bytes, default 1048588 */
  int64_t delete_retention_ms;   /* delete.retention.ms, default 86400000 */
  int64_t min_compaction_lag_ms; /* min.compaction.lag.ms, default 0 */
  int32_t index_interval_bytes;  /* index.interval.bytes, default 4096 */
  log_flush_t flush;             /* log.flush, default interval */
  int64_t flush_interval_ms;     /* log.flush.interval.ms, default 1000 */
} log_topic_config_t;

/* Fills *cfg with Kafka's defaults (and runnel's flush default). */
void log_topic_config_defaults(log_topic_config_t *cfg);

/* Sets one config key ("retention.ms", "cleanup.policy", ...) from its
 * string form, as `--config k=v` and topic .config files give it. Returns
 * LOG_E_INVALID_CONFIG with err naming the key and the expected form. */
int log_topic_config_set(log_topic_config_t *cfg, const char *key,
                         const char *value, log_error_t *err);

/* Writes "key=value\n" lines for every key to buf (NUL-terminated, truncated
 * to cap). Returns the length it needed. */
size_t log_topic_config_format(const log_topic_config_t *cfg, char *buf, size_t cap);

/* Worker-level options for log_open. */
typedef struct {
  log_topic_config_t defaults;   /* topic config used when create gives none */
  int32_t num_partitions;        /* num.partitions, default 1 */
  bool background;               /* run the flusher/retention/cleaner thread */
  int64_t retention_check_interval_ms; /* default 300000 */
  /* Called (from any thread) for notable events: recovery truncations,
   * deleted segments, compaction passes. level: 0 error, 1 warn, 2 info.
   * May be NULL. */
  void (*on_event)(void *opaque, int level, const char *msg);
  void *opaque;
} log_options_t;

void log_options_defaults(log_options_t *opts);

/* ---- the log ----------------------------------------------------------- */

typedef struct log_s log_t;
typedef struct log_partition_s log_partition_t;

/* Opens (creating if needed) the log in dir, recovering every partition:
 * torn or corrupt tails of active segments are truncated (reported through
 * on_event), missing or inconsistent indexes rebuilt, interrupted compaction
 * swaps completed. Recovery scans only what was not known to be flushed.
 * opts is copied; NULL means defaults. The caller must ensure no other
 * process uses dir (the runtime holds the data dir lock). */
int log_open(const char *dir, const log_options_t *opts, log_t **out, log_error_t *err);

/* Flushes every partition, writes recovery points, stops the background
 * thread and frees the log. Readers and partitions obtained from it must be
 * released first. Returns the first flush error, if any; frees regardless. */
int log_close(log_t *log);

/* Validates a topic name as Kafka does: [a-zA-Z0-9._-], 1..249 chars,
 * not "." or "..". Returns 0 or LOG_E_INVALID_TOPIC with err saying why. */
int log_topic_name_validate(const char *name, log_error_t *err);

/* Creates a topic with `partitions` partitions (>= 1) and cfg (copied;
 * NULL: the log's defaults). LOG_E_TOPIC_EXISTS if it exists. */
int log_topic_create(log_t *log, const char *name, int32_t partitions,
                     const log_topic_config_t *cfg, log_error_t *err);

/* Deletes a topic and its files. */
int log_topic_delete(log_t *log, const char *name, log_error_t *err);

/* Topic names, sorted, as a NULL-terminated array the caller frees with
 * log_names_free(). Internal topics (starting with "__") are included only
 * when include_internal. */
int log_topic_list(log_t *log, bool include_internal, char ***names);
void log_names_free(char **names);

/* Number of partitions of a topic (> 0), or a negative error. */
int log_topic_partitions(log_t *log, const char *topic, log_error_t *err);

/* Copies the topic's config into *cfg. */
int log_topic_config(log_t *log, const char *topic, log_topic_config_t *cfg,
                     log_error_t *err);

/* Partition for a record as Kafka's default partitioner places it:
 * murmur2(key) & 0x7fffffff, modulo partitions. Unkeyed records (key NULL)
 * are spread round-robin per topic. */
int32_t log_partition_for_key(const void *key, int32_t key_len, int32_t partitions);

/* ---- partitions -------------------------------------------------------- */

/* A borrowed handle, valid until log_close or the topic's deletion. */
int log_partition_get(log_t *log, const char *topic, int32_t partition,
                      log_partition_t **out, log_error_t *err);

/* Appends n records as one or more batches (each at most max.message.bytes)
 * and sets *base_offset to the first record's offset. All-or-nothing for
 * validation: a record that alone exceeds max.message.bytes fails the call
 * with LOG_E_RECORD_TOO_LARGE before anything is written. Returns after the
 * topic's flush policy is met (log.flush=always: after fdatasync). Writer
 * thread only. */
int log_partition_append(log_partition_t *p, const log_record_t *recs, size_t n,
                         int64_t *base_offset, log_error_t *err);

/* First offset still in the log (log start offset) and the offset the next
 * append will get (log end offset = high watermark). */
int64_t log_partition_start_offset(log_partition_t *p);
int64_t log_partition_end_offset(log_partition_t *p);

/* Bytes of all segments of the partition. */
int64_t log_partition_size(log_partition_t *p);

/* Offset of the first record whose timestamp is >= ts (Kafka's
 * ListOffsets), or the end offset when there is none. */
int log_partition_offset_for_time(log_partition_t *p, int64_t ts, int64_t *offset,
                                  log_error_t *err);

/* Compaction treats the partition as if it ended at `offset`: only
 * segments wholly below it are cleaned, and only records below it can
 * supersede older ones. A state-store changelog sets it to the end its
 * owner last checkpointed, so that a restore up to that checkpoint never
 * finds a key's value removed in favour of one written after it (as
 * Kafka's cleaner stops at the last stable offset). Default: no limit.
 * Any thread; not persisted (set it again after log_open). */
void log_partition_set_compaction_limit(log_partition_t *p, int64_t offset);

/* Flushes (fdatasync) what is written and records the recovery point. */
int log_partition_flush(log_partition_t *p, log_error_t *err);

/* Blocks the calling thread until the end offset is > offset or timeout_ms
 * passes (-1: forever). Returns 0, LOG_E_TIMED_OUT, or LOG_E_CLOSED. */
int log_partition_wait(log_partition_t *p, int64_t offset, int64_t timeout_ms);

/* Registers an fd (an eventfd, or a pipe's write end) that gets an 8-byte
 * write of 1 after every append, so a libuv loop can uv_poll it. The fd is
 * borrowed; unwatch before closing it. */
int log_partition_watch(log_partition_t *p, int fd);
int log_partition_unwatch(log_partition_t *p, int fd);

/* Raw read: copies whole batches starting with the batch that contains
 * offset, up to max_bytes (at least one whole batch is returned even if it is
 * larger), into buf (grown with realloc; *buf and *cap are in-out). Sets *len.
 * *len == 0 means offset == end offset. LOG_E_OFFSET_OUT_OF_RANGE when
 * offset is below start or above end. Any thread. */
int log_partition_read(log_partition_t *p, int64_t offset, size_t max_bytes,
                       uint8_t **buf, size_t *cap, size_t *len, log_error_t *err);

/* ---- readers: records one at a time ------------------------------------ */

typedef struct log_reader_s log_reader_t;

/* A reader of one partition from offset (clamped to nothing: an offset out
 * of range is an error). Reads ahead in batches of up to fetch_bytes
 * (0: 1 MiB). */
int log_reader_new(log_t *log, const char *topic, int32_t partition, int64_t offset,
                   size_t fetch_bytes, log_reader_t **out, log_error_t *err);
void log_reader_free(log_reader_t *r);

/* Next record: returns 1 and fills *rec (pointers valid until the next
 * call), 0 at the end of the log for now, or a negative error (LOG_E_CORRUPT
 * names topic, partition and offset; the reader stays at that offset). */
int log_reader_next(log_reader_t *r, log_record_t *rec, log_error_t *err);

/* The offset the next call will return (or wait for). */
int64_t log_reader_position(const log_reader_t *r);
int log_reader_seek(log_reader_t *r, int64_t offset, log_error_t *err);

/* ---- consumer group offsets -------------------------------------------- */

/* Stored in the internal compacted topic __consumer_offsets, so they
 * survive restarts and are shared with every user of the log. Commit is
 * durable when it returns (the offsets topic always flushes). */
int log_group_commit(log_t *log, const char *group, const char *topic,
                     int32_t partition, int64_t offset, log_error_t *err);

/* Removes the committed offset (a tombstone in __consumer_offsets), so the
 * group has none for that partition; durable when it returns. Removing an
 * offset the group does not have is a no-op. */
int log_group_delete(log_t *log, const char *group, const char *topic,
                     int32_t partition, log_error_t *err);

/* Sets *offset to the committed offset, or -1 when the group has none. */
int log_group_fetch(log_t *log, const char *group, const char *topic,
                    int32_t partition, int64_t *offset, log_error_t *err);

/* ---- maintenance ------------------------------------------------------- */

/* One pass of flushing (interval policy), time/size retention and compaction
 * over every partition, at time now_ms. The background thread calls it;
 * tests call it directly. */
int log_maintain(log_t *log, int64_t now_ms, log_error_t *err);

/* Current time in ms since the epoch (CLOCK_REALTIME). */
int64_t log_now_ms(void);

#endif /* RUNNEL_LOG_H */
