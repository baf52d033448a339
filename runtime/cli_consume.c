/*
 * cli_consume.c: `runnel consume TOPIC`: prints records.
 *
 * Where reading starts, per partition, as kafka-console-consumer decides:
 * --offset N (needs --partition); else the group's committed offset when
 * --group has one; else the log start with --from-beginning; else the log
 * end (auto.offset.reset=latest). Without --follow the command stops when
 * every partition is read to its end; with --follow it waits for new
 * records (woken by the log's eventfd notification, not by polling) until
 * SIGINT/SIGTERM or --max records. With --group, the positions of what was
 * printed are committed after each pass and on exit.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "cli.h"
#include "cli_log.h"

static volatile sig_atomic_t cli_consume_stop;

static void cli_consume_on_signal(int sig) {
  (void)sig;
  cli_consume_stop = 1;
}

static void cli_consume_usage(FILE *f) {
  fprintf(f,
          "Usage: runnel consume TOPIC [options]\n"
          "\n"
          "Prints records of TOPIC, by default the value of each on its own line.\n"
          "\n"
          "Options:\n"
          "      --data-dir DIR      the data dir (default ./data)\n"
          "      --from-beginning    start at the log start (default: the log end)\n"
          "  -p, --partition N       only partition N\n"
          "  -o, --offset N          start at offset N (needs --partition)\n"
          "  -g, --group G           resume from and commit group G's offsets\n"
          "  -n, --max N             stop after N records\n"
          "  -f, --follow            keep waiting for new records\n"
          "      --format FMT        text (value only, default) or json (one object\n"
          "                          per record with topic, partition, offset, timestamp,\n"
          "                          key, value, headers)\n"
          "  -h, --help              this help\n");
}

/* Emits bytes as a JSON string when they are valid UTF-8, null when
 * absent, and otherwise as {"base64": "..."} (docs/cli.md), so that no
 * byte is lost or mangled. */
static void cli_gen_bytes(yajl_gen g, const char *field, const void *p, int32_t len) {
  yajl_gen_string(g, (const unsigned char *)field, strlen(field));
  if (!p || len < 0) {
    yajl_gen_null(g);
    return;
  }
  /* With yajl_gen_validate_utf8, invalid text is refused before anything
   * is written, so the generator's state is unchanged. */
  if (yajl_gen_string(g, p, (size_t)len) == yajl_gen_status_ok) return;
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *s = p;
  size_t n = (size_t)len;
  char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
  if (!out) {
    yajl_gen_null(g);
    return;
  }
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    *o++ = b64[v >> 18 & 63];
    *o++ = b64[v >> 12 & 63];
    *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? b64[v & 63] : '=';
  }
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"base64", 6);
  yajl_gen_string(g, (const unsigned char *)out, (size_t)(o - out));
  yajl_gen_map_close(g);
  free(out);
}

