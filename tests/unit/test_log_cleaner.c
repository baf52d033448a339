/*
 * test_log_cleaner.c: log compaction (log/log_cleaner.c) and the recovery
 * of an interrupted compaction (log/log_recovery.c).
 *
 * Every test appends records whose value is "v<offset>" and whose header
 * "h" is "<offset>", keeps its own model of what was appended (key,
 * tombstone, timestamp per offset), computes from it independently which
 * offsets compaction must keep, and reads the whole partition back to
 * compare: same offsets in the same order, keys, values and headers intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_test_util.h"

typedef struct {
  int key;      /* -1: null key */
  bool tomb;
  int64_t ts;   /* the record's (and its batch's) timestamp */
} trec_t;

typedef struct {
  char *dir;
  log_t *log;
  log_partition_t *p;
  tu_events_t ev;
  log_topic_config_t cfg;
  trec_t *recs;      /* by offset */
  size_t n, cap;
  int max_key;
} fx_t;

static void fx_open(fx_t *f) {
  f->log = tu_open(f->dir, &f->ev);
  log_error_t err = {0};
  assert_int_equal(log_partition_get(f->log, "c", 0, &f->p, &err), 0);
}

static void fx_init(fx_t *f, int64_t segment_bytes) {
  memset(f, 0, sizeof *f);
  f->dir = tu_mkdtemp();
  log_topic_config_defaults(&f->cfg);
  f->cfg.cleanup_policy = LOG_CLEANUP_COMPACT;
  f->cfg.segment_bytes = segment_bytes;
  f->cfg.index_interval_bytes = 100;
  f->cfg.flush = LOG_FLUSH_NEVER;
  f->log = tu_open(f->dir, &f->ev);
  f->p = tu_create(f->log, "c", 1, &f->cfg);
}

static void fx_reopen(fx_t *f) {
  assert_int_equal(log_close(f->log), 0);
  fx_open(f);
}

static void fx_done(fx_t *f) {
  assert_int_equal(log_close(f->log), 0);
  free(f->recs);
  tu_rmrf(f->dir);
}

/* Appends one batch of k records (keys[i] < 0: null key) at timestamp ts. */
static void fx_put(fx_t *f, const int *keys, const bool *tombs, size_t k, int64_t ts) {
  int64_t base = log_partition_end_offset(f->p);
  assert_int_equal(base, (int64_t)f->n);
  log_record_t recs[128];
  log_header_t hdrs[128];
  char kbuf[128][24], vbuf[128][24], hbuf[128][24];
  assert_true(k <= 128);
  for (size_t i = 0; i < k; i++) {
    int64_t off = base + (int64_t)i;
    snprintf(kbuf[i], sizeof kbuf[i], "key-%d", keys[i]);
    snprintf(vbuf[i], sizeof vbuf[i], "v%" PRId64, off);
    snprintf(hbuf[i], sizeof hbuf[i], "%" PRId64, off);
    hdrs[i] = (log_header_t){.key = "h", .key_len = 1, .value = hbuf[i],
                             .value_len = (int32_t)strlen(hbuf[i])};
    bool tomb = tombs && tombs[i];
    recs[i] = (log_record_t){.timestamp = ts,
                             .key = keys[i] < 0 ? NULL : kbuf[i],
                             .key_len = keys[i] < 0 ? -1 : (int32_t)strlen(kbuf[i]),
                             .value = tomb ? NULL : vbuf[i],
                             .value_len = tomb ? -1 : (int32_t)strlen(vbuf[i]),
                             .headers = &hdrs[i], .header_count = 1};
    if (f->n == f->cap) {
      f->cap = f->cap ? f->cap * 2 : 1024;
      f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
      assert_non_null(f->recs);
    }
    f->recs[f->n++] = (trec_t){keys[i], tomb, ts};
    if (keys[i] > f->max_key)
      f->max_key = keys[i];
  }
  int64_t got;
  log_error_t err = {0};
  if (log_partition_append(f->p, recs, k, &got, &err) != 0)
    fail_msg("append: %s", err.msg);
  assert_int_equal(got, base);
}

