/*
 * log_topic.c: topics: name validation, topic config (Kafka's names and
 * defaults, from one declarative table), the topic table of a log,
 * create/delete/list, and partition lookup.
 *
 * On disk a topic is its partition directories DIR/<topic>-<p> and its
 * config file, DIR/<topic>-0/topic.config:
 *
 *   partitions=3
 *   retention.ms=604800000
 *   ...                        (one key=value per line, every key)
 *
 * The config lives in partition 0's directory rather than in
 * DIR/<topic>.config because a 249-character topic name (which Kafka
 * allows) plus ".config" would exceed NAME_MAX (255); "<topic>-0" always
 * fits.
 *
 * The config file is the commit point of a topic: create makes the
 * partition directories first and writes the config file last (atomically:
 * temp, fsync, rename, fsync dir); delete removes the config file first
 * (and fsyncs the directory), then the partition directories. A crash in
 * between leaves directories without a config file, which open ignores and
 * a later create of the same name removes.
 */
#include "log_store_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE "topic.config"

/* ---- names --------------------------------------------------------------- */

int log_topic_name_validate(const char *name, log_error_t *err) {
  if (!name || !*name)
    return log__errf(err, LOG_E_INVALID_TOPIC, "invalid topic name: empty");
  size_t len = strlen(name);
  if (len > 249)
    return log__errf(err, LOG_E_INVALID_TOPIC,
                     "invalid topic name: %zu characters, the maximum is 249", len);
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return log__errf(err, LOG_E_INVALID_TOPIC, "invalid topic name \"%s\"", name);
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return log__errf(err, LOG_E_INVALID_TOPIC,
                       "invalid topic name \"%.64s\": character %zu (0x%02x) is not one of "
                       "[a-zA-Z0-9._-]",
                       name, i, (unsigned char)c);
  }
  return 0;
}

/* ---- config -------------------------------------------------------------- */

typedef enum { CT_I64, CT_I32, CT_POLICY, CT_FLUSH } config_type_t;

/* The declarative table: parsing, validation and formatting all come from
 * it. Defaults are Kafka's topic defaults (log.flush is runnel's). */
static const struct config_key {
  const char *key;
  config_type_t type;
  size_t field;
  int64_t min, max;
  int64_t def;
} config_keys[] = {
#define F(name) offsetof(log_topic_config_t, name)
    {"retention.ms", CT_I64, F(retention_ms), -1, INT64_MAX, 604800000},
    {"retention.bytes", CT_I64, F(retention_bytes), -1, INT64_MAX, -1},
    {"cleanup.policy", CT_POLICY, F(cleanup_policy), 0, 0, LOG_CLEANUP_DELETE},
    /* Kafka's segment.bytes is an int; positions in .index are 32 bits. */
    {"segment.bytes", CT_I64, F(segment_bytes), 14, INT32_MAX, 1073741824},
    {"segment.ms", CT_I64, F(segment_ms), 1, INT64_MAX, 604800000},
    {"max.message.bytes", CT_I32, F(max_message_bytes), 0, INT32_MAX, 1048588},
    {"delete.retention.ms", CT_I64, F(delete_retention_ms), 0, INT64_MAX, 86400000},
    {"min.compaction.lag.ms", CT_I64, F(min_compaction_lag_ms), 0, INT64_MAX, 0},
    {"index.interval.bytes", CT_I32, F(index_interval_bytes), 0, INT32_MAX, 4096},
    {"log.flush", CT_FLUSH, F(flush), 0, 0, LOG_FLUSH_INTERVAL},
    {"log.flush.interval.ms", CT_I64, F(flush_interval_ms), 1, INT64_MAX, 1000},
#undef F
};
#define NKEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const flush_names[] = {"always", "interval", "never"};

static void config_store(log_topic_config_t *cfg, const struct config_key *k, int64_t v) {
  char *base = (char *)cfg + k->field;
  switch (k->type) {
  case CT_I64: memcpy(base, &v, sizeof v); break;
  case CT_I32: { int32_t x = (int32_t)v; memcpy(base, &x, sizeof x); break; }
  case CT_POLICY: { int x = (int)v; memcpy(base, &x, sizeof x); break; }
  case CT_FLUSH: { log_flush_t x = (log_flush_t)v; memcpy(base, &x, sizeof x); break; }
  }
}

