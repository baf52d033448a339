/*
 * store_int.h: internals shared by the store files (store_db.c,
 * store_cache.c, store_kv.c, store_reader.c). Not for other modules.
 *
 * Who owns what:
 *   store_db.c     the connection, schema, SQL text, transactions, commit,
 *                  eviction flushes (store__flush), offsets, restore
 *   store_cache.c  the per-store cache: hash table, LRU list, dirty list,
 *                  byte accounting, eviction
 *   store_kv.c     get/put/range over cache + SQLite, stats
 *   store_reader.c the read-only connection for interactive queries
 *
 * Cache invariants (checked by assert() in store_cache.c):
 *   1. Every entry is in exactly one hash chain and in the LRU list.
 *   2. e->dirty <=> e is s->dirty[e->didx]; s->ndirty counts them.
 *   3. s->bytes is the sum of store__entry_cost() over the entries.
 *   4. A clean entry equals what this connection reads from SQLite (the
 *      committed file plus the open transaction); only dirty entries
 *      differ, so a range scan merges the dirty entries alone over SQLite.
 *   5. A dirty entry is never evicted; it is flushed first (store__flush).
 */
#ifndef RUNNEL_STORE_INT_H
#define RUNNEL_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

/* Largest key or value accepted (SQLite's default SQLITE_MAX_LENGTH is
 * 1e9; we keep the lengths in 32 bits). */
#define STORE__MAX_LEN ((size_t)1 << 30)
#define STORE__NAME_MAX 200

/* One cached key: key bytes then vcap value bytes, in one allocation. */
typedef struct store__entry_s store__entry_t;
struct store__entry_s {
  store__entry_t *hnext;        /* hash chain */
  store__entry_t *prev, *next;  /* LRU list; s->lru_head is the most recent */
  uint64_t hash;
  uint32_t klen, vlen, vcap;
  uint32_t didx;                /* index in s->dirty while dirty */
  uint8_t dirty;                /* differs from SQLite; must be flushed */
  uint8_t present;              /* 0: a tombstone (deleted or known absent) */
  unsigned char data[];         /* klen key bytes, then vcap value bytes */
};

/* SQL statements: the text lives in one table in store_db.c. */
enum {
  STORE__Q_GET,
  STORE__Q_UPSERT,
  STORE__Q_DELETE,
  STORE__Q_RANGE_ALL, /* the four range forms, in store__range_q() order */
  STORE__Q_RANGE_FROM,
  STORE__Q_RANGE_TO,
  STORE__Q_RANGE_BOTH,
  STORE__Q_COUNT
};

struct store_s {
  store_db_t *db;
  char name[STORE__NAME_MAX + 1];
  sqlite3_stmt *q[STORE__Q_COUNT];

  /* cache */
  size_t cap;                 /* cache_bytes; 0: keep dirty entries only */
  store__entry_t **buckets;   /* power-of-two count */
  size_t nbuckets, nentries, bytes;
  store__entry_t *lru_head, *lru_tail;
  store__entry_t **dirty;     /* dirty entries, first dirtied first */
  size_t ndirty, dirty_cap;
  store_change_t *changes;    /* reused by every flush */
  size_t changes_cap;
  store_stats_t stats;        /* bytes/entries filled by store_stats */

  /* changelog position (store_set_changelog_topic) */
  char *clog_topic;
  int32_t clog_partition;
  int64_t clog_end;           /* last end reported by the callback */
  bool clog_pending;          /* clog_end not yet committed */

  /* window stores (store_window.c) */
  bool window;                /* keys are window keys */
  sqlite3_stmt *expire;       /* DELETE by the indexed window end */
};

