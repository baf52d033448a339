/*
 * datadir.c: the data directory and its exclusive lock (see datadir.h).
 *
 * Why fcntl(F_SETLK) and not flock(): F_GETLK tells us the holder's pid, so
 * the refusal can name it without trusting a pid file; and the kernel
 * drops the lock when the holder exits or is killed, so a crash never
 * leaves a stale lock behind.
 */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p. Returns 0 or -errno. */
static int datadir_mkdirs(const char *path) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
  struct stat st;
  if (stat(buf, &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  return 0;
}

int datadir_lock(datadir_t *dd, const char *dir, char *msg, size_t msglen) {
  dd->fd = -1;
  snprintf(dd->path, sizeof dd->path, "%s", dir);
  int rc = datadir_mkdirs(dir);
  if (rc < 0) {
    snprintf(msg, msglen, "data dir %s: cannot create: %s", dir, strerror(-rc));
    return rc;
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = -errno;
    snprintf(msg, msglen, "data dir %s: cannot open %s: %s", dir, path, strerror(errno));
    return rc;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    rc = -errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if ((errno == EAGAIN || errno == EACCES) && fcntl(fd, F_GETLK, &who) == 0 &&
        who.l_type != F_UNLCK) {
      snprintf(msg, msglen, "data dir %s is locked by another process (pid %ld)", dir,
               (long)who.l_pid);
    } else {
      snprintf(msg, msglen, "data dir %s: cannot lock %s: %s", dir, path, strerror(-rc));
    }
    close(fd);
    return rc;
  }
  /* The pid in the file is for people (and for tools without F_GETLK). */
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n) {
    /* best effort: the lock itself is what counts */
  }
  dd->fd = fd;
  return 0;
}

void datadir_unlock(datadir_t *dd) {
  if (dd->fd >= 0) {
    close(dd->fd); /* closing releases the record lock */
    dd->fd = -1;
  }
}

const char *datadir_sub(const datadir_t *dd, const char *sub, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", dd->path, sub);
  return buf;
}
