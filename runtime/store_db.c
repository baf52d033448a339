/*
 * store_db.c: a task's SQLite database: opening (and setting a corrupt
 * file aside), the schema and all SQL text, transactions, the commit that
 * writes state and offsets together, eviction flushes, offsets, restore.
 *
 * The file (one per task):
 *
 *   "runnel_offsets"  (topic TEXT, "partition" INTEGER, "offset" INTEGER,
 *                      PRIMARY KEY (topic, "partition")) WITHOUT ROWID
 *   "kv_<store>"      (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID
 *
 * WITHOUT ROWID: the key is the B-tree key, so a lookup is one tree
 * search and a range scan walks keys in BLOB order (memcmp, then length),
 * the byte order store_range promises.
 *
 * Transaction state machine (db->in_txn, db->txn_evicted):
 *
 *     idle --store__flush (eviction) / store_restore_put--> open
 *     open --store__flush--> open (more evicted entries)
 *     open --store_db_commit: COMMIT ok--> idle
 *     idle --store_db_commit--> BEGIN IMMEDIATE ... COMMIT --> idle
 *     open --a write fails--> ROLLBACK --> idle, or broken when the
 *          rolled-back transaction held entries that had left the cache
 *     any  --store_db_close--> ROLLBACK (close never commits)
 *
 * Pragmas: journal_mode=WAL (readers on other connections see the last
 * commit while the task writes); synchronous=NORMAL (see store.h,
 * "Durability": no fsync per commit, one per checkpoint; a process crash
 * loses nothing committed, a power cut may lose the last commits, and
 * state and offsets roll back together).
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- SQL text: the only place it lives ---------------------------------- */

/* Statement = head + "\"kv_<name>\"" + tail. */
static const struct {
  const char *head, *tail;
} store__sql[STORE__Q_COUNT] = {
    [STORE__Q_GET] = {"SELECT v FROM ", " WHERE k = ?1"},
    [STORE__Q_UPSERT] = {"INSERT INTO ",
                         "(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v"},
    [STORE__Q_DELETE] = {"DELETE FROM ", " WHERE k = ?1"},
    [STORE__Q_RANGE_ALL] = {"SELECT k, v FROM ", " ORDER BY k"},
    [STORE__Q_RANGE_FROM] = {"SELECT k, v FROM ", " WHERE k >= ?1 ORDER BY k"},
    [STORE__Q_RANGE_TO] = {"SELECT k, v FROM ", " WHERE k <= ?2 ORDER BY k"},
    [STORE__Q_RANGE_BOTH] = {"SELECT k, v FROM ", " WHERE k >= ?1 AND k <= ?2 ORDER BY k"},
};
static const char store__sql_create_kv[2][80] = {
    "CREATE TABLE IF NOT EXISTS ", " (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"};
static const char store__sql_create_offsets[] =
    "CREATE TABLE IF NOT EXISTS runnel_offsets (topic TEXT NOT NULL, \"partition\" INTEGER NOT "
    "NULL, \"offset\" INTEGER NOT NULL, PRIMARY KEY (topic, \"partition\")) WITHOUT ROWID";
static const char store__sql_offset_get[] =
    "SELECT \"offset\" FROM runnel_offsets WHERE topic = ?1 AND \"partition\" = ?2";
static const char store__sql_offset_put[] =
    "INSERT INTO runnel_offsets (topic, \"partition\", \"offset\") VALUES (?1, ?2, ?3) "
    "ON CONFLICT (topic, \"partition\") DO UPDATE SET \"offset\" = excluded.\"offset\"";

static const unsigned char store__empty[1];

const char *store_strerror(int err) {
  switch (err) {
#define STORE__ERR_CASE(name, value, msg) \
  case value:                             \
    return msg;
    STORE_ERRNO_MAP(STORE__ERR_CASE)
#undef STORE__ERR_CASE
  default:
    return err < 0 ? strerror(-err) : "success";
  }
}

bool store__valid_name(const char *name) {
  size_t n = 0;
  for (const char *p = name; *p; p++, n++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok || n >= STORE__NAME_MAX)
      return false;
  }
  return n > 0;
}

/* Builds head + "kv_<name>" quoted + tail. The name is validated, so it
 * holds no quote and the identifier cannot be escaped from. */