static int64_t config_load(const log_topic_config_t *cfg, const struct config_key *k) {
  const char *base = (const char *)cfg + k->field;
  switch (k->type) {
  case CT_I64: { int64_t v; memcpy(&v, base, sizeof v); return v; }
  case CT_I32: { int32_t v; memcpy(&v, base, sizeof v); return v; }
  case CT_POLICY: { int v; memcpy(&v, base, sizeof v); return v; }
  case CT_FLUSH: { log_flush_t v; memcpy(&v, base, sizeof v); return v; }
  }
  return 0;
}

void log_topic_config_defaults(log_topic_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < NKEYS; i++)
    config_store(cfg, &config_keys[i], config_keys[i].def);
}

int log_topic_config_set(log_topic_config_t *cfg, const char *key, const char *value,
                         log_error_t *err) {
  const struct config_key *k = NULL;
  for (size_t i = 0; i < NKEYS && !k; i++)
    if (strcmp(config_keys[i].key, key) == 0)
      k = &config_keys[i];
  if (!k)
    return log__errf(err, LOG_E_INVALID_CONFIG, "unknown topic config key \"%s\"", key);
  int64_t v = 0;
  if (k->type == CT_POLICY) {
    if (strcmp(value, "delete") == 0)
      v = LOG_CLEANUP_DELETE;
    else if (strcmp(value, "compact") == 0)
      v = LOG_CLEANUP_COMPACT;
    else if (strcmp(value, "compact,delete") == 0 || strcmp(value, "delete,compact") == 0)
      v = LOG_CLEANUP_COMPACT | LOG_CLEANUP_DELETE;
    else
      return log__errf(err, LOG_E_INVALID_CONFIG,
                       "%s: \"%s\" is not one of delete, compact, compact,delete", key, value);
  } else if (k->type == CT_FLUSH) {
    size_t i = 0;
    while (i < 3 && strcmp(value, flush_names[i]) != 0)
      i++;
    if (i == 3)
      return log__errf(err, LOG_E_INVALID_CONFIG,
                       "%s: \"%s\" is not one of always, interval, never", key, value);
    v = (int64_t)i;
  } else {
    char *end;
    errno = 0;
    long long x = strtoll(value, &end, 10);
    if (errno || end == value || *end || x < k->min || x > k->max)
      return log__errf(err, LOG_E_INVALID_CONFIG,
                       "%s: \"%s\" is not an integer in [%" PRId64 ", %" PRId64 "]", key, value,
                       k->min, k->max);
    v = x;
  }
  config_store(cfg, k, v);
  return 0;
}

size_t log_topic_config_format(const log_topic_config_t *cfg, char *buf, size_t cap) {
  size_t need = 0;
  for (size_t i = 0; i < NKEYS; i++) {
    const struct config_key *k = &config_keys[i];
    int64_t v = config_load(cfg, k);
    char val[32];
    const char *s = val;
    if (k->type == CT_POLICY)
      s = v == (LOG_CLEANUP_COMPACT | LOG_CLEANUP_DELETE) ? "compact,delete"
          : v == LOG_CLEANUP_COMPACT                     ? "compact"
                                                         : "delete";
    else if (k->type == CT_FLUSH)
      s = v >= 0 && v < 3 ? flush_names[v] : "interval";
    else
      snprintf(val, sizeof val, "%" PRId64, v);
    int n = snprintf(need < cap ? buf + need : NULL, need < cap ? cap - need : 0, "%s=%s\n",
                     k->key, s);
    need += (size_t)n;
  }
  if (cap > 0 && need >= cap)
    buf[cap - 1] = '\0';
  return need;
}

