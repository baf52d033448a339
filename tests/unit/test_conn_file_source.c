/* Tests for connectors/conn_file_source.c, driven through the plugin's
 * callbacks with the test context of conn_test_ctx.h (offsets committed as
 * the framework commits them), and for connectors/conn_registry.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn_int.h"
#include "conn_test_ctx.h"
#include "scratch_util.h"

typedef struct {
  char *dir;
  char path[512];
  conn_ctx_t ctx;
  conn_config_t cfg;
  void *task;
  bool started;
  conn_batch_t got; /* every record polled so far */
} fixture_t;

static int setup(void **state) {
  fixture_t *fx = calloc(1, sizeof *fx);
  fx->dir = scratch_mkdtemp("conn-file-source");
  snprintf(fx->path, sizeof fx->path, "%s/in.log", fx->dir);
  test_ctx_init(&fx->ctx);
  conn_config_init(&fx->cfg);
  conn_config_set(&fx->cfg, "file", fx->path);
  conn_config_set(&fx->cfg, "topic", "lines");
  conn_batch_init(&fx->got);
  *state = fx;
  return 0;
}

static void stop_task(fixture_t *fx) {
  if (fx->started)
    conn_file_source_plugin.stop(fx->task);
  free(fx->task);
  fx->task = NULL;
  fx->started = false;
}

static int teardown(void **state) {
  fixture_t *fx = *state;
  stop_task(fx);
  conn_batch_free(&fx->got);
  conn_config_free(&fx->cfg);
  test_ctx_free(&fx->ctx);
  scratch_rmrf(fx->dir);
  free(fx);
  return 0;
}

/* The source offset the task writes for a position in the file that
 * holds content (from its first byte): {"position", "inode", "head"},
 * the head being the FNV-1a hash of the first min(position, 256) bytes. */
static uint64_t head_hash(const char *content, long long n) {
  uint64_t h = 14695981039346656037ULL;
  for (long long i = 0; i < n; i++) {
    h ^= (unsigned char)content[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static void expect_offset(const char *got, const char *content, long long position,
                          unsigned long long ino) {
  long long n = position < 256 ? position : 256;
  uint64_t h = head_hash(content, n);
  char want[160];
  snprintf(want, sizeof want, "{\"position\":%lld,\"inode\":%llu,\"head\":\"%lld:%016llx\"}",
           position, ino, n, (unsigned long long)h);
  assert_string_equal(got, want);
}

static void start_task(fixture_t *fx) {
  char err[512] = "";
  if (conn_config_validate(conn_file_source_plugin.defs, &fx->cfg, NULL, NULL, err, sizeof err))
    fail_msg("invalid config: %s", err);
  fx->task = calloc(1, conn_file_source_plugin.task_size);
  int rc = conn_file_source_plugin.start(fx->task, &fx->ctx, &fx->cfg, err, sizeof err);
  if (rc != CONN_OK)
    fail_msg("start: %s", err);
  fx->started = true;
}

/* Polls until a poll returns 0; the records are committed and moved to
 * fx->got. Returns how many were polled. */
static size_t poll_all(fixture_t *fx, size_t max) {
  size_t total = 0;
  for (;;) {
    conn_batch_t b;
    conn_batch_init(&b);
    char err[512] = "";
    int n = conn_file_source_plugin.poll(fx->task, &b, max, err, sizeof err);
    if (n < 0)
      fail_msg("poll: %d %s", n, err);
    assert_int_equal((size_t)n, b.count);
    assert_true((size_t)n <= max);
    test_ctx_commit(&fx->ctx, &b);
    for (size_t i = 0; i < b.count; i++) {
      conn_record_t *r = conn_batch_add(&fx->got);
      assert_int_equal(conn_record_copy(r, &b.records[i]), 0);
    }
    conn_batch_free(&b);
    total += (size_t)n;
    if (n == 0)
      return total;
  }
}

/* The values of fx->got joined with '|'. */
static const char *got_values(fixture_t *fx) {
  static char out[4096];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < fx->got.count; i++) {
    conn_record_t *r = &fx->got.records[i];
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", i ? "|" : "", (int)r->value_len,
                          (const char *)r->value);
  }
  return out;
}

static void write_file(const char *path, const char *text, const char *mode) {
  FILE *f = fopen(path, mode);
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_reads_lines_follows_appends_waits_for_partial(void **state) {
  fixture_t *fx = *state;
  write_file(fx->path, "alpha\nbeta\r\n\n", "w");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 3);
  assert_string_equal(got_values(fx), "alpha|beta|"); /* CRLF ends a line; empty line kept */
  conn_record_t *r = &fx->got.records[1];
  assert_string_equal(r->topic, "lines");
  assert_null(r->key);
  assert_int_equal(r->timestamp, -1);
  char part[600];
  snprintf(part, sizeof part, "{\"filename\":\"%s\"}", fx->path);
  assert_string_equal(r->source_partition, part);
  struct stat st;
  stat(fx->path, &st);
  expect_offset(r->source_offset, "alpha\nbeta\r\n", 12, (unsigned long long)st.st_ino);
  /* An append with a partial last line: only the complete line now. */
  write_file(fx->path, "gamma\ndel", "a");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_int_equal(poll_all(fx, 100), 0);
  write_file(fx->path, "ta\n", "a");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "alpha|beta||gamma|delta");
}

