/*
 * topo_driver.c: `runnel test`, the test driver: runs a job over JSON
 * lines in one thread, with in-memory topics and stores, and prints every
 * record the job writes, in emission order. The same engine as the
 * worker's (topo_task.c) runs; only the log behind topo_io_t differs.
 *
 * Rules (docs/lua-jobs.md, "Testing jobs"):
 * - every topic has one partition unless an input line names another;
 * - a record written to a topic the job reads (its repartition topics, or
 *   a user topic it consumes) is processed right after the record that
 *   caused it, before the next input line (as TopologyTestDriver does);
 * - records of internal topics are not printed; the dead-letter topic is;
 * - every store update is visible at once (no caching), and state is
 *   committed after every input line;
 * - a key or value is printed as JSON when its bytes are valid JSON, and
 *   as a JSON string otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include <lauxlib.h>

#include "topo_int.h"

typedef struct {
  char *topic;
  int32_t partitions;
  int64_t *next_offset;     /* per partition */
} drv_topic_t;

typedef struct drv_rec_s {
  struct drv_rec_s *next;
  char *topic;
  int32_t partition;
  int64_t offset;
  int64_t ts;
  char *key;
  int32_t klen;
  char *val;
  int32_t vlen;
  log_header_t *headers;
  int32_t nheaders;
} drv_rec_t;

typedef struct {
  const topo_job_t *job;
  topo_vm_t *vm;
  drv_topic_t *topics;
  int ntopics;
  topo_task_t **tasks;      /* [sub * max_parts + partition] */
  int max_parts;
  drv_rec_t *head, *tail;   /* records appended, waiting to be printed/processed */
  drv_rec_t *rhead, *rtail; /* without out: records kept for read() (Lua API) */
  drv_rec_t *ghead, *gtail; /* global tables' records, for tasks opened later */
  FILE *out;
  int64_t wall_clock;
  topo_io_t io;
} drv_t;

static drv_topic_t *drv_topic(drv_t *d, const char *name, int create) {
  for (int i = 0; i < d->ntopics; i++)
    if (strcmp(d->topics[i].topic, name) == 0) return &d->topics[i];
  if (!create) return NULL;
  drv_topic_t *nt = realloc(d->topics, (size_t)(d->ntopics + 1) * sizeof *nt);
  if (!nt) return NULL;
  d->topics = nt;
  drv_topic_t *t = &d->topics[d->ntopics++];
  t->topic = strdup(name);
  t->partitions = 1;
  t->next_offset = calloc(1, sizeof *t->next_offset);
  return t;
}

static int drv_grow(drv_topic_t *t, int32_t partitions) {
  if (partitions <= t->partitions) return 0;
  int64_t *no = realloc(t->next_offset, (size_t)partitions * sizeof *no);
  if (!no) return -ENOMEM;
  for (int32_t p = t->partitions; p < partitions; p++) no[p] = 0;
  t->next_offset = no;
  t->partitions = partitions;
  return 0;
}

/* ---- topo_io_t over in-memory topics ------------------------------------ */

static int drv_io_partitions(void *opaque, const char *topic) {
  drv_topic_t *t = drv_topic(opaque, topic, 1);
  return t ? t->partitions : -ENOMEM;
}

static int drv_io_create(void *opaque, const char *topic, int32_t partitions, bool compact,
                         char *err, size_t errlen) {
  drv_topic_t *t = drv_topic(opaque, topic, 1);
  if (!t) return -ENOMEM;
  return drv_grow(t, partitions > 0 ? partitions : 1);
}

static char *drv_dup(const void *p, int32_t n) {
  char *c = malloc(n > 0 ? (size_t)n : 1);
  if (c && n > 0) memcpy(c, p, (size_t)n);
  return c;
}

static int drv_io_append(void *opaque, const char *topic, int32_t partition,
                         const log_record_t *recs, size_t n, int64_t *base, char *err,
                         size_t errlen) {
  drv_t *d = opaque;
  drv_topic_t *t = drv_topic(d, topic, 1);
  if (!t || drv_grow(t, partition + 1) != 0) return -ENOMEM;
  if (base) *base = t->next_offset[partition];
  for (size_t i = 0; i < n; i++) {
    drv_rec_t *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->topic = strdup(topic);
    r->partition = partition;
    r->offset = t->next_offset[partition]++;
    r->ts = recs[i].timestamp;
    r->klen = recs[i].key ? recs[i].key_len : -1;
    r->key = recs[i].key ? drv_dup(recs[i].key, recs[i].key_len) : NULL;
    r->vlen = recs[i].value ? recs[i].value_len : -1;
    r->val = recs[i].value ? drv_dup(recs[i].value, recs[i].value_len) : NULL;
    if (recs[i].header_count > 0) {
      r->headers = calloc((size_t)recs[i].header_count, sizeof *r->headers);
      r->nheaders = recs[i].header_count;
      for (int32_t h = 0; h < r->nheaders; h++) {
        const log_header_t *src = &recs[i].headers[h];
        r->headers[h].key = drv_dup(src->key, src->key_len);
        r->headers[h].key_len = src->key_len;
        r->headers[h].value = src->value ? drv_dup(src->value, src->value_len) : NULL;
        r->headers[h].value_len = src->value ? src->value_len : -1;
      }
    }
    if (d->tail) d->tail->next = r;
    else d->head = r;
    d->tail = r;
  }
  return 0;
}

