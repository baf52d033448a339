/*
 * bench_jobs.c: Lua stream jobs on the engine, each beside a bare baseline
 * of the same work, run in the same process on the same disk.
 *
 *   bench_jobs --dir DIR [--records N] [--keys K] [--reps R] [--only abcdj]
 *
 * DIR is scratch space (emptied first, left for the caller to delete). N
 * (default 1000000, or $BENCH_JOBS_RECORDS) records per measurement, K
 * (default 100000) distinct keys for b), R (default 3, or $BENCH_REPS)
 * repetitions of a) and b), whose medians are reported. --only runs
 * the named parts (for profiling).
 *
 * The engine runs as the worker runs it: a log opened in DIR/log with the
 * worker's defaults (background thread, log.flush=interval 1000 ms), a
 * runner (runner.h) with 1 stream thread, commit.interval.ms 1000,
 * cache.max.bytes.buffering 10 MiB and the default Lua budgets. Inputs are
 * appended before the clock starts (1000 records per batch, flushed).
 *
 *   a) stateless: N JSON records (about 100 bytes) through
 *      stream(json):filter(F):map(M):to(json), log to log. Timed from
 *      runner_add_job until the output partition holds every expected
 *      record. Beside it, a bare loop over the same JSON texts in memory:
 *      luavm_json_decode into a table, lua_pcall of the same F and M
 *      (compiled from the same source text, in a plain lua_State without
 *      hooks), luavm_json_encode of M's value. Target: runnel >= 0.6 of the
 *      bare loop (records/s on one thread).
 *   b) stateful: stream():group_by_key():count() over N records with K
 *      distinct keys, timed from runner_add_job until the runner is idle
 *      (every record read and the final commit done), in two key orders:
 *      random (uniform, with repeats) and cyclic (0..K-1, repeated: each
 *      key once per K records). Beside it: one SQLite UPSERT per record
 *      into (k TEXT PRIMARY KEY, n INTEGER), transactions of 1000, WAL,
 *      synchronous=NORMAL, a file in DIR. Target: runnel >= 3x.
 *   c) restore: the count job over N distinct keys runs to idle and its
 *      runner stops; its state files (DATA/state/<job>/0_0.db*) are
 *      deleted; then the job is added to a new runner and timed until its
 *      status says RUNNING (polled every 1 ms): the task rebuilt the store
 *      from its changelog up to the last checkpoint (topo_task_open's
 *      restore). Reported: seconds and MB/s of changelog (bytes of the
 *      changelog partition on disk, all of which is read).
 *   d) windowed count: stream():group_by_key():window{tumbling = "1m",
 *      grace = "10s"}:count() over N records with 10000 keys (random),
 *      event times 1 ms apart (about 17 windows per key), 10% of them
 *      moved back by up to 9.999 s (out of order, inside the grace: none
 *      is late), timed from runner_add_job until idle. Reported beside
 *      a)'s runnel figure of the same run: target >= 200000 records/s and
 *      >= 0.5 of the stateless pipeline.
 *   j) stream-table join: a table of K (default 100000) JSON rows and N
 *      JSON orders keyed by user (each user has a row), through
 *      stream(json):join(table(json), J):to(json), beside the stateless
 *      job of a) over the same orders, on the same runner setup. Both are
 *      measured the same way: the job runs idle first (the join job with
 *      its table read), then the N orders are appended (batches of 1000)
 *      and the clock runs from the first append until the output holds
 *      every expected record. Target: join >= 0.6 of stateless
 *      (records/s on one stream thread).
 * Every run is checked: output counts of a) against the bare loop, sums
 * and key counts of the stores of b), c) and d) read back with store_reader.
 *
 * Exit status 0 when everything ran and checked out (targets missed or
 * not); 1 when a run failed or a check did not add up; 2 usage.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <lualib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logger.h"
#include "luavm.h"
#include "runner.h"
#include "store.h"
#include "topo.h"

#define MAX_REPS 9
#define PRODUCE_BATCH 1000
#define SQLITE_TXN 1000
#define COMMIT_INTERVAL_MS 1000
#define CACHE_BYTES_DEFAULT (10u << 20) /* cache.max.bytes.buffering */
#define WAIT_MS 600000
#define TARGET_STATELESS 0.6
#define TARGET_STATEFUL 3.0
#define TARGET_WINDOWED_RPS 200000.0
#define TARGET_WINDOWED_RATIO 0.5
#define WINDOWED_KEYS 10000

/* The two user functions of a), as text: the job and the bare loop
 * compile the same source. */
#define FILTER_SRC "function(k, v) return v.amount >= 20 and v.ok end"
#define MAP_SRC                                                                     \
  "function(k, v) return v.country, {user = v.user, cents = math.floor(v.amount * " \
  "100), items = v.items, big = v.items > 5} end"

static const char *countries[] = {"de", "fr", "nl", "us", "jp", "br", "in", "za"};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process (all threads): on a shared machine,
 * records per CPU second compare runs that wall time cannot. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "bench_jobs: %s: %s\n", what, msg);
  exit(1);
}

static void die_log(const char *what, int rc, const log_error_t *e) {
  die(what, e && e->msg[0] ? e->msg : log_strerror(rc));
}

/* cache.max.bytes.buffering of the runner ($BENCH_JOBS_CACHE_BYTES; default
 * the worker's). */
static size_t cache_bytes = CACHE_BYTES_DEFAULT;

/* a)'s runnel records/s and records per CPU second (medians) in this run,
 * for d)'s ratios; 0: not run. */
