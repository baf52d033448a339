/*
 * bench_conn_transforms.c: records/s through connector transform chains
 * (connectors/conn_chain.c), on one thread, in memory.
 *
 *   bench_conn_transforms [--records N] [--reps R]
 *
 * N (default 1000000) records per measurement, R (default 3) repetitions,
 * whose median is reported. Each record is a source record of topic
 * "clicks-raw" with a JSON value of about 170 bytes (7 fields). Chains:
 *
 *   a) InsertField$Value (topic.field): one parse, one write.
 *   b) ReplaceField + MaskField + ValueToKey + InsertField$Value + RegexRouter
 *      in one chain: the chain's shared parse (each side parsed once and
 *      written once per record).
 *   b') the same five transforms applied one by one outside a chain, so
 *      each parses and writes the value itself: what the shared parse
 *      saves.
 *   c) the `lua` transform (a function that changes two fields) alone.
 *
 * Every run checks the last record's value against the expected text.
 * Exit status 0 when everything ran and checked out, 1 otherwise, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect_lua_transform.h"
#include "connector.h"

static const char *VALUE =
    "{\"uid\":\"u12345\",\"email\":\"someone@example.com\",\"debug\":true,"
    "\"page\":\"/products/widgets?id=42\",\"ts\":1700000000000,"
    "\"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"n\":12.5}";

static const char *const CHAIN_B[] = {
    "transforms", "drop,mask,key,ins,route",
    "transforms.drop.type", "ReplaceField$Value",
    "transforms.drop.exclude", "debug",
    "transforms.drop.renames", "uid:user",
    "transforms.mask.type", "MaskField$Value",
    "transforms.mask.fields", "email",
    "transforms.key.type", "ValueToKey",
    "transforms.key.fields", "user",
    "transforms.ins.type", "InsertField$Value",
    "transforms.ins.topic.field", "source_topic",
    "transforms.route.type", "RegexRouter",
    "transforms.route.regex", "(.*)-raw",
    "transforms.route.replacement", "$1",
    NULL};
static const char *EXPECT_B =
    "{\"user\":\"u12345\",\"email\":\"\",\"page\":\"/products/widgets?id=42\","
    "\"ts\":1700000000000,\"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"n\":12.5,"
    "\"source_topic\":\"clicks-raw\"}";

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static conn_chain_t *chain_new(const char *const *kv) {
  conn_config_t c;
  conn_config_init(&c);
  for (size_t i = 0; kv[i]; i += 2) conn_config_set(&c, kv[i], kv[i + 1]);
  conn_chain_t *chain = NULL;
  char err[512];
  if (conn_chain_new(&c, &chain, err, sizeof err) != 0) fprintf(stderr, "chain: %s\n", err);
  conn_config_free(&c);
  return chain;
}

/* A chain of only the i-th transform of kv (which lists transforms= first). */
static conn_chain_t *chain_one(const char *const *kv, const char *alias) {
  const char *one[64];
  size_t n = 0;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "transforms.%s.", alias);
  one[n++] = "transforms";
  one[n++] = alias;
  for (size_t i = 2; kv[i]; i += 2)
    if (strncmp(kv[i], prefix, strlen(prefix)) == 0) one[n++] = kv[i], one[n++] = kv[i + 1];
  one[n] = NULL;
  return chain_new(one);
}

/* Runs n records through the chains (applied in order); returns records/s
 * or -1, and checks the last value against expect. */
static double run(conn_chain_t **chains, size_t n_chains, long n, const char *expect) {
  conn_record_t r;
  conn_record_init(&r);
  char err[512];
  size_t vlen = strlen(VALUE);
  double t0 = now();
  for (long i = 0; i < n; i++) {
    conn_record_set_topic(&r, "clicks-raw");
    conn_record_set_key(&r, NULL, -1);
    conn_record_set_value(&r, VALUE, (int32_t)vlen);
    for (size_t c = 0; c < n_chains; c++) {
      if (conn_chain_apply(chains[c], &r, err, sizeof err) != 1) {
        fprintf(stderr, "apply: %s\n", err);
        conn_record_clear(&r);
        return -1;
      }
    }
  }
  double dt = now() - t0;
  int ok = (size_t)r.value_len == strlen(expect) && memcmp(r.value, expect, strlen(expect)) == 0;
  if (!ok) fprintf(stderr, "unexpected value: %.*s\n", (int)r.value_len, (char *)r.value);
  conn_record_clear(&r);
  return ok ? (double)n / dt : -1;
}

static int measure(const char *label, conn_chain_t **chains, size_t n_chains, long n, int reps,
                   const char *expect) {
  double v[16];
  for (int i = 0; i < reps; i++)
    if ((v[i] = run(chains, n_chains, n, expect)) < 0) return 1;
  qsort(v, (size_t)reps, sizeof *v, cmp_double);
  printf("  %-58s %10.0f records/s\n", label, v[reps / 2]);
  return 0;
}

int main(int argc, char **argv) {
  long n = 1000000;
  int reps = 3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--records") && i + 1 < argc) n = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_conn_transforms [--records N] [--reps R]\n");
      return 2;
    }
  }
  if (n <= 0 || reps <= 0 || reps > 16) return 2;
  connect_lua_transform_register();
  printf("connector transforms: %ld records of %zu bytes per run, median of %d\n", n,
         strlen(VALUE), reps);
  int rc = 0;

  conn_chain_t *a = chain_new((const char *const[]){"transforms", "ins", "transforms.ins.type",
                                                    "InsertField$Value", "transforms.ins.topic.field",
                                                    "t", NULL});
  char expect_a[512];
  snprintf(expect_a, sizeof expect_a, "%.*s,\"t\":\"clicks-raw\"}", (int)strlen(VALUE) - 1, VALUE);
  rc |= !a || measure("a) InsertField$Value", &a, 1, n, reps, expect_a);
  conn_chain_free(a);

  conn_chain_t *b = chain_new(CHAIN_B);
  rc |= !b || measure("b) 5 transforms in one chain (one parse)", &b, 1, n, reps, EXPECT_B);
  conn_chain_free(b);

  const char *aliases[] = {"drop", "mask", "key", "ins", "route"};
  conn_chain_t *each[5];
  for (int i = 0; i < 5; i++) rc |= !(each[i] = chain_one(CHAIN_B, aliases[i]));
  if (!rc) rc |= measure("b') the same 5, each parsing and writing on its own", each, 5, n, reps,
                         EXPECT_B);
  for (int i = 0; i < 5; i++) conn_chain_free(each[i]);

  conn_chain_t *c = chain_new((const char *const[]){
      "transforms", "l", "transforms.l.type", "lua", "transforms.l.source",
      "return function(r) r.value.n = r.value.n * 2 r.value.debug = nil return r end", NULL});
  rc |= !c || measure("c) lua (two fields changed)", &c, 1, n, reps,
                      "{\"email\":\"someone@example.com\",\"n\":25.0,\"page\":\"/products/widgets?id=42\","
                      "\"ts\":1700000000000,\"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"uid\":\"u12345\"}");
  conn_chain_free(c);
  return rc ? 1 : 0;
}