static void drv_rec_free(drv_rec_t *r) {
  for (int32_t h = 0; h < r->nheaders; h++) {
    free((void *)r->headers[h].key);
    free((void *)r->headers[h].value);
  }
  free(r->headers);
  free(r->topic);
  free(r->key);
  free(r->val);
  free(r);
}

/* ---- printing ------------------------------------------------------------ */

/* Whether bytes are one complete JSON value. */
static int drv_is_json(const char *p, int32_t n) {
  if (n <= 0) return 0;
  yajl_handle h = yajl_alloc(NULL, NULL, NULL);
  int ok = yajl_parse(h, (const unsigned char *)p, (size_t)n) == yajl_status_ok &&
           yajl_complete_parse(h) == yajl_status_ok;
  yajl_free(h);
  return ok;
}

/* yajl_gen has no call to insert raw JSON; its print callback lets us
 * write the generator's output and raw fragments to one buffer. */
typedef struct {
  char *buf;
  size_t len, cap;
} drv_buf_t;

static void drv_buf_add(drv_buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) return;
    b->buf = nb;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

static void drv_gen_print(void *ctx, const char *s, size_t n) { drv_buf_add(ctx, s, n); }

static void drv_gen_bytes(yajl_gen g, drv_buf_t *b, const char *p, int32_t n) {
  if (!p) {
    yajl_gen_null(g);
  } else if (drv_is_json(p, n)) {
    yajl_gen_number(g, p, (size_t)n); /* written verbatim: inserts the JSON text */
  } else if (yajl_gen_string(g, (const unsigned char *)p, (size_t)n) != yajl_gen_status_ok) {
    yajl_gen_null(g);
  }
}