static void test_batch_size_bounds_a_poll(void **state) {
  fixture_t *fx = *state;
  FILE *f = fopen(fx->path, "w");
  for (int i = 0; i < 25; i++)
    fprintf(f, "l%d\n", i);
  fclose(f);
  conn_config_set(&fx->cfg, "batch.size", "10");
  start_task(fx);
  conn_batch_t b;
  conn_batch_init(&b);
  char err[256];
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 10);
  conn_batch_clear(&b);
  /* The framework's max bounds it too. */
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 4, err, sizeof err), 4);
  assert_memory_equal(b.records[3].value, "l13", 3);
  conn_batch_free(&b);
}

static void test_restart_neither_skips_nor_repeats(void **state) {
  fixture_t *fx = *state;
  FILE *f = fopen(fx->path, "w");
  for (int i = 0; i < 10; i++)
    fprintf(f, "r%d\n", i);
  fputs("part", f);
  fclose(f);
  conn_config_set(&fx->cfg, "batch.size", "3");
  start_task(fx);
  conn_batch_t b;
  conn_batch_init(&b);
  char err[256];
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 3);
  test_ctx_commit(&fx->ctx, &b);
  conn_batch_clear(&b);
  /* Polled but never committed (the worker died before the log had them). */
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 3);
  conn_batch_free(&b);
  stop_task(fx);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 7);
  assert_string_equal(got_values(fx), "r3|r4|r5|r6|r7|r8|r9");
  /* The partial line completed while stopped. */
  stop_task(fx);
  write_file(fx->path, "ial\n", "a");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(fx->got.records[7].value, "partial");
}

static void test_restart_after_file_replaced_reads_new_file_from_start(void **state) {
  fixture_t *fx = *state;
  write_file(fx->path, "old1\nold2\nold3\n", "w");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 3);
  stop_task(fx);
  /* Replaced while stopped by a longer file: the committed position would
   * fall mid-file, but the inode says it is another file. The old file is
   * not in the directory any more (moved elsewhere, so that its inode is
   * not reused; a rotated file still there is finished first: the next
   * test). */
  char moved[600];
  snprintf(moved, sizeof moved, "%s/archive", fx->dir);
  assert_int_equal(mkdir(moved, 0755), 0);
  strcat(moved, "/in.log.1");
  assert_int_equal(rename(fx->path, moved), 0);
  write_file(fx->path, "new1\nnew2\nnew3\nnew4\n", "w");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 4);
  assert_string_equal(got_values(fx), "old1|old2|old3|new1|new2|new3|new4");
  assert_non_null(strstr(fx->ctx.last_log, "replaced"));
  stop_task(fx);
  /* An offset set by hand (KIP-875) without an inode, past a shortened file. */
  char part[600];
  snprintf(part, sizeof part, "{\"filename\":\"%s\"}", fx->path);
  conn_config_set(&fx->ctx.offsets, part, "{\"position\":1000}");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 4);
  assert_non_null(strstr(fx->ctx.last_log, "truncated"));
  stop_task(fx);
  /* An offset not at a line end. */
  conn_config_set(&fx->ctx.offsets, part, "{\"position\":3}");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 4);
  stop_task(fx);
  conn_config_set(&fx->ctx.offsets, part, "{\"position\":10}");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  assert_string_equal(fx->got.records[fx->got.count - 1].value, "new4");
}

