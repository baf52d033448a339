/*
 * topo.h: the topology engine: Lua stream jobs compiled into sub-topologies
 * and run as tasks.
 *
 *   job script ──luavm──► runnel.lua DSL ──_compile──► description + entries
 *        │                                                  │
 *   topo_job_t (description, immutable, shared)     topo_vm_t (one lua_State
 *                                                    per job per thread)
 *   topo_task_t = (job, sub-topology, partition): its stores (one SQLite file),
 *   its input positions, its buffered outputs.
 *
 * Processing one input record: the task sets the record context (topic,
 * partition, offset, timestamp, headers), calls the sub-topology's entry
 * function for the topic with the raw key and value, and the compiled
 * closures run the operators; `to()` and repartitions call back into C
 * (runnel._emit), which buffers the output; aggregations call
 * runnel._store_get/_store_put on the task's stores.
 *
 * The engine reaches the log only through topo_io_t, so the worker (the
 * embedded log) and the test driver (in-memory topics) run the same code,
 * and a remote log can be plugged in later.
 *
 * Threads: a topo_job_t may be shared; a topo_vm_t and its tasks belong to
 * one thread at a time.
 */
#ifndef RUNNEL_TOPO_H
#define RUNNEL_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "luavm.h"
#include "store.h"

/* ---- the log, as the engine sees it ------------------------------------ */

typedef struct {
  void *opaque;
  /* true: outputs are appended in exactly the order they were emitted
   * (one append per run of records for the same topic and partition; the
   * test driver). false: a flush groups each topic-partition's records of
   * the flush into one append, keeping their order within the partition. */
  bool ordered;
  /* Partitions of a topic, or a negative number when it does not exist. */
  int (*partitions)(void *opaque, const char *topic);
  /* Creates a topic (internal topics, and sink topics that are missing). */
  int (*create_topic)(void *opaque, const char *topic, int32_t partitions, bool compact,
                      char *err, size_t errlen);
  /* Appends records to one partition, in order; *base_offset (may be
   * NULL) gets the first record's offset. */
  int (*append)(void *opaque, const char *topic, int32_t partition, const log_record_t *recs,
                size_t n, int64_t *base_offset, char *err, size_t errlen);
  /* Reads [from, to) of a partition (to = -1: to its end), calling fn per
   * record, and sets *end to the offset after the last one read (restore).
   * NULL when there is nothing to restore from (the driver): then there
   * are no changelogs or checkpoints either. */
  int (*read)(void *opaque, const char *topic, int32_t partition, int64_t from, int64_t to,
              int (*fn)(void *arg, const log_record_t *rec), void *arg, int64_t *end,
              char *err, size_t errlen);
  /* Tells the log how far a changelog may be compacted: up to the end the
   * task last checkpointed (log_partition_set_compaction_limit). May be
   * NULL. */
  void (*compaction_limit)(void *opaque, const char *topic, int32_t partition, int64_t offset);
} topo_io_t;

/* ---- jobs ---------------------------------------------------------------- */

typedef struct {
  char *topic;
  bool internal;            /* a repartition topic of this job */
} topo_source_t;

/* Topics that a join reads together (Kafka Streams' copartition group):
 * their partition counts must agree. */
typedef struct {
  char *where;              /* "job.lua:12: ", the join's line */
  char **topics;            /* user and internal topics upstream of the join */
  int ntopics;
} topo_copart_t;

typedef struct {
  int id;
  topo_source_t *sources;
  int nsources;
  int *stores;              /* store indexes (1-based, as Lua numbers them) */
  int nstores;
  int *globals;             /* indexes of the global tables its joins read */
  int nglobals;
  topo_copart_t *coparts;   /* one per join of the sub-topology */
  int ncoparts;
} topo_sub_t;

typedef struct {
  char *name;
  int index;                /* 1-based */
  char *changelog;          /* "<job>-<store>-changelog"; NULL for a global table */
  int sub;                  /* -1 for a global table */
  char *global_topic;       /* a global table's topic (its only source of truth), or NULL */
  bool window;              /* a window store (store_window_open) */
  int64_t retention;        /* window stores: windows ending more than this
                               before stream time are expired (ms) */
} topo_store_t;

/* A punctuator (job:punctuate, or an operator's own, e.g. suppression):
 * runnel._punctuate(id, timestamp) runs it in a task of sub-topology sub. */