static void drv_print(drv_t *d, const drv_rec_t *r) {
  drv_buf_t b = {0};
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_config(g, yajl_gen_print_callback, drv_gen_print, &b);
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"topic", 5);
  yajl_gen_string(g, (const unsigned char *)r->topic, strlen(r->topic));
  drv_topic_t *t = drv_topic(d, r->topic, 0);
  if (t && t->partitions > 1) {
    yajl_gen_string(g, (const unsigned char *)"partition", 9);
    yajl_gen_integer(g, r->partition);
  }
  yajl_gen_string(g, (const unsigned char *)"key", 3);
  drv_gen_bytes(g, &b, r->key, r->klen);
  yajl_gen_string(g, (const unsigned char *)"value", 5);
  drv_gen_bytes(g, &b, r->val, r->vlen);
  yajl_gen_string(g, (const unsigned char *)"timestamp", 9);
  yajl_gen_integer(g, r->ts);
  if (r->nheaders > 0) {
    yajl_gen_string(g, (const unsigned char *)"headers", 7);
    yajl_gen_map_open(g);
    for (int32_t h = 0; h < r->nheaders; h++) {
      yajl_gen_string(g, (const unsigned char *)r->headers[h].key, (size_t)r->headers[h].key_len);
      if (r->headers[h].value)
        yajl_gen_string(g, r->headers[h].value, (size_t)r->headers[h].value_len);
      else
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
  yajl_gen_free(g);
  if (b.buf) fprintf(d->out, "%s\n", b.buf);
  free(b.buf);
}

/* ---- processing ---------------------------------------------------------- */

static topo_task_t *drv_task(drv_t *d, int sub, int32_t partition, char *err, size_t errlen) {
  if (partition >= d->max_parts) {
    int nmax = partition + 1;
    topo_task_t **nt = calloc((size_t)d->job->nsubs * (size_t)nmax, sizeof *nt);
    if (!nt) return NULL;
    for (int s = 0; s < d->job->nsubs; s++)
      for (int p = 0; p < d->max_parts; p++) nt[s * nmax + p] = d->tasks[s * d->max_parts + p];
    free(d->tasks);
    d->tasks = nt;
    d->max_parts = nmax;
  }
  topo_task_t **slot = &d->tasks[sub * d->max_parts + partition];
  if (*slot) return *slot;
  if (topo_task_open(d->vm, sub, partition, ":memory:", 0, &d->io, slot, err, errlen) != 0)
    return NULL;
  /* A new task has every global table's rows so far (a worker's task
   * reads them before its first record). */
  const topo_sub_t *sd = &d->job->subs[sub];
  for (drv_rec_t *g = d->ghead; g; g = g->next) {
    int uses = 0;
    for (int i = 0; i < sd->nglobals; i++)
      uses |= strcmp(d->job->stores[sd->globals[i] - 1].global_topic, g->topic) == 0;
    if (!uses) continue;
    log_record_t rec = {.offset = g->offset, .timestamp = g->ts, .key = g->key,
                        .key_len = g->klen, .value = g->val, .value_len = g->vlen,
                        .headers = g->headers, .header_count = g->nheaders};
    if (topo_task_global_apply(*slot, g->topic, g->partition, &rec, err, errlen) < 0) return NULL;
  }
  /* Wall-clock punctuators count from the task's start. */
  if (topo_task_wall_clock(*slot, d->wall_clock, err, errlen) != 0) return NULL;
  return *slot;
}

/* A record of a global table's topic: applied by every open task that
 * joins with the table (then committed), and kept for tasks opened
 * later. Takes r. */
static int drv_global(drv_t *d, drv_rec_t *r, char *err, size_t errlen) {
  r->next = NULL;
  if (d->gtail) d->gtail->next = r;
  else d->ghead = r;
  d->gtail = r;
  log_record_t rec = {.offset = r->offset, .timestamp = r->ts, .key = r->key,
                      .key_len = r->klen, .value = r->val, .value_len = r->vlen,
                      .headers = r->headers, .header_count = r->nheaders};
  for (int s = 0; s < d->job->nsubs; s++) {
    const topo_sub_t *sd = &d->job->subs[s];
    int uses = 0;
    for (int i = 0; i < sd->nglobals; i++)
      uses |= strcmp(d->job->stores[sd->globals[i] - 1].global_topic, r->topic) == 0;
    for (int p = 0; uses && p < d->max_parts; p++) {
      topo_task_t *task = d->tasks[s * d->max_parts + p];
      if (!task) continue;
      if (topo_task_global_apply(task, r->topic, r->partition, &rec, err, errlen) < 0 ||
          topo_task_commit(task, err, errlen) != 0)
        return -1;
    }
  }
  return 0;
}

/* Processes one record of a topic the job reads, then commits. */
static int drv_process(drv_t *d, const char *topic, int32_t partition, const log_record_t *rec,
                       char *err, size_t errlen) {
  int sub = topo_job_sub_for_topic(d->job, topic);
  topo_task_t *task = drv_task(d, sub, partition, err, errlen);
  if (!task) return -1;
  int rc = topo_task_process(task, topic, rec, err, errlen);
  if (rc < 0) return -1;
  return topo_task_commit(task, err, errlen) == 0 ? 0 : -1;
}

static int drv_drain(drv_t *d, char *err, size_t errlen);

/* advance_wall_clock: every open task runs its due wall-clock punctuators
 * (in sub-topology, then partition order) and commits; then what they
 * wrote is printed and processed. */
static int drv_advance(drv_t *d, int64_t ms, char *err, size_t errlen) {
  d->wall_clock += ms;
  for (int i = 0; i < d->job->nsubs * d->max_parts; i++) {
    topo_task_t *t = d->tasks[i];
    if (!t) continue;
    if (topo_task_wall_clock(t, d->wall_clock, err, errlen) != 0 ||
        topo_task_commit(t, err, errlen) != 0)
      return -1;
  }
  return drv_drain(d, err, errlen);
}

/* Prints what was appended and feeds records of topics the job reads back
 * into it, until nothing is left. */
static int drv_drain(drv_t *d, char *err, size_t errlen) {
  while (d->head) {
    drv_rec_t *r = d->head;
    d->head = r->next;
    if (!d->head) d->tail = NULL;
    int rc = 0, keep = !topo_job_is_internal(d->job, r->topic);
    if (keep && d->out) drv_print(d, r);
    if (topo_job_global_for_topic(d->job, r->topic) > 0) {
      drv_rec_t *copy = calloc(1, sizeof *copy);
      if (!copy) return -1;
      *copy = *r;
      copy->next = NULL;
      copy->topic = strdup(r->topic);
      copy->key = r->key ? drv_dup(r->key, r->klen) : NULL;
      copy->val = r->val ? drv_dup(r->val, r->vlen) : NULL;
      copy->headers = NULL;
      copy->nheaders = 0;
      rc = drv_global(d, copy, err, errlen);
    } else if (topo_job_sub_for_topic(d->job, r->topic) >= 0) {
      log_record_t rec = {.offset = r->offset, .timestamp = r->ts, .key = r->key,
                          .key_len = r->klen, .value = r->val, .value_len = r->vlen,
                          .headers = r->headers, .header_count = r->nheaders};
      rc = drv_process(d, r->topic, r->partition, &rec, err, errlen);
    }
    if (keep && !d->out) {
      r->next = NULL;
      if (d->rtail) d->rtail->next = r;
      else d->rhead = r;
      d->rtail = r;
    } else {
      drv_rec_free(r);
    }
    if (rc != 0) return rc;
  }
  return 0;
}

/* Feeds one input record to the topic (it gets the next offset of its
 * partition), then everything it causes. */
static int drv_feed(drv_t *d, const char *topic, int32_t partition, log_record_t *rec, char *err,
                    size_t errlen) {
  drv_topic_t *t = drv_topic(d, topic, 1);
  if (!t || drv_grow(t, partition + 1) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rec->offset = t->next_offset[partition]++;
  if (topo_job_global_for_topic(d->job, topic) > 0) {
    drv_rec_t *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->topic = strdup(topic);
    r->partition = partition;
    r->offset = rec->offset;
    r->ts = rec->timestamp;
    r->klen = rec->key ? rec->key_len : -1;
    r->key = rec->key ? drv_dup(rec->key, rec->key_len) : NULL;
    r->vlen = rec->value ? rec->value_len : -1;
    r->val = rec->value ? drv_dup(rec->value, rec->value_len) : NULL;
    if (drv_global(d, r, err, errlen) != 0) return -1;
    return drv_drain(d, err, errlen);
  }
  if (drv_process(d, topic, partition, rec, err, errlen) != 0) return -1;
  return drv_drain(d, err, errlen);
}

/* topo_job_plan's view of the driver's topics: every topic has one
 * partition until an input line says otherwise. */
static int drv_plan_partitions(void *opaque, const char *topic) {
  drv_topic_t *t = drv_topic(opaque, topic, 0);
  return t ? t->partitions : 1;
}

/* Opens every task the job has on the driver's topics, as Kafka's
 * TopologyTestDriver creates its tasks up front: wall-clock punctuators
 * then count from the driver's start (or from create_topics for the
 * partitions it adds), not from a task's first record. */
static int drv_open_tasks(drv_t *d, char *err, size_t errlen) {
  topo_plan_t plan;
  if (topo_job_plan(d->job, drv_plan_partitions, d, &plan, err, errlen) != 0) return -1;
  int rc = 0;
  for (int s = 0; rc == 0 && s < d->job->nsubs; s++)
    for (int p = 0; rc == 0 && p < plan.sub_partitions[s]; p++)
      if (!drv_task(d, s, p, err, errlen)) rc = -1;
  topo_job_plan_free(&plan);
  return rc;
}

/* {"create_topics": {"orders": 3, ...}}: partition counts, then the same
 * checks as a worker makes when the job is submitted (co-partitioning). */
static int drv_create_topics(drv_t *d, yajl_val spec, long lineno, char *err, size_t errlen) {
  if (!YAJL_IS_OBJECT(spec)) {
    snprintf(err, errlen, "input line %ld: create_topics: expected {\"topic\": partitions, ...}",
             lineno);
    return -1;
  }
  for (size_t i = 0; i < spec->u.object.len; i++) {
    yajl_val n = spec->u.object.values[i];
    if (!YAJL_IS_INTEGER(n) || YAJL_GET_INTEGER(n) < 1 || YAJL_GET_INTEGER(n) > 1024) {
      snprintf(err, errlen, "input line %ld: create_topics.%s: expected partitions from 1 to 1024",
               lineno, spec->u.object.keys[i]);
      return -1;
    }
    drv_topic_t *t = drv_topic(d, spec->u.object.keys[i], 1);
    if (!t || drv_grow(t, (int32_t)YAJL_GET_INTEGER(n)) != 0) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  }
  topo_plan_t plan;
  char perr[1024];
  if (topo_job_plan(d->job, drv_plan_partitions, d, &plan, perr, sizeof perr) != 0) {
    snprintf(err, errlen, "input line %ld: %s", lineno, perr);
    return -1;
  }
  /* Internal topics as a worker sizes them: a repartition before a join
   * has the partitions of the table it joins. */
  int rc = 0;
  for (int i = 0; rc == 0 && i < d->job->ninternals; i++) {
    drv_topic_t *t = drv_topic(d, d->job->internals[i].name, 1);
    rc = t ? drv_grow(t, topo_job_internal_partitions(d->job, &plan, i)) : -ENOMEM;
  }
  topo_job_plan_free(&plan);
  if (rc != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (drv_open_tasks(d, perr, sizeof perr) != 0) {
    snprintf(err, errlen, "input line %ld: %s", lineno, perr);
    return -1;
  }
  return 0;
}

/* JSON node -> bytes: strings as they are, null as null, other values as
 * their JSON text. *owned is set when the bytes were allocated. */
static int drv_node_bytes(yajl_val v, const char **p, int32_t *n, char **owned) {
  *owned = NULL;
  if (!v || YAJL_IS_NULL(v)) {
    *p = NULL;
    *n = -1;
    return 0;
  }
  if (YAJL_IS_STRING(v)) {
    *p = v->u.string;
    *n = (int32_t)strlen(*p);
    return 0;
  }
  /* Re-encode the subtree with yajl_gen. */
  drv_buf_t b = {0};
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_config(g, yajl_gen_print_callback, drv_gen_print, &b);
  struct frame {
    yajl_val v;
    size_t i;
  } stack[256];
  int top = 0;
  stack[0] = (struct frame){v, 0};
  int first = 1;
  while (top >= 0) {
    struct frame *f = &stack[top];
    yajl_val x = f->v;
    if (first) {
      if (YAJL_IS_OBJECT(x)) yajl_gen_map_open(g);
      else if (YAJL_IS_ARRAY(x)) yajl_gen_array_open(g);
      first = 0;
    }
    if (YAJL_IS_OBJECT(x) && f->i < x->u.object.len) {
      const char *k = x->u.object.keys[f->i];
      yajl_gen_string(g, (const unsigned char *)k, strlen(k));
      yajl_val c = x->u.object.values[f->i++];
      if ((YAJL_IS_OBJECT(c) || YAJL_IS_ARRAY(c)) && top < 255) {
        stack[++top] = (struct frame){c, 0};
        first = 1;
        continue;
      }
      x = c;
    } else if (YAJL_IS_ARRAY(x) && f->i < x->u.array.len) {
      yajl_val c = x->u.array.values[f->i++];
      if ((YAJL_IS_OBJECT(c) || YAJL_IS_ARRAY(c)) && top < 255) {
        stack[++top] = (struct frame){c, 0};
        first = 1;
        continue;
      }
      x = c;
    } else if (YAJL_IS_OBJECT(x) || YAJL_IS_ARRAY(x)) {
      if (YAJL_IS_OBJECT(x)) yajl_gen_map_close(g);
      else yajl_gen_array_close(g);
      top--;
      continue;
    } else {
      top--; /* a scalar at the top */
    }
    if (YAJL_IS_STRING(x))
      yajl_gen_string(g, (const unsigned char *)x->u.string, strlen(x->u.string));
    else if (YAJL_IS_NUMBER(x))
      yajl_gen_number(g, x->u.number.r, strlen(x->u.number.r));
    else if (YAJL_IS_TRUE(x)) yajl_gen_bool(g, 1);
    else if (YAJL_IS_FALSE(x)) yajl_gen_bool(g, 0);
    else if (YAJL_IS_NULL(x)) yajl_gen_null(g);
  }
  yajl_gen_free(g);
  if (!b.buf) return -1;
  *owned = b.buf;
  *p = b.buf;
  *n = (int32_t)b.len;
  return 0;
}

/* The member `name` of an object, or NULL. */
static yajl_val drv_get(yajl_val obj, const char *name) {
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], name) == 0) return obj->u.object.values[i];
  return NULL;
}

