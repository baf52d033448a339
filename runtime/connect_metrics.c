/*
 * connect_metrics.c: per-task series on /metrics, labelled
 * {connector="<name>",task="<id>"}; the names follow Kafka Connect's
 * task metrics (source-record-poll-total, sink-record-send-total, ...)
 * in Prometheus form. docs/connectors.md lists them.
 *
 * Series live as long as the registry: a restarted task keeps counting on
 * the same series, as a Prometheus counter should.
 */
#include <stdio.h>

#include "connect_int.h"

void connect_metrics_task(metrics_t *m, const char *connector, int task, bool source,
                          connect_task_metrics_t *out) {
  *out = (connect_task_metrics_t){0};
  if (!m) return;
  char labels[600];
  snprintf(labels, sizeof labels, "connector=\"%s\",task=\"%d\"", connector, task);
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
}
