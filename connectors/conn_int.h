/*
 * conn_int.h: internals shared by the built-in connectors, transforms and
 * the framework: the plugin symbols the registry lists, and JSON helpers on
 * yajl's tree (parse with file:line:col errors, write a value back as text,
 * a config map from a parsed object).
 *
 * Not a public interface: plugins outside connectors/ use connector.h.
 */
#ifndef RUNNEL_CONN_INT_H
#define RUNNEL_CONN_INT_H

#include "connector.h"

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* ---- the built-in connector plugins (listed in conn_registry.c) --------- */

extern const conn_plugin_t conn_file_source_plugin, conn_file_sink_plugin,
    conn_sqlite_source_plugin, conn_sqlite_sink_plugin, conn_postgres_source_plugin,
    conn_postgres_sink_plugin;

/* ---- JSON (conn_json.c) --------------------------------------------------- */

/* Parses len bytes of JSON text (need not be NUL-terminated) into a yajl
 * tree, which the caller frees with yajl_tree_free. On a syntax error
 * returns NULL with err set to "<where>:<line>:<col>: <yajl's message>"
 * (line and column 1-based, of the byte where yajl stopped); a NUL byte in
 * the text is an error too. where may be NULL (no prefix). */
yajl_val conn_json_parse(const char *where, const char *text, size_t len, char *err,
                         size_t errlen);

/* The same for one line of a file (JSON Lines): errors read
 * "<file>:<line>:<col>: ...", line being the file's line number. */
yajl_val conn_json_parse_line(const char *file, int64_t line, const char *text, size_t len,
                              char *err, size_t errlen);

/* Writes v into g (numbers verbatim as their source text). Returns 0, or
 * -1 when g refuses (too deep). */
int conn_json_gen(yajl_gen g, yajl_val v);

/* v as a malloc'd, NUL-terminated JSON text (*len its length when len is
 * not NULL), or NULL on ENOMEM. A string value is returned as a JSON
 * string (quoted); use conn_json_scalar for the bare text. */
char *conn_json_text(yajl_val v, size_t *len);
/* The generator's text as a malloc'd NUL-terminated string (*len, which
 * may be NULL, gets its length); NULL on error or ENOMEM. Frees g (NULL:
 * returns NULL). */
char *conn_json_take(yajl_gen g, size_t *len);

/* The bare text of a scalar: a string's characters, a number's source
 * text, "true"/"false", or NULL for null, objects and arrays. Borrowed
 * from v. */
const char *conn_json_scalar(yajl_val v);

/* Writes the decimal text of v (what printf's %lld writes, at most 20
 * bytes, no NUL) at dst; returns its length. By hand, without printf: it
 * runs per record (source offsets, COPY text). */
size_t conn_fmt_i64(char *dst, int64_t v);
size_t conn_fmt_u64(char *dst, uint64_t v);

/* The member key of object obj, or NULL (also when obj is not an object).
 * A dotted key is looked up as given, not as a path. */
yajl_val conn_json_member(yajl_val obj, const char *key);

/* Fills af so that yajl allocates from p (conn_pool.c). */
void conn_pool_yajl(conn_pool_t *p, yajl_alloc_funcs *af);

/* ---- the file source's JSON lines (conn_file_json.c) ------------------- */

/* A line checker of one file source; key_field and ts_field (either may be
 * NULL) are borrowed and must outlive it. NULL: out of memory. */
typedef struct conn_file_json conn_file_json_t;
conn_file_json_t *conn_file_json_new(const char *key_field, const char *ts_field);
void conn_file_json_free(conn_file_json_t *c);

/* Checks that len bytes of text (one line of file, line number `line`) are
 * one JSON value, and sets r's key from the top-level field key_field (a
 * string's characters, other values as JSON text; absent or null: no key)
 * and r's timestamp from ts_field (epoch ms or ISO-8601; *ts_bad is set
 * when the field is there but is neither).
 * Returns 1, 0 for a malformed line (err "<file>:<line>:<col>: ...", r's
 * key and timestamp left null), or CONN_E_FAIL (out of memory). */
int conn_file_json_line(conn_file_json_t *c, const char *file, int64_t line, const char *text,
                        size_t len, conn_record_t *r, bool *ts_bad, char *err, size_t errlen);

/* Parses an ISO-8601 date-time, YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]
 * (a space may replace the T; no zone means UTC), into ms since the epoch.
 * Returns 0 or -1. */
int conn_file_parse_iso(const char *s, int64_t *out);

/* ---- config maps from a parsed JSON object (conn_config.c) -------------- */

/* Adds obj's members to c as conn_config_from_json does (strings kept,
 * numbers and booleans in their JSON text form, null members skipped).
 * Errors name where and the key: "<where>: \"k\": expected a string, number
 * or boolean, got an object". Returns 0 or -1. */
int conn_config_from_tree(conn_config_t *c, const char *where, yajl_val obj, char *err,
                          size_t errlen);

/* The def named key in defs, or NULL. */
const conn_def_t *conn_def_find(const conn_def_t *defs, const char *key);

#endif
