/*
 * topo_task.c: a task, (job, sub-topology, partition): processing records,
 * buffering outputs, the dead-letter path, commits and restore.
 *
 * Outputs of a task are buffered in one arena between flushes (no malloc
 * per record) and appended per (topic, partition) in emission order.
 *
 * Commit order, and the crash each step survives:
 *   1. outputs are appended to their topics;
 *   2. dirty store entries are appended to the changelogs (store_db_commit's
 *      callback, also called when the cache evicts);
 *   3. one SQLite transaction writes the store entries, the input positions
 *      and the changelog end positions;
 *   4. a checkpoint record, key "<sub>_<partition>", value
 *      {"inputs":[[topic, next offset], ...], "changelogs":[[topic, end], ...],
 *       "stream_time": ms}, is appended to the compacted topic
 *      "<job>-checkpoints".
 * Stream time (the largest event time seen) is committed in step 3 as the
 * pseudo input position (" stream-time", partition) = ms (a name no topic
 * can have), and in the checkpoint of step 4: a restart resumes it with
 * the input positions it belongs to. Before step 2, window stores expire
 * windows older than their retention (store_window_expire), inside the
 * same transaction.
 * A crash before 3 leaves SQLite at the previous commit, whose input
 * positions are re-read: outputs of 1 may then appear twice (at-least-once,
 * as documented) and no store update is applied twice. A crash between 3
 * and 4 loses nothing while the SQLite file lives.
 *
 * Restore, when a task opens:
 *   - the SQLite file is intact and has committed before: it is the truth
 *     (its state and its input positions agree); nothing is replayed. The
 *     changelog may hold entries of a commit that never reached step 3;
 *     replaying them and then reprocessing would count twice;
 *   - the file is intact but stale (the task's last checkpoint is ahead of
 *     it: an old copy came back): each store replays its changelog from
 *     the end the file reflects up to the checkpoint's, and the task
 *     resumes from the checkpoint's positions;
 *   - the file is new, or was corrupt and moved aside: the task's last
 *     checkpoint says which changelog prefix matches which input
 *     positions; each store replays its changelog up to that end, and the
 *     task resumes from those positions. Changelog entries after the
 *     checkpoint belong to commits that did not finish and are not
 *     replayed. Without a checkpoint, the task starts from nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "logger.h"
#include "topo_int.h"

/* One buffered output; offsets point into the task's arena. */
typedef struct {
  size_t topic_off;
  int32_t partition;      /* chosen at emit time */
  size_t key_off;
  int32_t klen;           /* -1: null */
  size_t val_off;
  int32_t vlen;           /* -1: null */
  int64_t ts;
  size_t hdr_off;         /* serialized headers: see topo_task_put_headers */
  int32_t nhdr;
} topo_out_t;

typedef struct {
  char *topic;
  int32_t partitions;
} topo_topic_info_t;

typedef struct {
  topo_task_t *task;
  char *err;                   /* where a commit wants the message; NULL: msg */
  size_t errlen;
  char msg[512];               /* for failures during eviction */
} topo_commit_ctx_t;

/* Where a task is in one partition of a global table's topic. */
typedef struct {
  const char *topic;           /* the job's (borrowed) */
  int32_t partition;
  int64_t next;                /* next offset to apply */
} topo_global_pos_t;

struct topo_task_s {
  topo_commit_ctx_t cc;        /* the changelog callback's context */
  int64_t *clog_end;           /* changelog end per store index (-1: none yet) */
  topo_vm_t *vm;
  const topo_job_t *job;
  const topo_sub_t *sub;
  int32_t partition;
  const topo_io_t *io;
  store_db_t *db;
  store_t **stores;            /* by 1-based index; NULL when not this sub's */
  int64_t *positions;          /* next offset per source of the sub */
  topo_out_t *outs;
  size_t nouts, outs_cap;
  char *arena;
  size_t arena_len, arena_cap;
  topo_topic_info_t *topics;   /* partition counts seen */
  int ntopics;
  uint32_t round_robin;
  /* headers of the current record, serialized once, shared by its outputs */
  const log_record_t *hdr_rec;
  size_t hdr_off;
  int32_t nhdr;
  topo_global_pos_t *gpos;     /* the global tables' partitions */
  int ngpos;
  topo_task_stats_t stats;
  int64_t stream_time;         /* -1: no record yet */
  int64_t *punct_next;         /* per job punctuator: next due time; INT64_MIN:
                                  not scheduled (other sub, or wall clock
                                  not started) */
  int64_t punct_last_st;       /* stream time the interval-0 punctuators saw */
  int64_t *expired_upto;       /* per store index: last expiry cutoff */
};

/* The pseudo topic under which stream time is committed (see the top). */
#define TOPO_STREAM_TIME " stream-time"

static uint64_t topo_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- arena ---------------------------------------------------------------- */

static int topo_arena_put(topo_task_t *t, const void *p, size_t n, size_t *off) {
  if (t->arena_len + n > t->arena_cap) {
    size_t cap = t->arena_cap ? t->arena_cap : 65536;
    while (cap < t->arena_len + n) cap *= 2;
    char *na = realloc(t->arena, cap);
    if (!na) return -ENOMEM;
    t->arena = na;
    t->arena_cap = cap;
  }
  *off = t->arena_len;
  if (n) memcpy(t->arena + t->arena_len, p, n);
  t->arena_len += n;
  return 0;
}

/* Headers in the arena: per header, int32 key length, int32 value length
 * (-1 null), key bytes, value bytes. */
