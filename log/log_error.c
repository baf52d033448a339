/*
 * log_error.c: names and messages for the log's error codes, and the
 * helper that fills a log_error_t.
 *
 * One convention (STYLE.md, 3): 0 is success, a negative number is an
 * error, either -errno or one of the LOG_E_* codes of LOG_ERRNO_MAP in
 * log.h. Project codes are below -1000, so the two ranges never overlap.
 * Both functions below return static strings, so they are safe from any
 * thread and the result never needs freeing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np / strerrordesc_np (glibc >= 2.32) */
#endif

#include "log_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define LOG__HAVE_STRERRORNAME_NP 1
#endif

#ifndef LOG__HAVE_STRERRORNAME_NP
/* Without glibc's strerrorname_np: the errno values the log can actually
 * return (file and memory errors). Anything else is "E?". */
static const struct {
  int num;
  const char *name;
} log__errno_names[] = {
#define LOG__E(e) { e, #e }
  LOG__E(EPERM),  LOG__E(ENOENT), LOG__E(EINTR),   LOG__E(EIO),
  LOG__E(EBADF),  LOG__E(EAGAIN), LOG__E(ENOMEM),  LOG__E(EACCES),
  LOG__E(EFAULT), LOG__E(EBUSY),  LOG__E(EEXIST),  LOG__E(ENOTDIR),
  LOG__E(EISDIR), LOG__E(EINVAL), LOG__E(ENFILE),  LOG__E(EMFILE),
  LOG__E(EFBIG),  LOG__E(ENOSPC), LOG__E(ESPIPE),  LOG__E(EROFS),
  LOG__E(EPIPE),  LOG__E(ERANGE), LOG__E(ENAMETOOLONG), LOG__E(ENOTEMPTY),
  LOG__E(ELOOP),  LOG__E(EOVERFLOW), LOG__E(EDQUOT),
#undef LOG__E
};
#endif

const char *log_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define LOG__ERR_NAME(name, value, msg) \
  case value:                           \
    return #name;
    LOG_ERRNO_MAP(LOG__ERR_NAME)
#undef LOG__ERR_NAME
  default:
    break;
  }
  if (err < 0 && err > -1000) {
#ifdef LOG__HAVE_STRERRORNAME_NP
    const char *s = strerrorname_np(-err);
    if (s != NULL)
      return s;
#else
    for (size_t i = 0; i < sizeof log__errno_names / sizeof log__errno_names[0]; i++)
      if (log__errno_names[i].num == -err)
        return log__errno_names[i].name;
#endif
  }
  return "UNKNOWN";
}

const char *log_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define LOG__ERR_MSG(name, value, msg) \
  case value:                          \
    return msg;
    LOG_ERRNO_MAP(LOG__ERR_MSG)
#undef LOG__ERR_MSG
  default:
    break;
  }
  if (err < 0 && err > -1000) {
#ifdef LOG__HAVE_STRERRORNAME_NP
    /* Not strerror(): for unknown values it formats into a buffer that the
     * next call may overwrite; strerrordesc_np only returns static text. */
    const char *s = strerrordesc_np(-err);
    if (s != NULL)
      return s;
#else
    return strerror(-err);
#endif
  }
  return "unknown error";
}

int log__errf(log_error_t *err, int code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap); /* truncation is fine */
  va_end(ap);
  err->code = code;
  return code;
}
