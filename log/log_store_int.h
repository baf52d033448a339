/*
 * log_store_int.h: internals of the storage layer of log/ (segments,
 * indexes, partitions, topics, groups). Shared between log_segment.c,
 * log_index.c, log_partition.c, log_topic.c, log.c, log_reader.c,
 * log_group.c and log_cleaner.c; tests may include it. Not for use outside
 * log/.
 *
 * The codec (bytes only) is declared in log_int.h; this header knows files.
 *
 * Locks, in the order they may be taken:
 *   cleaner_mu       (static in log_cleaner.c) one compaction pass at a
 *                    time; taken with no other lock held
 *   log->mu          topic table, graveyard
 *   p->append_mu     one appender at a time (log_partition_append)
 *   p->flush_mu      one flusher at a time (fsync + recovery-point file)
 *   p->mu            segment list, start/end offsets, index arrays,
 *                    segment sizes, watchers; never held across an fsync
 *                    or a data pread.
 */
#ifndef RUNNEL_LOG_STORE_INT_H
#define RUNNEL_LOG_STORE_INT_H

#include "log_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* ---- test hooks for I/O failures ----------------------------------------
 * Every data write of a segment goes through log__pwrite_hook and every
 * data sync through log__fdatasync_hook. They default to pwrite(2) and
 * fdatasync(2); tests swap them to inject ENOSPC, EIO or short writes.
 * Not thread-safe to change while a log is in use by other threads. */
extern ssize_t (*log__pwrite_hook)(int fd, const void *buf, size_t n, off_t off);
extern int (*log__fdatasync_hook)(int fd);

/* Writes all n bytes at off with write_fn (pwrite, or log__pwrite_hook),
 * retrying short writes and EINTR. Returns 0, -errno, or -EIO for a write
 * that made no progress. */
int log__pwrite_full(ssize_t (*write_fn)(int, const void *, size_t, off_t), int fd,
                     const void *buf, size_t n, int64_t off);

/* ---- index (log_index.c) ------------------------------------------------ */

typedef struct {
  uint32_t rel_offset;   /* last offset of the batch - segment base */
  uint32_t position;     /* byte position of the batch in the .log */
} log__offset_entry_t;

typedef struct {
  int64_t timestamp;     /* max timestamp of the segment so far */
  uint32_t rel_offset;   /* last offset of the batch that first reached it */
} log__time_entry_t;

#define LOG__OFFSET_ENTRY_SIZE 8
#define LOG__TIME_ENTRY_SIZE 12

/* A segment's offset index and time index: sorted in-memory arrays mirrored
 * by append-only files. Entries are appended by the writer with the
 * partition's mu held; lookups take the same lock. */
typedef struct {
  int fd_off, fd_time;
  log__offset_entry_t *off;
  size_t n_off, cap_off;
  log__time_entry_t *time;
  size_t n_time, cap_time;
} log__index_t;

/* Opens (creating) the two index files at path_prefix + ".index" /
 * ".timeindex" and loads them. Returns 0 when both look consistent with a
 * segment of seg_size bytes, 1 when they were missing or inconsistent (both
 * are then emptied and the caller must rebuild them), or -errno. */
int log__index_open(log__index_t *ix, const char *path_prefix, int64_t seg_size,
                    log_error_t *err);
void log__index_close(log__index_t *ix);
/* Appends an entry (memory and file). Time entries whose timestamp is not
 * greater than the last one are ignored, as Kafka's maybeAppend. */
int log__index_add_offset(log__index_t *ix, uint32_t rel_offset, uint32_t position);
int log__index_add_time(log__index_t *ix, int64_t timestamp, uint32_t rel_offset);
/* Drops offset entries at positions >= position and time entries with
 * rel_offset >= rel_offset_limit (memory and files). */
int log__index_truncate(log__index_t *ix, uint32_t position, uint32_t rel_offset_limit);
/* Empties both indexes (memory and files). */
int log__index_reset(log__index_t *ix);
/* Position of the batch of the largest entry whose rel_offset <= rel, or 0:
 * a batch at or before the one holding rel. */
