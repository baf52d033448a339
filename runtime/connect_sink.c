/*
 * connect_sink.c: a sink task's thread (Kafka's WorkerSinkTask):
 *
 *   start     plugin->start (retried); it may conn_ctx_seek
 *   assign    the topic-partitions of `topics` / `topics.regex`, sorted,
 *             the i-th to task i % tasks.max (re-read every few seconds,
 *             so new topics and partitions are picked up)
 *   position  a seek, else the group connect-<name>'s committed offset,
 *             else the log start offset (auto.offset.reset=earliest, as
 *             Kafka Connect's sink consumers)
 *   loop      read at most consumer.override.max.poll.records records ─►
 *             check converters ─► transforms ─► put (retried on
 *             CONN_E_RETRY with the same records) ─► every
 *             offset.flush.interval.ms: flush, then commit the positions
 *             to the group
 *   stop      flush + commit, plugin->stop
 *
 * Back-pressure: nothing is read until the previous put returned, so a
 * slow database slows the reading, and memory stays one batch.
 * A put that fails for good (CONN_E_FAIL, or a reported record under
 * errors.tolerance=none) fails the task without committing: the records
 * come again after a restart.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connect_int.h"
#include "logger.h"

#define SINK_REASSIGN_MS 3000

/* ---- assignment -------------------------------------------------------------- */

static int sink_tp_cmp_idx(const char *ta, int32_t pa, const char *tb, int32_t pb) {
  int c = strcmp(ta, tb);
  return c ? c : (pa > pb) - (pa < pb);
}

int connect_sink_partitions(log_t *log, const conn_config_t *cfg, char ***topics,
                            int32_t **parts, size_t *n) {
  *topics = NULL;
  *parts = NULL;
  *n = 0;
  char **names = NULL;
  const char *re_text = conn_config_get(cfg, "topics.regex");
  regex_t re;
  bool use_re = re_text && *re_text;
  if (use_re) {
    /* Kafka matches the whole topic name (Pattern.matcher().matches()). */
    size_t len = strlen(re_text);
    char *anchored = malloc(len + 5);
    if (!anchored) return -ENOMEM;
    sprintf(anchored, "^(%s)$", re_text);
    int rc = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) return -EINVAL;
    if (log_topic_list(log, false, &names) < 0) names = NULL;
  } else {
    names = conn_get_list(connect_sink_defs, cfg, "topics");
  }
  size_t cap = 0;
  int rc = 0;
  for (char **tn = names; tn && *tn && rc == 0; tn++) {
    if (!**tn || (use_re && regexec(&re, *tn, 0, NULL, 0) != 0)) continue;
    int np = log_topic_partitions(log, *tn, NULL);
    for (int p = 0; p < np; p++) {
      if (*n == cap) {
        cap = cap ? cap * 2 : 16;
        char **nt = realloc(*topics, cap * sizeof *nt);
        int32_t *npp = realloc(*parts, cap * sizeof *npp);
        if (nt) *topics = nt;
        if (npp) *parts = npp;
        if (!nt || !npp) {
          rc = -ENOMEM;
          break;
        }
      }
      if (!((*topics)[*n] = strdup(*tn))) {
        rc = -ENOMEM;
        break;
      }
      (*parts)[(*n)++] = p;
    }
  }
  if (use_re) {
    regfree(&re);
    log_names_free(names);
  } else {
    conn_list_free(names);
  }
  /* Sorted (insertion sort: a handful of partitions). */
  for (size_t i = 1; i < *n; i++)
    for (size_t k = i; k > 0 && sink_tp_cmp_idx((*topics)[k - 1], (*parts)[k - 1], (*topics)[k],
                                                 (*parts)[k]) > 0; k--) {
      char *tt = (*topics)[k];
      (*topics)[k] = (*topics)[k - 1];
      (*topics)[k - 1] = tt;
      int32_t pp = (*parts)[k];
      (*parts)[k] = (*parts)[k - 1];
      (*parts)[k - 1] = pp;
    }
  return rc;
}

