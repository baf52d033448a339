/*
 * Tests for runtime/topo_task.c: processing, the dead-letter path, the
 * commit order (outputs, changelog, SQLite, checkpoint) and restore, run
 * against an in-memory log behind topo_io_t (topics as arrays of records,
 * with a working read, so changelogs and checkpoints exist; ordered=false
 * as on the worker). The log can be told to fail appends to one topic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store_test_util.h"
#include "topo.h"

/* ---- the in-memory log ---------------------------------------------------- */

typedef struct {
  char *key, *val;           /* NULL: null */
  int32_t klen, vlen;        /* -1: null */
  int64_t ts;
  log_header_t *hdrs;        /* owned copies */
  int32_t nh;
} mem_rec_t;

typedef struct {
  mem_rec_t *recs;
  size_t n, cap;
} mem_part_t;

typedef struct {
  char *name;
  int32_t nparts;
  mem_part_t *parts;
} mem_topic_t;

typedef struct {
  mem_topic_t topics[32];
  int ntopics;
  const char *fail_topic;    /* appends to it fail */
  int failed_appends;
} mem_log_t;

static mem_topic_t *mem_topic(mem_log_t *m, const char *name) {
  for (int i = 0; i < m->ntopics; i++)
    if (strcmp(m->topics[i].name, name) == 0) return &m->topics[i];
  return NULL;
}

static mem_topic_t *mem_create(mem_log_t *m, const char *name, int32_t nparts) {
  assert_true(m->ntopics < 32);
  mem_topic_t *t = &m->topics[m->ntopics++];
  t->name = strdup(name);
  t->nparts = nparts > 0 ? nparts : 1;
  t->parts = calloc((size_t)t->nparts, sizeof *t->parts);
  assert_non_null(t->parts);
  return t;
}

/* The partition, creating the topic (one partition) or more partitions. */
static mem_part_t *mem_part(mem_log_t *m, const char *topic, int32_t p) {
  mem_topic_t *t = mem_topic(m, topic);
  if (!t) t = mem_create(m, topic, p + 1);
  if (p >= t->nparts) {
    t->parts = realloc(t->parts, (size_t)(p + 1) * sizeof *t->parts);
    assert_non_null(t->parts);
    memset(t->parts + t->nparts, 0, (size_t)(p + 1 - t->nparts) * sizeof *t->parts);
    t->nparts = p + 1;
  }
  return &t->parts[p];
}

static char *mem_dup(const void *p, int32_t len) {
  if (len < 0) return NULL;
  char *s = malloc((size_t)len + 1);
  assert_non_null(s);
  if (len) memcpy(s, p, (size_t)len);
  s[len] = '\0';
  return s;
}

static void mem_put(mem_part_t *pt, const log_record_t *r) {
  if (pt->n == pt->cap) {
    pt->cap = pt->cap ? pt->cap * 2 : 64;
    pt->recs = realloc(pt->recs, pt->cap * sizeof *pt->recs);
    assert_non_null(pt->recs);
  }
  mem_rec_t *mr = &pt->recs[pt->n++];
  mr->key = mem_dup(r->key, r->key ? r->key_len : -1);
  mr->klen = r->key ? r->key_len : -1;
  mr->val = mem_dup(r->value, r->value ? r->value_len : -1);
  mr->vlen = r->value ? r->value_len : -1;
  mr->ts = r->timestamp;
  mr->nh = r->header_count;
  mr->hdrs = calloc((size_t)r->header_count + 1, sizeof *mr->hdrs);
  assert_non_null(mr->hdrs);
  for (int32_t i = 0; i < r->header_count; i++) {
    mr->hdrs[i].key = mem_dup(r->headers[i].key, r->headers[i].key_len);
    mr->hdrs[i].key_len = r->headers[i].key_len;
    mr->hdrs[i].value = mem_dup(r->headers[i].value, r->headers[i].value_len);
    mr->hdrs[i].value_len = r->headers[i].value_len;
  }
}

static log_record_t mem_view(const mem_rec_t *mr, int64_t offset) {
  return (log_record_t){.offset = offset, .timestamp = mr->ts, .key = mr->key,
                        .key_len = mr->klen, .value = mr->val, .value_len = mr->vlen,
                        .headers = mr->hdrs, .header_count = mr->nh};
}

static void mem_free(mem_log_t *m) {
  for (int i = 0; i < m->ntopics; i++) {
    mem_topic_t *t = &m->topics[i];
    for (int32_t p = 0; p < t->nparts; p++) {
      for (size_t j = 0; j < t->parts[p].n; j++) {
        mem_rec_t *mr = &t->parts[p].recs[j];
        for (int32_t h = 0; h < mr->nh; h++) {
          free((void *)mr->hdrs[h].key);
          free((void *)mr->hdrs[h].value);
        }
        free(mr->hdrs);
        free(mr->key);
        free(mr->val);
      }
      free(t->parts[p].recs);
    }
    free(t->parts);
    free(t->name);
  }
  m->ntopics = 0;
}

static int mem_io_partitions(void *opaque, const char *topic) {
  mem_topic_t *t = mem_topic(opaque, topic);
  return t ? t->nparts : -1;
}

static int mem_io_create(void *opaque, const char *topic, int32_t partitions, bool compact,
                         char *err, size_t errlen) {
  (void)compact;
  (void)err;
  (void)errlen;
  if (!mem_topic(opaque, topic)) mem_create(opaque, topic, partitions);
  return 0;
}