uint32_t log__index_lookup(const log__index_t *ix, uint32_t rel);
/* rel_offset of the largest time entry with timestamp < ts, or -1: every
 * record up to that offset is older than ts. */
int64_t log__index_time_lookup(const log__index_t *ix, int64_t ts);
int log__index_sync(log__index_t *ix);
/* Unlinks the two files of path_prefix. */
void log__index_unlink(const char *path_prefix);

/* ---- segment (log_segment.c) -------------------------------------------- */

typedef struct log__segment_s {
  int64_t base_offset;
  char *path;             /* ".../00000000000000000042" without extension */
  int fd;                 /* the .log, O_RDWR */
  /* Committed state: written by the appender with the partition's mu held,
   * read by readers under that lock. */
  int64_t size;           /* bytes of whole batches (readers read below it) */
  int64_t next_offset;    /* last offset + 1 */
  int64_t max_timestamp;  /* -1 when empty */
  int64_t offset_of_max_ts;
  int64_t first_timestamp;/* max timestamp of the first batch, for segment.ms */
  int64_t bytes_since_index;
  log__index_t index;
  atomic_int refs;        /* the partition's list holds one */
} log__segment_t;

/* Summary of one batch, as the writer and the scans need it. */
typedef struct {
  int64_t base_offset, last_offset, max_timestamp;
  int32_t size;           /* whole batch, bytes */
} log__batch_info_t;

/* Opens (create: creates, failing if it exists) the segment of base_offset
 * in dir. Indexes are not loaded: see log__segment_load_index. *out has one
 * reference. */
int log__segment_open(const char *dir, int64_t base_offset, bool create,
                      log__segment_t **out, log_error_t *err);
void log__segment_ref(log__segment_t *seg);
/* Drops a reference; the last one closes the files and frees seg. */
void log__segment_unref(log__segment_t *seg);
/* Unlinks the segment's three files (open descriptors stay readable). */
void log__segment_unlink(log__segment_t *seg);

/* Loads the indexes of a segment that recovery does not scan; rebuilds them
 * from the segment (headers only) when missing or inconsistent, and sets
 * next_offset/max_timestamp from the data. *rebuilt tells which. */
int log__segment_load(log__segment_t *seg, int32_t index_interval, bool *rebuilt,
                      log_error_t *err);

/* Recovery of the unflushed tail: opens the indexes (keeping the entries
 * below `from`; rebuilding them from headers when damaged), validates every
 * batch from position `from` (length, header, CRC-32C via
 * log__batch_validate), re-creating index entries, and truncates the file
 * at the first batch that is torn or invalid. The state at `from`
 * (next_offset, max_timestamp, offset_of_max_ts) must be set by the caller
 * when from > 0. Sets *truncated to the bytes cut and *scanned to the bytes
 * read; reason receives why it stopped (empty when it did not truncate). */
int log__segment_recover(log__segment_t *seg, int64_t from, int32_t index_interval,
                         int64_t *truncated, int64_t *scanned, char *reason,
                         size_t reason_cap, log_error_t *err);

/* Writes len bytes of whole batches at the end of the segment (seg->size).
 * On any failure the file is truncated back to seg->size and the error
 * returned: nothing partial stays. Does not publish (see _commit). Writer
 * only, no lock needed. */
int log__segment_write(log__segment_t *seg, const uint8_t *data, size_t len,
                       log_error_t *err);
/* Undoes a _write that was not committed (e.g. its fsync failed). */
void log__segment_unwrite(log__segment_t *seg);
/* Publishes a written batch: index entries, size, next offset, max ts.
 * Caller holds the partition's mu. */
void log__segment_commit(log__segment_t *seg, const log__batch_info_t *b,
                         int32_t index_interval);
/* Before the segment stops being active: appends the final time-index
 * entry so the segment's max timestamp survives a restart. Caller holds mu. */
void log__segment_seal(log__segment_t *seg);

/* Finds the position of the first batch with last offset >= offset, starting
 * at start_pos, below limit (bytes). Returns 0 and *pos, 1 when no batch in
 * [start_pos, limit) holds it, LOG_E_CORRUPT when a header is insane. */