static int drv_line(drv_t *d, const char *line, long lineno, char *err, size_t errlen) {
  char ebuf[256];
  yajl_val root = yajl_tree_parse(line, ebuf, sizeof ebuf);
  if (!root || !YAJL_IS_OBJECT(root)) {
    char *nl = strchr(ebuf, '\n');
    if (nl) *nl = '\0';
    snprintf(err, errlen, "input line %ld: %s", lineno,
             root ? "expected a JSON object" : ebuf);
    yajl_tree_free(root);
    return -1;
  }
  yajl_val topics = drv_get(root, "create_topics");
  if (topics && root->u.object.len == 1) {
    int crc = drv_create_topics(d, topics, lineno, err, errlen);
    yajl_tree_free(root);
    return crc;
  }
  yajl_val clock = drv_get(root, "advance_wall_clock");
  if (clock) {
    if (!YAJL_IS_INTEGER(clock) || YAJL_GET_INTEGER(clock) < 0) {
      snprintf(err, errlen, "input line %ld: advance_wall_clock: expected milliseconds >= 0",
               lineno);
      yajl_tree_free(root);
      return -1;
    }
    char perr[2048];
    int arc = drv_advance(d, YAJL_GET_INTEGER(clock), perr, sizeof perr);
    if (arc != 0) snprintf(err, errlen, "input line %ld: advance_wall_clock: %s", lineno, perr);
    yajl_tree_free(root);
    return arc;
  }
  int rc = -1;
  char *kown = NULL, *vown = NULL;
  log_header_t *hdrs = NULL;
  for (size_t i = 0; i < root->u.object.len; i++) {
    const char *k = root->u.object.keys[i];
    if (strcmp(k, "topic") && strcmp(k, "key") && strcmp(k, "value") && strcmp(k, "timestamp") &&
        strcmp(k, "headers") && strcmp(k, "partition")) {
      snprintf(err, errlen, "input line %ld: unknown field \"%s\" (topic, key, value, timestamp, "
               "headers, partition; or advance_wall_clock, or create_topics alone)", lineno, k);
      goto out;
    }
  }
  yajl_val topic = drv_get(root, "topic");
  if (!topic || !YAJL_IS_STRING(topic)) {
    snprintf(err, errlen, "input line %ld: \"topic\" (a string) is required", lineno);
    goto out;
  }
  const char *tname = topic->u.string;
  int sub = topo_job_sub_for_topic(d->job, tname);
  if (sub < 0 && topo_job_global_for_topic(d->job, tname) == 0) {
    snprintf(err, errlen, "input line %ld: the job %s does not read the topic \"%s\"", lineno,
             d->job->name, tname);
    goto out;
  }
  yajl_val ts = drv_get(root, "timestamp");
  yajl_val part = drv_get(root, "partition");
  if ((ts && !YAJL_IS_INTEGER(ts)) || (part && (!YAJL_IS_INTEGER(part) ||
                                                YAJL_GET_INTEGER(part) < 0 ||
                                                YAJL_GET_INTEGER(part) > 1023))) {
    snprintf(err, errlen, "input line %ld: %s must be an integer%s", lineno,
             ts && !YAJL_IS_INTEGER(ts) ? "timestamp" : "partition",
             ts && !YAJL_IS_INTEGER(ts) ? "" : " from 0 to 1023");
    goto out;
  }
  int32_t p = part ? (int32_t)YAJL_GET_INTEGER(part) : 0;
  log_record_t rec = {0};
  rec.timestamp = ts ? YAJL_GET_INTEGER(ts) : d->wall_clock;
  const char *kp, *vp;
  if (drv_node_bytes(drv_get(root, "key"), &kp, &rec.key_len, &kown) != 0 ||
      drv_node_bytes(drv_get(root, "value"), &vp, &rec.value_len, &vown) != 0) {
    snprintf(err, errlen, "input line %ld: out of memory", lineno);
    goto out;
  }
  rec.key = kp;
  rec.value = vp;
  yajl_val h = drv_get(root, "headers");
  if (h) {
    if (!YAJL_IS_OBJECT(h)) {
      snprintf(err, errlen, "input line %ld: headers must be an object of strings", lineno);
      goto out;
    }
    hdrs = calloc(h->u.object.len + 1, sizeof *hdrs);
    for (size_t i = 0; i < h->u.object.len; i++) {
      yajl_val hv = h->u.object.values[i];
      if (!YAJL_IS_STRING(hv) && !YAJL_IS_NULL(hv)) {
        snprintf(err, errlen, "input line %ld: headers.%s must be a string or null", lineno,
                 h->u.object.keys[i]);
        goto out;
      }
      hdrs[i].key = h->u.object.keys[i];
      hdrs[i].key_len = (int32_t)strlen(hdrs[i].key);
      hdrs[i].value = YAJL_IS_STRING(hv) ? hv->u.string : NULL;
      hdrs[i].value_len = YAJL_IS_STRING(hv) ? (int32_t)strlen(hv->u.string) : -1;
    }
    rec.headers = hdrs;
    rec.header_count = (int32_t)h->u.object.len;
  }
  char perr[2048];
  if (drv_feed(d, tname, p, &rec, perr, sizeof perr) != 0) {
    snprintf(err, errlen, "input line %ld: %s", lineno, perr);
    goto out;
  }
  rc = 0;
out:
  free(hdrs);
  free(kown);
  free(vown);
  yajl_tree_free(root);
  return rc;
}

