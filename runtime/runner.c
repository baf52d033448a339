/*
 * runner.c: the jobs of a worker (see runner.h): adding and removing them,
 * their internal topics, where their tasks run, and the views the REST API
 * serves (list, description, status, interactive queries).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "logger.h"
#include "runner_int.h"

#define RUNNER_JOBS_TOPIC "__runnel_jobs"

static const char *const runner_state_names[] = {"CREATED", "RESTORING", "RUNNING", "FAILED",
                                                  "STOPPED"};

void runner__task_path(const runner_t *r, const char *job, int sub, int32_t partition,
                       char *buf, size_t len) {
  snprintf(buf, len, "%s/%s/%d_%d.db", r->state_dir, job, sub, partition);
}

static int runner_mkdir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) return -errno;
  return 0;
}

/* ---- metrics ----------------------------------------------------------- */

static void runner_collect(void *opaque, metrics_buf_t *b) {
  runner_t *r = opaque;
  static const struct {
    const char *name, *help;
    metrics_type_t type;
  } fams[] = {
      {"runnel_job_records_in_total", "Records a task read from its inputs.", METRICS_COUNTER},
      {"runnel_job_records_out_total", "Records a task wrote to topics.", METRICS_COUNTER},
      {"runnel_job_dlq_total", "Records a task sent to the dead-letter topic.", METRICS_COUNTER},
      {"runnel_job_process_seconds_total", "Time a task spent processing records.",
       METRICS_COUNTER},
      {"runnel_job_commits_total", "Commits of a task.", METRICS_COUNTER},
      {"runnel_job_commit_seconds_total", "Time a task spent committing.", METRICS_COUNTER},
      {"runnel_job_task_running", "1 when the task runs, 0 when it failed or restores.",
       METRICS_GAUGE},
      {"runnel_job_input_lag_records", "Records in the task's inputs not read yet.",
       METRICS_GAUGE},
      {"runnel_job_cache_hits_total", "State store reads answered by the write-back cache.",
       METRICS_COUNTER},
      {"runnel_job_cache_misses_total", "State store reads that went to SQLite.",
       METRICS_COUNTER},
      {"runnel_job_restored_records_total",
       "Changelog records replayed to rebuild the task's state.", METRICS_COUNTER},
      {"runnel_job_late_records_dropped_total",
       "Records dropped because every window they belong to had closed (stream time past "
       "end + grace).", METRICS_COUNTER},
  };
  pthread_mutex_lock(&r->mu);
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
    metrics_buf_family(b, fams[f].type, fams[f].name, fams[f].help);
    for (runner_job_t *j = r->jobs; j; j = j->next) {
      for (int t = 0; t < j->ntasks; t++) {
        runner_task_view_t *v = &j->views[t];
        char id[32];
        snprintf(id, sizeof id, "%d_%d", v->sub, v->partition);
        char *labels = metrics_labels("job", j->job->name, "task", id, NULL);
        double val = 0;
        switch (f) {
        case 0: val = (double)v->stats.records_in; break;
        case 1: val = (double)v->stats.records_out; break;
        case 2: val = (double)v->stats.dlq; break;
        case 3: val = (double)v->stats.process_ns / 1e9; break;
        case 4: val = (double)v->stats.commits; break;
        case 5: val = (double)v->stats.commit_ns / 1e9; break;
        case 6: val = v->state == RUNNER_TASK_RUNNING; break;
        case 8: val = (double)v->cache_hits; break;
        case 9: val = (double)v->cache_misses; break;
        case 10: val = (double)v->stats.restored; break;
        case 11: val = (double)v->stats.late_dropped; break;
        case 7: {
          const topo_sub_t *sub = &j->job->subs[v->sub];
          for (int i = 0; i < sub->nsources; i++) {
            log_partition_t *p;
            if (log_partition_get(r->opts.log, sub->sources[i].topic, v->partition, &p, NULL) == 0)
              val += (double)(log_partition_end_offset(p) - v->positions[i]);
          }
        }
        }
        if (labels) metrics_buf_sample(b, fams[f].name, labels, val);
        free(labels);
      }
    }
  }
  metrics_buf_family(b, METRICS_COUNTER, "runnel_job_operator_records_total",
                     "Records that entered an operator, per stream thread.");
  for (runner_job_t *j = r->jobs; j; j = j->next) {
    for (int i = 0; i < j->nops; i++) {
      char th[16];
      snprintf(th, sizeof th, "%d", j->ops[i].thread);
      char *labels = metrics_labels("job", j->job->name, "operator", j->ops[i].op, "thread", th,
                                    NULL);
      if (labels)
        metrics_buf_sample(b, "runnel_job_operator_records_total", labels,
                           (double)j->ops[i].count);
      free(labels);
    }
  }
  pthread_mutex_unlock(&r->mu);
}

