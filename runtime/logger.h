/*
 * logger.h: one line per event on stderr:
 *
 *   2026-11-21T22:01:02.345Z INFO  http: listening on http://127.0.0.1:8083
 *
 * Thread-safe (each line is one write(2)). The level is process-wide.
 */
#ifndef RUNNEL_LOGGER_H
#define RUNNEL_LOGGER_H

typedef enum { LOGGER_ERROR, LOGGER_WARN, LOGGER_INFO, LOGGER_DEBUG, LOGGER_TRACE } logger_level_t;

/* Parses "error|warn|info|debug|trace"; returns 0 or -1. */
int logger_level_parse(const char *s, logger_level_t *level);
void logger_set_level(logger_level_t level);
logger_level_t logger_get_level(void);

/* module: a short name such as "http", "log", "worker". */
void logger_log(logger_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define logger_error(mod, ...) logger_log(LOGGER_ERROR, mod, __VA_ARGS__)
#define logger_warn(mod, ...)  logger_log(LOGGER_WARN, mod, __VA_ARGS__)
#define logger_info(mod, ...)  logger_log(LOGGER_INFO, mod, __VA_ARGS__)
#define logger_debug(mod, ...) logger_log(LOGGER_DEBUG, mod, __VA_ARGS__)

#endif