int log__segment_seek(log__segment_t *seg, int64_t offset, int64_t start_pos,
                      int64_t limit, int64_t *pos, log_error_t *err);
/* pread of exactly len bytes at pos; -EIO on a short read. */
int log__segment_pread(log__segment_t *seg, void *buf, size_t len, int64_t pos);
/* fdatasync of the .log and fsync of its indexes. */
int log__segment_sync(log__segment_t *seg, bool with_index);
/* Reads and checks the 61-byte header at pos (limit: bytes available). */
int log__segment_header(log__segment_t *seg, int64_t pos, int64_t limit,
                        log__batch_header_t *h);

/* "%020lld" file name of a base offset into buf (>= 21 bytes). */
void log__segment_name(char *buf, int64_t base_offset);

/* ---- partition (log_partition.c) ---------------------------------------- */

struct log_partition_s {
  log_t *log;
  char *topic;                 /* copied */
  int32_t id;
  char *dir;                   /* DIR/<topic>-<id> */
  char label[280];             /* "<topic>-<id>" for messages */
  log_topic_config_t cfg;      /* immutable after open */

  pthread_mutex_t append_mu;
  pthread_mutex_t flush_mu;
  pthread_mutex_t mu;
  pthread_cond_t cond;         /* signalled on append, close, delete */

  /* under mu */
  log__segment_t **segs;
  size_t nsegs, cap_segs;
  int64_t start_offset, end_offset;
  int *watch_fds;
  size_t nwatch, cap_watch;
  bool closed;                 /* deleted or log closing */

  /* recovery point, under flush_mu: what is known to be on disk */
  int64_t rp_base, rp_pos, rp_next, rp_max_ts, rp_max_ts_off;
  bool rp_file_stale;          /* data synced past what the file says */
  _Atomic int64_t last_flush_ms;
  _Atomic int64_t compact_limit; /* the cleaner ignores offsets >= this */ /* read and set by whoever runs log_maintain */
  atomic_bool dirty;           /* written since the last fdatasync */

  /* writer only (append_mu) */
  uint8_t *buf;
  size_t buf_cap;

  /* statistics, for tests and metrics */
  int64_t recovery_scanned_bytes;
  int64_t recovery_truncated_bytes;
};

/* Opens (create: also creates the directory) and recovers one partition.
 * cfg copied. */
int log__partition_open(log_t *log, const char *topic, int32_t id,
                        const log_topic_config_t *cfg, bool create,
                        log_partition_t **out, log_error_t *err);
/* Flushes (when flush), wakes waiters with LOG_E_CLOSED and frees. */
int log__partition_close(log_partition_t *p, bool flush);
/* Marks the partition deleted: waiters wake with LOG_E_CLOSED, later calls
 * fail with LOG_E_UNKNOWN_TOPIC; segments are released (readers in flight
 * keep theirs). The struct stays allocated until log_close. */
void log__partition_kill(log_partition_t *p);
/* The interval flush and retention of one partition at now_ms. */
int log__partition_maintain(log_partition_t *p, int64_t now_ms, log_error_t *err);
/* Time and size retention (whole non-active segments). Returns the number
 * of segments deleted or an error. */
int log__partition_retention(log_partition_t *p, int64_t now_ms);

/* ---- recovery (log_recovery.c) ------------------------------------------ */

/* What is known to be on disk: batches of every segment before rp_base,
 * and of segment rp_base below rp_pos, were fsynced. */
typedef struct {
  int64_t base, pos, next_offset, max_ts, max_ts_offset;
} log__recovery_point_t;

/* Loads p->dir: lists the segments, loads the indexes of the flushed ones
 * and scans (CRC) only what follows the recovery point, truncating a torn or
 * corrupt tail. Fills p->segs, start/end offsets, p->rp_*. Reports
 * truncations and rebuilt indexes through log__event. Called once, before
 * p is shared. */
int log__recovery_run(log_partition_t *p, log_error_t *err);
/* Writes p->dir/recovery-point atomically from rp. Caller holds flush_mu. */
int log__recovery_point_write(log_partition_t *p, const log__recovery_point_t *rp);

