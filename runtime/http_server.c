/*
 * http_server.c: HTTP/1.1 over libuv, parsed by http-parser (see http.h).
 *
 * One http_conn_t per TCP connection. Requests are handled synchronously in
 * on_message_complete and their responses queued with uv_write, so
 * pipelined requests are answered in order. Limits are enforced while
 * parsing, before anything is buffered beyond them: the request line and
 * headers (431) and the body (413, from Content-Length when given, else as
 * chunks arrive). A request the parser rejects gets 400. In every error
 * case the connection is closed after the response is written, because
 * the parser's position in the byte stream can no longer be trusted.
 */
#include "http.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

typedef struct http_conn_s {
  uv_tcp_t tcp; /* first: the handle's memory is the connection's */
  http_server_t *srv;
  struct http_conn_s *prev, *next;
  http_parser parser;
  char *url;
  size_t url_len;
  size_t header_bytes;
  char *body;
  size_t body_len, body_cap;
  int reject_status;    /* set by a callback that stopped the parser */
  int pending_writes;
  int close_after_write;
  int closing;          /* uv_close called */
  char readbuf[16384];
} http_conn_t;

typedef struct {
  uv_tcp_t tcp;
  http_server_t *srv;
} http_listener_t;

struct http_server_s {
  uv_loop_t *loop;
  http_server_options_t opts;
  http_parser_settings settings;
  http_listener_t *listeners[16];
  int nlisteners;
  http_conn_t *conns;
  int open_handles;       /* listeners + connections not yet close-called back */
  int closing;
  void (*on_closed)(void *);
  void *on_closed_arg;
};

typedef struct {
  uv_write_t req;
  http_conn_t *conn;
  size_t len;
  char data[];
} http_write_t;

static const char *http_reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

/* ---- responses ---------------------------------------------------------- */

void http_response_location(http_response_t *res, const char *prefix, const char *segment) {
  static const char hex[] = "0123456789ABCDEF";
  size_t pl = strlen(prefix);
  char *loc = malloc(pl + 3 * strlen(segment) + 1);
  if (!loc) return;
  memcpy(loc, prefix, pl);
  char *o = loc + pl;
  for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p)) {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  free(res->location);
  res->location = loc;
}

void http_response_json(http_response_t *res, int status, char *body, size_t len) {
  free(res->body);
  res->status = status;
  res->content_type = "application/json";
  res->body = body;
  res->body_len = len;
}

void http_response_error(http_response_t *res, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"error_code", 10);
  yajl_gen_integer(g, status);
  yajl_gen_string(g, (const unsigned char *)"message", 7);
  yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
  yajl_gen_map_close(g);
  http_response_gen(res, status, g);
}

void http_response_gen(http_response_t *res, int status, yajl_gen g) {
  const unsigned char *out;
  size_t len;
  yajl_gen_get_buf(g, &out, &len);
  char *body = malloc(len + 1);
  if (body) {
    memcpy(body, out, len);
    body[len] = '\0';
  }
  yajl_gen_free(g);
  http_response_json(res, status, body, body ? len : 0);
}

/* ---- connection lifetime ------------------------------------------------ */

static void http_server_handle_closed(http_server_t *srv) {
  if (--srv->open_handles == 0 && srv->closing) {
    if (srv->on_closed) srv->on_closed(srv->on_closed_arg);
    free(srv);
  }
}

static void http_conn_on_close(uv_handle_t *h) {
  http_conn_t *c = (http_conn_t *)h;
  http_server_t *srv = c->srv;
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->url);
  free(c->body);
  free(c);
  http_server_handle_closed(srv);
}

static void http_conn_close(http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, http_conn_on_close);
}

static void http_conn_on_write(uv_write_t *req, int status) {
  http_write_t *w = (http_write_t *)req;
  http_conn_t *c = w->conn;
  free(w);
  c->pending_writes--;
  if (status < 0 || (c->pending_writes == 0 && (c->close_after_write || c->srv->closing)))
    http_conn_close(c);
}

