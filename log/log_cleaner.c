/*
 * log_cleaner.c: keyed log compaction (cleanup.policy containing
 * "compact"), Kafka's log cleaner semantics for one partition per call.
 *
 * WHAT A PASS DOES (log__cleaner_run, from the thread running log_maintain)
 *
 *   1. Flush the partition, so the recovery point names the active segment
 *      (see "Why the flush" below). The cleanable range is every segment
 *      whose base offset is below the recovery point's segment: all
 *      segments before the active one. The active segment is never read
 *      or touched.
 *   2. Build a map key -> latest offset over the cleanable range, in
 *      offset order (Kafka's OffsetMap over the dirty section). Keys are
 *      compared by a 64-bit hash of their bytes. The map has a bounded size
 *      (log__cleaner_map_slots_max); when it fills, the pass goes in rounds
 *      as Kafka's clean and dirty sections: clean what was mapped whole,
 *      then map the following segments and clean everything up to them
 *      against that map (see log__cleaner_run).
 *   3. For each mapped segment in ascending offset order, decide per record
 *      (see "Which records go"); when nothing goes the segment is left
 *      alone, otherwise it is rewritten beside the original and swapped in
 *      (see "Files and the swap").
 *   4. Report the pass through the log's on_event: records and bytes
 *      removed, segments rewritten and deleted.
 *
 * WHICH RECORDS GO. A record is removed iff all of these hold:
 *   R1. its key is not null (null-keyed records are always kept);
 *   R2. its batch's maxTimestamp is at least min.compaction.lag.ms old
 *       (now_ms - maxTimestamp >= lag);
 *   R3. the map holds a later offset for its key (it was superseded), or it
 *       is the latest for its key, its value is null (a tombstone), and
 *       now_ms - its timestamp > delete.retention.ms.
 * Control batches are copied unchanged. Kept records keep their offsets,
 * timestamps, headers and order. A batch whose records are all kept is
 * copied byte for byte; a batch with some records kept is re-encoded with
 * its original baseOffset and lastOffsetDelta (so offsets have gaps but
 * never move, as Kafka's MemoryRecords.filterTo); a batch with none kept is
 * dropped.
 *
 * EMPTY SEGMENTS. A segment whose records all go is deleted, except the
 * first segment of the partition: its base offset is the log start offset,
 * which compaction must not move (Kafka does not move it either). The first
 * segment, when emptied, keeps one batch with no records spanning its
 * offsets [base, next offset - 1] with its largest timestamp, so that time
 * retention (compact,delete) still sees its age after a restart. Deleting
 * the last segment before the active one loses nothing: the end offset is
 * the active segment's. A read of an offset inside a removed range returns
 * the next existing record (log_partition_read walks to the first batch
 * whose last offset is >= the offset, into the next segment if needed).
 *
 * FILES AND THE SWAP, for the segment <base> (all in the partition dir):
 *
 *   state                 files                               crash here ->
 *   S0 original           <base>.log .index .timeindex        original
 *   S1 written            + <base>.log.cleaned,               original: open
 *                           .index.cleaned, .timeindex.cleaned  deletes *.cleaned
 *                           (all fsynced)
 *   S2 committed          .log.cleaned renamed to             compacted: open
 *                           <base>.log.swap; dir fsynced        finishes the swap
 *   S3 in place           .index.cleaned -> .index,           (S2 rule; indexes
 *                           .timeindex.cleaned -> .timeindex,   are rebuilt)
 *                           .log.swap -> .log; dir fsynced
 *   S4 in memory          the partition's segment object is replaced under
 *                           p->mu: new readers see the new file; readers
 *                           holding the old object keep reading its fd,
 *                           which still refers to the replaced file.
 *
 * The rename of .log.cleaned to .log.swap is the commit point. At open
 * (log_recovery.c): every *.cleaned file is deleted; for a <base>.log.swap,
 * the two index files of <base> are deleted (they may be old or new) and
 * the swap is renamed over <base>.log (the indexes are rebuilt from the
 * batch headers at load); a .log.swap whose <base>.log is gone (retention
 * deleted the segment meanwhile) is deleted. The renames of S3 go index
 * files first and .log last, so while a .log.swap exists no index is
 * trusted. An emptied segment that is deleted (not swapped) is unlinked
 * after the segments before it were swapped and their renames fsynced.
 *
 * ORDER: segments are swapped in ascending offset order, each durable
 * before the next. A crash between two swaps leaves a log where every
 * removed record was superseded by a record that is still there, or was a
 * tombstone whose older values are already gone: a removed key can never
 * come back.
 *
 * WHY THE FLUSH. The recovery point names a segment and a byte position in
 * it. If it still named a segment that compaction rewrote, recovery would
 * scan the new file from a position that is no batch boundary, "find" a
 * corrupt batch and truncate the log there. Flushing first moves the
 * recovery point to the active segment, and only segments below it are
 * cleaned.
 *
 * THREADS. One pass at a time in the process (cleaner_mu), so a background
 * log_maintain and an explicit one never clean the same partition at once.
 * The appender keeps appending to the active segment during a pass (the
 * pass never takes append_mu). Segment objects are reference counted: the
 * pass holds a reference on each segment it reads; p->mu is held only to
 * look segments up, for the S3 renames (so retention cannot unlink a
 * segment between the check and the rename) and for the S4 replacement,
 * never across an fsync or a data read.
 *
 * WHERE RUNNEL DIFFERS FROM KAFKA
 *   - Keys are compared by a 64-bit hash (MurmurHash64A of the key bytes),
 *     not Kafka's 128-bit MD5: two distinct keys with the same hash would
 *     let the older record of one be removed by the other. With n distinct
 *     keys in the cleanable range the chance of any collision is about
 *     n^2 / 2^65 (1e7 keys: ~3e-6 per pass). Accepted, as the brief and
 *     Kafka accept a hash map.
 *   - Null keys are kept (Kafka rejects them in compacted topics at
 *     produce time).
 *   - Tombstones go when their own timestamp is older than
 *     delete.retention.ms. Kafka instead removes them delete.retention.ms
 *     after the segment holding them was first cleaned (the "delete
 *     horizon", stamped in the batch since KIP-534). Ours can remove a
 *     tombstone in the first pass that sees it if it is already old, so a
 *     consumer that is more than delete.retention.ms behind the tombstone's
 *     own timestamp may miss it; Kafka's rule gives such a consumer
 *     delete.retention.ms from the cleaning instead.
 *   - min.compaction.lag.ms is checked per batch (its maxTimestamp), where
 *     Kafka checks it per segment (a segment with any record younger than
 *     the lag ends the cleanable range). The map still covers every
 *     non-active segment, so an old record superseded by a young one is
 *     removed; the young one stays.
 *   - No cleaner checkpoint and no min.cleanable.dirty.ratio: every pass
 *     maps all non-active segments, and rewrites only segments with
 *     something to remove (a clean log costs reads, no writes).
 *   - No merging of small segments: each segment is rewritten into
 *     itself (Kafka groups segments up to segment.bytes).
 *   - An emptied first segment keeps a record-less batch (above).
 */