/* ---- lifetime ------------------------------------------------------------ */

int runner_new(const runner_options_t *opts, runner_t **out, char *err, size_t errlen) {
  runner_t *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->opts = *opts;
  r->state_dir = strdup(opts->state_dir);
  r->nthreads = opts->threads > 0 ? opts->threads : 1;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cond, NULL);
  runner__io_init(r, &r->io);
  int rc = runner_mkdir(r->state_dir);
  if (rc != 0) {
    snprintf(err, errlen, "cannot create %s: %s", r->state_dir, strerror(-rc));
    runner_free(r);
    return rc;
  }
  rc = runner__threads_start(r, err, errlen);
  if (rc != 0) {
    runner_free(r);
    return rc;
  }
  if (opts->metrics) metrics_add_collector(opts->metrics, runner_collect, r);
  *out = r;
  return 0;
}

static void runner_job_free(runner_job_t *j) {
  free(j->ops);
  for (int t = 0; t < j->ntasks; t++) free(j->views[t].positions);
  free(j->views);
  topo_job_free(j->job);
  free(j);
}

void runner_free(runner_t *r) {
  if (!r) return;
  if (r->opts.metrics) metrics_remove_collector(r->opts.metrics, runner_collect, r);
  runner__threads_stop(r);
  for (runner_job_t *j = r->jobs, *n; j; j = n) {
    n = j->next;
    runner_job_free(j);
  }
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cond);
  free(r->state_dir);
  free(r);
}

/* ---- jobs ------------------------------------------------------------------ */

static runner_job_t *runner_find(runner_t *r, const char *name) {
  for (runner_job_t *j = r->jobs; j; j = j->next)
    if (strcmp(j->job->name, name) == 0) return j;
  return NULL;
}

/* Writes (script != NULL) or deletes a job in __runnel_jobs. */
static int runner_persist(runner_t *r, const char *name, const topo_job_t *job, char *err,
                          size_t errlen) {
  char e2[512];
  int rc = r->io.create_topic(r, RUNNER_JOBS_TOPIC, 1, true, e2, sizeof e2);
  if (rc != 0) {
    snprintf(err, errlen, "%s: %s", RUNNER_JOBS_TOPIC, e2);
    return rc;
  }
  char *value = NULL;
  size_t vlen = 0;
  if (job) {
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"chunkname", 9);
    yajl_gen_string(g, (const unsigned char *)job->chunkname, strlen(job->chunkname));
    yajl_gen_string(g, (const unsigned char *)"script", 6);
    yajl_gen_string(g, (const unsigned char *)job->script, job->script_len);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    yajl_gen_get_buf(g, &buf, &vlen);
    value = malloc(vlen + 1);
    if (value) memcpy(value, buf, vlen);
    yajl_gen_free(g);
    if (!value) return -ENOMEM;
  }
  log_record_t rec = {.timestamp = -1, .key = name, .key_len = (int32_t)strlen(name),
                      .value = value, .value_len = value ? (int32_t)vlen : -1};
  rc = r->io.append(r, RUNNER_JOBS_TOPIC, 0, &rec, 1, NULL, err, errlen);
  free(value);
  if (rc == 0) {
    log_partition_t *p;
    if (log_partition_get(r->opts.log, RUNNER_JOBS_TOPIC, 0, &p, NULL) == 0)
      log_partition_flush(p, NULL); /* a submitted job survives a crash right after */
  }
  return rc;
}

