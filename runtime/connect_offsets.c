/*
 * connect_offsets.c: source offsets in offset.storage.topic (default
 * connect-offsets), Kafka Connect's format (OffsetStorageWriter with the
 * JSON converter, schemas off):
 *
 *   key   ["<connector>", {<source partition>}]    e.g. ["src", {"filename": "/a.txt"}]
 *   value {<source offset>}                          e.g. {"position": 1042}
 *         null (tombstone): the partition has no offset (DELETE .../offsets)
 *
 * Exactly-once on the embedded log: the last record of each source
 * partition in a poll carries the header CONNECT_SOURCE_HEADER =
 * ["<connector>", {partition}, {offset}, seq] (connect_source.c says
 * which record, and why that is enough), and each offset commit also
 * writes, per task, a destination marker
 *
 *   key   ["<connector>", {"__runnel.task": <id>}]
 *   value {"<topic>": {"<partition>": <end offset at commit>}, ..}
 *
 * A restarted task scans every marked destination partition from the
 * marker's end offset to the high watermark; a header found there is newer
 * than any commit, so its offset wins (connect_source.c). Records written
 * after the last commit are therefore never produced again, and records not
 * written were never acknowledged: a restart neither skips nor repeats
 * (except a poll spread over several partitions that a crash cut short,
 * which is produced again: docs/durability.md).
 * Markers are internal: the REST API does not show them.
 *
 * Keys are canonicalised (parsed and written back compactly, member order
 * kept) so that the same partition always maps to the same entry.
 *
 * Threads: one mutex guards the table and is held across appends, so the
 * topic and the table agree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect_int.h"

#define OFFSETS_MARKER_FIELD "__runnel.task"

typedef struct {
  char *key;   /* canonical ["connector", {..}] */
  char *value; /* JSON text */
} offsets_entry_t;

struct connect_offsets_s {
  log_t *log;
  char *topic;
  pthread_mutex_t mu;
  offsets_entry_t *e;
  size_t n, cap;
};

/* Compact JSON text of v (malloc'd). */
static char *offsets_text(yajl_val v) { return conn_json_text(v, NULL); }

char *connect_offsets_key(const char *connector, const char *partition) {
  yajl_val p = conn_json_parse(NULL, partition, strlen(partition), NULL, 0);
  if (!p || !YAJL_IS_OBJECT(p)) {
    yajl_tree_free(p);
    return NULL;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g) {
    yajl_gen_array_open(g);
    yajl_gen_string(g, (const unsigned char *)connector, strlen(connector));
    conn_json_gen(g, p);
    yajl_gen_array_close(g);
  }
  char *out = conn_json_take(g, NULL);
  yajl_tree_free(p);
  return out;
}

/* Splits an array of a string and objects: [s, o1, o2?]. */
static int offsets_split(const void *text, size_t len, size_t want, char **s, char **o1,
                         char **o2) {
  yajl_val v = conn_json_parse(NULL, text, len, NULL, 0);
  int rc = -1;
  if (v && YAJL_IS_ARRAY(v) && v->u.array.len == want && YAJL_IS_STRING(v->u.array.values[0]) &&
      YAJL_IS_OBJECT(v->u.array.values[1]) &&
      (want < 3 || YAJL_IS_OBJECT(v->u.array.values[2]) || YAJL_IS_NULL(v->u.array.values[2]))) {
    *s = strdup(v->u.array.values[0]->u.string);
    *o1 = offsets_text(v->u.array.values[1]);
    if (o2) *o2 = YAJL_IS_NULL(v->u.array.values[2]) ? NULL : offsets_text(v->u.array.values[2]);
    rc = 0;
    if (!*s || !*o1) {
      free(*s);
      free(*o1);
      if (o2) free(*o2);
      rc = -1;
    }
  }
  yajl_tree_free(v);
  return rc;
}

int connect_offsets_key_parse(const char *key, size_t len, char **connector, char **partition) {
  return offsets_split(key, len, 2, connector, partition, NULL);
}