int log__topic_config_parse(const char *text, const char *what, log_topic_config_t *cfg,
                            int32_t *partitions, log_error_t *err) {
  *partitions = 0;
  int line = 0;
  for (const char *p = text; *p;) {
    line++;
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char buf[512];
    if (len >= sizeof buf)
      return log__errf(err, LOG_E_INVALID_CONFIG, "%s:%d: line too long", what, line);
    memcpy(buf, p, len);
    buf[len] = '\0';
    p += len + (eol ? 1 : 0);
    if (buf[0] == '\0' || buf[0] == '#')
      continue;
    char *eq = strchr(buf, '=');
    if (!eq)
      return log__errf(err, LOG_E_INVALID_CONFIG, "%s:%d: expected key=value", what, line);
    *eq = '\0';
    if (strcmp(buf, "partitions") == 0) {
      char *end;
      long v = strtol(eq + 1, &end, 10);
      if (*end || v < 1 || v > INT32_MAX)
        return log__errf(err, LOG_E_INVALID_CONFIG, "%s:%d: partitions: \"%s\"", what, line,
                         eq + 1);
      *partitions = (int32_t)v;
      continue;
    }
    log_error_t kerr;
    if (log_topic_config_set(cfg, buf, eq + 1, &kerr) < 0)
      return log__errf(err, LOG_E_INVALID_CONFIG, "%s:%d: %s", what, line, kerr.msg);
  }
  if (*partitions < 1)
    return log__errf(err, LOG_E_INVALID_CONFIG, "%s: no partitions= line", what);
  return 0;
}

/* ---- the topic table ---------------------------------------------------- */

log__topic_t *log__topic_find(log_t *log, const char *name) {
  for (size_t i = 0; i < log->ntopics; i++)
    if (strcmp(log->topics[i]->name, name) == 0)
      return log->topics[i];
  return NULL;
}

static void topic_free(log__topic_t *t) {
  free(t->parts);
  free(t->name);
  free(t);
}

/* Opens a topic's partitions; on failure closes what it opened. */
static int topic_open(log_t *log, const char *name, int32_t nparts,
                      const log_topic_config_t *cfg, bool create, log__topic_t **out,
                      log_error_t *err) {
  log__topic_t *t = calloc(1, sizeof *t);
  if (!t || !(t->name = strdup(name)) || !(t->parts = calloc((size_t)nparts, sizeof *t->parts))) {
    if (t)
      topic_free(t);
    return log__errf(err, -ENOMEM, "out of memory");
  }
  t->cfg = *cfg;
  int rc = 0;
  for (int32_t i = 0; i < nparts && rc == 0; i++) {
    rc = log__partition_open(log, name, i, cfg, create, &t->parts[i], err);
    if (rc == 0)
      t->nparts = i + 1;
  }
  if (rc < 0) {
    for (int32_t i = 0; i < t->nparts; i++)
      log__partition_close(t->parts[i], false);
    topic_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

static int table_add(log_t *log, log__topic_t *t) {
  if (log->ntopics == log->cap_topics) {
    size_t ncap = log->cap_topics ? log->cap_topics * 2 : 16;
    log__topic_t **nt = realloc(log->topics, ncap * sizeof *nt);
    if (!nt)
      return -ENOMEM;
    log->topics = nt;
    log->cap_topics = ncap;
  }
  log->topics[log->ntopics++] = t;
  return 0;
}

static void config_path(const log_t *log, const char *topic, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s-0", log->dir, topic);
}

int log__topics_load(log_t *log, log_error_t *err) {
  DIR *d = opendir(log->dir);
  if (!d)
    return log__errf(err, -errno, "%s: %s", log->dir, strerror(errno));
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 3 || strcmp(de->d_name + len - 2, "-0") != 0)
      continue;
    char name[256];
    memcpy(name, de->d_name, len - 2);
    name[len - 2] = '\0';
    if (log_topic_name_validate(name, NULL) < 0)
      continue;
    char dir[4096], path[4200], *text;
    size_t tlen;
    config_path(log, name, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, CONFIG_FILE);
    int r = log__read_file(path, &text, &tlen);
    if (r == -ENOENT || r == -ENOTDIR) {
      log__event(log, 1, "%s: no %s: not a topic (an interrupted create or delete?)", dir,
                 CONFIG_FILE);
      continue;
    }
    if (r < 0) {
      rc = log__errf(err, r, "%s: %s", path, strerror(-r));
      break;
    }
    log_topic_config_t cfg;
    log_topic_config_defaults(&cfg);
    int32_t nparts;
    rc = log__topic_config_parse(text, path, &cfg, &nparts, err);
    free(text);
    if (rc < 0)
      break;
    log__topic_t *t;
    /* create=true: a partition directory lost after the commit point is
     * recreated empty rather than failing the whole log. */
    if ((rc = topic_open(log, name, nparts, &cfg, true, &t, err)) < 0)
      break;
    if ((rc = table_add(log, t)) < 0) {
      for (int32_t i = 0; i < t->nparts; i++)
        log__partition_close(t->parts[i], false);
      topic_free(t);
      rc = log__errf(err, rc, "out of memory");
    }
  }
  closedir(d);
  return rc;
}