static void drv_init(drv_t *d, const topo_job_t *job, topo_vm_t *vm, FILE *out) {
  memset(d, 0, sizeof *d);
  d->job = job;
  d->vm = vm;
  d->out = out;
  d->io = (topo_io_t){.opaque = d, .ordered = true, .partitions = drv_io_partitions,
                      .create_topic = drv_io_create, .append = drv_io_append, .read = NULL};
}

/* Frees what the driver holds (not its vm). */
static void drv_cleanup(drv_t *d) {
  for (drv_rec_t **q = &d->head; q;
       q = q == &d->head ? &d->rhead : q == &d->rhead ? &d->ghead : NULL) {
    while (*q) {
      drv_rec_t *r = *q;
      *q = r->next;
      drv_rec_free(r);
    }
  }
  d->tail = d->rtail = d->gtail = NULL;
  for (int i = 0; i < d->job->nsubs * d->max_parts; i++) topo_task_close(d->tasks[i]);
  free(d->tasks);
  d->tasks = NULL;
  for (int i = 0; i < d->ntopics; i++) {
    free(d->topics[i].topic);
    free(d->topics[i].next_offset);
  }
  free(d->topics);
  d->topics = NULL;
  d->ntopics = 0;
}

int topo_driver_run(const topo_job_t *job, void *in_file, void *out_file, char *err,
                    size_t errlen) {
  topo_vm_t *vm;
  if (topo_vm_new(job, &vm, err, errlen) != 0) return -1;
  drv_t d;
  drv_init(&d, job, vm, out_file);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int rc = drv_open_tasks(&d, err, errlen);
  while (rc == 0 && (n = getline(&line, &cap, in_file)) >= 0) {
    lineno++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    size_t lead = strspn(line, " \t");
    if (line[lead] == '\0' || line[lead] == '#') continue; /* blank lines and comments */
    if (drv_line(&d, line, lineno, err, errlen) != 0) {
      rc = -1;
      break;
    }
  }
  fflush(d.out);
  free(line);
  drv_cleanup(&d);
  topo_vm_free(vm);
  return rc;
}