typedef struct {
  char *topic;
  int32_t partition;
  log_partition_t *p;
  log_reader_t *r;
  int64_t pos;        /* next offset to read */
  int64_t committed;  /* last committed position (-1: none) */
} sink_tp_t;

typedef struct {
  connect_task_t *t;
  char group[600];
  sink_tp_t *tps;
  size_t ntps;
  int efd;
  int64_t last_assign, last_commit;
  conn_record_t *recs;  /* the current batch as read: views into arena */
  size_t nrecs, cap;
  conn_record_t *out;   /* what put gets: views (no transforms) or owned
                           copies (out_owned, made by the transforms) */
  size_t nout;
  bool out_owned;
  conn_record_t *put;   /* recs (the views, when nothing checks or changes
                           them) or out */
  struct sink_chunk {   /* the batch's bytes, in chunks that never move */
    char *p;
    size_t used, cap;
  } *chunks;
  size_t nchunks, chunk;
  size_t *tp_of;        /* recs[i] came from tps[tp_of[i]] */
  int64_t *off_of;      /* ... at this offset (recs may be moved to out) */
} sink_t;

static sink_tp_t *sink_find(sink_t *s, const char *topic, int32_t partition) {
  for (size_t i = 0; i < s->ntps; i++)
    if (s->tps[i].partition == partition && !strcmp(s->tps[i].topic, topic)) return &s->tps[i];
  return NULL;
}

static int sink_position(sink_t *s, sink_tp_t *tp, int64_t want, char *err, size_t errlen) {
  int64_t start = log_partition_start_offset(tp->p), end = log_partition_end_offset(tp->p);
  if (want < start) want = start;
  if (want > end) want = end;
  log_error_t le = {0};
  int rc = tp->r ? log_reader_seek(tp->r, want, &le)
                 : log_reader_new(s->t->c->o.log, tp->topic, tp->partition, want, 0, &tp->r, &le);
  if (rc != 0) snprintf(err, errlen, "%s-%" PRId32 ": %s", tp->topic, tp->partition, le.msg);
  else tp->pos = want;
  return rc;
}

static void sink_tp_drop(sink_t *s, size_t i) {
  sink_tp_t *tp = &s->tps[i];
  if (tp->p && s->efd >= 0) log_partition_unwatch(tp->p, s->efd);
  log_reader_free(tp->r);
  free(tp->topic);
  s->tps[i] = s->tps[--s->ntps];
}

/* Adds the partitions now assigned to this task; drops the others. */
static int sink_assign(sink_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  s->last_assign = connect_now_ms();
  char **topics;
  int32_t *parts;
  size_t n;
  int rc = connect_sink_partitions(t->c->o.log, &t->conn_cfg, &topics, &parts, &n);
  int ntasks = t->ntasks > 0 ? t->ntasks : 1;
  for (size_t i = 0; i < s->ntps;) {
    bool keep = false;
    for (size_t k = 0; k < n && !keep; k++)
      keep = (int)(k % (size_t)ntasks) == t->id && parts[k] == s->tps[i].partition &&
             !strcmp(topics[k], s->tps[i].topic);
    if (keep) i++;
    else sink_tp_drop(s, i);
  }
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if ((int)(k % (size_t)ntasks) != t->id || sink_find(s, topics[k], parts[k])) continue;
    sink_tp_t *g = realloc(s->tps, (s->ntps + 1) * sizeof *g);
    if (!g) {
      rc = -ENOMEM;
      break;
    }
    s->tps = g;
    sink_tp_t *tp = &g[s->ntps];
    *tp = (sink_tp_t){.partition = parts[k], .committed = -1};
    if (log_partition_get(t->c->o.log, topics[k], parts[k], &tp->p, NULL) != 0) continue;
    tp->topic = topics[k];
    topics[k] = NULL;
    s->ntps++;
    int64_t off = -1;
    log_group_fetch(t->c->o.log, s->group, tp->topic, tp->partition, &off, NULL);
    if ((rc = sink_position(s, tp, off < 0 ? 0 : off, err, errlen)) != 0) break;
    /* Nothing to commit until the position moves. */
    tp->committed = off < 0 ? tp->pos : off;
    if (s->efd >= 0) log_partition_watch(tp->p, s->efd);
    logger_info("connect", "%s-%d: assigned %s-%" PRId32 " from offset %" PRId64, t->connector,
                t->id, tp->topic, tp->partition, tp->pos);
  }
  for (size_t k = 0; k < n; k++) free(topics[k]);
  free(topics);
  free(parts);
  return rc;
}

