/*
 * metrics.h: a registry of counters and gauges rendered in the Prometheus
 * text exposition format (version 0.0.4) for GET /metrics.
 *
 * Counters are lock-free (atomics) so hot paths on any thread may bump
 * them; registering a series takes the registry lock once. Values that are
 * cheaper to compute at scrape time (process stats, log offsets) come from
 * collectors, callbacks run on the thread that renders.
 */
#ifndef RUNNEL_METRICS_H
#define RUNNEL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics_s metrics_t;
typedef struct metrics_series_s metrics_series_t;
typedef struct metrics_buf_s metrics_buf_t;

typedef enum { METRICS_COUNTER, METRICS_GAUGE } metrics_type_t;

metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Returns the series `name{labels}` (labels: Prometheus label text such as
 * `code="200"`, or NULL; build it with metrics_labels when a value comes
 * from a user), creating it and its family on first use. The pointer stays
 * valid until metrics_free or a metrics_remove_series that matches it.
 * Thread-safe. NULL on OOM. */
metrics_series_t *metrics_series(metrics_t *m, metrics_type_t type, const char *name,
                                 const char *help, const char *labels);

/* Label text `k1="v1",k2="v2"` from NULL-terminated key, value pairs, each
 * value escaped as the text format requires (\\, \", \n), whole whatever
 * its length. malloc'd (the caller frees); NULL on OOM. */
char *metrics_labels(const char *key, ...) __attribute__((sentinel));

/* Removes (and frees) every registered series whose labels carry the label
 * key="value" (value unescaped, as given to metrics_labels): the series of
 * something that no longer exists, such as a deleted connector. The caller
 * guarantees nobody uses those series any more. Returns how many went. */
size_t metrics_remove_series(metrics_t *m, const char *key, const char *value);

void metrics_add(metrics_series_t *s, double v);   /* counters and gauges */
void metrics_set(metrics_series_t *s, double v);   /* gauges */
double metrics_get(const metrics_series_t *s);

/* Collector: called at render time to append families with
 * metrics_buf_family/metrics_buf_sample. */
typedef void (*metrics_collect_fn)(void *opaque, metrics_buf_t *b);
int metrics_add_collector(metrics_t *m, metrics_collect_fn fn, void *opaque);
void metrics_remove_collector(metrics_t *m, metrics_collect_fn fn, void *opaque);

void metrics_buf_family(metrics_buf_t *b, metrics_type_t type, const char *name,
                        const char *help);
void metrics_buf_sample(metrics_buf_t *b, const char *name, const char *labels, double v);

/* Renders everything; returns a malloc'd text the caller frees, *len set. */
char *metrics_render(metrics_t *m, size_t *len);

/* A collector for process_* metrics (CPU, memory, fds, start time). */
void metrics_collect_process(void *opaque, metrics_buf_t *b);

#endif