static int topo_put_header_list(topo_task_t *t, const log_header_t *h, int32_t n) {
  for (int32_t i = 0; i < n; i++) {
    int32_t lens[2] = {h[i].key_len, h[i].value_len};
    size_t off;
    if (topo_arena_put(t, lens, sizeof lens, &off) != 0 ||
        topo_arena_put(t, h[i].key, (size_t)h[i].key_len, &off) != 0 ||
        topo_arena_put(t, h[i].value, h[i].value_len > 0 ? (size_t)h[i].value_len : 0, &off) != 0)
      return -ENOMEM;
  }
  return 0;
}

/* ---- topics and partitions ---------------------------------------------- */

static int32_t topo_partitions(topo_task_t *t, const char *topic, char *err, size_t errlen) {
  for (int i = 0; i < t->ntopics; i++)
    if (strcmp(t->topics[i].topic, topic) == 0) return t->topics[i].partitions;
  int n = t->io->partitions(t->io->opaque, topic);
  if (n < 0) {
    /* A missing output topic is created, with the log's default partition
     * count (Kafka Streams would fail; see docs/lua-jobs.md). */
    if (t->io->create_topic(t->io->opaque, topic, 0, false, err, errlen) != 0) return -1;
    n = t->io->partitions(t->io->opaque, topic);
    if (n < 0) {
      snprintf(err, errlen, "%s: cannot create the output topic", topic);
      return -1;
    }
  }
  topo_topic_info_t *nt = realloc(t->topics, (size_t)(t->ntopics + 1) * sizeof *nt);
  if (!nt) return -1;
  t->topics = nt;
  t->topics[t->ntopics].topic = strdup(topic);
  t->topics[t->ntopics].partitions = n;
  t->ntopics++;
  return n;
}

/* ---- emit ------------------------------------------------------------------ */

int topo__task_emit(topo_task_t *t, const char *topic, size_t tlen, const char *key, size_t klen,
                    int has_key, const char *val, size_t vlen, int has_val, char *err,
                    size_t errlen) {
  char name[256];
  if (tlen >= sizeof name) {
    snprintf(err, errlen, "topic name too long");
    return -1;
  }
  memcpy(name, topic, tlen);
  name[tlen] = '\0';
  int32_t n = topo_partitions(t, name, err, errlen);
  if (n < 0) return -1;
  int32_t part;
  if (has_key) part = log_partition_for_key(key, (int32_t)klen, n);
  else part = (int32_t)(t->round_robin++ % (uint32_t)n);

  topo_ctx_t *ctx = t->vm->ctx;
  /* The input record's headers (and any set_header) go with every output,
   * as Kafka Streams forwards headers; serialized once per input record. */
  if (t->hdr_rec != ctx->rec || ctx->nextra != t->nhdr - (ctx->rec ? ctx->rec->header_count : 0)) {
    t->hdr_rec = ctx->rec;
    t->nhdr = 0;
    t->hdr_off = t->arena_len;
    if (ctx->rec && topo_put_header_list(t, ctx->rec->headers, ctx->rec->header_count) != 0)
      goto oom;
    if (topo_put_header_list(t, ctx->extra, ctx->nextra) != 0) goto oom;
    t->nhdr = (ctx->rec ? ctx->rec->header_count : 0) + ctx->nextra;
  }
  if (t->nouts == t->outs_cap) {
    size_t cap = t->outs_cap ? t->outs_cap * 2 : 1024;
    topo_out_t *no = realloc(t->outs, cap * sizeof *no);
    if (!no) goto oom;
    t->outs = no;
    t->outs_cap = cap;
  }
  topo_out_t *o = &t->outs[t->nouts];
  if (topo_arena_put(t, name, tlen + 1, &o->topic_off) != 0 ||
      topo_arena_put(t, key, has_key ? klen : 0, &o->key_off) != 0 ||
      topo_arena_put(t, val, has_val ? vlen : 0, &o->val_off) != 0)
    goto oom;
  o->partition = part;
  o->klen = has_key ? (int32_t)klen : -1;
  o->vlen = has_val ? (int32_t)vlen : -1;
  o->ts = ctx->out_ts;
  o->hdr_off = t->hdr_off;
  o->nhdr = t->nhdr;
  t->nouts++;
  t->stats.records_out++;
  return 0;
oom:
  snprintf(err, errlen, "out of memory buffering outputs");
  return -1;
}

int64_t topo__task_stream_time(const topo_task_t *t) {
  int64_t ev = t->vm->ctx->event_ts;
  return ev > t->stream_time ? ev : t->stream_time;
}

int64_t topo_task_stream_time(const topo_task_t *t) { return t->stream_time; }

store_t *topo__task_store(topo_task_t *t, int index) {
  if (index < 1 || index > t->job->nstores) return NULL;
  return t->stores[index];
}

/* ---- flush ------------------------------------------------------------------ */