static void sink_apply_seeks(sink_t *s) {
  connect_task_t *t = s->t;
  pthread_mutex_lock(&t->seek_mu);
  for (size_t i = 0; i < t->nseeks; i++) {
    sink_tp_t *tp = sink_find(s, t->seeks[i].topic, t->seeks[i].partition);
    char err[512];
    if (tp && sink_position(s, tp, t->seeks[i].offset, err, sizeof err) != 0)
      logger_warn("connect", "%s-%d: seek: %s", t->connector, t->id, err);
    free(t->seeks[i].topic);
  }
  t->nseeks = 0;
  pthread_mutex_unlock(&t->seek_mu);
}

/* ---- reading a batch ------------------------------------------------------ */

/* The bytes of one batch (keys, values, headers) live in chunks of at
 * least SINK_CHUNK bytes that are reused from batch to batch: reading a
 * record costs memcpys, not a malloc and a free per field. */
#define SINK_CHUNK (1u << 20)

static void *sink_alloc(sink_t *s, size_t len) {
  len = (len + 7) & ~(size_t)7; /* keeps conn_header_t arrays aligned */
  while (s->chunk < s->nchunks) {
    struct sink_chunk *c = &s->chunks[s->chunk];
    if (c->cap - c->used >= len) {
      c->used += len;
      return c->p + c->used - len;
    }
    if (++s->chunk < s->nchunks) s->chunks[s->chunk].used = 0;
  }
  struct sink_chunk *g = realloc(s->chunks, (s->nchunks + 1) * sizeof *g);
  if (!g) return NULL;
  s->chunks = g;
  size_t cap = len > SINK_CHUNK ? len : SINK_CHUNK;
  if (!(g[s->nchunks].p = malloc(cap))) return NULL;
  g[s->nchunks] = (struct sink_chunk){g[s->nchunks].p, len, cap};
  s->chunk = s->nchunks++;
  return g[s->chunk].p;
}

static void sink_alloc_reset(sink_t *s) {
  s->chunk = 0;
  if (s->nchunks) s->chunks[0].used = 0;
}

static void *sink_dup(sink_t *s, const void *p, int32_t len) {
  if (!p || len < 0) return NULL;
  char *d = sink_alloc(s, (size_t)len + 1);
  if (d) {
    memcpy(d, p, (size_t)len);
    d[len] = '\0';
  }
  return d;
}

/* dst becomes a view of rec: its bytes copied into the batch's chunks,
 * topic borrowed from the assignment. Never conn_record_clear'ed. */
static int sink_view(sink_t *s, conn_record_t *dst, char *topic, int32_t partition,
                     const log_record_t *rec) {
  *dst = (conn_record_t){.topic = topic, .partition = partition, .offset = rec->offset,
                         .timestamp = rec->timestamp, .key_len = -1, .value_len = -1};
  if (rec->key && rec->key_len >= 0) {
    if (!(dst->key = sink_dup(s, rec->key, rec->key_len))) return -ENOMEM;
    dst->key_len = rec->key_len;
  }
  if (rec->value && rec->value_len >= 0) {
    if (!(dst->value = sink_dup(s, rec->value, rec->value_len))) return -ENOMEM;
    dst->value_len = rec->value_len;
  }
  int32_t nh = 0;
  for (int32_t h = 0; h < rec->header_count; h++)
    nh += !(rec->headers[h].key_len == (int32_t)sizeof CONNECT_SOURCE_HEADER - 1 &&
            !memcmp(rec->headers[h].key, CONNECT_SOURCE_HEADER, sizeof CONNECT_SOURCE_HEADER - 1));
  if (nh == 0) return 0;
  if (!(dst->headers = sink_alloc(s, (size_t)nh * sizeof *dst->headers))) return -ENOMEM;
  for (int32_t h = 0; h < rec->header_count; h++) {
    const log_header_t *lh = &rec->headers[h];
    /* The framework's own source header is not the sink's business. */
    if (lh->key_len == (int32_t)sizeof CONNECT_SOURCE_HEADER - 1 &&
        !memcmp(lh->key, CONNECT_SOURCE_HEADER, sizeof CONNECT_SOURCE_HEADER - 1))
      continue;
    conn_header_t *ch = &dst->headers[dst->header_count++];
    *ch = (conn_header_t){.key = sink_dup(s, lh->key, lh->key_len), .value_len = -1};
    if (!ch->key) return -ENOMEM;
    if (lh->value && lh->value_len >= 0) {
      if (!(ch->value = sink_dup(s, lh->value, lh->value_len))) return -ENOMEM;
      ch->value_len = lh->value_len;
    }
  }
  return 0;
}