/* ---- the Lua API: runnel.test_driver(job) --------------------------------
 *
 *   local job = runnel.load_job("wordcount.lua")   -- next to the test file
 *   local d = runnel.test_driver(job)
 *   d:pipe("lines", "k1", "the fox", 1000, { h = "v" })  -- topic, key, value[, ts[, headers]]
 *   d:advance_wall_clock(60000)
 *   local out = d:read("word-counts")   -- { {key=, value=, timestamp=, partition=, headers=}, ... }
 *
 * The job runs in the test script's own Lua state, on the same engine as
 * `runnel test`; read() returns (and forgets) the records written to a
 * topic so far, in order, as raw strings (nil for null).
 */

typedef struct {
  drv_t d;
  topo_job_t *job;
  topo_vm_t *vm;
  int live;
} drv_lua_t;

#define DRV_LUA_MT "runnel.test_driver"

static drv_lua_t *drv_lua_check(lua_State *L) {
  drv_lua_t *u = luaL_checkudata(L, 1, DRV_LUA_MT);
  if (!u->live) luaL_error(L, "the test driver was closed");
  return u;
}

/* A key or value argument: nil, a string, a number (as text) or a table
 * (as JSON). *owned is set when the bytes were allocated. */
static const char *drv_lua_bytes(lua_State *L, int idx, int32_t *len, char **owned) {
  *owned = NULL;
  size_t n;
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL: *len = -1; return NULL;
  case LUA_TSTRING:
  case LUA_TNUMBER: {
    const char *s = lua_tolstring(L, idx, &n);
    *len = (int32_t)n;
    return s;
  }
  case LUA_TTABLE: {
    size_t cap = 0;
    char e[256];
    if (luavm_json_encode(L, idx, owned, &cap, &n, e, sizeof e) != 0) {
      free(*owned);
      *owned = NULL;
      luaL_error(L, "pipe: %s", e);
    }
    *len = (int32_t)n;
    return *owned;
  }
  default: luaL_error(L, "pipe: keys and values are strings, numbers, tables or nil, not %s",
                      luaL_typename(L, idx));
  }
  return NULL;
}

