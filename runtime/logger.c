/*
 * logger.c: one line per event on stderr (see logger.h).
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from different threads never interleave (POSIX keeps writes of
 * up to PIPE_BUF bytes to a pipe atomic; longer lines are cut to fit).
 */
#include "logger.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int logger_level = LOGGER_INFO;

static const char *const logger_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int logger_level_parse(const char *s, logger_level_t *level) {
  static const char *const lower[] = {"error", "warn", "info", "debug", "trace"};
  for (int i = 0; i < 5; i++) {
    if (strcmp(s, lower[i]) == 0) {
      *level = (logger_level_t)i;
      return 0;
    }
  }
  return -1;
}

void logger_set_level(logger_level_t level) { atomic_store(&logger_level, (int)level); }

logger_level_t logger_get_level(void) { return (logger_level_t)atomic_load(&logger_level); }

void logger_log(logger_level_t level, const char *module, const char *fmt, ...) {
  if ((int)level > atomic_load(&logger_level)) return;

  char line[4096];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000L, logger_names[level], module);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  /* A failed write to stderr has nowhere to be reported. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
