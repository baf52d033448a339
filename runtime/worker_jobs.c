/*
 * worker_jobs.c: the worker's jobs: starting the runner with the jobs of
 * the config and of the log, and the REST routes:
 *
 *   GET    /jobs                                   ["wordcount", ...]
 *   POST   /jobs  {"name": .., "script": ..}       201 + description
 *   GET    /jobs/{name}                            topology description
 *   GET    /jobs/{name}/status                     tasks, threads, lag, state
 *   DELETE /jobs/{name}                            204
 *   GET    /jobs/{name}/stores/{store}/keys/{key}  {"key": .., "value": ..}
 *   GET    /jobs/{name}/stores/{store}?from=&to=&limit=   [{"key":..,"value":..}]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "logger.h"
#include "worker_int.h"

static int worker_jobs_load_file(worker_t *w, const char *path, const luavm_options_t *vmo) {
  topo_job_t *job;
  char err[4096];
  int rc = topo_job_load_file(path, vmo, &job, err, sizeof err);
  if (rc != 0) {
    logger_error("job", "%s", err);
    return -1;
  }
  rc = runner_add_job(w->runner, job, false, err, sizeof err);
  if (rc != 0) {
    logger_error("job", "%s: %s", path, err);
    topo_job_free(job);
    return -1;
  }
  return 0;
}

int worker_jobs_start(worker_t *w, char **job_files) {
  const worker_config_t *cfg = w->cfg;
  char state_dir[4200], err[2048];
  runner_options_t ro = {
      .log = w->log,
      .state_dir = datadir_sub(&w->datadir, "state", state_dir, sizeof state_dir),
      .threads = (int)(cfg->stream_threads > 0 ? cfg->stream_threads : sysconf(_SC_NPROCESSORS_ONLN)),
      .commit_interval_ms = cfg->commit_interval_ms,
      .cache_bytes = (size_t)cfg->cache_max_bytes,
      .metrics = w->metrics,
  };
  if (ro.threads < 1) ro.threads = 1;
  worker_config_lua_options(cfg, &ro.vm);
  if (runner_new(&ro, &w->runner, err, sizeof err) != 0) {
    logger_error("job", "cannot start the stream threads: %s", err);
    return -1;
  }
  logger_info("job", "%d stream threads", ro.threads);
  if (runner_restore_jobs(w->runner, err, sizeof err) != 0)
    logger_warn("job", "some submitted jobs did not restart: %s", err);
  for (char **f = cfg->jobs; f && *f; f++)
    if (worker_jobs_load_file(w, *f, &ro.vm) != 0) return -1;
  for (char **f = job_files; f && *f; f++)
    if (worker_jobs_load_file(w, *f, &ro.vm) != 0) return -1;
  return 0;
}

void worker_jobs_stop(worker_t *w) {
  if (!w->runner) return;
  runner_free(w->runner);
  w->runner = NULL;
}

/* Takes a malloc'd JSON body (or NULL with status) into res. */
static void worker_jobs_reply(http_response_t *res, char *json, int status, const char *what) {
  if (json) {
    http_response_json(res, status, json, strlen(json));
  } else if (status == 404) {
    http_response_error(res, 404, "%s", what);
  } else {
    http_response_error(res, 500, "internal error: %s", what);
  }
}

void worker_jobs_list(void *opaque, const http_request_t *req, const http_params_t *params,
                      http_response_t *res) {
  (void)req, (void)params;
  worker_t *w = opaque;
  worker_jobs_reply(res, runner_jobs_json(w->runner), 200, "out of memory");
}

