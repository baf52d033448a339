/*
 * conn_transform_int.h: internals shared by the built-in transforms, the
 * predicates and the chain (conn__ prefix).
 *
 * JSON keys and values. Kafka Connect's SMTs work on schemaless maps; ours
 * work on yajl trees (yajl_tree.h) parsed from the record's key or value
 * bytes. A chain of several field transforms should not parse and
 * re-generate the value once per transform, so the parsed trees live in a
 * "JSON scope" bound to one record while a chain runs:
 *
 *   conn__json_get    parses the side (key or value) once per scope; later
 *                     transforms get the same tree;
 *   conn__json_set    replaces the side's tree (the bytes are now stale);
 *   conn__json_touch  says the tree was changed in place (same);
 *   conn__json_flush  writes stale trees back as bytes (yajl_gen).
 *
 * The chain binds a scope around the whole chain, flushes it before a
 * transform that reads the bytes itself (any plugin that is not built in,
 * such as `lua`) and drops it afterwards, since such a plugin may change
 * the bytes. A built-in transform called on its own (tests, or a caller
 * without a chain) gets a scope of its own through conn__json_run. The
 * binding is thread-local: a chain runs on one task thread at a time.
 *
 * Memory: every node of a record's trees (parsed or built by a transform)
 * comes from the scope's arena, a bump allocator emptied when the scope
 * moves to the next record, so a chain does no malloc/free per JSON value
 * (yajl_tree_parse's per-node allocations were most of a transform's
 * cost). Nodes have yajl_tree's layout (struct yajl_val_s), so
 * conn_json_gen and conn_json_member (conn_int.h) read them; they must
 * never be given to yajl_tree_free. Numbers carry their text (u.number.r)
 * only; i, d and flags are not set by the parser. The key and value
 * arrays of objects and arrays have room for a power of two (at least 4)
 * of entries, so that appending is amortised.
 */
#ifndef RUNNEL_CONN_TRANSFORM_INT_H
#define RUNNEL_CONN_TRANSFORM_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "conn_int.h"
#include "connector.h"

/* printf into a caller's error buffer (err may be NULL). Returns -1, so
 * that `return conn__terr(err, len, ...)` reads as a failure. */
int conn__terr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- JSON scope ------------------------------------------------------------ */

typedef enum { CONN__KEY = 0, CONN__VALUE = 1 } conn__side_t;

typedef struct {
  yajl_val tree; /* parsed or set tree; NULL with `null` set: a null side */
  bool parsed;   /* tree (or null) reflects the side */
  bool null;     /* the side is a null key/value (no bytes) */
  bool stale;    /* the record's bytes are older than tree */
} conn__jslot_t;

/* A bump allocator: chunks of at least 16 KiB; reset keeps the first. */
typedef struct conn__chunk conn__chunk_t;
typedef struct {
  conn__chunk_t *first, *cur;
} conn__arena_t;

/* The parser's stack of open containers (reused across records). */
typedef struct {
  yajl_val *open;
  char **key; /* the pending key of each open object */
  size_t depth, cap;
} conn__jstack_t;

typedef struct {
  conn_record_t *rec; /* the record the slots describe */
  conn__jslot_t slot[2];
  conn__arena_t arena; /* every node of the slots' trees */
  conn__jstack_t stack;
  yajl_gen gen;       /* reused across records (NULL until first flush) */
} conn__jscope_t;

void conn__jscope_init(conn__jscope_t *s);
/* Frees the trees and the generator. */
void conn__jscope_free(conn__jscope_t *s);
/* Binds s to rec on this thread (dropping trees of an earlier record). */
void conn__jscope_bind(conn__jscope_t *s, conn_record_t *rec);
/* Unbinds, freeing the trees (without flushing). */
void conn__jscope_unbind(conn__jscope_t *s);
/* Forgets the trees (emptying the arena) but stays bound: after a plugin
 * that may change the bytes. */
void conn__jscope_drop(conn__jscope_t *s);

/* The tree of rec's side in *out, owned by the scope (valid until the scope
 * is dropped or moves on; a transform may change it in place and then
 * calls conn__json_touch). *out is NULL for a null key/value. When the
 * bytes are not JSON: with as_string, *out is a JSON string holding the
 * bytes (HoistField wraps plain text lines); otherwise -1 with "<side> is
 * not JSON (<line:col: reason>)" in err. Nesting deeper than
 * CONN__JSON_MAX_DEPTH is refused like a syntax error. */