static int sink_read(sink_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  size_t max = (size_t)t->common.max_poll_records;
  if (max > s->cap) {
    conn_record_t *g = realloc(s->recs, max * sizeof *g);
    size_t *to = realloc(s->tp_of, max * sizeof *to);
    conn_record_t *o = realloc(s->out, max * sizeof *o);
    int64_t *oo = realloc(s->off_of, max * sizeof *oo);
    if (g) s->recs = g;
    if (to) s->tp_of = to;
    if (o) s->out = o;
    if (oo) s->off_of = oo;
    if (!g || !to || !o || !oo) return -ENOMEM;
    s->cap = max;
  }
  s->nrecs = 0;
  /* Round-robin over partitions so that none starves. */
  size_t share = s->ntps ? (max + s->ntps - 1) / s->ntps : 0;
  for (size_t i = 0; i < s->ntps && s->nrecs < max; i++) {
    sink_tp_t *tp = &s->tps[i];
    size_t got = 0;
    log_error_t le; /* written on failure only (not zeroed: 512 bytes a record) */
    le.msg[0] = '\0';
    while (got < share && s->nrecs < max) {
      log_record_t rec;
      int n = log_reader_next(tp->r, &rec, &le);
      if (n < 0) {
        snprintf(err, errlen, "reading %s-%" PRId32 ": %s", tp->topic, tp->partition, le.msg);
        return n;
      }
      if (n == 0) break;
      if (sink_view(s, &s->recs[s->nrecs], tp->topic, tp->partition, &rec) != 0)
        return -ENOMEM;
      s->off_of[s->nrecs] = rec.offset;
      s->tp_of[s->nrecs++] = i;
      got++;
    }
    if (got > 0) connect_topic_record(s->t, tp->topic);
  }
  return 0;
}

static void sink_clear(sink_t *s) {
  if (s->out_owned)
    for (size_t i = 0; i < s->nout; i++) conn_record_clear(&s->out[i]);
  s->nrecs = 0;
  s->nout = 0;
  sink_alloc_reset(s);
}

/* Converters and transforms: s->out gets the records to put (moved out of
 * s->recs, which keep their positions). Returns 0, or -1 to fail. */
static int sink_prepare(sink_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  s->nout = 0;
  s->out_owned = t->chain != NULL;
  if (!t->chain && t->common.key_conv != CONNECT_CONV_JSON &&
      t->common.value_conv != CONNECT_CONV_JSON) { /* nothing to check or change */
    s->put = s->recs;
    s->nout = s->nrecs;
    return 0;
  }
  s->put = s->out;
  for (size_t i = 0; i < s->nrecs; i++) {
    conn_record_t *r = &s->recs[i];
    char why[512];
    const char *stage = NULL, *cls = NULL;
    if (connect_conv_check(t->common.key_conv, r->key, r->key_len, why, sizeof why) != 0) {
      stage = "KEY_CONVERTER";
      cls = connect_conv_class(t->common.key_conv);
    } else if (connect_conv_check(t->common.value_conv, r->value, r->value_len, why,
                                  sizeof why) != 0) {
      stage = "VALUE_CONVERTER";
      cls = connect_conv_class(t->common.value_conv);
    }
    conn_record_t tmp;
    conn_record_init(&tmp);
    if (!stage && !t->chain) { /* nothing changes it: put gets the view */
      s->out[s->nout++] = *r;
      continue;
    }
    if (!stage && conn_record_copy(&tmp, r) != 0) return -1;
    if (!stage && t->chain) {
      int k = conn_chain_apply(t->chain, &tmp, why, sizeof why);
      if (k == 0) {
        conn_record_clear(&tmp);
        continue;
      }
      if (k < 0) {
        stage = "TRANSFORMATION";
        cls = conn_chain_failed_class(t->chain);
      }
    }
    if (stage) {
      conn_record_clear(&tmp);
      if (connect_errors_handle(t, r, stage, cls, why, err, errlen) != 0) return -1;
      continue;
    }
    s->out[s->nout++] = tmp;
  }
  return 0;
}