static double stateless_rps, stateless_cpu_rps;
static double stateless_cpu_last;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  if (remove(path) != 0) fprintf(stderr, "bench_jobs: remove %s: %s\n", path, strerror(errno));
  return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int cmp_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median of n values (sorted in place), and their range. */
static double median(double *v, int n, double *lo, double *hi) {
  qsort(v, (size_t)n, sizeof *v, cmp_doubles);
  *lo = v[0];
  *hi = v[n - 1];
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- inputs ------------------------------------------------------------------ */

/* The JSON value of record i of a): about 100 bytes. */
static int json_value(uint64_t i, char *buf, size_t cap) {
  uint64_t h = i * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  unsigned cents = (unsigned)(h % 10000);
  return snprintf(buf, cap,
                  "{\"id\":%" PRIu64 ",\"user\":\"user-%u\",\"country\":\"%s\",\"amount\":%u.%02u,"
                  "\"items\":%u,\"ok\":%s,\"note\":null}",
                  i, (unsigned)((h >> 16) % 50000), countries[(h >> 32) % 8], cents / 100,
                  cents % 100, (unsigned)((h >> 40) % 10), (h >> 48) % 16 ? "true" : "false");
}

typedef enum { KEYS_RANDOM, KEYS_CYCLIC, KEYS_DISTINCT } key_order_t;

/* The key of record i of b) and c). */
static int key_of(key_order_t order, uint64_t i, uint64_t nkeys, char *buf, size_t cap) {
  uint64_t k = order == KEYS_RANDOM ? rng() % nkeys : order == KEYS_CYCLIC ? i % nkeys : i;
  return snprintf(buf, cap, "key-%07" PRIu64, k);
}

/* How many distinct keys the first n keys in that order have. */
static int64_t distinct_keys(key_order_t order, int64_t n, uint64_t nkeys) {
  if (order != KEYS_RANDOM) return order == KEYS_CYCLIC && (uint64_t)n > nkeys ? (int64_t)nkeys : n;
  char *seen = calloc(nkeys, 1);
  if (!seen) die("distinct_keys", "out of memory");
  int64_t d = 0;
  rng_state = 0x9e3779b97f4a7c15ull; /* as produce() */
  for (int64_t i = 0; i < n; i++) {
    uint64_t k = rng() % nkeys;
    if (!seen[k]) d++;
    seen[k] = 1;
  }
  free(seen);
  return d;
}

static log_t *open_log(const char *dir) {
  log_options_t opts;
  log_options_defaults(&opts); /* the worker's: background thread, flush interval */
  log_t *log;
  log_error_t e = {0};
  int rc = log_open(dir, &opts, &log, &e);
  if (rc != 0) die_log("log_open", rc, &e);
  return log;
}

static void create_topic(log_t *log, const char *topic) {
  log_error_t e = {0};
  int rc = log_topic_create(log, topic, 1, NULL, &e);
  if (rc != 0) die_log(topic, rc, &e);
}

static log_partition_t *partition(log_t *log, const char *topic) {
  log_partition_t *p;
  log_error_t e = {0};
  int rc = log_partition_get(log, topic, 0, &p, &e);
  if (rc != 0) die_log(topic, rc, &e);
  return p;
}

/* Sets record i's key and value (buffers of KEY_CAP and VAL_CAP bytes)
 * and lengths in *r; the timestamp is -1 unless fill sets it. */
#define KEY_CAP 32
#define VAL_CAP 160
typedef void (*fill_fn)(int64_t i, log_record_t *r, char *key, char *val, void *arg);

/* Appends records 0..n-1 made by fill to p in batches of PRODUCE_BATCH,
 * then flushes. */
static void append_n(log_partition_t *p, int64_t n, fill_fn fill, void *arg) {
  static char keys[PRODUCE_BATCH][KEY_CAP], vals[PRODUCE_BATCH][VAL_CAP];
  log_record_t recs[PRODUCE_BATCH];
  log_error_t e = {0};
  for (int64_t i = 0; i < n;) {
    size_t m = 0;
    for (; m < PRODUCE_BATCH && i < n; m++, i++) {
      recs[m] = (log_record_t){.timestamp = -1, .key = keys[m], .value = vals[m]};
      fill(i, &recs[m], keys[m], vals[m], arg);
    }
    int rc = log_partition_append(p, recs, m, NULL, &e);
    if (rc != 0) die_log("append", rc, &e);
  }
  int rc = log_partition_flush(p, &e);
  if (rc != 0) die_log("flush", rc, &e);
}

typedef struct {
  int order;
  uint64_t nkeys;
} produce_arg_t;

static void fill_produced(int64_t i, log_record_t *r, char *key, char *val, void *arg) {
  const produce_arg_t *a = arg;
  if (a->order < 0) {
    r->key_len = snprintf(key, KEY_CAP, "k%" PRId64, i);
    r->value_len = json_value((uint64_t)i, val, VAL_CAP);
  } else {
    r->key_len = key_of((key_order_t)a->order, (uint64_t)i, a->nkeys, key, KEY_CAP);
    r->value_len = 1;
    val[0] = '1';
  }
}

/* Appends n records to topic (created) in batches of PRODUCE_BATCH:
 * values of a) when order < 0, else keys in that order with value "1". */
static void produce(log_t *log, const char *topic, int64_t n, int order, uint64_t nkeys) {
  create_topic(log, topic);
  rng_state = 0x9e3779b97f4a7c15ull;
  produce_arg_t a = {order, nkeys};
  append_n(partition(log, topic), n, fill_produced, &a);
}

/* ---- the engine ---------------------------------------------------------------- */

static runner_t *start_runner(log_t *log, const char *state_dir) {
  runner_options_t ro = {.log = log,
                         .state_dir = state_dir,
                         .threads = 1,
                         .commit_interval_ms = COMMIT_INTERVAL_MS,
                         .cache_bytes = cache_bytes};
  luavm_options_defaults(&ro.vm);
  runner_t *r;
  char err[2048];
  if (runner_new(&ro, &r, err, sizeof err) != 0) die("runner_new", err);
  return r;
}

static topo_job_t *load_job(const char *name, const char *script) {
  luavm_options_t vo;
  luavm_options_defaults(&vo);
  topo_job_t *job;
  char err[2048], chunk[300];
  snprintf(chunk, sizeof chunk, "@%s.lua", name);
  if (topo_job_load(chunk, script, strlen(script), &vo, &job, err, sizeof err) != 0)
    die("topo_job_load", err);
  return job;
}

static void add_job(runner_t *r, topo_job_t *job) {
  char err[2048];
  if (runner_add_job(r, job, false, err, sizeof err) != 0) die("runner_add_job", err);
}

/* Waits until the partition's end offset reaches `expected`. */
static void wait_end(log_partition_t *p, int64_t expected) {
  double deadline = now_s() + WAIT_MS / 1000.0;
  while (log_partition_end_offset(p) < expected) {
    if (now_s() > deadline) die("wait", "the output did not arrive in time");
    log_partition_wait(p, expected - 1, 100);
  }
}

typedef struct {
  int64_t keys, sum;
} store_sum_t;

static int sum_one(void *opaque, const void *key, size_t klen, const void *val, size_t vlen) {
  (void)key;
  (void)klen;
  store_sum_t *s = opaque;
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", (int)(vlen < 31 ? vlen : 31), (const char *)val);
  s->keys++;
  s->sum += strtoll(buf, NULL, 10);
  return 0;
}

/* Keys and the sum of counts in a store of a task's file. */
static store_sum_t store_sum(const char *path, const char *store) {
  store_reader_t *rd;
  char err[1024];
  store_sum_t s = {0, 0};
  if (store_reader_open(path, &rd, err, sizeof err) != 0) die("store_reader_open", err);
  if (store_reader_range(rd, store, NULL, 0, NULL, 0, 0, sum_one, &s) != 0)
    die("store_reader_range", path);
  store_reader_close(rd);
  return s;
}

/* ---- a) stateless ----------------------------------------------------------------- */

typedef struct {
  double secs;
  int64_t out;
  size_t out_bytes;
} bare_run_t;

static void lua_die(lua_State *L, const char *what) {
  die(what, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
}

/* The bare loop over the texts (offsets[i]..offsets[i+1] in texts). */
static bare_run_t bare_stateless(const char *texts, const size_t *offsets, int64_t n) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  const char *src = "return " FILTER_SRC ", " MAP_SRC;
  if (luaL_loadbufferx(L, src, strlen(src), "=bare", "t") != LUA_OK ||
      lua_pcall(L, 0, 2, 0) != LUA_OK)
    lua_die(L, "bare loop");
  int ffn = lua_gettop(L) - 1, mfn = lua_gettop(L);
  char *buf = NULL, err[512];
  size_t cap = 0, len;
  bare_run_t r = {0, 0, 0};
  char key[32];
  double t0 = now_s();
  for (int64_t i = 0; i < n; i++) {
    int kl = snprintf(key, sizeof key, "k%" PRId64, i);
    lua_pushlstring(L, key, (size_t)kl);
    if (luavm_json_decode(L, texts + offsets[i], offsets[i + 1] - offsets[i], err, sizeof err))
      die("luavm_json_decode", err);
    int kidx = lua_gettop(L) - 1, vidx = lua_gettop(L);
    lua_pushvalue(L, ffn);
    lua_pushvalue(L, kidx);
    lua_pushvalue(L, vidx);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) lua_die(L, "filter");
    int keep = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (keep) {
      lua_pushvalue(L, mfn);
      lua_pushvalue(L, kidx);
      lua_pushvalue(L, vidx);
      if (lua_pcall(L, 2, 2, 0) != LUA_OK) lua_die(L, "map");
      if (luavm_json_encode(L, -1, &buf, &cap, &len, err, sizeof err) != 0)
        die("luavm_json_encode", err);
      size_t klen;
      lua_tolstring(L, -2, &klen);
      r.out_bytes += len + klen;
      r.out++;
    }
    lua_settop(L, mfn); /* the two functions stay */
  }
  r.secs = now_s() - t0;
  free(buf);
  lua_close(L);
  return r;
}