static void fx_put1(fx_t *f, int key, bool tomb, int64_t ts) {
  fx_put(f, &key, &tomb, 1, ts);
}

static int64_t active_base(fx_t *f) {
  pthread_mutex_lock(&f->p->mu);
  int64_t b = f->p->segs[f->p->nsegs - 1]->base_offset;
  pthread_mutex_unlock(&f->p->mu);
  return b;
}

static size_t nsegs(fx_t *f) {
  pthread_mutex_lock(&f->p->mu);
  size_t n = f->p->nsegs;
  pthread_mutex_unlock(&f->p->mu);
  return n;
}

/* The model: which offsets a pass at now must keep when every segment
 * below `active` is cleanable. Only offsets below `upto` are cleaned (for
 * the crash tests: only the first segment was swapped). */
static bool *model(const fx_t *f, int64_t active, int64_t upto, int64_t now) {
  int64_t *latest = malloc(((size_t)f->max_key + 1) * sizeof *latest);
  bool *kept = malloc(f->n + 1);
  assert_non_null(latest);
  assert_non_null(kept);
  for (int k = 0; k <= f->max_key; k++)
    latest[k] = -1;
  for (size_t o = 0; o < f->n && (int64_t)o < active; o++)
    if (f->recs[o].key >= 0)
      latest[f->recs[o].key] = (int64_t)o;
  for (size_t o = 0; o < f->n; o++) {
    const trec_t *r = &f->recs[o];
    bool gone = (int64_t)o < active && (int64_t)o < upto && r->key >= 0 &&
                now - r->ts >= f->cfg.min_compaction_lag_ms &&
                (latest[r->key] > (int64_t)o ||
                 (r->tomb && now - r->ts > f->cfg.delete_retention_ms));
    kept[o] = !gone;
  }
  free(latest);
  return kept;
}

static size_t count_kept(const fx_t *f, const bool *kept) {
  size_t n = 0;
  for (size_t o = 0; o < f->n; o++)
    n += kept[o];
  return n;
}

/* Checks one record read back against the model's record at its offset. */
static void check_record(const fx_t *f, const log_record_t *rec) {
  assert_true(rec->offset >= 0 && (size_t)rec->offset < f->n);
  const trec_t *t = &f->recs[rec->offset];
  char buf[32];
  if (t->key < 0) {
    assert_null(rec->key);
  } else {
    snprintf(buf, sizeof buf, "key-%d", t->key);
    assert_int_equal(rec->key_len, (int32_t)strlen(buf));
    assert_memory_equal(rec->key, buf, strlen(buf));
  }
  if (t->tomb) {
    assert_null(rec->value);
    assert_int_equal(rec->value_len, -1);
  } else {
    snprintf(buf, sizeof buf, "v%" PRId64, rec->offset);
    assert_int_equal(rec->value_len, (int32_t)strlen(buf));
    assert_memory_equal(rec->value, buf, strlen(buf));
  }
  assert_int_equal(rec->timestamp, t->ts);
  assert_int_equal(rec->header_count, 1);
  snprintf(buf, sizeof buf, "%" PRId64, rec->offset);
  assert_int_equal(rec->headers[0].value_len, (int32_t)strlen(buf));
  assert_memory_equal(rec->headers[0].value, buf, strlen(buf));
}

/* Reads from `from` to the end: exactly the kept offsets >= from, in order. */
static void check_from(fx_t *f, const bool *kept, int64_t from) {
  log_reader_t *r;
  log_error_t err = {0};
  if (log_reader_new(f->log, "c", 0, from, 300, &r, &err) != 0)
    fail_msg("reader at %" PRId64 ": %s", from, err.msg);
  int64_t expect = from;
  log_record_t rec;
  int rc;
  while ((rc = log_reader_next(r, &rec, &err)) == 1) {
    while ((size_t)expect < f->n && !kept[expect])
      expect++;
    if (rec.offset != expect)
      fail_msg("from %" PRId64 ": read offset %" PRId64 ", expected %" PRId64, from,
               rec.offset, expect);
    check_record(f, &rec);
    expect++;
  }
  if (rc != 0)
    fail_msg("reader_next: %s", err.msg);
  while ((size_t)expect < f->n && !kept[expect])
    expect++;
  assert_int_equal(expect, (int64_t)f->n);
  log_reader_free(r);
}

