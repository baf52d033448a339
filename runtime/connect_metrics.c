/*
 * connect_metrics.c: per-task series on /metrics, labelled
 * {connector="<name>",task="<id>"}; the names follow Kafka Connect's
 * task metrics (source-record-poll-total, sink-record-send-total, ...)
 * in Prometheus form. docs/connectors.md lists them.
 *
 * A restarted task keeps counting on the same series, as a Prometheus
 * counter should; a deleted connector's series go with it
 * (connect_metrics_remove), so a new connector of the same name starts
 * from zero. Label values are escaped by metrics_labels: a connector name
 * may hold any printable character.
 */
#include <stdio.h>
#include <stdlib.h>

#include "connect_int.h"

void connect_metrics_task(metrics_t *m, const char *connector, int task, bool source,
                          connect_task_metrics_t *out) {
  *out = (connect_task_metrics_t){0};
  if (!m) return;
  char id[16];
  snprintf(id, sizeof id, "%d", task);
  char *labels = metrics_labels("connector", connector, "task", id, NULL);
  if (!labels) return;
  if (source) {
    out->polled = metrics_series(m, METRICS_COUNTER, "runnel_connect_source_records_polled_total",
                                 "Records a source task's poll returned.", labels);
    out->written = metrics_series(m, METRICS_COUNTER,
                                  "runnel_connect_source_records_written_total",
                                  "Source records appended to the log (after transforms).",
                                  labels);
  } else {
    out->read = metrics_series(m, METRICS_COUNTER, "runnel_connect_sink_records_read_total",
                               "Records a sink task read from the log.", labels);
    out->put = metrics_series(m, METRICS_COUNTER, "runnel_connect_sink_records_put_total",
                              "Records handed to the sink's put (after transforms).", labels);
    out->batches = metrics_series(m, METRICS_COUNTER, "runnel_connect_sink_put_batches_total",
                                  "Calls of the sink's put.", labels);
    out->lag = metrics_series(m, METRICS_GAUGE, "runnel_connect_sink_lag_records",
                              "Records in the task's partitions not yet read (end offset minus "
                              "position).", labels);
    out->dlq = metrics_series(m, METRICS_COUNTER, "runnel_connect_dlq_records_total",
                              "Records written to the dead letter queue.", labels);
  }
  out->errors = metrics_series(m, METRICS_COUNTER, "runnel_connect_record_errors_total",
                               "Records that failed conversion, a transform or the connector.",
                               labels);
  out->skipped = metrics_series(m, METRICS_COUNTER, "runnel_connect_records_skipped_total",
                                "Failed records skipped under errors.tolerance=all.", labels);
  out->retries = metrics_series(m, METRICS_COUNTER, "runnel_connect_retries_total",
                                "Retriable failures (CONN_E_RETRY) retried with backoff.", labels);
  out->commits = metrics_series(m, METRICS_COUNTER, "runnel_connect_offset_commits_total",
                                "Offset commits (sources: connect-offsets; sinks: the group).",
                                labels);
  free(labels);
}

void connect_metrics_remove(metrics_t *m, const char *connector) {
  if (m) metrics_remove_series(m, "connector", connector);
}
