/*
 * topo_int.h: internals shared by the topo_*.c files (the topo__ prefix).
 */
#ifndef RUNNEL_TOPO_INT_H
#define RUNNEL_TOPO_INT_H

#include <lua.h>

#include "topo.h"

/* The embedded scripts-lua/runnel.lua (generated at build time). */
extern const char topo_dsl_source[];
extern const size_t topo_dsl_source_len;

typedef struct topo_rows_s topo_rows_t; /* topo_rows.c */

/* What the Lua primitives see: the task running and its current record.
 * One per topo_vm_t; its address is the primitives' upvalue. */
typedef struct {
  topo_task_t *task;           /* NULL while building: emit/store fail */
  const char *topic;           /* the input record's */
  int32_t partition;
  const log_record_t *rec;
  int64_t out_ts;              /* timestamp of outputs of this record */
  int64_t event_ts;            /* the record's event time (after the
                                  source's timestamp function) */
  int late;                    /* set by runnel._late: 1 dropped, 2 + DLQ */
  char late_msg[256];
  log_header_t *extra;         /* headers added with set_header (owned) */
  int32_t nextra, extra_cap;
  char *extra_buf;             /* their bytes (owned) */
  size_t extra_len, extra_cap_bytes;
  topo_rows_t *rows;           /* the rows joins read (topo_rows.c; owned) */
  size_t rows_budget;          /* their bound in bytes */
} topo_ctx_t;

struct topo_vm_s {
  const topo_job_t *job;
  luavm_t *vm;
  lua_State *L;
  int entries_ref;             /* registry ref: topic -> entry function */
  topo_ctx_t *ctx;             /* the primitives' context: &own_ctx, or the
                                  test script's (Lua test driver) */
  topo_ctx_t own_ctx;
  int borrowed;                /* vm belongs to a test script: not freed here */
};

/* A sandboxed state with the primitives bound to ctx and the DSL loaded. */
int topo__vm_base(const luavm_options_t *opts, const char *chunkname, topo_ctx_t *ctx,
                  luavm_t **out, char *err, size_t errlen);

/* The store of the index at argument 1 of a primitive, for the task
 * running; raises a Lua error when there is none. */
store_t *topo__l_store(lua_State *L, topo_ctx_t *ctx);
/* store_get of (index, key_bytes) at arguments 1 and 2 of a primitive:
 * 1 (*val, *vlen valid until the next store call) or 0 when absent;
 * raises a Lua error when the read fails. */
int topo__l_store_get(lua_State *L, topo_ctx_t *ctx, store_t **s, const char **key,
                      size_t *klen, const void **val, size_t *vlen);

/* Registers runnel._store_get_row (topo_rows.c) in the table on top of L,
 * with a row cache bounded by a quarter of memory_limit (0: none), at
 * most 64 MiB. topo__rows_free frees the cache (ctx stays usable). */
void topo__rows_register(lua_State *L, topo_ctx_t *ctx, size_t memory_limit);
void topo__rows_free(topo_ctx_t *ctx);

/* Fills job (name, subs, stores, internals, describe_json) from the
 * description table at index d of L, as runnel._compile returned it. */
int topo__job_describe(lua_State *L, int d, topo_job_t *job, char *err, size_t errlen);

/* Creates a sandboxed state with the primitives bound to ctx, loads the
 * DSL and the job script, runs it and calls runnel._compile, leaving
 * (description, entries) on the stack. */
int topo__vm_open(const luavm_options_t *opts, const char *chunkname, const char *script,
                  size_t len, topo_ctx_t *ctx, luavm_t **out, char *err, size_t errlen);

/* Called by runnel._emit: buffers one output of the current record. */
int topo__task_emit(topo_task_t *task, const char *topic, size_t tlen, const char *key,
                    size_t klen, int has_key, const char *val, size_t vlen, int has_val,
                    char *err, size_t errlen);
/* The task's store with a 1-based index, or NULL. */
store_t *topo__task_store(topo_task_t *task, int index);
/* The task's stream time including the current record's event time. */
int64_t topo__task_stream_time(const topo_task_t *task);

#endif