/* One engine run of a): returns seconds. */
static double runnel_stateless(log_t *log, const char *dir, int rep, int64_t expected) {
  char name[64], out[64], state[4200], script[1024];
  snprintf(name, sizeof name, "stateless-%d", rep);
  snprintf(out, sizeof out, "a-out-%d", rep);
  snprintf(state, sizeof state, "%s/state-a-%d", dir, rep);
  snprintf(script, sizeof script,
           "local job = runnel.job(\"%s\")\n"
           "job:stream(\"a-in\", { value = \"json\" })\n"
           "   :filter(" FILTER_SRC ")\n"
           "   :map(" MAP_SRC ")\n"
           "   :to(\"%s\", { value = \"json\" })\n"
           "return job\n",
           name, out);
  create_topic(log, out);
  log_partition_t *po = partition(log, out);
  runner_t *r = start_runner(log, state);
  topo_job_t *job = load_job(name, script);
  double t0 = now_s(), c0 = cpu_s();
  add_job(r, job);
  wait_end(po, expected);
  double secs = now_s() - t0;
  stateless_cpu_last = cpu_s() - c0;
  runner_free(r);
  if (log_partition_end_offset(po) != expected) {
    fprintf(stderr, "bench_jobs: a) %s holds %" PRId64 " records, the bare loop wrote %" PRId64 "\n",
            out, log_partition_end_offset(po), expected);
    exit(1);
  }
  return secs;
}

