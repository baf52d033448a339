/*
 * runner.h: runs jobs' tasks on the worker's stream threads, against the
 * embedded log.
 *
 * Adding a job: its source topics must exist; its internal topics are
 * created (repartition topics with as many partitions as its largest
 * source topic, changelogs compacted with one partition per task); one
 * task per (sub-topology, partition) is placed on a thread, round-robin.
 *
 * A stream thread loops over its tasks: it reads each task's input
 * partitions from the task's committed positions, processes records in
 * batches, appends their outputs, commits every commit.interval.ms, and
 * sleeps on an eventfd the log signals on appends when nothing is left to
 * read. Each thread has its own lua_State per job and its tasks' SQLite
 * connections; none are shared.
 *
 * Jobs added through runner_add_job with persist=true are also written to
 * the internal compacted topic __runnel_jobs, and come back when a worker
 * starts on the same data dir (runner_restore_jobs).
 *
 * Threads: runner_* functions are called from the loop thread. Status,
 * metrics and interactive queries read snapshots that the stream threads
 * publish at every commit, and SQLite through read-only connections.
 */
#ifndef RUNNEL_RUNNER_H
#define RUNNEL_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "luavm.h"
#include "metrics.h"
#include "topo.h"

typedef struct {
  log_t *log;                 /* borrowed */
  const char *state_dir;      /* DATA/state: DATA/state/<job>/<sub>_<partition>.db */
  int threads;                /* >= 1 */
  int64_t commit_interval_ms;
  size_t cache_bytes;         /* per thread; divided among its stores */
  luavm_options_t vm;         /* sandbox and budgets of every job */
  metrics_t *metrics;         /* may be NULL */
} runner_options_t;

typedef struct runner_s runner_t;

int runner_new(const runner_options_t *opts, runner_t **out, char *err, size_t errlen);
/* Stops the threads after a final commit of every task, and frees. */
void runner_free(runner_t *r);

/* Adds a loaded job (taken on success). Errors: -EEXIST (a job of that
 * name runs), -ENOENT (a source topic is missing), others; err says which. */
int runner_add_job(runner_t *r, topo_job_t *job, bool persist, char *err, size_t errlen);

/* Stops a job's tasks (each commits first) and forgets it; with persist,
 * also removes it from __runnel_jobs. -ENOENT when there is none. */
int runner_remove_job(runner_t *r, const char *name, bool persist, char *err, size_t errlen);

/* Loads the jobs kept in __runnel_jobs. Jobs that fail to load are
 * reported through err (the first failure) and skipped. */
int runner_restore_jobs(runner_t *r, char *err, size_t errlen);

/* JSON for the REST API; each returns a malloc'd string, or NULL with
 * *status 404 (unknown job/store/key) or 500. */
char *runner_jobs_json(runner_t *r);
char *runner_describe_json(runner_t *r, const char *job, int *status);
char *runner_status_json(runner_t *r, const char *job, int *status);
char *runner_query_key_json(runner_t *r, const char *job, const char *store, const char *key,
                            int *status, char *err, size_t errlen);
char *runner_query_range_json(runner_t *r, const char *job, const char *store, const char *from,
                              const char *to, size_t limit, int *status, char *err,
                              size_t errlen);

/* Waits until every task of every job has processed all its input that
 * is in the log now, or timeout_ms passes. Returns 0 or -ETIMEDOUT. For
 * tests and the quickstart. */
int runner_wait_idle(runner_t *r, int64_t timeout_ms);

#endif