static int mem_io_append(void *opaque, const char *topic, int32_t partition,
                         const log_record_t *recs, size_t n, int64_t *base, char *err,
                         size_t errlen) {
  mem_log_t *m = opaque;
  if (m->fail_topic && strcmp(m->fail_topic, topic) == 0) {
    m->failed_appends++;
    snprintf(err, errlen, "%s: injected append failure", topic);
    return -5;
  }
  mem_part_t *pt = mem_part(m, topic, partition);
  if (base) *base = (int64_t)pt->n;
  for (size_t i = 0; i < n; i++) mem_put(pt, &recs[i]);
  return 0;
}

static int mem_io_read(void *opaque, const char *topic, int32_t partition, int64_t from,
                       int64_t to, int (*fn)(void *arg, const log_record_t *rec), void *arg,
                       int64_t *end, char *err, size_t errlen) {
  mem_log_t *m = opaque;
  mem_topic_t *t = mem_topic(m, topic);
  *end = from;
  if (!t || partition >= t->nparts) return 0; /* as the worker's: nothing yet */
  mem_part_t *pt = &t->parts[partition];
  int64_t stop = (int64_t)pt->n;
  if (to >= 0 && to < stop) stop = to;
  for (int64_t i = from; i < stop; i++) {
    log_record_t r = mem_view(&pt->recs[i], i);
    if (fn(arg, &r) != 0) {
      snprintf(err, errlen, "%s: the reader callback failed", topic);
      return -5;
    }
    *end = i + 1;
  }
  return 0;
}

static size_t mem_count(mem_log_t *m, const char *topic, int32_t p) {
  mem_topic_t *t = mem_topic(m, topic);
  return t && p < t->nparts ? t->parts[p].n : 0;
}

static const mem_rec_t *mem_at(mem_log_t *m, const char *topic, int32_t p, size_t i) {
  assert_true(i < mem_count(m, topic, p));
  return &mem_topic(m, topic)->parts[p].recs[i];
}

/* The value of header name of a record, or NULL. */
static const char *mem_header(const mem_rec_t *mr, const char *name) {
  for (int32_t i = 0; i < mr->nh; i++)
    if (strcmp(mr->hdrs[i].key, name) == 0) return mr->hdrs[i].value;
  return NULL;
}

/* Appends a keyed input record (timestamp 1000 + offset, header "src"). */
static void mem_produce(mem_log_t *m, const char *topic, int32_t p, const char *key,
                        const char *val) {
  mem_part_t *pt = mem_part(m, topic, p);
  log_header_t h = {"src", 3, "test", 4};
  log_record_t r = {.timestamp = 1000 + (int64_t)pt->n, .key = key,
                    .key_len = key ? (int32_t)strlen(key) : -1, .value = val,
                    .value_len = val ? (int32_t)strlen(val) : -1, .headers = &h,
                    .header_count = 1};
  mem_put(pt, &r);
}

/* ---- fixture: a job, its Lua state, the log, a scratch dir --------------- */

/* Counts by key, with a map_values that fails on the value "bad" (the
 * dead-letter path) and the counts written to "out". One sub-topology. */
#define COUNT_JOB_HEAD "local job = runnel.job(\"cj\""
static const char *const COUNT_JOB_BODY =
    ")\n"
    "job:stream(\"events\")\n"
    "   :map_values(function(v) if v == \"bad\" then error(\"bad value\") end return v end)\n"
    "   :group_by_key()\n"
    "   :count(\"counts\")\n"
    "   :to_stream()\n"
    "   :to(\"out\")\n"
    "return job\n";

#define CLOG "cj-counts-changelog"
#define CHECKPOINTS "cj-checkpoints"

typedef struct {
  char *dir;
  char db[512];
  mem_log_t log;
  topo_io_t io;
  topo_job_t *job;
  topo_vm_t *vm;
} fx_t;

/* memory_limit: the Lua state's, 0 for the default. */
static void fx_load_script(fx_t *fx, const char *script, size_t memory_limit) {
  char err[1024] = "";
  luavm_options_t vo;
  luavm_options_defaults(&vo);
  if (memory_limit) vo.memory_limit = memory_limit;
  int rc = topo_job_load("@cj.lua", script, strlen(script), &vo, &fx->job, err, sizeof err);
  if (rc != 0) fail_msg("topo_job_load: %d %s", rc, err);
  assert_int_equal(fx->job->nsubs, 1);
  rc = topo_vm_new(fx->job, &fx->vm, err, sizeof err);
  if (rc != 0) fail_msg("topo_vm_new: %d %s", rc, err);
}

static void fx_load(fx_t *fx, const char *options) {
  char script[1024];
  snprintf(script, sizeof script, COUNT_JOB_HEAD "%s%s", options, COUNT_JOB_BODY);
  fx_load_script(fx, script, 0);
}

static fx_t *fx_new(void) {
  fx_t *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  fx->dir = stu_mkdtemp();
  stu_dbpath(fx->dir, fx->db, sizeof fx->db);
  fx->io = (topo_io_t){.opaque = &fx->log, .ordered = false, .partitions = mem_io_partitions,
                       .create_topic = mem_io_create, .append = mem_io_append,
                       .read = mem_io_read};
  return fx;
}

static int fx_setup_opts(void **state, const char *options) {
  fx_t *fx = fx_new();
  fx_load(fx, options);
  mem_create(&fx->log, "events", 2);
  *state = fx;
  return 0;
}

