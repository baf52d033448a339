/*
 * worker.c: the worker's lifetime (see worker.h) and its built-in REST
 * routes: GET / (name, version, commit), GET /health, GET /metrics; the
 * job routes live in worker_jobs.c, the connector routes in
 * worker_connect.c.
 */
#include "worker.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yajl/yajl_gen.h>

#include "connect_lua_transform.h"
#include "logger.h"
#include "worker_int.h"

#ifndef RUNNEL_VERSION
#define RUNNEL_VERSION "0.0.0"
#endif
#ifndef RUNNEL_COMMIT
#define RUNNEL_COMMIT "unknown"
#endif

/* ---- REST routes -------------------------------------------------------- */

static void worker_gen_kv(yajl_gen g, const char *k, const char *v) {
  yajl_gen_string(g, (const unsigned char *)k, strlen(k));
  yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

static void worker_get_root(void *opaque, const http_request_t *req,
                            const http_params_t *params, http_response_t *res) {
  (void)opaque, (void)req, (void)params;
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  worker_gen_kv(g, "name", "runnel");
  worker_gen_kv(g, "version", RUNNEL_VERSION);
  worker_gen_kv(g, "commit", RUNNEL_COMMIT);
  yajl_gen_map_close(g);
  http_response_gen(res, 200, g);
}

/* Kafka Connect's GET /health (KIP-1017): 200 and "healthy" once started;
 * 503 while stopping. */
static void worker_get_health(void *opaque, const http_request_t *req,
                              const http_params_t *params, http_response_t *res) {
  (void)req, (void)params;
  worker_t *w = opaque;
  int ok = w->state == WORKER_RUNNING;
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  worker_gen_kv(g, "status", ok ? "healthy" : "unhealthy");
  worker_gen_kv(g, "message", ok ? "Worker has completed startup and is ready to handle requests."
                                 : "Worker is shutting down.");
  yajl_gen_map_close(g);
  http_response_gen(res, ok ? 200 : 503, g);
}

static void worker_get_metrics(void *opaque, const http_request_t *req,
                               const http_params_t *params, http_response_t *res) {
  (void)req, (void)params;
  worker_t *w = opaque;
  size_t len = 0;
  char *text = metrics_render(w->metrics, &len);
  if (!text) {
    http_response_error(res, 500, "out of memory rendering metrics");
    return;
  }
  res->status = 200;
  res->content_type = "text/plain; version=0.0.4; charset=utf-8";
  res->body = text;
  res->body_len = len;
}

static const http_route_t worker_routes[] = {
    {"GET", "/", worker_get_root},
    {"GET", "/health", worker_get_health},
    {"GET", "/metrics", worker_get_metrics},
    WORKER_JOB_ROUTES,
    WORKER_CONNECT_ROUTES,
    {NULL, NULL, NULL},
};

static void worker_handle(void *opaque, const http_request_t *req, http_response_t *res) {
  http_route(worker_routes, opaque, req, res);
}

static void worker_on_request(void *opaque, const http_request_t *req, int status) {
  worker_t *w = opaque;
  char labels[64];
  snprintf(labels, sizeof labels, "code=\"%d\"", status);
  metrics_series_t *s = metrics_series(w->metrics, METRICS_COUNTER, "runnel_http_requests_total",
                                       "HTTP requests answered, by status code.", labels);
  if (s) metrics_add(s, 1);
  logger_debug("http", "%s %s -> %d", req->method, req->path, status);
}

/* ---- log metrics -------------------------------------------------------- */

static void worker_collect_log(void *opaque, metrics_buf_t *b) {
  worker_t *w = opaque;
  char **names = NULL;
  if (!w->log || log_topic_list(w->log, true, &names) < 0) return;
  static const struct {
    const char *name, *help;
  } fams[] = {
      {"runnel_log_start_offset", "First offset still in the partition (log start offset)."},
      {"runnel_log_end_offset", "Offset the next append will get (log end offset)."},
      {"runnel_log_size_bytes", "Bytes of all segments of the partition."},
  };
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
    metrics_buf_family(b, METRICS_GAUGE, fams[f].name, fams[f].help);
    for (char **t = names; *t; t++) {
      int n = log_topic_partitions(w->log, *t, NULL);
      for (int p = 0; p < n; p++) {
        log_partition_t *part;
        if (log_partition_get(w->log, *t, p, &part, NULL) != 0) continue;
        char labels[384];
        snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%d\"", *t, p);
        double v = f == 0   ? (double)log_partition_start_offset(part)
                   : f == 1 ? (double)log_partition_end_offset(part)
                            : (double)log_partition_size(part);
        metrics_buf_sample(b, fams[f].name, labels, v);
      }
    }
  }
  log_names_free(names);
}

static void worker_log_event(void *opaque, int level, const char *msg) {
  (void)opaque;
  logger_log(level == 0 ? LOGGER_ERROR : level == 1 ? LOGGER_WARN : LOGGER_INFO, "log", "%s",
             msg);
}

/* ---- shutdown ----------------------------------------------------------- */

static void worker_on_http_closed(void *arg) {
  worker_t *w = arg;
  w->http = NULL;
  /* Nothing else keeps the loop alive once signals and the timer close. */
  uv_close((uv_handle_t *)&w->sigint, NULL);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
  uv_close((uv_handle_t *)&w->shutdown_timer, NULL);
}

static void worker_on_shutdown_timeout(uv_timer_t *t) {
  worker_t *w = t->data;
  logger_error("worker", "shutdown did not finish within %" PRId64
               " ms (task.shutdown.graceful.timeout.ms); stopping anyway",
               w->cfg->shutdown_timeout_ms);
  w->exit_status = 1;
  if (w->http) http_server_abort(w->http);
}

