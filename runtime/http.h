/*
 * http.h: the worker's HTTP/1.1 server on libuv, parsing with Debian's
 * http-parser library, and a small router for REST paths.
 *
 * Threads: everything here runs on the loop thread that owns the server.
 *
 * Lifetime (libuv's rule): the server's memory is reclaimed only after
 * http_server_close's callback runs, when every listener and connection
 * handle has been closed.
 */
#ifndef RUNNEL_HTTP_H
#define RUNNEL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
  const char *method;      /* "GET", "POST", ... */
  const char *path;        /* the path as sent (percent-encoded, checked to
                              decode), without the query; route parameters
                              are decoded one by one (http_route) */
  const char *query;       /* the raw query string, "" when absent */
  const char *body;        /* NUL-terminated; body_len bytes */
  size_t body_len;
} http_request_t;

typedef struct {
  int status;
  const char *content_type;   /* static string; default application/json */
  char *body;                 /* malloc'd; taken by the server */
  size_t body_len;
  char *location;             /* malloc'd Location header (a 201's new
                                 resource), or NULL; taken by the server */
} http_response_t;

/* Handles a complete request synchronously, filling res. */
typedef void (*http_handler_fn)(void *opaque, const http_request_t *req, http_response_t *res);

typedef struct {
  size_t max_header_bytes;    /* request line + headers; over it: 431 */
  size_t max_body_bytes;      /* over it: 413 */
  http_handler_fn handler;
  void *opaque;
  /* Called once per finished request (for metrics/logs); may be NULL. */
  void (*on_request)(void *opaque, const http_request_t *req, int status);
} http_server_options_t;

typedef struct http_server_s http_server_t;

/* Creates a server on loop. opts is copied. Returns 0 or -ENOMEM. */
int http_server_new(uv_loop_t *loop, const http_server_options_t *opts, http_server_t **out);

/* Binds and listens on host:port (port 0: any); sets *bound_port. Returns 0
 * or a negative libuv error. May be called for several addresses. */
int http_server_listen(http_server_t *srv, const char *host, int port, int *bound_port);

/* Stops accepting; idle connections close now, busy ones after their
 * response is written. on_closed runs when all handles are closed; the
 * server is freed right after it returns. */
void http_server_close(http_server_t *srv, void (*on_closed)(void *arg), void *arg);

/* After http_server_close: closes the connections still writing, too
 * (their writes are cancelled). on_closed still runs once all are closed. */
void http_server_abort(http_server_t *srv);

/* Fills res with Kafka Connect's error shape:
 * {"error_code": status, "message": "..."} (printf-style message). */
void http_response_error(http_response_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets res to the JSON a yajl generator built (g is freed). */
struct yajl_gen_t;
void http_response_gen(http_response_t *res, int status, struct yajl_gen_t *g);

/* Sets the Location header of res to prefix + segment, the segment
 * percent-encoded (all but RFC 3986's unreserved characters), as JAX-RS's
 * UriBuilder.path does for Kafka Connect's 201 answers. */
void http_response_location(http_response_t *res, const char *prefix, const char *segment);

/* Sets res to a JSON body (takes ownership of body). */
void http_response_json(http_response_t *res, int status, char *body, size_t len);

/* ---- routing ----------------------------------------------------------- */

#define HTTP_MAX_PARAMS 4

/* Path parameters matched by {name} segments, in order, percent-decoded
 * (so "/keys/%2Fhome" gives the key "/home"). */
typedef struct {
  int count;
  char values[HTTP_MAX_PARAMS][256];
} http_params_t;

typedef void (*http_route_fn)(void *opaque, const http_request_t *req,
                              const http_params_t *params, http_response_t *res);

typedef struct {
  const char *method;
  const char *pattern;     /* "/connectors/{name}/status" */
  http_route_fn fn;
} http_route_t;

/* Percent-decodes [s, s+n) into dst (n+1 bytes, NUL-terminated); with
 * plus_is_space, '+' becomes ' ' (query strings). Returns the decoded
 * length, or -1 on a bad escape or an encoded NUL. */
int http_percent_decode(const char *s, size_t n, char *dst, int plus_is_space);

/* Finds parameter `name` in a query string ("a=1&b=x%20y") and writes its
 * percent-decoded value ('+' as space) to buf. Returns 1 when present, 0
 * when absent, -1 when malformed or longer than len - 1. */
int http_query_get(const char *query, const char *name, char *buf, size_t len);

/* Dispatches req over routes (terminated by a NULL method): the first route
 * whose pattern matches and whose method matches runs; a matching path with
 * no matching method gives 405, no match 404, both in the error shape. */
void http_route(const http_route_t *routes, void *opaque, const http_request_t *req,
                http_response_t *res);

#endif