typedef struct {
  int id;                   /* 1-based, as Lua numbers them */
  int sub;
  int64_t interval;         /* ms; 0: every advance of stream time */
  bool wall_clock;          /* else stream time */
} topo_punct_t;

typedef struct {
  char *name;
  bool changelog;           /* else a repartition topic */
  int sub;                  /* the sub-topology that reads it (repartition) or owns it */
} topo_internal_t;

typedef struct {
  char *name;
  char *chunkname;          /* "@path/to/job.lua", for Lua messages */
  char *script;             /* the job's source text */
  size_t script_len;
  bool tolerate_errors;     /* errors_tolerance = "all" (default) */
  char *dlq;                /* dead-letter topic, "<job>-dlq" */
  topo_sub_t *subs;
  int nsubs;
  topo_store_t *stores;
  int nstores;
  topo_internal_t *internals;
  int ninternals;
  topo_punct_t *puncts;
  int npuncts;
  char *describe_json;      /* GET /jobs/{name}: sub-topologies, nodes, stores, topics */
  luavm_options_t vm_options;
} topo_job_t;

/* Loads and checks a job script: runs it in a fresh sandboxed state,
 * compiles the topology, and fills a description. Syntax errors, build
 * errors (unknown method, wrong argument, a store name used twice) and a
 * script that does not return a job come back in err with file:line.
 * chunkname is the script's name in messages (a path). */
int topo_job_load(const char *chunkname, const char *script, size_t len,
                  const luavm_options_t *vm_options, topo_job_t **out, char *err, size_t errlen);
int topo_job_load_file(const char *path, const luavm_options_t *vm_options, topo_job_t **out,
                       char *err, size_t errlen);
void topo_job_free(topo_job_t *job);

/* Partition counts of a job's topics, decided when it is submitted. */
typedef struct {
  int *sub_partitions;      /* per sub-topology: its tasks (malloc'd; topo_job_plan_free) */
  int *join_partitions;     /* per sub-topology: the partitions of the user topics its
                               joins read, or -1 (sizes the repartition topics they read) */
  int user_max;             /* the largest partition count of a user source */
} topo_plan_t;

/* Plans a job on a worker's topics (partitions(opaque, topic) gives a
 * topic's partition count, < 0 when it does not exist). Every source and
 * global table topic must exist (Kafka Streams'
 * MissingSourceTopicException). The user topics
 * that one join reads (its copartition group, as Kafka Streams forms
 * them) must have the same partition count, or records with one key would
 * meet in different tasks; the error names the join's line and both
 * topics. Merged topics feeding no join need not agree: a sub-topology
 * has as many tasks as its largest user source topic has partitions, and
 * task p reads every source topic that has a partition p. One that reads
 * only repartition topics gets the largest user source's count (as Kafka
 * Streams sizes repartition topics). Global table topics take no part:
 * every task reads all of their partitions. Returns 0 and fills plan, or
 * a negative error with the message in err. */
int topo_job_plan(const topo_job_t *job, int (*partitions)(void *opaque, const char *topic),
                  void *opaque, topo_plan_t *plan, char *err, size_t errlen);
void topo_job_plan_free(topo_plan_t *plan);
/* Partitions of an internal topic of the job under plan: those of the
 * sub-topology that reads (repartition) or owns (changelog) it. */
int topo_job_internal_partitions(const topo_job_t *job, const topo_plan_t *plan, int internal);

/* The sub-topology that reads topic, or -1. */
int topo_job_sub_for_topic(const topo_job_t *job, const char *topic);
/* The index of the global table that reads topic, or 0. */
int topo_job_global_for_topic(const topo_job_t *job, const char *topic);
/* Whether topic is one of the job's internal topics. */
bool topo_job_is_internal(const topo_job_t *job, const char *topic);

/* ---- a job's Lua state on one thread ----------------------------------- */

typedef struct topo_vm_s topo_vm_t;

/* Creates the state and compiles the topology in it. print: where the
 * job's print() goes (NULL: the worker log). */
int topo_vm_new(const topo_job_t *job, topo_vm_t **out, char *err, size_t errlen);
void topo_vm_free(topo_vm_t *vm);

/* Calls fn for every operator of the job with the records that entered it
 * in this state so far. The state's thread only, between records. */
void topo_vm_op_counts(topo_vm_t *vm, void (*fn)(void *arg, const char *op, uint64_t n),
                       void *arg);

/* ---- tasks --------------------------------------------------------------- */

typedef struct topo_task_s topo_task_t;