static int fx_setup(void **state) { return fx_setup_opts(state, ""); }
static int fx_setup_strict(void **state) {
  return fx_setup_opts(state, ", { errors_tolerance = \"none\" }");
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  topo_vm_free(fx->vm);
  topo_job_free(fx->job);
  mem_free(&fx->log);
  stu_rmrf(fx->dir);
  free(fx);
  return 0;
}

static topo_task_t *fx_open(fx_t *fx, int32_t partition, size_t cache_bytes) {
  topo_task_t *t = NULL;
  char err[1024] = "";
  int rc = topo_task_open(fx->vm, 0, partition, fx->db, cache_bytes, &fx->io, &t, err, sizeof err);
  if (rc != 0) fail_msg("topo_task_open: %d %s", rc, err);
  return t;
}

/* Processes topic[p][from, to); returns how many went to the DLQ. */
static int fx_feed_topic(fx_t *fx, topo_task_t *t, const char *topic, int32_t p, size_t from,
                         size_t to) {
  int dlq = 0;
  char err[1024] = "";
  for (size_t i = from; i < to; i++) {
    log_record_t r = mem_view(mem_at(&fx->log, topic, p, i), (int64_t)i);
    int rc = topo_task_process(t, topic, &r, err, sizeof err);
    if (rc < 0) fail_msg("topo_task_process(offset %zu): %d %s", i, rc, err);
    dlq += rc;
  }
  return dlq;
}

static int fx_feed(fx_t *fx, topo_task_t *t, int32_t p, size_t from, size_t to) {
  return fx_feed_topic(fx, t, "events", p, from, to);
}

static void fx_commit(topo_task_t *t) {
  char err[1024] = "";
  int rc = topo_task_commit(t, err, sizeof err);
  if (rc != 0) fail_msg("topo_task_commit: %d %s", rc, err);
}

static void fx_remove_db(fx_t *fx) {
  const char *sfx[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s%s", fx->db, sfx[i]);
    unlink(p);
  }
}

/* The committed count of key in the task's file (0 when absent). */
static long fx_committed(fx_t *fx, const char *key) {
  store_reader_t *rd;
  char err[512] = "";
  int rc = store_reader_open(fx->db, &rd, err, sizeof err);
  if (rc != 0) fail_msg("store_reader_open: %d %s", rc, err);
  void *v = NULL;
  size_t vlen = 0;
  rc = store_reader_get(rd, "counts", key, strlen(key), &v, &vlen);
  store_reader_close(rd);
  assert_true(rc >= 0);
  long n = 0;
  if (rc == 1) {
    char *s = mem_dup(v, (int32_t)vlen);
    n = strtol(s, NULL, 10);
    free(s);
  }
  free(v);
  return n;
}

/* Asserts committed counts given as "a=4 b=3 c=0" (0: absent). */
static void fx_expect(fx_t *fx, const char *spec) {
  char key[32];
  long want;
  int used, checked = 0;
  for (const char *p = spec; sscanf(p, " %31[^=]=%ld%n", key, &want, &used) == 2; p += used) {
    long got = fx_committed(fx, key);
    if (got != want) fail_msg("key %s: committed count %ld, want %ld (%s)", key, got, want, spec);
    checked++;
  }
  assert_true(checked > 0);
}

/* Counts of key among events[p][0, upto) that are not "bad". */
static long fx_expected(fx_t *fx, int32_t p, const char *key, size_t upto) {
  long n = 0;
  for (size_t i = 0; i < upto; i++) {
    const mem_rec_t *mr = mem_at(&fx->log, "events", p, i);
    if (mr->key && strcmp(mr->key, key) == 0 && strcmp(mr->val, "bad") != 0) n++;
  }
  return n;
}

/* The checkpoint record i (text) for "0_<p>". */
static const char *fx_checkpoint(fx_t *fx, size_t i) {
  return mem_at(&fx->log, CHECKPOINTS, 0, i)->val;
}

static void produce_keys(fx_t *fx, int32_t p, const char *keys) {
  for (const char *k = keys; *k; k++) {
    char key[2] = {*k, '\0'};
    mem_produce(&fx->log, "events", p, key, "v");
  }
}

/* ---- tests ------------------------------------------------------------- */

/* One commit: outputs, then the coalesced changelog entries, then the
 * checkpoint with the input position and the changelog end. */
