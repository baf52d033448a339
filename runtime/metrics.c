/*
 * metrics.c: the metrics registry and its Prometheus text rendering
 * (see metrics.h). Families keep registration order; samples of a family
 * are rendered together, as the exposition format requires.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct metrics_series_s {
  struct metrics_series_s *next;
  char *labels;                 /* NULL: none */
  _Atomic uint64_t bits;        /* the double's bits, for lock-free updates */
};

typedef struct metrics_family_s {
  struct metrics_family_s *next;
  char *name, *help;
  metrics_type_t type;
  metrics_series_t *series, **series_tail;
} metrics_family_t;

typedef struct metrics_collector_s {
  struct metrics_collector_s *next;
  metrics_collect_fn fn;
  void *opaque;
} metrics_collector_t;

struct metrics_s {
  pthread_mutex_t lock;
  metrics_family_t *families, **families_tail;
  metrics_collector_t *collectors;
};

struct metrics_buf_s {
  char *data;
  size_t len, cap;
  int failed;
};

metrics_t *metrics_new(void) {
  metrics_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->lock, NULL);
  m->families_tail = &m->families;
  return m;
}

void metrics_free(metrics_t *m) {
  if (!m) return;
  for (metrics_family_t *f = m->families, *fn; f; f = fn) {
    fn = f->next;
    for (metrics_series_t *s = f->series, *sn; s; s = sn) {
      sn = s->next;
      free(s->labels);
      free(s);
    }
    free(f->name);
    free(f->help);
    free(f);
  }
  for (metrics_collector_t *c = m->collectors, *cn; c; c = cn) {
    cn = c->next;
    free(c);
  }
  pthread_mutex_destroy(&m->lock);
  free(m);
}

static uint64_t metrics_bits(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static double metrics_double(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

metrics_series_t *metrics_series(metrics_t *m, metrics_type_t type, const char *name,
                                 const char *help, const char *labels) {
  pthread_mutex_lock(&m->lock);
  metrics_family_t *f = m->families;
  while (f && strcmp(f->name, name) != 0) f = f->next;
  if (!f) {
    f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help))) {
      if (f) { free(f->name); free(f); }
      pthread_mutex_unlock(&m->lock);
      return NULL;
    }
    f->type = type;
    f->series_tail = &f->series;
    *m->families_tail = f;
    m->families_tail = &f->next;
  }
  metrics_series_t *s = f->series;
  while (s && !((s->labels == NULL && labels == NULL) ||
                (s->labels && labels && strcmp(s->labels, labels) == 0)))
    s = s->next;
  if (!s) {
    s = calloc(1, sizeof *s);
    if (s && labels && !(s->labels = strdup(labels))) {
      free(s);
      s = NULL;
    }
    if (s) {
      atomic_init(&s->bits, metrics_bits(0.0));
      *f->series_tail = s;
      f->series_tail = &s->next;
    }
  }
  pthread_mutex_unlock(&m->lock);
  return s;
}

/* Appends key="escaped value" to b. */
static void metrics_buf_label(metrics_buf_t *b, const char *key, const char *value);

char *metrics_labels(const char *key, ...) {
  metrics_buf_t b = {.data = malloc(128), .len = 0, .cap = 128};
  if (!b.data) return NULL;
  b.data[0] = '\0';
  va_list ap;
  va_start(ap, key);
  for (const char *k = key; k; k = va_arg(ap, const char *)) {
    const char *v = va_arg(ap, const char *);
    if (b.len) metrics_buf_label(&b, NULL, ",");
    metrics_buf_label(&b, k, v ? v : "");
  }
  va_end(ap);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data;
}

/* Whether labels carry `needle` (a whole key="value" label). Escaped values
 * hold no bare `="`, so a match at a label boundary is the label itself. */
static int metrics_labels_have(const char *labels, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = labels; p && (p = strstr(p, needle)); p++)
    if ((p == labels || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
  return 0;
}

size_t metrics_remove_series(metrics_t *m, const char *key, const char *value) {
  char *needle = metrics_labels(key, value, NULL);
  if (!needle) return 0;
  size_t removed = 0;
  pthread_mutex_lock(&m->lock);
  for (metrics_family_t *f = m->families; f; f = f->next) {
    f->series_tail = &f->series;
    for (metrics_series_t **ps = &f->series; *ps;) {
      metrics_series_t *s = *ps;
      if (metrics_labels_have(s->labels, needle)) {
        *ps = s->next;
        free(s->labels);
        free(s);
        removed++;
      } else {
        ps = &s->next;
        f->series_tail = ps;
      }
    }
  }
  pthread_mutex_unlock(&m->lock);
  free(needle);
  return removed;
}

void metrics_add(metrics_series_t *s, double v) {
  uint64_t old = atomic_load(&s->bits);
  while (!atomic_compare_exchange_weak(&s->bits, &old, metrics_bits(metrics_double(old) + v))) {
  }
}

void metrics_set(metrics_series_t *s, double v) { atomic_store(&s->bits, metrics_bits(v)); }

double metrics_get(const metrics_series_t *s) {
  return metrics_double(atomic_load(&((metrics_series_t *)s)->bits));
}

int metrics_add_collector(metrics_t *m, metrics_collect_fn fn, void *opaque) {
  metrics_collector_t *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->fn = fn;
  c->opaque = opaque;
  pthread_mutex_lock(&m->lock);
  metrics_collector_t **tail = &m->collectors;
  while (*tail) tail = &(*tail)->next;
  *tail = c;
  pthread_mutex_unlock(&m->lock);
  return 0;
}

void metrics_remove_collector(metrics_t *m, metrics_collect_fn fn, void *opaque) {
  pthread_mutex_lock(&m->lock);
  for (metrics_collector_t **pc = &m->collectors; *pc; pc = &(*pc)->next) {
    if ((*pc)->fn == fn && (*pc)->opaque == opaque) {
      metrics_collector_t *c = *pc;
      *pc = c->next;
      free(c);
      break;
    }
  }
  pthread_mutex_unlock(&m->lock);
}

static void metrics_buf_printf(metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_buf_printf(metrics_buf_t *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = 1; return; }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = b->cap * 2 + (size_t)n;
    char *nd = realloc(b->data, ncap);
    if (!nd) { b->failed = 1; return; }
    b->data = nd;
    b->cap = ncap;
  }
}