/* The committed offset of fx->path, as the task resumes from it. */
static void set_offset(fixture_t *fx, int64_t position, unsigned long long ino) {
  char part[600], off[96];
  snprintf(part, sizeof part, "{\"filename\":\"%s\"}", fx->path);
  snprintf(off, sizeof off, "{\"position\":%lld,\"inode\":%llu}", (long long)position, ino);
  assert_int_equal(conn_config_set(&fx->ctx.offsets, part, off), 0);
}

static unsigned long long inode_of(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (unsigned long long)st.st_ino;
}

/* Rotated by rename while the task was down (the worker killed before it
 * read the end of the old file): the rest of the old file, found by its
 * inode under its new name, comes first, with offsets naming the old inode,
 * then the new file from 0. A crash at any point of that resumes without
 * skipping or repeating a line. */
static void test_restart_after_rotation_finishes_old_file(void **state) {
  fixture_t *fx = *state;
  write_file(fx->path, "a1\na2\n", "w");
  unsigned long long old_ino = inode_of(fx->path);
  conn_config_set(&fx->cfg, "batch.size", "1");
  start_task(fx);
  conn_batch_t b;
  conn_batch_init(&b);
  char err[256];
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 1);
  test_ctx_commit(&fx->ctx, &b); /* a1 committed, a2 polled but not */
  conn_batch_free(&b);
  stop_task(fx);
  write_file(fx->path, "a3\na4", "a"); /* the last line without its newline */
  char rotated[600];
  snprintf(rotated, sizeof rotated, "%s.20261122", fx->path); /* any name in the directory */
  assert_int_equal(rename(fx->path, rotated), 0);
  write_file(fx->path, "b1\nb2\n", "w");
  unsigned long long new_ino = inode_of(fx->path);
  assert_true(new_ino != old_ino);
  /* Crash during the drain: a2 committed, a3 polled only. */
  start_task(fx);
  assert_non_null(strstr(fx->ctx.last_log, "rotated while the task was down"));
  conn_batch_init(&b);
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 1);
  assert_memory_equal(b.records[0].value, "a2", 2);
  expect_offset(b.records[0].source_offset, "a1\na2\n", 6, old_ino);
  test_ctx_commit(&fx->ctx, &b);
  conn_batch_clear(&b);
  assert_int_equal(conn_file_source_plugin.poll(fx->task, &b, 100, err, sizeof err), 1);
  conn_batch_free(&b);
  stop_task(fx);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 4);
  assert_string_equal(got_values(fx), "a3|a4|b1|b2");
  /* a4: the old file's end; b1: the new file's */
  expect_offset(fx->got.records[1].source_offset, "a1\na2\na3\na4", 11, old_ino);
  expect_offset(fx->got.records[2].source_offset, "b1\nb2\n", 3, new_ino);
  stop_task(fx);
  /* Crash after the drain, before a line of the new file was committed:
   * the old file's end (after a line without '\n') resumes at the new file. */
  conn_batch_clear(&fx->got);
  set_offset(fx, 11, old_ino);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  assert_string_equal(got_values(fx), "b1|b2");
  stop_task(fx);
  /* The new file's own offset: the old file is not looked at. */
  conn_batch_clear(&fx->got);
  write_file(fx->path, "b3\n", "a");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "b3");
  stop_task(fx);
  /* Rotated and the new file not created yet: the old file, then the path
   * when it appears. */
  conn_batch_clear(&fx->got);
  assert_int_equal(unlink(fx->path), 0);
  set_offset(fx, 3, old_ino);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 3);
  assert_string_equal(got_values(fx), "a2|a3|a4");
  write_file(fx->path, "c1\n", "w");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "a2|a3|a4|c1");
  stop_task(fx);
  /* The old file found but shorter than the committed position (rewritten):
   * not read; the new file from 0 as before. */
  conn_batch_clear(&fx->got);
  set_offset(fx, 100, old_ino);
  start_task(fx);
  assert_non_null(strstr(fx->ctx.last_log, "replaced"));
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "c1");
}

/* Glob, after a restart: a match without an offset of its own continues
 * where another name's offset left its file (inode and head), as current
 * file or in "rotated"; an offset naming its inode with another head (a
 * deleted file's inode given to a new file) does not count. */