static void check_all(fx_t *f, const bool *kept) {
  assert_int_equal(log_partition_start_offset(f->p), 0);
  assert_int_equal(log_partition_end_offset(f->p), (int64_t)f->n);
  check_from(f, kept, 0);
}

static void maintain(fx_t *f, int64_t now) {
  log_error_t err = {0};
  if (log_maintain(f->log, now, &err) != 0)
    fail_msg("log_maintain: %s", err.msg);
}

static uint32_t lcg(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

__attribute__((noinline)) static char *read_whole(const char *path, size_t *len) {
  char *text = NULL;
  assert_int_equal(log__read_file(path, &text, len), 0);
  return text;
}

/* ---- semantics ------------------------------------------------------------ */

static void test_latest_per_key(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 1024);
  /* Batches of 1..5 records over 10 keys: batches are partly kept, so
   * rewritten with gaps inside them. */
  uint32_t seed = 7;
  for (int b = 0; b < 80; b++) {
    int keys[5];
    size_t k = 1 + lcg(&seed) % 5;
    for (size_t i = 0; i < k; i++)
      keys[i] = (int)(lcg(&seed) % 10);
    fx_put(&f, keys, NULL, k, 1000 + b);
  }
  assert_true(nsegs(&f) > 5);
  int64_t active = active_base(&f);
  char *apath = tu_seg_path(f.dir, "c", 0, active, ".log");
  size_t alen0, alen1;
  char *abytes0 = read_whole(apath, &alen0);
  int64_t size0 = log_partition_size(f.p);

  maintain(&f, 100000);
  bool *kept = model(&f, active, INT64_MAX, 100000);
  assert_true(count_kept(&f, kept) < f.n);
  check_all(&f, kept);
  assert_true(log_partition_size(f.p) < size0);
  assert_non_null(strstr(f.ev.text, "c-0: compaction removed"));

  /* The active segment is not touched. */
  assert_int_equal(active_base(&f), active);
  char *abytes1 = read_whole(apath, &alen1);
  assert_int_equal(alen0, alen1);
  assert_memory_equal(abytes0, abytes1, alen0);

  /* A second pass finds nothing to do; a reopen reads the same log. */
  int64_t size1 = log_partition_size(f.p);
  f.ev.text[0] = '\0';
  maintain(&f, 100000);
  assert_int_equal(log_partition_size(f.p), size1);
  assert_null(strstr(f.ev.text, "compaction removed"));
  fx_reopen(&f);
  check_all(&f, kept);
  assert_null(strstr(f.ev.text, "rebuilt the index")); /* cleaned indexes are valid */
  free(kept);
  free(abytes0);
  free(abytes1);
  free(apath);
  fx_done(&f);
}

