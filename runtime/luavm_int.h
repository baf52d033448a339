/*
 * luavm_int.h: internals shared by luavm.c and luavm_json.c (luavm__).
 */
#ifndef RUNNEL_LUAVM_INT_H
#define RUNNEL_LUAVM_INT_H

#include <stddef.h>

/* printf into a caller's error buffer; err may be NULL or errlen 0. */
void luavm__seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
