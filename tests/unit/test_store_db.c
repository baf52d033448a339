/* Tests for runtime/store_db.c and runtime/store_reader.c: offsets, the
 * commit rule (state and offsets in one transaction, checked by killing a
 * child process mid-way), a failing changelog, corrupt files, store names,
 * restore, changelog positions, and the read-only connection from another
 * thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "store_test_util.h"

static void test_offsets_commit_and_reopen(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  bool reset = true;
  store_db_t *db = stu_open(path, &reset);
  assert_false(reset);
  int64_t off = -1;
  assert_int_equal(store_db_offset(db, "in", 0, &off), 0);
  store_offset_t offs[] = {{"in", 0, 42}, {"in", 1, 7}, {"other", 0, 1}};
  stu_commit(db, offs, 3, NULL, NULL);
  assert_int_equal(store_db_offset(db, "in", 0, &off), 1);
  assert_int_equal(off, 42);
  offs[0].offset = 43;
  stu_commit(db, offs, 1, NULL, NULL);
  store_db_close(db);

  db = stu_open(path, &reset);
  assert_false(reset);
  assert_int_equal(store_db_offset(db, "in", 0, &off), 1);
  assert_int_equal(off, 43);
  assert_int_equal(store_db_offset(db, "in", 1, &off), 1);
  assert_int_equal(off, 7);
  assert_int_equal(store_db_offset(db, "other", 0, &off), 1);
  assert_int_equal(off, 1);
  assert_int_equal(store_db_offset(db, "in", 2, &off), 0);
  store_db_close(db);
}

static void test_invalid_store_names(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  char long_name[202];
  memset(long_name, 'a', 201);
  long_name[201] = '\0';
  const char *bad[] = {"", "a b", "a\"b", "kv;DROP", "a/b", "é", long_name};
  char err[512];
  store_t *s;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(store_open(db, bad[i], 0, &s, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "invalid store name"));
  }
  long_name[200] = '\0'; /* 200 chars is the limit */
  s = stu_store(db, long_name, 0);
  stu_store(db, "Counts_by-key.v2", 0);
  assert_int_equal(store_open(db, "Counts_by-key.v2", 0, &s, err, sizeof err), -EEXIST);
  store_reader_t *r = NULL;
  assert_int_equal(store_reader_open(path, &r, err, sizeof err), 0);
  void *v;
  size_t vl;
  assert_int_equal(store_reader_get(r, "a\"b", "k", 1, &v, &vl), -EINVAL);
  assert_int_equal(store_reader_get(r, "missing", "k", 1, &v, &vl), -ENOENT);
  store_reader_close(r);
  store_db_close(db);
}

static bool corrupt_file_exists(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  bool found = false;
  while ((de = readdir(d)))
    if (strncmp(de->d_name, "task.db.corrupt-", 16) == 0 && !strstr(de->d_name, "-wal"))
      found = true;
  closedir(d);
  return found;
}

static void test_corrupt_file_is_set_aside(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "c", 1024);
  stu_put(s, "k", "v");
  store_offset_t off = {"in", 0, 10};
  stu_commit(db, &off, 1, NULL, NULL);
  store_db_close(db);

  /* Garbage over the header. */
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  char junk[128];
  memset(junk, 0x5a, sizeof junk);
  assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
  close(fd);

  bool reset = false;
  db = stu_open(path, &reset);
  assert_true(reset);
  assert_true(corrupt_file_exists(fx->dir));
  int64_t o;
  assert_int_equal(store_db_offset(db, "in", 0, &o), 0);
  s = stu_store(db, "c", 1024);
  stu_expect(s, "k", NULL);
  stu_put(s, "k", "fresh");
  stu_commit(db, &off, 1, NULL, NULL);
  store_db_close(db);

  /* The fresh file is fine: no second reset. */
  db = stu_open(path, &reset);
  assert_false(reset);
  s = stu_store(db, "c", 1024);
  stu_expect(s, "k", "fresh");
  store_db_close(db);

  /* A file that is not a database at all. */
  char other[600];
  snprintf(other, sizeof other, "%s/text.db", fx->dir);
  FILE *f = fopen(other, "w");
  assert_non_null(f);
  for (int i = 0; i < 200; i++)
    fputs("this is not a database file\n", f);
  fclose(f);
  db = stu_open(other, &reset);
  assert_true(reset);
  store_db_close(db);

  /* A missing directory is an error, not a reset. */
  char missing[600], err[512];
  snprintf(missing, sizeof missing, "%s/no/such/dir/task.db", fx->dir);
  assert_int_equal(store_db_open(missing, &db, &reset, err, sizeof err), -ENOENT);
  assert_null(db);
  assert_false(reset);
}

