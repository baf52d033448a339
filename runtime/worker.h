/*
 * worker.h: the worker process: one libuv loop serving the REST API, the
 * embedded log in the data dir, and (as later issues land) jobs and
 * connectors.
 *
 *   worker_run ─► lock data dir ─► open log (recovery) ─► listen ─► RUNNING
 *        ▲                                                           │ SIGINT/SIGTERM
 *        └─ exit 0 ◄─ unlock ◄─ close log (flush) ◄─ drain HTTP ◄─ STOPPING
 *
 * If draining takes longer than task.shutdown.graceful.timeout.ms, the loop
 * is stopped anyway, the log is still flushed and closed, and the exit
 * status is 1.
 */
#ifndef RUNNEL_WORKER_H
#define RUNNEL_WORKER_H

#include <stddef.h>

#include "worker_config.h"

/* Runs a worker until it is told to stop, with the jobs of cfg->jobs and
 * job_files (NULL-terminated, may be NULL; `runnel run`), and the
 * connectors of connector_files (NULL-terminated JSON files, may be NULL;
 * `runnel worker --config w.json conn.json ...`, checked beforehand with
 * worker_connect_check_files). Returns the process exit status (0 clean
 * stop, 1 failure, 2 a job or connector that does not load); failures are
 * logged with what was wrong. */
int worker_run(const worker_config_t *cfg, const char *config_name, char **job_files,
               char **connector_files);

/* Checks connector files (runnel worker ... conn.json) before start-up:
 * readable, {"name", "config"}, a valid config. Returns 0, or -1 with err
 * naming the file and the key (worker_connect.c). */
int worker_connect_check_files(char **files, char *err, size_t errlen);

#endif