static void test_glob_match_continues_where_another_name_left_it(void **state) {
  fixture_t *fx = *state;
  char rot[600], pattern[600], part_app[700], part_rot[700], off[400];
  snprintf(rot, sizeof rot, "%s/app.1.log", fx->dir);
  snprintf(pattern, sizeof pattern, "%s/app*.log", fx->dir);
  snprintf(part_app, sizeof part_app, "{\"filename\":\"%s/app.log\"}", fx->dir);
  snprintf(part_rot, sizeof part_rot, "{\"filename\":\"%s\"}", rot);
  const char *text = "x1\nx2\nx3\n";
  write_file(rot, text, "w");
  unsigned long long ino = inode_of(rot);
  conn_config_set(&fx->cfg, "file", pattern);
  conn_config_set(&fx->cfg, "scan.interval.ms", "10");
  /* Same inode, another head: a new file, read from 0. */
  snprintf(off, sizeof off, "{\"position\":3,\"inode\":%llu,\"head\":\"3:%016llx\"}", ino,
           (unsigned long long)head_hash("y1\n", 3));
  conn_config_set(&fx->ctx.offsets, part_app, off);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 3);
  assert_string_equal(got_values(fx), "x1|x2|x3");
  stop_task(fx);
  /* Its identity, as the file app.log was reading: from byte 3. */
  conn_batch_clear(&fx->got);
  conn_config_unset(&fx->ctx.offsets, part_rot);
  snprintf(off, sizeof off, "{\"position\":3,\"inode\":%llu,\"head\":\"3:%016llx\"}", ino,
           (unsigned long long)head_hash(text, 3));
  conn_config_set(&fx->ctx.offsets, part_app, off);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  assert_string_equal(got_values(fx), "x2|x3");
  expect_offset(fx->got.records[1].source_offset, text, 9, ino);
  stop_task(fx);
  /* As a file app.log finished before its new file: from byte 6. */
  conn_batch_clear(&fx->got);
  conn_config_unset(&fx->ctx.offsets, part_rot);
  snprintf(off, sizeof off,
           "{\"position\":0,\"inode\":1,\"head\":\"0:%016llx\",\"rotated\":[{\"inode\":%llu,"
           "\"position\":6,\"head\":\"6:%016llx\"}]}",
           (unsigned long long)head_hash("", 0), ino, (unsigned long long)head_hash(text, 6));
  conn_config_set(&fx->ctx.offsets, part_app, off);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "x3");
  /* A new app.log: its offsets list app.1.log, which has none of its own
   * committed before this line. */
  char app[600];
  snprintf(app, sizeof app, "%s/app.log", fx->dir);
  write_file(app, "n1\n", "w");
  usleep(20 * 1000); /* scan.interval.ms */
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(fx->got.records[1].value, "n1");
  char rotated[200];
  snprintf(rotated, sizeof rotated, ",\"rotated\":[{\"inode\":%llu,\"position\":6,", ino);
  assert_non_null(strstr(fx->got.records[1].source_offset, rotated));
}

static void test_rotation_by_rename_finishes_old_file_first(void **state) {
  fixture_t *fx = *state;
  int w = open(fx->path, O_WRONLY | O_CREAT | O_APPEND, 0644); /* the writer's descriptor */
  assert_true(w >= 0);
  assert_int_equal(write(w, "1\n2\n", 4), 4);
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  assert_int_equal(write(w, "3\n", 2), 2);
  char rotated[600];
  snprintf(rotated, sizeof rotated, "%s.1", fx->path);
  assert_int_equal(rename(fx->path, rotated), 0);
  /* Late writes to the renamed file, one without its newline. */
  assert_int_equal(write(w, "4\n5", 3), 3);
  close(w);
  write_file(fx->path, "6\n7\n", "w");
  assert_int_equal(poll_all(fx, 100), 5);
  assert_string_equal(got_values(fx), "1|2|3|4|5|6|7");
  /* Offsets of the new file start again from its beginning. */
  assert_memory_equal(fx->got.records[5].source_offset, "{\"position\":2,", 14);
  assert_memory_equal(fx->got.records[4].source_offset, "{\"position\":9,", 14);
  /* Removed and not recreated yet: nothing, then the new file. */
  assert_int_equal(unlink(fx->path), 0);
  assert_int_equal(poll_all(fx, 100), 0);
  assert_int_equal(poll_all(fx, 100), 0);
  write_file(fx->path, "8\n", "w");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(fx->got.records[7].value, "8");
}