static void test_reads_inside_gaps(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 600);
  /* Long runs of one key, so whole batches and whole segments go. */
  for (int i = 0; i < 200; i++)
    fx_put1(&f, i < 150 ? 1 : 2 + i % 3, false, 1000);
  int64_t active = active_base(&f);
  size_t before = nsegs(&f);
  maintain(&f, 5000);
  bool *kept = model(&f, active, INT64_MAX, 5000);
  check_all(&f, kept);
  /* Emptied segments were deleted, but the first one stays: the start
   * offset does not move. */
  assert_true(nsegs(&f) < before);
  assert_int_equal(log_partition_start_offset(f.p), 0);
  /* The first segment held only key 1, superseded: it keeps one
   * record-less batch spanning its offsets. */
  char *first = tu_seg_path(f.dir, "c", 0, 0, ".log");
  assert_int_equal(tu_file_size(first), LOG__BATCH_HEADER_SIZE);
  assert_non_null(strstr(f.ev.text, "deleted"));
  free(first);
  /* Every offset as a starting point, gaps included: the next record. */
  for (int64_t o = 0; o <= (int64_t)f.n; o++)
    check_from(&f, kept, o);
  /* Raw reads at an offset inside a gap start at the batch after it. */
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  log_error_t err = {0};
  assert_int_equal(log_partition_read(f.p, 10, 1, &buf, &cap, &len, &err), 0);
  assert_true(len > 0);
  log__batch_header_t h;
  assert_int_equal(log__batch_header_parse(buf, len, &h), 0);
  assert_true(h.base_offset + h.last_offset_delta >= 10);
  free(buf);
  fx_reopen(&f);
  for (int64_t o = 0; o <= (int64_t)f.n; o += 3)
    check_from(&f, kept, o);
  free(kept);
  fx_done(&f);
}

static void test_tombstones(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 700);
  /* The config is the topic's: re-create it with the one under test. */
  assert_int_equal(log_topic_delete(f.log, "c", NULL), 0);
  f.cfg.delete_retention_ms = 10000;
  f.p = tu_create(f.log, "c", 1, &f.cfg);
  for (int round = 0; round < 3; round++)
    for (int k = 0; k < 20; k++)
      fx_put1(&f, k, false, 1000);
  for (int k = 0; k < 20; k += 2)
    fx_put1(&f, k, true, 2000); /* delete the even keys */
  for (int i = 0; i < 30; i++)
    fx_put1(&f, 100 + i, false, 3000); /* push the tombstones out of the active segment */
  int64_t active = active_base(&f);
  assert_true(active > 70);

  /* Before delete.retention.ms: values go, tombstones stay. */
  maintain(&f, 2000 + 10000);
  bool *kept = model(&f, active, INT64_MAX, 12000);
  for (size_t o = 60; o < 70; o++)
    assert_true(kept[o]);
  check_all(&f, kept);
  free(kept);
  /* After it: the tombstones go too. */
  maintain(&f, 2000 + 10001);
  kept = model(&f, active, INT64_MAX, 12001);
  for (size_t o = 60; o < 70; o++)
    assert_false(kept[o]);
  check_all(&f, kept);
  fx_reopen(&f);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

static void test_min_compaction_lag(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 700);
  assert_int_equal(log_topic_delete(f.log, "c", NULL), 0);
  f.cfg.min_compaction_lag_ms = 10000;
  f.p = tu_create(f.log, "c", 1, &f.cfg);
  for (int k = 0; k < 20; k++)
    fx_put1(&f, k, false, 1000);
  for (int k = 0; k < 20; k++)
    fx_put1(&f, k, false, 50000); /* young */
  for (int k = 0; k < 20; k++)
    fx_put1(&f, k, false, 52000); /* young, supersedes the young */
  for (int i = 0; i < 20; i++)
    fx_put1(&f, 100 + i, false, 52000);
  int64_t active = active_base(&f);
  assert_true(active > 60);
  maintain(&f, 55000);
  bool *kept = model(&f, active, INT64_MAX, 55000);
  for (size_t o = 0; o < 20; o++)
    assert_false(kept[o]); /* old and superseded */
  for (size_t o = 20; o < 60; o++)
    assert_true(kept[o]); /* superseded, but younger than the lag */
  check_all(&f, kept);
  free(kept);
  maintain(&f, 70000); /* everything is old now */
  kept = model(&f, active, INT64_MAX, 70000);
  for (size_t o = 20; o < 40; o++)
    assert_false(kept[o]);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

static void test_active_only_untouched(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 1 << 20);
  for (int i = 0; i < 100; i++)
    fx_put1(&f, i % 3, i % 7 == 0, 1000);
  assert_int_equal(nsegs(&f), 1);
  int64_t size = log_partition_size(f.p);
  maintain(&f, INT64_MAX / 2);
  assert_int_equal(log_partition_size(f.p), size);
  bool *kept = model(&f, 0, INT64_MAX, 0);
  assert_int_equal(count_kept(&f, kept), f.n);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

