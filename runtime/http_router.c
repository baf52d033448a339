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
      if (!pe || n == 0 || n >= sizeof params->values[0] || params->count >= HTTP_MAX_PARAMS ||
          http_percent_decode(s, n, params->values[params->count], 0) < 0)
        return 0;
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

static int http_router_hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int http_percent_decode(const char *s, size_t n, char *dst, int plus_is_space) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n) return -1;
      int a = http_router_hex((unsigned char)s[i + 1]), b = http_router_hex((unsigned char)s[i + 2]);
      if (a < 0 || b < 0 || (a == 0 && b == 0)) return -1;
      dst[j++] = (char)(a * 16 + b);
      i += 2;
    } else {
      dst[j++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  dst[j] = '\0';
  return (int)j;
}

int http_query_get(const char *query, const char *name, char *buf, size_t len) {
  size_t nlen = strlen(name);
  for (const char *p = query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t plen = amp ? (size_t)(amp - p) : strlen(p);
    if (plen >= nlen && strncmp(p, name, nlen) == 0 && (plen == nlen || p[nlen] == '=')) {
      const char *v = plen == nlen ? p + plen : p + nlen + 1;
      size_t vlen = (size_t)(p + plen - v);
      if (vlen >= len) return -1;
      return http_percent_decode(v, vlen, buf, 1) < 0 ? -1 : 1;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}
