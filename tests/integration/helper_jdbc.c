/*
 * helper_jdbc: drives the SQLite/PostgreSQL connector plugins through
 * their callbacks the way the framework does (validate, start, put/poll,
 * retry CONN_E_RETRY with the same records, stop), for integration tests
 * against a real PostgreSQL server (tests/integration/pg_lib.sh).
 *
 *   helper_jdbc validate PLUGIN KEY=VALUE...
 *       prints "KEY: message" per error (per key, then cross-key); exit 1
 *       when there is one
 *   helper_jdbc sink PLUGIN NAME PUT_SIZE KEY=VALUE... < records
 *       records: lines "topic<TAB>partition<TAB>offset<TAB>key<TAB>value",
 *       \N for a null key or value. Records before a partition's seek
 *       offset are skipped, as the framework skips them. Prints
 *       "seek TOPIC PARTITION OFFSET", "report OFFSET REASON", and on
 *       stderr "retry: MESSAGE" when it changes. PUT_SIZE records per put;
 *       a line "PAUSE" in the input sleeps 200 ms after the put in flight.
 *   helper_jdbc source PLUGIN OFFSETS_FILE MAX_POLLS KEY=VALUE...
 *       polls until an empty poll (or MAX_POLLS polls) and prints
 *       "topic<TAB>source_offset<TAB>value" per record; committed offsets
 *       (lines "partition<TAB>offset") are read from and written to
 *       OFFSETS_FILE, so a second run resumes.
 * Retries give up after 60 s (exit 3). The framework's conn_ctx_* are
 * this program's own (the runtime's object is then never linked in).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connector.h"

struct conn_ctx {
  const char *name;
  conn_config_t offsets;
  conn_config_t seeks; /* "topic\tpartition" -> offset */
};

const char *conn_ctx_name(const conn_ctx_t *ctx) { return ctx->name; }
int conn_ctx_task_id(const conn_ctx_t *ctx) { (void)ctx; return 0; }
bool conn_ctx_stopping(const conn_ctx_t *ctx) { (void)ctx; return false; }

static void sleep_ms(int64_t ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

bool conn_ctx_sleep(conn_ctx_t *ctx, int64_t ms) {
  (void)ctx;
  sleep_ms(ms);
  return false;
}

void conn_ctx_log(conn_ctx_t *ctx, int level, const char *fmt, ...) {
  (void)ctx;
  if (level > 2) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "log%d: ", level);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
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
  char key[512], val[32];
  snprintf(key, sizeof key, "%s\t%d", topic, partition);
  snprintf(val, sizeof val, "%lld", (long long)offset);
  conn_config_set(&ctx->seeks, key, val);
  printf("seek %s %d %lld\n", topic, partition, (long long)offset);
}

int conn_ctx_report(conn_ctx_t *ctx, const conn_record_t *rec, const char *reason) {
  (void)ctx;
  printf("report %lld %s\n", (long long)rec->offset, reason);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: helper_jdbc validate|sink|source PLUGIN ... (see the source)\n");
  return 2;
}

static const conn_plugin_t *plugin(const char *name) {
  const conn_plugin_t *p = conn_plugin_find(name);
  if (!p) fprintf(stderr, "no plugin %s\n", name);
  return p;
}

static void parse_kv(conn_config_t *cfg, int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) continue;
    *eq = '\0';
    conn_config_set(cfg, argv[i], eq + 1);
    *eq = '=';
  }
}

static int validate(const conn_plugin_t *p, const conn_config_t *cfg) {
  conn_value_t *vals = NULL;
  size_t n = 0;
  char err[512];
  int errors = conn_config_validate(p->defs, cfg, &vals, &n, err, sizeof err);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; vals[i].errors[j]; j++) printf("%s: %s\n", vals[i].def->name, vals[i].errors[j]);
  conn_values_free(vals, n);
  if (errors == 0 && p->validate) {
    const char *key = NULL;
    if (p->validate(cfg, &key, err, sizeof err) < 0) {
      printf("%s: %s\n", key, err);
      errors = 1;
    }
  }
  return errors ? 1 : 0;
}

/* Calls fn until it stops answering CONN_E_RETRY (60 s at most). */
#define RETRYING(call, rc)                                                   \
  do {                                                                       \
    char last[1024] = "";                                                    \
    for (int tries = 0;; tries++) {                                          \
      err[0] = '\0';                                                         \
      rc = (call);                                                           \
      if (rc != CONN_E_RETRY) break;                                         \
      if (strcmp(last, err) != 0) fprintf(stderr, "retry: %s\n", err);       \
      snprintf(last, sizeof last, "%s", err);                                \
      if (tries >= 300) {                                                    \
        fprintf(stderr, "giving up after 60 s: %s\n", err);                  \
        exit(3);                                                             \
      }                                                                      \
      sleep_ms(200);                                                         \
    }                                                                        \
  } while (0)

static char *field(char **line) {
  char *s = *line, *tab = strchr(s, '\t');
  if (tab) *tab = '\0', *line = tab + 1;
  else *line = s + strlen(s);
  return s;
}

