/*
 * runner_thread.c: a stream thread: its tasks, their input readers, the
 * processing loop, commits, and the ops the loop thread sends it.
 *
 *   loop:  take ops ─► read a batch per input ─► process ─► flush outputs
 *            ▲                                                  │
 *            └── sleep on the eventfd (log appends wake it) ◄── commit when due
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "logger.h"
#include "runner_int.h"

#define RUNNER_BATCH 512  /* records per input per turn: fairness between tasks */

typedef struct {
  runner_job_t *job;
  int view;                   /* index into job->views */
  topo_task_t *task;
  log_reader_t **readers;     /* per source of the sub (NULL: no such partition) */
  log_partition_t **parts;
  int nreaders;
  runner_task_state_t state;
  char error[1024];           /* why it failed; published with the state */
} runner_slot_t;

typedef struct {
  runner_job_t *job;
  topo_vm_t *vm;
} runner_vm_t;

struct runner_thread_s {
  runner_t *r;
  int index;
  pthread_t tid;
  int started;
  int efd;
  runner_op_t *ops;           /* guarded by r->mu */
  /* thread-local: */
  runner_slot_t *slots;
  int nslots;
  runner_vm_t *vms;
  int nvms;
  int idle;                   /* published under r->mu: everything read */
};

static int64_t runner_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void runner__thread_post(runner_t *r, int t, runner_op_t *op) {
  runner_thread_t *th = &r->threads[t];
  runner_op_t **tail = &th->ops;
  while (*tail) tail = &(*tail)->next;
  op->next = NULL;
  *tail = op;
  th->idle = 0;
  uint64_t one = 1;
  ssize_t w = write(th->efd, &one, sizeof one);
  (void)w;
}

static topo_vm_t *runner_vm_for(runner_thread_t *th, runner_job_t *job, char *err, size_t errlen) {
  for (int i = 0; i < th->nvms; i++)
    if (th->vms[i].job == job) return th->vms[i].vm;
  topo_vm_t *vm;
  if (topo_vm_new(job->job, &vm, err, errlen) != 0) return NULL;
  runner_vm_t *nv = realloc(th->vms, (size_t)(th->nvms + 1) * sizeof *nv);
  if (!nv) {
    topo_vm_free(vm);
    return NULL;
  }
  th->vms = nv;
  th->vms[th->nvms++] = (runner_vm_t){job, vm};
  return vm;
}

/* Publishes a slot's state (r->mu held by the caller). */
static void runner_publish(runner_slot_t *s, const char *error) {
  runner_task_view_t *v = &s->job->views[s->view];
  v->state = s->state;
  if (error) snprintf(s->error, sizeof s->error, "%s", error);
  memcpy(v->error, s->error, sizeof v->error);
  if (s->task) {
    v->stats = *topo_task_stats(s->task);
    topo_task_cache_stats(s->task, &v->cache_hits, &v->cache_misses);
    const topo_sub_t *sub = &s->job->job->subs[v->sub];
    for (int i = 0; i < sub->nsources && s->readers; i++)
      if (s->readers[i]) v->positions[i] = log_reader_position(s->readers[i]);
  }
}

static void runner_slot_close(runner_thread_t *th, runner_slot_t *s, int commit) {
  char err[1024];
  if (s->task && commit && s->state == RUNNER_TASK_RUNNING &&
      topo_task_commit(s->task, err, sizeof err) != 0)
    logger_error("job", "%s task %d_%d: final commit failed: %s", s->job->job->name,
                 s->job->views[s->view].sub, s->job->views[s->view].partition, err);
  for (int i = 0; i < s->nreaders; i++) {
    if (s->parts[i]) log_partition_unwatch(s->parts[i], th->efd);
    if (s->readers[i]) log_reader_free(s->readers[i]);
  }
  free(s->readers);
  free(s->parts);
  topo_task_close(s->task);
  s->task = NULL;
  s->readers = NULL;
  s->parts = NULL;
}

/* Opens a task: its state (restoring), and one reader per input partition
 * at the task's committed position. */