/* ---- compaction (log_cleaner.c) -----------------------------------------
 * The pass itself is log__cleaner_run (log_int.h). File names and the swap
 * protocol are described at the top of log_cleaner.c; recovery completes
 * or discards an interrupted swap (log__recovery_run).
 *
 * Test hook: when set, called after each step of a segment's swap with the
 * step and the segment's base offset. A non-zero return stops the pass
 * right there, as if the process had died: no cleanup, the files stay as
 * the step left them, and log__cleaner_run returns that value (when
 * negative; a positive value returns 0). Not thread-safe to change while a
 * log is in use by other threads. */
enum {
  LOG__CLEAN_STEP_CLEANED = 1, /* <base>.log.cleaned + .index.cleaned +
                                  .timeindex.cleaned written and fsynced */
  LOG__CLEAN_STEP_SWAP = 2,    /* renamed to <base>.log.swap, dir fsynced:
                                  the commit point */
  LOG__CLEAN_STEP_RENAMED = 3, /* indexes and .log renamed into place, dir
                                  fsynced; memory still holds the old
                                  segment object */
};
extern int (*log__cleaner_hook)(log_partition_t *p, int step, int64_t base_offset);
/* Upper bound of the key -> offset map, in slots of 16 bytes (default
 * 1 << 22: 64 MiB, as Kafka's log.cleaner.dedupe.buffer.size is 128 MiB
 * for all cleaner threads). Tests lower it to exercise a map that fills. */
extern size_t log__cleaner_map_slots_max;

/* ---- topics (log_topic.c) ----------------------------------------------- */

typedef struct {
  char *name;
  log_topic_config_t cfg;
  int32_t nparts;
  log_partition_t **parts;
} log__topic_t;

/* Loads every DIR/<topic>.config at open. Caller holds nothing (open is
 * single-threaded). */
int log__topics_load(log_t *log, log_error_t *err);
void log__topics_close(log_t *log, bool flush, int *first_err);
/* Finds a topic; caller holds log->mu. */
log__topic_t *log__topic_find(log_t *log, const char *name);
/* Parses a .config file's text into cfg and *partitions. */
int log__topic_config_parse(const char *text, const char *what, log_topic_config_t *cfg,
                            int32_t *partitions, log_error_t *err);

/* ---- groups (log_group.c) ----------------------------------------------- */

#define LOG__GROUP_TOPIC "__consumer_offsets"
typedef struct log__groups_s log__groups_t;
/* Creates __consumer_offsets if needed and loads its contents. */
int log__groups_open(log_t *log, log__groups_t **out, log_error_t *err);
void log__groups_free(log__groups_t *g);

/* ---- the log (log.c) ---------------------------------------------------- */

struct log_s {
  char *dir;
  log_options_t opts;
  pthread_mutex_t mu;
  log__topic_t **topics;       /* under mu */
  size_t ntopics, cap_topics;
  log_partition_t **graveyard; /* deleted partitions, freed at close */
  size_t ngrave, cap_grave;
  log__groups_t *groups;

  pthread_t thread;            /* background maintenance */
  bool thread_started;
  bool stopping;               /* under mu */
  pthread_cond_t stop_cond;
  int64_t last_retention_ms;
};

/* Reports an event through opts.on_event (level 0 error, 1 warn, 2 info). */
void log__event(log_t *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes data to dir/name atomically: dir/name.tmp, fsync, rename, fsync
 * dir. Survives a crash or power cut at any point: the old or the new
 * content, never a mix. */
int log__write_file_atomic(const char *dir, const char *name, const void *data,
                           size_t len);
/* fsync of a directory, so a create/rename/unlink in it is durable. */
int log__fsync_dir(const char *dir);
/* Removes a directory and the files in it (one level). */
int log__remove_dir(const char *dir);
/* Reads a whole small file into a malloc'd NUL-terminated buffer. */
int log__read_file(const char *path, char **out, size_t *len);

#endif /* RUNNEL_LOG_STORE_INT_H */
