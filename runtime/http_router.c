/*
 * http_router.c: matches request paths against route patterns such as
 * "/connectors/{name}/tasks/{id}/status" (see http.h).
 */
#include "http.h"

#include <string.h>

/* Matches path against pattern segment by segment; {x} matches one
 * non-empty segment and is captured. Returns 1 on a match. */
static int http_match(const char *pattern, const char *path, http_params_t *params) {
  params->count = 0;
  const char *p = pattern, *s = path;
  while (*p && *s) {
    if (*p == '{') {
      const char *pe = strchr(p, '}');
      const char *se = strchr(s, '/');
      size_t n = se ? (size_t)(se - s) : strlen(s);
      if (!pe || n == 0 || n >= sizeof params->values[0] || params->count >= HTTP_MAX_PARAMS)
        return 0;
      memcpy(params->values[params->count], s, n);
      params->values[params->count][n] = '\0';
      params->count++;
      p = pe + 1;
      s += n;
    } else if (*p == *s) {
      p++;
      s++;
    } else {
      return 0;
    }
  }
  /* A trailing slash is tolerated, as Kafka Connect's Jersey does. */
  if (*p == '\0' && s[0] == '/' && s[1] == '\0') s++;
  return *p == '\0' && *s == '\0';
}

void http_route(const http_route_t *routes, void *opaque, const http_request_t *req,
                http_response_t *res) {
  http_params_t params;
  int path_matched = 0;
  for (const http_route_t *r = routes; r->method; r++) {
    if (!http_match(r->pattern, req->path, &params)) continue;
    path_matched = 1;
    if (strcmp(r->method, req->method) == 0) {
      r->fn(opaque, req, &params, res);
      return;
    }
  }
  if (path_matched)
    http_response_error(res, 405, "HTTP method %s is not supported for %s", req->method,
                        req->path);
  else
    http_response_error(res, 404, "Unknown path: %s", req->path);
}