static void test_commit_writes_outputs_changelog_checkpoint(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 1, "abaca");
  topo_task_t *t = fx_open(fx, 1, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 0);
  assert_int_equal(fx_feed(fx, t, 1, 0, 5), 0);
  assert_int_equal(topo_task_position(t, "events"), 5);
  /* Nothing reaches the log before a flush or commit. */
  assert_int_equal(mem_count(&fx->log, "out", 0), 0);
  assert_int_equal(mem_count(&fx->log, CLOG, 1), 0);
  fx_commit(t);

  /* "out" did not exist: created with one partition; every update flows. */
  const char *want_out[][2] = {{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"}, {"a", "3"}};
  assert_int_equal(mem_count(&fx->log, "out", 0), 5);
  for (size_t i = 0; i < 5; i++) {
    const mem_rec_t *o = mem_at(&fx->log, "out", 0, i);
    assert_string_equal(o->key, want_out[i][0]);
    assert_string_equal(o->val, want_out[i][1]);
    assert_int_equal(o->ts, 1000 + (int64_t)i); /* the input's timestamp */
    assert_string_equal(mem_header(o, "src"), "test"); /* and its headers */
  }
  /* The changelog partition is the task's; one entry per key, sorted. */
  assert_int_equal(mem_count(&fx->log, CLOG, 0), 0);
  assert_int_equal(mem_count(&fx->log, CLOG, 1), 3);
  const char *want_clog[][2] = {{"a", "3"}, {"b", "1"}, {"c", "1"}};
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(mem_at(&fx->log, CLOG, 1, i)->key, want_clog[i][0]);
    assert_string_equal(mem_at(&fx->log, CLOG, 1, i)->val, want_clog[i][1]);
  }
  assert_int_equal(mem_count(&fx->log, CHECKPOINTS, 0), 1);
  assert_string_equal(mem_at(&fx->log, CHECKPOINTS, 0, 0)->key, "0_1");
  assert_string_equal(fx_checkpoint(fx, 0),
                      "{\"inputs\":[[\"events\",5]],\"changelogs\":[[\"" CLOG "\",3]],\"stream_time\":1004}");
  /* SQLite holds the committed state. */
  fx_expect(fx, "a=3 c=1");

  const topo_task_stats_t *st = topo_task_stats(t);
  assert_int_equal(st->records_in, 5);
  assert_int_equal(st->records_out, 5);
  assert_int_equal(st->dlq, 0);
  assert_int_equal(st->commits, 1);
  assert_int_equal(st->restored, 0);
  assert_int_equal(topo_task_sub(t), 0);
  assert_int_equal(topo_task_partition(t), 1);

  /* A commit with nothing new appends no changelog entry, and a checkpoint
   * that says the same. */
  fx_commit(t);
  assert_int_equal(mem_count(&fx->log, CLOG, 1), 3);
  assert_int_equal(mem_count(&fx->log, "out", 0), 5);
  assert_int_equal(mem_count(&fx->log, CHECKPOINTS, 0), 2);
  assert_string_equal(fx_checkpoint(fx, 1), fx_checkpoint(fx, 0));
  topo_task_close(t);
}

/* Reopening on the same file resumes from the committed position with
 * the committed state; nothing is replayed, and records processed after
 * the commit are processed again (their store updates were never
 * committed). */
static void test_reopen_resumes_without_replay(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "aabab");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 3);
  fx_commit(t);
  fx_feed(fx, t, 0, 3, 5); /* not committed */
  topo_task_close(t);
  size_t clog = mem_count(&fx->log, CLOG, 0);

  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 3);
  assert_int_equal(topo_task_stats(t)->restored, 0);
  assert_int_equal(mem_count(&fx->log, CLOG, 0), clog);
  fx_expect(fx, "a=2 b=1");
  fx_feed(fx, t, 0, 3, 5);
  fx_commit(t);
  fx_expect(fx, "a=3 b=2");
  assert_string_equal(fx_checkpoint(fx, mem_count(&fx->log, CHECKPOINTS, 0) - 1),
                      "{\"inputs\":[[\"events\",5]],\"changelogs\":[[\"" CLOG "\",4]],\"stream_time\":1004}");
  topo_task_close(t);
}

/* Stream time (the largest event time seen) commits with the input
 * positions: a reopened task resumes the committed value, not what
 * uncommitted records had reached; without the file it comes back from
 * the checkpoint. */
static void test_stream_time_resumes(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "aabab"); /* timestamps 1000..1004 */
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_stream_time(t), -1);
  fx_feed(fx, t, 0, 0, 3);
  assert_int_equal(topo_task_stream_time(t), 1002);
  fx_commit(t);
  fx_feed(fx, t, 0, 3, 5); /* not committed */
  assert_int_equal(topo_task_stream_time(t), 1004);
  topo_task_close(t);

  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_stream_time(t), 1002);
  fx_feed(fx, t, 0, 3, 5);
  fx_commit(t);
  topo_task_close(t);
  fx_remove_db(fx);

  t = fx_open(fx, 0, 1 << 20);
  assert_true(topo_task_stats(t)->restored > 0);
  assert_int_equal(topo_task_stream_time(t), 1004);
  topo_task_close(t);
}

/* Without the file, the task restores from the changelog up to its last
 * checkpoint and resumes from the checkpoint's input position. */
static void test_lost_file_restores_from_checkpoint(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "abcabca");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 3);
  fx_commit(t); /* changelog a=1 b=1 c=1 */
  fx_feed(fx, t, 0, 3, 5);
  fx_commit(t); /* a=2 b=2 */
  topo_task_close(t);
  fx_remove_db(fx);

  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 5);
  assert_int_equal(topo_task_stats(t)->restored, 5); /* the whole changelog */
  fx_expect(fx, "a=2 b=2 c=1");
  fx_feed(fx, t, 0, 5, 7);
  fx_commit(t);
  fx_expect(fx, "a=3 c=2");
  topo_task_close(t);

  /* The restored file is trusted on the next open: no second restore. */
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_stats(t)->restored, 0);
  assert_int_equal(topo_task_position(t, "events"), 7);
  topo_task_close(t);
}

/* A stale file (an old copy came back) catches up to the last checkpoint:
 * its changelogs replay from the end the file reflects. */
static void test_stale_file_catches_up(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "abcabcab");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 3);
  fx_commit(t); /* a=1 b=1 c=1, position 3 */
  topo_task_close(t);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cp %s %s.old", fx->db, fx->db);
  assert_int_equal(system(cmd), 0);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_stats(t)->restored, 0); /* intact and current */
  fx_feed(fx, t, 0, 3, 6);
  fx_commit(t); /* a=2 b=2 c=2, position 6 */
  topo_task_close(t);
  fx_remove_db(fx);
  snprintf(cmd, sizeof cmd, "mv %s.old %s", fx->db, fx->db);
  assert_int_equal(system(cmd), 0);

  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 6);
  assert_int_equal(topo_task_stats(t)->restored, 3); /* only what the file missed */
  fx_expect(fx, "a=2 b=2 c=2");
  fx_feed(fx, t, 0, 6, 8);
  fx_commit(t);
  fx_expect(fx, "a=3 b=3 c=2");
  topo_task_close(t);
}