static void bench_stateless(log_t *log, const char *dir, int64_t n, int reps) {
  printf("\na) stateless: %" PRId64 " JSON records, filter + map, log to log, 1 stream thread\n", n);
  printf("   filter: %s\n   map:    %s\n", FILTER_SRC, MAP_SRC);
  size_t *offsets = malloc(((size_t)n + 1) * sizeof *offsets);
  char *texts = malloc((size_t)n * 160);
  if (!offsets || !texts) die("a)", "out of memory");
  offsets[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    int l = json_value((uint64_t)i, texts + offsets[i], 160);
    offsets[i + 1] = offsets[i] + (size_t)l;
  }
  produce(log, "a-in", n, -1, 0);
  double rs[MAX_REPS], bs[MAX_REPS], cs[MAX_REPS];
  bare_run_t b = {0, 0, 0};
  for (int rep = 0; rep < reps; rep++) {
    b = bare_stateless(texts, offsets, n);
    bs[rep] = b.secs;
    rs[rep] = runnel_stateless(log, dir, rep, b.out);
    cs[rep] = stateless_cpu_last;
  }
  double clo, chi;
  stateless_cpu_rps = (double)n / median(cs, reps, &clo, &chi);
  double rmin, rmax, bmin, bmax;
  double rm = median(rs, reps, &rmin, &rmax), bm = median(bs, reps, &bmin, &bmax);
  printf("   input %.1f MB, %" PRId64 " records kept (%.0f%%), %.1f MB of output keys and values\n",
         (double)offsets[n] / 1e6, b.out, 100.0 * (double)b.out / (double)n,
         (double)b.out_bytes / 1e6);
  printf("                                                    records/s    seconds\n");
  printf("  runnel job on the runner (log to log)              %9.0f   %8.2f\n", (double)n / rm,
         rm);
  printf("  bare loop: yajl decode, lua_pcall x2, encode       %9.0f   %8.2f\n", (double)n / bm,
         bm);
  double ratio = bm / rm;
  stateless_rps = (double)n / rm;
  printf("  ratio runnel/bare (records/s): %.2f   target >= %.1f   %s\n", ratio, TARGET_STATELESS,
         ratio >= TARGET_STATELESS ? "MET" : "NOT MET");
  printf("  (runnel %.2f..%.2f s, bare %.2f..%.2f s over %d runs; medians above)\n", rmin, rmax,
         bmin, bmax, reps);
  free(offsets);
  free(texts);
}

/* ---- j) stream-table join ------------------------------------------------------------ */

#define TARGET_JOIN 0.6
#define JOINER_SRC                                                                        \
  "function(o, u) return {user = o.user, cents = math.floor(o.amount * 100), items = o.items, " \
  "country = u.country, tier = u.tier} end"

static void fill_order(int64_t i, log_record_t *r, char *key, char *val, void *arg) {
  uint64_t nkeys = *(const uint64_t *)arg;
  uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15ull;
  r->key_len = snprintf(key, KEY_CAP, "user-%" PRIu64, (h >> 20) % nkeys);
  r->value_len = json_value((uint64_t)i, val, VAL_CAP);
}

static void fill_user(int64_t i, log_record_t *r, char *key, char *val, void *arg) {
  (void)arg;
  r->key_len = snprintf(key, KEY_CAP, "user-%" PRId64, i);
  r->value_len = snprintf(val, VAL_CAP, "{\"name\":\"user-%" PRId64
                          "\",\"country\":\"%s\",\"tier\":%d}", i, countries[i % 8],
                          (int)(i % 4));
}

/* Appends n orders of j) to topic: json_value texts, keyed "user-<u>" with
 * u < nkeys. */
static void append_orders(log_partition_t *p, int64_t n, uint64_t nkeys) {
  append_n(p, n, fill_order, &nkeys);
}

/* One timed run: the job (reading in_topic, writing out_topic) is added
 * and runs idle; then n orders are appended; seconds until out_topic
 * holds `expected` records (expected < 0: as many as were kept, read from
 * the stateless bare loop of a), passed in). */
static double timed_orders_run(log_t *log, const char *dir, const char *name,
                               const char *script, const char *in_topic, const char *out_topic,
                               int64_t n, uint64_t nkeys, int64_t expected) {
  char state[4200];
  snprintf(state, sizeof state, "%s/state-%s", dir, name);
  create_topic(log, in_topic);
  create_topic(log, out_topic);
  log_partition_t *pi = partition(log, in_topic), *po = partition(log, out_topic);
  runner_t *r = start_runner(log, state);
  add_job(r, load_job(name, script));
  if (runner_wait_idle(r, WAIT_MS) != 0) die(name, "the job did not settle in time");
  double t0 = now_s();
  append_orders(pi, n, nkeys);
  wait_end(po, expected);
  double secs = now_s() - t0;
  runner_free(r);
  if (log_partition_end_offset(po) != expected) {
    fprintf(stderr, "bench_jobs: j) %s holds %" PRId64 " records, expected %" PRId64 "\n",
            out_topic, log_partition_end_offset(po), expected);
    exit(1);
  }
  return secs;
}

