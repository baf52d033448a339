/*
 * connect_source.c: a source task's thread (Kafka's WorkerSourceTask):
 *
 *   restore   scan the destinations after the last commit (see
 *             connect_offsets.c) so conn_ctx_offset gives the newest
 *             written offset of every source partition
 *   start     plugin->start (retried on CONN_E_RETRY)
 *   loop      poll ─► check converters ─► transforms ─► append to the log
 *             (the poll's last append with CONNECT_SOURCE_HEADERs) ─► every
 *             offset.flush.interval.ms: flush the destination partitions,
 *             then write the offsets and this task's destination marker
 *             to connect-offsets in one append, then plugin->commit
 *   stop      a last commit, plugin->stop
 *
 * Why a restart neither skips nor repeats: a record is acknowledged to the
 * plugin (its offset committed, or found by the restore scan) only once it
 * is in the log, and every record in the log after the last commit is
 * found by the scan. A poll's records are appended per destination
 * partition, one append each, in order, and headers are few: each source
 * partition's header goes on its last record in the last append that
 * holds any of its records, and says the offset the poll ends that source
 * partition at. A header found thus means every record of the poll before
 * it is in the log (a crash leaves a prefix of the appends, and of an
 * append's batches), and no later record of that source partition was
 * appended. A crash that cuts a poll short makes the rest of it be
 * produced again (at least once); a finished poll is exactly once.
 * Headers on every record would let the scan skip records of an append
 * that never happened. The order "destinations flushed, then offsets
 * written" makes commits hold across power loss; a header of a later
 * append of a topic of several partitions may outlive an earlier append
 * that was not flushed (see docs/durability.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect_int.h"
#include "logger.h"

int connect_topic_ensure(log_t *log, const char *topic, int32_t partitions, char *err,
                         size_t errlen) {
  if (log_topic_partitions(log, topic, NULL) > 0) return 0;
  log_error_t le = {0};
  int rc = log_topic_create(log, topic, partitions, NULL, &le);
  if (rc == LOG_E_TOPIC_EXISTS) return 0;
  if (rc != 0) snprintf(err, errlen, "cannot create topic %s: %s", topic, le.msg);
  else logger_info("connect", "created topic %s with %d partition(s)", topic, partitions);
  return rc;
}

/* ---- state of the loop ----------------------------------------------------- */

typedef struct {
  char *topic;
  int32_t partition;
  int64_t mark; /* end offset this task's marker records for it */
} src_tp_t;

typedef struct {
  connect_task_t *t;
  conn_batch_t batch;
  conn_config_t pending;   /* partition JSON -> offset JSON, not yet committed */
  src_tp_t *dests;         /* every partition this task wrote to */
  size_t ndests;
  int64_t seq;             /* last header sequence */
  uint64_t polls;          /* polls that returned records (sticky partitions) */
  char *name_json;         /* "[\"<connector>\"," for the headers */
  size_t name_json_len;
  int64_t last_commit;
  /* per append */
  log_record_t *recs;
  log_header_t *hdrs;
  char *hbuf;              /* header values of one append */
  size_t cap, hcap, hbuf_cap;
  /* per polled record (marks_cap of each), see src_number */
  unsigned char *marks;    /* SRC_KEEP | SRC_HEADER */
  uint32_t *dest, *src;    /* its destination and source partition numbers */
  size_t *dfirst, *slast;  /* per destination its first record, per source its last */
  size_t *shead;           /* per source partition the record with its header */
  uint32_t ndest, nsrc;
  size_t marks_cap;
} src_t;

static src_tp_t *src_dest_find(src_t *s, const char *topic, int32_t partition) {
  for (size_t i = 0; i < s->ndests; i++)
    if (s->dests[i].partition == partition && !strcmp(s->dests[i].topic, topic))
      return &s->dests[i];
  return NULL;
}