static void test_truncation_reads_from_start(void **state) {
  fixture_t *fx = *state;
  write_file(fx->path, "aaaa\nbbbb\npart", "w");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  /* copytruncate: the file is emptied in place and written again. */
  assert_int_equal(truncate(fx->path, 0), 0);
  write_file(fx->path, "c\n", "a");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(got_values(fx), "aaaa|bbbb|c");
  assert_memory_equal(fx->got.records[2].source_offset, "{\"position\":2,", 14);
  write_file(fx->path, "d\n", "a");
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(fx->got.records[3].value, "d");
}

static void test_missing_file_is_waited_for(void **state) {
  fixture_t *fx = *state;
  start_task(fx);
  assert_non_null(strstr(fx->ctx.last_log, "does not exist yet"));
  assert_int_equal(poll_all(fx, 100), 0);
  write_file(fx->path, "x\n", "w");
  assert_int_equal(poll_all(fx, 100), 1);
}

static void test_glob_of_several_files(void **state) {
  fixture_t *fx = *state;
  char a[600], b[600], c[600], other[600], pattern[600];
  snprintf(a, sizeof a, "%s/a.log", fx->dir);
  snprintf(b, sizeof b, "%s/b.log", fx->dir);
  snprintf(c, sizeof c, "%s/c.log", fx->dir);
  snprintf(other, sizeof other, "%s/skip.txt", fx->dir);
  snprintf(pattern, sizeof pattern, "%s/*.log", fx->dir);
  write_file(a, "a1\na2\n", "w");
  write_file(b, "b1\n", "w");
  write_file(other, "no\n", "w");
  conn_config_set(&fx->cfg, "file", pattern);
  conn_config_set(&fx->cfg, "scan.interval.ms", "10");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 3);
  /* Per file order, and each file is its own source partition. */
  int na = 0, nb = 0;
  for (size_t i = 0; i < fx->got.count; i++) {
    conn_record_t *r = &fx->got.records[i];
    const char *v = r->value;
    if (v[0] == 'a') {
      assert_int_equal(v[1], '1' + na++);
      assert_non_null(strstr(r->source_partition, "a.log"));
    } else {
      assert_string_equal(v, "b1");
      nb++;
      assert_non_null(strstr(r->source_partition, "b.log"));
    }
  }
  assert_int_equal(na, 2);
  assert_int_equal(nb, 1);
  /* A new file is found at the next scan; appends to known files too. */
  write_file(c, "c1\n", "w");
  write_file(b, "b2\n", "a");
  usleep(20000);
  assert_int_equal(poll_all(fx, 100), 2);
  /* A rotated file whose new name matches the glob is not read again. */
  char a1[600];
  snprintf(a1, sizeof a1, "%s/a1.log", fx->dir);
  assert_int_equal(rename(a, a1), 0);
  write_file(a1, "a3\n", "a"); /* a late line, read as the end of a.log */
  usleep(20000);
  assert_int_equal(poll_all(fx, 100), 1);
  assert_string_equal(fx->got.records[fx->got.count - 1].value, "a3");
  usleep(20000); /* scans after a.log was finished find a1.log: not new */
  assert_int_equal(poll_all(fx, 100), 0);
  usleep(20000);
  assert_int_equal(poll_all(fx, 100), 0);
  /* Restart: every file resumes at its own offset. (A restarted task
   * cannot tell a renamed file from a new one, so rotated names must not
   * match the glob across restarts: docs/connectors.md says so.) */
  stop_task(fx);
  char old[600];
  snprintf(old, sizeof old, "%s/a.old", fx->dir);
  assert_int_equal(rename(a1, old), 0);
  write_file(b, "b3\n", "a");
  write_file(c, "c2\n", "a");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 2);
  size_t n = fx->got.count;
  const char *last2[2] = {fx->got.records[n - 2].value, fx->got.records[n - 1].value};
  assert_true((strcmp(last2[0], "b3") == 0 && strcmp(last2[1], "c2") == 0) ||
              (strcmp(last2[0], "c2") == 0 && strcmp(last2[1], "b3") == 0));
}