/* How many of the first n orders the filter of a) keeps. */
static int64_t kept_orders(int64_t n) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  const char *src = "return " FILTER_SRC;
  if (luaL_loadbufferx(L, src, strlen(src), "=filter", "t") != LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK)
    lua_die(L, "filter");
  char buf[160], err[256];
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    int l = json_value((uint64_t)i, buf, sizeof buf);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    if (luavm_json_decode(L, buf, (size_t)l, err, sizeof err) != 0) die("decode", err);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) lua_die(L, "filter");
    kept += lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_close(L);
  return kept;
}

static void bench_join(log_t *log, const char *dir, int64_t n, int64_t nkeys, int reps) {
  printf("\nj) stream-table join: %" PRId64 " JSON orders joined with a %" PRId64
         "-row JSON table, log to log, 1 stream thread,\n   beside the stateless job of a) over "
         "the same orders (both timed from the first append of the orders, the job idle)\n",
         n, nkeys);
  printf("   joiner: %s\n", JOINER_SRC);
  /* The table, appended once; every join run reads it before the clock. */
  create_topic(log, "j-users");
  append_n(partition(log, "j-users"), nkeys, fill_user, NULL);
  int64_t kept = kept_orders(n);
  double js[MAX_REPS], ss[MAX_REPS];
  for (int rep = 0; rep < reps; rep++) {
    char name[64], in[64], out[64], script[1024];
    snprintf(name, sizeof name, "join-%d", rep);
    snprintf(in, sizeof in, "j-orders-%d", rep);
    snprintf(out, sizeof out, "j-out-%d", rep);
    snprintf(script, sizeof script,
             "local job = runnel.job(\"%s\")\n"
             "local users = job:table(\"j-users\", { value = \"json\", store = \"users\" })\n"
             "job:stream(\"%s\", { value = \"json\" })\n"
             "   :join(users, " JOINER_SRC ")\n"
             "   :to(\"%s\", { value = \"json\" })\n"
             "return job\n",
             name, in, out);
    js[rep] = timed_orders_run(log, dir, name, script, in, out, n, (uint64_t)nkeys, n);
    snprintf(name, sizeof name, "j-stateless-%d", rep);
    snprintf(in, sizeof in, "j-sorders-%d", rep);
    snprintf(out, sizeof out, "j-sout-%d", rep);
    snprintf(script, sizeof script,
             "local job = runnel.job(\"%s\")\n"
             "job:stream(\"%s\", { value = \"json\" })\n"
             "   :filter(" FILTER_SRC ")\n"
             "   :map(" MAP_SRC ")\n"
             "   :to(\"%s\", { value = \"json\" })\n"
             "return job\n",
             name, in, out);
    ss[rep] = timed_orders_run(log, dir, name, script, in, out, n, (uint64_t)nkeys, kept);
  }
  double jmin, jmax, smin, smax;
  double jm = median(js, reps, &jmin, &jmax), sm = median(ss, reps, &smin, &smax);
  printf("                                                    records/s    seconds\n");
  printf("  stream-table join (every order finds its row)      %9.0f   %8.2f\n", (double)n / jm,
         jm);
  printf("  stateless filter + map (a), %4.1f%% kept)            %9.0f   %8.2f\n",
         100.0 * (double)kept / (double)n, (double)n / sm, sm);
  double ratio = sm / jm;
  printf("  ratio join/stateless (records/s): %.2f   target >= %.1f   %s\n", ratio, TARGET_JOIN,
         ratio >= TARGET_JOIN ? "MET" : "NOT MET");
  printf("  (join %.2f..%.2f s, stateless %.2f..%.2f s over %d runs; medians above)\n", jmin,
         jmax, smin, smax, reps);
}

/* ---- b) stateful ---------------------------------------------------------------------- */

static const char *order_name(key_order_t o) {
  return o == KEYS_RANDOM ? "random" : o == KEYS_CYCLIC ? "cyclic" : "distinct";
}

/* The count job `name` over topic, loaded, with its runner's state dir. */
static topo_job_t *count_job(const char *dir, const char *name, const char *topic, char *state,
                             size_t state_len) {
  char script[1024];
  snprintf(state, state_len, "%s/state-%s", dir, name);
  snprintf(script, sizeof script,
           "local job = runnel.job(\"%s\")\n"
           "job:stream(\"%s\"):group_by_key():count(\"counts\")\n"
           "return job\n",
           name, topic);
  return load_job(name, script);
}

/* The count job over topic; returns seconds from add to idle, and checks
 * the store: `keys` keys whose counts sum to n. */
static double runnel_count(log_t *log, const char *dir, const char *name, const char *topic,
                           int64_t n, int64_t keys, char *db_path, size_t db_path_len) {
  char state[4200];
  topo_job_t *job = count_job(dir, name, topic, state, sizeof state);
  runner_t *r = start_runner(log, state);
  double t0 = now_s();
  add_job(r, job);
  if (runner_wait_idle(r, WAIT_MS) != 0) die(name, "the job did not finish in time");
  double secs = now_s() - t0;
  runner_free(r);
  snprintf(db_path, db_path_len, "%s/%s/0_0.db", state, name);
  store_sum_t s = store_sum(db_path, "counts");
  if (s.keys != keys || s.sum != n) {
    fprintf(stderr, "bench_jobs: %s: the store has %" PRId64 " keys summing to %" PRId64
            ", expected %" PRId64 " and %" PRId64 "\n", name, s.keys, s.sum, keys, n);
    exit(1);
  }
  return secs;
}