/* The log's partition count of a topic, or < 0 (topo_job_plan). */
static int runner_topic_partitions(void *opaque, const char *topic) {
  runner_t *r = opaque;
  return log_topic_partitions(r->opts.log, topic, NULL);
}

int runner_add_job(runner_t *r, topo_job_t *job, bool persist, char *err, size_t errlen) {
  pthread_mutex_lock(&r->mu);
  int exists = runner_find(r, job->name) != NULL;
  pthread_mutex_unlock(&r->mu);
  if (exists) {
    snprintf(err, errlen, "a job named %s already runs", job->name);
    return -EEXIST;
  }
  /* Source topics exist and joined topics are co-partitioned. */
  topo_plan_t plan;
  int prc = topo_job_plan(job, runner_topic_partitions, r, &plan, err, errlen);
  if (prc != 0) return prc;
  char checkpoints[300];
  snprintf(checkpoints, sizeof checkpoints, "%s-checkpoints", job->name);
  int crc = r->io.create_topic(r, checkpoints, 1, true, err, errlen);
  if (crc != 0) {
    topo_job_plan_free(&plan);
    return crc;
  }
  for (int i = 0; i < job->ninternals; i++) {
    const topo_internal_t *in = &job->internals[i];
    int n = topo_job_internal_partitions(job, &plan, i);
    int rc = r->io.create_topic(r, in->name, n, in->changelog, err, errlen);
    if (rc != 0) {
      topo_job_plan_free(&plan);
      return rc;
    }
    /* Nothing of a changelog is compacted until its task checkpoints it
     * (topo_task.c sets the limit after each checkpoint). */
    for (int p = 0; in->changelog && p < n; p++)
      r->io.compaction_limit(r, in->name, p, 0);
  }
  int rc = persist ? runner_persist(r, job->name, job, err, errlen) : 0;
  char dir[4400];
  snprintf(dir, sizeof dir, "%s/%s", r->state_dir, job->name);
  if (rc == 0 && (rc = runner_mkdir(dir)) != 0)
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
  runner_job_t *j = rc == 0 ? calloc(1, sizeof *j) : NULL;
  if (rc == 0 && !j) rc = -ENOMEM;
  if (rc != 0) {
    topo_job_plan_free(&plan);
    return rc;
  }
  j->job = job;
  for (int s = 0; s < job->nsubs; s++) j->ntasks += plan.sub_partitions[s];
  j->views = calloc((size_t)j->ntasks + 1, sizeof *j->views);
  if (!j->views) {
    free(j);
    topo_job_plan_free(&plan);
    return -ENOMEM;
  }
  pthread_mutex_lock(&r->mu);
  int t = 0;
  for (int s = 0; s < job->nsubs; s++) {
    int n = plan.sub_partitions[s];
    for (int p = 0; p < n; p++, t++) {
      runner_task_view_t *v = &j->views[t];
      v->sub = s;
      v->partition = p;
      v->thread = r->next_thread++ % r->nthreads;
      v->state = RUNNER_TASK_CREATED;
      v->positions = calloc((size_t)job->subs[s].nsources + 1, sizeof *v->positions);
      runner_op_t *op = calloc(1, sizeof *op);
      if (!op || !v->positions) {
        free(op);
        continue; /* stays CREATED; status shows it */
      }
      op->kind = RUNNER_OP_ADD;
      op->job = j;
      op->task = t;
      runner__thread_post(r, v->thread, op);
    }
  }
  j->next = r->jobs;
  r->jobs = j;
  pthread_mutex_unlock(&r->mu);
  topo_job_plan_free(&plan);
  logger_info("job", "%s: started %d tasks in %d sub-topologies", job->name, j->ntasks,
              job->nsubs);
  return 0;
}