void log__topics_close(log_t *log, bool flush, int *first_err) {
  for (size_t i = 0; i < log->ntopics; i++) {
    log__topic_t *t = log->topics[i];
    for (int32_t j = 0; j < t->nparts; j++) {
      int rc = log__partition_close(t->parts[j], flush);
      if (rc < 0 && *first_err == 0)
        *first_err = rc;
    }
    topic_free(t);
  }
  free(log->topics);
  log->topics = NULL;
  log->ntopics = log->cap_topics = 0;
}

static void partition_dir(const log_t *log, const char *topic, int32_t p, char *buf,
                          size_t cap) {
  snprintf(buf, cap, "%s/%s-%" PRId32, log->dir, topic, p);
}

int log_topic_create(log_t *log, const char *name, int32_t partitions,
                     const log_topic_config_t *cfg, log_error_t *err) {
  int rc = log_topic_name_validate(name, err);
  if (rc < 0)
    return rc;
  if (partitions < 1)
    return log__errf(err, LOG_E_INVALID_CONFIG, "topic %s: partitions must be >= 1, not %" PRId32,
                     name, partitions);
  if (!cfg)
    cfg = &log->opts.defaults;
  pthread_mutex_lock(&log->mu);
  if (log__topic_find(log, name)) {
    pthread_mutex_unlock(&log->mu);
    return log__errf(err, LOG_E_TOPIC_EXISTS, "topic %s already exists", name);
  }
  /* Leftovers of an interrupted create or delete of this name. */
  for (int32_t i = 0;; i++) {
    char dir[4096];
    partition_dir(log, name, i, dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) < 0)
      break;
    log__event(log, 1, "%s: removing a partition directory left without a topic", dir);
    log__remove_dir(dir);
  }
  log__topic_t *t;
  rc = topic_open(log, name, partitions, cfg, true, &t, err);
  if (rc == 0) {
    size_t cap = 64 + log_topic_config_format(cfg, NULL, 0);
    char *text = malloc(cap);
    char dir[4096];
    config_path(log, name, dir, sizeof dir);
    if (!text) {
      rc = log__errf(err, -ENOMEM, "out of memory");
    } else {
      int n = snprintf(text, cap, "partitions=%" PRId32 "\n", partitions);
      size_t len = (size_t)n + log_topic_config_format(cfg, text + n, cap - (size_t)n);
      /* The commit point: after it, the topic exists across a crash. */
      rc = log__write_file_atomic(dir, CONFIG_FILE, text, len);
      if (rc < 0)
        rc = log__errf(err, rc, "%s/%s: %s", dir, CONFIG_FILE, strerror(-rc));
      free(text);
    }
    if (rc == 0 && (rc = table_add(log, t)) < 0)
      rc = log__errf(err, rc, "out of memory");
    if (rc < 0) {
      for (int32_t i = 0; i < t->nparts; i++) {
        char pdir[4096];
        partition_dir(log, name, i, pdir, sizeof pdir);
        log__partition_close(t->parts[i], false);
        log__remove_dir(pdir);
      }
      topic_free(t);
    }
  }
  pthread_mutex_unlock(&log->mu);
  if (rc == 0)
    log__event(log, 2, "created topic %s with %" PRId32 " partitions", name, partitions);
  return rc;
}

