/*
 * cli.h: the `runnel` command line. main() dispatches argv[1] to one of
 * these; each parses its own options (getopt_long), prints its --help, and
 * returns the process exit status: 0 success, 1 failure at run time,
 * 2 bad usage or bad config.
 */
#ifndef RUNNEL_CLI_H
#define RUNNEL_CLI_H

int cli_worker_main(int argc, char **argv);   /* cli_worker.c */
int cli_topics_main(int argc, char **argv);   /* cli_topics.c */
int cli_produce_main(int argc, char **argv);  /* cli_produce.c */
int cli_consume_main(int argc, char **argv);  /* cli_consume.c */
int cli_test_main(int argc, char **argv);     /* cli_test.c */
int cli_run_main(int argc, char **argv);      /* cli_worker.c */

/* Exit statuses. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

#endif