static int cli_print_record(FILE *out, int json, const char *topic, int32_t partition,
                            const log_record_t *r) {
  if (!json) {
    if (r->value_len > 0) fwrite(r->value, 1, (size_t)r->value_len, out);
    fputc('\n', out);
    return ferror(out) ? -1 : 0;
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  yajl_gen_map_open(g);
  yajl_gen_string(g, (const unsigned char *)"topic", 5);
  yajl_gen_string(g, (const unsigned char *)topic, strlen(topic));
  yajl_gen_string(g, (const unsigned char *)"partition", 9);
  yajl_gen_integer(g, partition);
  yajl_gen_string(g, (const unsigned char *)"offset", 6);
  yajl_gen_integer(g, r->offset);
  yajl_gen_string(g, (const unsigned char *)"timestamp", 9);
  yajl_gen_integer(g, r->timestamp);
  cli_gen_bytes(g, "key", r->key, r->key_len);
  cli_gen_bytes(g, "value", r->value, r->value_len);
  yajl_gen_string(g, (const unsigned char *)"headers", 7);
  yajl_gen_map_open(g);
  for (int32_t i = 0; i < r->header_count; i++) {
    const log_header_t *h = &r->headers[i];
    char name[256];
    int n = snprintf(name, sizeof name, "%.*s", (int)h->key_len, h->key);
    (void)n;
    cli_gen_bytes(g, name, h->value, h->value_len);
  }
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  fwrite(buf, 1, len, out);
  fputc('\n', out);
  yajl_gen_free(g);
  return ferror(out) ? -1 : 0;
}

int cli_consume_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"data-dir", required_argument, NULL, 'd'},
      {"from-beginning", no_argument, NULL, 'b'},
      {"partition", required_argument, NULL, 'p'},
      {"offset", required_argument, NULL, 'o'},
      {"group", required_argument, NULL, 'g'},
      {"max", required_argument, NULL, 'n'},
      {"follow", no_argument, NULL, 'f'},
      {"format", required_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *data_dir = "./data", *group = NULL;
  int from_beginning = 0, follow = 0, json = 0;
  int64_t only_part = -1, start_offset = -1, max = -1;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "p:o:g:n:fh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd': data_dir = optarg; break;
    case 'b': from_beginning = 1; break;
    case 'p':
      if (cli_parse_int("consume", "--partition", optarg, 0, &only_part) != 0) return CLI_USAGE;
      break;
    case 'o':
      if (cli_parse_int("consume", "--offset", optarg, 0, &start_offset) != 0) return CLI_USAGE;
      break;
    case 'g': group = optarg; break;
    case 'n':
      if (cli_parse_int("consume", "--max", optarg, 1, &max) != 0) return CLI_USAGE;
      break;
    case 'f': follow = 1; break;
    case 'F':
      if (strcmp(optarg, "json") == 0) json = 1;
      else if (strcmp(optarg, "text") == 0) json = 0;
      else {
        fprintf(stderr, "runnel consume: --format: expected text or json, got \"%s\"\n", optarg);
        return CLI_USAGE;
      }
      break;
    case 'h': cli_consume_usage(stdout); return CLI_OK;
    default: cli_consume_usage(stderr); return CLI_USAGE;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "runnel consume: expects one TOPIC\n");
    cli_consume_usage(stderr);
    return CLI_USAGE;
  }
  if (start_offset >= 0 && only_part < 0) {
    fprintf(stderr, "runnel consume: --offset needs --partition\n");
    return CLI_USAGE;
  }
  const char *topic = argv[optind];

  cli_log_t cl;
  if (cli_log_open(&cl, "consume", data_dir) != 0) return CLI_FAILED;
  log_error_t err = {0};
  int status = CLI_OK;
  int nparts = log_topic_partitions(cl.log, topic, &err);
  log_reader_t **readers = NULL;
  log_partition_t **parts = NULL;
  int efd = -1;
  if (nparts < 0) {
    fprintf(stderr, "runnel consume: %s\n", err.msg[0] ? err.msg : log_strerror(nparts));
    status = CLI_FAILED;
    goto out;
  }
  if (only_part >= nparts) {
    fprintf(stderr, "runnel consume: %s: unknown partition %" PRId64 " (the topic has %d)\n",
            topic, only_part, nparts);
    status = CLI_FAILED;
    goto out;
  }
  readers = calloc((size_t)nparts, sizeof *readers);
  parts = calloc((size_t)nparts, sizeof *parts);
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!readers || !parts || efd < 0) {
    fprintf(stderr, "runnel consume: out of resources\n");
    status = CLI_FAILED;
    goto out;
  }
  for (int p = 0; p < nparts; p++) {
    if (only_part >= 0 && p != only_part) continue;
    if (log_partition_get(cl.log, topic, p, &parts[p], &err) != 0) {
      fprintf(stderr, "runnel consume: %s\n", err.msg);
      status = CLI_FAILED;
      goto out;
    }
    int64_t off = start_offset;
    if (off < 0 && group) {
      if (log_group_fetch(cl.log, group, topic, p, &off, &err) != 0) {
        fprintf(stderr, "runnel consume: %s\n", err.msg);
        status = CLI_FAILED;
        goto out;
      }
      /* A committed offset below the log start (retention) resets, as
       * auto.offset.reset does. */
      if (off >= 0 && off < log_partition_start_offset(parts[p]))
        off = log_partition_start_offset(parts[p]);
    }
    if (off < 0)
      off = from_beginning ? log_partition_start_offset(parts[p]) : log_partition_end_offset(parts[p]);
    int rc = log_reader_new(cl.log, topic, p, off, 0, &readers[p], &err);
    if (rc != 0) {
      fprintf(stderr, "runnel consume: %s\n", err.msg[0] ? err.msg : log_strerror(rc));
      status = CLI_FAILED;
      goto out;
    }
    if (follow) log_partition_watch(parts[p], efd);
  }

  struct sigaction sa = {.sa_handler = cli_consume_on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int64_t printed = 0;
  while (!cli_consume_stop && (max < 0 || printed < max)) {
    int any = 0;
    for (int p = 0; p < nparts && (max < 0 || printed < max); p++) {
      if (!readers[p]) continue;
      log_record_t rec;
      int rc = 0;
      while ((max < 0 || printed < max) && (rc = log_reader_next(readers[p], &rec, &err)) == 1) {
        if (cli_print_record(stdout, json, topic, p, &rec) != 0) {
          /* stdout closed (e.g. piped into head): stop quietly. */
          cli_consume_stop = 1;
          break;
        }
        printed++;
        any = 1;
      }
      if (rc < 0 && !cli_consume_stop) {
        fprintf(stderr, "runnel consume: %s\n", err.msg[0] ? err.msg : log_strerror(rc));
        status = CLI_FAILED;
        goto commit;
      }
    }
    if (fflush(stdout) != 0) cli_consume_stop = 1;
    if (group) {
      for (int p = 0; p < nparts; p++) {
        if (readers[p] &&
            log_group_commit(cl.log, group, topic, p, log_reader_position(readers[p]), &err) != 0) {
          fprintf(stderr, "runnel consume: committing offsets of group %s: %s\n", group, err.msg);
          status = CLI_FAILED;
          goto out;
        }
      }
    }
    if (!follow) {
      if (!any) break;
      continue;
    }
    if (!any) {
      struct pollfd pfd = {.fd = efd, .events = POLLIN};
      if (poll(&pfd, 1, 1000) > 0) {
        uint64_t v;
        ssize_t r = read(efd, &v, sizeof v);
        (void)r;
      }
    }
  }
commit:
  if (group) {
    for (int p = 0; p < nparts; p++)
      if (readers && readers[p])
        log_group_commit(cl.log, group, topic, p, log_reader_position(readers[p]), NULL);
  }
out:
  if (readers) {
    for (int p = 0; p < nparts; p++) {
      if (follow && parts[p]) log_partition_unwatch(parts[p], efd);
      if (readers[p]) log_reader_free(readers[p]);
    }
  }
  if (efd >= 0) close(efd);
  free(readers);
  free(parts);
  if (cli_log_close(&cl, "consume") != 0) status = CLI_FAILED;
  return status;
}
