/*
 * datadir.h: the data directory and its exclusive lock.
 *
 * A data dir is used by one process at a time: the worker, or a CLI command
 * working on the log directly. The lock is a POSIX record lock (fcntl) on
 * DIR/.lock, so the kernel releases it when the holder dies, and a second
 * process can ask the kernel for the holder's pid.
 *
 *   DIR/.lock     the lock file (holds the holder's pid, for people)
 *   DIR/log/      the embedded log (log.h)
 */
#ifndef RUNNEL_DATADIR_H
#define RUNNEL_DATADIR_H

#include <stddef.h>

typedef struct {
  int fd;               /* the locked DIR/.lock, -1 when not held */
  char path[4096];      /* DIR as given */
} datadir_t;

/* Creates dir (and parents) if needed and takes its lock without waiting.
 * On failure returns a negative errno and writes a message for users to
 * msg, e.g. "data dir ./data is locked by another process (pid 4242)". */
int datadir_lock(datadir_t *dd, const char *dir, char *msg, size_t msglen);

/* Releases the lock. Safe on an unlocked datadir_t. */
void datadir_unlock(datadir_t *dd);

/* Writes DIR/sub into buf; returns buf. */
const char *datadir_sub(const datadir_t *dd, const char *sub, char *buf, size_t len);

#endif