int topo_task_flush(topo_task_t *t, char *err, size_t errlen) {
  if (t->nouts == 0) return 0;
  /* Group by (topic, partition), keeping emission order within each. */
  log_record_t *recs = malloc(t->nouts * sizeof *recs);
  log_header_t *hdrs = NULL;
  size_t nh = 0;
  for (size_t i = 0; i < t->nouts; i++) nh += (size_t)t->outs[i].nhdr;
  if (nh) hdrs = malloc(nh * sizeof *hdrs);
  char *done = calloc(t->nouts, 1);
  int rc = 0;
  if (!recs || !done || (nh && !hdrs)) {
    snprintf(err, errlen, "out of memory flushing outputs");
    rc = -ENOMEM;
    goto out;
  }
  size_t hused = 0;
  for (size_t i = 0; i < t->nouts && rc == 0; i++) {
    if (done[i]) continue;
    const topo_out_t *first = &t->outs[i];
    const char *topic = t->arena + first->topic_off;
    size_t n = 0;
    for (size_t j = i; j < t->nouts; j++) {
      const topo_out_t *o = &t->outs[j];
      int same = o->partition == first->partition &&
                 (o->topic_off == first->topic_off || strcmp(t->arena + o->topic_off, topic) == 0);
      if (!same && t->io->ordered) break;
      if (done[j] || !same) continue;
      done[j] = 1;
      log_record_t *r = &recs[n++];
      r->offset = 0;
      r->timestamp = o->ts;
      r->key = o->klen >= 0 ? t->arena + o->key_off : NULL;
      r->key_len = o->klen;
      r->value = o->vlen >= 0 ? t->arena + o->val_off : NULL;
      r->value_len = o->vlen;
      r->headers = hdrs + hused;
      r->header_count = o->nhdr;
      const char *p = t->arena + o->hdr_off;
      for (int32_t h = 0; h < o->nhdr; h++) {
        int32_t lens[2];
        memcpy(lens, p, sizeof lens);
        p += sizeof lens;
        hdrs[hused].key = p;
        hdrs[hused].key_len = lens[0];
        p += lens[0];
        hdrs[hused].value = lens[1] >= 0 ? p : NULL;
        hdrs[hused].value_len = lens[1];
        p += lens[1] > 0 ? lens[1] : 0;
        hused++;
      }
    }
    rc = t->io->append(t->io->opaque, topic, first->partition, recs, n, NULL, err, errlen);
  }
out:
  free(recs);
  free(hdrs);
  free(done);
  if (rc == 0) {
    t->nouts = 0;
    t->arena_len = 0;
    t->hdr_rec = NULL;
  }
  return rc;
}

/* ---- processing ----------------------------------------------------------- */

static int topo_source_index(const topo_task_t *t, const char *topic) {
  for (int i = 0; i < t->sub->nsources; i++)
    if (strcmp(t->sub->sources[i].topic, topic) == 0) return i;
  return -1;
}

/* Builds the dead-letter record: the input's key, value and headers, plus
 * headers saying what failed and where (as Kafka Connect's
 * __connect.errors.* headers do). */
static int topo_dead_letter(topo_task_t *t, const char *topic, int32_t partition,
                            const log_record_t *rec, const char *message, const char *reason,
                            char *err, size_t errlen) {
  topo_ctx_t *ctx = t->vm->ctx;
  char part[16], off[32];
  snprintf(part, sizeof part, "%d", partition);
  snprintf(off, sizeof off, "%" PRId64, rec->offset);
  const char *op = "";
  lua_State *L = t->vm->L;
  /* The DSL keeps the operator in an upvalue; runnel._current_op() reads it. */
  lua_getglobal(L, "runnel");
  lua_getfield(L, -1, "_current_op");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  char opname[128];
  snprintf(opname, sizeof opname, "%s", lua_tostring(L, -1));
  lua_pop(L, 2);
  op = opname;
  /* Only the first line of the message (the traceback stays in logs). */
  size_t mlen = strcspn(message, "\n");
  struct {
    const char *k, *v;
    size_t vlen;
  } h[] = {
      {"__runnel.errors.job", t->job->name, strlen(t->job->name)},
      {"__runnel.errors.operator", op, strlen(op)},
      {"__runnel.errors.topic", topic, strlen(topic)},
      {"__runnel.errors.partition", part, strlen(part)},
      {"__runnel.errors.offset", off, strlen(off)},
      {"__runnel.errors.message", message, mlen},
      {"__runnel.errors.reason", reason ? reason : "", reason ? strlen(reason) : 0},
  };
  /* Outputs already emitted by the failed record stay (at-least-once);
   * the dead letter carries the original record. */
  ctx->nextra = 0;
  ctx->extra_len = 0;
  t->hdr_rec = NULL;
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
    if (!h[i].vlen && strcmp(h[i].k, "__runnel.errors.reason") == 0) continue;
    lua_getglobal(L, "runnel");
    lua_getfield(L, -1, "record");
    lua_getfield(L, -1, "set_header");
    lua_pushstring(L, h[i].k);
    lua_pushlstring(L, h[i].v, h[i].vlen);
    lua_call(L, 2, 0);
    lua_pop(L, 2);
  }
  ctx->out_ts = rec->timestamp;
  int rc = topo__task_emit(t, t->job->dlq, strlen(t->job->dlq), rec->key,
                           rec->key_len > 0 ? (size_t)rec->key_len : 0, rec->key != NULL,
                           rec->value, rec->value_len > 0 ? (size_t)rec->value_len : 0,
                           rec->value != NULL, err, errlen);
  t->stats.dlq++;
  return rc;
}

/* ---- stream time and punctuation ------------------------------------------ */

/* Runs punctuator i (runnel._punctuate(id, ts)) with the task as context
 * and no current record. A failure counts as an error; it stops the task
 * only when the job does not tolerate errors (there is no record to send
 * to the dead-letter topic). */
