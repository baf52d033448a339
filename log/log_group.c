/*
 * log_group.c: committed consumer group offsets, kept in the internal
 * compacted topic "__consumer_offsets" (1 partition, log.flush=always), so
 * they survive restarts and live in the log like everything else.
 *
 * Record format (runnel's own, simpler than Kafka's versioned schema):
 *   key:   group bytes, 0x00, topic bytes, 0x00, partition as 4 bytes
 *          big-endian int32                (group may not contain 0x00)
 *   value: committed offset as 8 bytes big-endian int64; a null value
 *          (tombstone) removes the entry.
 * The last record for a key wins, which is what compaction keeps.
 *
 * At open the whole partition is read into an in-memory hash table; a
 * commit appends one record (durable when it returns: flush=always) and
 * then updates the table; a fetch reads the table only.
 *
 * Threads: the table is guarded by its own mutex, which is held across the
 * append so that the order in the log and in the table agree.
 */
#include "log_store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct group_entry {
  struct group_entry *next;
  int64_t offset;
  size_t key_len;
  uint8_t key[];
} group_entry_t;

struct log__groups_s {
  log_t *log;
  log_partition_t *p;
  pthread_mutex_t mu;
  group_entry_t **buckets;
  size_t nbuckets, count;
};

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static int table_grow(log__groups_t *g) {
  size_t nb = g->nbuckets ? g->nbuckets * 2 : 64;
  group_entry_t **b = calloc(nb, sizeof *b);
  if (!b)
    return -ENOMEM;
  for (size_t i = 0; i < g->nbuckets; i++) {
    for (group_entry_t *e = g->buckets[i], *next; e; e = next) {
      next = e->next;
      size_t k = fnv1a(e->key, e->key_len) & (nb - 1);
      e->next = b[k];
      b[k] = e;
    }
  }
  free(g->buckets);
  g->buckets = b;
  g->nbuckets = nb;
  return 0;
}

static group_entry_t **table_slot(log__groups_t *g, const uint8_t *key, size_t len) {
  group_entry_t **s = &g->buckets[fnv1a(key, len) & (g->nbuckets - 1)];
  while (*s && ((*s)->key_len != len || memcmp((*s)->key, key, len) != 0))
    s = &(*s)->next;
  return s;
}

/* offset < 0: remove. Caller holds g->mu (or is the opener). */
static int table_put(log__groups_t *g, const uint8_t *key, size_t len, int64_t offset) {
  if (g->count >= g->nbuckets && table_grow(g) < 0)
    return -ENOMEM;
  group_entry_t **s = table_slot(g, key, len);
  if (*s) {
    if (offset >= 0) {
      (*s)->offset = offset;
    } else {
      group_entry_t *e = *s;
      *s = e->next;
      free(e);
      g->count--;
    }
    return 0;
  }
  if (offset < 0)
    return 0;
  group_entry_t *e = malloc(sizeof *e + len);
  if (!e)
    return -ENOMEM;
  e->next = NULL;
  e->offset = offset;
  e->key_len = len;
  memcpy(e->key, key, len);
  *s = e;
  g->count++;
  return 0;
}

/* Builds the key into buf (cap bytes); returns its length or an error. */
static int make_key(const char *group, const char *topic, int32_t partition, uint8_t *buf,
                    size_t cap, log_error_t *err) {
  size_t gl = strlen(group), tl = strlen(topic);
  if (gl + tl + 6 > cap)
    return log__errf(err, -EINVAL, "group \"%.64s\" and topic \"%.64s\": names too long",
                     group, topic);
  memcpy(buf, group, gl);
  buf[gl] = 0;
  memcpy(buf + gl + 1, topic, tl);
  buf[gl + 1 + tl] = 0;
  log__put_be32(buf + gl + tl + 2, (uint32_t)partition);
  return (int)(gl + tl + 6);
}

static int groups_load(log__groups_t *g, log_error_t *err) {
  log_reader_t *r;
  int rc = log_reader_new(g->log, LOG__GROUP_TOPIC, 0, log_partition_start_offset(g->p), 0,
                          &r, err);
  if (rc < 0)
    return rc;
  log_record_t rec;
  while ((rc = log_reader_next(r, &rec, err)) == 1) {
    if (rec.key_len < 6 || !rec.key)
      continue; /* not ours: ignore rather than fail the log */
    int64_t off = -1;
    if (rec.value && rec.value_len == 8)
      off = (int64_t)log__be64(rec.value);
    else if (rec.value)
      continue;
    if ((rc = table_put(g, rec.key, (size_t)rec.key_len, off)) < 0) {
      rc = log__errf(err, rc, "out of memory");
      break;
    }
  }
  log_reader_free(r);
  return rc < 0 ? rc : 0;
}

