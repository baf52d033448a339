/*
 * cli_produce.c: `runnel produce TOPIC`: one record per stdin line.
 *
 * Lines are read into a chunk (up to CLI_PRODUCE_CHUNK lines or bytes),
 * then each partition's records of the chunk are appended as one call, so
 * the log sees batches, not single records. Keyed records go where Kafka's
 * default partitioner puts them; unkeyed records stick to one partition per
 * chunk and move on to the next partition with the next chunk (Kafka's
 * sticky partitioning), which spreads them evenly.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_log.h"

#define CLI_PRODUCE_CHUNK_RECORDS 1000
#define CLI_PRODUCE_CHUNK_BYTES (1u << 20)

static void cli_produce_usage(FILE *f) {
  fprintf(f,
          "Usage: runnel produce TOPIC [options] < lines\n"
          "\n"
          "Appends one record per line of stdin (the newline is not part of the value)\n"
          "and prints how many records were appended.\n"
          "\n"
          "Options:\n"
          "      --data-dir DIR        the data dir (default ./data)\n"
          "  -k, --key-delimiter C     split each line at the first C into key and value\n"
          "                            (a line without C is an error)\n"
          "  -p, --partition N         append every record to partition N\n"
          "  -h, --help                this help\n");
}

typedef struct {
  char *text;        /* the chunk's lines, NUL-separated */
  size_t len, cap;
  log_record_t *recs;
  int32_t *parts;
  size_t n;
  log_record_t *scratch; /* one partition's records */
} cli_chunk_t;

/* Appends the chunk's records partition by partition. Returns 0 or -1. */
static int cli_produce_flush(cli_log_t *cl, const char *topic, int32_t nparts, cli_chunk_t *ch,
                             int64_t *appended) {
  log_error_t err = {0};
  for (int32_t p = 0; p < nparts && ch->n; p++) {
    size_t k = 0;
    for (size_t i = 0; i < ch->n; i++)
      if (ch->parts[i] == p) ch->scratch[k++] = ch->recs[i];
    if (k == 0) continue;
    log_partition_t *part;
    int64_t base;
    int rc = log_partition_get(cl->log, topic, p, &part, &err);
    if (rc == 0) rc = log_partition_append(part, ch->scratch, k, &base, &err);
    if (rc != 0) {
      fprintf(stderr, "runnel produce: %s\n", err.msg[0] ? err.msg : log_strerror(rc));
      return -1;
    }
    *appended += (int64_t)k;
  }
  ch->n = 0;
  ch->len = 0;
  return 0;
}

