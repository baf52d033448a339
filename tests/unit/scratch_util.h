/*
 * scratch_util.h: scratch directories for unit tests, shared by
 * log_test_util.h and store_test_util.h. static inline; include after
 * <cmocka.h>.
 */
#ifndef RUNNEL_SCRATCH_UTIL_H
#define RUNNEL_SCRATCH_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A unique directory "<prefix>-XXXXXX" under $RUNNEL_TEST_TMP (or /tmp);
 * the caller frees it with scratch_rmrf. */
static inline char *scratch_mkdtemp(const char *prefix) {
  const char *base = getenv("RUNNEL_TEST_TMP");
  if (!base || !*base)
    base = "/tmp";
  mkdir(base, 0755);
  char *path = malloc(strlen(base) + strlen(prefix) + 16);
  assert_non_null(path);
  sprintf(path, "%s/%s-XXXXXX", base, prefix);
  assert_non_null(mkdtemp(path));
  return path;
}

static inline int scratch_rm_cb(const char *path, const struct stat *st, int flag,
                                struct FTW *f) {
  (void)st; (void)flag; (void)f;
  return remove(path);
}

/* Removes the tree and frees path. */
static inline void scratch_rmrf(char *path) {
  nftw(path, scratch_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(path);
}

#endif