static int runner_slot_open(runner_thread_t *th, runner_slot_t *s, char *err, size_t errlen) {
  runner_t *r = th->r;
  runner_task_view_t *v = &s->job->views[s->view];
  const topo_job_t *job = s->job->job;
  const topo_sub_t *sub = &job->subs[v->sub];
  topo_vm_t *vm = runner_vm_for(th, s->job, err, errlen);
  if (!vm) return -1;
  char path[4400];
  runner__task_path(r, job->name, v->sub, v->partition, path, sizeof path);
  /* cache.max.bytes.buffering is per thread: shared evenly by the stores
   * of every task placed on this thread. */
  int thread_stores = 0;
  pthread_mutex_lock(&r->mu);
  for (runner_job_t *j = r->jobs; j; j = j->next)
    for (int i = 0; i < j->ntasks; i++)
      if (j->views[i].thread == th->index) thread_stores += j->job->subs[j->views[i].sub].nstores;
  pthread_mutex_unlock(&r->mu);
  if (thread_stores < sub->nstores) thread_stores = sub->nstores;
  size_t cache = sub->nstores ? r->opts.cache_bytes / (size_t)thread_stores : 0;
  if (topo_task_open(vm, v->sub, v->partition, path, cache, &r->io, &s->task, err, errlen) != 0)
    return -1;
  if (topo_task_stats(s->task)->restored > 0)
    logger_info("job", "%s task %d_%d: restored %" PRIu64 " changelog records", job->name,
                v->sub, v->partition, topo_task_stats(s->task)->restored);
  s->nreaders = sub->nsources;
  s->readers = calloc((size_t)sub->nsources, sizeof *s->readers);
  s->parts = calloc((size_t)sub->nsources, sizeof *s->parts);
  if (!s->readers || !s->parts) return -1;
  for (int i = 0; i < sub->nsources; i++) {
    const char *topic = sub->sources[i].topic;
    log_partition_t *p;
    log_error_t e = {0};
    if (log_partition_get(r->opts.log, topic, v->partition, &p, &e) != 0) continue;
    int64_t pos = topo_task_position(s->task, topic);
    int64_t start = log_partition_start_offset(p), end = log_partition_end_offset(p);
    if (pos < start) pos = start; /* retention went past it: as auto.offset.reset=earliest */
    if (pos > end) pos = end;
    if (log_reader_new(r->opts.log, topic, v->partition, pos, 0, &s->readers[i], &e) != 0) {
      snprintf(err, errlen, "%s", e.msg);
      return -1;
    }
    s->parts[i] = p;
    log_partition_watch(p, th->efd);
  }
  return 0;
}

static void runner_apply_ops(runner_thread_t *th, runner_op_t *ops) {
  runner_t *r = th->r;
  while (ops) {
    runner_op_t *op = ops;
    ops = op->next;
    if (op->kind == RUNNER_OP_ADD) {
      runner_slot_t *ns = realloc(th->slots, (size_t)(th->nslots + 1) * sizeof *ns);
      if (!ns) {
        free(op);
        continue;
      }
      th->slots = ns;
      runner_slot_t *s = &th->slots[th->nslots++];
      memset(s, 0, sizeof *s);
      s->job = op->job;
      s->view = op->task;
      s->state = RUNNER_TASK_RESTORING;
      pthread_mutex_lock(&r->mu);
      runner_publish(s, NULL);
      pthread_mutex_unlock(&r->mu);
      char err[2048] = "";
      int rc = runner_slot_open(th, s, err, sizeof err);
      s->state = rc == 0 ? RUNNER_TASK_RUNNING : RUNNER_TASK_FAILED;
      if (rc != 0)
        logger_error("job", "%s task %d_%d failed to start: %s", s->job->job->name,
                     s->job->views[s->view].sub, s->job->views[s->view].partition, err);
      pthread_mutex_lock(&r->mu);
      runner_publish(s, rc == 0 ? NULL : err);
      pthread_mutex_unlock(&r->mu);
    } else {
      /* Remove every slot of the job; then its Lua state. */
      for (int i = 0; i < th->nslots;) {
        if (th->slots[i].job == op->job) {
          runner_slot_close(th, &th->slots[i], 1);
          th->slots[i] = th->slots[--th->nslots];
        } else {
          i++;
        }
      }
      for (int i = 0; i < th->nvms; i++) {
        if (th->vms[i].job == op->job) {
          topo_vm_free(th->vms[i].vm);
          th->vms[i] = th->vms[--th->nvms];
          break;
        }
      }
      pthread_mutex_lock(&r->mu);
      op->job->stopped_tasks++; /* counts threads that let go of the job */
      pthread_cond_broadcast(&r->cond);
      pthread_mutex_unlock(&r->mu);
    }
    free(op);
  }
}

