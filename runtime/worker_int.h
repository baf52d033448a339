/*
 * worker_int.h: the worker's state, shared by worker.c (lifetime, built-in
 * routes) and worker_jobs.c (the jobs and their REST routes).
 */
#ifndef RUNNEL_WORKER_INT_H
#define RUNNEL_WORKER_INT_H

#include <uv.h>

#include "connect.h"
#include "datadir.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "runner.h"
#include "worker.h"

typedef enum { WORKER_RUNNING, WORKER_STOPPING } worker_state_t;

typedef struct {
  const worker_config_t *cfg;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_timer_t shutdown_timer;
  http_server_t *http;
  metrics_t *metrics;
  log_t *log;
  runner_t *runner;
  connect_t *connect;
  datadir_t datadir;
  worker_state_t state;
  int exit_status;
  int port; /* the first listener's bound port */
} worker_t;

/* Starts the runner and the jobs of the config, the log (__runnel_jobs)
 * and job_files. Returns 0, or -1 after logging what failed. */
int worker_jobs_start(worker_t *w, char **job_files);
/* Stops every job (final commits). Safe when not started. */
void worker_jobs_stop(worker_t *w);

void worker_jobs_list(void *opaque, const http_request_t *req, const http_params_t *params,
                      http_response_t *res);
void worker_jobs_create(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res);
void worker_jobs_describe(void *opaque, const http_request_t *req, const http_params_t *params,
                          http_response_t *res);
void worker_jobs_status(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res);
void worker_jobs_delete(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res);
void worker_jobs_query_key(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res);
void worker_jobs_query_range(void *opaque, const http_request_t *req,
                             const http_params_t *params, http_response_t *res);

/* Starts the connector framework (after the REST listener is up: port is
 * the first listener's, for worker_id) and applies the connector files.
 * Returns 0, or -1 after logging what failed. */
int worker_connect_start(worker_t *w, char **files, int port);
/* Stops every connector task (final commits). Safe when not started. */
void worker_connect_stop(worker_t *w);

#define WORKER_CONNECT_ROUTE_FNS(X)                                                    \
  X(list) X(create) X(info) X(delete) X(get_config) X(put_config) X(patch_config)      \
  X(status) X(restart) X(pause) X(resume) X(stop_route) X(tasks) X(task_status)        \
  X(task_restart) X(get_offsets) X(patch_offsets) X(delete_offsets) X(get_topics)     \
  X(reset_topics) X(plugins)                                                           \
  X(plugin_config) X(validate)
#define WORKER_CONNECT_DECL(fn)                                                         \
  void worker_connect_##fn(void *opaque, const http_request_t *req,                     \
                           const http_params_t *params, http_response_t *res);
WORKER_CONNECT_ROUTE_FNS(WORKER_CONNECT_DECL)
#undef WORKER_CONNECT_DECL

#define WORKER_CONNECT_ROUTES                                                            \
  {"GET", "/connectors", worker_connect_list},                                           \
  {"POST", "/connectors", worker_connect_create},                                        \
  {"GET", "/connectors/{name}", worker_connect_info},                                    \
  {"DELETE", "/connectors/{name}", worker_connect_delete},                               \
  {"GET", "/connectors/{name}/config", worker_connect_get_config},                       \
  {"PUT", "/connectors/{name}/config", worker_connect_put_config},                       \
  {"PATCH", "/connectors/{name}/config", worker_connect_patch_config},                   \
  {"GET", "/connectors/{name}/status", worker_connect_status},                           \
  {"POST", "/connectors/{name}/restart", worker_connect_restart},                        \
  {"PUT", "/connectors/{name}/pause", worker_connect_pause},                             \
  {"PUT", "/connectors/{name}/resume", worker_connect_resume},                           \
  {"PUT", "/connectors/{name}/stop", worker_connect_stop_route},                         \
  {"GET", "/connectors/{name}/tasks", worker_connect_tasks},                             \
  {"GET", "/connectors/{name}/tasks/{id}/status", worker_connect_task_status},           \
  {"POST", "/connectors/{name}/tasks/{id}/restart", worker_connect_task_restart},        \
  {"GET", "/connectors/{name}/offsets", worker_connect_get_offsets},                     \
  {"PATCH", "/connectors/{name}/offsets", worker_connect_patch_offsets},                 \
  {"DELETE", "/connectors/{name}/offsets", worker_connect_delete_offsets},               \
  {"GET", "/connectors/{name}/topics", worker_connect_get_topics},                       \
  {"PUT", "/connectors/{name}/topics/reset", worker_connect_reset_topics},               \
  {"GET", "/connector-plugins", worker_connect_plugins},                                 \
  {"GET", "/connector-plugins/{plugin}/config", worker_connect_plugin_config},           \
  {"PUT", "/connector-plugins/{plugin}/config/validate", worker_connect_validate}

#define WORKER_JOB_ROUTES                                                \
  {"GET", "/jobs", worker_jobs_list},                                    \
  {"POST", "/jobs", worker_jobs_create},                                 \
  {"GET", "/jobs/{name}", worker_jobs_describe},                         \
  {"DELETE", "/jobs/{name}", worker_jobs_delete},                        \
  {"GET", "/jobs/{name}/status", worker_jobs_status},                    \
  {"GET", "/jobs/{name}/stores/{store}/keys/{key}", worker_jobs_query_key}, \
  {"GET", "/jobs/{name}/stores/{store}", worker_jobs_query_range}

#endif
