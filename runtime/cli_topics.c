/*
 * cli_topics.c: `runnel topics create|list|describe|delete`, on a data dir
 * directly (the later issue routes these through a running worker).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_log.h"

static void cli_topics_usage(FILE *f) {
  fprintf(f,
          "Usage:\n"
          "  runnel topics create NAME [--partitions N] [--config KEY=VALUE ...]\n"
          "  runnel topics list\n"
          "  runnel topics describe NAME\n"
          "  runnel topics delete NAME\n"
          "\n"
          "Options:\n"
          "      --data-dir DIR       the data dir (default ./data)\n"
          "  -p, --partitions N       partitions of a new topic (default 1)\n"
          "      --config KEY=VALUE   topic config, Kafka's names: retention.ms,\n"
          "                           retention.bytes, cleanup.policy, segment.bytes,\n"
          "                           segment.ms, max.message.bytes, delete.retention.ms,\n"
          "                           min.compaction.lag.ms, index.interval.bytes,\n"
          "                           log.flush, log.flush.interval.ms (repeatable)\n"
          "      --include-internal   list: also internal topics (__consumer_offsets)\n"
          "  -h, --help               this help\n");
}

static int cli_topics_describe(cli_log_t *cl, const char *name) {
  log_error_t err = {0};
  int n = log_topic_partitions(cl->log, name, &err);
  if (n < 0) {
    fprintf(stderr, "runnel topics: %s\n", err.msg[0] ? err.msg : log_strerror(n));
    return CLI_FAILED;
  }
  log_topic_config_t cfg;
  log_topic_config(cl->log, name, &cfg, NULL);
  char conf[4096];
  log_topic_config_format(&cfg, conf, sizeof conf);
  for (char *c = conf; *c; c++)
    if (*c == '\n' && c[1]) *c = ',';
  conf[strcspn(conf, "\n")] = '\0';
  printf("Topic: %s\tPartitionCount: %d\tConfigs: %s\n", name, n, conf);
  for (int p = 0; p < n; p++) {
    log_partition_t *part;
    if (log_partition_get(cl->log, name, p, &part, &err) != 0) {
      fprintf(stderr, "runnel topics: %s\n", err.msg);
      return CLI_FAILED;
    }
    printf("\tTopic: %s\tPartition: %d\tStartOffset: %" PRId64 "\tEndOffset: %" PRId64
           "\tSizeBytes: %" PRId64 "\n",
           name, p, log_partition_start_offset(part), log_partition_end_offset(part),
           log_partition_size(part));
  }
  return CLI_OK;
}

int cli_topics_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"data-dir", required_argument, NULL, 'd'},
      {"partitions", required_argument, NULL, 'p'},
      {"config", required_argument, NULL, 'c'},
      {"include-internal", no_argument, NULL, 'i'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  if (argc < 2 || argv[1][0] == '-') {
    int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    cli_topics_usage(help ? stdout : stderr);
    return help ? CLI_OK : CLI_USAGE;
  }
  const char *action = argv[1];
  const char *data_dir = "./data";
  int64_t partitions = -1;
  int include_internal = 0;
  log_topic_config_t cfg;
  log_topic_config_defaults(&cfg);
  int have_cfg = 0;
  char *configs[128];
  int nconfigs = 0;
  optind = 2;
  int opt;
  while ((opt = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd': data_dir = optarg; break;
    case 'p':
      if (cli_parse_int("topics", "--partitions", optarg, 1, &partitions) != 0) return CLI_USAGE;
      if (partitions > 100000) {
        fprintf(stderr, "runnel topics: --partitions: at most 100000, got %s\n", optarg);
        return CLI_USAGE;
      }
      break;
    case 'c':
      if (nconfigs == 128 || !strchr(optarg, '=')) {
        fprintf(stderr, "runnel topics: --config expects KEY=VALUE, got \"%s\"\n", optarg);
        return CLI_USAGE;
      }
      configs[nconfigs++] = optarg;
      break;
    case 'i': include_internal = 1; break;
    case 'h': cli_topics_usage(stdout); return CLI_OK;
    default: cli_topics_usage(stderr); return CLI_USAGE;
    }
  }
  int needs_name = strcmp(action, "list") != 0;
  if (strcmp(action, "create") && strcmp(action, "list") && strcmp(action, "describe") &&
      strcmp(action, "delete")) {
    fprintf(stderr, "runnel topics: unknown action \"%s\" (create, list, describe, delete)\n",
            action);
    return CLI_USAGE;
  }
  if (needs_name != (optind == argc - 1)) {
    fprintf(stderr, needs_name ? "runnel topics %s: expects one topic NAME\n"
                               : "runnel topics %s: takes no arguments\n", action);
    return CLI_USAGE;
  }
  const char *name = needs_name ? argv[optind] : NULL;
  log_error_t err = {0};
  if (name && log_topic_name_validate(name, &err) != 0) {
    fprintf(stderr, "runnel topics: %s\n", err.msg);
    return CLI_USAGE;
  }
  if (strcmp(action, "create") != 0 && (nconfigs || partitions >= 0)) {
    fprintf(stderr, "runnel topics %s: --partitions and --config are for create\n", action);
    return CLI_USAGE;
  }

  cli_log_t cl;
  if (cli_log_open(&cl, "topics", data_dir) != 0) return CLI_FAILED;
  /* Topic config starts from the log's defaults, then --config overrides. */
  if (nconfigs) {
    for (int i = 0; i < nconfigs; i++) {
      char *eq = strchr(configs[i], '=');
      *eq = '\0';
      int rc = log_topic_config_set(&cfg, configs[i], eq + 1, &err);
      *eq = '=';
      if (rc != 0) {
        fprintf(stderr, "runnel topics: --config %s\n", err.msg);
        cli_log_close(&cl, "topics");
        return CLI_USAGE;
      }
    }
    have_cfg = 1;
  }

  int status = CLI_OK, rc;
  if (strcmp(action, "create") == 0) {
    rc = log_topic_create(cl.log, name, partitions > 0 ? (int32_t)partitions : 1,
                          have_cfg ? &cfg : NULL, &err);
    if (rc != 0) {
      fprintf(stderr, "runnel topics: %s\n", err.msg[0] ? err.msg : log_strerror(rc));
      status = CLI_FAILED;
    } else {
      printf("Created topic %s.\n", name);
    }
  } else if (strcmp(action, "list") == 0) {
    char **names = NULL;
    rc = log_topic_list(cl.log, include_internal, &names);
    if (rc < 0) {
      fprintf(stderr, "runnel topics: cannot list topics: %s\n", log_strerror(rc));
      status = CLI_FAILED;
    } else {
      for (char **t = names; *t; t++) printf("%s\n", *t);
      log_names_free(names);
    }
  } else if (strcmp(action, "describe") == 0) {
    status = cli_topics_describe(&cl, name);
  } else {
    rc = log_topic_delete(cl.log, name, &err);
    if (rc != 0) {
      fprintf(stderr, "runnel topics: %s\n", err.msg[0] ? err.msg : log_strerror(rc));
      status = CLI_FAILED;
    } else {
      printf("Deleted topic %s.\n", name);
    }
  }
  if (cli_log_close(&cl, "topics") != 0) status = CLI_FAILED;
  return status;
}