/* Two tasks (partitions 0 and 1) share the checkpoint topic and each
 * restores from its own checkpoint and changelog partition. */
static void test_restore_uses_the_task_own_checkpoint(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "aaaa");
  produce_keys(fx, 1, "ab");
  char db0[sizeof fx->db];
  snprintf(db0, sizeof db0, "%s", fx->db);
  topo_task_t *t0 = fx_open(fx, 0, 1 << 20);
  snprintf(fx->db, sizeof fx->db, "%s/task1.db", fx->dir);
  topo_task_t *t1 = fx_open(fx, 1, 1 << 20);
  fx_feed(fx, t0, 0, 0, 4);
  fx_feed(fx, t1, 1, 0, 2);
  fx_commit(t1);
  fx_commit(t0); /* the newest checkpoint is partition 0's */
  topo_task_close(t0);
  topo_task_close(t1);
  fx_remove_db(fx);
  t1 = fx_open(fx, 1, 1 << 20);
  assert_int_equal(topo_task_position(t1, "events"), 2);
  assert_int_equal(topo_task_stats(t1)->restored, 2);
  fx_expect(fx, "a=1 b=1");
  topo_task_close(t1);
  snprintf(fx->db, sizeof fx->db, "%s", db0);
  assert_int_equal(fx_committed(fx, "a"), 4);
}

/* Without any checkpoint, a lost file means starting from nothing. */
static void test_lost_file_without_checkpoint_starts_over(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "ab");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 2);
  topo_task_close(t); /* never committed */
  fx_remove_db(fx);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 0);
  assert_int_equal(topo_task_stats(t)->restored, 0);
  assert_int_equal(fx_committed(fx, "a"), 0);
  topo_task_close(t);
}

/* A commit whose checkpoint append fails has its changelog entries
 * appended and SQLite committed: the intact file resumes after it, but a
 * lost file restores to the last successful checkpoint only, and the
 * records after it are processed again, each counted once. */
static void test_changelog_after_checkpoint_is_not_replayed(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "abab" "aacb");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 4);
  fx_commit(t); /* checkpoint: events 4, changelog 2 (a=2 b=2) */
  fx_feed(fx, t, 0, 4, 8);
  fx->log.fail_topic = CHECKPOINTS;
  char err[512] = "";
  assert_true(topo_task_commit(t, err, sizeof err) < 0);
  assert_string_equal(err, CHECKPOINTS ": injected append failure");
  fx->log.fail_topic = NULL;
  assert_int_equal(mem_count(&fx->log, CLOG, 0), 5);   /* a=4 b=3 c=1 appended */
  assert_int_equal(mem_count(&fx->log, CHECKPOINTS, 0), 1);
  assert_int_equal(fx_committed(fx, "a"), 4);           /* step 3 happened */
  topo_task_close(t);

  /* The intact file is the truth. */
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 8);
  assert_int_equal(topo_task_stats(t)->restored, 0);
  topo_task_close(t);

  /* The lost file comes back as of the checkpoint: a=2 b=2, c absent,
   * although the changelog holds a=4 b=3 c=1 after it. */
  fx_remove_db(fx);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 4);
  assert_int_equal(topo_task_stats(t)->restored, 2);
  fx_expect(fx, "a=2 b=2 c=0");
  fx_feed(fx, t, 0, 4, 8);
  fx_commit(t);
  fx_expect(fx, "a=4 b=3 c=1");
  topo_task_close(t);

  /* And again from the newest checkpoint. */
  fx_remove_db(fx);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 8);
  fx_expect(fx, "a=4 b=3 c=1");
  topo_task_close(t);
}

/* A failed changelog append fails the commit: SQLite stays at the
 * previous commit, and a retry commits the same updates. */
static void test_changelog_append_failure_keeps_the_commit_retryable(void **state) {
  fx_t *fx = *state;
  produce_keys(fx, 0, "aab");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed(fx, t, 0, 0, 1);
  fx_commit(t);
  fx_feed(fx, t, 0, 1, 3);
  fx->log.fail_topic = CLOG;
  char err[512] = "";
  assert_true(topo_task_commit(t, err, sizeof err) < 0);
  /* The store's message; the log's reason ("injected append failure")
   * is overwritten by it today (reported; see the commit message). */
  if (!strstr(err, "store 'counts': changelog callback failed")) fail_msg("err: [%s]", err);
  assert_int_equal(fx_committed(fx, "a"), 1);
  assert_int_equal(mem_count(&fx->log, CHECKPOINTS, 0), 1);
  fx->log.fail_topic = NULL;
  fx_commit(t);
  fx_expect(fx, "a=2 b=1");
  topo_task_close(t);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 3);
  topo_task_close(t);
}

/* A Lua error sends the input record to the dead-letter topic with the
 * error headers (and the input's own), and processing goes on. */