typedef struct {
  uint64_t records_in, records_out, dlq, errors;
  uint64_t process_ns;      /* time in processing, for the latency metric */
  uint64_t commits, commit_ns;
  uint64_t restored;        /* changelog records replayed when opening */
  uint64_t late_dropped;    /* records dropped because their windows had closed */
  uint64_t punctuations;    /* punctuator calls */
} topo_task_stats_t;

/* Opens the task (job, sub-topology sub, partition): its store database at
 * db_path (":memory:" for none on disk), restoring stores from their
 * changelogs through io when needed. cache_bytes bounds each store's
 * write-back cache (0: none). */
int topo_task_open(topo_vm_t *vm, int sub, int32_t partition, const char *db_path,
                   size_t cache_bytes, const topo_io_t *io, topo_task_t **out, char *err,
                   size_t errlen);
void topo_task_close(topo_task_t *task); /* does not commit */

/* Where the task resumes reading topic (its committed position), 0 if none. */
int64_t topo_task_position(topo_task_t *task, const char *topic);

/* Processes one input record of topic (partition = the task's). Returns 0
 * when processed, 1 when the record failed and went to the dead-letter
 * topic, or a negative error when the task must stop (errors_tolerance =
 * "none", or an internal failure), with the reason in err. */
int topo_task_process(topo_task_t *task, const char *topic, const log_record_t *rec, char *err,
                      size_t errlen);

/* Global tables (job:global_table): every task that joins with one keeps
 * all of it, in its own state file. topo_task_global_apply applies one
 * record of partition `partition` of a global table's topic (0 applied, 1
 * sent to the dead-letter topic, < 0 the task must stop); the position
 * commits with the task's state. topo_task_global_poll reads every
 * partition of the task's global tables through io from where the task
 * is to the end (topo_task_open does it before the first record, the
 * stream thread before each batch); without io->read it does nothing. */
int topo_task_global_apply(topo_task_t *task, const char *topic, int32_t partition,
                           const log_record_t *rec, char *err, size_t errlen);
int topo_task_global_poll(topo_task_t *task, char *err, size_t errlen);

/* Appends the buffered outputs through io. */
int topo_task_flush(topo_task_t *task, char *err, size_t errlen);

/* Flushes outputs, then commits state and input positions in one SQLite
 * transaction (changelogs appended first). */
int topo_task_commit(topo_task_t *task, char *err, size_t errlen);

/* Stream time: the largest event timestamp the task has seen (-1: none
 * yet). It advances before the record's operators run, is committed with
 * the input positions (and in the checkpoint), and resumes from there
 * after a restart, so windows close at the same records again. */
int64_t topo_task_stream_time(const topo_task_t *task);

/* Wall-clock punctuation: the first call schedules the task's wall-clock
 * punctuators at now_ms + interval; later calls run those that are due
 * (once each, however many intervals passed, as Kafka Streams does). The
 * worker calls it with its clock, the test driver on advance_wall_clock.
 * Outputs are buffered as for records. 0, or < 0 when a punctuator failed
 * and the job does not tolerate errors (err says why). */
int topo_task_wall_clock(topo_task_t *task, int64_t now_ms, char *err, size_t errlen);

const topo_task_stats_t *topo_task_stats(const topo_task_t *task);
/* Cache hits and misses summed over the task's stores. */
void topo_task_cache_stats(const topo_task_t *task, uint64_t *hits, uint64_t *misses);
int topo_task_sub(const topo_task_t *task);
int32_t topo_task_partition(const topo_task_t *task);

/* ---- the test driver (`runnel test`) ------------------------------------ */

/* Runs the job over JSON lines read from in, printing every output record
 * to out as a JSON line, deterministically, without a worker or a disk
 * log. Input lines: {"topic":..,"key":..,"value":..,"timestamp":..,
 * "headers":{..},"partition":..} or {"advance_wall_clock": ms}. Returns 0,
 * or -1 with a message naming the input line in err. */
int topo_driver_run(const topo_job_t *job, void *in_file, void *out_file, char *err,
                    size_t errlen);

/* Runs a Lua test script that drives jobs with runnel.test_driver(job)
 * (see docs/lua-jobs.md, "Tests written in Lua"). Returns 0, or -1 with
 * the script's error (file:line and traceback) in err. */
int topo_driver_run_script(const char *path, const luavm_options_t *vm_options, char *err,
                           size_t errlen);

#endif