static int topo_punctuate(topo_task_t *t, int i, int64_t ts, char *err, size_t errlen) {
  topo_ctx_t *ctx = t->vm->ctx;
  lua_State *L = t->vm->L;
  const log_record_t *saved = ctx->rec;
  ctx->task = t;
  ctx->rec = NULL;
  ctx->out_ts = ts;
  ctx->nextra = 0;
  ctx->extra_len = 0;
  t->hdr_rec = NULL;
  lua_getglobal(L, "runnel");
  lua_getfield(L, -1, "_punctuate");
  lua_remove(L, -2);
  lua_pushinteger(L, t->job->puncts[i].id);
  lua_pushinteger(L, ts);
  char msg[1024];
  int rc = luavm_pcall(t->vm->vm, 2, 0, msg, sizeof msg);
  ctx->rec = saved;
  t->stats.punctuations++;
  if (rc == 0) return 0;
  t->stats.errors++;
  msg[strcspn(msg, "\n")] = '\0';
  if (!t->job->tolerate_errors) {
    snprintf(err, errlen, "%s: task %d_%d: punctuator %d at %" PRId64 ": %s", t->job->name,
             t->sub->id, t->partition, t->job->puncts[i].id, ts, msg);
    return -EINVAL;
  }
  logger_warn("job", "%s: task %d_%d: punctuator %d at %" PRId64 " failed: %s", t->job->name,
              t->sub->id, t->partition, t->job->puncts[i].id, ts, msg);
  return 0;
}

/* The next due time after firing at `now` for a schedule aligned at
 * `base` (Kafka Streams' PunctuationSchedule.next: missed intervals are
 * skipped, not replayed). */
static int64_t topo_punct_next(int64_t base, int64_t interval, int64_t now) {
  if (now < base) return base;
  return base + ((now - base) / interval + 1) * interval;
}

/* After a record: stream time takes its event time, and the stream-time
 * punctuators that became due run (in job order, each at most once). */
static int topo_after_record(topo_task_t *t, char *err, size_t errlen) {
  int64_t ev = t->vm->ctx->event_ts;
  if (ev > t->stream_time) t->stream_time = ev;
  int64_t st = t->stream_time;
  if (st < 0) return 0;
  int rc = 0;
  for (int i = 0; i < t->job->npuncts && rc == 0; i++) {
    const topo_punct_t *p = &t->job->puncts[i];
    if (p->wall_clock || p->sub != t->sub->id) continue;
    if (p->interval <= 0) {
      if (st > t->punct_last_st) rc = topo_punctuate(t, i, st, err, errlen);
      continue;
    }
    if (t->punct_next[i] > st) continue;
    /* Aligned at 0: the first record fires it, as in Kafka Streams. */
    t->punct_next[i] = topo_punct_next(0, p->interval, st);
    rc = topo_punctuate(t, i, st, err, errlen);
  }
  if (st > t->punct_last_st) t->punct_last_st = st;
  return rc;
}

int topo_task_wall_clock(topo_task_t *t, int64_t now, char *err, size_t errlen) {
  int rc = 0;
  topo_ctx_t *ctx = t->vm->ctx;
  for (int i = 0; i < t->job->npuncts && rc == 0; i++) {
    const topo_punct_t *p = &t->job->puncts[i];
    if (!p->wall_clock || p->sub != t->sub->id || p->interval <= 0) continue;
    if (t->punct_next[i] == INT64_MIN) {
      t->punct_next[i] = now + p->interval; /* scheduled from now */
      continue;
    }
    if (t->punct_next[i] > now) continue;
    int64_t base = t->punct_next[i];
    t->punct_next[i] = topo_punct_next(base, p->interval, now);
    rc = topo_punctuate(t, i, now, err, errlen);
  }
  ctx->task = NULL;
  return rc;
}

int topo_task_process(topo_task_t *t, const char *topic, const log_record_t *rec, char *err,
                      size_t errlen) {
  uint64_t t0 = topo_now_ns();
  topo_vm_t *vm = t->vm;
  lua_State *L = vm->L;
  topo_ctx_t *ctx = vm->ctx;
  int si = topo_source_index(t, topic);
  if (si < 0) {
    snprintf(err, errlen, "%s-%d: the topic %s is not an input of sub-topology %d", t->job->name,
             t->partition, topic, t->sub->id);
    return -EINVAL;
  }
  ctx->task = t;
  ctx->topic = topic;
  ctx->partition = t->partition;
  ctx->rec = rec;
  ctx->out_ts = rec->timestamp;
  ctx->event_ts = rec->timestamp;
  ctx->late = 0;
  ctx->nextra = 0;
  ctx->extra_len = 0;
  t->hdr_rec = NULL;

  lua_rawgeti(L, LUA_REGISTRYINDEX, vm->entries_ref);
  lua_getfield(L, -1, topic);
  lua_remove(L, -2);
  if (rec->key) lua_pushlstring(L, rec->key, (size_t)rec->key_len);
  else lua_pushnil(L);
  if (rec->value) lua_pushlstring(L, rec->value, (size_t)rec->value_len);
  else lua_pushnil(L);
  char msg[2048];
  int rc = luavm_pcall(vm->vm, 2, 0, msg, sizeof msg);
  t->stats.records_in++;
  t->positions[si] = rec->offset + 1;
  if (rc != 0) {
    t->stats.errors++;
    if (!t->job->tolerate_errors) {
      snprintf(err, errlen, "%s: %s-%d offset %" PRId64 ": %s", t->job->name, topic,
               t->partition, rec->offset, msg);
      t->positions[si] = rec->offset; /* not consumed: the task stops here */
      ctx->task = NULL;
      ctx->rec = NULL;
      return -EINVAL;
    }
    rc = topo_dead_letter(t, topic, t->partition, rec, msg, NULL, err, errlen);
    if (rc == 0) rc = topo_after_record(t, err, errlen);
    ctx->event_ts = -1;
    ctx->task = NULL;
    ctx->rec = NULL;
    t->stats.process_ns += topo_now_ns() - t0;
    if (rc < 0) return rc == -1 ? -EIO : rc;
    return 1;
  }
  if (ctx->late) {
    /* A windowed operator dropped the record: its windows had closed. */
    t->stats.late_dropped++;
    if (ctx->late == 2) rc = topo_dead_letter(t, topic, t->partition, rec, ctx->late_msg, "late", err, errlen);
  }
  if (rc == 0) rc = topo_after_record(t, err, errlen);
  ctx->event_ts = -1; /* the state is shared by the thread's tasks */
  ctx->task = NULL;
  ctx->rec = NULL;
  t->stats.process_ns += topo_now_ns() - t0;
  return rc < 0 ? (rc == -1 ? -EIO : rc) : 0;
}