static void test_json_lines_key_timestamp_and_malformed(void **state) {
  fixture_t *fx = *state;
  write_file(fx->path,
             "{\"id\": \"u1\", \"ts\": 1700000000000, \"n\": 1}\n"
             "{\"id\": \"u2\", \"ts\": \"2024-05-01T12:00:00.250Z\"}\n"
             "{\"id\": oops}\n"
             "   \n"
             "{\"id\": {\"a\": [1, 2]}, \"ts\": \"2024-05-01T14:00:00+02:00\"}\n"
             "{\"ts\": \"yesterday\"}\n"
             "[1, 2]\n",
             "w");
  conn_config_set(&fx->cfg, "format", "json");
  conn_config_set(&fx->cfg, "key.field", "id");
  conn_config_set(&fx->cfg, "timestamp.field", "ts");
  start_task(fx);
  assert_int_equal(poll_all(fx, 100), 6); /* the blank line is skipped */
  conn_record_t *r = fx->got.records;
  assert_string_equal(r[0].key, "u1");
  assert_int_equal(r[0].timestamp, 1700000000000LL);
  assert_string_equal(r[0].value, "{\"id\": \"u1\", \"ts\": 1700000000000, \"n\": 1}");
  assert_null(conn_record_header(&r[0], CONN_HEADER_ERROR));
  assert_string_equal(r[1].key, "u2");
  assert_int_equal(r[1].timestamp, 1714564800250LL);
  /* The malformed line is kept, with the reason naming file:line:col. */
  assert_string_equal(r[2].value, "{\"id\": oops}");
  const conn_header_t *h = conn_record_header(&r[2], CONN_HEADER_ERROR);
  assert_non_null(h);
  char where[600];
  snprintf(where, sizeof where, "%s:3:9: ", fx->path); /* yajl stops past the 'o' */
  assert_memory_equal(h->value, where, strlen(where));
  assert_null(r[2].key);
  /* A non-string key is its JSON text; a zone offset is applied. */
  assert_string_equal(r[3].key, "{\"a\":[1,2]}");
  assert_int_equal(r[3].timestamp, 1714564800000LL);
  assert_null(r[4].key);
  assert_int_equal(r[4].timestamp, -1);
  assert_non_null(strstr(fx->ctx.last_log, ":6: ts is neither"));
  assert_null(r[5].key); /* not an object */
  /* The skipped blank line does not break offsets: position after line 7. */
  struct stat st;
  stat(fx->path, &st);
  char off[64];
  snprintf(off, sizeof off, "{\"position\":%lld,", (long long)st.st_size);
  assert_memory_equal(r[5].source_offset, off, strlen(off));
}

/* conn_file_json_line's streaming field watch: only top-level fields, the
 * first of duplicates, one field as both key and timestamp, escapes. */
static int json_line(const char *key, const char *ts, const char *text, conn_record_t *r,
                     bool *ts_bad, char *err, size_t errlen) {
  conn_record_init(r);
  *ts_bad = false;
  conn_file_json_t *c = conn_file_json_new(key, ts);
  assert_non_null(c);
  int rc = conn_file_json_line(c, "f.json", 7, text, strlen(text), r, ts_bad, err, errlen);
  conn_file_json_free(c);
  return rc;
}

/* One checker for a file's lines: its parser, kept from line to line, gives
 * every line the verdict and key a fresh parser gives, also right after a
 * bad line and after text that would leave a token half-read. */
