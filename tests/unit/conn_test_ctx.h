/*
 * conn_test_ctx.h: a test-only conn_ctx_t, so that unit tests drive a
 * connector plugin through its callbacks without the framework.
 *
 * The framework (runtime/connect_task.c) defines the real conn_ctx_*
 * functions. A test binary that includes this header defines every one of
 * them itself; the linker then never pulls the framework's object out of
 * the runtime library, so the two never collide. Include it in exactly one
 * file per test binary, after <cmocka.h>.
 *
 * What it models: committed source offsets (a map from source partition
 * JSON to offset JSON, which a test fills with test_ctx_commit as the
 * framework does once records are in the log), the stop flag, log lines
 * and conn_ctx_report calls (counted, the last reason kept).
 */
#ifndef RUNNEL_CONN_TEST_CTX_H
#define RUNNEL_CONN_TEST_CTX_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "connector.h"

struct conn_ctx {
  const char *name;
  int task_id;
  bool stopping;
  conn_config_t offsets; /* partition JSON -> offset JSON */
  int reports;
  char last_report[512];
  char report_log[4096];
  bool fail_reports;
  char seeks[1024];
  int logs;
  char last_log[1024];
  bool verbose;          /* print log lines (debugging a test) */
};

static inline void test_ctx_init(conn_ctx_t *ctx) {
  memset(ctx, 0, sizeof *ctx);
  ctx->name = "test";
  conn_config_init(&ctx->offsets);
}

static inline void test_ctx_free(conn_ctx_t *ctx) {
  conn_config_free(&ctx->offsets);
}

/* What the framework does once records are durable in the log: the last
 * source offset per source partition becomes the committed one. */
static inline void test_ctx_commit(conn_ctx_t *ctx, const conn_batch_t *b) {
  for (size_t i = 0; i < b->count; i++)
    if (b->records[i].source_partition && b->records[i].source_offset)
      assert_int_equal(conn_config_set(&ctx->offsets, b->records[i].source_partition,
                                       b->records[i].source_offset), 0);
}

const char *conn_ctx_name(const conn_ctx_t *ctx) {
  return ctx->name;
}

int conn_ctx_task_id(const conn_ctx_t *ctx) {
  return ctx->task_id;
}

bool conn_ctx_stopping(const conn_ctx_t *ctx) {
  return ctx->stopping;
}

bool conn_ctx_sleep(conn_ctx_t *ctx, int64_t ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  return ctx->stopping;
}

void conn_ctx_log(conn_ctx_t *ctx, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->last_log, sizeof ctx->last_log, fmt, ap);
  va_end(ap);
  ctx->logs++;
  if (ctx->verbose)
    fprintf(stderr, "[%d] %s\n", level, ctx->last_log);
}

char *conn_ctx_offset(conn_ctx_t *ctx, const char *source_partition) {
  const char *v = conn_config_get(&ctx->offsets, source_partition);
  return v ? strdup(v) : NULL;
}

void conn_ctx_offsets_each(conn_ctx_t *ctx,
                           void (*cb)(void *arg, const char *partition, const char *offset),
                           void *arg) {
  for (size_t i = 0; i < ctx->offsets.count; i++)
    cb(arg, ctx->offsets.keys[i], ctx->offsets.values[i]);
}

void conn_ctx_seek(conn_ctx_t *ctx, const char *topic, int32_t partition, int64_t offset) {
  size_t n = strlen(ctx->seeks);
  snprintf(ctx->seeks + n, sizeof ctx->seeks - n, "%s/%d@%lld ", topic, (int)partition,
           (long long)offset);
}

int conn_ctx_report(conn_ctx_t *ctx, const conn_record_t *rec, const char *reason) {
  ctx->reports++;
  snprintf(ctx->last_report, sizeof ctx->last_report, "%s", reason);
  size_t n = strlen(ctx->report_log);
  snprintf(ctx->report_log + n, sizeof ctx->report_log - n, "%lld:%s\n", (long long)rec->offset,
           reason);
  return ctx->fail_reports ? -1 : 0;
}

#endif