static void worker_on_signal(uv_signal_t *s, int signum) {
  worker_t *w = s->data;
  if (w->state == WORKER_STOPPING) {
    logger_info("worker", "received %s again while stopping; still draining",
                strsignal(signum));
    return;
  }
  logger_info("worker", "received %s, shutting down", strsignal(signum));
  w->state = WORKER_STOPPING;
  uv_timer_start(&w->shutdown_timer, worker_on_shutdown_timeout,
                 (uint64_t)w->cfg->shutdown_timeout_ms, 0);
  http_server_close(w->http, worker_on_http_closed, w);
}

/* ---- start-up ------------------------------------------------------------ */

static int worker_listen(worker_t *w) {
  worker_listener_t ls[16];
  int n = worker_listeners_parse(w->cfg->listeners, ls, 16);
  http_server_options_t opts = {
      .max_header_bytes = (size_t)w->cfg->http_max_header_bytes,
      .max_body_bytes = (size_t)w->cfg->http_max_body_bytes,
      .handler = worker_handle,
      .opaque = w,
      .on_request = worker_on_request,
  };
  if (http_server_new(&w->loop, &opts, &w->http) != 0) return -1;
  for (int i = 0; i < n; i++) {
    int port = 0;
    int rc = http_server_listen(w->http, ls[i].host, ls[i].port, &port);
    if (rc != 0) {
      logger_error("http", "cannot listen on http://%s:%d (listeners): %s", ls[i].host,
                   ls[i].port, uv_strerror(rc));
      return -1;
    }
    if (i == 0) w->port = port;
    logger_info("http", "listening on http://%s%s%s:%d", strchr(ls[i].host, ':') ? "[" : "",
                ls[i].host, strchr(ls[i].host, ':') ? "]" : "", port);
  }
  return 0;
}

static int worker_open_log(worker_t *w) {
  char dir[4200], msg[512];
  if (datadir_lock(&w->datadir, w->cfg->data_dir, msg, sizeof msg) != 0) {
    logger_error("worker", "%s", msg);
    return -1;
  }
  log_options_t opts;
  worker_config_log_options(w->cfg, &opts);
  opts.background = true;
  opts.on_event = worker_log_event;
  log_error_t err = {0};
  int rc = log_open(datadir_sub(&w->datadir, "log", dir, sizeof dir), &opts, &w->log, &err);
  if (rc != 0) {
    logger_error("log", "cannot open the log in %s: %s", dir,
                 err.msg[0] ? err.msg : log_strerror(rc));
    return -1;
  }
  return 0;
}

int worker_run(const worker_config_t *cfg, const char *config_name, char **job_files,
               char **connector_files) {
  worker_t w;
  memset(&w, 0, sizeof w);
  w.cfg = cfg;
  w.datadir.fd = -1;
  w.exit_status = 1;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&w.loop);
  w.metrics = metrics_new();
  if (!w.metrics) goto out;
  metrics_add_collector(w.metrics, metrics_collect_process, NULL);
  metrics_series_t *info = metrics_series(w.metrics, METRICS_GAUGE, "runnel_build_info",
                                          "Version and commit of this binary.",
                                          "version=\"" RUNNEL_VERSION "\",commit=\"" RUNNEL_COMMIT "\"");
  if (info) metrics_set(info, 1);
  logger_info("worker", "runnel %s (%s) starting with %s, data.dir %s", RUNNEL_VERSION,
              RUNNEL_COMMIT, config_name ? config_name : "the default config", cfg->data_dir);

  connect_lua_transform_register(); /* transforms.<alias>.type=lua */
  if (worker_open_log(&w) != 0) goto out;
  metrics_add_collector(w.metrics, worker_collect_log, &w);
  if (worker_jobs_start(&w, job_files) != 0) {
    w.exit_status = 2;
    goto out;
  }

  uv_signal_init(&w.loop, &w.sigint);
  uv_signal_init(&w.loop, &w.sigterm);
  uv_timer_init(&w.loop, &w.shutdown_timer);
  w.sigint.data = w.sigterm.data = w.shutdown_timer.data = &w;
  uv_signal_start(&w.sigint, worker_on_signal, SIGINT);
  uv_signal_start(&w.sigterm, worker_on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&w.shutdown_timer);

  if (worker_listen(&w) != 0) {
    w.state = WORKER_STOPPING;
    http_server_close(w.http, worker_on_http_closed, &w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    goto out;
  }
  if (worker_connect_start(&w, connector_files, w.port) != 0) {
    w.exit_status = 2;
    w.state = WORKER_STOPPING;
    http_server_close(w.http, worker_on_http_closed, &w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    goto out;
  }
  w.state = WORKER_RUNNING;
  logger_info("worker", "started");
  w.exit_status = 0;
  uv_run(&w.loop, UV_RUN_DEFAULT);

out:
  worker_connect_stop(&w);
  worker_jobs_stop(&w);
  if (w.log) {
    int rc = log_close(w.log);
    if (rc != 0) {
      logger_error("log", "flushing the log on shutdown failed: %s", log_strerror(rc));
      w.exit_status = 1;
    } else {
      logger_info("log", "flushed and closed");
    }
  }
  datadir_unlock(&w.datadir);
  if (w.metrics) metrics_free(w.metrics);
  if (uv_loop_close(&w.loop) != 0) logger_warn("worker", "event loop closed with open handles");
  if (w.exit_status == 0) logger_info("worker", "stopped");
  return w.exit_status;
}