#include "log_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int (*log__cleaner_hook)(log_partition_t *p, int step, int64_t base_offset) = NULL;
size_t log__cleaner_map_slots_max = (size_t)1 << 22;

static pthread_mutex_t cleaner_mu = PTHREAD_MUTEX_INITIALIZER;

#define ATTR_CONTROL 0x20
#define ATTR_KEEP_ON_REWRITE 0x18 /* timestampType, transactional */
#define SCAN_CHUNK ((size_t)1 << 20)
#define OUT_FLUSH ((size_t)1 << 20)

/* ---- the key -> latest offset map ---------------------------------------
 * Open addressing with linear probing over (hash, offset) slots, as Kafka's
 * SkimpyOffsetMap; an empty slot has offset -1. Filled to 3/4 at most. */

typedef struct {
  uint64_t hash;
  int64_t offset;
} map_slot_t;

typedef struct {
  map_slot_t *slots;
  size_t mask, used, limit;
} offset_map_t;

/* MurmurHash64A (Austin Appleby, public domain), seed 0. */
static uint64_t key_hash(const uint8_t *key, size_t len) {
  const uint64_t m = 0xc6a4a7935bd1e995ull;
  const int r = 47;
  uint64_t h = (uint64_t)len * m;
  const uint8_t *end = key + (len & ~(size_t)7);
  for (const uint8_t *p = key; p < end; p += 8) {
    uint64_t k;
    memcpy(&k, p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  uint64_t t = 0;
  switch (len & 7) {
  case 7: t ^= (uint64_t)end[6] << 48; /* fall through */
  case 6: t ^= (uint64_t)end[5] << 40; /* fall through */
  case 5: t ^= (uint64_t)end[4] << 32; /* fall through */
  case 4: t ^= (uint64_t)end[3] << 24; /* fall through */
  case 3: t ^= (uint64_t)end[2] << 16; /* fall through */
  case 2: t ^= (uint64_t)end[1] << 8;  /* fall through */
  case 1:
    t ^= (uint64_t)end[0];
    h ^= t;
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

/* Sized for `want` keys, within [256, log__cleaner_map_slots_max] slots. */
static int map_init(offset_map_t *m, uint64_t want) {
  size_t max = log__cleaner_map_slots_max < 16 ? 16 : log__cleaner_map_slots_max;
  size_t slots = 256;
  while (slots < max && (uint64_t)slots * 3 / 4 < want)
    slots *= 2;
  if (slots > max)
    slots = max;
  m->slots = malloc(slots * sizeof *m->slots);
  if (!m->slots)
    return -ENOMEM;
  for (size_t i = 0; i < slots; i++)
    m->slots[i].offset = -1;
  m->mask = slots - 1; /* slots is a power of two unless max is not */
  if ((slots & m->mask) != 0) {
    /* A max that is not a power of two: use the largest one below it. */
    size_t p2 = 16;
    while (p2 * 2 <= slots)
      p2 *= 2;
    m->mask = p2 - 1;
  }
  m->used = 0;
  m->limit = (m->mask + 1) * 3 / 4;
  return 0;
}

static size_t map_find(const offset_map_t *m, uint64_t h) {
  size_t i = (size_t)h & m->mask;
  while (m->slots[i].offset >= 0 && m->slots[i].hash != h)
    i = (i + 1) & m->mask;
  return i;
}

/* false when the key is new and the map is full. */
static bool map_put(offset_map_t *m, uint64_t h, int64_t offset) {
  size_t i = map_find(m, h);
  if (m->slots[i].offset < 0) {
    if (m->used >= m->limit)
      return false;
    m->used++;
    m->slots[i].hash = h;
  }
  m->slots[i].offset = offset;
  return true;
}

static int64_t map_get(const offset_map_t *m, uint64_t h) {
  return m->slots[map_find(m, h)].offset;
}

/* ---- reading a segment batch by batch ------------------------------------ */

typedef struct {
  log__segment_t *seg;
  int64_t limit;      /* bytes of the segment to read */
  int64_t file_pos;   /* file position of buf[len] */
  uint8_t *buf;
  size_t cap, len, at;
} scan_t;

static void scan_start(scan_t *s, log__segment_t *seg, int64_t limit) {
  s->seg = seg;
  s->limit = limit;
  s->file_pos = 0;
  s->len = s->at = 0;
}

/* Makes at least `need` unread bytes available in the buffer. */
static int scan_fill(scan_t *s, size_t need) {
  if (s->len - s->at >= need)
    return 0;
  if (s->at > 0)
    memmove(s->buf, s->buf + s->at, s->len - s->at);
  s->len -= s->at;
  s->at = 0;
  size_t want = need > SCAN_CHUNK ? need : SCAN_CHUNK;
  if (want > s->cap) {
    uint8_t *nb = realloc(s->buf, want);
    if (!nb)
      return -ENOMEM;
    s->buf = nb;
    s->cap = want;
  }
  int64_t left = s->limit - s->file_pos;
  size_t n = s->cap - s->len;
  if ((int64_t)n > left)
    n = (size_t)left;
  if (s->len + n < need)
    return LOG_E_CORRUPT; /* the segment ends inside a batch */
  int rc = log__segment_pread(s->seg, s->buf + s->len, n, s->file_pos);
  if (rc < 0)
    return rc;
  s->len += n;
  s->file_pos += (int64_t)n;
  return 0;
}

/* Next whole, validated batch: 1 with *batch and *size (valid until the next
 * call), 0 at the end, or a negative error with err saying where. */
static int scan_next(scan_t *s, const uint8_t **batch, size_t *size, const char *label,
                     log_error_t *err) {
  if (s->at == s->len && s->file_pos >= s->limit)
    return 0;
  int64_t pos = s->file_pos - (int64_t)(s->len - s->at);
  int rc = scan_fill(s, LOG__BATCH_LOG_OVERHEAD);
  int32_t blen = rc == 0 ? (int32_t)log__be32(s->buf + s->at + 8) : 0;
  if (rc == 0 && blen < LOG__BATCH_HEADER_SIZE - LOG__BATCH_LOG_OVERHEAD)
    rc = LOG_E_CORRUPT;
  if (rc == 0)
    rc = scan_fill(s, (size_t)blen + LOG__BATCH_LOG_OVERHEAD);
  log_error_t verr = {0};
  if (rc == 0)
    rc = log__batch_validate(s->buf + s->at, (size_t)blen + LOG__BATCH_LOG_OVERHEAD, &verr);
  if (rc < 0)
    return log__errf(err, rc, "%s: compaction: segment %" PRId64 " position %" PRId64 ": %s",
                     label, s->seg->base_offset, pos,
                     verr.msg[0] ? verr.msg : rc < -1000 ? log_strerror(rc) : strerror(-rc));
  *batch = s->buf + s->at;
  *size = (size_t)blen + LOG__BATCH_LOG_OVERHEAD;
  s->at += *size;
  return 1;
}

/* ---- one pass ------------------------------------------------------------ */

typedef struct {
  log_partition_t *p;
  int64_t now_ms;
  offset_map_t map;
  scan_t scan;
  /* kept records of the batch being rewritten */
  log_record_t *recs;
  int64_t *offs;
  size_t *hstart;              /* index of each record's headers in hdrs */
  size_t cap_recs;
  log_header_t *hdrs;
  size_t nhdrs, cap_hdrs;
  /* output */
  uint8_t *out;
  size_t out_len, out_cap;
  /* totals for the event */
  int64_t removed_records, removed_bytes;
  int segs_rewritten, segs_deleted;
} cleaner_t;

static bool removable(const cleaner_t *c, const log_record_t *r, int64_t batch_max_ts) {
  if (r->key_len < 0)
    return false; /* R1 */
  if (c->now_ms - batch_max_ts < c->p->cfg.min_compaction_lag_ms)
    return false; /* R2 */
  int64_t latest = map_get(&c->map, key_hash(r->key, (size_t)r->key_len));
  if (latest > r->offset)
    return true; /* R3, superseded */
  return latest == r->offset && r->value_len < 0 &&
         c->now_ms - r->timestamp > c->p->cfg.delete_retention_ms; /* R3, tombstone */
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap : 64;
  while (ncap < need)
    ncap *= 2;
  void *n = realloc(*arr, ncap * elem);
  if (!n)
    return -ENOMEM;
  *arr = n;
  *cap = ncap;
  return 0;
}

static uint16_t batch_attributes(const uint8_t *b) {
  return (uint16_t)((unsigned)b[21] << 8 | b[22]);
}

/* Pass 1: maps the records of segs[0..n) in offset order. *mapped: how
 * many segments were mapped whole before the map filled (n when it did
 * not). Entries of a segment mapped in part stay: each names a record that
 * exists and is newer, so removals they cause are still right. The map
 * must be empty. */
static int map_build(cleaner_t *c, log__segment_t **segs, size_t n, size_t *mapped,
                     log_error_t *err) {
  *mapped = 0;
  for (size_t i = 0; i < n; i++) {
    scan_start(&c->scan, segs[i], segs[i]->size);
    const uint8_t *b;
    size_t size;
    int rc = 0;
    bool full = false;
    while (!full && (rc = scan_next(&c->scan, &b, &size, c->p->label, err)) == 1) {
      if (batch_attributes(b) & ATTR_CONTROL)
        continue;
      log__record_iter_t it;
      log_record_t r;
      rc = log__record_iter_init(&it, b, size);
      while (rc == 0 && (rc = log__record_iter_next(&it, &r)) == 1) {
        rc = 0;
        if (r.key_len >= 0 &&
            !map_put(&c->map, key_hash(r.key, (size_t)r.key_len), r.offset))
          full = true;
        if (full)
          break;
      }
      log__record_iter_close(&it);
      if (rc < 0)
        return log__errf(err, rc, "%s: compaction: segment %" PRId64 ": %s", c->p->label,
                         segs[i]->base_offset,
                         rc == -ENOMEM ? "out of memory" : log_strerror(rc));
    }
    if (rc < 0)
      return rc; /* scan_next filled err */
    if (full)
      return 0;
    *mapped = i + 1;
  }
  return 0;
}

static int out_reserve(cleaner_t *c, size_t more) {
  return grow((void **)&c->out, &c->out_cap, c->out_len + more, 1);
}

static int write_all_at(int fd, const uint8_t *p, size_t n, int64_t off) {
  return log__pwrite_full(log__pwrite_hook, fd, p, n, off);
}

/* The record-less batch an emptied first segment keeps: offsets
 * [base, last], both timestamps max_ts. */
static void empty_batch(uint8_t *dst, int64_t base, int64_t last, int64_t max_ts) {
  memset(dst, 0, LOG__BATCH_HEADER_SIZE);
  log__put_be64(dst, (uint64_t)base);
  log__put_be32(dst + 8, LOG__BATCH_HEADER_SIZE - LOG__BATCH_LOG_OVERHEAD);
  dst[16] = LOG__BATCH_MAGIC;
  log__put_be32(dst + 23, (uint32_t)(last - base));
  log__put_be64(dst + 27, (uint64_t)max_ts);
  log__put_be64(dst + 35, (uint64_t)max_ts);
  memset(dst + 43, 0xff, 14); /* producerId, producerEpoch, baseSequence -1 */
  log__put_be32(dst + 17, log__crc32c(0, dst + 21, LOG__BATCH_HEADER_SIZE - 21));
}

/* Re-encodes the kept records c->recs[0..n) of batch `orig` into c->out,
 * keeping its baseOffset, lastOffsetDelta, leader epoch, producer fields
 * and timestamp type. */
static int rewrite_batch(cleaner_t *c, const uint8_t *orig, const log__batch_header_t *h,
                         size_t n) {
  for (size_t j = 0; j < n; j++)
    c->recs[j].headers = c->recs[j].header_count > 0 ? c->hdrs + c->hstart[j] : NULL;
  size_t size = log__batch_encoded_size_exact(c->recs, n, h->base_offset, c->offs, c->now_ms);
  if (out_reserve(c, size) < 0)
    return -ENOMEM;
  uint8_t *dst = c->out + c->out_len;
  size_t w = log__batch_encode(dst, h->base_offset, c->recs, n, c->offs, c->now_ms);
  if (w != size)
    return -EINVAL;
  memcpy(dst + 12, orig + 12, 4);
  uint16_t attrs = (uint16_t)(((unsigned)orig[21] << 8 | orig[22]) & ATTR_KEEP_ON_REWRITE);
  dst[21] = (uint8_t)(attrs >> 8);
  dst[22] = (uint8_t)attrs;
  log__put_be32(dst + 23, (uint32_t)h->last_offset_delta);
  memcpy(dst + 43, orig + 43, 14);
  log__put_be32(dst + 17, log__crc32c(0, dst + 21, size - 21));
  c->out_len += size;
  return 0;
}

/* Grows recs, offs and hstart together to at least need entries. */
static int reserve_recs(cleaner_t *c, size_t need) {
  if (need <= c->cap_recs)
    return 0;
  size_t ncap = c->cap_recs ? c->cap_recs * 2 : 64;
  while (ncap < need)
    ncap *= 2;
  log_record_t *r = realloc(c->recs, ncap * sizeof *r);
  if (r)
    c->recs = r;
  int64_t *o = r ? realloc(c->offs, ncap * sizeof *o) : NULL;
  if (o)
    c->offs = o;
  size_t *h = o ? realloc(c->hstart, ncap * sizeof *h) : NULL;
  if (!h)
    return -ENOMEM;
  c->hstart = h;
  c->cap_recs = ncap;
  return 0;
}

/* Decides every record of one (non-control) batch: *total records, *kept
 * of them stay. With collect, the kept ones are gathered into c->recs,
 * c->offs and c->hdrs for rewrite_batch. */
static int batch_filter(cleaner_t *c, const uint8_t *b, size_t size, const log__batch_header_t *h,
                        size_t *kept, size_t *total, bool collect) {
  log__record_iter_t it;
  log_record_t r;
  int rc = log__record_iter_init(&it, b, size);
  *kept = *total = 0;
  c->nhdrs = 0;
  while (rc == 0 && (rc = log__record_iter_next(&it, &r)) == 1) {
    rc = 0;
    (*total)++;
    if (removable(c, &r, h->max_timestamp))
      continue;
    if (collect) {
      if (reserve_recs(c, *kept + 1) < 0 ||
          grow((void **)&c->hdrs, &c->cap_hdrs, c->nhdrs + (size_t)r.header_count,
               sizeof *c->hdrs) < 0) {
        rc = -ENOMEM;
        break;
      }
      /* Header arrays belong to the iterator and are reused: copy them
       * (their bytes point into the batch, which stays put). */
      if (r.header_count > 0)
        memcpy(c->hdrs + c->nhdrs, r.headers, (size_t)r.header_count * sizeof *c->hdrs);
      c->hstart[*kept] = c->nhdrs;
      c->nhdrs += r.header_count > 0 ? (size_t)r.header_count : 0;
      c->offs[*kept] = r.offset;
      c->recs[*kept] = r;
    }
    (*kept)++;
  }
  log__record_iter_close(&it);
  return rc < 0 ? rc : 0;
}

/* The test hook; a negative return is reported as an error. */
static int hook(cleaner_t *c, int step, int64_t base, log_error_t *err) {
  int rc = log__cleaner_hook ? log__cleaner_hook(c->p, step, base) : 0;
  if (rc < 0)
    log__errf(err, rc, "%s: compaction of segment %" PRId64 " stopped by the test hook "
              "after step %d", c->p->label, base, step);
  return rc;
}

/* Index of seg in p->segs among the non-active ones, or -1. mu held. */
static ssize_t seg_index(const log_partition_t *p, const log__segment_t *seg) {
  if (p->closed)
    return -1;
  for (size_t i = 0; i + 1 < p->nsegs; i++)
    if (p->segs[i] == seg)
      return (ssize_t)i;
  return -1;
}

static void path_of(char *buf, size_t cap, const log__segment_t *seg, const char *ext) {
  snprintf(buf, cap, "%s%s", seg->path, ext);
}

static void unlink_cleaned(const log__segment_t *seg) {
  char path[4200];
  path_of(path, sizeof path, seg, ".log.cleaned");
  unlink(path);
  path_of(path, sizeof path, seg, ".index.cleaned");
  unlink(path);
  path_of(path, sizeof path, seg, ".timeindex.cleaned");
  unlink(path);
}

/* Deletes a non-first segment whose records all go. */
static int delete_segment(cleaner_t *c, log__segment_t *seg) {
  log_partition_t *p = c->p;
  pthread_mutex_lock(&p->mu);
  ssize_t i = seg_index(p, seg);
  if (i <= 0) { /* gone, or it became the first: keep the start offset */
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  memmove(p->segs + i, p->segs + i + 1, (p->nsegs - (size_t)i - 1) * sizeof *p->segs);
  p->nsegs--;
  pthread_mutex_unlock(&p->mu);
  log__segment_unlink(seg);
  log__segment_unref(seg); /* the list's reference; readers keep theirs */
  c->segs_deleted++;
  return log__fsync_dir(p->dir);
}

/* Writes the cleaned copy of seg (S1), commits it (S2), renames it into
 * place (S3) and swaps the segment object (S4). first: seg was the
 * partition's first segment. Returns 0, a negative error, or the hook's
 * positive stop value. */
static int clean_segment(cleaner_t *c, log__segment_t *seg, bool first, log_error_t *err) {
  log_partition_t *p = c->p;
  const int32_t interval = p->cfg.index_interval_bytes;
  char path[4200], path2[4200];
  int rc = 0;

  /* Dry run: is there anything to remove? Reads only. */
  int64_t gone_records = 0, gone_bytes = 0;
  size_t kept, total;
  const uint8_t *b;
  size_t size;
  scan_start(&c->scan, seg, seg->size);
  while ((rc = scan_next(&c->scan, &b, &size, p->label, err)) == 1) {
    log__batch_header_t h;
    (void)log__batch_header_parse(b, size, &h);
    if (h.attributes & ATTR_CONTROL)
      continue;
    if ((rc = batch_filter(c, b, size, &h, &kept, &total, false)) < 0)
      return log__errf(err, rc, "%s: compaction: segment %" PRId64 ": %s", p->label,
                       seg->base_offset, rc == -ENOMEM ? "out of memory" : log_strerror(rc));
    gone_records += (int64_t)(total - kept);
  }
  if (rc < 0)
    return rc;
  if (gone_records == 0)
    return 0;

  /* S1: <base>.log.cleaned and its indexes, through a scratch segment
   * whose commit writes index entries exactly as an append would. */
  log__segment_t out;
  memset(&out, 0, sizeof out);
  out.base_offset = seg->base_offset;
  out.next_offset = seg->base_offset;
  out.max_timestamp = out.offset_of_max_ts = out.first_timestamp = -1;
  out.index.fd_off = out.index.fd_time = -1;
  path_of(path, sizeof path, seg, ".log.cleaned");
  out.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out.fd >= 0) {
    path_of(path2, sizeof path2, seg, ".index.cleaned");
    out.index.fd_off = open(path2, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    path_of(path2, sizeof path2, seg, ".timeindex.cleaned");
    out.index.fd_time = open(path2, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (out.fd < 0 || out.index.fd_off < 0 || out.index.fd_time < 0) {
    rc = log__errf(err, -errno, "%s: compaction: create %s.*.cleaned: %s", p->label, seg->path,
                   strerror(errno));
    goto fail;
  }
  int64_t written = 0; /* bytes of out.out already in the file */
  c->out_len = 0;
  scan_start(&c->scan, seg, seg->size);
  while ((rc = scan_next(&c->scan, &b, &size, p->label, err)) == 1) {
    log__batch_header_t h;
    (void)log__batch_header_parse(b, size, &h);
    size_t at = c->out_len;
    rc = 0;
    if (h.attributes & ATTR_CONTROL) {
      kept = total = 1;
    } else {
      rc = batch_filter(c, b, size, &h, &kept, &total, true);
    }
    if (rc == 0 && kept == total) {
      if ((rc = out_reserve(c, size)) == 0) {
        memcpy(c->out + c->out_len, b, size);
        c->out_len += size;
      }
    } else if (rc == 0 && kept > 0) {
      rc = rewrite_batch(c, b, &h, kept);
    }
    if (rc < 0) {
      rc = log__errf(err, rc, "%s: compaction: segment %" PRId64 " batch at offset %" PRId64
                     ": %s", p->label, seg->base_offset, h.base_offset,
                     rc == -ENOMEM ? "out of memory" : rc == -EINVAL ? "encoder size mismatch"
                                                                     : log_strerror(rc));
      goto fail;
    }
    gone_bytes += (int64_t)size - (int64_t)(c->out_len - at);
    if (c->out_len > at) {
      log__batch_header_t nh;
      (void)log__batch_header_parse(c->out + at, c->out_len - at, &nh);
      log__batch_info_t info = {nh.base_offset, nh.base_offset + nh.last_offset_delta,
                                nh.max_timestamp, nh.batch_length + LOG__BATCH_LOG_OVERHEAD};
      log__segment_commit(&out, &info, interval);
    }
    if (c->out_len >= OUT_FLUSH) {
      if ((rc = write_all_at(out.fd, c->out, c->out_len, written)) < 0)
        goto write_fail;
      written += (int64_t)c->out_len;
      c->out_len = 0;
    }
  }
  if (rc < 0)
    goto fail;
  if (written == 0 && c->out_len == 0) {
    if (!first) {
      log__index_close(&out.index);
      close(out.fd);
      unlink_cleaned(seg);
      c->removed_records += gone_records;
      c->removed_bytes += gone_bytes;
      if ((rc = delete_segment(c, seg)) < 0)
        return log__errf(err, rc, "%s: compaction: fsync dir: %s", p->label, strerror(-rc));
      return 0;
    }
    /* The first segment keeps its offsets and age in a record-less batch. */
    if ((rc = out_reserve(c, LOG__BATCH_HEADER_SIZE)) < 0)
      goto fail;
    empty_batch(c->out, seg->base_offset, seg->next_offset - 1, seg->max_timestamp);
    c->out_len = LOG__BATCH_HEADER_SIZE;
    gone_bytes -= LOG__BATCH_HEADER_SIZE;
    log__batch_info_t info = {seg->base_offset, seg->next_offset - 1, seg->max_timestamp,
                              LOG__BATCH_HEADER_SIZE};
    log__segment_commit(&out, &info, interval);
  }
  if ((rc = write_all_at(out.fd, c->out, c->out_len, written)) < 0)
    goto write_fail;
  c->out_len = 0;
  log__segment_seal(&out);
  if (log__fdatasync_hook(out.fd) < 0 || log__index_sync(&out.index) < 0) {
    rc = log__errf(err, -errno, "%s: compaction: fsync of %s.log.cleaned: %s", p->label,
                   seg->path, strerror(errno));
    goto fail;
  }
  log__index_close(&out.index);
  close(out.fd);
  out.fd = -1;
  if ((rc = hook(c, LOG__CLEAN_STEP_CLEANED, seg->base_offset, err)) != 0)
    return rc;

  /* S2: the commit point. */
  path_of(path, sizeof path, seg, ".log.cleaned");
  path_of(path2, sizeof path2, seg, ".log.swap");
  if (rename(path, path2) < 0) {
    rc = log__errf(err, -errno, "%s: compaction: rename %s: %s", p->label, path,
                   strerror(errno));
    goto fail;
  }
  if ((rc = log__fsync_dir(p->dir)) < 0) {
    /* The swap may or may not be durable; either state is whole. The next
     * open finishes it if it is there. */
    return log__errf(err, rc, "%s: compaction: fsync dir: %s", p->label, strerror(-rc));
  }
  if ((rc = hook(c, LOG__CLEAN_STEP_SWAP, seg->base_offset, err)) != 0)
    return rc;

  /* S3, under mu so retention cannot drop the segment between the check
   * and the renames; indexes first, .log last (see the header). */
  static const char *const from_ext[] = {".index.cleaned", ".timeindex.cleaned", ".log.swap"};
  static const char *const to_ext[] = {".index", ".timeindex", ".log"};
  pthread_mutex_lock(&p->mu);
  if (seg_index(p, seg) < 0) {
    pthread_mutex_unlock(&p->mu);
    path_of(path, sizeof path, seg, ".log.swap");
    unlink(path);
    unlink_cleaned(seg);
    return 0;
  }
  for (int k = 0; k < 3 && rc == 0; k++) {
    path_of(path, sizeof path, seg, from_ext[k]);
    path_of(path2, sizeof path2, seg, to_ext[k]);
    if (rename(path, path2) < 0)
      rc = -errno;
  }
  pthread_mutex_unlock(&p->mu);
  if (rc == 0)
    rc = log__fsync_dir(p->dir);
  if (rc < 0) /* the .log.swap (if still there) is finished at the next open */
    return log__errf(err, rc, "%s: compaction: putting segment %" PRId64 " in place: %s",
                     p->label, seg->base_offset, strerror(-rc));
  c->removed_records += gone_records;
  c->removed_bytes += gone_bytes;
  c->segs_rewritten++;
  if ((rc = hook(c, LOG__CLEAN_STEP_RENAMED, seg->base_offset, err)) != 0)
    return rc;

  /* S4: a new object for the new file, loaded as recovery would load it. */
  log__segment_t *nseg;
  bool rebuilt;
  rc = log__segment_open(p->dir, seg->base_offset, false, &nseg, err);
  if (rc == 0 && (rc = log__segment_load(nseg, interval, &rebuilt, err)) < 0)
    log__segment_unref(nseg);
  if (rc < 0) {
    /* Retention may have dropped and unlinked the segment since S3. */
    pthread_mutex_lock(&p->mu);
    bool gone = seg_index(p, seg) < 0;
    pthread_mutex_unlock(&p->mu);
    /* Otherwise memory keeps the old object: a superset, still correct,
     * and the new file is what the next open loads. */
    return gone ? 0 : rc;
  }
  log__segment_seal(nseg);
  pthread_mutex_lock(&p->mu);
  ssize_t i = seg_index(p, seg);
  if (i >= 0)
    p->segs[i] = nseg;
  pthread_mutex_unlock(&p->mu);
  /* Drops the list's reference (or nseg, when retention won the race);
   * readers holding the old object keep reading the replaced file. */
  log__segment_unref(i >= 0 ? seg : nseg);
  return 0;

write_fail:
  rc = log__errf(err, rc, "%s: compaction: write of %s.log.cleaned: %s", p->label, seg->path,
                 strerror(-rc));
fail:
  log__index_close(&out.index);
  if (out.fd >= 0)
    close(out.fd);
  unlink_cleaned(seg);
  return rc;
}

static void cleaner_free(cleaner_t *c) {
  free(c->map.slots);
  free(c->scan.buf);
  free(c->recs);
  free(c->offs);
  free(c->hstart);
  free(c->hdrs);
  free(c->out);
}

/* The non-active segments below rp_base and wholly below the compaction
 * limit, each with a reference; NULL and
 * *n 0 when the partition is closed (or on ENOMEM: *oom). */
static log__segment_t **snapshot(log_partition_t *p, int64_t rp_base, size_t *n, bool *oom) {
  *n = 0;
  *oom = false;
  pthread_mutex_lock(&p->mu);
  log__segment_t **segs = NULL;
  int64_t limit = p->compact_limit; /* see log_partition_set_compaction_limit */
  if (!p->closed && p->nsegs > 1) {
    segs = malloc(p->nsegs * sizeof *segs);
    *oom = segs == NULL;
    for (size_t i = 0; segs && i + 1 < p->nsegs && p->segs[i]->base_offset < rp_base &&
                       p->segs[i]->next_offset <= limit;
         i++) {
      segs[*n] = p->segs[i];
      log__segment_ref(segs[(*n)++]);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return segs;
}

static void release(log__segment_t **segs, size_t n) {
  for (size_t i = 0; i < n; i++)
    log__segment_unref(segs[i]);
  free(segs);
}

int log__cleaner_run(log_partition_t *p, int64_t now_ms, log_error_t *err) {
  pthread_mutex_lock(&cleaner_mu);
  cleaner_t c = {.p = p, .now_ms = now_ms};
  int rc = 0;

  pthread_mutex_lock(&p->mu);
  bool any = !p->closed && p->nsegs > 1;
  pthread_mutex_unlock(&p->mu);
  if (!any)
    goto out;
  /* See "Why the flush" in the header. */
  if ((rc = log_partition_flush(p, err)) < 0) {
    if (rc == LOG_E_UNKNOWN_TOPIC)
      rc = 0;
    goto out;
  }
  pthread_mutex_lock(&p->flush_mu);
  int64_t rp_base = p->rp_base;
  pthread_mutex_unlock(&p->flush_mu);

  /* Rounds, as Kafka's clean/dirty sections: round 1 maps from the first
   * segment as far as the map holds and cleans what it mapped; each next
   * round maps the following segments (the dirty ones) and cleans every
   * segment up to them against that map. Records of the already cleaned
   * prefix are unique among themselves, so only newer keys can remove
   * them. One round when the map holds every key. */
  int64_t dirty_base = INT64_MIN;
  size_t total_segs = 0;
  int rounds = 0;
  for (;;) {
    size_t n;
    bool oom;
    log__segment_t **segs = snapshot(p, rp_base, &n, &oom);
    if (oom) {
      rc = log__errf(err, -ENOMEM, "out of memory");
      break;
    }
    size_t start = 0;
    while (start < n && segs[start]->base_offset < dirty_base)
      start++;
    if (rounds == 0)
      total_segs = n;
    if (start >= n) {
      release(segs, n);
      break;
    }
    uint64_t want = 0;
    for (size_t i = start; i < n; i++)
      want += (uint64_t)(segs[i]->next_offset - segs[i]->base_offset);
    free(c.map.slots);
    c.map.slots = NULL;
    if (map_init(&c.map, want) < 0) {
      release(segs, n);
      rc = log__errf(err, -ENOMEM, "%s: compaction: out of memory for the offset map",
                     p->label);
      break;
    }
    size_t mapped = 0;
    rc = map_build(&c, segs + start, n - start, &mapped, err);
    if (rc == 0 && mapped == 0)
      log__event(p->log, 1, "%s: compaction: segment %" PRId64 " has more keys than the "
                 "offset map holds (%zu): not cleaning it or any later segment", p->label,
                 segs[start]->base_offset, c.map.limit);
    for (size_t i = 0; i < start + mapped && rc == 0; i++)
      rc = clean_segment(&c, segs[i], i == 0, err);
    rounds++;
    bool more = rc == 0 && mapped > 0 && start + mapped < n;
    if (more)
      dirty_base = segs[start + mapped]->base_offset;
    release(segs, n);
    if (!more)
      break;
  }
  if (c.removed_records > 0 || c.segs_deleted > 0)
    log__event(p->log, 2,
               "%s: compaction removed %" PRId64 " records (%" PRId64 " bytes): %d segments "
               "rewritten, %d deleted, of %zu cleanable, in %d round%s%s",
               p->label, c.removed_records, c.removed_bytes, c.segs_rewritten, c.segs_deleted,
               total_segs, rounds, rounds == 1 ? "" : "s",
               rc != 0 ? " (pass stopped early)" : "");
  if (rc > 0)
    rc = 0;
out:
  cleaner_free(&c);
  pthread_mutex_unlock(&cleaner_mu);
  return rc;
}