int log_topic_delete(log_t *log, const char *name, log_error_t *err) {
  int rc = log_topic_name_validate(name, err);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&log->mu);
  size_t idx = 0;
  while (idx < log->ntopics && strcmp(log->topics[idx]->name, name) != 0)
    idx++;
  if (idx == log->ntopics) {
    pthread_mutex_unlock(&log->mu);
    return log__errf(err, LOG_E_UNKNOWN_TOPIC, "unknown topic %s", name);
  }
  log__topic_t *t = log->topics[idx];
  size_t need = log->ngrave + (size_t)t->nparts;
  if (need > log->cap_grave) {
    log_partition_t **ng = realloc(log->graveyard, need * 2 * sizeof *ng);
    if (!ng) {
      pthread_mutex_unlock(&log->mu);
      return log__errf(err, -ENOMEM, "out of memory");
    }
    log->graveyard = ng;
    log->cap_grave = need * 2;
  }
  char dir[4096], path[4200];
  config_path(log, name, dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, CONFIG_FILE);
  /* The commit point of the deletion. */
  if (unlink(path) < 0 && errno != ENOENT) {
    rc = log__errf(err, -errno, "%s: %s", path, strerror(errno));
    pthread_mutex_unlock(&log->mu);
    return rc;
  }
  (void)log__fsync_dir(dir);
  log->topics[idx] = log->topics[--log->ntopics];
  for (int32_t i = 0; i < t->nparts; i++) {
    /* Handles given out stay valid (they now fail): freed at log_close. */
    log__partition_kill(t->parts[i]);
    log->graveyard[log->ngrave++] = t->parts[i];
    char pdir[4096];
    partition_dir(log, name, i, pdir, sizeof pdir);
    log__remove_dir(pdir);
  }
  (void)log__fsync_dir(log->dir);
  topic_free(t);
  pthread_mutex_unlock(&log->mu);
  log__event(log, 2, "deleted topic %s", name);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int log_topic_list(log_t *log, bool include_internal, char ***names) {
  pthread_mutex_lock(&log->mu);
  char **v = calloc(log->ntopics + 1, sizeof *v);
  size_t n = 0;
  int rc = v ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < log->ntopics; i++) {
    const char *name = log->topics[i]->name;
    if (!include_internal && strncmp(name, "__", 2) == 0)
      continue;
    if (!(v[n++] = strdup(name)))
      rc = -ENOMEM;
  }
  pthread_mutex_unlock(&log->mu);
  if (rc < 0) {
    log_names_free(v);
    return rc;
  }
  qsort(v, n, sizeof *v, cmp_str);
  *names = v;
  return (int)n;
}

void log_names_free(char **names) {
  if (!names)
    return;
  for (char **p = names; *p; p++)
    free(*p);
  free(names);
}

int log_topic_partitions(log_t *log, const char *topic, log_error_t *err) {
  pthread_mutex_lock(&log->mu);
  log__topic_t *t = log__topic_find(log, topic);
  int n = t ? t->nparts : 0;
  pthread_mutex_unlock(&log->mu);
  if (!t)
    return log__errf(err, LOG_E_UNKNOWN_TOPIC, "unknown topic %s", topic);
  return n;
}

int log_topic_config(log_t *log, const char *topic, log_topic_config_t *cfg,
                     log_error_t *err) {
  pthread_mutex_lock(&log->mu);
  log__topic_t *t = log__topic_find(log, topic);
  if (t)
    *cfg = t->cfg;
  pthread_mutex_unlock(&log->mu);
  if (!t)
    return log__errf(err, LOG_E_UNKNOWN_TOPIC, "unknown topic %s", topic);
  return 0;
}

int log_partition_get(log_t *log, const char *topic, int32_t partition,
                      log_partition_t **out, log_error_t *err) {
  pthread_mutex_lock(&log->mu);
  log__topic_t *t = log__topic_find(log, topic);
  int32_t n = t ? t->nparts : 0;
  if (t && partition >= 0 && partition < n)
    *out = t->parts[partition];
  pthread_mutex_unlock(&log->mu);
  if (!t)
    return log__errf(err, LOG_E_UNKNOWN_TOPIC, "unknown topic %s", topic);
  if (partition < 0 || partition >= n)
    return log__errf(err, LOG_E_UNKNOWN_PARTITION,
                     "unknown partition %s-%" PRId32 " (the topic has %" PRId32 ")", topic,
                     partition, n);
  return 0;
}
