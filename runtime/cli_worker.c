/*
 * cli_worker.c: `runnel worker`: parse options and the config, then run
 * the worker (worker.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "logger.h"
#include "worker.h"
#include "worker_config.h"

static void cli_run_usage(FILE *f) {
  fprintf(f,
          "Usage: runnel run JOB.lua [JOB.lua ...] [--config worker.json] [options]\n"
          "\n"
          "Runs a worker hosting the given Lua jobs (and any in the config's \"jobs\").\n"
          "A job that does not load stops start-up with its file:line and status 2.\n"
          "Stops cleanly on SIGINT or SIGTERM, after committing every task.\n"
          "\n"
          "Options are those of runnel worker (see runnel worker --help).\n");
}

static void cli_worker_usage(FILE *f) {
  fprintf(f,
          "Usage: runnel worker [--config worker.json] [options] [CONNECTOR.json ...]\n"
          "\n"
          "Runs a worker: the embedded log in data.dir and the REST API on listeners.\n"
          "Each CONNECTOR.json ({\"name\": ..., \"config\": {...}}, as Kafka Connect's\n"
          "POST /connectors body) creates or replaces that connector, as\n"
          "connect-standalone does; a bad one stops start-up naming the file and key.\n"
          "Connectors created through REST are kept in the log and come back by themselves.\n"
          "Stops cleanly on SIGINT or SIGTERM.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE      worker config (JSON); every key has a default\n"
          "      --data-dir DIR     overrides data.dir\n"
          "      --set KEY=VALUE    overrides one config key (repeatable)\n"
          "      --log-level LEVEL  error, warn, info (default), debug, trace\n"
          "      --config-docs      prints the config keys as a Markdown table\n"
          "  -h, --help             this help\n"
          "\n"
          "Exit status: 0 after a clean stop, 1 on a failure at run time, 2 on bad\n"
          "usage or a bad config.\n");
}

/* `runnel worker` and `runnel run JOB.lua...` share everything but the
 * positional job files. */
static int cli_worker_common(int argc, char **argv, int with_jobs) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"data-dir", required_argument, NULL, 'd'},
      {"set", required_argument, NULL, 's'},
      {"log-level", required_argument, NULL, 'l'},
      {"config-docs", no_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *config_path = NULL, *data_dir = NULL;
  char *sets[64];
  int nsets = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': config_path = optarg; break;
    case 'd': data_dir = optarg; break;
    case 's':
      if (nsets == 64 || !strchr(optarg, '=')) {
        fprintf(stderr, "runnel worker: --set expects KEY=VALUE, got \"%s\"\n", optarg);
        return CLI_USAGE;
      }
      sets[nsets++] = optarg;
      break;
    case 'l': {
      logger_level_t level;
      if (logger_level_parse(optarg, &level) != 0) {
        fprintf(stderr, "runnel worker: --log-level: expected one of error, warn, info, "
                        "debug, trace, got \"%s\"\n", optarg);
        return CLI_USAGE;
      }
      logger_set_level(level);
      break;
    }
    case 'D': {
      char *md = config_docs_markdown(worker_config_defs);
      if (!md) return CLI_FAILED;
      fputs(md, stdout);
      free(md);
      return CLI_OK;
    }
    case 'h': (with_jobs ? cli_run_usage : cli_worker_usage)(stdout); return CLI_OK;
    default: (with_jobs ? cli_run_usage : cli_worker_usage)(stderr); return CLI_USAGE;
    }
  }
  if (!with_jobs && optind < argc) {
    char err[4096];
    if (worker_connect_check_files(argv + optind, err, sizeof err) != 0) {
      fprintf(stderr, "runnel worker: %s\n", err);
      return CLI_USAGE;
    }
  }
  if (with_jobs && optind == argc) {
    fprintf(stderr, "runnel run: expects at least one JOB.lua\n");
    cli_run_usage(stderr);
    return CLI_USAGE;
  }

  worker_config_t cfg;
  char err[1024];
  if (worker_config_load(&cfg, config_path, err, sizeof err) != 0) {
    fprintf(stderr, "runnel worker: %s\n", err);
    return CLI_USAGE;
  }
  for (int i = 0; i < nsets; i++) {
    char *eq = strchr(sets[i], '=');
    *eq = '\0';
    int rc = config_set_string(worker_config_defs, &cfg, "--set", sets[i], eq + 1, err,
                               sizeof err);
    *eq = '=';
    if (rc != 0) {
      fprintf(stderr, "runnel worker: %s\n", err);
      worker_config_free(&cfg);
      return CLI_USAGE;
    }
  }
  if (data_dir &&
      config_set_string(worker_config_defs, &cfg, "--data-dir", "data.dir", data_dir, err,
                        sizeof err) != 0) {
    fprintf(stderr, "runnel worker: %s\n", err);
    worker_config_free(&cfg);
    return CLI_USAGE;
  }
  int status = worker_run(&cfg, config_path, with_jobs ? argv + optind : NULL,
                          with_jobs ? NULL : argv + optind);
  worker_config_free(&cfg);
  return status;
}

int cli_worker_main(int argc, char **argv) { return cli_worker_common(argc, argv, 0); }

int cli_run_main(int argc, char **argv) { return cli_worker_common(argc, argv, 1); }