/* One turn over a slot: up to RUNNER_BATCH records per input. Returns the
 * records processed. */
static int runner_slot_turn(runner_slot_t *s) {
  if (s->state != RUNNER_TASK_RUNNING) return 0;
  const topo_sub_t *sub = &s->job->job->subs[s->job->views[s->view].sub];
  int total = 0;
  char err[2048];
  /* Global tables first: a join sees every row appended before the batch
   * (Kafka Streams updates global stores on a thread of their own, with
   * no order against the stream; see docs/windows-and-joins.md). */
  if (sub->nglobals > 0 && topo_task_global_poll(s->task, err, sizeof err) != 0) {
    s->state = RUNNER_TASK_FAILED;
    logger_error("job", "%s task %d_%d stopped: %s", s->job->job->name, sub->id,
                 s->job->views[s->view].partition, err);
    snprintf(s->error, sizeof s->error, "%.1000s", err);
    return 0;
  }
  for (int i = 0; i < s->nreaders; i++) {
    if (!s->readers[i]) continue;
    log_record_t rec;
    log_error_t e = {0};
    int n = 0, rc;
    while (n < RUNNER_BATCH && (rc = log_reader_next(s->readers[i], &rec, &e)) == 1) {
      int prc = topo_task_process(s->task, sub->sources[i].topic, &rec, err, sizeof err);
      n++;
      if (prc < 0) {
        s->state = RUNNER_TASK_FAILED;
        logger_error("job", "task %d_%d stopped: %s", sub->id,
                     s->job->views[s->view].partition, err);
        snprintf(s->error, sizeof s->error, "%.1000s", err);
        return total + n;
      }
    }
    if (n < RUNNER_BATCH && rc < 0) {
      /* A corrupt batch: the task cannot go past it without losing data. */
      s->state = RUNNER_TASK_FAILED;
      logger_error("job", "%s task %d_%d stopped: %s", s->job->job->name, sub->id,
                   s->job->views[s->view].partition, e.msg);
      snprintf(s->error, sizeof s->error, "%s", e.msg);
    }
    total += n;
  }
  if (total > 0 && topo_task_flush(s->task, err, sizeof err) != 0) {
    s->state = RUNNER_TASK_FAILED;
    snprintf(s->error, sizeof s->error,
             "appending outputs: %.990s", err);
  }
  return total;
}

static int runner_slot_caught_up(const runner_slot_t *s) {
  if (s->state != RUNNER_TASK_RUNNING) return 1;
  for (int i = 0; i < s->nreaders; i++)
    if (s->readers[i] && log_reader_position(s->readers[i]) < log_partition_end_offset(s->parts[i]))
      return 0;
  return 1;
}

typedef struct {
  runner_job_t *job;
  int thread;
} runner_ops_arg_t;

/* Records one operator's count (r->mu held). */
static void runner_op_count(void *arg, const char *op, uint64_t n) {
  runner_ops_arg_t *a = arg;
  runner_job_t *j = a->job;
  for (int i = 0; i < j->nops; i++) {
    if (j->ops[i].thread == a->thread && strcmp(j->ops[i].op, op) == 0) {
      j->ops[i].count = n;
      return;
    }
  }
  if (j->nops == j->ops_cap) {
    int cap = j->ops_cap ? j->ops_cap * 2 : 16;
    runner_op_stat_t *no = realloc(j->ops, (size_t)cap * sizeof *no);
    if (!no) return;
    j->ops = no;
    j->ops_cap = cap;
  }
  runner_op_stat_t *s = &j->ops[j->nops++];
  s->thread = a->thread;
  snprintf(s->op, sizeof s->op, "%s", op);
  s->count = n;
}

/* Wall-clock punctuation on the worker's clock (the first call per task
 * schedules; see topo_task_wall_clock). A punctuator that fails a job
 * without error tolerance fails its task. */
static void runner_wall_clock(runner_thread_t *th) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  for (int i = 0; i < th->nslots; i++) {
    runner_slot_t *s = &th->slots[i];
    char err[1024];
    if (s->state != RUNNER_TASK_RUNNING || s->job->job->npuncts == 0) continue;
    if (topo_task_wall_clock(s->task, now, err, sizeof err) != 0) {
      s->state = RUNNER_TASK_FAILED;
      logger_error("job", "%s task: %s", s->job->job->name, err);
      snprintf(s->error, sizeof s->error, "punctuate: %.1000s", err);
    }
  }
}

