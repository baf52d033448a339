/*
 * cli_log.c: shared by the log commands (see cli_log.h).
 */
#include "cli_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* Recovery truncations and failures matter to a CLI user; routine events
 * (a topic created, a segment rolled) do not. */
static void cli_log_event(void *opaque, int level, const char *msg) {
  const char *cmd = opaque;
  if (level > 1) return;
  fprintf(stderr, "runnel %s: %s: %s\n", cmd, level == 0 ? "error" : level == 1 ? "warning" : "info",
          msg);
}

int cli_log_open(cli_log_t *cl, const char *cmd, const char *dir) {
  char msg[512], sub[4200];
  cl->log = NULL;
  if (datadir_lock(&cl->datadir, dir, msg, sizeof msg) != 0) {
    fprintf(stderr, "runnel %s: %s\n", cmd, msg);
    return -1;
  }
  log_options_t opts;
  log_options_defaults(&opts);
  opts.background = false;
  opts.on_event = cli_log_event;
  opts.opaque = (void *)cmd;
  log_error_t err = {0};
  int rc = log_open(datadir_sub(&cl->datadir, "log", sub, sizeof sub), &opts, &cl->log, &err);
  if (rc != 0) {
    fprintf(stderr, "runnel %s: cannot open the log in %s: %s\n", cmd, sub,
            err.msg[0] ? err.msg : log_strerror(rc));
    datadir_unlock(&cl->datadir);
    return -1;
  }
  return 0;
}

int cli_log_close(cli_log_t *cl, const char *cmd) {
  int rc = cl->log ? log_close(cl->log) : 0;
  cl->log = NULL;
  datadir_unlock(&cl->datadir);
  if (rc != 0) {
    fprintf(stderr, "runnel %s: flushing the log failed: %s\n", cmd, log_strerror(rc));
    return -1;
  }
  return 0;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < min) {
    fprintf(stderr, "runnel %s: %s: expected an integer >= %" PRId64 ", got \"%s\"\n", cmd, opt,
            min, s);
    return -1;
  }
  *out = v;
  return 0;
}
