/*
 * cli_test.c: `runnel test JOB.lua < events.jsonl`: the test driver.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "topo.h"

static void cli_test_usage(FILE *f) {
  fprintf(f,
          "Usage: runnel test JOB.lua [--input FILE] < events.jsonl\n"
          "       runnel test --script TEST.lua\n"
          "\n"
          "Runs a job deterministically in one process, without a worker or a disk log,\n"
          "and prints every record it writes, one JSON object per line, in emission order.\n"
          "\n"
          "Input lines (JSON):\n"
          "  {\"topic\":\"lines\",\"key\":\"k1\",\"value\":\"...\",\"timestamp\":1000,\n"
          "   \"headers\":{\"h\":\"v\"},\"partition\":0}     key, headers, partition optional\n"
          "  {\"advance_wall_clock\": 60000}              moves the wall clock\n"
          "Blank lines and lines starting with # are skipped.\n"
          "\n"
          "With --script, runs a Lua test script that drives jobs through\n"
          "runnel.test_driver(job) (pipe, advance_wall_clock, read) and fails on an\n"
          "error or a failed assert.\n"
          "\n"
          "Options:\n"
          "  -i, --input FILE   read events from FILE instead of stdin\n"
          "  -s, --script       the file is a Lua test script\n"
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 when every line was processed, 1 when a line or the job\n"
          "failed (the message names the line), 2 for a job that does not load.\n");
}

int cli_test_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"input", required_argument, NULL, 'i'},
      {"script", no_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *input = NULL;
  int script = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "i:sh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'i': input = optarg; break;
    case 's': script = 1; break;
    case 'h': cli_test_usage(stdout); return CLI_OK;
    default: cli_test_usage(stderr); return CLI_USAGE;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "runnel test: expects one JOB.lua\n");
    cli_test_usage(stderr);
    return CLI_USAGE;
  }
  luavm_options_t vmo;
  luavm_options_defaults(&vmo);
  topo_job_t *job;
  char err[4096];
  if (script) {
    if (topo_driver_run_script(argv[optind], &vmo, err, sizeof err) != 0) {
      fprintf(stderr, "runnel test: %s\n", err);
      return CLI_FAILED;
    }
    printf("%s: ok\n", argv[optind]);
    return CLI_OK;
  }
  if (topo_job_load_file(argv[optind], &vmo, &job, err, sizeof err) != 0) {
    fprintf(stderr, "runnel test: %s\n", err);
    return CLI_USAGE;
  }
  FILE *in = stdin;
  if (input && !(in = fopen(input, "r"))) {
    perror(input);
    topo_job_free(job);
    return CLI_FAILED;
  }
  int rc = topo_driver_run(job, in, stdout, err, sizeof err);
  if (rc != 0) fprintf(stderr, "runnel test: %s\n", err);
  if (in != stdin) fclose(in);
  topo_job_free(job);
  return rc == 0 ? CLI_OK : CLI_FAILED;
}