int log__groups_open(log_t *log, log__groups_t **out, log_error_t *err) {
  log__groups_t *g = calloc(1, sizeof *g);
  if (!g)
    return log__errf(err, -ENOMEM, "out of memory");
  g->log = log;
  pthread_mutex_init(&g->mu, NULL);
  int rc = table_grow(g) < 0 ? log__errf(err, -ENOMEM, "out of memory") : 0;
  if (rc == 0 && log_topic_partitions(log, LOG__GROUP_TOPIC, NULL) < 0) {
    log_topic_config_t cfg;
    log_topic_config_defaults(&cfg);
    cfg.cleanup_policy = LOG_CLEANUP_COMPACT;
    cfg.flush = LOG_FLUSH_ALWAYS;
    cfg.segment_bytes = 100 * 1024 * 1024; /* Kafka's offsets.topic.segment.bytes */
    rc = log_topic_create(log, LOG__GROUP_TOPIC, 1, &cfg, err);
  }
  if (rc == 0)
    rc = log_partition_get(log, LOG__GROUP_TOPIC, 0, &g->p, err);
  if (rc == 0)
    rc = groups_load(g, err);
  if (rc < 0) {
    log__groups_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

void log__groups_free(log__groups_t *g) {
  if (!g)
    return;
  for (size_t i = 0; i < g->nbuckets; i++)
    for (group_entry_t *e = g->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  free(g->buckets);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

int log_group_commit(log_t *log, const char *group, const char *topic, int32_t partition,
                     int64_t offset, log_error_t *err) {
  log__groups_t *g = log->groups;
  if (offset < 0)
    return log__errf(err, LOG_E_OFFSET_OUT_OF_RANGE,
                     "group %s: cannot commit offset %" PRId64 " for %s-%" PRId32, group,
                     offset, topic, partition);
  uint8_t key[600];
  int klen = make_key(group, topic, partition, key, sizeof key, err);
  if (klen < 0)
    return klen;
  uint8_t value[8];
  log__put_be64(value, (uint64_t)offset);
  log_record_t rec = {.timestamp = -1, .key = key, .key_len = klen, .value = value,
                      .value_len = 8};
  pthread_mutex_lock(&g->mu);
  int rc = log_partition_append(g->p, &rec, 1, NULL, err);
  if (rc == 0 && (rc = table_put(g, key, (size_t)klen, offset)) < 0)
    rc = log__errf(err, rc, "out of memory");
  pthread_mutex_unlock(&g->mu);
  return rc;
}

int log_group_delete(log_t *log, const char *group, const char *topic, int32_t partition,
                     log_error_t *err) {
  log__groups_t *g = log->groups;
  uint8_t key[600];
  int klen = make_key(group, topic, partition, key, sizeof key, err);
  if (klen < 0)
    return klen;
  log_record_t rec = {.timestamp = -1, .key = key, .key_len = klen, .value = NULL,
                      .value_len = -1};
  pthread_mutex_lock(&g->mu);
  int rc = 0;
  if (*table_slot(g, key, (size_t)klen) != NULL) { /* nothing to remove: write nothing */
    rc = log_partition_append(g->p, &rec, 1, NULL, err);
    if (rc == 0)
      table_put(g, key, (size_t)klen, -1);
  }
  pthread_mutex_unlock(&g->mu);
  return rc;
}

int log_group_fetch(log_t *log, const char *group, const char *topic, int32_t partition,
                    int64_t *offset, log_error_t *err) {
  log__groups_t *g = log->groups;
  uint8_t key[600];
  int klen = make_key(group, topic, partition, key, sizeof key, err);
  if (klen < 0)
    return klen;
  pthread_mutex_lock(&g->mu);
  group_entry_t *e = *table_slot(g, key, (size_t)klen);
  *offset = e ? e->offset : -1;
  pthread_mutex_unlock(&g->mu);
  return 0;
}
