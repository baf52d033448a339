/*
 * connect_lua_transform.h: the `lua` transform of connectors: a Lua
 * function, sandboxed like jobs (luavm.h), applied to each record of a
 * connector's transform chain (transforms.<alias>.type=lua).
 *
 * It lives in runtime/ because connectors/ does not depend on Lua; the
 * worker registers it at start with connect_lua_transform_register.
 */
#ifndef RUNNEL_CONNECT_LUA_TRANSFORM_H
#define RUNNEL_CONNECT_LUA_TRANSFORM_H

#include "connector.h"

extern const conn_transform_plugin_t connect_lua_transform;

/* Adds connect_lua_transform to the transform registry (idempotent).
 * Returns 0 or a negative errno from conn_transform_register. */
int connect_lua_transform_register(void);

#endif