char *connect_offsets_header(const char *connector, const char *partition, const char *offset,
                             int64_t seq, size_t *len) {
  /* partition and offset were checked to be JSON objects when the record
   * was polled: they go in verbatim. */
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_string(g, (const unsigned char *)connector, strlen(connector));
  const unsigned char *buf;
  size_t n;
  yajl_gen_get_buf(g, &buf, &n);
  char *out = malloc(n + strlen(partition) + strlen(offset) + 32);
  if (out)
    *len = (size_t)sprintf(out, "[%.*s,%s,%s,%" PRId64 "]", (int)n, (const char *)buf, partition,
                           offset, seq);
  yajl_gen_free(g);
  return out;
}

int connect_offsets_header_parse(const void *v, size_t len, char **connector, char **partition,
                                 char **offset, int64_t *seq) {
  yajl_val t = conn_json_parse(NULL, v, len, NULL, 0);
  int rc = -1;
  if (t && YAJL_IS_ARRAY(t) && t->u.array.len == 4 && YAJL_IS_INTEGER(t->u.array.values[3])) {
    *seq = YAJL_GET_INTEGER(t->u.array.values[3]);
    t->u.array.len = 3; /* offsets_split checks the first three */
    char *text = conn_json_text(t, NULL);
    t->u.array.len = 4;
    if (text) rc = offsets_split(text, strlen(text), 3, connector, partition, offset);
    free(text);
  }
  yajl_tree_free(t);
  return rc;
}

/* ---- the table ----------------------------------------------------------- */

static offsets_entry_t *offsets_find(connect_offsets_t *o, const char *key, size_t *idx) {
  for (size_t i = 0; i < o->n; i++)
    if (!strcmp(o->e[i].key, key)) {
      if (idx) *idx = i;
      return &o->e[i];
    }
  return NULL;
}

/* Sets (value NULL: removes) key; takes neither argument. */
static int offsets_set(connect_offsets_t *o, const char *key, const char *value) {
  size_t idx;
  offsets_entry_t *e = offsets_find(o, key, &idx);
  if (!value) {
    if (e) {
      free(e->key);
      free(e->value);
      o->e[idx] = o->e[--o->n];
    }
    return 0;
  }
  char *v = strdup(value);
  if (!v) return -ENOMEM;
  if (e) {
    free(e->value);
    e->value = v;
    return 0;
  }
  if (o->n == o->cap) {
    size_t nc = o->cap ? o->cap * 2 : 16;
    offsets_entry_t *ne = realloc(o->e, nc * sizeof *ne);
    if (!ne) {
      free(v);
      return -ENOMEM;
    }
    o->e = ne;
    o->cap = nc;
  }
  char *k = strdup(key);
  if (!k) {
    free(v);
    return -ENOMEM;
  }
  o->e[o->n++] = (offsets_entry_t){k, v};
  return 0;
}

static int offsets_replay(void *arg, const log_record_t *rec) {
  connect_offsets_t *o = arg;
  char *conn, *part;
  if (connect_offsets_key_parse(rec->key, (size_t)rec->key_len, &conn, &part) != 0)
    return 0; /* not ours */
  char *key = connect_offsets_key(conn, part);
  char *val = NULL;
  if (rec->value) {
    yajl_val v = conn_json_parse(NULL, rec->value, (size_t)rec->value_len, NULL, 0);
    if (v) val = offsets_text(v);
    yajl_tree_free(v);
  }
  int rc = key ? offsets_set(o, key, val) : 0;
  free(conn);
  free(part);
  free(key);
  free(val);
  return rc;
}