int runner_remove_job(runner_t *r, const char *name, bool persist, char *err, size_t errlen) {
  pthread_mutex_lock(&r->mu);
  runner_job_t *j = runner_find(r, name);
  if (!j || j->stopping) {
    pthread_mutex_unlock(&r->mu);
    snprintf(err, errlen, "no job named %s", name);
    return -ENOENT;
  }
  j->stopping = 1;
  /* Every thread lets go of the job (its tasks commit and close). */
  for (int t = 0; t < r->nthreads; t++) {
    runner_op_t *op = calloc(1, sizeof *op);
    if (!op) continue;
    op->kind = RUNNER_OP_REMOVE;
    op->job = j;
    runner__thread_post(r, t, op);
  }
  while (j->stopped_tasks < r->nthreads) pthread_cond_wait(&r->cond, &r->mu);
  for (runner_job_t **pj = &r->jobs; *pj; pj = &(*pj)->next) {
    if (*pj == j) {
      *pj = j->next;
      break;
    }
  }
  pthread_mutex_unlock(&r->mu);
  int rc = persist ? runner_persist(r, name, NULL, err, errlen) : 0;
  logger_info("job", "%s: stopped", name);
  runner_job_free(j);
  return rc;
}

typedef struct {
  char **names;
  char **values;
  int n;
} runner_kept_t;

static int runner_collect_job(void *arg, const log_record_t *rec) {
  runner_kept_t *k = arg;
  if (!rec->key) return 0;
  char *name = strndup(rec->key, (size_t)rec->key_len);
  if (!name) return -1;
  int i;
  for (i = 0; i < k->n; i++)
    if (strcmp(k->names[i], name) == 0) break;
  if (i == k->n) {
    char **nn = realloc(k->names, (size_t)(k->n + 1) * sizeof *nn);
    char **nv = nn ? realloc(k->values, (size_t)(k->n + 1) * sizeof *nv) : NULL;
    if (nn) k->names = nn;
    if (!nv) {
      free(name);
      return -1;
    }
    k->values = nv;
    k->names[i] = name;
    k->values[i] = NULL;
    k->n++;
  } else {
    free(name);
  }
  free(k->values[i]);
  k->values[i] = rec->value ? strndup(rec->value, (size_t)rec->value_len) : NULL;
  return 0;
}

int runner_restore_jobs(runner_t *r, char *err, size_t errlen) {
  if (log_topic_partitions(r->opts.log, RUNNER_JOBS_TOPIC, NULL) < 0) return 0;
  runner_kept_t k = {0};
  int64_t end;
  int rc = r->io.read(r, RUNNER_JOBS_TOPIC, 0, 0, -1, runner_collect_job, &k, &end, err, errlen);
  int first_err = rc;
  for (int i = 0; i < k.n; i++) {
    if (rc == 0 && k.values[i]) {
      char ebuf[256];
      yajl_val v = yajl_tree_parse(k.values[i], ebuf, sizeof ebuf);
      const char *pc[] = {"chunkname", NULL}, *ps[] = {"script", NULL};
      yajl_val chunk = v ? yajl_tree_get(v, pc, yajl_t_string) : NULL;
      yajl_val script = v ? yajl_tree_get(v, ps, yajl_t_string) : NULL;
      topo_job_t *job = NULL;
      char jerr[2048];
      int jrc = chunk && script
                    ? topo_job_load(chunk->u.string, script->u.string, strlen(script->u.string),
                                    &r->opts.vm, &job, jerr, sizeof jerr)
                    : (snprintf(jerr, sizeof jerr, "unreadable entry in %s", RUNNER_JOBS_TOPIC), -EINVAL);
      if (jrc == 0) jrc = runner_add_job(r, job, false, jerr, sizeof jerr);
      if (jrc != 0) {
        if (job && jrc != 0) topo_job_free(job);
        logger_error("job", "%s: cannot restart the job: %s", k.names[i], jerr);
        if (first_err == 0) {
          snprintf(err, errlen, "%s: %s", k.names[i], jerr);
          first_err = jrc;
        }
      }
      yajl_tree_free(v);
    }
    free(k.names[i]);
    free(k.values[i]);
  }
  free(k.names);
  free(k.values);
  return first_err;
}

