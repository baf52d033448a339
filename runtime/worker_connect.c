/*
 * worker_connect.c: the worker's connectors: the framework's start and
 * stop, connector files given on the command line (as connect-standalone's
 * `connector1.properties ...`, here JSON {"name": .., "config": {..}}),
 * and Kafka Connect's REST API, with its paths, methods, status codes and
 * JSON shapes:
 *
 *   GET    /connectors[?expand=status&expand=info]    names / {name: {status, info}}
 *   POST   /connectors                                201 info; 409 exists; 400 bad config
 *   GET    /connectors/{name}                         info; 404
 *   DELETE /connectors/{name}                         204
 *   GET    /connectors/{name}/config                  the config map
 *   PUT    /connectors/{name}/config                  201 created / 200 updated, info
 *   PATCH  /connectors/{name}/config                  200 info (null removes a key)
 *   GET    /connectors/{name}/status                  status
 *   POST   /connectors/{name}/restart?includeTasks=&onlyFailed=   204, or 202 + status
 *   PUT    /connectors/{name}/pause|resume|stop       202
 *   GET    /connectors/{name}/tasks                   [{"id": {..}, "config": {..}}]
 *   GET    /connectors/{name}/tasks/{id}/status       task status
 *   POST   /connectors/{name}/tasks/{id}/restart      204
 *   GET    /connectors/{name}/offsets                 {"offsets": [..]}
 *   PATCH  /connectors/{name}/offsets                 200 message; 400 unless STOPPED
 *   DELETE /connectors/{name}/offsets                 200 message; 400 unless STOPPED
 *   GET    /connectors/{name}/topics                  {name: {"topics": [..]}}; 403 untracked
 *   PUT    /connectors/{name}/topics/reset            202; 403 untracked or reset disabled
 *   GET    /connector-plugins[?connectorsOnly=false]  [{"class", "type", "version"}]
 *   GET    /connector-plugins/{plugin}/config         [definition, ..]
 *   PUT    /connector-plugins/{plugin}/config/validate   ConfigInfos
 *
 * Every handler runs on the loop thread and returns at once: the herder
 * thread does the slow parts (see connect.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "connect_int.h"
#include "connect_lua_transform.h"
#include "logger.h"
#include "worker_int.h"

/* ---- start and stop --------------------------------------------------------- */

