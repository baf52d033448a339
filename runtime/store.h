/*
 * store.h: a task's state: SQLite-backed key-value stores with a
 * write-back cache, a changelog, and the commit that makes state and input
 * positions agree.
 *
 * One store_db_t per task: one SQLite database file (WAL mode) holding
 *   - one table per store:  "kv_<store>" (k BLOB PRIMARY KEY, v BLOB NOT NULL)
 *   - "runnel_offsets"      (topic TEXT, partition INTEGER, offset INTEGER,
 *                            PRIMARY KEY (topic, partition)): the input
 *                            positions consumed, and the changelog positions
 *                            the tables reflect.
 * Values are bytes; the runtime encodes them (JSON for Lua values).
 *
 * Cache: each store has a size-bounded write-back cache (bytes of keys,
 * values and a per-entry overhead). get looks in the cache, then SQLite; put writes the cache only
 * and marks the entry dirty. When the cache is full, the least recently
 * used entries are evicted; a dirty evicted entry is first flushed the way
 * a commit flushes it: all of that store's dirty entries go through the
 * changelog callback (store_db_set_changelog) and into an open SQLite
 * transaction, which only the next store_db_commit commits, together with
 * the input offsets. An eviction never commits on its own: if it did, the
 * file would hold state ahead of its offsets after a crash, and
 * reprocessing would count those records twice.
 *
 * Commit (store_db_commit): for every dirty entry of every store, in one
 * go: (1) the changelog callback receives the batch of changed (key, value
 * or NULL for deletes) so the caller appends it to the store's changelog
 * topic; (2) one SQLite transaction applies the batch to the tables and
 * writes the given input offsets and the changelog end offsets. If the
 * process dies before (2) commits, the SQLite file still holds the previous
 * state and previous offsets, so reprocessing from those offsets rebuilds
 * exactly the same state (the changelog may hold duplicates of the same
 * updates, which are idempotent on restore). Nothing is counted twice in a
 * store, nothing is skipped.
 *
 * Durability: WAL mode with synchronous=NORMAL. A commit is durable
 * against a process crash as soon as store_db_commit returns (the WAL
 * frames are in the OS page cache); a power cut may lose the last commits
 * (the WAL is fsynced at checkpoints), and then state and offsets roll back
 * together, so the records are reprocessed from the older offsets:
 * consistent by construction, at the price of one fsync per checkpoint
 * instead of one per commit.
 *
 * Restore: when a task starts and its file is missing, corrupt (it is then
 * moved aside), or its changelog offsets are behind the changelog topic's
 * end, the runtime replays the changelog from the recorded offset through
 * store_restore_put and store_restore_done. Caution for the runtime: after
 * a crash between the changelog append and the SQLite commit, the
 * changelog is ahead of an intact file; replaying that tail AND
 * reprocessing the input from the file's offsets applies those updates
 * twice for non-idempotent operations (counts). With an intact file, prefer
 * the file's state and offsets (the changelog tail is re-appended when the
 * inputs are reprocessed); restore from the changelog when the file is new
 * or was reset.
 *
 * Errors: 0 or a negative number (-errno, or STORE_E_*); messages go into
 * err buffers and name the file and store; functions without an err
 * buffer leave the message in store_db_errmsg(). After STORE_E_BROKEN (a
 * SQLite write failed while the open transaction held entries that had
 * already left the cache) every call fails until the db is closed and
 * reopened, which resumes from the last commit.
 *
 * Threads: a store_db_t and its stores belong to one thread (the task's
 * stream thread). Interactive queries use store_reader_*, a separate
 * read-only SQLite connection usable from another thread; it sees the
 * last committed state.
 */
#ifndef RUNNEL_STORE_H
#define RUNNEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, value, message). Values are below -3000 so they never collide
 * with -errno. */
#define STORE_ERRNO_MAP(X)                                                          \
  X(SQLITE,    -3001, "SQLite reported an error")                                   \
  X(CORRUPT,   -3002, "the database file is not usable")                            \
  X(NOMEM,     -3003, "out of memory")                                              \
  X(CHANGELOG, -3004, "the changelog callback failed")                              \
  X(BROKEN,    -3005, "a failed write lost uncommitted state; close and reopen")

typedef enum {
#define STORE__ERR_ENUM(name, value, msg) STORE_E_##name = value,
  STORE_ERRNO_MAP(STORE__ERR_ENUM)
#undef STORE__ERR_ENUM
} store_errno_t;

/* Human message for a STORE_E_* code or a -errno; static storage. */
const char *store_strerror(int err);

typedef struct store_db_s store_db_t;
typedef struct store_s store_t;