static int drv_lua_pipe(lua_State *L) {
  drv_lua_t *u = drv_lua_check(L);
  const char *topic = luaL_checkstring(L, 2);
  if (topo_job_sub_for_topic(u->job, topic) < 0 && topo_job_global_for_topic(u->job, topic) == 0)
    return luaL_error(L, "pipe: the job %s does not read the topic %s", u->job->name, topic);
  log_record_t rec = {0};
  rec.timestamp = luaL_optinteger(L, 5, u->d.wall_clock);
  log_header_t hdrs[64];
  if (!lua_isnoneornil(L, 6)) {
    luaL_checktype(L, 6, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 6)) {
      if (rec.header_count == 64) return luaL_error(L, "pipe: at most 64 headers");
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "pipe: headers are a table of strings to strings");
      size_t kl, vl;
      const char *k = luaL_checklstring(L, -2, &kl), *v = luaL_checklstring(L, -1, &vl);
      hdrs[rec.header_count++] = (log_header_t){k, (int32_t)kl, v, (int32_t)vl};
      lua_pop(L, 1); /* the strings stay alive in the table */
    }
    rec.headers = hdrs;
  }
  char *kown, *vown;
  rec.key = drv_lua_bytes(L, 3, &rec.key_len, &kown);
  rec.value = drv_lua_bytes(L, 4, &rec.value_len, &vown);
  char err[2048];
  int rc = drv_feed(&u->d, topic, 0, &rec, err, sizeof err);
  free(kown);
  free(vown);
  if (rc != 0) return luaL_error(L, "pipe: %s", err);
  return 0;
}