/* ---- flush and commit ------------------------------------------------------ */

static int sink_op_flush(connect_task_t *t, void *arg, char *err, size_t errlen) {
  (void)arg;
  return t->plugin->flush ? t->plugin->flush(t->pstate, err, errlen) : CONN_OK;
}

/* Flushes the plugin, then commits every position that moved. Returns
 * CONN_OK, CONN_E_FAIL (err) or 1 (stopping during a retry). */
static int sink_commit(sink_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  s->last_commit = connect_now_ms();
  bool moved = false;
  for (size_t i = 0; i < s->ntps; i++) moved |= s->tps[i].pos != s->tps[i].committed;
  if (!moved) return CONN_OK;
  int rc = connect_task_retry(t, "flush", sink_op_flush, NULL, err, errlen);
  if (rc != CONN_OK) return rc;
  for (size_t i = 0; i < s->ntps; i++) {
    sink_tp_t *tp = &s->tps[i];
    if (tp->pos == tp->committed) continue;
    log_error_t le = {0};
    if (log_group_commit(t->c->o.log, s->group, tp->topic, tp->partition, tp->pos, &le) != 0) {
      logger_warn("connect", "%s-%d: committing %s: %s", t->connector, t->id, s->group, le.msg);
      continue;
    }
    tp->committed = tp->pos;
  }
  if (t->m.commits) metrics_add(t->m.commits, 1);
  return CONN_OK;
}

/* ---- the loop ---------------------------------------------------------------- */

static int sink_op_start(connect_task_t *t, void *arg, char *err, size_t errlen) {
  (void)arg;
  return t->plugin->start(t->pstate, &t->ctx, &t->cfg, err, errlen);
}

static int sink_op_put(connect_task_t *t, void *arg, char *err, size_t errlen) {
  sink_t *s = arg;
  t->put_errors_fatal = 0;
  int rc = t->plugin->put(t->pstate, s->put, s->nout, err, errlen);
  /* A record the framework did not tolerate (conn_ctx_report under
   * errors.tolerance=none): the trace is the error handler's ("Tolerance
   * exceeded ... stage 'TASK_PUT' ..."), whatever the plugin then said
   * while giving up the put. */
  if (rc != CONN_E_RETRY && t->put_errors_fatal) {
    snprintf(err, errlen, "%s", t->report_err);
    return CONN_E_FAIL;
  }
  return rc;
}

static void sink_wait(sink_t *s) {
  struct pollfd pfd = {.fd = s->efd, .events = POLLIN};
  if (s->efd < 0 || s->ntps == 0) {
    conn_ctx_sleep(&s->t->ctx, 100);
    return;
  }
  if (poll(&pfd, 1, 100) > 0) {
    uint64_t v;
    if (read(s->efd, &v, sizeof v) < 0) { /* nothing to do: it is a wake-up */
    }
  }
}