/* Opens or creates the task's database at path. When the file exists but
 * is corrupt (SQLite says SQLITE_CORRUPT/NOTADB, or the integrity check of
 * the header fails) it is renamed to path + ".corrupt-<ms>" and a fresh
 * one is created; *was_reset tells the caller to restore everything. */
int store_db_open(const char *path, store_db_t **out, bool *was_reset, char *err, size_t errlen);
void store_db_close(store_db_t *db); /* does not commit (rolls back) */
/* The message of the last error on this db or its stores ("" if none). */
const char *store_db_errmsg(const store_db_t *db);

/* Opens (creating its table) the store `name` (validated: [A-Za-z0-9._-],
 * 1..200 chars; -EINVAL otherwise, -EEXIST if already open) with a cache
 * of cache_bytes (0: no caching, every put goes to the dirty list and is
 * flushed at commit; clean entries are not kept). cache_bytes counts keys,
 * value capacity and a fixed per-entry overhead (about 64 bytes). The
 * store is owned by db and freed by store_db_close. */
int store_open(store_db_t *db, const char *name, size_t cache_bytes, store_t **out, char *err,
               size_t errlen);
const char *store_name(const store_t *s);

/* Looks a key up: returns 1 and points *val and *vlen at the value (valid until
 * the next call on any store of this db), 0 when absent, or < 0. */
int store_get(store_t *s, const void *key, size_t klen, const void **val, size_t *vlen);

/* Sets (val != NULL) or deletes (val == NULL) a key. Copies both. May
 * flush the store's dirty entries (eviction, see above); on error nothing
 * changed. */
int store_put(store_t *s, const void *key, size_t klen, const void *val, size_t vlen);

/* Iterates keys in [from, to] in byte order (either bound NULL: open),
 * merging the cache's dirty entries over SQLite's, at most limit entries
 * (0: no limit). fn returns non-zero to stop (store_range then returns 0).
 * key/val are valid during the call only; fn must not put into any store
 * of this db (a get is fine). */
typedef int (*store_iter_fn)(void *opaque, const void *key, size_t klen, const void *val,
                             size_t vlen);
int store_range(store_t *s, const void *from, size_t flen, const void *to, size_t tlen,
                size_t limit, store_iter_fn fn, void *opaque);

/* One changed entry handed to the changelog callback. */
typedef struct {
  const void *key;
  size_t klen;
  const void *val; /* NULL: deleted */
  size_t vlen;
} store_change_t;

/* Called once per store with dirty entries at commit (or eviction): the
 * caller appends them to the store's changelog and sets *changelog_end to
 * the changelog's end offset after the append. Non-zero aborts the commit
 * (nothing is written to SQLite; the entries stay dirty). */
typedef int (*store_changelog_fn)(void *opaque, store_t *s, const store_change_t *changes,
                                  size_t n, int64_t *changelog_end);

/* An input (or changelog) position to record. */
typedef struct {
  const char *topic;
  int32_t partition;
  int64_t offset; /* next offset to read */
} store_offset_t;

/* Flushes every dirty entry (through fn) and commits them with offsets in
 * one SQLite transaction. fn may be NULL (no changelog: tests, driver).
 * A non-NULL fn also becomes the eviction callback (store_db_set_changelog).
 * Changes reach fn sorted by key, one per key. Errors: STORE_E_CHANGELOG
 * (fn failed: nothing committed, entries stay dirty, retry later),
 * STORE_E_SQLITE/CORRUPT (rolled back; entries stay dirty unless the
 * result is STORE_E_BROKEN). */
int store_db_commit(store_db_t *db, const store_offset_t *offsets, size_t n,
                    store_changelog_fn fn, void *opaque, char *err, size_t errlen);

/* Sets the changelog callback that evictions use between commits. Set it
 * before the first put when a changelog exists: evictions before the first
 * commit would otherwise reach SQLite without reaching the changelog.
 * fn NULL: evictions have no changelog. */
void store_db_set_changelog(store_db_t *db, store_changelog_fn fn, void *opaque);

/* Names the changelog topic partition of a store (topic copied): commits
 * record the callback's *changelog_end under (topic, partition) in
 * runnel_offsets, readable with store_db_offset. Without it, changelog ends
 * are not recorded. store_restore_done sets it too. 0 or -ENOMEM. */
int store_set_changelog_topic(store_t *s, const char *topic, int32_t partition);

/* Reads a committed offset: 1 and *offset set, 0 when none, < 0 error. */
int store_db_offset(store_db_t *db, const char *topic, int32_t partition, int64_t *offset);