int worker_connect_check_files(char **files, char *err, size_t errlen) {
  connect_lua_transform_register(); /* so that transforms.*.type=lua validates */
  for (char **f = files; f && *f; f++) {
    FILE *fp = fopen(*f, "rb");
    if (!fp) {
      snprintf(err, errlen, "%s: cannot read: %s", *f, strerror(errno));
      return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char buf[8192];
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
      if (len + n + 1 > cap) {
        cap = (len + n + 1) * 2;
        char *g = realloc(text, cap);
        if (!g) break;
        text = g;
      }
      memcpy(text + len, buf, n);
      len += n;
    }
    fclose(fp);
    char *name = NULL;
    conn_config_t cfg;
    char e[4096];
    int rc = connect_parse_request(*f, text ? text : "", len, &name, &cfg, err, errlen);
    if (rc == 0) {
      if (connect_validate(NULL, name, &cfg, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s: connector %s: %s", *f, name, e);
        rc = -1;
      }
      conn_config_free(&cfg);
    }
    free(text);
    free(name);
    if (rc != 0) return -1;
  }
  return 0;
}

int worker_connect_start(worker_t *w, char **files, int port) {
  char worker_id[300], err[4096];
  worker_listener_t l[1];
  if (worker_listeners_parse(w->cfg->listeners, l, 1) < 1) snprintf(l[0].host, sizeof l[0].host, "localhost");
  snprintf(worker_id, sizeof worker_id, "%s:%d", l[0].host, port);
  connect_options_t o = {
      .log = w->log,
      .metrics = w->metrics,
      .worker_id = worker_id,
      .config_topic = w->cfg->config_storage_topic,
      .offset_topic = w->cfg->offset_storage_topic,
      .status_topic = w->cfg->status_storage_topic,
      .offset_flush_interval_ms = w->cfg->offset_flush_interval_ms,
      .key_converter = w->cfg->key_converter,
      .value_converter = w->cfg->value_converter,
      .topic_tracking_disable = !w->cfg->topic_tracking_enable,
  };
  if (connect_new(&o, &w->connect, err, sizeof err) != 0) {
    logger_error("connect", "cannot start the connector framework: %s", err);
    return -1;
  }
  /* Files replace the stored config of the same name (the file is what the
   * operator means now); a stored paused or stopped state is kept. */
  for (char **f = files; f && *f; f++) {
    FILE *fp = fopen(*f, "rb");
    char *text = NULL;
    size_t len = 0;
    if (fp) {
      fseek(fp, 0, SEEK_END);
      long sz = ftell(fp);
      fseek(fp, 0, SEEK_SET);
      text = malloc(sz > 0 ? (size_t)sz + 1 : 1);
      if (text) len = fread(text, 1, sz > 0 ? (size_t)sz : 0, fp);
      fclose(fp);
    }
    char *name = NULL;
    conn_config_t cfg;
    bool created;
    int rc = connect_parse_request(*f, text ? text : "", len, &name, &cfg, err, sizeof err);
    if (rc == 0) {
      rc = connect_put(w->connect, name, &cfg, false, CONNECT_TARGET_STARTED, &created, err,
                       sizeof err);
      conn_config_free(&cfg);
    }
    free(text);
    if (rc != 0) {
      logger_error("connect", "%s: %s", *f, err);
      free(name);
      return -1;
    }
    logger_info("connect", "%s: connector %s %s", *f, name, created ? "created" : "updated");
    free(name);
  }
  return 0;
}

void worker_connect_stop(worker_t *w) {
  if (!w->connect) return;
  connect_free(w->connect);
  w->connect = NULL;
}

/* ---- helpers ---------------------------------------------------------------- */

static void wc_not_found(http_response_t *res, const char *name) {
  http_response_error(res, 404, "Connector %s not found", name);
}

static void wc_error(http_response_t *res, int rc, const char *name, const char *err) {
  switch (rc) {
  case -ENOENT: wc_not_found(res, name); break;
  case -EINVAL: http_response_error(res, 400, "%s", err); break;
  case -EBUSY: http_response_error(res, 400, "%s", err); break; /* Kafka's BadRequestException */
  case -EEXIST: http_response_error(res, 409, "%s", err); break;
  default: http_response_error(res, 500, "%s", err && *err ? err : "internal error"); break;
  }
}

static void wc_empty(http_response_t *res, int status) {
  http_response_json(res, status, strdup(""), 0);
}

/* Runs gen into a fresh generator and answers with it (status), or 404. */
static void wc_gen(http_response_t *res, int status, const char *name, int rc, yajl_gen g) {
  if (rc != 0) {
    yajl_gen_free(g);
    wc_not_found(res, name);
    return;
  }
  http_response_gen(res, status, g);
}

/* Calls fn(value) for each `key=value` of the query (decoded). */
static void wc_query_each(const char *query, const char *key,
                          void (*fn)(void *arg, const char *value), void *arg) {
  size_t kl = strlen(key);
  for (const char *p = query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
      char v[256];
      if (n - kl - 1 < sizeof v && http_percent_decode(p + kl + 1, n - kl - 1, v, 1) >= 0) fn(arg, v);
    }
    p = amp ? amp + 1 : NULL;
  }
}

/* A boolean query parameter: 1 true, 0 false/absent, -1 malformed. */
static int wc_query_bool(const char *query, const char *key) {
  char v[16];
  int rc = http_query_get(query, key, v, sizeof v);
  if (rc <= 0) return rc;
  if (!strcmp(v, "true")) return 1;
  if (!strcmp(v, "false")) return 0;
  return -1;
}

/* ---- /connectors ---------------------------------------------------------- */

typedef struct {
  bool status, info, bad;
} wc_expand_t;

static void wc_expand(void *arg, const char *v) {
  wc_expand_t *e = arg;
  if (!strcmp(v, "status")) e->status = true;
  else if (!strcmp(v, "info")) e->info = true;
  else e->bad = true;
}