/* ---- global tables ------------------------------------------------------- */

static topo_global_pos_t *topo_global_pos(topo_task_t *t, const char *topic, int32_t partition) {
  for (int i = 0; i < t->ngpos; i++)
    if (t->gpos[i].partition == partition && strcmp(t->gpos[i].topic, topic) == 0)
      return &t->gpos[i];
  const char *own = NULL;
  for (int i = 0; i < t->sub->nglobals; i++) {
    const char *g = t->job->stores[t->sub->globals[i] - 1].global_topic;
    if (strcmp(g, topic) == 0) own = g;
  }
  if (!own) return NULL;
  topo_global_pos_t *np = realloc(t->gpos, (size_t)(t->ngpos + 1) * sizeof *np);
  if (!np) return NULL;
  t->gpos = np;
  topo_global_pos_t *gp = &t->gpos[t->ngpos++];
  gp->topic = own;
  gp->partition = partition;
  gp->next = 0;
  int64_t off;
  if (store_db_offset(t->db, own, partition, &off) == 1) gp->next = off;
  return gp;
}

int topo_task_global_apply(topo_task_t *t, const char *topic, int32_t partition,
                           const log_record_t *rec, char *err, size_t errlen) {
  topo_global_pos_t *gp = topo_global_pos(t, topic, partition);
  if (!gp) {
    snprintf(err, errlen, "%s: %s is not a global table of sub-topology %d", t->job->name, topic,
             t->sub->id);
    return -EINVAL;
  }
  topo_vm_t *vm = t->vm;
  lua_State *L = vm->L;
  topo_ctx_t *ctx = vm->ctx;
  ctx->task = t;
  ctx->topic = topic;
  ctx->partition = partition;
  ctx->rec = rec;
  ctx->out_ts = rec->timestamp;
  ctx->event_ts = -1; /* a global row is no event of the task */
  ctx->nextra = 0;
  ctx->extra_len = 0;
  t->hdr_rec = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm->entries_ref);
  lua_getfield(L, -1, topic);
  lua_remove(L, -2);
  if (rec->key) lua_pushlstring(L, rec->key, (size_t)rec->key_len);
  else lua_pushnil(L);
  if (rec->value) lua_pushlstring(L, rec->value, (size_t)rec->value_len);
  else lua_pushnil(L);
  char msg[2048];
  int rc = luavm_pcall(vm->vm, 2, 0, msg, sizeof msg);
  gp->next = rec->offset + 1;
  if (rc != 0) {
    /* A row that cannot be decoded: as a record of any input. */
    t->stats.errors++;
    if (!t->job->tolerate_errors) {
      snprintf(err, errlen, "%s: global table %s-%d offset %" PRId64 ": %s", t->job->name, topic,
               partition, rec->offset, msg);
      gp->next = rec->offset;
      rc = -EINVAL;
    } else {
      rc = topo_dead_letter(t, topic, partition, rec, msg, NULL, err, errlen) == 0 ? 1 : -EIO;
    }
  }
  ctx->task = NULL;
  ctx->rec = NULL;
  return rc;
}

typedef struct {
  topo_task_t *task;
  const char *topic;
  int32_t partition;
  int failed;
  char msg[1024];              /* why apply failed (io->read has its own err) */
} topo_global_read_t;

static int topo_global_one(void *arg, const log_record_t *rec) {
  topo_global_read_t *g = arg;
  if (topo_task_global_apply(g->task, g->topic, g->partition, rec, g->msg, sizeof g->msg) < 0) {
    g->failed = 1;
    return -1;
  }
  return 0;
}

int topo_task_global_poll(topo_task_t *t, char *err, size_t errlen) {
  if (!t->io->read) return 0;
  for (int i = 0; i < t->sub->nglobals; i++) {
    const char *topic = t->job->stores[t->sub->globals[i] - 1].global_topic;
    int n = t->io->partitions(t->io->opaque, topic);
    for (int32_t p = 0; p < n; p++) {
      topo_global_pos_t *gp = topo_global_pos(t, topic, p);
      if (!gp) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
      }
      topo_global_read_t g = {t, gp->topic, p, 0, ""};
      int64_t end;
      int rc = t->io->read(t->io->opaque, topic, p, gp->next, -1, topo_global_one, &g, &end, err,
                           errlen);
      if (g.failed) {
        snprintf(err, errlen, "%s", g.msg);
        return -EINVAL;
      }
      if (rc != 0) return rc < 0 ? rc : -EIO;
    }
  }
  return 0;
}

/* ---- commit and restore ------------------------------------------------ */

