/*
 * config.h: declarative configuration tables, in the manner of Fluent Bit's
 * config maps. A table of config_def_t says, for each key, its type,
 * default, bounds and documentation, and where its value lives in a C
 * struct; parsing, validation, defaults and the docs/configuration.md
 * tables all come from that one table.
 *
 * Keys are Kafka-style dotted names ("log.segment.bytes"). A JSON file may
 * give them flat ({"log.segment.bytes": 1048576}) or nested
 * ({"log": {"segment.bytes": 1048576}}); both name the same key path.
 * Integer and boolean keys also accept their value as a JSON string
 * ("1048576", "true"), as Kafka Connect configs are written.
 */
#ifndef RUNNEL_CONFIG_H
#define RUNNEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  CONFIG_STRING, /* char * (owned by the struct; config_free releases it) */
  CONFIG_INT,    /* int64_t, within [min, max] */
  CONFIG_BOOL,   /* bool */
  CONFIG_ENUM,   /* int: index into choices */
  CONFIG_LIST,   /* char **, NULL-terminated (owned): a JSON array of strings,
                    or one comma-separated string */
} config_type_t;

typedef struct {
  const char *key;
  config_type_t type;
  const char *default_value;          /* string form; NULL: no default (string NULL) */
  int64_t min, max;                   /* CONFIG_INT */
  const char *const *choices;         /* CONFIG_ENUM, NULL-terminated */
  size_t offset;                      /* offsetof(struct, field) */
  /* Extra check for strings: returns 0, or -1 with the expected form in
   * `expected` (e.g. "a list of http://host:port"). May be NULL. */
  int (*validate)(const char *value, char *expected, size_t len);
  const char *doc;
} config_def_t;

#define CONFIG_END {0}

/* Sets every key of defs in target to its default. Returns 0, or -1 with
 * err naming the key whose default is invalid (a bug). */
int config_defaults(const config_def_t *defs, void *target, char *err, size_t errlen);

/* Parses the JSON text of file `name` (used only in messages) into target,
 * which already holds defaults. Errors name the file, the line and column of
 * a syntax error, or the key path and the expected form:
 *   worker.json: log.segment.bytes: expected an integer >= 1048576, got "big"
 *   worker.json: unknown key "log.segement.bytes"
 * Returns 0 or -1. */
int config_parse_json(const config_def_t *defs, void *target, const char *name,
                      const char *json, size_t len, char *err, size_t errlen);

/* Reads and parses a file. Returns 0, or -1 with err set (including a file
 * that cannot be read). */
int config_parse_file(const config_def_t *defs, void *target, const char *path,
                      char *err, size_t errlen);

/* Sets one key from its string form ("key=value" on a command line).
 * `where` prefixes messages. Returns 0 or -1. */
int config_set_string(const config_def_t *defs, void *target, const char *where,
                      const char *key, const char *value, char *err, size_t errlen);

/* Frees the strings a table's struct owns. */
void config_free(const config_def_t *defs, void *target);

/* Writes a Markdown table of the keys (key, type, default, valid values,
 * documentation) to buf; returns a malloc'd NUL-terminated string. */
char *config_docs_markdown(const config_def_t *defs);

#endif