static void metrics_buf_label(metrics_buf_t *b, const char *key, const char *value) {
  if (!key) { /* a separator */
    metrics_buf_printf(b, "%s", value);
    return;
  }
  metrics_buf_printf(b, "%s=\"", key);
  for (const char *p = value; *p; p++) {
    size_t run = strcspn(p, "\\\"\n");
    if (run) metrics_buf_printf(b, "%.*s", (int)run, p);
    p += run;
    if (!*p) break;
    metrics_buf_printf(b, "%s", *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\");
  }
  metrics_buf_printf(b, "\"");
}

void metrics_buf_family(metrics_buf_t *b, metrics_type_t type, const char *name,
                        const char *help) {
  metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                     type == METRICS_COUNTER ? "counter" : "gauge");
}

void metrics_buf_sample(metrics_buf_t *b, const char *name, const char *labels, double v) {
  char num[64];
  if (isnan(v)) snprintf(num, sizeof num, "NaN");
  else if (v == (double)(int64_t)v && fabs(v) < 9e15) snprintf(num, sizeof num, "%lld", (long long)v);
  else snprintf(num, sizeof num, "%.17g", v);
  if (labels && *labels) metrics_buf_printf(b, "%s{%s} %s\n", name, labels, num);
  else metrics_buf_printf(b, "%s %s\n", name, num);
}

char *metrics_render(metrics_t *m, size_t *len) {
  metrics_buf_t b = {.data = malloc(8192), .len = 0, .cap = 8192};
  if (!b.data) return NULL;
  b.data[0] = '\0';
  pthread_mutex_lock(&m->lock);
  for (metrics_family_t *f = m->families; f; f = f->next) {
    metrics_buf_family(&b, f->type, f->name, f->help);
    for (metrics_series_t *s = f->series; s; s = s->next)
      metrics_buf_sample(&b, f->name, s->labels, metrics_get(s));
  }
  /* Collectors run under the lock so one cannot be removed mid-render;
   * they must not call back into the registry. */
  for (metrics_collector_t *c = m->collectors; c; c = c->next) c->fn(c->opaque, &b);
  pthread_mutex_unlock(&m->lock);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  *len = b.len;
  return b.data;
}

void metrics_collect_process(void *opaque, metrics_buf_t *b) {
  (void)opaque;
  long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/stat", "r");
  if (f) {
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the parenthesised command name; see proc(5). */
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long starttime = 0;
    long rss = 0;
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                    "%*d %*d %llu %lu %ld",
                    &utime, &stime, &starttime, &vsize, &rss) == 5) {
      double boot = 0;
      FILE *s = fopen("/proc/stat", "r");
      if (s) {
        char line[256];
        while (fgets(line, sizeof line, s))
          if (sscanf(line, "btime %lf", &boot) == 1) break;
        fclose(s);
      }
      metrics_buf_family(b, METRICS_COUNTER, "process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.");
      metrics_buf_sample(b, "process_cpu_seconds_total", NULL,
                         (double)(utime + stime) / (double)ticks);
      metrics_buf_family(b, METRICS_GAUGE, "process_resident_memory_bytes",
                         "Resident memory size in bytes.");
      metrics_buf_sample(b, "process_resident_memory_bytes", NULL, (double)rss * (double)page);
      metrics_buf_family(b, METRICS_GAUGE, "process_virtual_memory_bytes",
                         "Virtual memory size in bytes.");
      metrics_buf_sample(b, "process_virtual_memory_bytes", NULL, (double)vsize);
      metrics_buf_family(b, METRICS_GAUGE, "process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.");
      metrics_buf_sample(b, "process_start_time_seconds", NULL,
                         boot + (double)starttime / (double)ticks);
    }
  }
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    int fds = 0;
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_name[0] != '.') fds++;
    closedir(d);
    metrics_buf_family(b, METRICS_GAUGE, "process_open_fds", "Number of open file descriptors.");
    metrics_buf_sample(b, "process_open_fds", NULL, (double)(fds - 1)); /* minus opendir's */
  }
}