static void test_null_keys_kept(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 800);
  for (int i = 0; i < 150; i++) {
    int keys[3] = {-1, i % 4, -1};
    fx_put(&f, keys, NULL, (size_t)(1 + i % 3), 1000);
  }
  int64_t active = active_base(&f);
  maintain(&f, 1000000000);
  bool *kept = model(&f, active, INT64_MAX, 1000000000);
  size_t nulls = 0;
  for (size_t o = 0; o < f.n; o++)
    if (f.recs[o].key < 0) {
      assert_true(kept[o]);
      nulls++;
    }
  assert_true(nulls > 100);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

/* 10k keys x 10 updates over many small segments: exactly the latest value
 * of each key stays, checked against an independent key -> offset table. */
static void many_keys(size_t slots_max) {
  size_t saved = log__cleaner_map_slots_max;
  if (slots_max)
    log__cleaner_map_slots_max = slots_max;
  fx_t f;
  fx_init(&f, 16384);
  const int keys = 10000, rounds = 10;
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < keys; k += 100) {
      int ks[100];
      for (int i = 0; i < 100; i++)
        ks[i] = (k + i * 37) % keys; /* a permutation of this block's keys */
      fx_put(&f, ks, NULL, 100, 1000 + r);
    }
  /* A last update of a few keys, so the active segment holds some. */
  for (int k = 0; k < 50; k++)
    fx_put1(&f, k, false, 2000);
  int64_t active = active_base(&f);
  assert_true(nsegs(&f) > 50);
  maintain(&f, 100000);
  if (slots_max)
    assert_non_null(strstr(f.ev.text, "rounds"));
  else
    assert_non_null(strstr(f.ev.text, "in 1 round"));

  /* The independent check: the latest offset per key below the active
   * segment, read everything back. */
  int64_t *latest = malloc((size_t)keys * sizeof *latest);
  for (int k = 0; k < keys; k++)
    latest[k] = -1;
  for (int64_t o = 0; o < active; o++)
    latest[f.recs[o].key] = o;
  log_reader_t *r;
  log_error_t err = {0};
  assert_int_equal(log_reader_new(f.log, "c", 0, 0, 0, &r, &err), 0);
  log_record_t rec;
  int64_t below = 0, total = 0;
  while (log_reader_next(r, &rec, &err) == 1) {
    check_record(&f, &rec);
    if (rec.offset < active) {
      assert_int_equal(latest[f.recs[rec.offset].key], rec.offset);
      below++;
    }
    total++;
  }
  log_reader_free(r);
  assert_int_equal(below, keys);
  assert_int_equal(total, keys + ((int64_t)f.n - active));
  bool *kept = model(&f, active, INT64_MAX, 100000);
  check_all(&f, kept);
  fx_reopen(&f);
  check_all(&f, kept);
  free(kept);
  free(latest);
  fx_done(&f);
  log__cleaner_map_slots_max = saved;
}

static void test_many_keys(void **state) {
  (void)state;
  many_keys(0);
}

/* A map far smaller than the keys: the pass goes in rounds and still ends
 * with exactly the latest values. */
static void test_many_keys_small_map(void **state) {
  (void)state;
  many_keys(4096); /* 3072 keys per round */
}

/* ---- crash safety ----------------------------------------------------------- */

static int g_stop_step;
static int stop_hook(log_partition_t *p, int step, int64_t base) {
  (void)p;
  (void)base;
  return step == g_stop_step ? -ECANCELED : 0;
}

static int file_exists(const char *dir, int64_t base, const char *ext) {
  char *path = tu_seg_path(dir, "c", 0, base, ext);
  int e = tu_file_size(path) >= 0;
  free(path);
  return e;
}

