/*
 * conn_registry.c: the built-in connector plugins. The framework knows no
 * connector by name: it iterates over this list (GET /connector-plugins)
 * and finds a connector.class here by name or alias.
 *
 * Adding a plugin is one line in conn_builtin below plus its extern in
 * conn_int.h. (Transforms and predicates have their own registry.)
 */
#include "conn_int.h"

#include <string.h>

static const conn_plugin_t *const conn_builtin[] = {
    &conn_file_source_plugin,
    &conn_file_sink_plugin,
    &conn_sqlite_source_plugin,
    &conn_sqlite_sink_plugin,
    &conn_postgres_source_plugin,
    &conn_postgres_sink_plugin,
    NULL,
};

const conn_plugin_t *const *conn_plugins(void) {
  return conn_builtin;
}

const conn_plugin_t *conn_plugin_find(const char *name) {
  if (name == NULL)
    return NULL;
  for (const conn_plugin_t *const *p = conn_builtin; *p; p++) {
    if (strcmp((*p)->name, name) == 0)
      return *p;
    for (const char *const *a = (*p)->aliases; a && *a; a++)
      if (strcmp(*a, name) == 0)
        return *p;
  }
  return NULL;
}