static void test_lua_error_goes_to_dlq_with_headers(void **state) {
  fx_t *fx = *state;
  mem_produce(&fx->log, "events", 0, "a", "v");
  mem_produce(&fx->log, "events", 0, "k", "bad");
  mem_produce(&fx->log, "events", 0, "a", "v");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(fx_feed(fx, t, 0, 0, 3), 1);
  assert_int_equal(topo_task_position(t, "events"), 3);
  fx_commit(t);
  assert_int_equal(mem_count(&fx->log, "cj-dlq", 0), 1);
  const mem_rec_t *d = mem_at(&fx->log, "cj-dlq", 0, 0);
  assert_string_equal(d->key, "k");
  assert_string_equal(d->val, "bad");
  assert_int_equal(d->ts, 1001);
  assert_string_equal(mem_header(d, "src"), "test");
  assert_string_equal(mem_header(d, "__runnel.errors.job"), "cj");
  assert_string_equal(mem_header(d, "__runnel.errors.operator"), "MAP-VALUES-2");
  assert_string_equal(mem_header(d, "__runnel.errors.topic"), "events");
  assert_string_equal(mem_header(d, "__runnel.errors.partition"), "0");
  assert_string_equal(mem_header(d, "__runnel.errors.offset"), "1");
  /* The first line only: no traceback. */
  assert_string_equal(mem_header(d, "__runnel.errors.message"), "cj.lua:3: bad value");
  assert_int_equal(mem_count(&fx->log, "out", 0), 2);
  assert_string_equal(mem_at(&fx->log, "out", 0, 1)->val, "2");
  /* The next record's outputs do not inherit the error headers. */
  assert_null(mem_header(mem_at(&fx->log, "out", 0, 1), "__runnel.errors.job"));
  const topo_task_stats_t *st = topo_task_stats(t);
  assert_int_equal(st->dlq, 1);
  assert_int_equal(st->errors, 1);
  assert_int_equal(st->records_in, 3);
  fx_expect(fx, "a=2 k=0");
  topo_task_close(t);
}

/* errors_tolerance = "none": a negative error naming the record, and the
 * position stays at the failing record, also after a commit. */
static void test_tolerance_none_stops_without_advancing(void **state) {
  fx_t *fx = *state;
  mem_produce(&fx->log, "events", 0, "a", "v");
  mem_produce(&fx->log, "events", 0, "k", "bad");
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(fx_feed(fx, t, 0, 0, 1), 0);
  log_record_t r = mem_view(mem_at(&fx->log, "events", 0, 1), 1);
  char err[1024] = "";
  int rc = topo_task_process(t, "events", &r, err, sizeof err);
  assert_true(rc < 0);
  assert_non_null(strstr(err, "cj: events-0 offset 1: cj.lua:3: bad value"));
  assert_int_equal(topo_task_position(t, "events"), 1);
  fx_commit(t);
  assert_int_equal(mem_count(&fx->log, "cj-dlq", 0), 0);
  assert_int_equal(fx_committed(fx, "a"), 1);
  topo_task_close(t);
  t = fx_open(fx, 0, 1 << 20);
  assert_int_equal(topo_task_position(t, "events"), 1);
  topo_task_close(t);
}

/* A record of a topic the sub-topology does not read is refused. */
static void test_foreign_topic_is_refused(void **state) {
  fx_t *fx = *state;
  topo_task_t *t = fx_open(fx, 0, 0);
  log_record_t r = {.key = "a", .key_len = 1, .value = "v", .value_len = 1};
  char err[512] = "";
  assert_true(topo_task_process(t, "other", &r, err, sizeof err) < 0);
  assert_non_null(strstr(err, "the topic other is not an input of sub-topology 0"));
  assert_int_equal(topo_task_position(t, "other"), 0);
  topo_task_close(t);
  topo_task_t *bad = NULL;
  assert_true(topo_task_open(fx->vm, 1, 0, fx->db, 0, &fx->io, &bad, err, sizeof err) < 0);
  assert_null(bad);
}

/* A cache far too small for the keys evicts into the changelog and the
 * open transaction between commits; counts stay exact, through a reopen
 * that drops uncommitted evictions and through a restore. */
static void test_tiny_cache_counts_exactly(void **state) {
  fx_t *fx = *state;
  enum { N = 3000, KEYS = 97 };
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%02d", (i * 31) % KEYS);
    mem_produce(&fx->log, "events", 0, key, i % 500 == 7 ? "bad" : "v");
  }
  topo_task_t *t = fx_open(fx, 0, 256); /* a few entries */
  fx_feed(fx, t, 0, 0, 1000);
  fx_commit(t);
  fx_feed(fx, t, 0, 1000, 1700);
  size_t clog_before = mem_count(&fx->log, CLOG, 0);
  fx_feed(fx, t, 0, 1700, 2000);
  /* Evictions reached the changelog before any commit. */
  assert_true(mem_count(&fx->log, CLOG, 0) > clog_before);
  topo_task_close(t); /* a crash: evicted entries never committed */

  t = fx_open(fx, 0, 256);
  assert_int_equal(topo_task_position(t, "events"), 1000);
  assert_int_equal(topo_task_stats(t)->restored, 0);
  fx_feed(fx, t, 0, 1000, 2500);
  fx_commit(t);
  topo_task_close(t);
  char key[16];
  for (int k = 0; k < KEYS; k++) {
    snprintf(key, sizeof key, "k%02d", k);
    assert_int_equal(fx_committed(fx, key), fx_expected(fx, 0, key, 2500));
  }

  fx_remove_db(fx);
  t = fx_open(fx, 0, 256);
  assert_int_equal(topo_task_position(t, "events"), 2500);
  assert_true(topo_task_stats(t)->restored > 0);
  fx_feed(fx, t, 0, 2500, N);
  fx_commit(t);
  topo_task_close(t);
  for (int k = 0; k < KEYS; k++) {
    snprintf(key, sizeof key, "k%02d", k);
    assert_int_equal(fx_committed(fx, key), fx_expected(fx, 0, key, N));
  }
  /* Every update flowed downstream once per processed record (the
   * crashed run's outputs were never flushed). */
  size_t good = 0;
  for (size_t i = 0; i < N; i++) good += strcmp(mem_at(&fx->log, "events", 0, i)->val, "bad") != 0;
  assert_int_equal(mem_count(&fx->log, "out", 0), good);
  assert_int_equal(mem_count(&fx->log, "cj-dlq", 0), N - good);
}