static void sqlite_check(sqlite3 *db, int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) die(what, sqlite3_errmsg(db));
}

/* The baseline: one UPSERT per record, transactions of SQLITE_TXN. */
static double sqlite_count(const char *dir, int rep, key_order_t order, int64_t n,
                           uint64_t nkeys, int64_t keys) {
  char path[4200];
  snprintf(path, sizeof path, "%s/baseline-%s-%d.db", dir, order_name(order), rep);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("sqlite3_open", path);
  sqlite_check(db, sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), "wal");
  sqlite_check(db, sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL), "sync");
  sqlite_check(db, sqlite3_exec(db, "CREATE TABLE counts (k TEXT PRIMARY KEY, n INTEGER)", NULL,
                                NULL, NULL), "create");
  sqlite3_stmt *up, *begin, *commit;
  sqlite_check(db, sqlite3_prepare_v2(db, "INSERT INTO counts (k, n) VALUES (?1, 1) "
                                      "ON CONFLICT (k) DO UPDATE SET n = n + 1", -1, &up, NULL),
               "prepare");
  sqlite_check(db, sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL), "prepare");
  sqlite_check(db, sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), "prepare");
  rng_state = 0x9e3779b97f4a7c15ull; /* the same keys as produce() */
  char key[32];
  double t0 = now_s();
  for (int64_t i = 0; i < n; i++) {
    if (i % SQLITE_TXN == 0) {
      sqlite_check(db, sqlite3_step(begin), "BEGIN");
      sqlite3_reset(begin);
    }
    int kl = key_of(order, (uint64_t)i, nkeys, key, sizeof key);
    sqlite3_bind_text(up, 1, key, kl, SQLITE_STATIC);
    sqlite_check(db, sqlite3_step(up), "upsert");
    sqlite3_reset(up);
    if (i % SQLITE_TXN == SQLITE_TXN - 1 || i == n - 1) {
      sqlite_check(db, sqlite3_step(commit), "COMMIT");
      sqlite3_reset(commit);
    }
  }
  double secs = now_s() - t0;
  sqlite3_stmt *chk;
  sqlite_check(db, sqlite3_prepare_v2(db, "SELECT count(*), sum(n) FROM counts", -1, &chk, NULL),
               "prepare");
  sqlite_check(db, sqlite3_step(chk), "check");
  int64_t k = sqlite3_column_int64(chk, 0), s = sqlite3_column_int64(chk, 1);
  sqlite3_finalize(chk);
  sqlite3_finalize(up);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_close(db);
  if (k != keys || s != n) die("baseline", "the table does not add up");
  return secs;
}

static void bench_stateful(log_t *log, const char *dir, int64_t n, int64_t nkeys, int reps) {
  printf("\nb) stateful: count by key, %" PRId64 " records, %" PRId64 " distinct keys, 1 stream "
         "thread, commit.interval.ms %d, cache.max.bytes.buffering %zu\n",
         n, nkeys, COMMIT_INTERVAL_MS, cache_bytes);
  printf("                                                    records/s    seconds\n");
  key_order_t orders[2] = {KEYS_RANDOM, KEYS_CYCLIC};
  for (int o = 0; o < 2; o++) {
    char topic[64];
    snprintf(topic, sizeof topic, "b-%s", order_name(orders[o]));
    produce(log, topic, n, orders[o], (uint64_t)nkeys);
    int64_t keys = distinct_keys(orders[o], n, (uint64_t)nkeys);
    double rs[MAX_REPS], ss[MAX_REPS];
    char path[4400];
    for (int rep = 0; rep < reps; rep++) {
      char name[64];
      snprintf(name, sizeof name, "count-%s-%d", order_name(orders[o]), rep);
      rs[rep] = runnel_count(log, dir, name, topic, n, keys, path, sizeof path);
      ss[rep] = sqlite_count(dir, rep, orders[o], n, (uint64_t)nkeys, keys);
    }
    double rlo, rhi, slo, shi;
    double rm = median(rs, reps, &rlo, &rhi), sm = median(ss, reps, &slo, &shi);
    printf("  keys %s%s\n", order_name(orders[o]),
           orders[o] == KEYS_RANDOM ? " (uniform, with repeats)" : " (each key once per "
                                                                  "distinct-keys records)");
    printf("    runnel count() on the runner                   %9.0f   %8.2f\n", (double)n / rm,
           rm);
    printf("    SQLite UPSERT per record, txn of %d           %9.0f   %8.2f\n", SQLITE_TXN,
           (double)n / sm, sm);
    double ratio = sm / rm;
    printf("    ratio runnel/SQLite (records/s): %.2f   target >= %.1f   %s\n", ratio,
           TARGET_STATEFUL, ratio >= TARGET_STATEFUL ? "MET" : "NOT MET");
    printf("    (runnel %.2f..%.2f s, SQLite %.2f..%.2f s over %d runs; medians above)\n", rlo, rhi,
           slo, shi, reps);
  }
}

/* ---- c) restore ------------------------------------------------------------------------ */

