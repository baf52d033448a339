/*
 * connect_task.c: one connector task: its thread, the conn_ctx_t the
 * plugin sees (connector.h), stopping, and retries with backoff.
 *
 * A task's thread (connect_source_run / connect_sink_run) owns the plugin
 * state: start, poll/put/flush and stop are called from it only. Other
 * threads touch a task through its stop flag (atomic) and, under c->mu,
 * its state, trace and restart flag.
 *
 * Retries (CONN_E_RETRY from start, poll, put or flush): the call is made
 * again after 100 ms, 200 ms, 400 ms ... up to errors.retry.delay.max.ms,
 * until it succeeds, fails for good, or errors.retry.timeout (when > 0)
 * passes. Meanwhile the task's status stays RUNNING with a "trace" that
 * says what is retried and why (Kafka shows nothing; runnel shows it so an
 * operator sees a database outage in GET .../status).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect_int.h"
#include "logger.h"

int64_t connect_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- conn_ctx_t ------------------------------------------------------------- */

const char *conn_ctx_name(const conn_ctx_t *ctx) { return ctx->task->connector; }

int conn_ctx_task_id(const conn_ctx_t *ctx) { return ctx->task->id; }

bool conn_ctx_stopping(const conn_ctx_t *ctx) { return atomic_load(&ctx->task->stop); }

bool connect_task_stopping(connect_task_t *t) { return atomic_load(&t->stop); }

bool conn_ctx_sleep(conn_ctx_t *ctx, int64_t ms) {
  connect_task_t *t = ctx->task;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&t->sleep_mu);
  while (!atomic_load(&t->stop))
    if (pthread_cond_timedwait(&t->sleep_cv, &t->sleep_mu, &ts) == ETIMEDOUT) break;
  pthread_mutex_unlock(&t->sleep_mu);
  return atomic_load(&t->stop);
}

void conn_ctx_log(conn_ctx_t *ctx, int level, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  logger_level_t lv = level <= 0 ? LOGGER_ERROR : level == 1 ? LOGGER_WARN
                      : level == 2 ? LOGGER_INFO : LOGGER_DEBUG;
  logger_log(lv, "connect", "%s-%d: %s", ctx->task->connector, ctx->task->id, msg);
}

char *conn_ctx_offset(conn_ctx_t *ctx, const char *source_partition) {
  connect_task_t *t = ctx->task;
  /* The scan's findings (newer than any commit) first, then the store. */
  char *key = connect_offsets_key(t->connector, source_partition);
  const char *found = key ? conn_config_get(&t->restored, key) : NULL;
  char *v = found ? strdup(found) : connect_offsets_get(t->c->offsets, t->connector, source_partition);
  free(key);
  return v;
}

void conn_ctx_offsets_each(conn_ctx_t *ctx,
                           void (*cb)(void *arg, const char *partition, const char *offset),
                           void *arg) {
  connect_task_t *t = ctx->task;
  connect_offset_t *l = NULL;
  size_t n = 0;
  if (connect_offsets_list(t->c->offsets, t->connector, &l, &n) != 0) n = 0;
  /* The store's entries, each replaced by the scan's finding when newer
   * (conn_ctx_offset's rule); then the scan's findings the store lacks. */
  for (size_t i = 0; i < n; i++) {
    char *key = connect_offsets_key(t->connector, l[i].partition);
    const char *found = key ? conn_config_get(&t->restored, key) : NULL;
    if (found || l[i].offset) cb(arg, l[i].partition, found ? found : l[i].offset);
    free(key);
  }
  for (size_t k = 0; k < t->restored.count; k++) {
    char *conn, *part;
    const char *key = t->restored.keys[k];
    if (connect_offsets_key_parse(key, strlen(key), &conn, &part) != 0) continue;
    bool stored = false;
    for (size_t i = 0; i < n && !stored; i++) stored = strcmp(l[i].partition, part) == 0;
    if (!stored) cb(arg, part, t->restored.values[k]);
    free(conn);
    free(part);
  }
  connect_offset_list_free(l, n);
}

void conn_ctx_seek(conn_ctx_t *ctx, const char *topic, int32_t partition, int64_t offset) {
  connect_task_t *t = ctx->task;
  pthread_mutex_lock(&t->seek_mu);
  struct connect_seek *grown = realloc(t->seeks, (t->nseeks + 1) * sizeof *grown);
  char *dup = strdup(topic);
  if (grown && dup) {
    t->seeks = grown;
    t->seeks[t->nseeks++] = (struct connect_seek){dup, partition, offset};
  } else {
    if (grown) t->seeks = grown;
    free(dup);
    logger_error("connect", "%s-%d: out of memory recording a seek", t->connector, t->id);
  }
  pthread_mutex_unlock(&t->seek_mu);
}

int conn_ctx_report(conn_ctx_t *ctx, const conn_record_t *rec, const char *reason) {
  connect_task_t *t = ctx->task;
  char err[512];
  if (connect_errors_handle(t, rec, "TASK_PUT", t->plugin->name, reason, err, sizeof err) == 0)
    return 0;
  if (!t->put_errors_fatal++) snprintf(t->report_err, sizeof t->report_err, "%s", err);
  return -1;
}

/* ---- lifetime ------------------------------------------------------------ */