int runner_wait_idle(runner_t *r, int64_t timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&r->mu);
  int rc = 0;
  while (!runner__threads_idle(r) && rc == 0)
    if (pthread_cond_timedwait(&r->cond, &r->mu, &deadline) != 0) rc = -ETIMEDOUT;
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* ---- REST views ------------------------------------------------------------ */

static char *runner_gen_done(yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  char *out = malloc(len + 1);
  if (out) {
    memcpy(out, buf, len);
    out[len] = '\0';
  }
  yajl_gen_free(g);
  return out;
}

static void runner_gen_str(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

char *runner_jobs_json(runner_t *r) {
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_array_open(g);
  pthread_mutex_lock(&r->mu);
  for (runner_job_t *j = r->jobs; j; j = j->next)
    if (!j->stopping) runner_gen_str(g, j->job->name);
  pthread_mutex_unlock(&r->mu);
  yajl_gen_array_close(g);
  return runner_gen_done(g);
}

char *runner_describe_json(runner_t *r, const char *name, int *status) {
  pthread_mutex_lock(&r->mu);
  runner_job_t *j = runner_find(r, name);
  char *out = j ? strdup(j->job->describe_json) : NULL;
  pthread_mutex_unlock(&r->mu);
  *status = j ? (out ? 200 : 500) : 404;
  return out;
}

char *runner_status_json(runner_t *r, const char *name, int *status) {
  pthread_mutex_lock(&r->mu);
  runner_job_t *j = runner_find(r, name);
  if (!j) {
    pthread_mutex_unlock(&r->mu);
    *status = 404;
    return NULL;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  runner_gen_str(g, "name");
  runner_gen_str(g, name);
  int failed = 0, running = 0;
  for (int t = 0; t < j->ntasks; t++) {
    failed += j->views[t].state == RUNNER_TASK_FAILED;
    running += j->views[t].state == RUNNER_TASK_RUNNING;
  }
  runner_gen_str(g, "state");
  runner_gen_str(g, failed ? "FAILED" : running == j->ntasks ? "RUNNING" : "STARTING");
  runner_gen_str(g, "tasks");
  yajl_gen_array_open(g);
  for (int t = 0; t < j->ntasks; t++) {
    runner_task_view_t *v = &j->views[t];
    char id[32];
    snprintf(id, sizeof id, "%d_%d", v->sub, v->partition);
    yajl_gen_map_open(g);
    runner_gen_str(g, "id");
    runner_gen_str(g, id);
    runner_gen_str(g, "subtopology");
    yajl_gen_integer(g, v->sub);
    runner_gen_str(g, "partition");
    yajl_gen_integer(g, v->partition);
    runner_gen_str(g, "thread");
    yajl_gen_integer(g, v->thread);
    runner_gen_str(g, "state");
    runner_gen_str(g, runner_state_names[v->state]);
    runner_gen_str(g, "records_in");
    yajl_gen_integer(g, (long long)v->stats.records_in);
    runner_gen_str(g, "records_out");
    yajl_gen_integer(g, (long long)v->stats.records_out);
    runner_gen_str(g, "dlq");
    yajl_gen_integer(g, (long long)v->stats.dlq);
    runner_gen_str(g, "lag");
    int64_t lag = 0;
    const topo_sub_t *sub = &j->job->subs[v->sub];
    for (int i = 0; i < sub->nsources; i++) {
      log_partition_t *p;
      if (log_partition_get(r->opts.log, sub->sources[i].topic, v->partition, &p, NULL) == 0)
        lag += log_partition_end_offset(p) - v->positions[i];
    }
    yajl_gen_integer(g, lag);
    if (v->error[0]) {
      runner_gen_str(g, "error");
      runner_gen_str(g, v->error);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  pthread_mutex_unlock(&r->mu);
  *status = 200;
  return runner_gen_done(g);
}

/* ---- interactive queries ---------------------------------------------- */

/* Finds the store, the sub-topology whose tasks hold it and how many
 * tasks hold a part of it. Every task that joins with a global table
 * holds all of it: the first such task answers. */
static const topo_store_t *runner_store(runner_t *r, const char *job, const char *store,
                                        int *sub, int *partitions, char *err, size_t errlen) {
  runner_job_t *j = runner_find(r, job);
  if (!j) {
    snprintf(err, errlen, "no job named %s", job);
    return NULL;
  }
  for (int i = 0; i < j->job->nstores; i++) {
    const topo_store_t *st = &j->job->stores[i];
    if (strcmp(st->name, store) != 0) continue;
    *sub = st->sub;
    *partitions = 0;
    for (int s = 0; st->global_topic && s < j->job->nsubs && *sub < 0; s++)
      for (int g = 0; g < j->job->subs[s].nglobals; g++)
        if (j->job->subs[s].globals[g] == st->index) *sub = s;
    for (int t = 0; t < j->ntasks; t++)
      if (j->views[t].sub == *sub) (*partitions)++;
    if (st->global_topic && *partitions > 1) *partitions = 1;
    return st;
  }
  snprintf(err, errlen, "job %s has no store named %s", job, store);
  return NULL;
}

/* Emits a stored value: as JSON when it is valid JSON (stores keep JSON
 * text), else as a string. yajl_gen_number writes its text verbatim, which
 * is how already-encoded JSON is inserted. */
static void runner_gen_value(yajl_gen g, const char *v, size_t len) {
  char ebuf[64];
  char *copy = strndup(v, len);
  yajl_val node = copy ? yajl_tree_parse(copy, ebuf, sizeof ebuf) : NULL;
  if (node) yajl_gen_number(g, v, len);
  else yajl_gen_string(g, (const unsigned char *)v, len);
  yajl_tree_free(node);
  free(copy);
}

char *runner_query_key_json(runner_t *r, const char *job, const char *store, const char *key,
                            int *status, char *err, size_t errlen) {
  pthread_mutex_lock(&r->mu);
  int parts = 0, sub = 0;
  const topo_store_t *st = runner_store(r, job, store, &sub, &parts, err, errlen);
  char path[4400];
  char store_name_copy[256];
  if (st) {
    int32_t p = parts > 0 ? log_partition_for_key(key, (int32_t)strlen(key), parts) : 0;
    runner__task_path(r, job, sub, p, path, sizeof path);
    snprintf(store_name_copy, sizeof store_name_copy, "%s", st->name);
  }
  pthread_mutex_unlock(&r->mu);
  if (!st) {
    *status = 404;
    return NULL;
  }
  store_reader_t *rd;
  void *val = NULL;
  size_t vlen = 0;
  int rc = store_reader_open(path, &rd, err, errlen);
  if (rc == 0) {
    rc = store_reader_get(rd, store_name_copy, key, strlen(key), &val, &vlen);
    store_reader_close(rd);
  } else {
    rc = 0; /* no state file yet: the key is not there */
  }
  if (rc <= 0) {
    if (rc == 0) snprintf(err, errlen, "store %s of job %s has no key %s", store, job, key);
    *status = rc == 0 ? 404 : 500;
    return NULL;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  runner_gen_str(g, "key");
  runner_gen_str(g, key);
  runner_gen_str(g, "value");
  runner_gen_value(g, val, vlen);
  yajl_gen_map_close(g);
  free(val);
  *status = 200;
  return runner_gen_done(g);
}

typedef struct {
  char **keys;
  size_t *klens;
  char **vals;
  size_t *vlens;
  size_t n, cap;
} runner_rows_t;

static int runner_row(void *opaque, const void *key, size_t klen, const void *val, size_t vlen) {
  runner_rows_t *rows = opaque;
  if (rows->n == rows->cap) {
    size_t cap = rows->cap ? rows->cap * 2 : 64;
    char **nk = realloc(rows->keys, cap * sizeof *nk);
    if (nk) rows->keys = nk;
    size_t *nkl = realloc(rows->klens, cap * sizeof *nkl);
    if (nkl) rows->klens = nkl;
    char **nv = realloc(rows->vals, cap * sizeof *nv);
    if (nv) rows->vals = nv;
    size_t *nvl = realloc(rows->vlens, cap * sizeof *nvl);
    if (nvl) rows->vlens = nvl;
    if (!nk || !nkl || !nv || !nvl) return 1;
    rows->cap = cap;
  }
  rows->keys[rows->n] = malloc(klen + 1);
  rows->vals[rows->n] = malloc(vlen + 1);
  if (!rows->keys[rows->n] || !rows->vals[rows->n]) {
    free(rows->keys[rows->n]);
    free(rows->vals[rows->n]);
    return 1;
  }
  memcpy(rows->keys[rows->n], key, klen);
  memcpy(rows->vals[rows->n], val, vlen);
  rows->klens[rows->n] = klen;
  rows->vlens[rows->n] = vlen;
  rows->n++;
  return 0;
}

static runner_rows_t *runner_sort_rows;

static int runner_cmp_rows(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  runner_rows_t *rows = runner_sort_rows;
  size_t n = rows->klens[i] < rows->klens[j] ? rows->klens[i] : rows->klens[j];
  int c = memcmp(rows->keys[i], rows->keys[j], n);
  if (c) return c;
  return rows->klens[i] < rows->klens[j] ? -1 : rows->klens[i] > rows->klens[j];
}

char *runner_query_range_json(runner_t *r, const char *job, const char *store, const char *from,
                              const char *to, size_t limit, int *status, char *err,
                              size_t errlen) {
  pthread_mutex_lock(&r->mu);
  int parts = 0, sub = 0;
  const topo_store_t *st = runner_store(r, job, store, &sub, &parts, err, errlen);
  char sname[256] = "";
  if (st) snprintf(sname, sizeof sname, "%s", st->name);
  pthread_mutex_unlock(&r->mu);
  if (!st) {
    *status = 404;
    return NULL;
  }
  runner_rows_t rows = {0};
  for (int p = 0; p < parts; p++) {
    char path[4400];
    runner__task_path(r, job, sub, p, path, sizeof path);
    store_reader_t *rd;
    char e2[256];
    if (store_reader_open(path, &rd, e2, sizeof e2) != 0) continue;
    store_reader_range(rd, sname, from, from ? strlen(from) : 0, to, to ? strlen(to) : 0, limit,
                       runner_row, &rows);
    store_reader_close(rd);
  }
  size_t *order = malloc((rows.n + 1) * sizeof *order);
  for (size_t i = 0; order && i < rows.n; i++) order[i] = i;
  /* Each task's rows are sorted; the union is sorted here (one REST call
   * at a time runs on the loop thread, so the static is safe). */
  runner_sort_rows = &rows;
  if (order) qsort(order, rows.n, sizeof *order, runner_cmp_rows);
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_array_open(g);
  for (size_t i = 0; order && i < rows.n && (limit == 0 || i < limit); i++) {
    size_t k = order[i];
    yajl_gen_map_open(g);
    runner_gen_str(g, "key");
    yajl_gen_string(g, (const unsigned char *)rows.keys[k], rows.klens[k]);
    runner_gen_str(g, "value");
    runner_gen_value(g, rows.vals[k], rows.vlens[k]);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  for (size_t i = 0; i < rows.n; i++) {
    free(rows.keys[i]);
    free(rows.vals[i]);
  }
  free(rows.keys);
  free(rows.klens);
  free(rows.vals);
  free(rows.vlens);
  free(order);
  *status = 200;
  return runner_gen_done(g);
}
