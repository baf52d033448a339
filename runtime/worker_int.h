/*
 * worker_int.h: the worker's state, shared by worker.c (lifetime, built-in
 * routes) and worker_jobs.c (the jobs and their REST routes).
 */
#ifndef RUNNEL_WORKER_INT_H
#define RUNNEL_WORKER_INT_H

#include <uv.h>

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
  datadir_t datadir;
  worker_state_t state;
  int exit_status;
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

#define WORKER_JOB_ROUTES                                                \
  {"GET", "/jobs", worker_jobs_list},                                    \
  {"POST", "/jobs", worker_jobs_create},                                 \
  {"GET", "/jobs/{name}", worker_jobs_describe},                         \
  {"DELETE", "/jobs/{name}", worker_jobs_delete},                        \
  {"GET", "/jobs/{name}/status", worker_jobs_status},                    \
  {"GET", "/jobs/{name}/stores/{store}/keys/{key}", worker_jobs_query_key}, \
  {"GET", "/jobs/{name}/stores/{store}", worker_jobs_query_range}

#endif