connect_task_t *connect_task_new(connect_t *c, connect_conn_t *conn, int id,
                                 const conn_config_t *cfg, char *err, size_t errlen) {
  connect_task_t *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->c = c;
  t->id = id;
  t->plugin = conn->plugin;
  t->ctx.task = t;
  t->state = CONNECT_UNASSIGNED;
  atomic_init(&t->stop, false);
  atomic_init(&t->done, false);
  pthread_mutex_init(&t->sleep_mu, NULL);
  pthread_cond_init(&t->sleep_cv, NULL);
  pthread_mutex_init(&t->seek_mu, NULL);
  conn_config_init(&t->cfg);
  conn_config_init(&t->conn_cfg);
  conn_config_init(&t->restored);
  conn_config_init(&t->topics_seen);
  t->ntasks = (int)conn->ntask_cfgs;
  if (!(t->connector = strdup(conn->name)) || conn_config_copy(&t->cfg, cfg) != 0 ||
      conn_config_copy(&t->conn_cfg, &conn->config) != 0 ||
      connect_common_parse(c, &conn->config, &t->common) != 0 ||
      (t->plugin->task_size && !(t->pstate = calloc(1, t->plugin->task_size)))) {
    snprintf(err, errlen, "out of memory");
    connect_task_free(t);
    return NULL;
  }
  connect_metrics_task(c->o.metrics, t->connector, id, t->plugin->kind == CONN_SOURCE, &t->m);
  return t;
}

static void *connect_task_main(void *arg) {
  connect_task_t *t = arg;
  logger_info("connect", "%s-%d: task starting (%s)", t->connector, t->id, t->plugin->name);
  /* "<connector>-<id>" as the thread's name (top -H, /proc), cut to the
   * kernel's 15 characters. */
  char name[16];
  snprintf(name, sizeof name, "%.12s-%d", t->connector, t->id);
  pthread_setname_np(pthread_self(), name);
  if (t->plugin->kind == CONN_SOURCE) connect_source_run(t);
  else connect_sink_run(t);
  atomic_store(&t->done, true);
  return NULL;
}

int connect_task_start(connect_task_t *t) {
  if (pthread_create(&t->thread, NULL, connect_task_main, t) != 0) {
    /* The herder holds c->mu here: set the state directly. */
    t->state = CONNECT_FAILED;
    free(t->trace);
    t->trace = strdup("cannot create the task's thread");
    return -1;
  }
  t->thread_live = true;
  return 0;
}

void connect_task_signal_stop(connect_task_t *t) {
  pthread_mutex_lock(&t->sleep_mu);
  atomic_store(&t->stop, true);
  pthread_cond_broadcast(&t->sleep_cv);
  pthread_mutex_unlock(&t->sleep_mu);
}

void connect_task_join(connect_task_t *t) {
  if (!t->thread_live) return;
  pthread_join(t->thread, NULL);
  t->thread_live = false;
}

void connect_task_free(connect_task_t *t) {
  if (!t) return;
  connect_task_join(t);
  conn_chain_free(t->chain);
  free(t->pstate);
  conn_config_free(&t->cfg);
  conn_config_free(&t->conn_cfg);
  conn_config_free(&t->restored);
  conn_config_free(&t->topics_seen);
  connect_common_free(&t->common);
  for (size_t i = 0; i < t->nseeks; i++) free(t->seeks[i].topic);
  free(t->seeks);
  free(t->trace);
  free(t->connector);
  pthread_mutex_destroy(&t->sleep_mu);
  pthread_cond_destroy(&t->sleep_cv);
  pthread_mutex_destroy(&t->seek_mu);
  free(t);
}

/* ---- failures and retries ------------------------------------------------- */

void connect_task_fail(connect_task_t *t, const char *err) {
  logger_error("connect", "%s-%d: task failed: %s", t->connector, t->id, err);
  connect__task_state(t, CONNECT_FAILED, err);
}

int connect_task_retry(connect_task_t *t, const char *what,
                       int (*op)(connect_task_t *t, void *arg, char *err, size_t errlen),
                       void *arg, char *err, size_t errlen) {
  int64_t delay = 100, first = 0;
  for (int attempt = 1;; attempt++) {
    err[0] = '\0';
    int rc = op(t, arg, err, errlen);
    if (rc != CONN_E_RETRY) {
      if (attempt > 1) {
        logger_info("connect", "%s-%d: %s succeeded after %d attempts", t->connector, t->id,
                    what, attempt);
        connect__task_state(t, CONNECT_RUNNING, NULL);
      }
      return rc == CONN_OK ? CONN_OK : CONN_E_FAIL;
    }
    int64_t now = connect_now_ms();
    if (attempt == 1) first = now;
    if (t->m.retries) metrics_add(t->m.retries, 1);
    int64_t limit = t->common.retry_timeout_ms;
    if (limit > 0 && now - first >= limit) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s: still failing after errors.retry.timeout=%" PRId64
               " ms (%d attempts): %s", what, limit, attempt, err);
      snprintf(err, errlen, "%s", msg);
      return CONN_E_FAIL;
    }
    char trace[1024];
    snprintf(trace, sizeof trace, "retrying %s (attempt %d, next in %" PRId64 " ms): %s", what,
             attempt, delay, err);
    if (attempt == 1 || attempt % 10 == 0)
      logger_warn("connect", "%s-%d: %s", t->connector, t->id, trace);
    connect__task_state(t, CONNECT_RUNNING, trace);
    if (conn_ctx_sleep(&t->ctx, delay)) return 1;
    delay *= 2;
    if (delay > t->common.retry_delay_max_ms) delay = t->common.retry_delay_max_ms;
  }
}
