/*
 * topo_rows.c: runnel._store_get_row, the lookup through which joins read
 * a table's rows, with what decoding each row took kept as a tape.
 *
 * A join looks its key up in a table for every record (Kafka Streams'
 * KTableValueGetter). Rows are JSON in the store, and parsing the row
 * again for each lookup was a sixth of a stream-table join's instructions
 * per record (docs/benchmarks.md). So, per store and key, the value bytes
 * last decoded are kept with the tape of their decode
 * (luavm_json_decode_tape), and a lookup of the same bytes replays the
 * tape (luavm_json_push_tape) instead of parsing:
 *
 *   - validated, never invalidated: every lookup still reads the value
 *     bytes from the store (its own cache, then SQLite), and the tape is
 *     used only when those bytes equal the bytes it was recorded from.
 *     Decoding is a function of the bytes, so nothing that changes a store
 *     (a table update or tombstone, a restore from the changelog, a task
 *     revoked and another one opened in its place, the tasks of several
 *     partitions sharing this Lua state and holding different rows for one
 *     key) can make a lookup answer a stale row, and no write path needs
 *     to know about the cache;
 *   - fresh values: replaying a tape makes new tables, as a decode does
 *     (the same Lua calls in the same order), so a joiner may change the
 *     row it gets, as with Kafka Streams' deserialisation of each lookup;
 *   - outside the Lua heap: the tapes are C memory, in slabs of their own.
 *     Kept as Lua tables, the rows of a 100k-row table made every garbage
 *     collection cycle walk them, and the join got slower than without
 *     them; malloc'd one by one, they scattered the short-lived objects of
 *     every record across memory (the join took more CPU time than without
 *     the cache, docs/benchmarks.md). A tape is never seen by the
 *     collector, and replaying one skips yajl and the number conversions;
 *   - bounded: the slabs count; past the budget (a quarter of the job's
 *     Lua memory limit, at most 64 MiB) every entry is dropped and the
 *     cache refills from the next lookups: no bookkeeping per hit, and a
 *     table that fits stays whole. An entry replaced by a newer row keeps
 *     its bytes in its slab until then.
 */
#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h" /* store__hash */
#include "topo_int.h"

#define TOPO_ROWS_MAX_BUDGET ((size_t)64 << 20)
#define TOPO_ROWS_MIN_SLOTS 256

typedef struct topo_row_s {
  struct topo_row_s *next;     /* hash chain */
  uint64_t hash;
  lua_Integer store;           /* the store's index */
  size_t klen, vlen, tlen;
  unsigned char data[];        /* key, value bytes, tape */
} topo_row_t;

/* Entries are carved from slabs, apart from the Lua heap's small
 * allocations (interleaved with them, long-lived entries scattered the
 * short-lived objects of every record across memory). */
typedef struct topo_slab_s {
  struct topo_slab_s *next;
  size_t used, cap;
  _Alignas(max_align_t) unsigned char mem[];
} topo_slab_t;

#define TOPO_ROWS_SLAB_MAX ((size_t)1 << 20) /* and an eighth of the budget at most */

struct topo_rows_s {
  topo_slab_t *slabs;          /* the newest first */
  topo_row_t **slots;          /* power of two */
  size_t nslots, n;
  size_t bytes, budget;
  luavm_json_tape_t tape;      /* a decode's tape, before it is kept */
};

/* An entry of size bytes, aligned, from the newest slab (a new one when
 * it is full); NULL when out of memory. Slabs count in r->bytes. */