static void http_conn_send(http_conn_t *c, http_response_t *res, int keep_alive) {
  if (!res->body) {
    /* Out of memory while building the body: still answer. */
    static const char oom[] = "{\"error_code\":500,\"message\":\"out of memory\"}";
    res->status = 500;
    res->content_type = "application/json";
    res->body = strdup(oom);
    res->body_len = res->body ? sizeof oom - 1 : 0;
  }
  /* The Location is percent-encoded (http_response_location): no CR/LF. */
  const char *loc = res->location ? res->location : "";
  size_t headcap = 512 + strlen(loc);
  char *head = malloc(headcap);
  if (!head) {
    http_conn_close(c);
    return;
  }
  int hl = snprintf(head, headcap,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "%s%s%sConnection: %s\r\n\r\n",
                    res->status, http_reason(res->status),
                    res->content_type ? res->content_type : "application/json",
                    res->body_len, *loc ? "Location: " : "", loc, *loc ? "\r\n" : "",
                    keep_alive ? "keep-alive" : "close");
  http_write_t *w = malloc(sizeof *w + (size_t)hl + res->body_len);
  if (!w) {
    free(head);
    http_conn_close(c);
    return;
  }
  w->conn = c;
  w->len = (size_t)hl + res->body_len;
  memcpy(w->data, head, (size_t)hl);
  free(head);
  if (res->body_len) memcpy(w->data + hl, res->body, res->body_len);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
  if (!keep_alive) c->close_after_write = 1;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, http_conn_on_write) != 0) {
    free(w);
    http_conn_close(c);
    return;
  }
  c->pending_writes++;
}

/* ---- parser callbacks --------------------------------------------------- */

static int http_on_message_begin(http_parser *p) {
  http_conn_t *c = p->data;
  c->url_len = 0;
  c->header_bytes = 0;
  c->body_len = 0;
  return 0;
}

/* Counts request-line and header bytes against the limit. */
static int http_count_header(http_conn_t *c, size_t n) {
  c->header_bytes += n;
  if (c->header_bytes > c->srv->opts.max_header_bytes) {
    c->reject_status = 431;
    return 1;
  }
  return 0;
}

static int http_on_url(http_parser *p, const char *at, size_t n) {
  http_conn_t *c = p->data;
  if (http_count_header(c, n)) return 1;
  char *nu = realloc(c->url, c->url_len + n + 1);
  if (!nu) return 1;
  c->url = nu;
  memcpy(c->url + c->url_len, at, n);
  c->url_len += n;
  c->url[c->url_len] = '\0';
  return 0;
}

static int http_on_header_data(http_parser *p, const char *at, size_t n) {
  (void)at;
  return http_count_header(p->data, n);
}

static int http_on_headers_complete(http_parser *p) {
  http_conn_t *c = p->data;
  /* content_length is ULLONG_MAX when the request has none. */
  if (p->content_length != ULLONG_MAX && p->content_length > c->srv->opts.max_body_bytes) {
    c->reject_status = 413;
    return -1; /* http-parser treats any other non-zero as "skip body"; -1 is an error */
  }
  return 0;
}

static int http_on_body(http_parser *p, const char *at, size_t n) {
  http_conn_t *c = p->data;
  if (c->body_len + n > c->srv->opts.max_body_bytes) {
    c->reject_status = 413;
    return 1;
  }
  if (c->body_len + n + 1 > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : 4096;
    while (cap < c->body_len + n + 1) cap *= 2;
    char *nb = realloc(c->body, cap);
    if (!nb) return 1;
    c->body = nb;
    c->body_cap = cap;
  }
  memcpy(c->body + c->body_len, at, n);
  c->body_len += n;
  return 0;
}

static int http_on_message_complete(http_parser *p) {
  http_conn_t *c = p->data;
  http_server_t *srv = c->srv;
  http_response_t res = {0};
  struct http_parser_url u;
  http_parser_url_init(&u);
  char *path = malloc(c->url_len + 1), *query = NULL;
  if (!path) return 1;
  int ok = c->url_len > 0 && http_parser_parse_url(c->url, c->url_len, 0, &u) == 0 &&
           (u.field_set & (1 << UF_PATH));
  if (ok) {
    /* The path must decode; handlers get it as sent and the router
     * decodes each parameter, so an encoded '/' stays inside its segment. */
    const char *raw = c->url + u.field_data[UF_PATH].off;
    size_t rawlen = u.field_data[UF_PATH].len;
    ok = http_percent_decode(raw, rawlen, path, 0) >= 0;
    if (ok) {
      memcpy(path, raw, rawlen);
      path[rawlen] = '\0';
    }
    if (u.field_set & (1 << UF_QUERY)) {
      query = strndup(c->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
      if (!query) ok = 0;
    }
  }
  if (c->body) c->body[c->body_len] = '\0';
  http_request_t req = {
      .method = http_method_str((enum http_method)p->method),
      .path = ok ? path : c->url,
      .query = query ? query : "",
      .body = c->body ? c->body : "",
      .body_len = c->body_len,
  };
  if (!ok) http_response_error(&res, 400, "bad request target");
  else srv->opts.handler(srv->opts.opaque, &req, &res);
  int keep = http_should_keep_alive(p) && !srv->closing;
  if (srv->opts.on_request) srv->opts.on_request(srv->opts.opaque, &req, res.status);
  http_conn_send(c, &res, keep);
  free(res.body);
  free(res.location);
  free(path);
  free(query);
  return 0;
}

/* ---- reading ------------------------------------------------------------ */

static void http_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  http_conn_t *c = (http_conn_t *)h;
  *buf = uv_buf_init(c->readbuf, sizeof c->readbuf);
}