static void test_changelog_failure_commits_nothing(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "clog", 1 << 20);
  store_t *s2 = stu_store(db, "clog2", 1 << 20);
  stu_clog_t *cl = calloc(1, sizeof *cl);
  stu_put(s, "a", "1");
  stu_put(s2, "b", "2");
  store_offset_t off = {"in", 0, 5};
  stu_commit(db, &off, 1, stu_clog_fn, cl);
  assert_int_equal(cl->changes, 2);

  /* "Crash" between the changelog and the SQLite transaction. */
  stu_put(s, "a", "10");
  stu_put(s2, "b", NULL);
  cl->fail = 1;
  off.offset = 9;
  char err[512] = "";
  assert_int_equal(store_db_commit(db, &off, 1, stu_clog_fn, cl, err, sizeof err),
                   STORE_E_CHANGELOG);
  assert_non_null(strstr(err, "changelog callback failed"));
  int64_t o;
  assert_int_equal(store_db_offset(db, "in", 0, &o), 1);
  assert_int_equal(o, 5);
  store_stats_t st;
  store_stats(s, &st);
  assert_int_equal(st.flushed, 1); /* only the first commit's entry */
  store_reader_t *r;
  assert_int_equal(store_reader_open(path, &r, err, sizeof err), 0);
  void *v;
  size_t vl;
  assert_int_equal(store_reader_get(r, "clog", "a", 1, &v, &vl), 1);
  assert_memory_equal(v, "1", 1);
  free(v);

  /* The entries stayed dirty: the next commit sends and writes them. */
  cl->fail = 0;
  stu_commit(db, &off, 1, stu_clog_fn, cl);
  assert_int_equal(cl->changes, 4);
  const char *got;
  assert_int_equal(stu_clog_get(cl, "a", &got), 1);
  assert_string_equal(got, "10");
  assert_int_equal(stu_clog_get(cl, "b", &got), 1);
  assert_null(got);
  assert_int_equal(store_db_offset(db, "in", 0, &o), 1);
  assert_int_equal(o, 9);
  assert_int_equal(store_reader_get(r, "clog", "a", 1, &v, &vl), 1);
  assert_memory_equal(v, "10", 2);
  free(v);
  assert_int_equal(store_reader_get(r, "clog2", "b", 1, &v, &vl), 0);
  store_reader_close(r);
  store_db_close(db);
  stu_clog_free(cl);
  free(cl);
}

/* ---- crash: a child counts records and dies mid-way ----------------------- */

#define CRASH_RECORDS 3000
#define CRASH_KEYS 37
#define CRASH_BATCH 50

enum { DIE_BEFORE_RECORD, DIE_IN_CHANGELOG, EXIT_WITHOUT_COMMIT, RUN_TO_END };

typedef struct {
  int mode, at;
  int64_t end;
} crash_plan_t;

static int crash_clog_fn(void *opaque, store_t *s, const store_change_t *c, size_t n,
                         int64_t *end) {
  (void)s; (void)c;
  crash_plan_t *p = opaque;
  if (p->mode == DIE_IN_CHANGELOG && p->at < 0)
    raise(SIGKILL); /* after the changelog "append", before SQLite */
  p->end += (int64_t)n;
  *end = p->end;
  return 0;
}