int connect_offsets_open(log_t *log, const char *topic, connect_offsets_t **out, char *err,
                         size_t errlen) {
  connect_offsets_t *o = calloc(1, sizeof *o);
  if (!o || !(o->topic = strdup(topic))) {
    free(o);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  o->log = log;
  pthread_mutex_init(&o->mu, NULL);
  int rc = connect_store_topic(log, topic, err, errlen);
  if (rc == 0) rc = connect_store_read(log, topic, offsets_replay, o, err, errlen);
  if (rc != 0) {
    connect_offsets_free(o);
    return rc;
  }
  *out = o;
  return 0;
}

void connect_offsets_free(connect_offsets_t *o) {
  if (!o) return;
  for (size_t i = 0; i < o->n; i++) {
    free(o->e[i].key);
    free(o->e[i].value);
  }
  free(o->e);
  free(o->topic);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

char *connect_offsets_get(connect_offsets_t *o, const char *connector, const char *partition) {
  char *key = connect_offsets_key(connector, partition);
  if (!key) return NULL;
  pthread_mutex_lock(&o->mu);
  offsets_entry_t *e = offsets_find(o, key, NULL);
  char *v = e ? strdup(e->value) : NULL;
  pthread_mutex_unlock(&o->mu);
  free(key);
  return v;
}

static char *offsets_marker_key(const char *connector, int task) {
  char part[64];
  snprintf(part, sizeof part, "{\"" OFFSETS_MARKER_FIELD "\":%d}", task);
  return connect_offsets_key(connector, part);
}

int connect_offsets_put(connect_offsets_t *o, const char *connector, const connect_offset_t *offs,
                        size_t n, int task, const char *marker, char *err, size_t errlen) {
  size_t total = n + (task >= 0 && marker ? 1 : 0);
  if (total == 0) return 0;
  log_record_t *recs = calloc(total, sizeof *recs);
  char **keys = calloc(total, sizeof *keys);
  const char **vals = calloc(total, sizeof *vals);
  int rc = (!recs || !keys || !vals) ? -ENOMEM : 0;
  for (size_t i = 0; rc == 0 && i < total; i++) {
    keys[i] = i < n ? connect_offsets_key(connector, offs[i].partition)
                    : offsets_marker_key(connector, task);
    vals[i] = i < n ? offs[i].offset : marker;
    if (!keys[i]) {
      snprintf(err, errlen, "source partition %s: expected a JSON object", offs[i].partition);
      rc = -EINVAL;
      break;
    }
    recs[i] = (log_record_t){.timestamp = -1, .key = keys[i],
                             .key_len = (int32_t)strlen(keys[i]), .value = vals[i],
                             .value_len = vals[i] ? (int32_t)strlen(vals[i]) : -1};
  }
  if (rc == 0) {
    pthread_mutex_lock(&o->mu);
    log_partition_t *p;
    log_error_t le = {0};
    rc = log_partition_get(o->log, o->topic, 0, &p, &le);
    if (rc == 0) rc = log_partition_append(p, recs, total, NULL, &le);
    if (rc != 0) snprintf(err, errlen, "%s: %s", o->topic, le.msg[0] ? le.msg : log_strerror(rc));
    for (size_t i = 0; rc == 0 && i < total; i++) rc = offsets_set(o, keys[i], vals[i]);
    pthread_mutex_unlock(&o->mu);
  }
  for (size_t i = 0; keys && i < total; i++) free(keys[i]);
  free(keys);
  free(vals);
  free(recs);
  return rc;
}

/* The connector and partition of entry e when it belongs to connector;
 * *is_marker says whether it is a destination marker. */
static int offsets_entry_of(const offsets_entry_t *e, const char *connector, char **part,
                            bool *is_marker) {
  char *conn;
  if (connect_offsets_key_parse(e->key, strlen(e->key), &conn, part) != 0) return -1;
  int mine = !strcmp(conn, connector);
  free(conn);
  if (!mine) {
    free(*part);
    return -1;
  }
  *is_marker = strstr(*part, "\"" OFFSETS_MARKER_FIELD "\"") == *part + 1;
  return 0;
}

int connect_offsets_list(connect_offsets_t *o, const char *connector, connect_offset_t **out,
                         size_t *n) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&o->mu);
  int rc = 0;
  connect_offset_t *l = calloc(o->n + 1, sizeof *l);
  if (!l) rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < o->n; i++) {
    char *part;
    bool marker;
    if (offsets_entry_of(&o->e[i], connector, &part, &marker) != 0) continue;
    if (marker) {
      free(part);
      continue;
    }
    l[*n].partition = part;
    l[*n].offset = strdup(o->e[i].value);
    (*n)++;
  }
  pthread_mutex_unlock(&o->mu);
  *out = l;
  return rc;
}