void connect_sink_run(connect_task_t *t) {
  char err[1024] = "";
  sink_t s = {.t = t, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  snprintf(s.group, sizeof s.group, "connect-%s", t->connector);
  bool failed = false;
  if (conn_chain_new(&t->conn_cfg, &t->chain, err, sizeof err) != 0) {
    connect_task_fail(t, err);
    goto out;
  }
  int rc = connect_task_retry(t, "start", sink_op_start, NULL, err, sizeof err);
  if (rc == 1) goto out;
  if (rc != CONN_OK) {
    connect_task_fail(t, err);
    goto out;
  }
  t->started = true;
  connect__task_state(t, CONNECT_RUNNING, NULL);
  if (sink_assign(&s, err, sizeof err) != 0) {
    failed = true;
    goto stop;
  }
  s.last_commit = connect_now_ms();
  while (!connect_task_stopping(t)) {
    int64_t now = connect_now_ms();
    /* Waiting for a topic to appear: look again sooner. */
    int64_t every = s.ntps ? SINK_REASSIGN_MS : SINK_REASSIGN_MS / 6;
    if (now - s.last_assign >= every && sink_assign(&s, err, sizeof err) != 0) {
      failed = true;
      break;
    }
    sink_apply_seeks(&s);
    if (sink_read(&s, err, sizeof err) != 0) {
      sink_clear(&s);
      failed = true;
      break;
    }
    if (t->m.lag) {
      double lag = 0;
      for (size_t i = 0; i < s.ntps; i++) {
        int64_t pos = s.tps[i].pos;
        for (size_t k = 0; k < s.nrecs; k++)
          if (s.tp_of[k] == i && s.off_of[k] + 1 > pos) pos = s.off_of[k] + 1;
        lag += (double)(log_partition_end_offset(s.tps[i].p) - pos);
      }
      metrics_set(t->m.lag, lag);
    }
    if (s.nrecs > 0) {
      if (t->m.read) metrics_add(t->m.read, (double)s.nrecs);
      if (sink_prepare(&s, err, sizeof err) != 0) {
        sink_clear(&s);
        failed = true;
        break;
      }
      rc = s.nout ? connect_task_retry(t, "put", sink_op_put, &s, err, sizeof err) : CONN_OK;
      if (rc == CONN_OK && s.nout) {
        if (t->m.put) metrics_add(t->m.put, (double)s.nout);
        if (t->m.batches) metrics_add(t->m.batches, 1);
      }
      if (rc == CONN_OK) /* every read record is handled: advance */
        for (size_t i = 0; i < s.nrecs; i++) s.tps[s.tp_of[i]].pos = s.off_of[i] + 1;
      sink_clear(&s);
      if (rc == 1) break; /* stopping during a retry: nothing advanced */
      if (rc != CONN_OK) {
        failed = true;
        break;
      }
    }
    if (connect_now_ms() - s.last_commit >= t->c->o.offset_flush_interval_ms) {
      rc = sink_commit(&s, err, sizeof err);
      if (rc == 1) break;
      if (rc != CONN_OK) {
        failed = true;
        break;
      }
    }
    if (s.nrecs == 0 && s.nout == 0) {
      bool idle = true;
      for (size_t i = 0; i < s.ntps && idle; i++)
        idle = s.tps[i].pos >= log_partition_end_offset(s.tps[i].p);
      if (idle) sink_wait(&s);
    }
  }
stop:
  if (!failed) {
    /* A clean stop commits what was put (a retry in progress gives up). */
    char e2[1024];
    atomic_store(&t->stop, false);
    t->common.retry_timeout_ms = 1;
    if (sink_commit(&s, e2, sizeof e2) != CONN_OK)
      logger_warn("connect", "%s-%d: final flush failed, records since the last commit come "
                  "again: %s", t->connector, t->id, e2);
    atomic_store(&t->stop, true);
  } else {
    connect_task_fail(t, err);
  }
  t->plugin->stop(t->pstate);
  t->started = false;
out:
  sink_clear(&s);
  while (s.ntps) sink_tp_drop(&s, 0);
  free(s.tps);
  free(s.recs);
  free(s.out);
  for (size_t i = 0; i < s.nchunks; i++) free(s.chunks[i].p);
  free(s.chunks);
  free(s.tp_of);
  free(s.off_of);
  if (s.efd >= 0) close(s.efd);
  logger_info("connect", "%s-%d: task stopped", t->connector, t->id);
}