struct store_db_s {
  sqlite3 *sql;
  char *path;
  store_t **stores;
  size_t nstores, stores_cap;
  sqlite3_stmt *begin, *commit, *rollback, *offset_get, *offset_put;
  bool in_txn;        /* BEGIN IMMEDIATE done, not yet committed */
  bool txn_evicted;   /* the open txn holds entries that left the cache */
  bool txn_restored;  /* the open txn holds restore_put rows */
  int broken;         /* 0, or STORE_E_BROKEN: see store.h */
  store_changelog_fn clog_fn; /* eviction callback */
  void *clog_opaque;
  unsigned char *vbuf; /* get results not kept in the cache */
  size_t vbuf_cap;
  char errmsg[512];
};

/* ---- store_db.c ---------------------------------------------------------- */

/* 1 if name is a valid store name ([A-Za-z0-9._-], 1..200 chars). */
bool store__valid_name(const char *name);
/* Prepares statement `which` for the table of store `name` (validated). */
int store__prepare(sqlite3 *sql, int which, const char *name, sqlite3_stmt **out);
/* The range statement index for the given bounds, and its binding. */
int store__range_q(const void *from, const void *to);
int store__range_bind(sqlite3_stmt *st, const void *from, size_t flen, const void *to,
                      size_t tlen);
/* Binds bytes as a BLOB (an empty one for len 0, never NULL). */
int store__bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t len);
/* A column as bytes (never NULL; "" for empty). */
const void *store__column_bytes(sqlite3_stmt *st, int i, size_t *len);
/* Compares byte strings the way SQLite orders BLOBs (memcmp, then length). */
int store__bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);
/* Maps a SQLite result code to STORE_E_*. */
int store__sqlite_err(int rc);
/* Records "<path>: store '<name>': <what>: <sqlite message>" in db->errmsg
 * (and err when given); returns the mapped code. s may be NULL. */
int store__fail(store_db_t *db, const store_t *s, int rc, const char *what, char *err,
                size_t errlen);
/* BEGIN IMMEDIATE unless a transaction is open. A SQLite result code. */
int store__begin(store_db_t *db);
/* Flushes every dirty entry of s through the eviction callback into the
 * open transaction (begun if needed); the entries become clean. 0 or <0
 * (entries stay dirty). */
int store__flush(store_t *s);

/* ---- store_cache.c ------------------------------------------------------- */

int store__cache_init(store_t *s, size_t cap);
void store__cache_free(store_t *s);
uint64_t store__hash(const void *key, size_t klen);
size_t store__entry_cost(const store__entry_t *e);
/* The cost an entry with these lengths would have. */
size_t store__cost_for(size_t klen, size_t vlen);
store__entry_t *store__cache_find(store_t *s, const void *key, size_t klen, uint64_t h);
/* Moves e to the most-recently-used end. */
void store__cache_touch(store_t *s, store__entry_t *e);
/* Evicts least recently used entries (never `keep`) until need more bytes
 * fit. A dirty victim is flushed first when may_flush (store__flush), or
 * stops the eviction: returns 1 then. 0 when room was made, <0 error. */
int store__cache_make_room(store_t *s, size_t need, const store__entry_t *keep,
                           bool may_flush);
/* Stores (key, val/vlen, present) in e (NULL: a new entry), reallocating
 * when the value does not fit; returns the entry or NULL (out of memory,
 * nothing changed). Marks it dirty when `dirty`; moves it to the MRU end. */
store__entry_t *store__cache_set(store_t *s, store__entry_t *e, const void *key, size_t klen,
                                 uint64_t h, const void *val, size_t vlen, bool present,
                                 bool dirty);
/* Removes e from the cache and frees it (it must not be dirty, or the
 * caller accepts losing the change: restore). */
void store__cache_drop(store_t *s, store__entry_t *e);
/* Sorts the dirty entries by key and fills s->changes from them. */
int store__dirty_prepare(store_t *s);
/* Marks every dirty entry clean (after a successful flush or commit). */
void store__dirty_clear(store_t *s);
/* Drops clean entries from the LRU end while over the budget (all clean
 * entries when cap is 0). */
void store__cache_trim(store_t *s);

#endif