static int topo_changelog_append(void *opaque, store_t *s, const store_change_t *changes,
                                 size_t n, int64_t *changelog_end) {
  topo_commit_ctx_t *cc = opaque;
  topo_task_t *t = cc->task;
  int idx = 0;
  for (int i = 1; i <= t->job->nstores; i++)
    if (t->stores[i] == s) idx = i;
  if (!idx) return -1;
  const char *changelog = t->job->stores[idx - 1].changelog;
  if (!changelog) {
    /* A global table: its topic is its changelog. */
    *changelog_end = 0;
    return 0;
  }
  char *err = cc->err ? cc->err : cc->msg;
  size_t errlen = cc->err ? cc->errlen : sizeof cc->msg;
  log_record_t *recs = calloc(n, sizeof *recs);
  if (!recs) return -1;
  for (size_t i = 0; i < n; i++) {
    recs[i].timestamp = -1;
    recs[i].key = changes[i].key;
    recs[i].key_len = (int32_t)changes[i].klen;
    recs[i].value = changes[i].val;
    recs[i].value_len = changes[i].val ? (int32_t)changes[i].vlen : -1;
  }
  int64_t base = 0;
  int rc = t->io->append(t->io->opaque, changelog, t->partition, recs, n, &base, err, errlen);
  free(recs);
  if (rc != 0) return -1;
  *changelog_end = base + (int64_t)n;
  t->clog_end[idx] = *changelog_end;
  return 0;
}

