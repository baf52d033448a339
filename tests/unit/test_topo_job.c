/*
 * Tests for runtime/topo_job.c: loading a job script into its
 * description: build errors with file:line, sub-topologies, stores,
 * internal topics, and the lookups the runner and the driver use.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "topo.h"

static int job_load(const char *script, topo_job_t **out, char *err, size_t errlen) {
  luavm_options_t vo;
  luavm_options_defaults(&vo);
  *out = NULL;
  err[0] = '\0';
  return topo_job_load("@jobs/j.lua", script, strlen(script), &vo, out, err, errlen);
}

static topo_job_t *job_ok(const char *script) {
  topo_job_t *job;
  char err[2048];
  int rc = job_load(script, &job, err, sizeof err);
  if (rc != 0) fail_msg("topo_job_load: %d %s", rc, err);
  assert_non_null(job);
  return job;
}

/* The first line of err. */
static const char *first_line(const char *err, char *buf, size_t len) {
  snprintf(buf, len, "%.*s", (int)strcspn(err, "\n"), err);
  return buf;
}

/* ---- build errors ---------------------------------------------------------- */

static void test_build_errors_name_file_and_line(void **state) {
  (void)state;
  static const struct {
    const char *script, *want;
  } cases[] = {
      {"local job = runnel.job(\"j\")\njob:stream(\"in\")\n   :nope()\nreturn job\n",
       "jobs/j.lua:3: unknown method \"nope\" on a stream"},
      {"local job = runnel.job(\"j\")\njob:stream(\"in\"):map_values(42)\nreturn job\n",
       "jobs/j.lua:2: map_values: expected a function for its argument, got number"},
      {"local job = runnel.job(\"j\")\nlocal s = job:stream(\"in\")\n"
       "s:group_by_key():count(\"c\")\ns:group_by_key():count(\"c\")\nreturn job\n",
       "jobs/j.lua:4: count: the store name \"c\" is used twice"},
      {"local job = runnel.job(\"j\")\njob:stream(\"in\"):to(\"out\"\nreturn job\n",
       "jobs/j.lua:3: ')' expected (to close '(' at line 2) near 'return'"},
      {"local job = runnel.job(\"j\")\nerror(\"boom\")\nreturn job\n", "jobs/j.lua:2: boom"},
      {"local job = runnel.job(\"bad name\")\njob:stream(\"in\"):to(\"out\")\nreturn job\n",
       "jobs/j.lua:1: runnel.job: the job name must be a name of 1 to 200 characters from "
       "[A-Za-z0-9._-], got \"bad name\""},
      {"local job = runnel.job(\"j\", { errors_tolerance = \"some\" })\nreturn job\n",
       "jobs/j.lua:1: runnel.job: errors_tolerance must be \"all\" or \"none\", got \"some\""},
      /* In a chain over several lines, a bad argument is reported at the
       * chain's first line: Lua gives a call instruction the line where
       * its expression starts (an unknown method is caught on its own
       * line, by __index). */
      {"local job = runnel.job(\"j\")\njob:table(\"t\")\n"
       "   :group_by(function(k, v) return v, v end)\n   :count(7)\nreturn job\n",
       "jobs/j.lua:2: count: the store name must be a name of 1 to 200 characters from "
       "[A-Za-z0-9._-], got number"},
      {"local job = runnel.job(\"j\")\n\njob:stream(\"in\")\n   :map_values(42)\nreturn job\n",
       "jobs/j.lua:3: map_values: expected a function for its argument, got number"},
      /* Not about a line: the script as a whole, named. */
      {"local job = runnel.job(\"j\")\njob:stream(\"in\"):to(\"out\")\n",
       "jobs/j.lua: the job script must return the job (return job), got nil"},
      {"local job = runnel.job(\"j\")\njob:stream(\"in\"):to(\"out\")\nreturn 42\n",
       "jobs/j.lua: the job script must return the job (return job), got number"},
      {"local job = runnel.job(\"j\")\nreturn job\n",
       "jobs/j.lua: the job j has no streams or tables"},
      {"local job = runnel.job(\"j\")\nlocal b = job:stream(\"in\"):split()\nreturn job\n",
       "jobs/j.lua: SPLIT-2: split() has no branches"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    topo_job_t *job;
    char err[2048], line[1024];
    int rc = job_load(cases[i].script, &job, err, sizeof err);
    if (rc >= 0) fail_msg("case %zu loaded", i);
    assert_null(job);
    if (strcmp(first_line(err, line, sizeof line), cases[i].want) != 0)
      fail_msg("case %zu:\n  want: %s\n  got:  %s", i, cases[i].want, line);
  }
}

static void test_load_file(void **state) {
  (void)state;
  luavm_options_t vo;
  luavm_options_defaults(&vo);
  topo_job_t *job = NULL;
  char err[2048] = "";
  assert_true(topo_job_load_file("/nonexistent/x.lua", &vo, &job, err, sizeof err) < 0);
  assert_null(job);
  assert_string_equal(err, "/nonexistent/x.lua: cannot read: No such file or directory");

  char path[] = "/tmp/runnel-topo-job-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *script = "local job = runnel.job(\"f\")\njob:stream(\"in\"):nope()\nreturn job\n";
  assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
  close(fd);
  assert_true(topo_job_load_file(path, &vo, &job, err, sizeof err) < 0);
  char want[256], line[1024];
  snprintf(want, sizeof want, "%s:2: unknown method \"nope\" on a stream", path);
  assert_string_equal(first_line(err, line, sizeof line), want);

  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("local job = runnel.job(\"f\")\njob:stream(\"in\"):to(\"out\")\nreturn job\n", f);
  fclose(f);
  assert_int_equal(topo_job_load_file(path, &vo, &job, err, sizeof err), 0);
  snprintf(want, sizeof want, "@%s", path);
  assert_string_equal(job->chunkname, want);
  assert_string_equal(job->name, "f");
  topo_job_free(job);
  unlink(path);
}

/* ---- the description ------------------------------------------------------- */

/* A word count: the key changes, so the count reads a repartition topic
 * in a second sub-topology. */
static const char *const WORDCOUNT =
    "local job = runnel.job(\"wc\")\n"
    "job:stream(\"lines\")\n"
    "   :flat_map_values(function(l) local w = {} for x in l:gmatch(\"%a+\") do w[#w+1] = x end"
    " return w end)\n"
    "   :group_by(function(_, w) return w end)\n"
    "   :count(\"word-counts\")\n"
    "   :to_stream()\n"
    "   :to(\"counts\")\n"
    "return job\n";

static void test_description_of_a_repartitioned_count(void **state) {
  (void)state;
  topo_job_t *job = job_ok(WORDCOUNT);
  assert_string_equal(job->name, "wc");
  assert_string_equal(job->dlq, "wc-dlq");
  assert_true(job->tolerate_errors);
  assert_string_equal(job->chunkname, "@jobs/j.lua");
  assert_int_equal(job->script_len, strlen(WORDCOUNT));
  assert_string_equal(job->script, WORDCOUNT);

  assert_int_equal(job->nsubs, 2);
  assert_int_equal(job->subs[0].id, 0);
  assert_int_equal(job->subs[0].nsources, 1);
  assert_string_equal(job->subs[0].sources[0].topic, "lines");
  assert_false(job->subs[0].sources[0].internal);
  assert_int_equal(job->subs[0].nstores, 0);
  assert_int_equal(job->subs[1].id, 1);
  assert_int_equal(job->subs[1].nsources, 1);
  assert_string_equal(job->subs[1].sources[0].topic, "wc-word-counts-repartition");
  assert_true(job->subs[1].sources[0].internal);
  assert_int_equal(job->subs[1].nstores, 1);
  assert_int_equal(job->subs[1].stores[0], 1);

  assert_int_equal(job->nstores, 1);
  assert_string_equal(job->stores[0].name, "word-counts");
  assert_int_equal(job->stores[0].index, 1);
  assert_string_equal(job->stores[0].changelog, "wc-word-counts-changelog");
  assert_int_equal(job->stores[0].sub, 1);

  assert_int_equal(job->ninternals, 2);
  int seen_changelog = 0, seen_repartition = 0;
  for (int i = 0; i < job->ninternals; i++) {
    if (job->internals[i].changelog) {
      assert_string_equal(job->internals[i].name, "wc-word-counts-changelog");
      seen_changelog++;
    } else {
      assert_string_equal(job->internals[i].name, "wc-word-counts-repartition");
      seen_repartition++;
    }
    assert_int_equal(job->internals[i].sub, 1);
  }
  assert_int_equal(seen_changelog, 1);
  assert_int_equal(seen_repartition, 1);

  /* GET /jobs/{name}: the same facts as JSON. */
  const char *d = job->describe_json;
  assert_non_null(d);
  const char *want[] = {
      "\"name\":\"wc\"",
      "\"dlq\":\"wc-dlq\"",
      "{\"internal\":false,\"topic\":\"lines\"}",
      "{\"internal\":true,\"topic\":\"wc-word-counts-repartition\"}",
      "\"changelog\":\"wc-word-counts-changelog\"",
      "\"kind\":\"REPARTITION-SINK\"",
      "\"kind\":\"FLAT-MAP-VALUES\"",
      "\"topic\":\"counts\"",
      "\"kind\":\"repartition\"",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(d, want[i])) fail_msg("%s not in the description %s", want[i], d);

  /* Lookups. */
  assert_int_equal(topo_job_sub_for_topic(job, "lines"), 0);
  assert_int_equal(topo_job_sub_for_topic(job, "wc-word-counts-repartition"), 1);
  assert_int_equal(topo_job_sub_for_topic(job, "counts"), -1);
  assert_int_equal(topo_job_sub_for_topic(job, "wc-word-counts-changelog"), -1);
  assert_true(topo_job_is_internal(job, "wc-word-counts-repartition"));
  assert_true(topo_job_is_internal(job, "wc-word-counts-changelog"));
  assert_false(topo_job_is_internal(job, "lines"));
  assert_false(topo_job_is_internal(job, "counts"));
  assert_false(topo_job_is_internal(job, "wc-dlq"));
  topo_job_free(job);
}

/* Options, several sources, an explicit repartition, stores of two
 * sub-topologies, and a count without a key change (no repartition). */
static void test_description_of_a_larger_job(void **state) {
  (void)state;
  topo_job_t *job = job_ok(
      "local job = runnel.job(\"big\", { errors_tolerance = \"none\", dlq = \"my-dlq\" })\n"
      "local s = job:stream({ \"a\", \"b\" })\n"
      "s:group_by_key():count(\"direct\")\n"
      "s:repartition{ name = \"again\" }:group_by_key():count(\"after\")\n"
      "job:table(\"users\"):to_stream():to(\"users-out\")\n"
      "return job\n");
  assert_false(job->tolerate_errors);
  assert_string_equal(job->dlq, "my-dlq");
  assert_int_equal(job->nstores, 3);
  assert_int_equal(job->nsubs, 3);

  int sa = topo_job_sub_for_topic(job, "a");
  assert_true(sa >= 0);
  assert_int_equal(topo_job_sub_for_topic(job, "b"), sa);
  int sr = topo_job_sub_for_topic(job, "big-again-repartition");
  assert_true(sr >= 0 && sr != sa);
  int su = topo_job_sub_for_topic(job, "users");
  assert_true(su >= 0 && su != sa && su != sr);
  assert_int_equal(job->subs[sa].nsources, 2);
  assert_true(topo_job_is_internal(job, "big-again-repartition"));
  assert_false(topo_job_is_internal(job, "users"));

  /* Stores by name: their sub-topology, index and changelog. */
  const struct {
    const char *name;
    int sub;
  } want[] = {{"direct", sa}, {"after", sr}, {"users-table", su}};
  for (size_t w = 0; w < 3; w++) {
    const topo_store_t *st = NULL;
    for (int i = 0; i < job->nstores; i++)
      if (strcmp(job->stores[i].name, want[w].name) == 0) st = &job->stores[i];
    if (!st) fail_msg("no store %s", want[w].name);
    assert_int_equal(st->sub, want[w].sub);
    char cl[128];
    snprintf(cl, sizeof cl, "big-%s-changelog", want[w].name);
    assert_string_equal(st->changelog, cl);
    assert_true(topo_job_is_internal(job, cl));
    const topo_sub_t *sub = &job->subs[st->sub];
    assert_int_equal(sub->nstores, 1);
    assert_int_equal(sub->stores[0], st->index);
  }
  /* No repartition topic for the count whose key did not change. */
  assert_int_equal(topo_job_sub_for_topic(job, "big-direct-repartition"), -1);
  assert_int_equal(job->ninternals, 4); /* three changelogs, one repartition */
  topo_job_free(job);
}

/* A job is loaded in a state of its own: the script's globals and
 * print() calls at load time do not leak into a later load. */
static void test_loads_are_independent(void **state) {
  (void)state;
  topo_job_t *a = job_ok("leaked = 1\nlocal job = runnel.job(\"a\")\n"
                         "job:stream(\"in\"):to(\"out\")\nreturn job\n");
  topo_job_t *b;
  char err[2048];
  assert_true(job_load("local job = runnel.job(leaked and \"x\" or \"b\")\n"
                       "job:stream(\"in\"):to(\"out\")\nreturn job\n",
                       &b, err, sizeof err) == 0);
  assert_string_equal(b->name, "b");
  topo_job_free(a);
  topo_job_free(b);
  topo_job_free(NULL);
}

/* ---- joins: sub-topologies, global tables, partition plans --------------- */

typedef struct {
  const char *topic;
  int partitions;
} fake_topic_t;

static int fake_partitions(void *opaque, const char *topic) {
  for (const fake_topic_t *t = opaque; t->topic; t++)
    if (strcmp(t->topic, topic) == 0) return t->partitions;
  return -1;
}

static const char *join_script =
    "local job = runnel.job(\"j\")\n"
    "local users = job:table(\"users\", { store = \"users\" })\n"
    "local products = job:global_table(\"products\", { store = \"products\" })\n"
    "job:stream(\"clicks\")\n"
    "   :select_key(function(_, v) return v end)\n"
    "   :join(users, function(c, u) return c .. u end, { name = \"by-user\" })\n"
    "   :join(products, function(k) return k end, function(a, b) return a .. b end)\n"
    "   :to(\"out\")\n"
    "return job\n";

static void test_join_description(void **state) {
  (void)state;
  topo_job_t *job = job_ok(join_script);
  /* clicks -> repartition | (repartition + users) join -> global join */
  assert_int_equal(job->nsubs, 2);
  int joined = topo_job_sub_for_topic(job, "users");
  assert_int_equal(topo_job_sub_for_topic(job, "j-by-user-repartition"), joined);
  assert_int_not_equal(topo_job_sub_for_topic(job, "clicks"), joined);
  /* The global table is no source of any sub-topology; the joining one
   * lists it, and it has no changelog. */
  assert_int_equal(topo_job_sub_for_topic(job, "products"), -1);
  int g = topo_job_global_for_topic(job, "products");
  assert_true(g > 0);
  assert_null(job->stores[g - 1].changelog);
  assert_int_equal(job->stores[g - 1].sub, -1);
  assert_int_equal(job->subs[joined].nglobals, 1);
  assert_int_equal(job->subs[joined].globals[0], g);
  assert_int_equal(job->subs[1 - joined].nglobals, 0);
  for (int i = 0; i < job->ninternals; i++)
    assert_string_not_equal(job->internals[i].name, "j-products-changelog");
  topo_job_free(job);
}

static void test_join_plan(void **state) {
  (void)state;
  topo_job_t *job = job_ok(join_script);
  topo_plan_t plan;
  char err[512];
  /* clicks has 4 partitions, users 2: the repartition topic gets the
   * table's 2 (the sub-topology it is read in), the global table any. */
  fake_topic_t ok[] = {{"clicks", 4}, {"users", 2}, {"products", 7}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, ok, &plan, err, sizeof err), 0);
  int joined = topo_job_sub_for_topic(job, "users");
  assert_int_equal(plan.sub_partitions[joined], 2);
  assert_int_equal(plan.sub_partitions[1 - joined], 4);
  assert_int_equal(plan.user_max, 4);
  for (int i = 0; i < job->ninternals; i++) {
    int want = job->internals[i].sub == joined ? 2 : 4;
    assert_int_equal(topo_job_internal_partitions(job, &plan, i), want);
  }
  topo_job_plan_free(&plan);
  /* A missing global topic is named. */
  fake_topic_t nog[] = {{"clicks", 4}, {"users", 2}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, nog, &plan, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "the global table topic products does not exist"));
  topo_job_free(job);

  /* A stream-table join without a key change: same sub-topology, and the
   * counts must agree; the error names both topics and both counts. */
  job = job_ok("local job = runnel.job(\"o\")\n"
               "local c = job:table(\"customers\")\n"
               "job:stream(\"orders\"):join(c, function(a, b) return a .. b end):to(\"x\")\n"
               "return job\n");
  assert_int_equal(job->nsubs, 1);
  fake_topic_t bad[] = {{"orders", 3}, {"customers", 2}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, bad, &plan, err, sizeof err), -EINVAL);
  assert_string_equal(err, "jobs/j.lua:3: job o: topics orders (3 partitions) and customers (2 "
                           "partitions) are joined and must have the same number of partitions "
                           "(co-partitioning)");
  fake_topic_t good[] = {{"orders", 3}, {"customers", 3}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, good, &plan, err, sizeof err), 0);
  assert_int_equal(plan.sub_partitions[0], 3);
  topo_job_plan_free(&plan);
  topo_job_free(job);

  /* Merged topics are not co-partitioned (Kafka Streams checks joins
   * only): one task per partition of the largest. */
  job = job_ok("local job = runnel.job(\"m\")\n"
               "job:stream(\"a\"):merge(job:stream({\"b\", \"c\"})):to(\"x\")\n"
               "return job\n");
  assert_int_equal(job->nsubs, 1);
  fake_topic_t merged[] = {{"a", 2}, {"b", 3}, {"c", 1}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, merged, &plan, err, sizeof err), 0);
  assert_int_equal(plan.sub_partitions[0], 3);
  topo_job_plan_free(&plan);
  topo_job_free(job);

  /* A stream-stream join of a merge: all three topics are one group. */
  job = job_ok("local job = runnel.job(\"s\")\n"
               "local ab = job:stream(\"a\"):merge(job:stream(\"b\"))\n"
               "ab:join(job:stream(\"c\"), function(x, y) return x end, { within = 10 })\n"
               "  :to(\"x\")\nreturn job\n");
  fake_topic_t sbad[] = {{"a", 2}, {"b", 2}, {"c", 3}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, sbad, &plan, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "jobs/j.lua:3: job s: topics "));
  assert_non_null(strstr(err, "c (3 partitions)"));
  fake_topic_t sgood[] = {{"a", 2}, {"b", 2}, {"c", 2}, {NULL, 0}};
  assert_int_equal(topo_job_plan(job, fake_partitions, sgood, &plan, err, sizeof err), 0);
  assert_int_equal(plan.sub_partitions[0], 2);
  topo_job_plan_free(&plan);
  topo_job_free(job);
}