void worker_jobs_create(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res) {
  (void)params;
  worker_t *w = opaque;
  char ebuf[256];
  yajl_val body = yajl_tree_parse(req->body, ebuf, sizeof ebuf);
  if (!body || !YAJL_IS_OBJECT(body)) {
    char *nl = strchr(ebuf, '\n');
    if (nl) *nl = '\0';
    http_response_error(res, 400, "the body must be a JSON object {\"name\": ..., \"script\": "
                        "...}%s%s", body ? "" : ": ", body ? "" : ebuf);
    yajl_tree_free(body);
    return;
  }
  const char *pn[] = {"name", NULL}, *ps[] = {"script", NULL};
  yajl_val name = yajl_tree_get(body, pn, yajl_t_any);
  yajl_val script = yajl_tree_get(body, ps, yajl_t_any);
  if (!script || !YAJL_IS_STRING(script)) {
    http_response_error(res, 400, "script: expected the job's Lua source as a string");
    yajl_tree_free(body);
    return;
  }
  if (name && !YAJL_IS_STRING(name)) {
    http_response_error(res, 400, "name: expected a string");
    yajl_tree_free(body);
    return;
  }
  char chunk[300];
  snprintf(chunk, sizeof chunk, "=%s.lua", name ? name->u.string : "job");
  topo_job_t *job;
  luavm_options_t vmo;
  worker_config_lua_options(w->cfg, &vmo);
  char err[4096];
  const char *src = script->u.string;
  if (topo_job_load(chunk, src, strlen(src), &vmo, &job, err, sizeof err) != 0) {
    http_response_error(res, 400, "%s", err);
    yajl_tree_free(body);
    return;
  }
  if (name && strcmp(name->u.string, job->name) != 0) {
    http_response_error(res, 400, "name: \"%s\" does not match the job's name \"%s\" "
                        "(runnel.job(...) in the script)", name->u.string, job->name);
    topo_job_free(job);
    yajl_tree_free(body);
    return;
  }
  yajl_tree_free(body);
  char *desc = strdup(job->describe_json);
  int rc = runner_add_job(w->runner, job, true, err, sizeof err);
  if (rc != 0) {
    topo_job_free(job);
    free(desc);
    http_response_error(res, rc == -EEXIST ? 409 : 400, "%s", err);
    return;
  }
  worker_jobs_reply(res, desc, 201, "out of memory");
}

/* A per-job view (description or status) of params->values[0]. */
static void worker_jobs_view(worker_t *w, const http_params_t *params, http_response_t *res,
                             char *(*view)(runner_t *, const char *, int *)) {
  int status;
  char *json = view(w->runner, params->values[0], &status);
  char what[400];
  snprintf(what, sizeof what, "no job named %s", params->values[0]);
  worker_jobs_reply(res, json, status, what);
}

void worker_jobs_describe(void *opaque, const http_request_t *req, const http_params_t *params,
                          http_response_t *res) {
  (void)req;
  worker_jobs_view(opaque, params, res, runner_describe_json);
}

void worker_jobs_status(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res) {
  (void)req;
  worker_jobs_view(opaque, params, res, runner_status_json);
}

void worker_jobs_delete(void *opaque, const http_request_t *req, const http_params_t *params,
                        http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  char err[512];
  int rc = runner_remove_job(w->runner, params->values[0], true, err, sizeof err);
  if (rc == -ENOENT) {
    http_response_error(res, 404, "%s", err);
    return;
  }
  if (rc != 0) {
    http_response_error(res, 500, "%s", err);
    return;
  }
  res->status = 204;
  res->body = strdup("");
  res->body_len = 0;
}

void worker_jobs_query_key(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  int status;
  char err[512] = "not found";
  char *json = runner_query_key_json(w->runner, params->values[0], params->values[1],
                                     params->values[2], &status, err, sizeof err);
  worker_jobs_reply(res, json, status, err);
}

void worker_jobs_query_range(void *opaque, const http_request_t *req,
                             const http_params_t *params, http_response_t *res) {
  worker_t *w = opaque;
  char from[1024], to[1024], limit_s[32];
  int hf = http_query_get(req->query, "from", from, sizeof from);
  int ht = http_query_get(req->query, "to", to, sizeof to);
  int hl = http_query_get(req->query, "limit", limit_s, sizeof limit_s);
  if (hf < 0 || ht < 0 || hl < 0) {
    http_response_error(res, 400, "malformed query string: %s", req->query);
    return;
  }
  long long limit = 0;
  if (hl == 1) {
    char *end;
    limit = strtoll(limit_s, &end, 10);
    if (*end || limit < 0) {
      http_response_error(res, 400, "limit: expected an integer >= 0, got \"%s\"", limit_s);
      return;
    }
  }
  int status;
  char err[512] = "not found";
  char *json = runner_query_range_json(w->runner, params->values[0], params->values[1],
                                       hf == 1 ? from : NULL, ht == 1 ? to : NULL,
                                       (size_t)limit, &status, err, sizeof err);
  worker_jobs_reply(res, json, status, err);
}
