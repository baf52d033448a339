/*
 * main.c: `runnel COMMAND ...`: dispatches to the subcommands in cli.h.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef RUNNEL_VERSION
#define RUNNEL_VERSION "0.0.0"
#endif
#ifndef RUNNEL_COMMIT
#define RUNNEL_COMMIT "unknown"
#endif

static const struct {
  const char *name;
  int (*main)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"worker", cli_worker_main, "run a worker (log, REST API)"},
    {"topics", cli_topics_main, "create, list, describe and delete topics"},
    {"produce", cli_produce_main, "append lines from stdin to a topic"},
    {"consume", cli_consume_main, "print records of a topic"},
    {"run", cli_run_main, "run a worker hosting Lua jobs"},
    {"test", cli_test_main, "run a Lua job over JSON lines, without a worker"},
};

static void usage(FILE *f) {
  fprintf(f, "Usage: runnel COMMAND [options]\n\n"
             "runnel is a stream-processing runtime: an embedded partitioned log, Lua\n"
             "stream jobs and connectors in one process.\n\nCommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "  %-10s %s\n", "version", "print the version and commit");
  fprintf(f, "\nRun 'runnel COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("runnel %s (commit %s)\n", RUNNEL_VERSION, RUNNEL_COMMIT);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(cmd, commands[i].name) == 0) return commands[i].main(argc - 1, argv + 1);
  fprintf(stderr, "runnel: unknown command \"%s\"\n\n", cmd);
  usage(stderr);
  return CLI_USAGE;
}