static void test_join_build_errors(void **state) {
  (void)state;
  static const struct {
    const char *script, *want;
  } cases[] = {
      {"local job = runnel.job(\"j\")\nlocal s = job:stream(\"a\")\n"
       "s:join(42, function() end)\nreturn job\n",
       "jobs/j.lua:3: join: expected a stream, a table or a global table to join with, got number"},
      {"local job = runnel.job(\"j\")\nlocal t = job:table(\"t\")\n"
       "t:join(job:stream(\"a\"), function() end)\nreturn job\n",
       "jobs/j.lua:3: join: expected a table to join with, got a stream"},
      {"local job = runnel.job(\"j\")\nlocal t = job:table(\"t\")\n"
       "local s = job:stream(\"a\"):select_key(function(k) return k end)\n"
       "s:join(t, function() end)\ns:left_join(t, function() end)\nreturn job\n",
       "jobs/j.lua:5: left_join: the join name \"a-t-table-join\" is used twice; give the join a "
       "name: { name = \"...\" }"},
      {"local job = runnel.job(\"j\")\nlocal g = job:global_table(\"g\")\n"
       "job:stream(\"a\"):join(g, function() end)\nreturn job\n",
       "jobs/j.lua:3: join: a global table join takes a key function and a joiner: "
       "join(global, fn(key, value) -> the global table's key, fn(value, row) -> joined); only "
       "one function was given"},
      {"local job = runnel.job(\"j\")\n"
       "job:stream(\"c\"):window{ tumbling = \"1m\" }:count(\"n\")\nreturn job\n",
       "jobs/j.lua:2: unknown method \"window\" on a stream (call group_by_key() or group_by() "
       "first)"},
      {"local job = runnel.job(\"j\")\nlocal t = job:stream(\"c\"):group_by_key()\n"
       "  :window{ tumbling = \"1m\" }:count(\"n\")\n"
       "t:suppress{ [\"until\"] = \"window_close\" }:to_stream():filter(function() return true end)\n"
       "  :to(\"o\", { key = \"string\" })\nreturn job\n",
       "jobs/j.lua:4: to: the keys of a windowed table are { key = K, start = ms, [\"end\"] = ms }, "
       "which the string serde cannot write: use the default or json serde, or map the key first "
       "(map or select_key)"},
      {"local job = runnel.job(\"j\")\nlocal t = job:table(\"t\")\n"
       "job:global_table(\"t\")\nreturn job\n",
       "jobs/j.lua:3: global_table: the topic \"t\" is already a source of this job"},
      {"local job = runnel.job(\"j\")\nlocal a, b = job:stream(\"a\"), job:stream(\"b\")\n"
       "a:join(b, function() end)\nreturn job\n",
       "jobs/j.lua:3: join: a stream-stream join needs { within = duration }, e.g. { within = \"5m\" }"},
      {"local job = runnel.job(\"j\")\nlocal a, b = job:stream(\"a\"), job:stream(\"b\")\n"
       "a:left_join(b, function() end, { within = \"5x\" })\nreturn job\n",
       "jobs/j.lua:3: left_join: within must be milliseconds or a duration like \"500ms\", \"10s\", "
       "\"5m\", \"1h\", \"1d\", got \"5x\""},
      {"local job = runnel.job(\"j\")\nlocal a = job:stream(\"a\")\n"
       "a:outer_join(job:table(\"t\"), function() end)\nreturn job\n",
       "jobs/j.lua:3: outer_join: a stream outer-joins a stream only (Kafka Streams has no "
       "stream-table outer join)"},
      {"local job = runnel.job(\"j\")\nlocal a, b = job:stream(\"a\"), job:stream(\"b\")\n"
       "a:join(b, function() end, { within = 5, late = \"keep\" })\nreturn job\n",
       "jobs/j.lua:3: join: late must be \"drop\" or \"dlq\", got keep"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    topo_job_t *job;
    char err[2048], line[2048];
    assert_int_not_equal(job_load(cases[i].script, &job, err, sizeof err), 0);
    assert_null(job);
    assert_string_equal(first_line(err, line, sizeof line), cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_errors_name_file_and_line),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_description_of_a_repartitioned_count),
      cmocka_unit_test(test_description_of_a_larger_job),
      cmocka_unit_test(test_loads_are_independent),
      cmocka_unit_test(test_join_description),
      cmocka_unit_test(test_join_plan),
      cmocka_unit_test(test_join_build_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