static void crash_at(int step) {
  fx_t f;
  fx_init(&f, 800);
  for (int r = 0; r < 6; r++)
    for (int k = 0; k < 15; k++)
      fx_put1(&f, k, k == 3 && r == 5, 1000);
  int64_t active = active_base(&f);
  pthread_mutex_lock(&f.p->mu);
  int64_t seg1 = f.p->segs[1]->base_offset;
  pthread_mutex_unlock(&f.p->mu);

  g_stop_step = step;
  log__cleaner_hook = stop_hook;
  log_error_t err = {0};
  assert_int_equal(log_maintain(f.log, 1000000000, &err), -ECANCELED);
  log__cleaner_hook = NULL;
  assert_int_equal(file_exists(f.dir, 0, ".log.cleaned"), step == LOG__CLEAN_STEP_CLEANED);
  assert_int_equal(file_exists(f.dir, 0, ".log.swap"), step == LOG__CLEAN_STEP_SWAP);
  /* Whatever the files say, the running log still reads the original. */
  bool *all = model(&f, active, 0, 0);
  check_all(&f, all);

  /* "Crash": reopen from what is on disk. */
  fx_reopen(&f);
  assert_false(file_exists(f.dir, 0, ".log.cleaned"));
  assert_false(file_exists(f.dir, 0, ".index.cleaned"));
  assert_false(file_exists(f.dir, 0, ".timeindex.cleaned"));
  assert_false(file_exists(f.dir, 0, ".log.swap"));
  bool *kept = step == LOG__CLEAN_STEP_CLEANED ? model(&f, active, 0, 0)
                                              : model(&f, active, seg1, 1000000000);
  if (step != LOG__CLEAN_STEP_CLEANED)
    assert_true(count_kept(&f, kept) < f.n);
  if (step == LOG__CLEAN_STEP_SWAP)
    assert_non_null(strstr(f.ev.text, "finished an interrupted compaction of segment 0"));
  check_all(&f, kept);
  for (int64_t o = 0; o < (int64_t)f.n; o += 5)
    check_from(&f, kept, o);
  free(kept);
  /* The next pass finishes the job. */
  maintain(&f, 1000000000);
  kept = model(&f, active, INT64_MAX, 1000000000);
  check_all(&f, kept);
  fx_reopen(&f);
  check_all(&f, kept);
  free(kept);
  free(all);
  fx_done(&f);
}

static void test_crash_after_cleaned(void **state) {
  (void)state;
  crash_at(LOG__CLEAN_STEP_CLEANED);
}

static void test_crash_after_swap(void **state) {
  (void)state;
  crash_at(LOG__CLEAN_STEP_SWAP);
}

static void test_crash_after_renames(void **state) {
  (void)state;
  crash_at(LOG__CLEAN_STEP_RENAMED);
}

/* ---- readers during a swap --------------------------------------------------- */

static log__segment_t *g_held;
static int hold_hook(log_partition_t *p, int step, int64_t base) {
  if (step == LOG__CLEAN_STEP_SWAP && base == 0 && !g_held) {
    pthread_mutex_lock(&p->mu);
    g_held = p->segs[0];
    log__segment_ref(g_held);
    pthread_mutex_unlock(&p->mu);
  }
  return 0;
}