void connect_offset_list_free(connect_offset_t *l, size_t n) {
  for (size_t i = 0; l && i < n; i++) {
    free(l[i].partition);
    free(l[i].offset);
  }
  free(l);
}

int connect_offsets_markers(connect_offsets_t *o, const char *connector,
                            void (*cb)(void *arg, const char *topic, int32_t partition,
                                       int64_t end),
                            void *arg) {
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->n; i++) {
    char *part;
    bool marker;
    if (offsets_entry_of(&o->e[i], connector, &part, &marker) != 0) continue;
    free(part);
    if (!marker) continue;
    yajl_val v = conn_json_parse(NULL, o->e[i].value, strlen(o->e[i].value), NULL, 0);
    for (size_t t = 0; v && YAJL_IS_OBJECT(v) && t < v->u.object.len; t++) {
      yajl_val parts = v->u.object.values[t];
      for (size_t k = 0; YAJL_IS_OBJECT(parts) && k < parts->u.object.len; k++) {
        yajl_val end = parts->u.object.values[k];
        if (YAJL_IS_INTEGER(end))
          cb(arg, v->u.object.keys[t], (int32_t)atoi(parts->u.object.keys[k]),
             YAJL_GET_INTEGER(end));
      }
    }
    yajl_tree_free(v);
  }
  pthread_mutex_unlock(&o->mu);
  return 0;
}

static int offsets_tombstones(connect_offsets_t *o, const char *connector, bool markers_only,
                              char *err, size_t errlen);

int connect_offsets_reset(connect_offsets_t *o, const char *connector, char *err,
                          size_t errlen) {
  return offsets_tombstones(o, connector, false, err, errlen);
}

int connect_offsets_drop_markers(connect_offsets_t *o, const char *connector, char *err,
                                 size_t errlen) {
  return offsets_tombstones(o, connector, true, err, errlen);
}

static int offsets_tombstones(connect_offsets_t *o, const char *connector, bool markers_only,
                              char *err, size_t errlen) {
  /* Collect this connector's keys, then write a tombstone for each. */
  pthread_mutex_lock(&o->mu);
  size_t n = 0;
  char **keys = calloc(o->n + 1, sizeof *keys);
  for (size_t i = 0; keys && i < o->n; i++) {
    char *part;
    bool marker;
    if (offsets_entry_of(&o->e[i], connector, &part, &marker) != 0) continue;
    free(part);
    if (markers_only && !marker) continue;
    keys[n++] = strdup(o->e[i].key);
  }
  int rc = keys ? 0 : -ENOMEM;
  if (rc == 0 && n > 0) {
    log_record_t *recs = calloc(n, sizeof *recs);
    log_partition_t *p;
    log_error_t le = {0};
    rc = recs ? log_partition_get(o->log, o->topic, 0, &p, &le) : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
      recs[i] = (log_record_t){.timestamp = -1, .key = keys[i],
                               .key_len = (int32_t)strlen(keys[i]), .value = NULL,
                               .value_len = -1};
    if (rc == 0) rc = log_partition_append(p, recs, n, NULL, &le);
    if (rc != 0) snprintf(err, errlen, "%s: %s", o->topic, le.msg[0] ? le.msg : log_strerror(rc));
    for (size_t i = 0; rc == 0 && i < n; i++) offsets_set(o, keys[i], NULL);
    free(recs);
  }
  pthread_mutex_unlock(&o->mu);
  for (size_t i = 0; keys && i < n; i++) free(keys[i]);
  free(keys);
  return rc;
}