/* Counts record i into key i % CRASH_KEYS, starting from the committed
 * offset, committing every CRASH_BATCH records; the cache holds about ten
 * keys, so evictions put entries into the open transaction all along. */
static void crash_child(const char *path, int mode, int at) {
  store_db_t *db = NULL;
  store_t *s = NULL;
  char err[256];
  if (store_db_open(path, &db, NULL, err, sizeof err) ||
      store_open(db, "counts", 1000, &s, err, sizeof err))
    _exit(2);
  crash_plan_t plan = {.mode = mode, .at = at};
  store_db_set_changelog(db, crash_clog_fn, &plan);
  int64_t start = 0;
  if (store_db_offset(db, "in", 0, &start) < 0)
    _exit(2);
  for (int64_t i = start; i < CRASH_RECORDS; i++) {
    if (i == at && mode == DIE_BEFORE_RECORD)
      raise(SIGKILL);
    if (i == at && mode == EXIT_WITHOUT_COMMIT)
      _exit(0);
    if (i == at && mode == DIE_IN_CHANGELOG)
      plan.at = -1; /* the next changelog call dies */
    char key[16], val[24];
    snprintf(key, sizeof key, "k%02d", (int)(i % CRASH_KEYS));
    const void *v;
    size_t vl;
    long count = 0;
    int rc = store_get(s, key, strlen(key), &v, &vl);
    if (rc < 0)
      _exit(3);
    if (rc == 1) {
      snprintf(val, sizeof val, "%.*s", (int)vl, (const char *)v);
      count = atol(val);
    }
    snprintf(val, sizeof val, "%ld", count + 1);
    if (store_put(s, key, strlen(key), val, strlen(val)))
      _exit(4);
    if ((i + 1) % CRASH_BATCH == 0 || i + 1 == CRASH_RECORDS) {
      store_offset_t off = {"in", 0, i + 1};
      if (store_db_commit(db, &off, 1, crash_clog_fn, &plan, err, sizeof err))
        _exit(5);
    }
  }
  store_db_close(db);
  _exit(0);
}

/* Reopens and checks that every count is the number of records below the
 * committed offset with that key. Returns the offset. */
static int64_t crash_verify(const char *path) {
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "counts", 1000);
  int64_t committed = 0;
  assert_true(store_db_offset(db, "in", 0, &committed) >= 0);
  for (int k = 0; k < CRASH_KEYS; k++) {
    long want = 0;
    for (int64_t i = 0; i < committed; i++)
      want += i % CRASH_KEYS == k;
    char key[16], val[24];
    snprintf(key, sizeof key, "k%02d", k);
    snprintf(val, sizeof val, "%ld", want);
    stu_expect(s, key, want ? val : NULL);
  }
  store_db_close(db);
  return committed;
}

static void run_child(const char *path, int mode, int at, bool killed) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    crash_child(path, mode, at);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (killed) {
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
  } else {
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
}

static void test_crash_state_matches_offsets(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  unsigned seed = 777;
  int64_t committed = 0;
  /* Several crashes in a row on the same file, each resuming from the
   * offset the previous one left; then a run to the end. */
  for (int round = 0; round < 12; round++) {
    int mode = round % 3;
    int at = (int)committed + 1 + rand_r(&seed) % 400;
    if (at >= CRASH_RECORDS)
      break;
    run_child(path, mode, at, mode != EXIT_WITHOUT_COMMIT);
    int64_t got = crash_verify(path);
    /* The last commit before the crash point is exactly what survived. */
    assert_int_equal(got, (int64_t)(at / CRASH_BATCH) * CRASH_BATCH);
    assert_true(got >= committed);
    committed = got;
  }
  run_child(path, RUN_TO_END, -1, false);
  assert_int_equal(crash_verify(path), CRASH_RECORDS);
}

