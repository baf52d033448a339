/*
 * conn_record.c: records, headers and batches crossing the connector
 * boundary (see connector.h for ownership: a record owns every buffer,
 * setters copy, conn_record_clear frees).
 *
 * Null versus empty: a NULL pointer with length -1 is a null key, value or
 * header value (a tombstone, for values); a non-NULL pointer with length 0
 * is an empty one. Copies always allocate one byte more than the length
 * and write a NUL there, so an empty buffer is never a NULL pointer and
 * text values can be handed to C string functions by the code that set
 * them.
 *
 * A batch reuses its array across polls: conn_batch_clear frees the
 * records' buffers but keeps the array, so a steady poll loop allocates
 * the array once. Lent buffers (conn_record_t.lent) are never freed here;
 * those in the batch's own memory (conn_batch_copy) go when the batch is
 * cleared.
 */
#include "conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void conn_record_init(conn_record_t *r) {
  memset(r, 0, sizeof *r);
  r->partition = -1;
  r->offset = -1;
  r->timestamp = -1;
  r->key_len = -1;
  r->value_len = -1;
}

/* Frees p unless the record lent it. */
static void conn_owned_free(const conn_record_t *r, unsigned bit, void *p) {
  if (!(r->lent & bit)) free(p);
}

void conn_record_clear(conn_record_t *r) {
  conn_owned_free(r, CONN_LENT_TOPIC, r->topic);
  conn_owned_free(r, CONN_LENT_KEY, r->key);
  conn_owned_free(r, CONN_LENT_VALUE, r->value);
  for (int32_t i = 0; i < r->header_count; i++) {
    free(r->headers[i].key);
    free(r->headers[i].value);
  }
  free(r->headers);
  conn_owned_free(r, CONN_LENT_SOURCE_PARTITION, r->source_partition);
  conn_owned_free(r, CONN_LENT_SOURCE_OFFSET, r->source_offset);
  conn_record_init(r);
}

/* A NUL-terminated copy of len bytes; *out NULL for a null (data NULL or
 * len < 0). Returns 0 or -ENOMEM. */
static int conn_bytes_dup(const void *data, int32_t len, void **out, int32_t *out_len) {
  if (data == NULL || len < 0) {
    *out = NULL;
    *out_len = -1;
    return 0;
  }
  char *p = malloc((size_t)len + 1);
  if (!p)
    return -ENOMEM;
  memcpy(p, data, (size_t)len);
  p[len] = '\0';
  *out = p;
  *out_len = len;
  return 0;
}

/* *dst (bit of r->lent) becomes an owned copy of s. */
static int conn_str_set(conn_record_t *r, unsigned bit, char **dst, const char *s) {
  char *c = NULL;
  if (s && (c = strdup(s)) == NULL)
    return -ENOMEM;
  conn_owned_free(r, bit, *dst);
  r->lent &= ~bit;
  *dst = c;
  return 0;
}

int conn_record_set_topic(conn_record_t *r, const char *topic) {
  return conn_str_set(r, CONN_LENT_TOPIC, &r->topic, topic);
}

int conn_record_set_key(conn_record_t *r, const void *data, int32_t len) {
  void *p;
  int32_t n;
  if (conn_bytes_dup(data, len, &p, &n) != 0)
    return -ENOMEM;
  conn_owned_free(r, CONN_LENT_KEY, r->key);
  r->lent &= ~(unsigned)CONN_LENT_KEY;
  r->key = p;
  r->key_len = n;
  return 0;
}

int conn_record_set_value(conn_record_t *r, const void *data, int32_t len) {
  void *p;
  int32_t n;
  if (conn_bytes_dup(data, len, &p, &n) != 0)
    return -ENOMEM;
  conn_owned_free(r, CONN_LENT_VALUE, r->value);
  r->lent &= ~(unsigned)CONN_LENT_VALUE;
  r->value = p;
  r->value_len = n;
  return 0;
}

int conn_record_add_header(conn_record_t *r, const char *key, const void *value, int32_t len) {
  conn_header_t h;
  h.key = strdup(key);
  if (!h.key)
    return -ENOMEM;
  if (conn_bytes_dup(value, len, &h.value, &h.value_len) != 0) {
    free(h.key);
    return -ENOMEM;
  }
  conn_header_t *hs = realloc(r->headers, ((size_t)r->header_count + 1) * sizeof *hs);
  if (!hs) {
    free(h.key);
    free(h.value);
    return -ENOMEM;
  }
  r->headers = hs;
  r->headers[r->header_count++] = h;
  return 0;
}

const conn_header_t *conn_record_header(const conn_record_t *r, const char *key) {
  for (int32_t i = 0; i < r->header_count; i++)
    if (strcmp(r->headers[i].key, key) == 0)
      return &r->headers[i];
  return NULL;
}

int conn_record_copy(conn_record_t *dst, const conn_record_t *src) {
  conn_record_init(dst);
  dst->partition = src->partition;
  dst->offset = src->offset;
  dst->timestamp = src->timestamp;
  if (conn_record_set_topic(dst, src->topic) != 0 ||
      conn_record_set_key(dst, src->key, src->key_len) != 0 ||
      conn_record_set_value(dst, src->value, src->value_len) != 0 ||
      conn_str_set(dst, CONN_LENT_SOURCE_PARTITION, &dst->source_partition,
                   src->source_partition) != 0 ||
      conn_str_set(dst, CONN_LENT_SOURCE_OFFSET, &dst->source_offset, src->source_offset) != 0)
    goto fail;
  for (int32_t i = 0; i < src->header_count; i++)
    if (conn_record_add_header(dst, src->headers[i].key, src->headers[i].value,
                               src->headers[i].value_len) != 0)
      goto fail;
  return 0;
fail:
  conn_record_clear(dst);
  return -ENOMEM;
}

void conn_batch_init(conn_batch_t *b) {
  memset(b, 0, sizeof *b);
}

conn_record_t *conn_batch_add(conn_batch_t *b) {
  if (b->count == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    conn_record_t *rs = realloc(b->records, cap * sizeof *rs);
    if (!rs)
      return NULL;
    b->records = rs;
    b->cap = cap;
  }
  conn_record_t *r = &b->records[b->count++];
  conn_record_init(r);
  return r;
}

void conn_batch_clear(conn_batch_t *b) {
  for (size_t i = 0; i < b->count; i++)
    conn_record_clear(&b->records[i]);
  b->count = 0;
  conn_pool_reset(&b->mem);
}

void conn_batch_free(conn_batch_t *b) {
  conn_batch_clear(b);
  free(b->records);
  conn_pool_free(&b->mem);
  conn_batch_init(b);
}

char *conn_batch_copy(conn_batch_t *b, const void *data, size_t len) {
  char *p = conn_pool_alloc(&b->mem, len + 1);
  if (p) {
    memcpy(p, data, len);
    p[len] = '\0';
  }
  return p;
}