/* Step 4: the checkpoint record (see the top of this file). */
static int topo_checkpoint(topo_task_t *t, char *err, size_t errlen) {
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"inputs", 6);
  yajl_gen_array_open(g);
  for (int i = 0; i < t->sub->nsources; i++) {
    yajl_gen_array_open(g);
    yajl_gen_string(g, (const unsigned char *)t->sub->sources[i].topic,
                    strlen(t->sub->sources[i].topic));
    yajl_gen_integer(g, t->positions[i]);
    yajl_gen_array_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_string(g, (const unsigned char *)"changelogs", 10);
  yajl_gen_array_open(g);
  for (int i = 0; i < t->sub->nstores; i++) {
    int idx = t->sub->stores[i];
    if (t->clog_end[idx] < 0) continue;
    const char *cl = t->job->stores[idx - 1].changelog;
    yajl_gen_array_open(g);
    yajl_gen_string(g, (const unsigned char *)cl, strlen(cl));
    yajl_gen_integer(g, t->clog_end[idx]);
    yajl_gen_array_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_string(g, (const unsigned char *)"stream_time", 11);
  yajl_gen_integer(g, t->stream_time);
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  char key[32], topic[300];
  snprintf(key, sizeof key, "%d_%d", t->sub->id, t->partition);
  snprintf(topic, sizeof topic, "%s-checkpoints", t->job->name);
  log_record_t rec = {.timestamp = -1, .key = key, .key_len = (int32_t)strlen(key),
                      .value = buf, .value_len = (int32_t)len};
  int rc = t->io->append(t->io->opaque, topic, 0, &rec, 1, NULL, err, errlen);
  yajl_gen_free(g);
  /* What the checkpoint covers may now be compacted; nothing after it. */
  for (int i = 0; rc == 0 && t->io->compaction_limit && i < t->sub->nstores; i++) {
    int idx = t->sub->stores[i];
    if (t->clog_end[idx] >= 0)
      t->io->compaction_limit(t->io->opaque, t->job->stores[idx - 1].changelog, t->partition,
                              t->clog_end[idx]);
  }
  return rc;
}

/* Expires old windows of the task's window stores: those that ended more
 * than the store's retention before stream time. Retention is at least
 * size + grace, so an expired window is closed: no record can update it
 * again (a late one is dropped before reading the store). Runs once per
 * half retention (at least a minute) of stream time, like Kafka Streams'
 * segments, so the cache walk stays rare. */
static int topo_expire(topo_task_t *t, char *err, size_t errlen) {
  if (t->stream_time < 0) return 0;
  for (int i = 0; i < t->sub->nstores; i++) {
    int idx = t->sub->stores[i];
    const topo_store_t *sd = &t->job->stores[idx - 1];
    if (!sd->window || sd->retention <= 0) continue;
    int64_t cutoff = t->stream_time - sd->retention;
    int64_t step = sd->retention / 2 > 60000 ? sd->retention / 2 : 60000;
    if (t->expired_upto[idx] != INT64_MIN && cutoff < t->expired_upto[idx] + step) continue;
    int rc = store_window_expire(t->stores[idx], cutoff);
    if (rc != 0) {
      snprintf(err, errlen, "%s", store_db_errmsg(t->db));
      return rc;
    }
    t->expired_upto[idx] = cutoff;
  }
  return 0;
}

int topo_task_commit(topo_task_t *t, char *err, size_t errlen) {
  uint64_t t0 = topo_now_ns();
  int rc = topo_task_flush(t, err, errlen);
  if (rc != 0) return rc;
  store_offset_t offs[64];
  int n = 0;
  for (int i = 0; i < t->sub->nsources && n < 63; i++)
    offs[n++] = (store_offset_t){t->sub->sources[i].topic, t->partition, t->positions[i]};
  if (t->stream_time >= 0)
    offs[n++] = (store_offset_t){TOPO_STREAM_TIME, t->partition, t->stream_time};
  rc = topo_expire(t, err, errlen);
  if (rc != 0) return rc;
  /* A global table's rows and its positions commit together, like the
   * task's inputs: a restart resumes the topic where the rows stop. */
  store_offset_t *goffs = offs;
  if (t->ngpos > 64 - n) {
    goffs = malloc((size_t)(n + t->ngpos) * sizeof *goffs);
    if (!goffs) {
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
    memcpy(goffs, offs, (size_t)n * sizeof *goffs);
  }
  for (int i = 0; i < t->ngpos; i++)
    goffs[n++] = (store_offset_t){t->gpos[i].topic, t->gpos[i].partition, t->gpos[i].next};
  /* The callback's reason goes to cc.msg; the store's message names the
   * store, and both are kept. */
  t->cc.msg[0] = '\0';
  rc = store_db_commit(t->db, goffs, (size_t)n, t->io->read ? topo_changelog_append : NULL,
                       &t->cc, err, errlen);
  if (goffs != offs) free(goffs);
  if (rc == STORE_E_CHANGELOG && t->cc.msg[0]) {
    size_t used = strlen(err);
    if (used < errlen) snprintf(err + used, errlen - used, ": %s", t->cc.msg);
  }
  if (rc == 0 && t->io->read) rc = topo_checkpoint(t, err, errlen);
  t->stats.commits++;
  t->stats.commit_ns += topo_now_ns() - t0;
  return rc;
}

typedef struct {
  store_t *store;
  int failed;
} topo_restore_ctx_t;

static int topo_restore_one(void *arg, const log_record_t *rec) {
  topo_restore_ctx_t *rc = arg;
  if (!rec->key) return 0;
  if (store_restore_put(rc->store, rec->key, (size_t)rec->key_len, rec->value,
                        rec->value ? (size_t)rec->value_len : 0) != 0) {
    rc->failed = 1;
    return -1;
  }
  return 0;
}

typedef struct {
  const char *key;
  char *value;                 /* the task's latest checkpoint (owned) */
} topo_find_ctx_t;

static int topo_find_checkpoint(void *arg, const log_record_t *rec) {
  topo_find_ctx_t *f = arg;
  if (!rec->key || (size_t)rec->key_len != strlen(f->key) ||
      memcmp(rec->key, f->key, (size_t)rec->key_len) != 0)
    return 0;
  free(f->value);
  f->value = rec->value ? strndup(rec->value, (size_t)rec->value_len) : NULL;
  return 0;
}

/* The [topic, number] pairs of a checkpoint's array `field`. */
static int64_t topo_checkpoint_get(yajl_val cp, const char *field, const char *topic) {
  const char *path[] = {field, NULL};
  yajl_val arr = yajl_tree_get(cp, path, yajl_t_array);
  for (size_t i = 0; arr && i < arr->u.array.len; i++) {
    yajl_val pair = arr->u.array.values[i];
    if (YAJL_IS_ARRAY(pair) && pair->u.array.len == 2 && YAJL_IS_STRING(pair->u.array.values[0]) &&
        YAJL_IS_INTEGER(pair->u.array.values[1]) &&
        strcmp(pair->u.array.values[0]->u.string, topic) == 0)
      return YAJL_GET_INTEGER(pair->u.array.values[1]);
  }
  return -1;
}

/* Brings a new, reset or stale state file up to the task's last
 * checkpoint; a file at (or, after a crash between steps 3 and 4, ahead
 * of) the checkpoint is left alone. */
static int topo_task_restore(topo_task_t *t, char *err, size_t errlen) {
  char key[32], topic[300];
  snprintf(key, sizeof key, "%d_%d", t->sub->id, t->partition);
  snprintf(topic, sizeof topic, "%s-checkpoints", t->job->name);
  topo_find_ctx_t f = {key, NULL};
  int64_t end;
  int rc = t->io->read(t->io->opaque, topic, 0, 0, -1, topo_find_checkpoint, &f, &end, err, errlen);
  if (rc != 0 || !f.value) {
    free(f.value);
    return rc; /* no checkpoint: the task starts from nothing */
  }
  char ebuf[256];
  yajl_val cp = yajl_tree_parse(f.value, ebuf, sizeof ebuf);
  free(f.value);
  if (!cp) {
    snprintf(err, errlen, "%s: checkpoint %s is not JSON: %s", topic, key, ebuf);
    return -EINVAL;
  }
  int behind = 0;
  for (int i = 0; i < t->sub->nsources; i++)
    behind |= topo_checkpoint_get(cp, "inputs", t->sub->sources[i].topic) > t->positions[i];
  if (!behind) {
    yajl_tree_free(cp);
    return 0;
  }
  for (int i = 0; i < t->sub->nstores && rc == 0; i++) {
    int idx = t->sub->stores[i];
    const topo_store_t *sd = &t->job->stores[idx - 1];
    int64_t upto = topo_checkpoint_get(cp, "changelogs", sd->changelog);
    int64_t from = t->clog_end[idx] > 0 ? t->clog_end[idx] : 0;
    if (upto <= from) continue;
    topo_restore_ctx_t rctx = {t->stores[idx], 0};
    int64_t got = 0;
    rc = t->io->read(t->io->opaque, sd->changelog, t->partition, from, upto, topo_restore_one,
                     &rctx, &got, err, errlen);
    if (rc == 0 && rctx.failed) rc = -EIO;
    if (rc == 0) rc = store_restore_done(t->stores[idx], sd->changelog, t->partition, upto, err,
                                         errlen);
    if (rc == 0) {
      t->clog_end[idx] = upto;
      t->stats.restored += (uint64_t)(got - from); /* got: the offset reached */
    }
  }
  for (int i = 0; i < t->sub->nsources && rc == 0; i++) {
    int64_t pos = topo_checkpoint_get(cp, "inputs", t->sub->sources[i].topic);
    if (pos > 0) t->positions[i] = pos;
  }
  const char *stp[] = {"stream_time", NULL};
  yajl_val stv = yajl_tree_get(cp, stp, yajl_t_number);
  if (rc == 0 && stv && YAJL_IS_INTEGER(stv) && YAJL_GET_INTEGER(stv) > t->stream_time)
    t->stream_time = YAJL_GET_INTEGER(stv);
  yajl_tree_free(cp);
  /* Record what was restored, so the next open trusts the file. */
  if (rc == 0) rc = topo_task_commit(t, err, errlen);
  return rc;
}

int topo_task_open(topo_vm_t *vm, int sub, int32_t partition, const char *db_path,
                   size_t cache_bytes, const topo_io_t *io, topo_task_t **out, char *err,
                   size_t errlen) {
  const topo_job_t *job = vm->job;
  if (sub < 0 || sub >= job->nsubs) {
    snprintf(err, errlen, "%s: no sub-topology %d", job->name, sub);
    return -EINVAL;
  }
  topo_task_t *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->vm = vm;
  t->job = job;
  t->sub = &job->subs[sub];
  t->partition = partition;
  t->io = io;
  t->stores = calloc((size_t)job->nstores + 1, sizeof *t->stores);
  t->positions = calloc((size_t)t->sub->nsources + 1, sizeof *t->positions);
  t->clog_end = malloc(((size_t)job->nstores + 1) * sizeof *t->clog_end);
  t->expired_upto = malloc(((size_t)job->nstores + 1) * sizeof *t->expired_upto);
  t->punct_next = calloc((size_t)job->npuncts + 1, sizeof *t->punct_next);
  t->stream_time = -1;
  t->punct_last_st = -1;
  if (!t->stores || !t->positions || !t->clog_end || !t->expired_upto || !t->punct_next) {
    topo_task_close(t);
    return -ENOMEM;
  }
  for (int i = 0; i <= job->nstores; i++) t->clog_end[i] = -1;
  for (int i = 0; i <= job->nstores; i++) t->expired_upto[i] = INT64_MIN;
  /* Stream-time punctuators are aligned at 0 (due at once); wall-clock
   * ones wait for the first topo_task_wall_clock. */
  for (int i = 0; i < job->npuncts; i++)
    t->punct_next[i] = job->puncts[i].wall_clock || job->puncts[i].sub != t->sub->id ? INT64_MIN : 0;
  bool reset = false;
  int rc = store_db_open(db_path, &t->db, &reset, err, errlen);
  if (rc != 0) {
    topo_task_close(t);
    return rc;
  }
  for (int i = 0; i < t->sub->nstores; i++) {
    int idx = t->sub->stores[i];
    rc = job->stores[idx - 1].window
             ? store_window_open(t->db, job->stores[idx - 1].name, cache_bytes, &t->stores[idx],
                                 err, errlen)
             : store_open(t->db, job->stores[idx - 1].name, cache_bytes, &t->stores[idx], err,
                          errlen);
    if (rc != 0) {
      topo_task_close(t);
      return rc;
    }
  }
  for (int i = 0; i < t->sub->nglobals; i++) {
    int idx = t->sub->globals[i];
    rc = store_open(t->db, job->stores[idx - 1].name, cache_bytes, &t->stores[idx], err, errlen);
    if (rc != 0) {
      topo_task_close(t);
      return rc;
    }
  }
  /* A reset file has no positions: it restores like a new one. */
  (void)reset;
  for (int i = 0; i < t->sub->nsources; i++) {
    int64_t off = 0;
    if (store_db_offset(t->db, t->sub->sources[i].topic, partition, &off) == 1)
      t->positions[i] = off;
  }
  int64_t st;
  if (store_db_offset(t->db, TOPO_STREAM_TIME, partition, &st) == 1) t->stream_time = st;
  t->punct_last_st = t->stream_time;
  if (io->read) {
    t->cc.task = t;
    store_db_set_changelog(t->db, topo_changelog_append, &t->cc);
    for (int i = 0; i < t->sub->nstores; i++) {
      int idx = t->sub->stores[i];
      const char *cl = job->stores[idx - 1].changelog;
      store_set_changelog_topic(t->stores[idx], cl, partition);
      int64_t endoff;
      if (store_db_offset(t->db, cl, partition, &endoff) == 1) t->clog_end[idx] = endoff;
    }
    /* The last checkpoint decides whether the file is behind (new,
     * reset or stale); see the top of this file. */
    rc = topo_task_restore(t, err, errlen);
    /* Global tables are read to the end before the first record. */
    if (rc == 0 && t->sub->nglobals > 0) {
      rc = topo_task_global_poll(t, err, errlen);
      if (rc == 0) rc = topo_task_commit(t, err, errlen);
    }
    if (rc != 0) {
      topo_task_close(t);
      return rc;
    }
  }
  *out = t;
  return 0;
}

void topo_task_close(topo_task_t *t) {
  if (!t) return;
  if (t->db) store_db_close(t->db);
  for (int i = 0; i < t->ntopics; i++) free(t->topics[i].topic);
  free(t->topics);
  free(t->stores);
  free(t->positions);
  free(t->clog_end);
  free(t->expired_upto);
  free(t->punct_next);
  free(t->outs);
  free(t->arena);
  free(t->gpos);
  free(t);
}

int64_t topo_task_position(topo_task_t *t, const char *topic) {
  int si = topo_source_index(t, topic);
  return si < 0 ? 0 : t->positions[si];
}

const topo_task_stats_t *topo_task_stats(const topo_task_t *t) { return &t->stats; }

void topo_task_cache_stats(const topo_task_t *t, uint64_t *hits, uint64_t *misses) {
  *hits = *misses = 0;
  for (int i = 0; i < t->sub->nstores; i++) {
    store_stats_t st;
    store_stats(t->stores[t->sub->stores[i]], &st);
    *hits += st.hits;
    *misses += st.misses;
  }
}
int topo_task_sub(const topo_task_t *t) { return t->sub->id; }
int32_t topo_task_partition(const topo_task_t *t) { return t->partition; }
