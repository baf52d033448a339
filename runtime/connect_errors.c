/*
 * connect_errors.c: what happens to a record that fails a stage (Kafka
 * Connect's RetryWithToleranceOperator, LogReporter and
 * DeadLetterQueueReporter):
 *
 *   errors.tolerance=none   the task fails; its status shows the trace
 *   errors.tolerance=all    the record is skipped, and
 *     errors.log.enable             logged (with key and value when
 *                                   errors.log.include.messages)
 *     errors.deadletterqueue.*      (sinks) written, as it was read, to the
 *                                   DLQ topic, with Kafka's context headers
 *                                   when context.headers.enable:
 *       __connect.errors.topic / .partition / .offset   where it was read
 *       __connect.errors.connector.name / .task.id
 *       __connect.errors.stage / .class.name            what failed
 *       __connect.errors.exception.class.name / .exception.message
 *
 * Stages are Kafka's names: KEY_CONVERTER, VALUE_CONVERTER,
 * TRANSFORMATION, TASK_PUT (a record the sink reported through
 * conn_ctx_report), TASK_POLL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect_int.h"
#include "logger.h"

/* Printable prefix of data for the error log. */
static void errors_show(char *buf, size_t len, const void *data, int32_t n) {
  if (!data) {
    snprintf(buf, len, "null");
    return;
  }
  size_t k = 0;
  const unsigned char *p = data;
  for (int32_t i = 0; i < n && k + 5 < len; i++)
    k += (size_t)snprintf(buf + k, len - k, p[i] >= 32 && p[i] < 127 ? "%c" : "\\x%02x", p[i]);
  if (k + 5 >= len) snprintf(buf + len - 4, 4, "...");
}

static int errors_dlq(connect_task_t *t, const conn_record_t *rec, const char *stage,
                      const char *cls, const char *reason, char *err, size_t errlen) {
  connect_t *c = t->c;
  const char *topic = t->common.dlq_topic;
  int rc = connect_topic_ensure(c->o.log, topic, t->common.dlq_partitions, err, errlen);
  if (rc != 0) return rc;
  int n = log_topic_partitions(c->o.log, topic, NULL);
  if (n <= 0) return -1;
  int32_t part = log_partition_for_key(rec->key, rec->key_len, n);
  if (part < 0) part = rec->partition >= 0 ? rec->partition % n : 0; /* unkeyed */
  enum { NCTX = 9 };
  int32_t nh = rec->header_count + (t->common.dlq_context ? NCTX : 0);
  log_header_t *hs = calloc((size_t)nh + 1, sizeof *hs);
  if (!hs) return -1;
  for (int32_t i = 0; i < rec->header_count; i++)
    hs[i] = (log_header_t){rec->headers[i].key, (int32_t)strlen(rec->headers[i].key),
                           rec->headers[i].value, rec->headers[i].value_len};
  char spart[16], soff[24], stask[16];
  snprintf(spart, sizeof spart, "%" PRId32, rec->partition);
  snprintf(soff, sizeof soff, "%" PRId64, rec->offset);
  snprintf(stask, sizeof stask, "%d", t->id);
  if (t->common.dlq_context) {
    const char *ctx[NCTX][2] = {
        {"__connect.errors.topic", rec->topic ? rec->topic : ""},
        {"__connect.errors.partition", spart},
        {"__connect.errors.offset", soff},
        {"__connect.errors.connector.name", t->connector},
        {"__connect.errors.task.id", stask},
        {"__connect.errors.stage", stage},
        {"__connect.errors.class.name", cls},
        {"__connect.errors.exception.class.name", "org.apache.kafka.connect.errors.DataException"},
        {"__connect.errors.exception.message", reason},
    };
    for (int i = 0; i < NCTX; i++)
      hs[rec->header_count + i] = (log_header_t){ctx[i][0], (int32_t)strlen(ctx[i][0]),
                                                 ctx[i][1], (int32_t)strlen(ctx[i][1])};
  }
  log_record_t lr = {.timestamp = rec->timestamp, .key = rec->key, .key_len = rec->key_len,
                     .value = rec->value, .value_len = rec->value_len, .headers = hs,
                     .header_count = nh};
  log_partition_t *p;
  log_error_t le = {0};
  /* Tasks of several connectors may share a DLQ topic: one writer at a
   * time per partition (log.h's rule). */
  pthread_mutex_lock(&c->store_mu);
  rc = log_partition_get(c->o.log, topic, part, &p, &le);
  if (rc == 0) rc = log_partition_append(p, &lr, 1, NULL, &le);
  pthread_mutex_unlock(&c->store_mu);
  free(hs);
  if (rc != 0) snprintf(err, errlen, "dead letter queue %s: %s", topic, le.msg);
  return rc;
}

int connect_errors_handle(connect_task_t *t, const conn_record_t *rec, const char *stage,
                          const char *cls, const char *reason, char *err, size_t errlen) {
  if (t->m.errors) metrics_add(t->m.errors, 1);
  char where[600];
  if (rec->offset >= 0)
    snprintf(where, sizeof where, "consumed record is {topic='%s', partition=%" PRId32
             ", offset=%" PRId64 ", timestamp=%" PRId64 "}", rec->topic ? rec->topic : "",
             rec->partition, rec->offset, rec->timestamp);
  else
    snprintf(where, sizeof where, "source record is {topic='%s', source partition=%s, "
             "source offset=%s}", rec->topic ? rec->topic : "",
             rec->source_partition ? rec->source_partition : "null",
             rec->source_offset ? rec->source_offset : "null");
  if (!t->common.tolerate_all) {
    snprintf(err, errlen, "Tolerance exceeded in error handler: executing stage '%s' with class "
             "'%s', where %s: %s", stage, cls, where, reason);
    return -1;
  }
  if (t->common.log_errors) {
    char k[200] = "", v[200] = "";
    if (t->common.log_messages) {
      errors_show(k, sizeof k, rec->key, rec->key_len);
      errors_show(v, sizeof v, rec->value, rec->value_len);
    }
    logger_error("connect", "Error encountered in task %s-%d. Executing stage '%s' with class "
                 "'%s', where %s%s%s%s%s: %s", t->connector, t->id, stage, cls, where,
                 t->common.log_messages ? " key=" : "", k, t->common.log_messages ? " value=" : "",
                 v, reason);
  }
  if (t->common.dlq_topic && t->plugin->kind == CONN_SINK) {
    char e2[512];
    if (errors_dlq(t, rec, stage, cls, reason, e2, sizeof e2) != 0) {
      snprintf(err, errlen, "could not write a failed record to the dead letter queue: %s", e2);
      return -1; /* losing the record silently is not an option */
    }
    if (t->m.dlq) metrics_add(t->m.dlq, 1);
  }
  if (t->m.skipped) metrics_add(t->m.skipped, 1);
  return 0;
}