static int run_sink(const conn_plugin_t *p, conn_ctx_t *ctx, const conn_config_t *cfg,
                    size_t put_size) {
  void *task = calloc(1, p->task_size);
  char err[1024];
  int rc;
  RETRYING(p->start(task, ctx, cfg, err, sizeof err), rc);
  if (rc != CONN_OK) {
    printf("fail: %s\n", err);
    return 1;
  }
  conn_record_t *recs = calloc(put_size, sizeof *recs);
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int ret = 0;
  bool eof = false;
  while (!eof && ret == 0) {
    bool pause = false;
    while (n < put_size && !pause) {
      if ((len = getline(&line, &cap, stdin)) < 0) {
        eof = true;
        break;
      }
      if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
      if (strcmp(line, "PAUSE") == 0) {
        pause = true;
        break;
      }
      char *at = line;
      char *topic = field(&at), *part = field(&at), *off = field(&at), *key = field(&at);
      char *value = at;
      char skey[512];
      snprintf(skey, sizeof skey, "%s\t%s", topic, part);
      const char *seek = conn_config_get(&ctx->seeks, skey);
      if (seek && atoll(off) < atoll(seek)) continue;
      conn_record_t *r = &recs[n++];
      conn_record_init(r);
      conn_record_set_topic(r, topic);
      r->partition = atoi(part);
      r->offset = atoll(off);
      if (strcmp(key, "\\N") != 0) conn_record_set_key(r, key, (int32_t)strlen(key));
      if (strcmp(value, "\\N") != 0) conn_record_set_value(r, value, (int32_t)strlen(value));
    }
    if (n > 0) {
      RETRYING(p->put(task, recs, n, err, sizeof err), rc);
      if (rc != CONN_OK) {
        printf("fail: %s\n", err);
        ret = 1;
      }
      for (size_t i = 0; i < n; i++) conn_record_clear(&recs[i]);
      n = 0;
    }
    if (pause) sleep_ms(200);
    fflush(stdout);
  }
  free(line);
  free(recs);
  p->stop(task);
  free(task);
  return ret;
}

static void load_offsets(conn_ctx_t *ctx, const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n') line[--len] = '\0';
    char *tab = strchr(line, '\t');
    if (!tab) continue;
    *tab = '\0';
    conn_config_set(&ctx->offsets, line, tab + 1);
  }
  free(line);
  fclose(f);
}

static void save_offsets(conn_ctx_t *ctx, const char *file) {
  FILE *f = fopen(file, "w");
  if (!f) return;
  for (size_t i = 0; i < ctx->offsets.count; i++)
    fprintf(f, "%s\t%s\n", ctx->offsets.keys[i], ctx->offsets.values[i]);
  fclose(f);
}

static int run_source(const conn_plugin_t *p, conn_ctx_t *ctx, const conn_config_t *cfg,
                      const char *offsets_file, int max_polls) {
  load_offsets(ctx, offsets_file);
  void *task = calloc(1, p->task_size);
  char err[1024];
  int rc;
  RETRYING(p->start(task, ctx, cfg, err, sizeof err), rc);
  if (rc != CONN_OK) {
    printf("fail: %s\n", err);
    return 1;
  }
  conn_batch_t b;
  conn_batch_init(&b);
  int ret = 0;
  for (int i = 0; i < max_polls; i++) {
    conn_batch_clear(&b);
    RETRYING(p->poll(task, &b, 1000, err, sizeof err), rc);
    if (rc < 0) {
      printf("fail: %s\n", err);
      ret = 1;
      break;
    }
    for (size_t j = 0; j < b.count; j++) {
      conn_record_t *r = &b.records[j];
      printf("%s\t%s\t%.*s\n", r->topic, r->source_offset, (int)r->value_len,
             (const char *)r->value);
      conn_config_set(&ctx->offsets, r->source_partition, r->source_offset);
    }
    save_offsets(ctx, offsets_file);
    if (rc == 0) break;
  }
  conn_batch_free(&b);
  p->stop(task);
  free(task);
  return ret;
}

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  const conn_plugin_t *p = plugin(argv[2]);
  if (!p) return 2;
  conn_ctx_t ctx = {.name = "helper"};
  conn_config_init(&ctx.offsets);
  conn_config_init(&ctx.seeks);
  conn_config_t cfg;
  conn_config_init(&cfg);
  int ret;
  if (strcmp(argv[1], "validate") == 0) {
    parse_kv(&cfg, argc - 3, argv + 3);
    ret = validate(p, &cfg);
  } else if (strcmp(argv[1], "sink") == 0 && argc >= 5) {
    ctx.name = argv[3];
    parse_kv(&cfg, argc - 5, argv + 5);
    ret = validate(p, &cfg) ? 2 : run_sink(p, &ctx, &cfg, (size_t)atoi(argv[4]));
  } else if (strcmp(argv[1], "source") == 0 && argc >= 5) {
    parse_kv(&cfg, argc - 5, argv + 5);
    ret = validate(p, &cfg) ? 2 : run_source(p, &ctx, &cfg, argv[3], atoi(argv[4]));
  } else {
    ret = usage();
  }
  conn_config_free(&cfg);
  conn_config_free(&ctx.offsets);
  conn_config_free(&ctx.seeks);
  return ret;
}