/* ---- window stores (store_window.c) -------------------------------------
 *
 * A window store holds one value per (key, window): the aggregates of
 * windowed operations and the buffers of stream-stream joins. It is a
 * store like the others (same cache, changelog, commit and restore), whose
 * keys are window keys:
 *
 *   u32 big-endian key length | key bytes | start | end
 *
 * start and end are int64 milliseconds, big-endian with the sign bit
 * flipped, so byte order is numeric order. All windows of one key are
 * contiguous, ordered by (start, end): a fetch by (key, start range) is one
 * B-tree range scan. The changelog carries the same keys (Kafka Streams'
 * windowed changelogs carry key + timestamp the same way).
 *
 * Expiry in bulk: the table has an index on its keys' last 8 bytes (the
 * window end), so store_window_expire deletes every window ending before
 * a time with one DELETE that walks that index range only; expired rows
 * are never scanned one by one across the store. The cache is walked
 * (it is bounded by cache_bytes). Expiry writes no changelog tombstones
 * (Kafka Streams drops whole segments without them either); a restore
 * may bring expired windows back, and the runtime expires them again from
 * the restored stream time before processing. */

/* Bytes of a window key beyond the key itself. */
#define STORE_WINDOW_KEY_EXTRA 20

/* Opens (creating its table and end index) the window store `name`; as
 * store_open otherwise. The store's get/put/range work on window keys
 * (store_window_key); the functions below are the usual way in. */
int store_window_open(store_db_t *db, const char *name, size_t cache_bytes, store_t **out,
                      char *err, size_t errlen);
/* Whether s was opened with store_window_open. */
bool store_is_window(const store_t *s);

/* Writes the window key of (key, start, end) into buf, which holds at
 * least klen + STORE_WINDOW_KEY_EXTRA bytes; returns its length. */
size_t store_window_key(void *buf, const void *key, size_t klen, int64_t start, int64_t end);
/* Splits a window key: 0, or -EINVAL when wk is not one. *key points into wk. */
int store_window_key_parse(const void *wk, size_t wlen, const void **key, size_t *klen,
                           int64_t *start, int64_t *end);

/* get / put (val NULL deletes) of one window, as store_get / store_put. */
int store_window_get(store_t *s, const void *key, size_t klen, int64_t start, int64_t end,
                     const void **val, size_t *vlen);
int store_window_put(store_t *s, const void *key, size_t klen, int64_t start, int64_t end,
                     const void *val, size_t vlen);

/* Calls fn for every window of key with start_from <= start <= start_to,
 * in (start, end) order, cache and SQLite merged (as store_range). fn
 * returns non-zero to stop; val is valid during the call only; fn must not
 * put into any store of this db. 0 or < 0. */
typedef int (*store_window_fn)(void *opaque, int64_t start, int64_t end, const void *val,
                               size_t vlen);
int store_window_fetch(store_t *s, const void *key, size_t klen, int64_t start_from,
                       int64_t start_to, store_window_fn fn, void *opaque);

/* Deletes every window with end < end_before, from the cache (dirty
 * entries too: their updates are dropped) and, inside the open
 * transaction that the next store_db_commit commits, from SQLite: state
 * and input positions stay in step after a crash. 0 or < 0. */
int store_window_expire(store_t *s, int64_t end_before);

/* Restore: writes straight to SQLite (no cache, no changelog) inside one
 * transaction per store_restore_done; val NULL deletes. Restore before
 * processing: store_restore_done returns -EBUSY while evicted entries of
 * processing wait in the open transaction (committing them without input
 * offsets would break the commit rule). */
int store_restore_put(store_t *s, const void *key, size_t klen, const void *val, size_t vlen);
/* Commits the restored batch and records the changelog position reached. */
int store_restore_done(store_t *s, const char *changelog_topic, int32_t partition,
                       int64_t next_offset, char *err, size_t errlen);

/* Cache statistics for metrics. */
typedef struct {
  uint64_t hits, misses, puts, evictions, flushed;
  uint64_t expired;          /* windows deleted by store_window_expire */
  size_t bytes, entries;
} store_stats_t;
void store_stats(const store_t *s, store_stats_t *st);

/* ---- interactive queries from another thread -------------------------- */

typedef struct store_reader_s store_reader_t;
/* A read-only connection to a task's database file (SQLITE_OPEN_READONLY;
 * WAL lets it read while the task writes). One reader may be shared by
 * threads (calls are serialised by a mutex). It sees committed state only.
 * An unknown store gives -ENOENT. */
int store_reader_open(const char *path, store_reader_t **out, char *err, size_t errlen);
void store_reader_close(store_reader_t *r);
/* 1 found (value copied to a malloc'd *val the caller frees), 0 absent, < 0 error. */
int store_reader_get(store_reader_t *r, const char *store, const void *key, size_t klen,
                     void **val, size_t *vlen);
int store_reader_range(store_reader_t *r, const char *store, const void *from, size_t flen,
                       const void *to, size_t tlen, size_t limit, store_iter_fn fn,
                       void *opaque);

#endif