static void *runner_thread_main(void *arg) {
  runner_thread_t *th = arg;
  runner_t *r = th->r;
  int64_t next_commit = runner_now_ms() + r->opts.commit_interval_ms;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    runner_op_t *ops = th->ops;
    th->ops = NULL;
    int stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    if (ops) runner_apply_ops(th, ops);
    if (stop) break;

    int work = 0;
    for (int i = 0; i < th->nslots; i++) work += runner_slot_turn(&th->slots[i]);
    runner_wall_clock(th);

    int64_t now = runner_now_ms();
    int caught_up = 1;
    for (int i = 0; i < th->nslots; i++) caught_up &= runner_slot_caught_up(&th->slots[i]);
    if (now >= next_commit || (caught_up && work > 0)) {
      /* Commit when due; also right after catching up, so what was read
       * is durable and visible to queries without waiting for the timer. */
      char err[2048];
      for (int i = 0; i < th->nslots; i++) {
        runner_slot_t *s = &th->slots[i];
        if (s->state != RUNNER_TASK_RUNNING) continue;
        if (topo_task_commit(s->task, err, sizeof err) != 0) {
          s->state = RUNNER_TASK_FAILED;
          logger_error("job", "%s task: commit failed: %s", s->job->job->name, err);
          snprintf(s->error, sizeof s->error,
                   "commit: %.1000s", err);
        }
      }
      next_commit = now + r->opts.commit_interval_ms;
      pthread_mutex_lock(&r->mu);
      for (int i = 0; i < th->nslots; i++) runner_publish(&th->slots[i], NULL);
      for (int i = 0; i < th->nvms; i++) {
        runner_ops_arg_t a = {th->vms[i].job, th->index};
        topo_vm_op_counts(th->vms[i].vm, runner_op_count, &a);
      }
      th->idle = caught_up && !th->ops;
      pthread_cond_broadcast(&r->cond);
      pthread_mutex_unlock(&r->mu);
    }
    if (work == 0) {
      int64_t wait = next_commit - now;
      if (wait > 200) wait = 200;
      if (wait < 1) wait = 1;
      struct pollfd pfd = {.fd = th->efd, .events = POLLIN};
      if (poll(&pfd, 1, (int)wait) > 0) {
        uint64_t v;
        ssize_t rd = read(th->efd, &v, sizeof v);
        (void)rd;
      }
    }
  }
  for (int i = 0; i < th->nslots; i++) {
    runner_slot_close(th, &th->slots[i], 1);
  }
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < th->nslots; i++) {
    th->slots[i].state = RUNNER_TASK_STOPPED;
    runner_publish(&th->slots[i], NULL);
  }
  pthread_mutex_unlock(&r->mu);
  free(th->slots);
  th->slots = NULL;
  th->nslots = 0;
  for (int i = 0; i < th->nvms; i++) topo_vm_free(th->vms[i].vm);
  free(th->vms);
  th->vms = NULL;
  th->nvms = 0;
  return NULL;
}

int runner__threads_start(runner_t *r, char *err, size_t errlen) {
  r->threads = calloc((size_t)r->nthreads, sizeof *r->threads);
  if (!r->threads) return -ENOMEM;
  for (int i = 0; i < r->nthreads; i++) {
    runner_thread_t *th = &r->threads[i];
    th->r = r;
    th->index = i;
    th->idle = 1;
    th->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (th->efd < 0 || pthread_create(&th->tid, NULL, runner_thread_main, th) != 0) {
      snprintf(err, errlen, "cannot start stream thread %d: %s", i, strerror(errno));
      return -errno;
    }
    th->started = 1;
  }
  return 0;
}

void runner__threads_stop(runner_t *r) {
  if (!r->threads) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  for (int i = 0; i < r->nthreads; i++) {
    uint64_t one = 1;
    ssize_t w = write(r->threads[i].efd, &one, sizeof one);
    (void)w;
  }
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < r->nthreads; i++) {
    runner_thread_t *th = &r->threads[i];
    if (th->started) pthread_join(th->tid, NULL);
    if (th->efd >= 0) close(th->efd);
    for (runner_op_t *op = th->ops, *n; op; op = n) {
      n = op->next;
      free(op);
    }
  }
  free(r->threads);
  r->threads = NULL;
}

int runner__threads_idle(runner_t *r) {
  for (int i = 0; i < r->nthreads; i++)
    if (!r->threads[i].idle || r->threads[i].ops) return 0;
  return 1;
}