#define CONN__JSON_MAX_DEPTH 128
int conn__json_get(conn_record_t *rec, conn__side_t side, bool as_string, yajl_val *out,
                   char *err, size_t errlen);
/* Makes tree (from the scope's arena; NULL: a null key/value) the side's
 * tree. */
void conn__json_set(conn_record_t *rec, conn__side_t side, yajl_val tree);
/* The side's tree was modified in place. */
void conn__json_touch(conn_record_t *rec, conn__side_t side);
/* Writes stale sides back into the record. Returns 0 or -1 (ENOMEM, or a
 * tree yajl_gen refuses) with err. */
int conn__json_flush(conn__jscope_t *s, char *err, size_t errlen);

/* Runs fn(state, rec) inside a JSON scope: the chain's when one is bound
 * to rec, else a scope of its own that is flushed when fn keeps the
 * record. Every built-in transform that reads keys or values goes through
 * this. */
int conn__json_run(int (*fn)(void *state, conn_record_t *rec, char *err, size_t errlen),
                   void *state, conn_record_t *rec, char *err, size_t errlen);

/* "key" or "value". */
const char *conn__side_name(conn__side_t side);
/* "object", "array", "string", "number", "boolean", "null". */
const char *conn__json_type_name(yajl_val v);

/* ---- building trees (in the arena; all return NULL on ENOMEM) ------------- */

/* The arena of the scope bound to rec (NULL when none is: outside
 * conn__json_run, which cannot happen in a built-in transform). */
conn__arena_t *conn__json_arena(conn_record_t *rec);
void *conn__arena_alloc(conn__arena_t *a, size_t n);

yajl_val conn__jv_new(conn__arena_t *a, yajl_type type); /* true/false/null, or empty object/array */
yajl_val conn__jv_string(conn__arena_t *a, const char *s, size_t len);
yajl_val conn__jv_int(conn__arena_t *a, int64_t i);
yajl_val conn__jv_double(conn__arena_t *a, double d);
/* A deep copy of v (NULL stays NULL). */
yajl_val conn__jv_copy(conn__arena_t *a, yajl_val v);
/* Sets key in obj to v, replacing an existing value. Returns 0 or -ENOMEM
 * (also when v is NULL: a builder that failed). */
int conn__jv_put(conn__arena_t *a, yajl_val obj, const char *key, yajl_val v);
/* Removes key from obj and returns its value, or NULL. */
yajl_val conn__jv_take(yajl_val obj, const char *key);

/* ---- regular expressions ---------------------------------------------------- */

/* A POSIX extended regular expression matched against a whole string, as
 * Java's Matcher.matches() is in Kafka's RegexRouter and TopicNameMatches.
 * Compiled once; matching allocates nothing. */
typedef struct {
  regex_t re;
  size_t groups; /* the user's groups */
  bool compiled;
} conn__regex_t;

/* Returns 0, or -1 with "invalid regular expression '<p>': <reason>". */
int conn__regex_compile(conn__regex_t *r, const char *pattern, char *err, size_t errlen);
void conn__regex_free(conn__regex_t *r);
/* True when s matches as a whole; m (when not NULL) gets groups 0..groups
 * (m must hold groups + 1 entries). */
bool conn__regex_matches(const conn__regex_t *r, const char *s, regmatch_t *m);

/* ---- config -------------------------------------------------------------- */

/* Validator for required lists: at least one non-blank item. */
int conn__tv_nonempty_list(const char *value, char *msg, size_t len);
/* Validator for strings that must not be empty. */
int conn__tv_nonempty(const char *value, char *msg, size_t len);

/* ---- the built-in plugins -------------------------------------------------- */

extern const conn_transform_plugin_t conn__insert_field_key, conn__insert_field_value;
extern const conn_transform_plugin_t conn__replace_field_key, conn__replace_field_value;
extern const conn_transform_plugin_t conn__mask_field_key, conn__mask_field_value;
extern const conn_transform_plugin_t conn__value_to_key;
extern const conn_transform_plugin_t conn__extract_field_key, conn__extract_field_value;
extern const conn_transform_plugin_t conn__hoist_field_key, conn__hoist_field_value;
extern const conn_transform_plugin_t conn__regex_router, conn__timestamp_router;
extern const conn_transform_plugin_t conn__filter;

/* True for the built-in transforms (they use the JSON scope and never
 * touch key/value bytes behind its back). */
bool conn__transform_builtin(const conn_transform_plugin_t *t);

#endif