static void bench_restore(log_t *log, const char *dir, int64_t n) {
  printf("\nc) restore: a count store of %" PRId64 " distinct keys from its changelog\n", n);
  produce(log, "c-distinct", n, KEYS_DISTINCT, 0);
  const char *name = "restore";
  char path[4400];
  double run = runnel_count(log, dir, name, "c-distinct", n, n, path, sizeof path);
  /* Delete the task's state: the file and its WAL and shared memory. */
  const char *sfx[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    char f[4500];
    snprintf(f, sizeof f, "%s%s", path, sfx[i]);
    if (unlink(f) != 0 && errno != ENOENT) die("unlink", strerror(errno));
  }
  char clog[300];
  snprintf(clog, sizeof clog, "%s-counts-changelog", name);
  log_partition_t *pc = partition(log, clog);
  int64_t clog_bytes = log_partition_size(pc), clog_records = log_partition_end_offset(pc);

  /* Then the same job on a new runner: its task finds no file, restores
   * from the changelog up to the last checkpoint, and only then runs. */
  char state[4200];
  topo_job_t *job = count_job(dir, name, "c-distinct", state, sizeof state);
  runner_t *r = start_runner(log, state);
  double t0 = now_s();
  add_job(r, job);
  for (;;) {
    int status = 0;
    char *st = runner_status_json(r, name, &status);
    if (!st) die("runner_status_json", "no status");
    /* The job's state comes first: RUNNING once every task has opened. */
    int running = strstr(st, "\"state\":\"RUNNING\"") != NULL;
    int failed = strstr(st, "FAILED") != NULL;
    if (failed) die("restore", st);
    free(st);
    if (running) break;
    if (now_s() - t0 > WAIT_MS / 1000.0) die("restore", "the task did not start in time");
    usleep(1000);
  }
  double secs = now_s() - t0;
  if (runner_wait_idle(r, WAIT_MS) != 0) die(name, "the job did not settle in time");
  runner_free(r);
  /* Restored, not reprocessed: every key once, counted once. */
  store_sum_t s = store_sum(path, "counts");
  if (s.keys != n || s.sum != n) {
    fprintf(stderr, "bench_jobs: c) restored %" PRId64 " keys summing to %" PRId64
            "; expected %" PRId64 "\n", s.keys, s.sum, n);
    exit(1);
  }
  printf("  the count job over them first: %.2f s (%.0f records/s, each key once)\n", run,
         (double)n / run);
  printf("  changelog: %" PRId64 " records, %.1f MB on disk, all read\n", clog_records,
         (double)clog_bytes / 1e6);
  printf("                                                    seconds       MB/s   records/s\n");
  printf("  add job until RUNNING, state files deleted        %8.2f   %8.1f   %9.0f\n", secs,
         (double)clog_bytes / 1e6 / secs, (double)clog_records / secs);
}

/* ---- d) windowed count ---------------------------------------------------------- */

#define WINDOWED_T0 1699999980000 /* a minute boundary (epoch ms / 60000) */
#define WINDOWED_MAX_MINUTES 1024

/* Records per window start (minute index from WINDOWED_T0), all keys. */
static int64_t windowed_expected[WINDOWED_MAX_MINUTES], windowed_got[WINDOWED_MAX_MINUTES];

/* Count window values: 8-byte timestamp, 8-byte count (big-endian). */
static int sum_window(void *opaque, const void *key, size_t klen, const void *val, size_t vlen) {
  store_sum_t *s = opaque;
  const void *k;
  size_t kl;
  int64_t start, end;
  if (store_window_key_parse(key, klen, &k, &kl, &start, &end) != 0) return 1;
  int64_t m = (start - WINDOWED_T0) / 60000;
  if (m < 0 || m >= WINDOWED_MAX_MINUTES) return 1;
  if (vlen != 16) return 1;
  const unsigned char *p = (const unsigned char *)val + 8;
  int64_t n = 0;
  for (int i = 0; i < 8; i++) n = (int64_t)((uint64_t)n << 8 | p[i]);
  s->keys++;
  windowed_got[m] += n;
  return 0;
}

static void fill_windowed(int64_t i, log_record_t *rec, char *key, char *val, void *arg) {
  (void)arg;
  const int64_t t0 = WINDOWED_T0;
  rec->key_len = snprintf(key, KEY_CAP, "key-%05" PRIu64, rng() % WINDOWED_KEYS);
  int64_t ts = t0 + 10000 + i; /* room for the first records to move back */
  uint64_t r = rng();
  if (r % 10 == 0) ts -= (int64_t)((r >> 8) % 10000); /* out of order, inside the grace */
  if (ts < t0 || (ts - t0) / 60000 >= WINDOWED_MAX_MINUTES) die("d)", "too many records");
  windowed_expected[(ts - t0) / 60000]++;
  rec->timestamp = ts;
  val[0] = '1';
  rec->value_len = 1;
}

static void produce_windowed(log_t *log, const char *topic, int64_t n) {
  create_topic(log, topic);
  rng_state = 0x9e3779b97f4a7c15ull;
  memset(windowed_expected, 0, sizeof windowed_expected);
  append_n(partition(log, topic), n, fill_windowed, NULL);
}