static void test_json_line_checker_reused(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int ok;
    const char *key;
  } lines[] = {
      {"{\"k\": \"a\"}", 1, "a"},
      {"  [1, 2] ", 1, NULL},
      {"{\"k\": \"b\"} {\"k\": \"c\"}", 0, NULL}, /* two values */
      {"{\"k\": \"d\"}", 1, "d"},
      {"{\"k\": 1} 2", 0, NULL},
      {"{\"k\": \"e\"} \"open", 0, NULL}, /* an unfinished string after the value */
      {"x\"", 0, NULL},                      /* would close that string */
      {"{\"k\": \"f\"", 0, NULL},            /* cut off */
      {"}", 0, NULL},
      {"{\"k\": \"g\"}", 1, "g"},
      {"42", 1, NULL},
      {"\"s\"", 1, NULL},
      {"{\"k\": tru}", 0, NULL},
      {"{\"k\": 7}", 1, "7"},
  };
  conn_file_json_t *c = conn_file_json_new("k", NULL);
  assert_non_null(c);
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
    conn_record_t r;
    conn_record_init(&r);
    bool bad = false;
    char err[256] = "";
    int rc = conn_file_json_line(c, "f.json", (int64_t)i + 1, lines[i].text,
                                 strlen(lines[i].text), &r, &bad, err, sizeof err);
    if (rc != lines[i].ok) fail_msg("line %zu %s: %d (%s)", i + 1, lines[i].text, rc, err);
    if (!rc) assert_non_null(strstr(err, "f.json:"));
    if (i == 5) /* the unfinished string after the value: named with its column */
      assert_string_equal(err, "f.json:6:12: invalid JSON: text after the value");
    if (lines[i].key) assert_string_equal(r.key, lines[i].key);
    else assert_null(r.key);
    conn_record_clear(&r);
  }
  conn_file_json_free(c);
}

static void test_json_line_fields(void **state) {
  (void)state;
  conn_record_t r;
  bool bad;
  char err[256];
  assert_int_equal(json_line("id", "ts", "{\"x\": {\"id\": \"nested\", \"ts\": 5}, \"id\": "
                             "\"top\", \"id\": \"second\", \"ts\": 1000}",
                             &r, &bad, err, sizeof err), 1);
  assert_string_equal(r.key, "top");
  assert_int_equal(r.timestamp, 1000);
  assert_false(bad);
  conn_record_clear(&r);
  /* One field as key and timestamp; escapes decoded. */
  assert_int_equal(json_line("t", "t", "{\"t\": \"2024-01-02T03:04:05Z\"}", &r, &bad, err,
                             sizeof err), 1);
  assert_string_equal(r.key, "2024-01-02T03:04:05Z");
  assert_int_equal(r.timestamp, 1704164645000LL);
  conn_record_clear(&r);
  assert_int_equal(json_line("k", NULL, "{\"k\": \"a\\tb\\u00e9\"}", &r, &bad, err, sizeof err),
                   1);
  assert_string_equal(r.key, "a\tb\xc3\xa9");
  conn_record_clear(&r);
  /* Numbers and booleans as text; arrays as JSON; null and absent: none. */
  assert_int_equal(json_line("k", NULL, "{\"k\": -1.50}", &r, &bad, err, sizeof err), 1);
  assert_string_equal(r.key, "-1.50");
  conn_record_clear(&r);
  assert_int_equal(json_line("k", NULL, "{\"k\": false}", &r, &bad, err, sizeof err), 1);
  assert_string_equal(r.key, "false");
  conn_record_clear(&r);
  assert_int_equal(json_line("k", "ts", "{\"k\": [1, {\"a\": null}], \"ts\": [1]}", &r, &bad,
                             err, sizeof err), 1);
  assert_string_equal(r.key, "[1,{\"a\":null}]");
  assert_true(bad);
  assert_int_equal(r.timestamp, -1);
  conn_record_clear(&r);
  assert_int_equal(json_line("k", "ts", "{\"k\": null, \"ts\": null}", &r, &bad, err, sizeof err),
                   1);
  assert_null(r.key);
  assert_true(bad);
  conn_record_clear(&r);
  assert_int_equal(json_line("k", "ts", "[{\"k\": 1}]", &r, &bad, err, sizeof err), 1);
  assert_null(r.key); /* not a top-level field */
  assert_false(bad);
  conn_record_clear(&r);
  /* Timestamps: digits in a string, fractions, offsets; negative is bad. */
  assert_int_equal(json_line(NULL, "ts", "{\"ts\": \"1700000000123\"}", &r, &bad, err,
                             sizeof err), 1);
  assert_int_equal(r.timestamp, 1700000000123LL);
  conn_record_clear(&r);
  assert_int_equal(json_line(NULL, "ts", "{\"ts\": \"2024-05-01 12:00:00.5-01:30\"}", &r, &bad,
                             err, sizeof err), 1);
  assert_int_equal(r.timestamp, 1714570200500LL);
  conn_record_clear(&r);
  assert_int_equal(json_line(NULL, "ts", "{\"ts\": -5}", &r, &bad, err, sizeof err), 1);
  assert_true(bad);
  conn_record_clear(&r);
  /* Malformed: 0 with the place; trailing garbage is malformed too. */
  assert_int_equal(json_line("k", NULL, "{\"k\": \"v\"} x", &r, &bad, err, sizeof err), 0);
  assert_memory_equal(err, "f.json:7:", 9);
  assert_null(r.key);
  conn_record_clear(&r);
  assert_int_equal(json_line(NULL, NULL, "{\"a\":", &r, &bad, err, sizeof err), 0);
  assert_string_equal(err, "f.json:7:6: parse error: premature EOF");
  conn_record_clear(&r);
}