static topo_row_t *topo_rows_alloc(topo_rows_t *r, size_t size) {
  size = (size + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
  topo_slab_t *sl = r->slabs;
  if (!sl || sl->cap - sl->used < size) {
    size_t cap = r->budget / 8 < TOPO_ROWS_SLAB_MAX ? r->budget / 8 : TOPO_ROWS_SLAB_MAX;
    if (cap < size) cap = size;
    sl = malloc(sizeof *sl + cap);
    if (!sl) return NULL;
    sl->next = r->slabs;
    sl->used = 0;
    sl->cap = cap;
    r->slabs = sl;
    r->bytes += sizeof *sl + cap;
  }
  topo_row_t *e = (topo_row_t *)(sl->mem + sl->used);
  sl->used += size;
  return e;
}

static void topo_rows_clear(topo_rows_t *r) {
  for (topo_slab_t *sl = r->slabs, *next; sl; sl = next) {
    next = sl->next;
    free(sl);
  }
  r->slabs = NULL;
  free(r->slots);
  r->slots = NULL;
  r->nslots = r->n = r->bytes = 0;
}

void topo__rows_free(topo_ctx_t *ctx) {
  if (!ctx->rows) return;
  topo_rows_clear(ctx->rows);
  free(ctx->rows->tape.buf);
  free(ctx->rows);
  ctx->rows = NULL;
}

static uint64_t topo_rows_hash(lua_Integer store, const void *key, size_t klen) {
  return store__hash(key, klen) ^ ((uint64_t)store * 0x9e3779b97f4a7c15ULL);
}

/* The link that points at the entry of (store, key), or at the NULL that
 * ends its chain; NULL when there are no slots. */
static topo_row_t **topo_rows_find(topo_rows_t *r, lua_Integer store, const void *key,
                                   size_t klen, uint64_t h) {
  if (r->nslots == 0) return NULL;
  topo_row_t **pp = &r->slots[h & (r->nslots - 1)];
  for (; *pp; pp = &(*pp)->next) {
    const topo_row_t *e = *pp;
    if (e->hash == h && e->store == store && e->klen == klen && memcmp(e->data, key, klen) == 0)
      break;
  }
  return pp;
}

/* Unlinks an entry; its bytes stay in its slab until the next clear. */
static void topo_rows_remove(topo_rows_t *r, topo_row_t **pp) {
  *pp = (*pp)->next;
  r->n--;
}

/* Doubles the slots (or makes the first ones); 0, or -1 with nothing
 * changed. */
static int topo_rows_grow(topo_rows_t *r) {
  size_t n = r->nslots ? 2 * r->nslots : TOPO_ROWS_MIN_SLOTS;
  topo_row_t **slots = calloc(n, sizeof *slots);
  if (!slots) return -1;
  for (size_t i = 0; i < r->nslots; i++) {
    for (topo_row_t *e = r->slots[i], *next; e; e = next) {
      next = e->next;
      e->next = slots[e->hash & (n - 1)];
      slots[e->hash & (n - 1)] = e;
    }
  }
  r->bytes += (n - r->nslots) * sizeof *slots;
  free(r->slots);
  r->slots = slots;
  r->nslots = n;
  return 0;
}

/* Keeps (store, key) -> (value bytes, tape) if the budget allows; a cache
 * that cannot allocate just keeps nothing. */
static void topo_rows_add(topo_rows_t *r, lua_Integer store, uint64_t h, const void *key,
                          size_t klen, const void *val, size_t vlen, const luavm_json_tape_t *t) {
  size_t size = sizeof(topo_row_t) + klen + vlen + t->len;
  if (size > r->budget / 4) return; /* would leave room for hardly anything else */
  if (r->bytes + size + (r->n >= r->nslots ? r->nslots * sizeof *r->slots : 0) > r->budget)
    topo_rows_clear(r);
  if (r->n >= r->nslots && topo_rows_grow(r) != 0) return;
  topo_row_t *e = topo_rows_alloc(r, size);
  if (!e) return;
  *e = (topo_row_t){.hash = h, .store = store, .klen = klen, .vlen = vlen, .tlen = t->len};
  memcpy(e->data, key, klen);
  memcpy(e->data + klen, val, vlen);
  memcpy(e->data + klen + vlen, t->buf, t->len);
  topo_row_t **slot = &r->slots[h & (r->nslots - 1)];
  e->next = *slot;
  *slot = e;
  r->n++;
}

/* runnel._store_get_row(index, key_bytes) -> the row decoded from the
 * store's JSON (a new value), or nil when the key has none. Like
 * luavm_json_decode (its parser in flight), this counts on no lookup
 * starting while another one runs (a Lua finalizer run by an allocation
 * here could); the tape scratch and the entry being replayed are shared. */
static int topo_l_store_get_row(lua_State *L) {
  topo_ctx_t *ctx = (topo_ctx_t *)lua_touserdata(L, lua_upvalueindex(1));
  store_t *s;
  const char *key;
  size_t klen, vlen;
  const void *val;
  int rc = topo__l_store_get(L, ctx, &s, &key, &klen, &val, &vlen);
  lua_Integer idx = lua_tointeger(L, 1);
  if (!ctx->rows && ctx->rows_budget > 0) {
    ctx->rows = calloc(1, sizeof *ctx->rows);
    if (ctx->rows) ctx->rows->budget = ctx->rows_budget;
  }
  topo_rows_t *r = ctx->rows;
  uint64_t h = topo_rows_hash(idx, key, klen);
  topo_row_t **pp = r ? topo_rows_find(r, idx, key, klen, h) : NULL;
  topo_row_t *e = pp ? *pp : NULL;
  if (e && rc == 1 && e->vlen == vlen && memcmp(e->data + klen, val, vlen) == 0) {
    luavm_json_push_tape(L, e->data + klen + vlen, e->tlen);
    return 1;
  }
  if (e) topo_rows_remove(r, pp); /* the row changed or went */
  if (rc == 0) {
    lua_pushnil(L);
    return 1;
  }
  /* A copy of the bytes first: val is the store's and only valid until
   * its next call, which a collection (a finalizer) could make. */
  lua_settop(L, 2);
  lua_pushlstring(L, val, vlen);
  const char *bytes = lua_tostring(L, 3);
  char err[256];
  if (luavm_json_decode_tape(L, bytes, vlen, r ? &r->tape : NULL, err, sizeof err) != 0)
    return luaL_error(L, "store %s: %s", store_name(s), err);
  if (r && r->tape.buf) topo_rows_add(r, idx, h, key, klen, bytes, vlen, &r->tape);
  return 1;
}

void topo__rows_register(lua_State *L, topo_ctx_t *ctx, size_t memory_limit) {
  ctx->rows_budget = memory_limit / 4;
  if (ctx->rows_budget == 0 || ctx->rows_budget > TOPO_ROWS_MAX_BUDGET)
    ctx->rows_budget = TOPO_ROWS_MAX_BUDGET;
  lua_pushlightuserdata(L, ctx);
  lua_pushcclosure(L, topo_l_store_get_row, 1);
  lua_setfield(L, -2, "_store_get_row");
}
