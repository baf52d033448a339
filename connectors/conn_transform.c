/*
 * conn_transform.c: the registry of transform plugins (connector.h): the
 * built-in SMTs, then those the runtime registers (the `lua` transform,
 * which needs the Lua sandbox that connectors/ must not depend on).
 *
 * Threads: conn_transform_register is called at worker start, before any
 * chain is built; the lock makes a late registration safe against
 * concurrent lookups, and conn_transforms() returns a NULL-terminated
 * array whose filled entries never change.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "conn_transform_int.h"

#define CONN_TRANSFORMS_MAX 64

static pthread_mutex_t conn__transforms_lock = PTHREAD_MUTEX_INITIALIZER;

/* Built-ins first, in the order of Kafka's documentation; registered
 * plugins are appended after the NULL-free prefix. */
static const conn_transform_plugin_t *conn__transform_table[CONN_TRANSFORMS_MAX + 1] = {
    &conn__insert_field_key,   &conn__insert_field_value, &conn__replace_field_key,
    &conn__replace_field_value, &conn__mask_field_key,    &conn__mask_field_value,
    &conn__value_to_key,        &conn__hoist_field_key,   &conn__hoist_field_value,
    &conn__extract_field_key,   &conn__extract_field_value, &conn__regex_router,
    &conn__timestamp_router,    &conn__filter,
};
#define CONN__BUILTINS 14

const conn_transform_plugin_t *const *conn_transforms(void) {
  return conn__transform_table;
}

bool conn__transform_builtin(const conn_transform_plugin_t *t) {
  for (size_t i = 0; i < CONN__BUILTINS; i++)
    if (conn__transform_table[i] == t) return true;
  return false;
}

static bool conn__name_is(const conn_transform_plugin_t *t, const char *name) {
  if (strcmp(t->name, name) == 0) return true;
  for (size_t i = 0; t->aliases && t->aliases[i]; i++)
    if (strcmp(t->aliases[i], name) == 0) return true;
  return false;
}

const conn_transform_plugin_t *conn_transform_find(const char *name) {
  const conn_transform_plugin_t *found = NULL;
  if (!name) return NULL;
  pthread_mutex_lock(&conn__transforms_lock);
  for (size_t i = 0; !found && conn__transform_table[i]; i++)
    if (conn__name_is(conn__transform_table[i], name)) found = conn__transform_table[i];
  pthread_mutex_unlock(&conn__transforms_lock);
  return found;
}

/* Returns 0 (also when t itself is registered already: worker_run may run
 * more than once in a process, as in tests), -EEXIST when another plugin
 * has the name, -ENOSPC when the table is full. */
int conn_transform_register(const conn_transform_plugin_t *t) {
  int rc = 0;
  pthread_mutex_lock(&conn__transforms_lock);
  size_t n = 0;
  for (; conn__transform_table[n]; n++) {
    if (conn__transform_table[n] == t) goto out;
    if (conn__name_is(conn__transform_table[n], t->name)) {
      rc = -EEXIST;
      goto out;
    }
  }
  if (n >= CONN_TRANSFORMS_MAX) rc = -ENOSPC;
  else conn__transform_table[n] = t;
out:
  pthread_mutex_unlock(&conn__transforms_lock);
  return rc;
}