static void test_config_validation(void **state) {
  (void)state;
  conn_config_t c;
  conn_config_init(&c);
  char err[512];
  const conn_def_t *d = conn_file_source_plugin.defs;
  conn_config_set(&c, "file", "/x");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 1);
  assert_string_equal(err,
                      "topic: Missing required configuration \"topic\" which has no default value.");
  conn_config_set(&c, "topic", "bad topic");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 1);
  assert_non_null(strstr(err, "Invalid value bad topic for configuration topic"));
  conn_config_set(&c, "topic", "t");
  conn_config_set(&c, "format", "xml");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 1);
  conn_config_set(&c, "format", "string");
  assert_int_equal(conn_config_validate(d, &c, NULL, NULL, err, sizeof err), 0);
  conn_config_set(&c, "key.field", "id");
  const char *key = NULL;
  assert_int_equal(conn_file_source_plugin.validate(&c, &key, err, sizeof err), -1);
  assert_string_equal(key, "key.field");
  assert_string_equal(err, "key.field needs format=json");
  conn_config_set(&c, "format", "json");
  assert_int_equal(conn_file_source_plugin.validate(&c, &key, err, sizeof err), 0);
  /* Every def is documented. */
  for (const conn_def_t *x = d; x->name; x++)
    assert_true(x->doc && strlen(x->doc) > 10);
  conn_config_free(&c);
}

static void test_registry_finds_plugins_by_name_and_kafka_alias(void **state) {
  (void)state;
  const conn_plugin_t *const *all = conn_plugins();
  size_t n = 0;
  for (; all[n]; n++) {
    assert_ptr_equal(conn_plugin_find(all[n]->name), all[n]);
    for (const char *const *a = all[n]->aliases; a && *a; a++)
      assert_ptr_equal(conn_plugin_find(*a), all[n]);
  }
  assert_true(n >= 2);
  assert_ptr_equal(conn_plugin_find("file-source"), &conn_file_source_plugin);
  assert_ptr_equal(conn_plugin_find("FileStreamSource"), &conn_file_source_plugin);
  assert_ptr_equal(conn_plugin_find("org.apache.kafka.connect.file.FileStreamSourceConnector"),
                   &conn_file_source_plugin);
  assert_ptr_equal(conn_plugin_find("FileStreamSink"), &conn_file_sink_plugin);
  assert_ptr_equal(conn_plugin_find("org.apache.kafka.connect.file.FileStreamSinkConnector"),
                   &conn_file_sink_plugin);
  assert_int_equal(conn_file_source_plugin.kind, CONN_SOURCE);
  assert_int_equal(conn_file_sink_plugin.kind, CONN_SINK);
  assert_null(conn_plugin_find("filestreamsource")); /* names are case-sensitive, as Kafka's */
  assert_null(conn_plugin_find(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reads_lines_follows_appends_waits_for_partial, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_batch_size_bounds_a_poll, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_neither_skips_nor_repeats, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_after_file_replaced_reads_new_file_from_start,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_after_rotation_finishes_old_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rotation_by_rename_finishes_old_file_first, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_truncation_reads_from_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file_is_waited_for, setup, teardown),
      cmocka_unit_test_setup_teardown(test_glob_of_several_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_lines_key_timestamp_and_malformed, setup,
                                      teardown),
      cmocka_unit_test(test_json_line_fields),
      cmocka_unit_test_setup_teardown(test_glob_match_continues_where_another_name_left_it, setup,
                                      teardown),
      cmocka_unit_test(test_json_line_checker_reused),
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_registry_finds_plugins_by_name_and_kafka_alias),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
