/*
 * helper_sqlite_query.c: prints the rows of one SQL query on a SQLite
 * database, one line per row, columns separated by '|' (as the sqlite3
 * shell's list mode), so that integration tests need no sqlite3 binary.
 *
 *   helper_sqlite_query DB.db "SELECT count(*) FROM t"
 *   helper_sqlite_query --lock MS DB.db     holds an exclusive lock MS ms
 *
 * Exit status: 0, or 1 with the error on stderr (no such table, ...).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A writer that holds the database (a busy database for the others). */
static int lock_for(const char *path, long ms) {
  sqlite3 *db;
  /* The sink may be inside a transaction right now: wait for it. */
  if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return 1;
  }
  printf("locked\n");
  fflush(stdout);
  usleep((useconds_t)ms * 1000);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--lock")) return lock_for(argv[3], atol(argv[2]));
  if (argc != 3) {
    fprintf(stderr, "usage: helper_sqlite_query DB SQL\n");
    return 2;
  }
  sqlite3 *db;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", argv[1], sqlite3_errmsg(db));
    sqlite3_close(db);
    return 1;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, argv[2], -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return 1;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      const unsigned char *v = sqlite3_column_text(st, i);
      printf("%s%s", i ? "|" : "", v ? (const char *)v : "");
    }
    putchar('\n');
  }
  int status = rc == SQLITE_DONE ? 0 : 1;
  if (status) fprintf(stderr, "%s\n", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return status;
}