static int drv_lua_advance(lua_State *L) {
  drv_lua_t *u = drv_lua_check(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  if (ms < 0) return luaL_error(L, "advance_wall_clock: expected milliseconds >= 0");
  char err[2048];
  if (drv_advance(&u->d, ms, err, sizeof err) != 0)
    return luaL_error(L, "advance_wall_clock: %s", err);
  return 0;
}

static void drv_lua_push_bytes(lua_State *L, const char *p, int32_t n) {
  if (p) lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
  else lua_pushnil(L);
}

static int drv_lua_read(lua_State *L) {
  drv_lua_t *u = drv_lua_check(L);
  const char *topic = luaL_checkstring(L, 2);
  lua_newtable(L);
  int n = 0;
  for (drv_rec_t **pr = &u->d.rhead, *prev = NULL; *pr;) {
    drv_rec_t *r = *pr;
    if (strcmp(r->topic, topic) != 0) {
      prev = r;
      pr = &r->next;
      continue;
    }
    lua_createtable(L, 0, 5);
    drv_lua_push_bytes(L, r->key, r->klen);
    lua_setfield(L, -2, "key");
    drv_lua_push_bytes(L, r->val, r->vlen);
    lua_setfield(L, -2, "value");
    lua_pushinteger(L, r->ts);
    lua_setfield(L, -2, "timestamp");
    lua_pushinteger(L, r->partition);
    lua_setfield(L, -2, "partition");
    lua_createtable(L, 0, r->nheaders);
    for (int32_t h = 0; h < r->nheaders; h++) {
      lua_pushlstring(L, r->headers[h].key, (size_t)r->headers[h].key_len);
      drv_lua_push_bytes(L, r->headers[h].value, r->headers[h].value_len);
      lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    lua_rawseti(L, -2, ++n);
    *pr = r->next;
    if (u->d.rtail == r) u->d.rtail = prev;
    drv_rec_free(r);
  }
  return 1;
}

static int drv_lua_gc(lua_State *L) {
  drv_lua_t *u = luaL_checkudata(L, 1, DRV_LUA_MT);
  if (!u->live) return 0;
  u->live = 0;
  drv_cleanup(&u->d);
  topo_vm_free(u->vm); /* borrowed state: only the wrapper goes */
  topo_job_free(u->job);
  return 0;
}

/* runnel.test_driver(job): upvalues: the luavm_t, the shared context. */
static int drv_lua_new(lua_State *L) {
  luavm_t *lvm = lua_touserdata(L, lua_upvalueindex(1));
  topo_ctx_t *ctx = lua_touserdata(L, lua_upvalueindex(2));
  lua_settop(L, 1);
  lua_getglobal(L, "runnel");
  lua_getfield(L, -1, "_compile");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 2); /* description, entries (errors propagate to the test) */
  topo_job_t *job = calloc(1, sizeof *job);
  topo_vm_t *vm = calloc(1, sizeof *vm);
  char err[512];
  if (!job || !vm || !(job->chunkname = strdup("=test")) ||
      topo__job_describe(L, -2, job, err, sizeof err) != 0) {
    topo_job_free(job);
    free(vm);
    return luaL_error(L, "test_driver: cannot describe the job");
  }
  vm->job = job;
  vm->vm = lvm;
  vm->L = L;
  vm->ctx = ctx;
  vm->borrowed = 1;
  vm->entries_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the entries */
  drv_lua_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  u->job = job;
  u->vm = vm;
  u->live = 1;
  drv_init(&u->d, job, vm, NULL);
  if (luaL_newmetatable(L, DRV_LUA_MT)) {
    static const luaL_Reg methods[] = {
        {"pipe", drv_lua_pipe},
        {"read", drv_lua_read},
        {"advance_wall_clock", drv_lua_advance},
        {NULL, NULL},
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, drv_lua_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  /* On failure the userdata (with its __gc) frees what was opened. */
  if (drv_open_tasks(&u->d, err, sizeof err) != 0) return luaL_error(L, "test_driver: %s", err);
  return 1;
}

/* runnel.load_job(path): runs a job file (relative to the test script's
 * directory) in this state and returns its job. Upvalues: the luavm_t,
 * the directory. */
static int drv_lua_load_job(lua_State *L) {
  luavm_t *lvm = lua_touserdata(L, lua_upvalueindex(1));
  const char *dir = lua_tostring(L, lua_upvalueindex(2));
  const char *path = luaL_checkstring(L, 1);
  char full[4200], err[2048];
  snprintf(full, sizeof full, "%s%s%s", path[0] == '/' ? "" : dir, path[0] == '/' ? "" : "/",
           path);
  if (luavm_load_file(lvm, full, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  lua_call(L, 0, 1);
  return 1;
}

int topo_driver_run_script(const char *path, const luavm_options_t *vm_options, char *err,
                           size_t errlen) {
  topo_ctx_t ctx = {0};
  luavm_options_t o = *vm_options;
  /* One budget would cover the whole test script (jobs' calls nest in it). */
  o.instruction_budget = 0;
  char chunk[4200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  luavm_t *vm;
  if (topo__vm_base(&o, chunk, &ctx, &vm, err, errlen) != 0) return -1;
  lua_State *L = luavm_state(vm);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  lua_getglobal(L, "runnel");
  lua_pushlightuserdata(L, vm);
  lua_pushlightuserdata(L, &ctx);
  lua_pushcclosure(L, drv_lua_new, 2);
  lua_setfield(L, -2, "test_driver");
  lua_pushlightuserdata(L, vm);
  lua_pushstring(L, dir);
  lua_pushcclosure(L, drv_lua_load_job, 2);
  lua_setfield(L, -2, "load_job");
  lua_pop(L, 1);
  int rc = luavm_load_file(vm, path, err, errlen);
  if (rc == 0) rc = luavm_pcall(vm, 0, 0, err, errlen);
  luavm_free(vm); /* collects the drivers */
  free(ctx.extra);
  free(ctx.extra_buf);
  topo__rows_free(&ctx);
  return rc == 0 ? 0 : -1;
}