int cli_produce_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"data-dir", required_argument, NULL, 'd'},
      {"key-delimiter", required_argument, NULL, 'k'},
      {"partition", required_argument, NULL, 'p'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *data_dir = "./data";
  int delim = -1;
  int64_t fixed_part = -1;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "k:p:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd': data_dir = optarg; break;
    case 'k':
      if (strlen(optarg) != 1) {
        fprintf(stderr, "runnel produce: --key-delimiter expects one character, got \"%s\"\n",
                optarg);
        return CLI_USAGE;
      }
      delim = (unsigned char)optarg[0];
      break;
    case 'p':
      if (cli_parse_int("produce", "--partition", optarg, 0, &fixed_part) != 0) return CLI_USAGE;
      break;
    case 'h': cli_produce_usage(stdout); return CLI_OK;
    default: cli_produce_usage(stderr); return CLI_USAGE;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "runnel produce: expects one TOPIC\n");
    cli_produce_usage(stderr);
    return CLI_USAGE;
  }
  const char *topic = argv[optind];

  cli_log_t cl;
  if (cli_log_open(&cl, "produce", data_dir) != 0) return CLI_FAILED;
  log_error_t err = {0};
  int nparts = log_topic_partitions(cl.log, topic, &err);
  if (nparts < 0) {
    fprintf(stderr, "runnel produce: %s\n", err.msg[0] ? err.msg : log_strerror(nparts));
    cli_log_close(&cl, "produce");
    return CLI_FAILED;
  }
  if (fixed_part >= nparts) {
    fprintf(stderr, "runnel produce: %s: unknown partition %" PRId64 " (the topic has %d)\n",
            topic, fixed_part, nparts);
    cli_log_close(&cl, "produce");
    return CLI_FAILED;
  }

  cli_chunk_t ch = {0};
  ch.recs = malloc(CLI_PRODUCE_CHUNK_RECORDS * sizeof *ch.recs);
  ch.scratch = malloc(CLI_PRODUCE_CHUNK_RECORDS * sizeof *ch.scratch);
  ch.parts = malloc(CLI_PRODUCE_CHUNK_RECORDS * sizeof *ch.parts);
  int64_t appended = 0, lineno = 0;
  int32_t sticky = 0;
  int status = CLI_OK;
  char *line = NULL;
  size_t linecap = 0;
  ssize_t got;
  /* offsets of each record's key/value into ch.text, fixed up before flush
   * (ch.text may move while growing) */
  size_t *koff = malloc(CLI_PRODUCE_CHUNK_RECORDS * sizeof *koff);
  size_t *voff = malloc(CLI_PRODUCE_CHUNK_RECORDS * sizeof *voff);
  if (!ch.recs || !ch.scratch || !ch.parts || !koff || !voff) {
    fprintf(stderr, "runnel produce: out of memory\n");
    status = CLI_FAILED;
    goto out;
  }
  for (;;) {
    got = getline(&line, &linecap, stdin);
    int at_eof = got < 0;
    if (!at_eof) {
      lineno++;
      size_t len = (size_t)got;
      if (len && line[len - 1] == '\n') len--;
      if (len && line[len - 1] == '\r') len--;
      if (ch.len + len + 1 > ch.cap) {
        size_t cap = ch.cap ? ch.cap : 65536;
        while (cap < ch.len + len + 1) cap *= 2;
        char *nt = realloc(ch.text, cap);
        if (!nt) {
          fprintf(stderr, "runnel produce: out of memory\n");
          status = CLI_FAILED;
          break;
        }
        ch.text = nt;
        ch.cap = cap;
      }
      memcpy(ch.text + ch.len, line, len);
      ch.text[ch.len + len] = '\0';
      log_record_t *r = &ch.recs[ch.n];
      memset(r, 0, sizeof *r);
      r->timestamp = -1;
      r->key_len = -1;
      koff[ch.n] = voff[ch.n] = ch.len;
      r->value_len = (int32_t)len;
      if (delim >= 0) {
        char *d = memchr(ch.text + ch.len, delim, len);
        if (!d) {
          /* The lines before this one are still appended: flush, then fail. */
          fprintf(stderr, "runnel produce: stdin:%" PRId64 ": no key delimiter '%c' in the line\n",
                  lineno, delim);
          status = CLI_FAILED;
          at_eof = 1;
        } else {
          r->key_len = (int32_t)(d - (ch.text + ch.len));
          voff[ch.n] = ch.len + (size_t)r->key_len + 1;
          r->value_len = (int32_t)(len - (size_t)r->key_len - 1);
        }
      }
      if (!at_eof) {
        ch.len += len + 1;
        ch.n++;
      }
    }
    if (ch.n && (at_eof || ch.n == CLI_PRODUCE_CHUNK_RECORDS || ch.len >= CLI_PRODUCE_CHUNK_BYTES)) {
      for (size_t i = 0; i < ch.n; i++) {
        log_record_t *r = &ch.recs[i];
        r->value = ch.text + voff[i];
        r->key = r->key_len >= 0 ? ch.text + koff[i] : NULL;
        if (fixed_part >= 0) ch.parts[i] = (int32_t)fixed_part;
        else if (r->key) ch.parts[i] = log_partition_for_key(r->key, r->key_len, nparts);
        else ch.parts[i] = sticky;
      }
      sticky = (sticky + 1) % nparts;
      if (cli_produce_flush(&cl, topic, nparts, &ch, &appended) != 0) {
        status = CLI_FAILED;
        break;
      }
    }
    if (at_eof) break;
  }
  if (status == CLI_OK && !feof(stdin) && ferror(stdin)) {
    fprintf(stderr, "runnel produce: error reading stdin\n");
    status = CLI_FAILED;
  }
out:
  if (cli_log_close(&cl, "produce") != 0) status = CLI_FAILED;
  if (status == CLI_OK)
    printf("Appended %" PRId64 " records to %s.\n", appended, topic);
  else if (appended > 0)
    fprintf(stderr, "runnel produce: %" PRId64 " records were appended before the failure\n",
            appended);
  free(line);
  free(ch.text);
  free(ch.recs);
  free(ch.scratch);
  free(ch.parts);
  free(koff);
  free(voff);
  return status;
}
