/*
 * topo_job.c: loading a job script into a description (topo_job_t): which
 * sub-topologies read which topics, which stores and internal topics
 * exist. The script runs once here, in a state of its own, so that every
 * syntax and build error is reported when the job is submitted, before any
 * task starts.
 */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo_int.h"

static char *topo_dup_field(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  const char *s = lua_tostring(L, -1);
  char *copy = s ? strdup(s) : NULL;
  lua_pop(L, 1);
  return copy;
}

static int topo_int_field(lua_State *L, int idx, const char *field, int dflt) {
  lua_getfield(L, idx, field);
  int v = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

static int64_t topo_i64_field(lua_State *L, int idx, const char *field, int64_t dflt) {
  lua_getfield(L, idx, field);
  int64_t v = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

static bool topo_bool_field(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Reads desc.subtopologies, desc.stores, desc.internal_topics. */
static int topo_read_description(lua_State *L, int d, topo_job_t *job) {
  job->name = topo_dup_field(L, d, "name");
  job->dlq = topo_dup_field(L, d, "dlq");
  char *tol = topo_dup_field(L, d, "errors_tolerance");
  job->tolerate_errors = !tol || strcmp(tol, "none") != 0;
  free(tol);

  lua_getfield(L, d, "subtopologies");
  job->nsubs = (int)luaL_len(L, -1);
  job->subs = calloc((size_t)job->nsubs + 1, sizeof *job->subs);
  for (int i = 0; i < job->nsubs; i++) {
    lua_rawgeti(L, -1, i + 1);
    int s = lua_gettop(L);
    topo_sub_t *sub = &job->subs[i];
    sub->id = topo_int_field(L, s, "id", i);
    lua_getfield(L, s, "sources");
    sub->nsources = (int)luaL_len(L, -1);
    sub->sources = calloc((size_t)sub->nsources + 1, sizeof *sub->sources);
    for (int j = 0; j < sub->nsources; j++) {
      lua_rawgeti(L, -1, j + 1);
      sub->sources[j].topic = topo_dup_field(L, lua_gettop(L), "topic");
      lua_getfield(L, -1, "internal");
      sub->sources[j].internal = lua_toboolean(L, -1);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    lua_getfield(L, s, "copartition");
    sub->ncoparts = lua_istable(L, -1) ? (int)luaL_len(L, -1) : 0;
    sub->coparts = calloc((size_t)sub->ncoparts + 1, sizeof *sub->coparts);
    for (int j = 0; j < sub->ncoparts; j++) {
      lua_rawgeti(L, -1, j + 1);
      topo_copart_t *g = &sub->coparts[j];
      g->where = topo_dup_field(L, lua_gettop(L), "where");
      lua_getfield(L, -1, "topics");
      g->ntopics = (int)luaL_len(L, -1);
      g->topics = calloc((size_t)g->ntopics + 1, sizeof *g->topics);
      for (int k = 0; k < g->ntopics; k++) {
        lua_rawgeti(L, -1, k + 1);
        const char *t = lua_tostring(L, -1);
        g->topics[k] = strdup(t ? t : "");
        lua_pop(L, 1);
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    lua_getfield(L, s, "globals");
    sub->nglobals = lua_istable(L, -1) ? (int)luaL_len(L, -1) : 0;
    sub->globals = calloc((size_t)sub->nglobals + 1, sizeof *sub->globals);
    for (int j = 0; j < sub->nglobals; j++) {
      lua_rawgeti(L, -1, j + 1);
      sub->globals[j] = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, d, "stores");
  job->nstores = (int)luaL_len(L, -1);
  job->stores = calloc((size_t)job->nstores + 1, sizeof *job->stores);
  for (int i = 0; i < job->nstores; i++) {
    lua_rawgeti(L, -1, i + 1);
    int s = lua_gettop(L);
    job->stores[i].name = topo_dup_field(L, s, "name");
    job->stores[i].changelog = topo_dup_field(L, s, "changelog");
    job->stores[i].index = topo_int_field(L, s, "index", i + 1);
    job->stores[i].sub = topo_int_field(L, s, "subtopology", 0);
    job->stores[i].global_topic = topo_dup_field(L, s, "global_topic");
    job->stores[i].window = topo_bool_field(L, s, "window");
    job->stores[i].retention = topo_i64_field(L, s, "retention", 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  /* desc.punctuators: { id, subtopology, interval, type } */
  lua_getfield(L, d, "punctuators");
  if (lua_istable(L, -1)) {
    job->npuncts = (int)luaL_len(L, -1);
    job->puncts = calloc((size_t)job->npuncts + 1, sizeof *job->puncts);
    for (int i = 0; i < job->npuncts; i++) {
      lua_rawgeti(L, -1, i + 1);
      int s = lua_gettop(L);
      job->puncts[i].id = topo_int_field(L, s, "id", i + 1);
      job->puncts[i].sub = topo_int_field(L, s, "subtopology", 0);
      job->puncts[i].interval = topo_i64_field(L, s, "interval", 0);
      char *type = topo_dup_field(L, s, "type");
      job->puncts[i].wall_clock = type && strcmp(type, "wall_clock") == 0;
      free(type);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* Each sub-topology's store indexes. */
  for (int i = 0; i < job->nsubs; i++) {
    topo_sub_t *sub = &job->subs[i];
    sub->stores = calloc((size_t)job->nstores + 1, sizeof *sub->stores);
    for (int j = 0; j < job->nstores; j++)
      if (job->stores[j].sub == sub->id) sub->stores[sub->nstores++] = job->stores[j].index;
  }

  lua_getfield(L, d, "internal_topics");
  job->ninternals = (int)luaL_len(L, -1);
  job->internals = calloc((size_t)job->ninternals + 1, sizeof *job->internals);
  for (int i = 0; i < job->ninternals; i++) {
    lua_rawgeti(L, -1, i + 1);
    int s = lua_gettop(L);
    job->internals[i].name = topo_dup_field(L, s, "name");
    char *kind = topo_dup_field(L, s, "kind");
    job->internals[i].changelog = kind && strcmp(kind, "changelog") == 0;
    free(kind);
    job->internals[i].sub = topo_int_field(L, s, "subtopology", 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return job->name && job->dlq ? 0 : -1;
}

int topo__job_describe(lua_State *L, int d, topo_job_t *job, char *err, size_t errlen) {
  if (topo_read_description(L, d, job) != 0) {
    snprintf(err, errlen, "the compiled job has no name");
    return -EINVAL;
  }
  char *json = NULL;
  size_t cap = 0, jlen = 0;
  if (luavm_json_encode(L, d, &json, &cap, &jlen, err, errlen) != 0) {
    free(json);
    return -EINVAL;
  }
  job->describe_json = json;
  return 0;
}

int topo_job_load(const char *chunkname, const char *script, size_t len,
                  const luavm_options_t *vm_options, topo_job_t **out, char *err, size_t errlen) {
  topo_job_t *job = calloc(1, sizeof *job);
  if (!job) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  job->vm_options = *vm_options;
  job->chunkname = strdup(chunkname);
  job->script = malloc(len + 1);
  if (!job->chunkname || !job->script) {
    topo_job_free(job);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  memcpy(job->script, script, len);
  job->script[len] = '\0';
  job->script_len = len;

  topo_ctx_t ctx = {0};
  luavm_t *vm;
  int rc = topo__vm_open(vm_options, chunkname, script, len, &ctx, &vm, err, errlen);
  if (rc != 0) {
    topo_job_free(job);
    return rc;
  }
  lua_State *L = luavm_state(vm);
  lua_pop(L, 1); /* entries */
  rc = topo__job_describe(L, lua_gettop(L), job, err, errlen);
  luavm_free(vm);
  free(ctx.extra);
  free(ctx.extra_buf);
  if (rc != 0) {
    topo_job_free(job);
    return rc;
  }
  *out = job;
  return 0;
}

int topo_job_load_file(const char *path, const luavm_options_t *vm_options, topo_job_t **out,
                       char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
    return -e;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 16384;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  fclose(f);
  char chunk[4200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  int rc = topo_job_load(chunk, buf ? buf : "", len, vm_options, out, err, errlen);
  free(buf);
  return rc;
}

void topo_job_free(topo_job_t *job) {
  if (!job) return;
  for (int i = 0; i < job->nsubs; i++) {
    for (int j = 0; j < job->subs[i].nsources; j++) free(job->subs[i].sources[j].topic);
    free(job->subs[i].sources);
    free(job->subs[i].stores);
    free(job->subs[i].globals);
    for (int j = 0; j < job->subs[i].ncoparts; j++) {
      topo_copart_t *g = &job->subs[i].coparts[j];
      for (int k = 0; k < g->ntopics; k++) free(g->topics[k]);
      free(g->topics);
      free(g->where);
    }
    free(job->subs[i].coparts);
  }
  free(job->subs);
  for (int i = 0; i < job->nstores; i++) {
    free(job->stores[i].name);
    free(job->stores[i].changelog);
    free(job->stores[i].global_topic);
  }
  free(job->stores);
  for (int i = 0; i < job->ninternals; i++) free(job->internals[i].name);
  free(job->internals);
  free(job->puncts);
  free(job->name);
  free(job->dlq);
  free(job->chunkname);
  free(job->script);
  free(job->describe_json);
  free(job);
}

int topo_job_sub_for_topic(const topo_job_t *job, const char *topic) {
  for (int i = 0; i < job->nsubs; i++)
    for (int j = 0; j < job->subs[i].nsources; j++)
      if (strcmp(job->subs[i].sources[j].topic, topic) == 0) return i;
  return -1;
}

int topo_job_global_for_topic(const topo_job_t *job, const char *topic) {
  for (int i = 0; i < job->nstores; i++)
    if (job->stores[i].global_topic && strcmp(job->stores[i].global_topic, topic) == 0)
      return job->stores[i].index;
  return 0;
}

bool topo_job_is_internal(const topo_job_t *job, const char *topic) {
  for (int i = 0; i < job->ninternals; i++)
    if (strcmp(job->internals[i].name, topic) == 0) return true;
  return false;
}

/* ---- partition counts ------------------------------------------------------ */

int topo_job_plan(const topo_job_t *job, int (*partitions)(void *opaque, const char *topic),
                  void *opaque, topo_plan_t *plan, char *err, size_t errlen) {
  plan->user_max = 0;
  plan->sub_partitions = calloc((size_t)job->nsubs + 1, sizeof *plan->sub_partitions);
  plan->join_partitions = calloc((size_t)job->nsubs + 1, sizeof *plan->join_partitions);
  if (!plan->sub_partitions || !plan->join_partitions) {
    topo_job_plan_free(plan);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  for (int s = 0; s < job->nsubs; s++) {
    for (int i = 0; i < job->subs[s].nsources; i++) {
      const topo_source_t *src = &job->subs[s].sources[i];
      if (src->internal) continue;
      int n = partitions(opaque, src->topic);
      if (n < 0) {
        snprintf(err, errlen, "job %s: the source topic %s does not exist (create it with "
                 "runnel topics create %s)", job->name, src->topic, src->topic);
        topo_job_plan_free(plan);
        return -ENOENT;
      }
      if (n > plan->user_max) plan->user_max = n;
    }
  }
  for (int i = 0; i < job->nstores; i++) {
    const char *g = job->stores[i].global_topic;
    if (g && partitions(opaque, g) < 0) {
      snprintf(err, errlen, "job %s: the global table topic %s does not exist (create it with "
               "runnel topics create %s)", job->name, g, g);
      topo_job_plan_free(plan);
      return -ENOENT;
    }
  }
  /* A sub-topology runs one task per partition of its largest source
   * topic; a task for partition p reads every source topic that has a
   * partition p (Kafka Streams: merged topics need not be co-partitioned). */
  for (int s = 0; s < job->nsubs; s++) {
    int most = -1;
    for (int i = 0; i < job->subs[s].nsources; i++) {
      const topo_source_t *src = &job->subs[s].sources[i];
      if (src->internal) continue;
      int n = partitions(opaque, src->topic);
      if (n > most) most = n;
    }
    plan->sub_partitions[s] = most >= 0 ? most : plan->user_max;
  }
  /* Co-partitioning: the user topics that one join reads together. */
  for (int s = 0; s < job->nsubs; s++) {
    plan->join_partitions[s] = -1;
    for (int c = 0; c < job->subs[s].ncoparts; c++) {
      const topo_copart_t *g = &job->subs[s].coparts[c];
      int first = -1;
      const char *first_topic = NULL;
      for (int i = 0; i < g->ntopics; i++) {
        if (topo_job_is_internal(job, g->topics[i])) continue;
        int n = partitions(opaque, g->topics[i]);
        if (first < 0) {
          first = n;
          first_topic = g->topics[i];
        } else if (n != first) {
          snprintf(err, errlen, "%sjob %s: topics %s (%d partitions) and %s (%d partitions) are "
                   "joined and must have the same number of partitions (co-partitioning)",
                   g->where ? g->where : "", job->name, first_topic, first, g->topics[i], n);
          topo_job_plan_free(plan);
          return -EINVAL;
        }
      }
      if (first > 0 && plan->join_partitions[s] <= 0) plan->join_partitions[s] = first;
    }
  }
  return 0;
}

void topo_job_plan_free(topo_plan_t *plan) {
  free(plan->sub_partitions);
  free(plan->join_partitions);
  plan->sub_partitions = NULL;
  plan->join_partitions = NULL;
}

int topo_job_internal_partitions(const topo_job_t *job, const topo_plan_t *plan, int internal) {
  int sub = job->internals[internal].sub;
  if (sub < 0 || sub >= job->nsubs) return plan->user_max;
  /* A repartition topic that a join reads takes the partition count of
   * the user topics joined with it, as Kafka Streams sizes the repartition
   * topics of a copartition group. */
  if (plan->join_partitions[sub] > 0) {
    for (int c = 0; c < job->subs[sub].ncoparts; c++) {
      const topo_copart_t *g = &job->subs[sub].coparts[c];
      for (int i = 0; i < g->ntopics; i++)
        if (strcmp(g->topics[i], job->internals[internal].name) == 0)
          return plan->join_partitions[sub];
    }
  }
  return plan->sub_partitions[sub];
}