/* ---- stream-table joins: the rows joins read (runtime/topo_rows.c) ------- */

/* A join whose joiner changes the row it was given (Kafka Streams hands
 * every lookup a freshly deserialised row: the change must not reach the
 * next lookup). "e" is an empty array: the rebuilt row must keep it one. */
static const char *const JOIN_JOB =
    "local job = runnel.job(\"jj\")\n"
    "local users = job:table(\"users\", { value = \"json\", store = \"users\" })\n"
    "job:stream(\"orders\", { value = \"json\" })\n"
    "   :join(users, function(o, u)\n"
    "      local out = { o = o.o, n = u.n, tags = #u.tags, e = u.e }\n"
    "      u.n = \"changed\"; u.tags[#u.tags + 1] = \"z\"; u.tags[1] = \"y\"; u.x = true\n"
    "      return out\n"
    "   end)\n"
    "   :to(\"out\", { value = \"json\" })\n"
    "return job\n";

static int fx_setup_join_limit(void **state, size_t memory_limit) {
  fx_t *fx = fx_new();
  fx_load_script(fx, JOIN_JOB, memory_limit);
  mem_create(&fx->log, "users", 2);
  mem_create(&fx->log, "orders", 2);
  *state = fx;
  return 0;
}
static int fx_setup_join(void **state) { return fx_setup_join_limit(state, 0); }
/* 2 MiB of Lua memory: a row cache of 512 KiB. */
static int fx_setup_join_small(void **state) { return fx_setup_join_limit(state, 2u << 20); }

static void produce_user(fx_t *fx, int32_t p, const char *key, const char *name) {
  char v[800];
  snprintf(v, sizeof v, "{\"n\":\"%s\",\"tags\":[\"a\",\"b\"],\"e\":[]}", name);
  mem_produce(&fx->log, "users", p, key, name ? v : NULL);
}

static void produce_order(fx_t *fx, int32_t p, const char *key, int o) {
  char v[32];
  snprintf(v, sizeof v, "{\"o\":%d}", o);
  mem_produce(&fx->log, "orders", p, key, v);
}

/* Asserts that "out" (one partition) holds exactly the joins given as
 * "name:order ..." (e.g. "Ana:1 Bob:2"), in order. */
static void expect_joined(fx_t *fx, const char *spec) {
  char name[64];
  int order, used;
  size_t i = 0;
  for (const char *p = spec; sscanf(p, " %63[^:]:%d%n", name, &order, &used) == 2; p += used) {
    char want[128];
    snprintf(want, sizeof want, "{\"e\":[],\"n\":\"%s\",\"o\":%d,\"tags\":2}", name, order);
    assert_true(i < mem_count(&fx->log, "out", 0));
    assert_string_equal(mem_at(&fx->log, "out", 0, i)->val, want);
    i++;
  }
  assert_int_equal(mem_count(&fx->log, "out", 0), i);
}

/* Every lookup of one row gets it as stored, whatever the joiner did to
 * the row of the lookup before. */
static void test_join_row_changed_by_joiner_is_not_kept(void **state) {
  fx_t *fx = *state;
  produce_user(fx, 0, "u1", "Ana");
  for (int i = 1; i <= 3; i++) produce_order(fx, 0, "u1", i);
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed_topic(fx, t, "users", 0, 0, 1);
  fx_feed_topic(fx, t, "orders", 0, 0, 3);
  fx_commit(t);
  topo_task_close(t);
  expect_joined(fx, "Ana:1 Ana:2 Ana:3");
}

/* Updates and a tombstone of the row between lookups are seen by the
 * next lookup (the updates keep the value's length: equal sizes must not
 * pass for equal rows). */
static void test_join_sees_updates_and_tombstones(void **state) {
  fx_t *fx = *state;
  const char *rows[] = {"Ana", "Bob", NULL, "Cyd", "Cyd"};
  for (int i = 0; i < 5; i++) {
    produce_user(fx, 0, "u1", rows[i]);
    produce_order(fx, 0, "u1", i + 1);
  }
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  for (size_t i = 0; i < 5; i++) {
    fx_feed_topic(fx, t, "users", 0, i, i + 1);
    fx_feed_topic(fx, t, "orders", 0, i, i + 1);
  }
  fx_commit(t);
  topo_task_close(t);
  expect_joined(fx, "Ana:1 Bob:2 Cyd:4 Cyd:5"); /* order 3 found no row */
}

/* The tasks of two partitions share one Lua state; one key holds a
 * different row in each, and each task joins its own. */