static void bench_windowed(log_t *log, const char *dir, int64_t n, int reps) {
  printf("\nd) windowed count: %" PRId64 " records, tumbling 1 minute windows, %d keys, 10%% out "
         "of order inside a 10 s grace, 1 stream thread\n", n, WINDOWED_KEYS);
  produce_windowed(log, "d-in", n);
  double ws[MAX_REPS], wc[MAX_REPS];
  int64_t windows = 0;
  int expired_minutes = 0;
  for (int rep = 0; rep < reps; rep++) {
    char name[64], state[4200], script[1024], db_path[4400];
    snprintf(name, sizeof name, "windowed-%d", rep);
    snprintf(state, sizeof state, "%s/state-%s", dir, name);
    snprintf(script, sizeof script,
             "local job = runnel.job(\"%s\")\n"
             "job:stream(\"d-in\"):group_by_key()\n"
             "   :window{ tumbling = \"1m\", grace = \"10s\" }:count(\"per-minute\")\n"
             "return job\n",
             name);
    topo_job_t *job = load_job(name, script);
    runner_t *r = start_runner(log, state);
    double t0 = now_s(), c0 = cpu_s();
    add_job(r, job);
    if (runner_wait_idle(r, WAIT_MS) != 0) die(name, "the job did not finish in time");
    ws[rep] = now_s() - t0;
    wc[rep] = cpu_s() - c0;
    runner_free(r);
    snprintf(db_path, sizeof db_path, "%s/%s/0_0.db", state, name);
    store_reader_t *rd;
    char err[1024];
    store_sum_t sum = {0, 0};
    memset(windowed_got, 0, sizeof windowed_got);
    if (store_reader_open(db_path, &rd, err, sizeof err) != 0) die("store_reader_open", err);
    if (store_reader_range(rd, "per-minute", NULL, 0, NULL, 0, 0, sum_window, &sum) != 0)
      die("store_reader_range", db_path);
    store_reader_close(rd);
    /* No record is late. Windows past their retention (70 s after their
     * end) are expired; every minute still in the store counts exactly
     * its records, and the last minute is there. */
    int last = 0, kept = 0;
    for (int mi = 0; mi < WINDOWED_MAX_MINUTES; mi++) {
      if (windowed_expected[mi]) last = mi;
      if (!windowed_got[mi]) continue;
      kept++;
      if (windowed_got[mi] != windowed_expected[mi]) {
        fprintf(stderr, "bench_jobs: d) %s: minute %d counts %" PRId64 " records, expected %" PRId64
                "\n", name, mi, windowed_got[mi], windowed_expected[mi]);
        exit(1);
      }
    }
    if (!windowed_got[last]) die("d)", "the last minute's windows are missing");
    windows = sum.keys;
    expired_minutes = last + 1 - kept;
  }
  double lo, hi, m = median(ws, reps, &lo, &hi);
  double clo, chi, cm = median(wc, reps, &clo, &chi);
  double rps = (double)n / m;
  printf("   %" PRId64 " windows in the store at the end, %d older minutes expired (every "
         "record counted once)\n", windows, expired_minutes);
  printf("                                                    records/s    seconds\n");
  printf("  runnel windowed count on the runner               %9.0f   %8.2f   target >= %.0f   %s\n",
         rps, m, TARGET_WINDOWED_RPS, rps >= TARGET_WINDOWED_RPS ? "MET" : "NOT MET");
  printf("    per CPU second (all threads of the process)   %9.0f   %8.2f CPU s\n",
         (double)n / cm, cm);
  if (stateless_rps > 0) {
    printf("  runnel stateless filter + map (a) above)           %9.0f\n", stateless_rps);
    printf("    per CPU second                                 %9.0f\n", stateless_cpu_rps);
    printf("  ratio windowed/stateless (records/s): %.2f   target >= %.1f   %s\n",
           rps / stateless_rps, TARGET_WINDOWED_RATIO,
           rps / stateless_rps >= TARGET_WINDOWED_RATIO ? "MET" : "NOT MET");
    printf("  ratio windowed/stateless (records per CPU second): %.2f\n",
           (double)n / cm / stateless_cpu_rps);
  }
  printf("  (windowed %.2f..%.2f s over %d runs; median above)\n", lo, hi, reps);
}

static void usage(void) {
  fprintf(stderr, "usage: bench_jobs --dir DIR [--records N] [--keys K] [--reps R] [--only abcdj]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  int64_t n = getenv("BENCH_JOBS_RECORDS") ? atoll(getenv("BENCH_JOBS_RECORDS")) : 1000000;
  int64_t nkeys = 100000;
  int reps = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 3;
  const char *only = "abcdj";
  if (getenv("BENCH_JOBS_CACHE_BYTES")) cache_bytes = (size_t)atoll(getenv("BENCH_JOBS_CACHE_BYTES"));
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
    else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) n = atoll(argv[++i]);
    else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) nkeys = atoll(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    else usage();
  }
  if (!dir || n < 1 || nkeys < 1 || reps < 1 || reps > MAX_REPS) usage();
  logger_set_level(LOGGER_WARN);
  rm_rf(dir);
  if (mkdir(dir, 0755) != 0) die(dir, strerror(errno));
  char logdir[4200];
  snprintf(logdir, sizeof logdir, "%s/log", dir);
  log_t *log = open_log(logdir);
  printf("runnel jobs benchmark: %" PRId64 " records, in %s; Lua %s, SQLite %s, yajl; MB = 10^6 "
         "bytes\n", n, dir, LUA_RELEASE, sqlite3_libversion());
  if (strchr(only, 'a')) bench_stateless(log, dir, n, reps);
  if (strchr(only, 'b')) bench_stateful(log, dir, n, nkeys, reps);
  if (strchr(only, 'c')) bench_restore(log, dir, n);
  if (strchr(only, 'd')) bench_windowed(log, dir, n, reps);
  if (strchr(only, 'j')) bench_join(log, dir, n, nkeys, reps);
  log_close(log);
  return 0;
}
