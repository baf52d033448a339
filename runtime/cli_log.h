/*
 * cli_log.h: what the log commands (topics, produce, consume) share: the
 * --data-dir option and opening the data dir's log under its lock.
 */
#ifndef RUNNEL_CLI_LOG_H
#define RUNNEL_CLI_LOG_H

#include "datadir.h"
#include "log.h"

typedef struct {
  datadir_t datadir;
  log_t *log;
} cli_log_t;

/* Locks dir and opens its log (no background thread). On failure prints a
 * message prefixed with `cmd` to stderr and returns -1. */
int cli_log_open(cli_log_t *cl, const char *cmd, const char *dir);

/* Closes the log and releases the lock. Returns 0, or -1 (after printing)
 * when the final flush failed. */
int cli_log_close(cli_log_t *cl, const char *cmd);

/* Parses a non-negative integer option value; prints and returns -1 when
 * it is not one. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t *out);

#endif
