/*
 * helper_sqlite_query.c: prints the rows of one SQL query on a SQLite
 * database, one line per row, columns separated by '|' (as the sqlite3
 * shell's list mode), so that integration tests need no sqlite3 binary.
 *
 *   helper_sqlite_query DB.db "SELECT count(*) FROM t"
 *
 * Exit status: 0, or 1 with the error on stderr (no such table, ...).
 */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv) {
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