static int store__sql_for(const char *head, const char *name, const char *tail, char *buf,
                          size_t len) {
  int n = snprintf(buf, len, "%s\"kv_%s\"%s", head, name, tail);
  return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int store__prepare(sqlite3 *sql, int which, const char *name, sqlite3_stmt **out) {
  char text[512];
  *out = NULL;
  if (!store__valid_name(name) ||
      store__sql_for(store__sql[which].head, name, store__sql[which].tail, text, sizeof text))
    return SQLITE_MISUSE;
  return sqlite3_prepare_v3(sql, text, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

int store__range_q(const void *from, const void *to) {
  return STORE__Q_RANGE_ALL + (from ? 1 : 0) + (to ? 2 : 0);
}

int store__bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t len) {
  /* A NULL pointer would bind SQL NULL; an empty key is a zero-length BLOB. */
  return sqlite3_bind_blob64(st, i, len ? p : store__empty, len, SQLITE_STATIC);
}

const void *store__column_bytes(sqlite3_stmt *st, int i, size_t *len) {
  const void *p = sqlite3_column_blob(st, i);
  *len = (size_t)sqlite3_column_bytes(st, i);
  return p ? p : store__empty;
}

int store__range_bind(sqlite3_stmt *st, const void *from, size_t flen, const void *to,
                      size_t tlen) {
  int rc = SQLITE_OK;
  if (from)
    rc = store__bind_bytes(st, 1, from, flen);
  if (rc == SQLITE_OK && to)
    rc = store__bind_bytes(st, 2, to, tlen);
  return rc;
}

int store__bytes_cmp(const void *a, size_t alen, const void *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c)
    return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int store__sqlite_err(int rc) {
  switch (rc & 0xff) {
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return STORE_E_CORRUPT;
  case SQLITE_NOMEM:
    return STORE_E_NOMEM;
  default:
    return STORE_E_SQLITE;
  }
}

int store__fail(store_db_t *db, const store_t *s, int rc, const char *what, char *err,
                size_t errlen) {
  const char *detail = db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
  if (s)
    snprintf(db->errmsg, sizeof db->errmsg, "%s: store '%s': %s: %s", db->path, s->name, what,
             detail);
  else
    snprintf(db->errmsg, sizeof db->errmsg, "%s: %s: %s", db->path, what, detail);
  if (err && errlen)
    snprintf(err, errlen, "%s", db->errmsg);
  return store__sqlite_err(rc);
}

/* A non-SQLite failure (callback, errno, misuse): the message as given. */
static int store__fail_msg(store_db_t *db, int code, char *err, size_t errlen, const char *msg) {
  snprintf(db->errmsg, sizeof db->errmsg, "%s", msg);
  if (err && errlen)
    snprintf(err, errlen, "%s", msg);
  return code;
}

static int store__step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ---- opening ------------------------------------------------------------- */

static int store__exec(store_db_t *db, const char *sql) {
  return sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
}

/* Runs a pragma or query whose first row's first column is text, and
 * compares it to want (NULL: any row or none). */
static int store__check_text(store_db_t *db, const char *sql, const char *want, bool *ok) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  *ok = true;
  if (rc == SQLITE_ROW) {
    const char *got = (const char *)sqlite3_column_text(st, 0);
    if (want && (!got || strcmp(got, want) != 0))
      *ok = false;
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static void store__disconnect(store_db_t *db) {
  sqlite3_stmt **stmts[] = {&db->begin, &db->commit, &db->rollback, &db->offset_get,
                            &db->offset_put};
  for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
    sqlite3_finalize(*stmts[i]);
    *stmts[i] = NULL;
  }
  sqlite3_close_v2(db->sql);
  db->sql = NULL;
}

/* Opens the connection, sets the pragmas, checks the file and creates the
 * offsets table. STORE_E_CORRUPT when the file is not a usable database:
 * the header is garbage (SQLITE_NOTADB on the first read), a page is
 * damaged (SQLITE_CORRUPT), or quick_check finds a problem. quick_check
 * reads every page once (linear in the file size) but not the indexes'
 * agreement with their tables as integrity_check would. */
static int store__connect(store_db_t *db, char *err, size_t errlen) {
  int rc = sqlite3_open_v2(db->path, &db->sql,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  const char *what = "open";
  bool ok = true;
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(db->sql, 1);
    sqlite3_busy_timeout(db->sql, 5000);
    what = "PRAGMA journal_mode=WAL";
    /* An in-memory database (the test driver) has no WAL: "memory". */
    rc = store__check_text(db, "PRAGMA journal_mode=WAL",
                           strcmp(db->path, ":memory:") == 0 ? "memory" : "wal", &ok);
  }
  if (rc == SQLITE_OK && ok) {
    what = "PRAGMA synchronous=NORMAL";
    rc = store__exec(db, "PRAGMA synchronous=NORMAL");
  }
  if (rc == SQLITE_OK && ok) {
    what = "reading the schema";
    rc = store__check_text(db, "SELECT count(*) FROM sqlite_schema", NULL, &ok);
  }
  if (rc == SQLITE_OK && ok) {
    what = "PRAGMA quick_check";
    rc = store__check_text(db, "PRAGMA quick_check", "ok", &ok);
    if (!ok)
      rc = SQLITE_CORRUPT;
  }
  if (rc == SQLITE_OK && !ok) /* journal_mode refused WAL */
    rc = SQLITE_CANTOPEN;
  if (rc == SQLITE_OK) {
    what = "creating runnel_offsets";
    rc = store__exec(db, store__sql_create_offsets);
  }
  if (rc == SQLITE_OK) {
    what = "preparing statements";
    rc = sqlite3_prepare_v3(db->sql, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT,
                            &db->begin, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_prepare_v3(db->sql, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &db->commit,
                              NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_prepare_v3(db->sql, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT,
                              &db->rollback, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_prepare_v3(db->sql, store__sql_offset_get, -1, SQLITE_PREPARE_PERSISTENT,
                              &db->offset_get, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_prepare_v3(db->sql, store__sql_offset_put, -1, SQLITE_PREPARE_PERSISTENT,
                              &db->offset_put, NULL);
  }
  if (rc == SQLITE_OK)
    return 0;
  int code = store__fail(db, NULL, rc, what, err, errlen);
  if ((rc & 0xff) == SQLITE_CANTOPEN)
    code = -ENOENT;
  store__disconnect(db);
  return code;
}

/* Renames path (and its WAL) to path.corrupt-<ms>, removes the -shm index,
 * and fsyncs the directory so that the fresh file never appears next to
 * the old one's WAL after a crash (SQLite would apply it to the new file). */
static int store__set_aside(store_db_t *db, char *err, size_t errlen) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  size_t len = strlen(db->path) + 64;
  char *aside = malloc(len), *from = malloc(len), *to = malloc(len);
  int rc = 0;
  if (!aside || !from || !to) {
    rc = -ENOMEM;
    goto out;
  }
  snprintf(aside, len, "%s.corrupt-%lld", db->path, ms);
  if (rename(db->path, aside) != 0) {
    rc = -errno;
    char msg[512];
    snprintf(msg, sizeof msg, "%s: cannot set the corrupt file aside: %s", db->path,
             strerror(errno));
    store__fail_msg(db, rc, err, errlen, msg);
    goto out;
  }
  snprintf(from, len, "%s-wal", db->path);
  snprintf(to, len, "%s-wal", aside);
  if (rename(from, to) != 0 && errno != ENOENT)
    unlink(from);
  snprintf(from, len, "%s-shm", db->path);
  unlink(from);
  /* fsync the directory holding the file. */
  char *slash = strrchr(aside, '/');
  if (slash) {
    if (slash == aside)
      slash[1] = '\0';
    else
      *slash = '\0';
  } else {
    strcpy(aside, ".");
  }
  int fd = open(aside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
out:
  free(aside);
  free(from);
  free(to);
  return rc;
}

int store_db_open(const char *path, store_db_t **out, bool *was_reset, char *err, size_t errlen) {
  *out = NULL;
  if (was_reset)
    *was_reset = false;
  store_db_t *db = calloc(1, sizeof *db);
  if (!db || !(db->path = strdup(path))) {
    free(db);
    if (err && errlen)
      snprintf(err, errlen, "%s: out of memory", path);
    return STORE_E_NOMEM;
  }
  int rc = store__connect(db, err, errlen);
  if (rc == STORE_E_CORRUPT) {
    rc = store__set_aside(db, err, errlen);
    if (rc == 0)
      rc = store__connect(db, err, errlen);
    if (rc == 0 && was_reset)
      *was_reset = true;
  }
  if (rc != 0) {
    free(db->path);
    free(db);
    return rc;
  }
  *out = db;
  return 0;
}

static void store__store_free(store_t *s) {
  for (int i = 0; i < STORE__Q_COUNT; i++)
    sqlite3_finalize(s->q[i]);
  sqlite3_finalize(s->expire);
  store__cache_free(s);
  free(s->changes);
  free(s->clog_topic);
  free(s);
}

void store_db_close(store_db_t *db) {
  if (!db)
    return;
  if (db->in_txn && db->sql)
    store__step_done(db->rollback);
  for (size_t i = 0; i < db->nstores; i++)
    store__store_free(db->stores[i]);
  free(db->stores);
  store__disconnect(db);
  free(db->vbuf);
  free(db->path);
  free(db);
}

const char *store_db_errmsg(const store_db_t *db) { return db->errmsg; }

void store_db_set_changelog(store_db_t *db, store_changelog_fn fn, void *opaque) {
  db->clog_fn = fn;
  db->clog_opaque = opaque;
}

/* ---- stores -------------------------------------------------------------- */

int store_open(store_db_t *db, const char *name, size_t cache_bytes, store_t **out, char *err,
               size_t errlen) {
  char msg[512];
  *out = NULL;
  if (!store__valid_name(name)) {
    snprintf(msg, sizeof msg, "%s: invalid store name '%.64s' (want [A-Za-z0-9._-], 1..%d chars)",
             db->path, name, STORE__NAME_MAX);
    return store__fail_msg(db, -EINVAL, err, errlen, msg);
  }
  for (size_t i = 0; i < db->nstores; i++) {
    if (strcmp(db->stores[i]->name, name) == 0) {
      snprintf(msg, sizeof msg, "%s: store '%s' is already open", db->path, name);
      return store__fail_msg(db, -EEXIST, err, errlen, msg);
    }
  }
  if (db->nstores == db->stores_cap) {
    size_t cap = db->stores_cap ? db->stores_cap * 2 : 4;
    store_t **v = realloc(db->stores, cap * sizeof *v);
    if (!v)
      return store__fail_msg(db, STORE_E_NOMEM, err, errlen, "out of memory");
    db->stores = v;
    db->stores_cap = cap;
  }
  store_t *s = calloc(1, sizeof *s);
  if (!s || store__cache_init(s, cache_bytes) != 0) {
    free(s);
    return store__fail_msg(db, STORE_E_NOMEM, err, errlen, "out of memory");
  }
  s->db = db;
  snprintf(s->name, sizeof s->name, "%s", name);
  char text[512];
  store__sql_for(store__sql_create_kv[0], name, store__sql_create_kv[1], text, sizeof text);
  int rc = store__exec(db, text);
  const char *what = "creating the table";
  for (int i = 0; rc == SQLITE_OK && i < STORE__Q_COUNT; i++) {
    what = "preparing statements";
    rc = store__prepare(db->sql, i, name, &s->q[i]);
  }
  if (rc != SQLITE_OK) {
    int code = store__fail(db, s, rc, what, err, errlen);
    store__store_free(s);
    return code;
  }
  db->stores[db->nstores++] = s;
  *out = s;
  return 0;
}

const char *store_name(const store_t *s) { return s->name; }

int store_set_changelog_topic(store_t *s, const char *topic, int32_t partition) {
  if (!s->clog_topic || strcmp(s->clog_topic, topic) != 0) {
    char *t = strdup(topic);
    if (!t)
      return -ENOMEM;
    free(s->clog_topic);
    s->clog_topic = t;
  }
  s->clog_partition = partition;
  return 0;
}

/* ---- transactions -------------------------------------------------------- */

int store__begin(store_db_t *db) {
  if (db->in_txn)
    return SQLITE_OK;
  int rc = store__step_done(db->begin);
  if (rc == SQLITE_OK)
    db->in_txn = true;
  return rc;
}

/* After a failed write: roll the open transaction back. What it held of
 * evictions or restores is gone; the dirty entries still hold everything
 * else, so only then is the db broken. */
static void store__abort(store_db_t *db) {
  if (!sqlite3_get_autocommit(db->sql))
    store__step_done(db->rollback);
  if (db->in_txn && (db->txn_evicted || db->txn_restored))
    db->broken = STORE_E_BROKEN;
  db->in_txn = db->txn_evicted = db->txn_restored = false;
}

static int store__check_broken(store_db_t *db, char *err, size_t errlen) {
  if (!db->broken)
    return 0;
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", db->path, store_strerror(STORE_E_BROKEN));
  return store__fail_msg(db, STORE_E_BROKEN, err, errlen, msg);
}

/* A write in the open transaction failed: record the message, roll back.
 * Returns the error, or STORE_E_BROKEN when the rollback lost entries that
 * had left the cache. */
static int store__write_failed(store_db_t *db, const store_t *s, int src, const char *what,
                               char *err, size_t errlen) {
  int rc = store__fail(db, s, src, what, err, errlen);
  store__abort(db);
  return db->broken ? store__check_broken(db, err, errlen) : rc;
}

/* Ends a sequence of writes: COMMIT when src is SQLITE_OK, else (or when
 * the COMMIT fails) the failure path above. */
static int store__finish(store_db_t *db, const store_t *s, int src, const char *what, char *err,
                         size_t errlen) {
  if (src == SQLITE_OK) {
    what = "COMMIT";
    src = store__step_done(db->commit);
  }
  if (src != SQLITE_OK)
    return store__write_failed(db, s, src, what, err, errlen);
  db->in_txn = db->txn_evicted = db->txn_restored = false;
  return 0;
}

/* Writes the dirty entries of s (prepared by store__dirty_prepare) into
 * the open transaction. */
static int store__write_dirty(store_t *s, const char **what) {
  for (size_t i = 0; i < s->ndirty; i++) {
    const store_change_t *c = &s->changes[i];
    sqlite3_stmt *st = s->q[c->val ? STORE__Q_UPSERT : STORE__Q_DELETE];
    int rc = store__bind_bytes(st, 1, c->key, c->klen);
    if (rc == SQLITE_OK && c->val)
      rc = store__bind_bytes(st, 2, c->val, c->vlen);
    if (rc == SQLITE_OK)
      rc = store__step_done(st);
    if (rc != SQLITE_OK) {
      *what = c->val ? "writing a key" : "deleting a key";
      return rc;
    }
  }
  return SQLITE_OK;
}

static int store__write_offset(store_db_t *db, const char *topic, int32_t partition,
                               int64_t offset) {
  sqlite3_stmt *st = db->offset_put;
  int rc = sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(st, 2, partition);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(st, 3, offset);
  if (rc == SQLITE_OK)
    rc = store__step_done(st);
  return rc;
}

/* Hands the prepared changes of s to fn; records the changelog end. */
static int store__call_changelog(store_t *s, store_changelog_fn fn, void *opaque, char *err,
                                 size_t errlen) {
  int64_t end = -1;
  int rc = fn(opaque, s, s->changes, s->ndirty, &end);
  if (rc != 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s: store '%s': changelog callback failed (%d) for %zu changes",
             s->db->path, s->name, rc, s->ndirty);
    return store__fail_msg(s->db, STORE_E_CHANGELOG, err, errlen, msg);
  }
  if (end >= 0) {
    s->clog_end = end;
    s->clog_pending = true;
  }
  return 0;
}

int store__flush(store_t *s) {
  store_db_t *db = s->db;
  int rc = store__check_broken(db, NULL, 0);
  if (rc || s->ndirty == 0)
    return rc;
  if (store__dirty_prepare(s) != 0)
    return store__fail_msg(db, STORE_E_NOMEM, NULL, 0, "out of memory");
  if (db->clog_fn && (rc = store__call_changelog(s, db->clog_fn, db->clog_opaque, NULL, 0)))
    return rc;
  const char *what = "BEGIN IMMEDIATE";
  int src = store__begin(db);
  if (src == SQLITE_OK)
    src = store__write_dirty(s, &what);
  if (src != SQLITE_OK)
    return store__write_failed(db, s, src, what, NULL, 0);
  db->txn_evicted = true;
  s->stats.flushed += s->ndirty;
  store__dirty_clear(s);
  return 0;
}

int store_db_commit(store_db_t *db, const store_offset_t *offsets, size_t n,
                    store_changelog_fn fn, void *opaque, char *err, size_t errlen) {
  int rc = store__check_broken(db, err, errlen);
  if (rc)
    return rc;
  if (fn)
    store_db_set_changelog(db, fn, opaque);

  /* (1) The changelog first: if the process dies after it, SQLite still
   * holds the previous state and offsets. */
  bool work = n > 0 || db->in_txn;
  for (size_t i = 0; i < db->nstores; i++) {
    store_t *s = db->stores[i];
    if (s->ndirty == 0) {
      work = work || s->clog_pending;
      continue;
    }
    work = true;
    if (store__dirty_prepare(s) != 0)
      return store__fail_msg(db, STORE_E_NOMEM, err, errlen, "out of memory");
    if (fn && (rc = store__call_changelog(s, fn, opaque, err, errlen)))
      return rc;
  }
  if (!work)
    return 0;

  /* (2) One transaction: every store's dirty entries, the input offsets,
   * the changelog ends. */
  const char *what = "BEGIN IMMEDIATE";
  const store_t *failed = NULL;
  int src = store__begin(db);
  for (size_t i = 0; src == SQLITE_OK && i < db->nstores; i++) {
    store_t *s = db->stores[i];
    if (s->ndirty && (src = store__write_dirty(s, &what)) != SQLITE_OK)
      failed = s;
    if (src == SQLITE_OK && s->clog_pending && s->clog_topic) {
      what = "writing the changelog offset";
      src = store__write_offset(db, s->clog_topic, s->clog_partition, s->clog_end);
    }
  }
  for (size_t i = 0; src == SQLITE_OK && i < n; i++) {
    what = "writing an input offset";
    src = store__write_offset(db, offsets[i].topic, offsets[i].partition, offsets[i].offset);
  }
  if ((rc = store__finish(db, failed, src, what, err, errlen)) != 0)
    return rc;
  for (size_t i = 0; i < db->nstores; i++) {
    store_t *s = db->stores[i];
    s->stats.flushed += s->ndirty;
    store__dirty_clear(s);
    s->clog_pending = false;
    store__cache_trim(s);
  }
  return 0;
}

int store_db_offset(store_db_t *db, const char *topic, int32_t partition, int64_t *offset) {
  sqlite3_stmt *st = db->offset_get;
  int rc = sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(st, 2, partition);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  int found = 0;
  if (rc == SQLITE_ROW) {
    *offset = sqlite3_column_int64(st, 0);
    found = 1;
  } else if (rc == SQLITE_DONE) {
    found = 0;
  } else {
    found = store__fail(db, NULL, rc, "reading an offset", NULL, 0);
  }
  sqlite3_reset(st);
  return found;
}

/* ---- restore ------------------------------------------------------------- */

int store_restore_put(store_t *s, const void *key, size_t klen, const void *val, size_t vlen) {
  store_db_t *db = s->db;
  int rc = store__check_broken(db, NULL, 0);
  if (rc)
    return rc;
  if (klen > STORE__MAX_LEN || (val && vlen > STORE__MAX_LEN))
    return -E2BIG;
  /* The cache must not shadow what the changelog says. */
  store__entry_t *e = store__cache_find(s, key, klen, store__hash(key, klen));
  if (e)
    store__cache_drop(s, e);
  sqlite3_stmt *st = s->q[val ? STORE__Q_UPSERT : STORE__Q_DELETE];
  const char *what = "BEGIN IMMEDIATE";
  int src = store__begin(db);
  if (src == SQLITE_OK) {
    what = "restoring a key";
    src = store__bind_bytes(st, 1, key, klen);
  }
  if (src == SQLITE_OK && val)
    src = store__bind_bytes(st, 2, val, vlen);
  if (src == SQLITE_OK)
    src = store__step_done(st);
  if (src != SQLITE_OK)
    return store__write_failed(db, s, src, what, NULL, 0);
  db->txn_restored = true;
  return 0;
}

int store_restore_done(store_t *s, const char *changelog_topic, int32_t partition,
                       int64_t next_offset, char *err, size_t errlen) {
  store_db_t *db = s->db;
  int rc = store__check_broken(db, err, errlen);
  if (rc)
    return rc;
  if (db->txn_evicted) {
    char msg[512];
    snprintf(msg, sizeof msg,
             "%s: store '%s': restore_done while evicted entries wait for a commit", db->path,
             s->name);
    return store__fail_msg(db, -EBUSY, err, errlen, msg);
  }
  if (store_set_changelog_topic(s, changelog_topic, partition) != 0)
    return store__fail_msg(db, STORE_E_NOMEM, err, errlen, "out of memory");
  const char *what = "BEGIN IMMEDIATE";
  int src = store__begin(db);
  if (src == SQLITE_OK) {
    what = "writing the changelog offset";
    src = store__write_offset(db, changelog_topic, partition, next_offset);
  }
  if ((rc = store__finish(db, s, src, what, err, errlen)) != 0)
    return rc;
  s->clog_end = next_offset;
  s->clog_pending = false;
  return 0;
}