/* ---- restore and changelog positions ------------------------------------ */

static void test_restore_then_offsets(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "restored", 1 << 20);
  stu_expect(s, "a", NULL); /* cached as absent: restore must override it */
  assert_int_equal(store_restore_put(s, "a", 1, "1", 1), 0);
  assert_int_equal(store_restore_put(s, "b", 1, "2", 1), 0);
  assert_int_equal(store_restore_put(s, "a", 1, "3", 1), 0);
  assert_int_equal(store_restore_put(s, "b", 1, NULL, 0), 0);
  char err[256];
  assert_int_equal(store_restore_done(s, "app-restored-changelog", 3, 4, err, sizeof err), 0);
  int64_t o;
  assert_int_equal(store_db_offset(db, "app-restored-changelog", 3, &o), 1);
  assert_int_equal(o, 4);
  stu_expect(s, "a", "3");
  stu_expect(s, "b", NULL);

  /* Commits now record the changelog end the callback reports. */
  stu_clog_t *cl = calloc(1, sizeof *cl);
  cl->end = 4;
  stu_put(s, "c", "5");
  store_offset_t in = {"in", 3, 100};
  stu_commit(db, &in, 1, stu_clog_fn, cl);
  assert_int_equal(store_db_offset(db, "app-restored-changelog", 3, &o), 1);
  assert_int_equal(o, 5);
  store_db_close(db);

  db = stu_open(path, NULL);
  s = stu_store(db, "restored", 1 << 20);
  assert_int_equal(store_db_offset(db, "app-restored-changelog", 3, &o), 1);
  assert_int_equal(o, 5);
  assert_int_equal(store_db_offset(db, "in", 3, &o), 1);
  assert_int_equal(o, 100);
  stu_expect(s, "a", "3");
  stu_expect(s, "c", "5");
  /* Restoring while evicted entries wait for a commit is refused. */
  store_t *t = stu_store(db, "tiny", 300);
  store_db_set_changelog(db, NULL, NULL);
  char k[8];
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof k, "k%d", i);
    stu_put(t, k, "v");
  }
  assert_int_equal(store_restore_done(s, "app-restored-changelog", 3, 6, err, sizeof err),
                   -EBUSY);
  store_db_close(db);
  stu_clog_free(cl);
  free(cl);
}

/* ---- the reader ----------------------------------------------------------- */

static void test_reader_sees_only_committed(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "q", 400);
  stu_put(s, "secret", "1");
  stu_commit(db, NULL, 0, NULL, NULL);
  char err[256];
  store_reader_t *r;
  assert_int_equal(store_reader_open(path, &r, err, sizeof err), 0);
  /* Change it and push it out of the tiny cache: it now sits in the open
   * transaction, which the reader must not see. */
  stu_put(s, "secret", "2");
  char k[8];
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof k, "k%d", i);
    stu_put(s, k, "v");
  }
  store_stats_t st;
  store_stats(s, &st);
  assert_true(st.flushed > 0);
  void *v;
  size_t vl;
  assert_int_equal(store_reader_get(r, "q", "secret", 6, &v, &vl), 1);
  assert_memory_equal(v, "1", 1);
  free(v);
  assert_int_equal(store_reader_get(r, "q", "k0", 2, &v, &vl), 0);
  stu_expect(s, "secret", "2"); /* the owner sees its own transaction */
  stu_commit(db, NULL, 0, NULL, NULL);
  assert_int_equal(store_reader_get(r, "q", "secret", 6, &v, &vl), 1);
  assert_memory_equal(v, "2", 1);
  free(v);
  stu_scan_t sc = {0};
  assert_int_equal(store_reader_range(r, "q", "k1", 2, "k2", 2, 0, stu_scan_fn, &sc), 0);
  assert_string_equal(sc.text, "k1=v,k10=v,k11=v,k12=v,k13=v,k14=v,k15=v,k16=v,k17=v,k18=v,k19=v,k2=v,");
  memset(&sc, 0, sizeof sc);
  assert_int_equal(store_reader_range(r, "q", NULL, 0, NULL, 0, 3, stu_scan_fn, &sc), 0);
  assert_string_equal(sc.text, "k0=v,k1=v,k10=v,");
  store_reader_close(r);
  store_db_close(db);
}

