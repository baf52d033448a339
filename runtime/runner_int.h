/*
 * runner_int.h: internals shared by runner.c (jobs, REST views),
 * runner_thread.c (the stream threads) and runner_io.c (the log behind
 * topo_io_t). The runner__ prefix.
 *
 * Locks: r->mu guards the job list, every thread's op queue, and the
 * published task snapshots. Stream threads take it briefly to pick up ops
 * and to publish; they never hold it while processing.
 */
#ifndef RUNNEL_RUNNER_INT_H
#define RUNNEL_RUNNER_INT_H

#include <pthread.h>

#include "runner.h"

typedef enum {
  RUNNER_TASK_CREATED,
  RUNNER_TASK_RESTORING,
  RUNNER_TASK_RUNNING,
  RUNNER_TASK_FAILED,
  RUNNER_TASK_STOPPED,
} runner_task_state_t;

/* What the loop thread may read about a task (published under r->mu). */
typedef struct {
  int sub;
  int32_t partition;
  int thread;
  runner_task_state_t state;
  char error[1024];
  topo_task_stats_t stats;
  int64_t *positions;          /* per source of the sub */
  int64_t restored;            /* changelog records replayed */
  uint64_t cache_hits, cache_misses;
} runner_task_view_t;

/* Records into one operator on one thread (published at commits). */
typedef struct {
  int thread;
  char op[64];
  uint64_t count;
} runner_op_stat_t;

typedef struct runner_job_s {
  struct runner_job_s *next;
  topo_job_t *job;
  int ntasks;
  runner_task_view_t *views;
  int stopping;                /* remove requested */
  int stopped_tasks;           /* tasks closed by their threads */
  runner_op_stat_t *ops;
  int nops, ops_cap;
} runner_job_t;

typedef enum { RUNNER_OP_ADD, RUNNER_OP_REMOVE } runner_op_kind_t;

typedef struct runner_op_s {
  struct runner_op_s *next;
  runner_op_kind_t kind;
  runner_job_t *job;
  int task;                    /* index into job->views (ADD) */
} runner_op_t;

typedef struct runner_thread_s runner_thread_t;

struct runner_s {
  runner_options_t opts;
  char *state_dir;
  pthread_mutex_t mu;
  pthread_cond_t cond;         /* signalled when a thread finishes ops */
  runner_job_t *jobs;
  runner_thread_t *threads;
  int nthreads;
  int next_thread;             /* round-robin placement */
  topo_io_t io;
  int stop;
};

/* Starts/stops the stream threads. */
int runner__threads_start(runner_t *r, char *err, size_t errlen);
void runner__threads_stop(runner_t *r);
/* Queues an op for thread t and wakes it (r->mu held). */
void runner__thread_post(runner_t *r, int t, runner_op_t *op);
/* Whether every thread's tasks have read to the end of their inputs. */
int runner__threads_idle(runner_t *r);

/* The embedded log as the engine's topo_io_t. */
void runner__io_init(runner_t *r, topo_io_t *io);

/* The state file of a task. */
void runner__task_path(const runner_t *r, const char *job, int sub, int32_t partition,
                       char *buf, size_t len);

#endif