static int src_dest_add(src_t *s, const char *topic, int32_t partition, int64_t mark) {
  src_tp_t *d = src_dest_find(s, topic, partition);
  if (d) {
    if (mark < d->mark) d->mark = mark;
    return 0;
  }
  src_tp_t *g = realloc(s->dests, (s->ndests + 1) * sizeof *g);
  if (!g) return -ENOMEM;
  s->dests = g;
  if (!(g[s->ndests].topic = strdup(topic))) return -ENOMEM;
  g[s->ndests].partition = partition;
  g[s->ndests++].mark = mark;
  return 0;
}

/* This task's destination marker: {"<topic>": {"<partition>": mark}}. With
 * refresh, each destination is flushed first and marked at its current
 * end (a commit); else the marks stay (a new destination was added). */
static char *src_marker(src_t *s, bool refresh) {
  connect_task_t *t = s->t;
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_map_open(g);
  for (size_t i = 0; i < s->ndests; i++) {
    bool first = true;
    for (size_t k = 0; k < i; k++)
      if (!strcmp(s->dests[k].topic, s->dests[i].topic)) first = false;
    if (!first) continue;
    yajl_gen_string(g, (const unsigned char *)s->dests[i].topic, strlen(s->dests[i].topic));
    yajl_gen_map_open(g);
    for (size_t k = i; k < s->ndests; k++) {
      if (strcmp(s->dests[k].topic, s->dests[i].topic) != 0) continue;
      log_partition_t *p;
      if (refresh &&
          log_partition_get(t->c->o.log, s->dests[k].topic, s->dests[k].partition, &p, NULL) == 0) {
        log_partition_flush(p, NULL);
        s->dests[k].mark = log_partition_end_offset(p);
      }
      char pk[16];
      snprintf(pk, sizeof pk, "%" PRId32, s->dests[k].partition);
      yajl_gen_string(g, (const unsigned char *)pk, strlen(pk));
      yajl_gen_integer(g, s->dests[k].mark);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
  return conn_json_take(g, NULL);
}

/* ---- restore ------------------------------------------------------------- */

typedef struct {
  src_tp_t *tps;
  int64_t *from;
  size_t n;
} src_marks_t;

static void src_mark(void *arg, const char *topic, int32_t partition, int64_t end) {
  src_marks_t *m = arg;
  for (size_t i = 0; i < m->n; i++)
    if (m->tps[i].partition == partition && !strcmp(m->tps[i].topic, topic)) {
      if (end < m->from[i]) m->from[i] = end;
      return;
    }
  src_tp_t *g = realloc(m->tps, (m->n + 1) * sizeof *g);
  if (g) m->tps = g;
  int64_t *f = realloc(m->from, (m->n + 1) * sizeof *f);
  if (f) m->from = f;
  if (!g || !f || !(g[m->n].topic = strdup(topic))) return;
  g[m->n].partition = partition;
  f[m->n++] = end;
}

/* Reads every destination partition after the markers; the newest header
 * (by sequence) of each source partition goes into t->restored. */
static int src_restore(src_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  src_marks_t m = {0};
  connect_offsets_markers(t->c->offsets, t->connector, src_mark, &m);
  conn_config_t seqs; /* partition key -> seq of the value in restored */
  conn_config_init(&seqs);
  int rc = 0;
  int64_t found = 0;
  for (size_t i = 0; rc == 0 && i < m.n; i++) {
    log_partition_t *p;
    if (log_partition_get(t->c->o.log, m.tps[i].topic, m.tps[i].partition, &p, NULL) != 0)
      continue; /* the topic was deleted: nothing to find */
    int64_t from = m.from[i], start = log_partition_start_offset(p);
    if (from < start) from = start;
    if (src_dest_add(s, m.tps[i].topic, m.tps[i].partition, from) != 0) {
      rc = -ENOMEM;
      break;
    }
    if (from >= log_partition_end_offset(p)) continue;
    log_reader_t *r;
    log_error_t le = {0};
    if ((rc = log_reader_new(t->c->o.log, m.tps[i].topic, m.tps[i].partition, from, 0, &r, &le)) != 0) {
      snprintf(err, errlen, "restoring source offsets: %s", le.msg);
      break;
    }
    log_record_t rec;
    int n;
    while ((n = log_reader_next(r, &rec, &le)) == 1) {
      for (int32_t h = 0; h < rec.header_count; h++) {
        const log_header_t *hd = &rec.headers[h];
        if (hd->key_len != (int32_t)strlen(CONNECT_SOURCE_HEADER) ||
            memcmp(hd->key, CONNECT_SOURCE_HEADER, (size_t)hd->key_len) != 0 || !hd->value)
          continue;
        char *conn, *part, *off;
        int64_t seq;
        if (connect_offsets_header_parse(hd->value, (size_t)hd->value_len, &conn, &part, &off,
                                         &seq) != 0)
          continue;
        char *key = strcmp(conn, t->connector) == 0 ? connect_offsets_key(conn, part) : NULL;
        const char *prev = key ? conn_config_get(&seqs, key) : NULL;
        if (key && off && (!prev || strtoll(prev, NULL, 10) < seq)) {
          char sq[24];
          snprintf(sq, sizeof sq, "%" PRId64, seq);
          conn_config_set(&seqs, key, sq);
          conn_config_set(&t->restored, key, off);
          found++;
        }
        if (seq > s->seq) s->seq = seq;
        free(key);
        free(conn);
        free(part);
        free(off);
      }
    }
    if (n < 0) {
      snprintf(err, errlen, "restoring source offsets: %s", le.msg);
      rc = n;
    }
    log_reader_free(r);
    if (rc == 0 && src_dest_add(s, m.tps[i].topic, m.tps[i].partition, from) != 0) rc = -ENOMEM;
  }
  if (found)
    logger_info("connect", "%s-%d: positions of %zu source partition(s) written after the last "
                "offset commit found in the log; the task resumes after them", t->connector,
                t->id, seqs.count);
  for (size_t i = 0; i < m.n; i++) free(m.tps[i].topic);
  free(m.tps);
  free(m.from);
  conn_config_free(&seqs);
  return rc;
}

/* ---- commit ----------------------------------------------------------------- */

static int src_commit(src_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  s->last_commit = connect_now_ms();
  if (s->pending.count == 0) return 0;
  /* Destinations first: an offset is never durable before its record. */
  int64_t *old = calloc(s->ndests + 1, sizeof *old);
  if (!old) return -ENOMEM;
  for (size_t i = 0; i < s->ndests; i++) old[i] = s->dests[i].mark;
  char *marker = src_marker(s, true);
  if (!marker) {
    free(old);
    return -ENOMEM;
  }
  connect_offset_t *offs = calloc(s->pending.count, sizeof *offs);
  int rc = offs ? 0 : -ENOMEM;
  for (size_t i = 0; offs && i < s->pending.count; i++)
    offs[i] = (connect_offset_t){s->pending.keys[i], s->pending.values[i]};
  if (rc == 0)
    rc = connect_offsets_put(t->c->offsets, t->connector, offs, s->pending.count, t->id,
                             marker, err, errlen);
  free(offs);
  free(marker);
  /* Not committed: the marks must not claim what is not durable. */
  for (size_t i = 0; rc != 0 && i < s->ndests; i++) s->dests[i].mark = old[i];
  free(old);
  if (rc != 0) return rc;
  conn_config_free(&s->pending);
  conn_config_init(&s->pending);
  if (t->m.commits) metrics_add(t->m.commits, 1);
  if (t->plugin->commit && t->started) t->plugin->commit(t->pstate);
  return 0;
}

/* ---- one poll's records --------------------------------------------------- */

/* Checks a record against the converters and runs the transforms.
 * Returns 1 keep, 0 skip (dropped or tolerated), -1 fail (err set). */
static int src_prepare(src_t *s, conn_record_t *r, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  char why[512];
  const char *stage = NULL, *cls = NULL;
  const conn_header_t *bad = conn_record_header(r, CONN_HEADER_ERROR);
  if (bad) { /* the plugin read it but could not make sense of it */
    snprintf(why, sizeof why, "%.*s", bad->value ? (int)bad->value_len : 4,
             bad->value ? (const char *)bad->value : "null");
    stage = "TASK_POLL";
    cls = t->plugin->name;
  } else if (connect_conv_check(t->common.key_conv, r->key, r->key_len, why, sizeof why) != 0) {
    stage = "KEY_CONVERTER";
    cls = connect_conv_class(t->common.key_conv);
  } else if (connect_conv_check(t->common.value_conv, r->value, r->value_len, why,
                                sizeof why) != 0) {
    stage = "VALUE_CONVERTER";
    cls = connect_conv_class(t->common.value_conv);
  } else if (t->chain) {
    int k = conn_chain_apply(t->chain, r, why, sizeof why);
    if (k == 0) return 0;
    if (k < 0) {
      stage = "TRANSFORMATION";
      cls = conn_chain_failed_class(t->chain);
    }
  }
  if (!stage) {
    if (!r->topic || !*r->topic) {
      snprintf(err, errlen, "a source record has no destination topic");
      return -1;
    }
    return 1;
  }
  return connect_errors_handle(t, r, stage, cls, why, err, errlen) == 0 ? 0 : -1;
}

/* The connector's name as the start of a CONNECT_SOURCE_HEADER value,
 * "[\"<name>\",", encoded once. */
static int src_name_json(src_t *s) {
  if (s->name_json) return 0;
  size_t n;
  char *h = connect_offsets_header(s->t->connector, "{}", "{}", 0, &n);
  char *end = h ? strstr(h, ",{},{},0]") : NULL;
  if (!end) {
    free(h);
    return -ENOMEM;
  }
  end[1] = '\0';
  s->name_json = h;
  s->name_json_len = strlen(h);
  return 0;
}

/* Writes one record's header value (what connect_offsets_header writes)
 * at dst, which has room for it; returns its length. No allocation: this
 * runs for every source record. */
static size_t src_header(src_t *s, char *dst, const char *partition, size_t pl,
                         const char *offset, size_t ol) {
  size_t k = s->name_json_len;
  memcpy(dst, s->name_json, k);
  memcpy(dst + k, partition, pl);
  k += pl;
  dst[k++] = ',';
  memcpy(dst + k, offset, ol);
  k += ol;
  dst[k++] = ',';
  char digits[24];
  int nd = 0;
  uint64_t v = (uint64_t)++s->seq;
  do digits[nd++] = (char)('0' + v % 10); while ((v /= 10) > 0);
  while (nd > 0) dst[k++] = digits[--nd];
  dst[k++] = ']';
  return k;
}

/* Marks of a polled record. */
enum {
  SRC_KEEP = 1,   /* appended */
  SRC_HEADER = 2, /* appended with its source header */
};

/* Appends the kept records of destination d (dest[i] == d), in poll
 * order, with the source headers marked. */
static int src_append(src_t *s, uint32_t d, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  conn_batch_t *b = &s->batch;
  const unsigned char *keep = s->marks;
  const char *topic = b->records[s->dfirst[d]].topic;
  int32_t partition = b->records[s->dfirst[d]].partition;
  size_t n = 0, nh = 0, need = 0;
  if (src_name_json(s) != 0) return -ENOMEM;
  for (size_t i = s->dfirst[d]; i < b->count; i++) {
    conn_record_t *r = &b->records[i];
    if (!(keep[i] & SRC_KEEP) || s->dest[i] != d) continue;
    n++;
    nh += (size_t)r->header_count + ((keep[i] & SRC_HEADER) != 0);
    /* Every header value of this append in one buffer, sized first so
     * that the pointers into it stay valid. */
    if (keep[i] & SRC_HEADER)
      need += s->name_json_len + strlen(r->source_partition) +
              strlen(b->records[s->slast[s->src[i]]].source_offset) + 24;
  }
  if (n == 0) return 0;
  if (!src_dest_find(s, topic, partition)) {
    /* A destination no marker covers yet: mark it where it ends now,
     * durably, before writing to it, so that a crash right after the write
     * still finds these records by the restore scan. */
    log_partition_t *p;
    log_error_t le = {0};
    if (log_partition_get(t->c->o.log, topic, partition, &p, &le) != 0) {
      snprintf(err, errlen, "%s-%" PRId32 ": %s", topic, partition, le.msg);
      return -1;
    }
    if (src_dest_add(s, topic, partition, log_partition_end_offset(p)) != 0) return -ENOMEM;
    char *marker = src_marker(s, false);
    int rc = marker ? connect_offsets_put(t->c->offsets, t->connector, NULL, 0, t->id, marker,
                                          err, errlen)
                    : -ENOMEM;
    free(marker);
    if (rc != 0) return rc;
  }
  if (n > s->cap) {
    log_record_t *nr = realloc(s->recs, n * sizeof *nr);
    if (!nr) return -ENOMEM;
    s->recs = nr;
    s->cap = n;
  }
  if (nh > s->hcap) {
    log_header_t *hh = realloc(s->hdrs, nh * sizeof *hh);
    if (!hh) return -ENOMEM;
    s->hdrs = hh;
    s->hcap = nh;
  }
  if (need > s->hbuf_cap) {
    char *nb = realloc(s->hbuf, need);
    if (!nb) return -ENOMEM;
    s->hbuf = nb;
    s->hbuf_cap = need;
  }
  size_t k = 0, h = 0, used = 0;
  for (size_t i = s->dfirst[d]; i < b->count; i++) {
    conn_record_t *r = &b->records[i];
    if (!(keep[i] & SRC_KEEP) || s->dest[i] != d) continue;
    log_header_t *hs = &s->hdrs[h];
    for (int32_t j = 0; j < r->header_count; j++)
      s->hdrs[h++] = (log_header_t){r->headers[j].key, (int32_t)strlen(r->headers[j].key),
                                    r->headers[j].value, r->headers[j].value_len};
    if (keep[i] & SRC_HEADER) { /* the offset the poll ends this source partition at */
      const char *off = b->records[s->slast[s->src[i]]].source_offset;
      char *v = s->hbuf + used;
      size_t vlen = src_header(s, v, r->source_partition, strlen(r->source_partition), off,
                               strlen(off));
      used += vlen;
      s->hdrs[h++] = (log_header_t){CONNECT_SOURCE_HEADER,
                                    (int32_t)sizeof CONNECT_SOURCE_HEADER - 1, v, (int32_t)vlen};
    }
    s->recs[k++] = (log_record_t){.timestamp = r->timestamp, .key = r->key,
                                  .key_len = r->key_len, .value = r->value,
                                  .value_len = r->value_len, .headers = hs,
                                  .header_count = (int32_t)(&s->hdrs[h] - hs)};
  }
  log_partition_t *p;
  log_error_t le = {0};
  int rc = log_partition_get(t->c->o.log, topic, partition, &p, &le);
  if (rc == 0) rc = log_partition_append(p, s->recs, k, NULL, &le);
  if (rc != 0) snprintf(err, errlen, "appending to %s-%" PRId32 ": %s", topic, partition, le.msg);
  else if (t->m.written) metrics_add(t->m.written, (double)k);
  if (rc == 0 && k > 0) connect_topic_record(t, topic);
  return rc;
}

/* Grows the per-record arrays of a poll of n records. */
static int src_reserve(src_t *s, size_t n) {
  if (n <= s->marks_cap) return 0;
  unsigned char *m = realloc(s->marks, n);
  if (m) s->marks = m;
  uint32_t *dt = realloc(s->dest, n * sizeof *dt);
  if (dt) s->dest = dt;
  uint32_t *sr = realloc(s->src, n * sizeof *sr);
  if (sr) s->src = sr;
  size_t *df = realloc(s->dfirst, n * sizeof *df);
  if (df) s->dfirst = df;
  size_t *sl = realloc(s->slast, n * sizeof *sl);
  if (sl) s->slast = sl;
  size_t *sh = realloc(s->shead, n * sizeof *sh);
  if (sh) s->shead = sh;
  if (!m || !dt || !sr || !df || !sl || !sh) return -ENOMEM;
  s->marks_cap = n;
  return 0;
}

/* The records' destinations and source partitions as small numbers, so
 * that the passes below compare numbers, not strings (records of a poll
 * mostly share them, but each record owns its copy). dfirst[d] is the
 * first record of destination d, slast[k] the last record of source
 * partition k. Topics' partition counts are looked up once per topic. */
static int src_number(src_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  conn_batch_t *b = &s->batch;
  s->ndest = s->nsrc = 0;
  const char *ptopic = NULL;
  int np = 0;
  for (size_t i = 0; i < b->count; i++) {
    conn_record_t *r = &b->records[i];
    /* Source partitions, of every record (the offsets to commit). */
    uint32_t k = s->nsrc;
    if (i > 0 && (r->source_partition == b->records[i - 1].source_partition ||
                  !strcmp(r->source_partition, b->records[i - 1].source_partition)))
      k = s->src[i - 1];
    for (uint32_t q = 0; k == s->nsrc && q < s->nsrc; q++)
      if (!strcmp(b->records[s->slast[q]].source_partition, r->source_partition)) k = q;
    if (k == s->nsrc) s->nsrc++;
    s->src[i] = k;
    s->slast[k] = i;
    if (!(s->marks[i] & SRC_KEEP)) continue;
    /* The partition, as the producer picks it. */
    if (!ptopic || (r->topic != ptopic && strcmp(r->topic, ptopic) != 0)) {
      ptopic = r->topic;
      np = log_topic_partitions(t->c->o.log, r->topic, NULL);
      if (np <= 0) {
        int rc = connect_topic_ensure(t->c->o.log, r->topic, t->common.create_partitions, err,
                                      errlen);
        if (rc != 0) return rc;
        np = log_topic_partitions(t->c->o.log, r->topic, NULL);
      }
    }
    if (r->partition >= np) {
      snprintf(err, errlen, "a record for %s-%" PRId32 ": the topic has %d partition(s)",
               r->topic, r->partition, np);
      return -1;
    }
    if (r->partition < 0) {
      r->partition = log_partition_for_key(r->key, r->key_len, np);
      /* Unkeyed: one partition per poll, the next one the next time (as
       * Kafka's sticky partitioner sticks to a batch). */
      if (r->partition < 0) r->partition = (int32_t)(s->polls % (uint64_t)np);
    }
    /* Destinations, in the order of their first records. */
    uint32_t d = s->ndest;
    for (uint32_t q = s->ndest; q-- > 0 && d == s->ndest;) {
      const conn_record_t *o = &b->records[s->dfirst[q]];
      if (o->partition == r->partition && (o->topic == r->topic || !strcmp(o->topic, r->topic)))
        d = q;
    }
    if (d == s->ndest) s->dfirst[s->ndest++] = i;
    s->dest[i] = d;
  }
  return 0;
}

static int src_process(src_t *s, char *err, size_t errlen) {
  connect_task_t *t = s->t;
  conn_batch_t *b = &s->batch;
  if (src_reserve(s, b->count) != 0) return -ENOMEM;
  unsigned char *keep = s->marks;
  for (size_t i = 0; i < b->count; i++) {
    conn_record_t *r = &b->records[i];
    if (!r->source_partition || !r->source_offset) {
      snprintf(err, errlen, "%s returned a record without source partition or offset",
               t->plugin->name);
      return -1;
    }
    int k = src_prepare(s, r, err, errlen);
    if (k < 0) return -1;
    keep[i] = k == 1 ? SRC_KEEP : 0;
  }
  int rc = src_number(s, err, errlen);
  if (rc != 0) return rc;
  /* One append per destination partition, in the order of their first
   * records. Source partition k's header goes on its last kept record in
   * the last of those appends that holds any (see the top of this file):
   * walking forward, a record in a later or the same destination wins. */
  for (uint32_t k = 0; k < s->nsrc; k++) s->shead[k] = SIZE_MAX;
  for (size_t i = 0; i < b->count; i++) {
    if (!(keep[i] & SRC_KEEP)) continue;
    size_t *h = &s->shead[s->src[i]];
    if (*h == SIZE_MAX || s->dest[i] >= s->dest[*h]) *h = i;
  }
  for (uint32_t k = 0; k < s->nsrc; k++)
    if (s->shead[k] != SIZE_MAX) keep[s->shead[k]] |= SRC_HEADER;
  for (uint32_t d = 0; rc == 0 && d < s->ndest; d++) rc = src_append(s, d, err, errlen);
  /* Only now are these offsets safe to commit: the last of each source
   * partition. */
  for (uint32_t k = 0; rc == 0 && k < s->nsrc; k++)
    rc = conn_config_set(&s->pending, b->records[s->slast[k]].source_partition,
                         b->records[s->slast[k]].source_offset);
  return rc;
}

/* ---- plugin calls under retry ---------------------------------------------- */

static int src_op_start(connect_task_t *t, void *arg, char *err, size_t errlen) {
  (void)arg;
  return t->plugin->start(t->pstate, &t->ctx, &t->cfg, err, errlen);
}

typedef struct {
  src_t *s;
  int n;
} src_poll_t;

static int src_op_poll(connect_task_t *t, void *arg, char *err, size_t errlen) {
  src_poll_t *a = arg;
  conn_batch_clear(&a->s->batch);
  int n = t->plugin->poll(t->pstate, &a->s->batch, 2048, err, errlen);
  if (n < 0) {
    conn_batch_clear(&a->s->batch);
    return n;
  }
  a->n = n;
  return CONN_OK;
}

void connect_source_run(connect_task_t *t) {
  char err[1024] = "";
  src_t s = {.t = t};
  conn_batch_init(&s.batch);
  conn_config_init(&s.pending);
  s.seq = (int64_t)time(NULL) * 1000000; /* grows across restarts with the clock */
  bool failed = false;
  if (conn_chain_new(&t->conn_cfg, &t->chain, err, sizeof err) != 0 ||
      src_restore(&s, err, sizeof err) != 0) {
    connect_task_fail(t, err);
    goto out;
  }
  int rc = connect_task_retry(t, "start", src_op_start, NULL, err, sizeof err);
  if (rc == 1) goto out;
  if (rc != CONN_OK) {
    connect_task_fail(t, err);
    goto out;
  }
  t->started = true;
  connect__task_state(t, CONNECT_RUNNING, NULL);
  s.last_commit = connect_now_ms();
  while (!connect_task_stopping(t)) {
    src_poll_t a = {&s, 0};
    rc = connect_task_retry(t, "poll", src_op_poll, &a, err, sizeof err);
    if (rc == 1) break;
    if (rc != CONN_OK) {
      failed = true;
      break;
    }
    if (a.n > 0) {
      s.polls++;
      if (t->m.polled) metrics_add(t->m.polled, a.n);
      if (src_process(&s, err, sizeof err) != 0) {
        failed = true;
        break;
      }
    }
    if (connect_now_ms() - s.last_commit >= t->c->o.offset_flush_interval_ms &&
        src_commit(&s, err, sizeof err) != 0)
      logger_warn("connect", "%s-%d: offset commit failed (retried at the next one): %s",
                  t->connector, t->id, err);
    if (a.n == 0) conn_ctx_sleep(&t->ctx, t->common.poll_interval_ms);
  }
  /* What was appended is committed, also when the task fails after it. */
  char e2[512];
  if (src_commit(&s, e2, sizeof e2) != 0)
    logger_warn("connect", "%s-%d: final offset commit failed: %s (the next start finds the "
                "records in the log)", t->connector, t->id, e2);
  if (failed) connect_task_fail(t, err);
  t->plugin->stop(t->pstate);
  t->started = false;
out:
  conn_batch_free(&s.batch);
  conn_config_free(&s.pending);
  for (size_t i = 0; i < s.ndests; i++) free(s.dests[i].topic);
  free(s.dests);
  free(s.recs);
  free(s.hdrs);
  free(s.hbuf);
  free(s.marks);
  free(s.dest);
  free(s.src);
  free(s.dfirst);
  free(s.slast);
  free(s.shead);
  free(s.name_json);
  logger_info("connect", "%s-%d: task stopped", t->connector, t->id);
}