typedef struct {
  const char *path;
  volatile int done;
  int reads, errors, last;
  char why[512];
} reader_ctx_t;

static int pair_fn(void *opaque, const void *k, size_t kl, const void *v, size_t vl) {
  int *vals = opaque;
  char buf[24];
  snprintf(buf, sizeof buf, "%.*s", (int)vl, (const char *)v);
  vals[kl == 1 && *(const char *)k == 'b'] = atoi(buf);
  return 0;
}

static void *reader_thread(void *arg) {
  reader_ctx_t *ctx = arg;
  store_reader_t *r;
  char err[256];
  if (store_reader_open(ctx->path, &r, err, sizeof err) != 0) {
    snprintf(ctx->why, sizeof ctx->why, "open: %s", err);
    ctx->errors++;
    return NULL;
  }
  for (;;) {
    int finished = __atomic_load_n(&ctx->done, __ATOMIC_ACQUIRE);
    /* a and b are written in the same commits: one scan (one snapshot)
     * must see them equal, and never going backwards. */
    int vals[2] = {-1, -1};
    int rc = store_reader_range(r, "pairs", "a", 1, "b", 1, 0, pair_fn, vals);
    if (rc != 0 && rc != -ENOENT) {
      snprintf(ctx->why, sizeof ctx->why, "range: %d", rc);
      ctx->errors++;
    } else if (rc == 0) {
      if (vals[0] != vals[1] || vals[0] < ctx->last) {
        snprintf(ctx->why, sizeof ctx->why, "a=%d b=%d last=%d", vals[0], vals[1], ctx->last);
        ctx->errors++;
      }
      if (vals[0] >= 0)
        ctx->last = vals[0];
      ctx->reads++;
    }
    if (finished)
      break;
  }
  store_reader_close(r);
  return NULL;
}

static void test_reader_thread_while_owner_writes(void **state) {
  stu_fx_t *fx = *state;
  const char *path = fx->path;
  store_db_t *db = stu_open(path, NULL);
  store_t *s = stu_store(db, "pairs", 2000);
  /* last = -1: a scan before the first commit finds the table empty. */
  reader_ctx_t ctx = {.path = path, .last = -1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader_thread, &ctx), 0);
  char v[16], k[16];
  for (int i = 1; i <= 300; i++) {
    snprintf(v, sizeof v, "%d", i);
    stu_put(s, "a", v);
    for (int j = 0; j < 30; j++) { /* filler: evictions between a and b */
      snprintf(k, sizeof k, "f%d", (i * 31 + j) % 500);
      stu_put(s, k, v);
    }
    stu_put(s, "b", v);
    store_offset_t off = {"in", 0, i};
    stu_commit(db, &off, 1, NULL, NULL);
  }
  __atomic_store_n(&ctx.done, 1, __ATOMIC_RELEASE);
  pthread_join(th, NULL);
  if (ctx.errors)
    fail_msg("reader: %d errors, last: %s", ctx.errors, ctx.why);
  assert_true(ctx.reads > 0);
  assert_int_equal(ctx.last, 300);
  store_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      STU_TEST(test_offsets_commit_and_reopen),
      STU_TEST(test_invalid_store_names),
      STU_TEST(test_corrupt_file_is_set_aside),
      STU_TEST(test_changelog_failure_commits_nothing),
      STU_TEST(test_crash_state_matches_offsets),
      STU_TEST(test_restore_then_offsets),
      STU_TEST(test_reader_sees_only_committed),
      STU_TEST(test_reader_thread_while_owner_writes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