static void test_join_rows_are_the_task_own(void **state) {
  fx_t *fx = *state;
  produce_user(fx, 0, "u1", "P0");
  produce_user(fx, 1, "u1", "P1");
  for (int i = 1; i <= 4; i++) produce_order(fx, (i - 1) % 2 == 0 ? 0 : 1, "u1", i);
  topo_task_t *t0 = fx_open(fx, 0, 1 << 20);
  snprintf(fx->db, sizeof fx->db, "%s/task1.db", fx->dir);
  topo_task_t *t1 = fx_open(fx, 1, 1 << 20);
  fx_feed_topic(fx, t0, "users", 0, 0, 1);
  fx_feed_topic(fx, t1, "users", 1, 0, 1);
  for (size_t i = 0; i < 2; i++) {
    fx_feed_topic(fx, t0, "orders", 0, i, i + 1);
    fx_feed_topic(fx, t1, "orders", 1, i, i + 1);
  }
  fx_commit(t0);
  fx_commit(t1);
  topo_task_close(t0);
  topo_task_close(t1);
  expect_joined(fx, "P0:1 P0:3 P1:2 P1:4");
}

/* A rebalance and back: the task is closed here, another worker's task
 * (its own Lua state and file) updates the row, and the task reopened
 * here catches its old file up from the changelog; its next lookup sees
 * the new row although this Lua state had decoded the old one. */
static void test_join_after_rebalance_sees_the_restored_row(void **state) {
  fx_t *fx = *state;
  produce_user(fx, 0, "u1", "Ana");
  produce_order(fx, 0, "u1", 1);
  produce_user(fx, 0, "u1", "Bob");
  produce_order(fx, 0, "u1", 2);
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed_topic(fx, t, "users", 0, 0, 1);
  fx_feed_topic(fx, t, "orders", 0, 0, 1);
  fx_commit(t);
  topo_task_close(t);

  char db0[sizeof fx->db], err[1024] = "";
  snprintf(db0, sizeof db0, "%s", fx->db);
  snprintf(fx->db, sizeof fx->db, "%s/other.db", fx->dir);
  topo_vm_t *vm0 = fx->vm;
  int rc = topo_vm_new(fx->job, &fx->vm, err, sizeof err);
  if (rc != 0) fail_msg("topo_vm_new: %d %s", rc, err);
  t = fx_open(fx, 0, 1 << 20);
  assert_true(topo_task_stats(t)->restored > 0);
  fx_feed_topic(fx, t, "users", 0, 1, 2);
  fx_commit(t);
  topo_task_close(t);
  topo_vm_free(fx->vm);

  fx->vm = vm0;
  snprintf(fx->db, sizeof fx->db, "%s", db0);
  t = fx_open(fx, 0, 1 << 20);
  assert_true(topo_task_stats(t)->restored > 0); /* the stale file caught up */
  assert_int_equal(topo_task_position(t, "orders"), 1);
  fx_feed_topic(fx, t, "orders", 0, 1, 2);
  fx_commit(t);
  topo_task_close(t);
  expect_joined(fx, "Ana:1 Bob:2");
}

/* A row cache far smaller than the table (its budget comes from the Lua
 * memory limit) drops and refills itself; every join stays right. */
static void test_join_with_a_small_row_cache(void **state) {
  fx_t *fx = *state;
  enum { USERS = 400, ORDERS = 2000 };
  char key[16], name[700];
  for (int u = 0; u < USERS; u++) {
    snprintf(key, sizeof key, "u%03d", u);
    snprintf(name, sizeof name, "user-%03d-%0600d", u, u); /* rows of about 650 bytes */
    produce_user(fx, 0, key, name);
  }
  for (int i = 1; i <= ORDERS; i++) {
    snprintf(key, sizeof key, "u%03d", (i * 7) % USERS);
    produce_order(fx, 0, key, i);
  }
  topo_task_t *t = fx_open(fx, 0, 1 << 20);
  fx_feed_topic(fx, t, "users", 0, 0, USERS);
  fx_feed_topic(fx, t, "orders", 0, 0, ORDERS);
  fx_commit(t);
  topo_task_close(t);
  assert_int_equal(mem_count(&fx->log, "out", 0), ORDERS);
  for (int i = 1; i <= ORDERS; i++) {
    int u = (i * 7) % USERS;
    char want[700];
    snprintf(want, sizeof want,
             "{\"e\":[],\"n\":\"user-%03d-%0600d\",\"o\":%d,\"tags\":2}", u, u, i);
    assert_string_equal(mem_at(&fx->log, "out", 0, (size_t)i - 1)->val, want);
  }
}

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      FX_TEST(test_commit_writes_outputs_changelog_checkpoint),
      FX_TEST(test_reopen_resumes_without_replay),
      FX_TEST(test_stream_time_resumes),
      FX_TEST(test_lost_file_restores_from_checkpoint),
      FX_TEST(test_stale_file_catches_up),
      FX_TEST(test_restore_uses_the_task_own_checkpoint),
      FX_TEST(test_lost_file_without_checkpoint_starts_over),
      FX_TEST(test_changelog_after_checkpoint_is_not_replayed),
      FX_TEST(test_changelog_append_failure_keeps_the_commit_retryable),
      FX_TEST(test_lua_error_goes_to_dlq_with_headers),
      cmocka_unit_test_setup_teardown(test_tolerance_none_stops_without_advancing,
                                      fx_setup_strict, fx_teardown),
      FX_TEST(test_foreign_topic_is_refused),
      FX_TEST(test_tiny_cache_counts_exactly),
      cmocka_unit_test_setup_teardown(test_join_row_changed_by_joiner_is_not_kept, fx_setup_join,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_join_sees_updates_and_tombstones, fx_setup_join,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_join_rows_are_the_task_own, fx_setup_join,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_join_after_rebalance_sees_the_restored_row,
                                      fx_setup_join, fx_teardown),
      cmocka_unit_test_setup_teardown(test_join_with_a_small_row_cache, fx_setup_join_small,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