void worker_connect_list(void *opaque, const http_request_t *req, const http_params_t *params,
                         http_response_t *res) {
  (void)params;
  worker_t *w = opaque;
  wc_expand_t e = {0};
  wc_query_each(req->query, "expand", wc_expand, &e);
  char **names = connect_names(w->connect);
  yajl_gen g = yajl_gen_alloc(NULL);
  if (e.status || e.info) yajl_gen_map_open(g);
  else yajl_gen_array_open(g);
  for (char **n = names; n && *n; n++) {
    yajl_gen_string(g, (const unsigned char *)*n, strlen(*n));
    if (!e.status && !e.info) continue;
    yajl_gen_map_open(g);
    if (e.info) {
      yajl_gen_string(g, (const unsigned char *)"info", 4);
      if (connect_gen_info(w->connect, *n, g) != 0) yajl_gen_null(g);
    }
    if (e.status) {
      yajl_gen_string(g, (const unsigned char *)"status", 6);
      if (connect_gen_status(w->connect, *n, g) != 0) yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
  }
  if (e.status || e.info) yajl_gen_map_close(g);
  else yajl_gen_array_close(g);
  log_names_free(names);
  http_response_gen(res, 200, g);
}

void worker_connect_create(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res) {
  (void)params;
  worker_t *w = opaque;
  char err[4096];
  char *name = NULL;
  conn_config_t cfg;
  if (connect_parse_request("request body", req->body, req->body_len, &name, &cfg, err,
                            sizeof err) != 0) {
    http_response_error(res, 400, "%s", err);
    return;
  }
  connect_target_t initial = CONNECT_TARGET_STARTED;
  yajl_val root = conn_json_parse(NULL, req->body, req->body_len, NULL, 0);
  const char *is = conn_json_scalar(conn_json_member(root, "initial_state"));
  int rc = 0;
  if (is) { /* KIP-980 */
    if (!strcmp(is, "RUNNING")) initial = CONNECT_TARGET_STARTED;
    else if (!strcmp(is, "PAUSED")) initial = CONNECT_TARGET_PAUSED;
    else if (!strcmp(is, "STOPPED")) initial = CONNECT_TARGET_STOPPED;
    else {
      snprintf(err, sizeof err, "initial_state: expected RUNNING, PAUSED or STOPPED, got %s", is);
      rc = -EINVAL;
    }
  }
  yajl_tree_free(root);
  bool created;
  if (rc == 0) rc = connect_put(w->connect, name, &cfg, true, initial, &created, err, sizeof err);
  if (rc != 0) {
    wc_error(res, rc, name, err);
  } else {
    yajl_gen g = yajl_gen_alloc(NULL);
    wc_gen(res, 201, name, connect_gen_info(w->connect, name, g), g);
    if (res->status == 201) http_response_location(res, "/connectors/", name);
  }
  conn_config_free(&cfg);
  free(name);
}

void worker_connect_info(void *opaque, const http_request_t *req, const http_params_t *params,
                         http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  yajl_gen g = yajl_gen_alloc(NULL);
  wc_gen(res, 200, params->values[0], connect_gen_info(w->connect, params->values[0], g), g);
}

void worker_connect_delete(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  int rc = connect_delete(w->connect, params->values[0]);
  if (rc != 0) wc_error(res, rc, params->values[0], "cannot record the deletion");
  else wc_empty(res, 204);
}

void worker_connect_get_config(void *opaque, const http_request_t *req,
                               const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  conn_config_t cfg;
  if (connect_config_get(w->connect, params->values[0], &cfg) != 0) {
    conn_config_free(&cfg);
    wc_not_found(res, params->values[0]);
    return;
  }
  char *json = conn_config_to_json(&cfg);
  conn_config_free(&cfg);
  if (json) http_response_json(res, 200, json, strlen(json));
  else http_response_error(res, 500, "out of memory");
}

/* PUT (replace) and PATCH (merge) of /connectors/{name}/config. */
static void wc_put_config(worker_t *w, const http_request_t *req, const char *name, bool patch,
                          http_response_t *res) {
  char err[4096];
  yajl_val body = conn_json_parse("request body", req->body, req->body_len, err, sizeof err);
  if (!body || !YAJL_IS_OBJECT(body)) {
    if (body) snprintf(err, sizeof err, "request body: expected a JSON object of connector "
                       "settings");
    http_response_error(res, 400, "%s", err);
    yajl_tree_free(body);
    return;
  }
  conn_config_t cfg;
  int rc = 0;
  if (patch) {
    if (connect_config_get(w->connect, name, &cfg) != 0) rc = -ENOENT;
    for (size_t i = 0; rc == 0 && i < body->u.object.len; i++) {
      yajl_val v = body->u.object.values[i];
      const char *k = body->u.object.keys[i];
      if (YAJL_IS_NULL(v)) conn_config_unset(&cfg, k);
      else if (!conn_json_scalar(v)) {
        snprintf(err, sizeof err, "request body: \"%s\": expected a string, number or boolean", k);
        rc = -EINVAL;
      } else {
        conn_config_set(&cfg, k, conn_json_scalar(v));
      }
    }
  } else {
    conn_config_init(&cfg);
    if (conn_config_from_tree(&cfg, "request body", body, err, sizeof err) != 0) rc = -EINVAL;
  }
  yajl_tree_free(body);
  const char *cn = conn_config_get(&cfg, "name");
  if (rc == 0 && cn && strcmp(cn, name) != 0) {
    snprintf(err, sizeof err, "Connector name configuration (%s) doesn't match connector name "
             "in the URL (%s)", cn, name);
    rc = -EINVAL;
  }
  if (rc == 0) rc = conn_config_set(&cfg, "name", name);
  bool created = false;
  if (rc == 0)
    rc = connect_put(w->connect, name, &cfg, false, CONNECT_TARGET_STARTED, &created, err,
                     sizeof err);
  conn_config_free(&cfg);
  if (rc != 0) {
    wc_error(res, rc, name, err);
    return;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  wc_gen(res, created ? 201 : 200, name, connect_gen_info(w->connect, name, g), g);
  if (res->status == 201) http_response_location(res, "/connectors/", name);
}

void worker_connect_put_config(void *opaque, const http_request_t *req,
                               const http_params_t *params, http_response_t *res) {
  wc_put_config(opaque, req, params->values[0], false, res);
}

void worker_connect_patch_config(void *opaque, const http_request_t *req,
                                 const http_params_t *params, http_response_t *res) {
  wc_put_config(opaque, req, params->values[0], true, res);
}

void worker_connect_status(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  yajl_gen g = yajl_gen_alloc(NULL);
  wc_gen(res, 200, params->values[0], connect_gen_status(w->connect, params->values[0], g), g);
}

void worker_connect_restart(void *opaque, const http_request_t *req, const http_params_t *params,
                            http_response_t *res) {
  worker_t *w = opaque;
  int include = wc_query_bool(req->query, "includeTasks");
  int only = wc_query_bool(req->query, "onlyFailed");
  if (include < 0 || only < 0) {
    http_response_error(res, 400, "includeTasks and onlyFailed take true or false");
    return;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  int rc = connect_restart(w->connect, params->values[0], include, only, g);
  if (rc != 0) {
    yajl_gen_free(g);
    wc_error(res, rc, params->values[0], "");
  } else if (!include && !only) {
    yajl_gen_free(g);
    wc_empty(res, 204);
  } else {
    http_response_gen(res, 202, g);
  }
}

static void wc_target(worker_t *w, const char *name, connect_target_t t, http_response_t *res) {
  int rc = connect_set_target(w->connect, name, t);
  if (rc != 0) wc_error(res, rc, name, "cannot record the new state");
  else wc_empty(res, 202);
}

void worker_connect_pause(void *opaque, const http_request_t *req, const http_params_t *params,
                          http_response_t *res) {
  (void)req;
  wc_target(opaque, params->values[0], CONNECT_TARGET_PAUSED, res);
}

void worker_connect_resume(void *opaque, const http_request_t *req, const http_params_t *params,
                           http_response_t *res) {
  (void)req;
  wc_target(opaque, params->values[0], CONNECT_TARGET_STARTED, res);
}

void worker_connect_stop_route(void *opaque, const http_request_t *req,
                               const http_params_t *params, http_response_t *res) {
  (void)req;
  wc_target(opaque, params->values[0], CONNECT_TARGET_STOPPED, res);
}

void worker_connect_tasks(void *opaque, const http_request_t *req, const http_params_t *params,
                          http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  yajl_gen g = yajl_gen_alloc(NULL);
  wc_gen(res, 200, params->values[0], connect_gen_tasks(w->connect, params->values[0], g), g);
}

/* The task id of a path, or -1 when it is not a number. */
static int wc_task_id(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return (*s && !*end && v >= 0 && v < 1000000) ? (int)v : -1;
}

void worker_connect_task_status(void *opaque, const http_request_t *req,
                                const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  int id = wc_task_id(params->values[1]);
  yajl_gen g = yajl_gen_alloc(NULL);
  if (id < 0 || connect_gen_task_status(w->connect, params->values[0], id, g) != 0) {
    yajl_gen_free(g);
    conn_config_t cfg;
    if (connect_config_get(w->connect, params->values[0], &cfg) != 0)
      wc_not_found(res, params->values[0]);
    else
      http_response_error(res, 404, "No status found for task %s-%s", params->values[0],
                          params->values[1]);
    conn_config_free(&cfg);
    return;
  }
  http_response_gen(res, 200, g);
}

void worker_connect_task_restart(void *opaque, const http_request_t *req,
                                 const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  int id = wc_task_id(params->values[1]);
  if (id >= 0 && connect_restart_task(w->connect, params->values[0], id) == 0) {
    wc_empty(res, 204);
    return;
  }
  conn_config_t cfg;
  if (connect_config_get(w->connect, params->values[0], &cfg) != 0)
    wc_not_found(res, params->values[0]);
  else
    http_response_error(res, 404, "Task %s-%s not found", params->values[0], params->values[1]);
  conn_config_free(&cfg);
}

void worker_connect_get_offsets(void *opaque, const http_request_t *req,
                                const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  yajl_gen g = yajl_gen_alloc(NULL);
  char err[1024] = "";
  int rc = connect_gen_offsets(w->connect, params->values[0], g, err, sizeof err);
  if (rc == -EIO) {
    yajl_gen_free(g);
    http_response_error(res, 500, "%s", err);
    return;
  }
  wc_gen(res, 200, params->values[0], rc, g);
}

static void wc_offsets_change(worker_t *w, const http_request_t *req, const char *name,
                              bool reset, http_response_t *res) {
  char err[2048] = "";
  int rc = connect_offsets_alter(w->connect, name, req->body, req->body_len, reset, err,
                                 sizeof err);
  if (rc != 0) {
    wc_error(res, rc, name, err);
    return;
  }
  /* Kafka's two answers: a connector that keeps its offsets itself (and
   * applied the change, conn_plugin_t.read_offsets/alter_offsets) gets the
   * short one. */
  conn_config_t cfg;
  bool own = false;
  if (connect_config_get(w->connect, name, &cfg) == 0) {
    const conn_plugin_t *p = conn_plugin_find(conn_config_get(&cfg, "connector.class"));
    own = p && p->read_offsets && p->alter_offsets;
  }
  conn_config_free(&cfg);
  yajl_gen g = yajl_gen_alloc(NULL);
  char msg[400];
  if (own)
    snprintf(msg, sizeof msg, "The offsets for this connector have been %s successfully",
             reset ? "reset" : "altered");
  else
    snprintf(msg, sizeof msg, "The Connect framework-managed offsets for this connector have been "
           "%s successfully. However, if this connector manages offsets externally, they will "
           "need to be manually %s in the system that the connector uses.",
           reset ? "reset" : "altered", reset ? "reset" : "altered");
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"message", 7);
  yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
  yajl_gen_map_close(g);
  http_response_gen(res, 200, g);
}

void worker_connect_patch_offsets(void *opaque, const http_request_t *req,
                                  const http_params_t *params, http_response_t *res) {
  wc_offsets_change(opaque, req, params->values[0], false, res);
}

void worker_connect_delete_offsets(void *opaque, const http_request_t *req,
                                   const http_params_t *params, http_response_t *res) {
  wc_offsets_change(opaque, req, params->values[0], true, res);
}

/* KIP-558, with Kafka's answers: 403 when topic.tracking.enable (or, for
 * a reset, topic.tracking.allow.reset) is false; no 404 for a name that
 * has no connector (an empty list, a reset of nothing). */
void worker_connect_get_topics(void *opaque, const http_request_t *req,
                               const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  if (!w->cfg->topic_tracking_enable) {
    http_response_error(res, 403, "Topic tracking is disabled.");
    return;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  if (connect_gen_topics(w->connect, params->values[0], g) != 0) {
    if (g) yajl_gen_free(g);
    http_response_error(res, 500, "out of memory");
    return;
  }
  http_response_gen(res, 200, g);
}

void worker_connect_reset_topics(void *opaque, const http_request_t *req,
                                 const http_params_t *params, http_response_t *res) {
  (void)req;
  worker_t *w = opaque;
  if (!w->cfg->topic_tracking_enable || !w->cfg->topic_tracking_allow_reset) {
    http_response_error(res, 403, "Topic tracking %sis disabled.",
                        w->cfg->topic_tracking_enable ? "reset " : "");
    return;
  }
  if (connect_reset_topics(w->connect, params->values[0]) != 0) {
    http_response_error(res, 500, "cannot reset the topics of %s: the status topic refused "
                        "the change (see the worker's log)", params->values[0]);
    return;
  }
  wc_empty(res, 202);
}

/* ---- /connector-plugins -------------------------------------------------- */

void worker_connect_plugins(void *opaque, const http_request_t *req, const http_params_t *params,
                            http_response_t *res) {
  (void)opaque, (void)params;
  int only = wc_query_bool(req->query, "connectorsOnly");
  if (only < 0) {
    http_response_error(res, 400, "connectorsOnly takes true or false");
    return;
  }
  char v[8];
  if (http_query_get(req->query, "connectorsOnly", v, sizeof v) <= 0) only = 1; /* Kafka's default */
  yajl_gen g = yajl_gen_alloc(NULL);
  connect_gen_plugins(g, only == 1);
  http_response_gen(res, 200, g);
}

void worker_connect_plugin_config(void *opaque, const http_request_t *req,
                                  const http_params_t *params, http_response_t *res) {
  (void)opaque, (void)req;
  yajl_gen g = yajl_gen_alloc(NULL);
  if (connect_gen_plugin_config(params->values[0], g) != 0) {
    yajl_gen_free(g);
    http_response_error(res, 404, "Unknown plugin %s.", params->values[0]);
    return;
  }
  http_response_gen(res, 200, g);
}

void worker_connect_validate(void *opaque, const http_request_t *req,
                             const http_params_t *params, http_response_t *res) {
  worker_t *w = opaque;
  const char *plugin = params->values[0];
  char err[2048];
  yajl_val body = conn_json_parse("request body", req->body, req->body_len, err, sizeof err);
  conn_config_t cfg;
  conn_config_init(&cfg);
  if (!body || !YAJL_IS_OBJECT(body) ||
      conn_config_from_tree(&cfg, "request body", body, err, sizeof err) != 0) {
    if (body && !YAJL_IS_OBJECT(body))
      snprintf(err, sizeof err, "request body: expected a JSON object of connector settings");
    http_response_error(res, 400, "%s", err);
    yajl_tree_free(body);
    conn_config_free(&cfg);
    return;
  }
  yajl_tree_free(body);
  const char *cls = conn_config_get(&cfg, "connector.class");
  const conn_plugin_t *p = conn_plugin_find(plugin);
  if (cls && (!p || conn_plugin_find(cls) != p)) {
    http_response_error(res, 400, "Included connector type %s does not match request type %s",
                        cls, plugin);
  } else if (!p) {
    http_response_error(res, 400, "Failed to find any class that implements Connector and which "
                        "name matches %s", plugin);
  } else {
    if (!cls) conn_config_set(&cfg, "connector.class", plugin);
    yajl_gen g = yajl_gen_alloc(NULL);
    connect_gen_validate(w->connect, plugin, &cfg, g);
    http_response_gen(res, 200, g);
  }
  conn_config_free(&cfg);
}