static void http_conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  http_conn_t *c = (http_conn_t *)s;
  if (n < 0) {
    http_conn_close(c);
    return;
  }
  if (n == 0 || c->close_after_write) return;
  size_t done = http_parser_execute(&c->parser, &c->srv->settings, buf->base, (size_t)n);
  if (c->parser.http_errno != HPE_OK || done != (size_t)n) {
    http_response_t res = {0};
    int status = c->reject_status ? c->reject_status : 400;
    if (status == 431)
      http_response_error(&res, 431, "request line and headers exceed %zu bytes "
                          "(http.max.header.bytes)", c->srv->opts.max_header_bytes);
    else if (status == 413)
      http_response_error(&res, 413, "request body exceeds %zu bytes (http.max.body.bytes)",
                          c->srv->opts.max_body_bytes);
    else
      http_response_error(&res, 400, "malformed HTTP request: %s",
                          http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    uv_read_stop(s);
    if (c->srv->opts.on_request) {
      http_request_t req = {.method = http_method_str((enum http_method)c->parser.method),
                            .path = c->url ? c->url : "", .query = "", .body = "",
                            .body_len = 0};
      c->srv->opts.on_request(c->srv->opts.opaque, &req, res.status);
    }
    http_conn_send(c, &res, 0);
    free(res.body);
  }
}

static void http_on_connection(uv_stream_t *server, int status) {
  http_listener_t *l = (http_listener_t *)server;
  http_server_t *srv = l->srv;
  if (status < 0 || srv->closing) return;
  http_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  srv->open_handles++;
  c->next = srv->conns;
  if (c->next) c->next->prev = c;
  srv->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    http_conn_close(c);
    return;
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, http_conn_alloc, http_conn_on_read);
}

/* ---- server ------------------------------------------------------------- */

int http_server_new(uv_loop_t *loop, const http_server_options_t *opts, http_server_t **out) {
  http_server_t *srv = calloc(1, sizeof *srv);
  if (!srv) return UV_ENOMEM;
  srv->loop = loop;
  srv->opts = *opts;
  http_parser_settings_init(&srv->settings);
  srv->settings.on_message_begin = http_on_message_begin;
  srv->settings.on_url = http_on_url;
  srv->settings.on_header_field = http_on_header_data;
  srv->settings.on_header_value = http_on_header_data;
  srv->settings.on_headers_complete = http_on_headers_complete;
  srv->settings.on_body = http_on_body;
  srv->settings.on_message_complete = http_on_message_complete;
  *out = srv;
  return 0;
}

static void http_listener_on_close(uv_handle_t *h) {
  http_listener_t *l = (http_listener_t *)h;
  http_server_t *srv = l->srv;
  free(l);
  http_server_handle_closed(srv);
}

int http_server_listen(http_server_t *srv, const char *host, int port, int *bound_port) {
  if (srv->nlisteners >= (int)(sizeof srv->listeners / sizeof srv->listeners[0]))
    return UV_EINVAL;
  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc != 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
  if (rc != 0) return rc;
  http_listener_t *l = calloc(1, sizeof *l);
  if (!l) return UV_ENOMEM;
  l->srv = srv;
  uv_tcp_init(srv->loop, &l->tcp);
  srv->open_handles++;
  srv->listeners[srv->nlisteners++] = l;
  rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&l->tcp, 128, http_on_connection);
  if (rc != 0) return rc; /* closed by http_server_close */
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len);
  *bound_port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&got)->sin_port);
  return 0;
}

void http_server_close(http_server_t *srv, void (*on_closed)(void *arg), void *arg) {
  srv->closing = 1;
  srv->on_closed = on_closed;
  srv->on_closed_arg = arg;
  for (int i = 0; i < srv->nlisteners; i++)
    uv_close((uv_handle_t *)&srv->listeners[i]->tcp, http_listener_on_close);
  for (http_conn_t *c = srv->conns; c; c = c->next)
    if (c->pending_writes == 0) http_conn_close(c);
  if (srv->open_handles == 0) {
    if (on_closed) on_closed(arg);
    free(srv);
  }
}

void http_server_abort(http_server_t *srv) {
  for (http_conn_t *c = srv->conns; c; c = c->next) http_conn_close(c);
}