static void test_reader_during_swap(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 900);
  for (int r = 0; r < 8; r++)
    for (int k = 0; k < 12; k++)
      fx_put1(&f, k, false, 1000);
  int64_t active = active_base(&f);
  /* A reader part way through, with a small fetch. */
  log_reader_t *rd;
  log_error_t err = {0};
  assert_int_equal(log_reader_new(f.log, "c", 0, 0, 200, &rd, &err), 0);
  log_record_t rec;
  int64_t last = -1;
  for (int i = 0; i < 7; i++) {
    assert_int_equal(log_reader_next(rd, &rec, &err), 1);
    check_record(&f, &rec);
    last = rec.offset;
  }
  int64_t old_size;
  pthread_mutex_lock(&f.p->mu);
  old_size = f.p->segs[0]->size;
  int64_t old_next = f.p->segs[0]->next_offset;
  pthread_mutex_unlock(&f.p->mu);

  log__cleaner_hook = hold_hook;
  maintain(&f, 1000000000);
  log__cleaner_hook = NULL;
  assert_non_null(g_held);

  /* The held object still reads the old file, whole and unchanged. */
  pthread_mutex_lock(&f.p->mu);
  assert_ptr_not_equal(f.p->segs[0], g_held);
  pthread_mutex_unlock(&f.p->mu);
  uint8_t *buf = malloc((size_t)old_size);
  assert_int_equal(log__segment_pread(g_held, buf, (size_t)old_size, 0), 0);
  int64_t at = 0, expect = 0;
  while (at < old_size) {
    size_t size = log__batch_size(buf + at);
    assert_int_equal(log__batch_validate(buf + at, size, &err), 0);
    log__record_iter_t it;
    assert_int_equal(log__record_iter_init(&it, buf + at, size), 0);
    while (log__record_iter_next(&it, &rec) == 1) {
      assert_int_equal(rec.offset, expect++);
      check_record(&f, &rec);
    }
    log__record_iter_close(&it);
    at += (int64_t)size;
  }
  assert_int_equal(expect, old_next);
  free(buf);
  log__segment_unref(g_held);
  g_held = NULL;

  /* The reader goes on: increasing offsets, intact records, and every
   * record the compacted log keeps after what it had buffered (at most
   * 200 bytes of batches of ~50 bytes) of the old file. */
  bool *kept = model(&f, active, INT64_MAX, 1000000000);
  bool *seen = calloc(f.n, 1);
  int64_t before = last;
  int rc;
  while ((rc = log_reader_next(rd, &rec, &err)) == 1) {
    assert_true(rec.offset > last);
    check_record(&f, &rec);
    seen[rec.offset] = true;
    last = rec.offset;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(last, (int64_t)f.n - 1);
  for (int64_t o = before + 1; o < (int64_t)f.n; o++)
    if (kept[o] && o > before + 8)
      assert_true(seen[o]);
  free(seen);
  log_reader_free(rd);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

/* ---- __consumer_offsets ------------------------------------------------------ */

static void test_group_offsets(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  log_t *log = tu_open(dir, NULL);
  assert_int_equal(log_close(log), 0);
  /* Small segments for the offsets topic, so commits roll and compact. */
  char *cfgpath = tu_path(dir, "__consumer_offsets-0/topic.config");
  size_t len;
  char *text = read_whole(cfgpath, &len);
  static const char old_line[] = "segment.bytes=104857600\n", new_line[] = "segment.bytes=1024\n";
  const char *found = strstr(text, old_line);
  assert_non_null(found);
  size_t head = (size_t)(found - text), tail = len - head - (sizeof old_line - 1);
  char *edited = malloc(len + 16);
  memcpy(edited, text, head);
  memcpy(edited + head, new_line, sizeof new_line - 1);
  memcpy(edited + head + sizeof new_line - 1, text + len - tail, tail);
  edited[head + sizeof new_line - 1 + tail] = '\0';
  char *pdir = tu_path(dir, "__consumer_offsets-0");
  assert_int_equal(log__write_file_atomic(pdir, "topic.config", edited, strlen(edited)), 0);
  free(text);
  free(edited);

  log = tu_open(dir, NULL);
  log_error_t err = {0};
  const char *groups[] = {"g1", "g2", "g3"};
  for (int64_t round = 1; round <= 20; round++)
    for (int g = 0; g < 3; g++)
      for (int t = 0; t < 2; t++)
        for (int32_t part = 0; part < 2; part++)
          assert_int_equal(log_group_commit(log, groups[g], t ? "b" : "a", part,
                                            round * 100 + g * 10 + t * 2 + part, &err),
                           0);
  log_partition_t *p;
  assert_int_equal(log_partition_get(log, "__consumer_offsets", 0, &p, &err), 0);
  int64_t size0 = log_partition_size(p);
  assert_int_equal(log_maintain(log, log_now_ms() + 1000, &err), 0);
  assert_true(log_partition_size(p) < size0 / 4);
  for (int pass = 0; pass < 2; pass++) {
    for (int g = 0; g < 3; g++)
      for (int t = 0; t < 2; t++)
        for (int32_t part = 0; part < 2; part++) {
          int64_t off;
          assert_int_equal(log_group_fetch(log, groups[g], t ? "b" : "a", part, &off, &err),
                           0);
          assert_int_equal(off, 2000 + g * 10 + t * 2 + part);
        }
    assert_int_equal(log_close(log), 0);
    log = tu_open(dir, NULL);
  }
  /* Below the active segment, one record per group/topic/partition. */
  assert_int_equal(log_partition_get(log, "__consumer_offsets", 0, &p, &err), 0);
  pthread_mutex_lock(&p->mu);
  int64_t active = p->segs[p->nsegs - 1]->base_offset;
  pthread_mutex_unlock(&p->mu);
  log_reader_t *r;
  assert_int_equal(log_reader_new(log, "__consumer_offsets", 0, 0, 0, &r, &err), 0);
  log_record_t rec;
  int below = 0;
  while (log_reader_next(r, &rec, &err) == 1)
    below += rec.offset < active;
  log_reader_free(r);
  assert_true(below <= 12);
  assert_int_equal(log_close(log), 0);
  free(cfgpath);
  free(pdir);
  tu_rmrf(dir);
}

/* The first segment not wholly below offset (mu taken). */
static int64_t first_base_reaching(fx_t *f, int64_t offset) {
  pthread_mutex_lock(&f->p->mu);
  int64_t base = f->p->segs[f->p->nsegs - 1]->base_offset;
  for (size_t i = 0; i < f->p->nsegs; i++) {
    if (f->p->segs[i]->next_offset > offset) {
      base = f->p->segs[i]->base_offset;
      break;
    }
  }
  pthread_mutex_unlock(&f->p->mu);
  return base;
}

/* A compaction limit (a changelog's last checkpoint) stops the cleaner:
 * records at or above it neither get cleaned nor supersede older ones, so
 * a restore up to the limit finds every key's value as of the limit. */
static void test_compaction_limit(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, 1024);
  uint32_t seed = 11;
  for (int b = 0; b < 80; b++) {
    int keys[3];
    for (size_t i = 0; i < 3; i++)
      keys[i] = (int)(lcg(&seed) % 10);
    fx_put(&f, keys, NULL, 3, 1000 + b);
  }
  int64_t limit = (int64_t)f.n / 2;
  log_partition_set_compaction_limit(f.p, limit);
  int64_t boundary = first_base_reaching(&f, limit);
  assert_true(boundary > 0 && boundary <= limit);
  maintain(&f, 100000);
  bool *kept = model(&f, boundary, INT64_MAX, 100000);
  check_all(&f, kept);
  /* Every key written below the limit still has its value as of the limit. */
  for (int k = 0; k < 10; k++) {
    int64_t last = -1;
    for (int64_t o = 0; o < limit; o++)
      if (f.recs[o].key == k) last = o;
    if (last >= 0) assert_true(kept[last]);
  }
  free(kept);
  /* Lifting the limit lets the next pass clean the rest. */
  log_partition_set_compaction_limit(f.p, INT64_MAX);
  maintain(&f, 100000);
  kept = model(&f, active_base(&f), INT64_MAX, 100000);
  check_all(&f, kept);
  free(kept);
  fx_done(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_latest_per_key),
      cmocka_unit_test(test_compaction_limit),
      cmocka_unit_test(test_reads_inside_gaps),
      cmocka_unit_test(test_tombstones),
      cmocka_unit_test(test_min_compaction_lag),
      cmocka_unit_test(test_active_only_untouched),
      cmocka_unit_test(test_null_keys_kept),
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_many_keys_small_map),
      cmocka_unit_test(test_crash_after_cleaned),
      cmocka_unit_test(test_crash_after_swap),
      cmocka_unit_test(test_crash_after_renames),
      cmocka_unit_test(test_reader_during_swap),
      cmocka_unit_test(test_group_offsets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
