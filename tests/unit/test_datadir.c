/* Tests for runtime/datadir.c: the exclusive lock and its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "datadir.h"

static void test_second_process_is_refused_with_holder_pid(void **state) {
  (void)state;
  char dir[] = "/tmp/runnel-datadir-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sub[512];
  snprintf(sub, sizeof sub, "%s/nested/data", dir);
  datadir_t dd;
  char msg[512];
  assert_int_equal(datadir_lock(&dd, sub, msg, sizeof msg), 0);

  int pipefd[2];
  assert_int_equal(pipe(pipefd), 0);
  pid_t child = fork();
  if (child == 0) {
    datadir_t other;
    char cmsg[512] = "";
    int rc = datadir_lock(&other, sub, cmsg, sizeof cmsg);
    ssize_t w = write(pipefd[1], cmsg, strlen(cmsg) + 1);
    (void)w;
    _exit(rc == 0 ? 0 : 1);
  }
  int status;
  waitpid(child, &status, 0);
  assert_int_equal(WEXITSTATUS(status), 1);
  char got[512] = "";
  ssize_t r = read(pipefd[0], got, sizeof got);
  assert_true(r > 0);
  char want[600];
  snprintf(want, sizeof want, "data dir %s is locked by another process (pid %ld)", sub,
           (long)getpid());
  assert_string_equal(got, want);

  /* After unlock, another process gets it. */
  datadir_unlock(&dd);
  child = fork();
  if (child == 0) {
    datadir_t other;
    char cmsg[512];
    _exit(datadir_lock(&other, sub, cmsg, sizeof cmsg) == 0 ? 0 : 1);
  }
  waitpid(child, &status, 0);
  assert_int_equal(WEXITSTATUS(status), 0);
  close(pipefd[0]);
  close(pipefd[1]);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_path_that_is_a_file(void **state) {
  (void)state;
  char path[] = "/tmp/runnel-datadir-file-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  datadir_t dd;
  char msg[512];
  assert_true(datadir_lock(&dd, path, msg, sizeof msg) < 0);
  assert_non_null(strstr(msg, "cannot create: Not a directory"));
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_second_process_is_refused_with_holder_pid),
      cmocka_unit_test(test_path_that_is_a_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
