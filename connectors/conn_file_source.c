/*
 * conn_file_source.c: the file source connector (`file-source`; Kafka's
 * FileStreamSource), reading lines from a file or a glob of files and
 * following appends like `tail -F`.
 *
 * Each file is a source partition {"filename": "<path>"}; a record's source
 * offset is {"position": <byte offset after its line>, "inode": <inode>,
 * "head": "<n>:<hash>"} (the file's identity, see "identity" below), plus
 * with a glob "rotated": [{"inode", "position", "head"}] (the files this
 * partition's path named before, read to their end, that the glob still
 * matches under their new names).
 * The framework commits the offset once the record is in the log and gives
 * it back through conn_ctx_offset after a restart, so reading resumes at
 * the first byte not yet delivered: no line is skipped or repeated. The
 * inode is ours, not Kafka's (an offset set through the REST API may leave
 * it out); it tells a restarted task that the path now names another file,
 * and which file to finish first when that one was rotated away while the
 * task was down (see "resuming a file rotated while the task was down").
 *
 * A follower (file_follower_t) per path. Invariants:
 *   1. pos is the byte offset after the last line emitted (or skipped):
 *      the offset of the next record's first byte.
 *   2. buf[start..len) holds the bytes read past pos, so
 *      read_pos == pos + (len - start).
 *   3. A line is emitted only once its '\n' has been read: a partial last
 *      line waits in buf (the writer has not finished it). The one
 *      exception is the end of a file rotated away, which will not grow.
 *
 * Following, checked when a read reaches the end of the file:
 *   - truncation (copytruncate): the file is shorter than read_pos; read
 *     again from 0 (the partial line read before is dropped: the rotated
 *     copy holds it).
 *   - rotation by rename (or removal): the path names another inode, or
 *     nothing. The old descriptor is read to its end first (a writer may
 *     have appended before the rename), its last partial line emitted,
 *     then the new file is opened at 0. A path that does not exist yet is
 *     retried at each poll (Kafka waits for the file too).
 *
 * Glob: the pattern is expanded again every scan.interval.ms; a new match
 * whose inode is followed, or was finished after a rotation, under another
 * path (a rotated file whose new name also matches) is not read twice, and
 * a follower whose path now names such a file (app.1.log after
 * app.1.log -> app.2.log, app.log -> app.1.log) waits for a file of its
 * own. A restarted task knows these files by their identity: a match whose
 * own committed offset does not name it continues from the position any
 * committed offset of the connector (conn_ctx_offsets_each) records for
 * its inode and head, as current file or as "rotated" (see "files that
 * moved inside the glob").
 *
 * Identity: a file is its inode plus the FNV-1a hash of its first bytes
 * (up to FILE_HEAD_BYTES, fewer while the file is shorter), so that a
 * new file given the inode of a deleted one is not taken for it. Read
 * bytes never change (append-only), so the hash of the first n bytes of a
 * file stays what it was when taken.
 *
 * Lines end at '\n'; a '\r' before it is dropped (CRLF files). With
 * format=json a line must be one JSON value: a malformed line is still
 * returned, with the CONN_HEADER_ERROR header naming "<file>:<line>:<col>"
 * (see connector.h), and blank lines are skipped. key.field and
 * timestamp.field pick the record's key and timestamp from a JSON object
 * (conn_file_json.c).
 */
#include "conn_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_READ_CHUNK 65536
#define FILE_HEAD_BYTES 256

static const char *const file_formats[] = {"string", "json", NULL};

/* Kafka's topic name rule: [a-zA-Z0-9._-], 1..249 characters, not "." or "..". */
static int conn_file_source_topic_check(const char *v, char *msg, size_t len) {
  size_t n = strlen(v);
  if (n == 0 || n > 249 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
    snprintf(msg, len, "a topic name has 1 to 249 characters and is not \".\" or \"..\"");
    return -1;
  }
  if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
    snprintf(msg, len, "a topic name contains only ASCII letters, digits, '.', '_' and '-'");
    return -1;
  }
  return 0;
}

static int conn_file_source_path_check(const char *v, char *msg, size_t len) {
  if (v[0] == '\0') {
    snprintf(msg, len, "must name a file or a glob of files");
    return -1;
  }
  return 0;
}

static const conn_def_t conn_file_source_defs[] = {
    {.name = "file", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH, .group = "File",
     .validate = conn_file_source_path_check,
     .doc = "The file to read, or a glob of files (*, ? and [...] as in the shell). Each file is "
            "one source partition {\"filename\": path}. Unlike Kafka, required: runnel does not "
            "read standard input."},
    {.name = "topic", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH, .group = "File",
     .validate = conn_file_source_topic_check,
     .doc = "The topic to publish data to. Created when missing "
            "(topic.creation.default.partitions)."},
    {.name = "batch.size", .type = CONN_T_INT, .default_value = "2000", .min = 1,
     .max = 1000000, .importance = CONN_IMP_LOW, .group = "File",
     .doc = "The maximum number of records the source task can read from the file each time "
            "it is polled."},
    {.name = "format", .type = CONN_T_STRING, .default_value = "string", .choices = file_formats,
     .importance = CONN_IMP_MEDIUM, .group = "Format",
     .doc = "string: each line is the record value as is. json: each line must be one JSON "
            "value (JSON Lines); a malformed line is reported as <file>:<line>:<col> and handled "
            "by errors.tolerance; blank lines are skipped."},
    {.name = "key.field", .type = CONN_T_STRING, .optional = true, .importance = CONN_IMP_MEDIUM,
     .group = "Format",
     .doc = "format=json: the record key is the value of this top-level field (a string's "
            "characters, other values as JSON text); absent or null gives a null key."},
    {.name = "timestamp.field", .type = CONN_T_STRING, .optional = true,
     .importance = CONN_IMP_LOW, .group = "Format",
     .doc = "format=json: the record timestamp comes from this top-level field: milliseconds "
            "since the epoch (a number or a string of digits) or an ISO-8601 date-time "
            "(2024-05-01T12:00:00Z, with optional fraction and offset). Unset or unparsable: "
            "the time the record is appended."},
    {.name = "scan.interval.ms", .type = CONN_T_LONG, .default_value = "1000", .min = 10,
     .max = 86400000, .importance = CONN_IMP_LOW, .group = "File",
     .doc = "How often a glob is expanded again to find new files."},
    CONN_DEF_END,
};

static int conn_file_source_validate(const conn_config_t *cfg, const char **key, char *msg,
                                     size_t len) {
  const char *fmt = conn_get_string(conn_file_source_defs, cfg, "format");
  bool json = fmt && strcmp(fmt, "json") == 0;
  static const char *const json_only[] = {"key.field", "timestamp.field"};
  for (size_t i = 0; i < 2; i++) {
    if (!json && conn_config_get(cfg, json_only[i])) {
      *key = json_only[i];
      snprintf(msg, len, "%s needs format=json", json_only[i]);
      return -1;
    }
  }
  return 0;
}

typedef struct {
  char *path;
  char *partition;    /* {"filename": path} */
  int fd;             /* -1: not open (missing, or finished after rotation) */
  dev_t dev;
  ino_t ino;
  int64_t pos, read_pos; /* see invariants 1 and 2 */
  char *buf;
  size_t start, len, cap;
  int64_t line;       /* lines before pos, for file:line messages */
  bool resumed;       /* the committed offset was consulted */
  bool sought;        /* the path was missing: its rotated file looked for */
  bool rotated;       /* the path names another file: drain, then switch */
  bool waiting;       /* glob: the path names a file read under another name */
  bool warned_ts;     /* one warning per file about timestamp.field */
  /* Identity of the open file (see the header): the hash of its first
   * head_len bytes (-1: not taken yet), and the offset's text after the
   * position, made again when the head grows or s->retired changes. */
  int64_t head_len;
  uint64_t head_hash;
  char *ident;
  size_t ident_len;
  unsigned ident_gen;
} file_follower_t;

typedef struct {
  conn_ctx_t *ctx;
  char *pattern;
  bool is_glob;
  char *topic;
  size_t batch_size;
  bool json;
  conn_file_json_t *checker; /* format=json: the line checker */
  char *key_field, *ts_field;
  int64_t scan_ms, last_scan;
  file_follower_t **files;
  size_t nfiles, next;
  /* Glob: files read to their end after a rotation by rename. A match
   * with one of these inodes is the rotated file under its new name, not
   * a new file. Kept while the glob still matches them. */
  struct file_retired {
    dev_t dev;
    ino_t ino;
    bool seen;
    int64_t position, head_len; /* where it ended; its identity */
    uint64_t head_hash;
    char *owner; /* the partition whose offsets list it */
  } *retired;
  size_t nretired;
  unsigned retired_gen; /* changes with retired */
} file_source_t;

static int64_t conn_file_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_file_follower_free(file_follower_t *f) {
  if (f->fd >= 0)
    close(f->fd);
  free(f->ident);
  free(f->path);
  free(f->partition);
  free(f->buf);
  free(f);
}

static void conn_file_follower_reset(file_follower_t *f) {
  f->pos = f->read_pos = 0;
  f->start = f->len = 0;
  f->line = 0;
  f->head_len = -1;
}

/* Counts the lines in the first `upto` bytes of fd; returns the count, or
 * -1 when the byte before upto is not a '\n' (the offset does not fall at
 * a line end: the file is not the one the offset was taken from) unless
 * partial_end (upto is the end of a rotated file, whose last line was
 * emitted without its '\n'), or on a read error. */
static int64_t conn_file_count_lines(int fd, int64_t upto, bool partial_end) {
  char chunk[FILE_READ_CHUNK];
  int64_t at = 0, lines = 0;
  char last = '\n';
  while (at < upto) {
    size_t want = upto - at < (int64_t)sizeof chunk ? (size_t)(upto - at) : sizeof chunk;
    ssize_t r = pread(fd, chunk, want, at);
    if (r <= 0)
      return -1;
    for (ssize_t i = 0; i < r; i++)
      lines += chunk[i] == '\n';
    last = chunk[r - 1];
    at += r;
  }
  if (last != '\n' && partial_end)
    return lines + 1;
  return last == '\n' ? lines : -1;
}

/* ---- identity ----------------------------------------------------------------
 * (see the header) */

/* The FNV-1a hash of the first n (<= FILE_HEAD_BYTES) bytes of fd, or -1
 * when they cannot be read. */
static int conn_file_hash(int fd, int64_t n, uint64_t *out) {
  unsigned char b[FILE_HEAD_BYTES];
  if (n < 0 || n > FILE_HEAD_BYTES || (n > 0 && pread(fd, b, (size_t)n, 0) != (ssize_t)n))
    return -1;
  uint64_t h = 14695981039346656037ULL;
  for (int64_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  *out = h;
  return 0;
}

/* Makes f->ident current for f->pos: ,"inode":..,"head":"<n>:<hash>" and
 * the "rotated" files f owns, then '}'. Returns 0 or -1 (no memory). */
static int conn_file_ident(file_source_t *s, file_follower_t *f) {
  int64_t want = f->pos < FILE_HEAD_BYTES ? f->pos : FILE_HEAD_BYTES;
  if (f->ident && f->head_len == want && f->ident_gen == s->retired_gen)
    return 0;
  if (f->head_len != want) {
    f->head_len = want;
    if (conn_file_hash(f->fd, want, &f->head_hash) != 0) { /* unreadable: by inode alone */
      f->head_len = 0;
      conn_file_hash(f->fd, 0, &f->head_hash);
    }
  }
  size_t cap = 96;
  for (size_t r = 0; r < s->nretired; r++)
    cap += strcmp(s->retired[r].owner, f->partition) == 0 ? 128 : 0;
  char *b = malloc(cap);
  if (!b)
    return -1;
  size_t n = (size_t)snprintf(b, cap, ",\"inode\":%llu,\"head\":\"%lld:%016llx\"",
                              (unsigned long long)f->ino, (long long)f->head_len,
                              (unsigned long long)f->head_hash);
  const char *sep = ",\"rotated\":[";
  for (size_t r = 0; r < s->nretired; r++) {
    const struct file_retired *e = &s->retired[r];
    if (strcmp(e->owner, f->partition) != 0)
      continue;
    n += (size_t)snprintf(b + n, cap - n,
                          "%s{\"inode\":%llu,\"position\":%lld,\"head\":\"%lld:%016llx\"}", sep,
                          (unsigned long long)e->ino, (long long)e->position,
                          (long long)e->head_len, (unsigned long long)e->head_hash);
    sep = ",";
  }
  n += (size_t)snprintf(b + n, cap - n, "%s}", *sep == ',' && sep[1] == '\0' ? "]" : "");
  free(f->ident);
  f->ident = b;
  f->ident_len = n;
  f->ident_gen = s->retired_gen;
  return 0;
}

/* The source offset of f's position, in out's memory, or NULL (no
 * memory). */
static char *conn_file_offset(file_source_t *s, file_follower_t *f, conn_batch_t *out) {
  if (conn_file_ident(s, f) != 0)
    return NULL;
  char *o = conn_pool_alloc(&out->mem, sizeof "{\"position\":" + 20 + f->ident_len);
  if (!o)
    return NULL;
  size_t n = sizeof "{\"position\":" - 1;
  memcpy(o, "{\"position\":", n);
  n += conn_fmt_i64(o + n, f->pos);
  memcpy(o + n, f->ident, f->ident_len + 1);
  return o;
}

/* Glob: whether the file st is read by a follower other than self, or was
 * read to its end after a rotation (and so is seen again under a new
 * name): it is not to be read again. */
static bool conn_file_taken(file_source_t *s, const file_follower_t *self, const struct stat *st) {
  bool taken = false;
  for (size_t r = 0; r < s->nretired; r++) /* all of them: marks it seen by the scan */
    if (s->retired[r].dev == st->st_dev && s->retired[r].ino == st->st_ino)
      taken = s->retired[r].seen = true;
  for (size_t k = 0; k < s->nfiles && !taken; k++)
    taken = s->files[k] != self && s->files[k]->fd >= 0 && s->files[k]->dev == st->st_dev &&
            s->files[k]->ino == st->st_ino;
  return taken;
}

/* Glob: records that the file (dev, ino) was read up to position under
 * the partition owner, and ends there for this task (see s->retired).
 * head_len and head_hash are its identity. A file known already keeps its
 * first owner, whose committed offsets may be the only ones naming it (a
 * follower that finished it under a later name without a line to emit has
 * none), with the new position. Returns 0, or -1 without memory (the file
 * may then be read again by a restarted task: nothing is lost). */
static int conn_file_retire(file_source_t *s, const char *owner, dev_t dev, ino_t ino,
                            int64_t position, int64_t head_len, uint64_t head_hash) {
  s->retired_gen++;
  for (size_t r = 0; r < s->nretired; r++) {
    struct file_retired *e = &s->retired[r];
    if (e->dev == dev && e->ino == ino) {
      if (position >= e->position)
        *e = (struct file_retired){dev, ino, true, position, head_len, head_hash, e->owner};
      return 0;
    }
  }
  char *o = strdup(owner);
  struct file_retired *rs = o ? realloc(s->retired, (s->nretired + 1) * sizeof *rs) : NULL;
  if (!rs) {
    free(o);
    return -1;
  }
  s->retired = rs;
  rs[s->nretired++] = (struct file_retired){dev, ino, true, position, head_len, head_hash, o};
  return 0;
}

/* ---- files that moved inside the glob ---------------------------------------
 * After a restart, a match whose own offset does not name it (a rotation
 * renamed it: app.log -> app.1.log, or -> app-2026-11-22.log) may have been
 * read under another name: some committed offset of the connector names
 * its inode and head, as the file being read ("inode") or as one read to
 * its end ("rotated"). It continues from the furthest such position, under
 * its own name; the follower of its old name does not read it (see
 * conn_file_resume_rotated). Until it has offsets of its own, the offsets
 * of the partition that named it keep naming it: it is listed in that
 * partition's "rotated" (s->retired), or a restart after the next line of
 * that partition's new file would read it from 0. */

struct file_claim {
  const file_follower_t *f;
  const struct stat *st;
  int64_t best;   /* -1: none */
  char *from;     /* the partition that names it */
};

static void conn_file_claim_one(struct file_claim *c, const char *partition, yajl_val o) {
  const char *ino = conn_json_scalar(conn_json_member(o, "inode"));
  const char *pos = conn_json_scalar(conn_json_member(o, "position"));
  const char *head = conn_json_scalar(conn_json_member(o, "head"));
  if (!ino || !pos || strtoull(ino, NULL, 10) != (unsigned long long)c->st->st_ino)
    return;
  long long p = strtoll(pos, NULL, 10);
  if (p < 0 || p > c->st->st_size || p <= c->best)
    return;
  if (head) { /* absent: an offset of an older runnel, by inode alone */
    char *end;
    long long n = strtoll(head, &end, 10);
    uint64_t h;
    if (*end != ':' || n > c->st->st_size || conn_file_hash(c->f->fd, n, &h) != 0 ||
        h != strtoull(end + 1, NULL, 16))
      return;
  }
  if (conn_file_count_lines(c->f->fd, p, p == c->st->st_size) < 0)
    return;
  char *dup = strdup(partition);
  if (!dup)
    return;
  free(c->from);
  c->from = dup;
  c->best = p;
}

static void conn_file_claim_cb(void *arg, const char *partition, const char *offset) {
  yajl_val v = conn_json_parse(NULL, offset, strlen(offset), NULL, 0);
  conn_file_claim_one(arg, partition, v);
  yajl_val rot = conn_json_member(v, "rotated");
  for (size_t i = 0; rot && YAJL_IS_ARRAY(rot) && i < rot->u.array.len; i++)
    conn_file_claim_one(arg, partition, rot->u.array.values[i]);
  yajl_tree_free(v);
}

/* Positions f (just opened, st its stat) where another name's offset left
 * its file. Returns 0, or -1 when no offset names it. */
static int conn_file_resume_claimed(file_source_t *s, file_follower_t *f, const struct stat *st) {
  struct file_claim c = {.f = f, .st = st, .best = -1};
  conn_ctx_offsets_each(s->ctx, conn_file_claim_cb, &c);
  if (c.best < 0) {
    free(c.from);
    return -1;
  }
  f->pos = f->read_pos = c.best;
  f->line = conn_file_count_lines(f->fd, c.best, c.best == st->st_size);
  if (conn_file_ident(s, f) == 0)
    conn_file_retire(s, c.from, st->st_dev, st->st_ino, c.best, f->head_len, f->head_hash);
  conn_ctx_log(s->ctx, 2,
               "%s: this file (inode %llu) was read up to byte %lld as %s before a rotation "
               "renamed it; continuing from byte %lld",
               f->path, (unsigned long long)st->st_ino, (long long)c.best, c.from,
               (long long)c.best);
  free(c.from);
  return 0;
}
/* ---- end of files that moved inside the glob ---- */

/* ---- resuming a file rotated while the task was down ------------------------
 * The committed offset names the inode it was taken from. When the path
 * now names another file (or nothing), the file that inode is, renamed by
 * a rotation (app.log -> app.log.1, any name), is looked for in the path's
 * directory, as Filebeat and Fluent Bit do. Found, and at least as long as
 * the committed position, it is read from there to its end under the
 * path's source partition, with offsets naming its inode, then the path's
 * file from 0 (conn_file_at_end: it is a rotated file being finished). A
 * crash at any point resumes right: an offset naming the old inode sends
 * the next start back into the old file, one naming the new inode into the
 * new file. */

/* Opens the regular file with inode ino on the device of f->path's
 * directory, in that directory (any name). Returns the descriptor, with
 * its stat in *st and its name in name, or -1 when there is none. */
static int conn_file_open_inode(const file_follower_t *f, unsigned long long ino, struct stat *st,
                                char *name, size_t namelen) {
  const char *slash = strrchr(f->path, '/');
  char *dir = slash ? strndup(f->path, slash == f->path ? 1 : (size_t)(slash - f->path))
                    : strdup(".");
  DIR *d = dir ? opendir(dir) : NULL;
  struct stat dst;
  int fd = -1;
  if (d && fstat(dirfd(d), &dst) == 0) {
    struct dirent *e;
    while (fd < 0 && (e = readdir(d)) != NULL) {
      if (fstatat(dirfd(d), e->d_name, st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st->st_mode) ||
          (unsigned long long)st->st_ino != ino || st->st_dev != dst.st_dev)
        continue;
      fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
      /* (renamed again between the two calls: not the file) */
      if (fd >= 0 && (fstat(fd, st) != 0 || (unsigned long long)st->st_ino != ino ||
                      st->st_dev != dst.st_dev)) {
        close(fd);
        fd = -1;
      }
      if (fd >= 0)
        snprintf(name, namelen, "%s/%s", dir, e->d_name);
    }
  }
  if (d)
    closedir(d);
  free(dir);
  return fd;
}

/* Makes f read the rotated file with inode ino from position, if it is
 * found and the position fits it. Returns 0 (f reads it; its own
 * descriptor, if any, is closed) or -1 (not found or not usable: logged
 * when found, the caller says what it does instead). */
static int conn_file_resume_rotated(file_source_t *s, file_follower_t *f, unsigned long long ino,
                                    int64_t position) {
  struct stat st;
  char name[4096];
  int fd = conn_file_open_inode(f, ino, &st, name, sizeof name);
  if (fd < 0)
    return -1;
  if (s->is_glob && fnmatch(s->pattern, name, FNM_PATHNAME | FNM_PERIOD) == 0) {
    conn_ctx_log(s->ctx, 2,
                 "%s: the file it was (inode %llu) is now %s, which the glob matches: it is "
                 "read under that name",
                 f->path, ino, name);
    close(fd);
    return -1;
  }
  int64_t lines = position <= st.st_size
                      ? conn_file_count_lines(fd, position, position == st.st_size)
                      : -1;
  if (lines < 0) {
    conn_ctx_log(s->ctx, 1,
                 "%s: the file it was (inode %llu) is now %s, but committed position %lld is "
                 "past its end (%lld bytes) or not at a line end: not read",
                 f->path, ino, name, (long long)position, (long long)st.st_size);
    close(fd);
    return -1;
  }
  if (f->fd >= 0)
    close(f->fd);
  f->fd = fd;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->rotated = false;
  f->head_len = -1;
  f->pos = f->read_pos = position;
  f->line = lines;
  conn_ctx_log(s->ctx, 1,
               "%s: rotated while the task was down; reading the rest of %s (inode %llu) from "
               "byte %lld, then the new file from 0",
               f->path, name, ino, (long long)position);
  return 0;
}

/* A committed offset's "position" (-1 when missing or not a non-negative
 * integer) and "inode" (0 when absent). */
static long long conn_file_offset_read(const char *off, unsigned long long *ino) {
  char err[256];
  yajl_val v = conn_json_parse("offset", off, strlen(off), err, sizeof err);
  const char *p = conn_json_scalar(conn_json_member(v, "position"));
  const char *i = conn_json_scalar(conn_json_member(v, "inode"));
  char *end = NULL;
  long long position = p ? strtoll(p, &end, 10) : -1;
  if (!p || *end != '\0' || position < 0) position = -1;
  *ino = i ? strtoull(i, NULL, 10) : 0;
  yajl_tree_free(v);
  return position;
}

/* f->path does not exist: the file of the committed offset, rotated away
 * before the new one was created, may still be found. Returns 0 (f reads
 * it) or -1 (f waits for the path, offset not consulted yet). */
static int conn_file_resume_missing(file_source_t *s, file_follower_t *f) {
  if (f->sought) /* once: a rotated file does not appear later */
    return -1;
  f->sought = true;
  char *off = conn_ctx_offset(s->ctx, f->partition);
  if (!off)
    return -1;
  unsigned long long ino;
  long long position = conn_file_offset_read(off, &ino);
  int rc = -1;
  if (position >= 0 && ino)
    rc = conn_file_resume_rotated(s, f, ino, position);
  free(off);
  if (rc == 0)
    f->resumed = true;
  return rc;
}
/* ---- end of resuming a rotated file ---- */

/* Positions a newly opened follower: at the committed offset when it
 * still fits the file, else at 0 (with a warning saying why). */
static void conn_file_resume(file_source_t *s, file_follower_t *f, const struct stat *st) {
  f->resumed = true;
  char *off = conn_ctx_offset(s->ctx, f->partition);
  if (!off) {
    if (s->is_glob)
      conn_file_resume_claimed(s, f, st);
    return;
  }
  unsigned long long ino;
  long long position = conn_file_offset_read(off, &ino);
  if (position < 0) {
    conn_ctx_log(s->ctx, 1, "%s: committed offset %s has no valid \"position\"; reading from 0",
                 f->path, off);
  } else if (ino && ino != (unsigned long long)st->st_ino) {
    if (s->is_glob && conn_file_resume_claimed(s, f, st) == 0)
      goto done;
    if (conn_file_resume_rotated(s, f, ino, position) == 0)
      goto done;
    conn_ctx_log(s->ctx, 1,
                 "%s: the file was replaced since offset %s was committed (inode %llu, now %llu); "
                 "reading the new file from 0",
                 f->path, off, ino, (unsigned long long)st->st_ino);
  } else if (position > st->st_size) {
    conn_ctx_log(s->ctx, 1,
                 "%s: the file (%lld bytes) is shorter than committed position %lld: it was "
                 "truncated; reading from 0",
                 f->path, (long long)st->st_size, position);
  } else {
    int64_t lines = conn_file_count_lines(f->fd, position, false);
    if (lines < 0) {
      conn_ctx_log(s->ctx, 1,
                   "%s: committed position %lld is not at a line end: the file was rewritten; "
                   "reading from 0",
                   f->path, position);
    } else {
      f->pos = f->read_pos = position;
      f->line = lines;
      conn_ctx_log(s->ctx, 2, "%s: resuming at byte %lld (line %lld)", f->path, position,
                   (long long)lines + 1);
    }
  }
done:
  free(off);
}

/* Opens f->path. Returns 0 (open, or missing: fd stays -1) or CONN_E_FAIL
 * with err. */
static int conn_file_open(file_source_t *s, file_follower_t *f, char *err, size_t errlen) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      if (!f->resumed)
        conn_file_resume_missing(s, f);
      return 0;
    }
    snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
    return CONN_E_FAIL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", f->path);
    close(fd);
    return CONN_E_FAIL;
  }
  if (s->is_glob && conn_file_taken(s, f, &st)) {
    /* app.1.log after app.log -> app.1.log: read (or being read) under
     * its old name; this path waits for a file of its own. */
    if (!f->waiting || f->dev != st.st_dev || f->ino != st.st_ino)
      conn_ctx_log(s->ctx, 2, "%s: now names a file read under another name (inode %llu); "
                   "waiting for a new file", f->path, (unsigned long long)st.st_ino);
    f->waiting = true;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    close(fd);
    return 0;
  }
  f->waiting = false;
  f->fd = fd;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->rotated = false;
  conn_file_follower_reset(f);
  if (!f->resumed)
    conn_file_resume(s, f, &st);
  return 0;
}

static file_follower_t *conn_file_follower_add(file_source_t *s, const char *path) {
  file_follower_t **fs = realloc(s->files, (s->nfiles + 1) * sizeof *fs);
  if (!fs)
    return NULL;
  s->files = fs;
  file_follower_t *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  f->fd = -1;
  f->head_len = -1;
  f->path = strdup(path);
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g) {
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"filename", 8);
    yajl_gen_string(g, (const unsigned char *)path, strlen(path));
    yajl_gen_map_close(g);
    f->partition = conn_json_take(g, NULL);
  }
  if (!f->path || !f->partition) {
    conn_file_follower_free(f);
    return NULL;
  }
  s->files[s->nfiles++] = f;
  return f;
}

/* Finds new files (and, for a glob, forgets followers whose file is gone
 * for good). Returns 0 or CONN_E_FAIL with err. */
static int conn_file_scan(file_source_t *s, char *err, size_t errlen) {
  s->last_scan = conn_file_now_ms();
  if (!s->is_glob) {
    if (s->nfiles == 0 && !conn_file_follower_add(s, s->pattern)) {
      snprintf(err, errlen, "out of memory");
      return CONN_E_FAIL;
    }
    return 0;
  }
  glob_t g;
  int grc = glob(s->pattern, GLOB_ERR, NULL, &g);
  if (grc != 0 && grc != GLOB_NOMATCH) {
    conn_ctx_log(s->ctx, 1, "%s: cannot expand the glob (%s)", s->pattern,
                 grc == GLOB_NOSPACE ? "out of memory" : "read error");
    globfree(&g);
    return 0;
  }
  size_t nmatch = grc == 0 ? g.gl_pathc : 0;
  for (size_t r = 0; r < s->nretired; r++)
    s->retired[r].seen = false;
  for (size_t i = 0; i < nmatch; i++) {
    const char *path = g.gl_pathv[i];
    bool known = false;
    for (size_t k = 0; k < s->nfiles && !known; k++)
      known = strcmp(s->files[k]->path, path) == 0;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    /* A file held open under another name, or finished after a rotation,
     * was renamed into the glob: it is read already. (Checked for known
     * paths too: it marks a finished file still matched as seen.) */
    if (conn_file_taken(s, NULL, &st) || known)
      continue;
    file_follower_t *f = conn_file_follower_add(s, path);
    int rc = f ? conn_file_open(s, f, err, errlen) : CONN_E_FAIL;
    if (!f)
      snprintf(err, errlen, "out of memory");
    if (rc != 0) {
      globfree(&g);
      return rc;
    }
    if (f->fd >= 0)
      conn_ctx_log(s->ctx, 2, "%s: following (matches %s)", path, s->pattern);
  }
  globfree(&g);
  size_t kept = 0;
  for (size_t r = 0; r < s->nretired; r++) {
    if (s->retired[r].seen)
      s->retired[kept++] = s->retired[r];
    else
      free(s->retired[r].owner);
  }
  if (kept != s->nretired) /* the owners' offsets list fewer files */
    s->retired_gen++;
  s->nretired = kept;
  /* Forget followers that are closed and whose path is gone. */
  size_t w = 0;
  for (size_t k = 0; k < s->nfiles; k++) {
    file_follower_t *f = s->files[k];
    if (f->fd < 0 && access(f->path, F_OK) != 0)
      conn_file_follower_free(f);
    else
      s->files[w++] = f;
  }
  s->nfiles = w;
  if (s->next >= s->nfiles)
    s->next = 0;
  return 0;
}

/* Appends the record for one line (len bytes without the '\n').
 * Returns 1 (added), 0 (blank JSON line skipped) or CONN_E_FAIL with err
 * (out of memory, a line over 2 GiB). pos and line must already be past
 * this line. */
static int conn_file_emit(file_source_t *s, file_follower_t *f, const char *text, size_t len,
                          conn_batch_t *out, char *err, size_t errlen) {
  if (len > 0 && text[len - 1] == '\r')
    len--;
  if (s->json) { /* text is not NUL-terminated: a bounded scan */
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
      i++;
    if (i == len)
      return 0;
  }
  if (len > INT32_MAX) {
    snprintf(err, errlen, "%s:%" PRId64 ": a line of %zu bytes is over the 2 GiB record limit",
             f->path, f->line, len);
    return CONN_E_FAIL;
  }
  conn_record_t *r = conn_batch_add(out);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return CONN_E_FAIL;
  }
  /* Lent, not given (see conn_record_t): the topic lives as long as the
   * task, the rest in the batch's memory; no malloc or free per line. */
  r->lent = CONN_LENT_TOPIC | CONN_LENT_VALUE | CONN_LENT_SOURCE_PARTITION |
            CONN_LENT_SOURCE_OFFSET;
  r->topic = s->topic;
  r->value = conn_batch_copy(out, text, len);
  r->value_len = (int32_t)len;
  r->source_partition = conn_batch_copy(out, f->partition, strlen(f->partition));
  r->source_offset = conn_file_offset(s, f, out);
  if (!r->value || !r->source_partition || !r->source_offset)
    goto fail;
  if (!s->json)
    return 1;
  char perr[512];
  bool ts_bad = false;
  int rc = conn_file_json_line(s->checker, f->path, f->line, text, len, r, &ts_bad, perr,
                               sizeof perr);
  if (rc == 0) {
    /* Kept, never dropped: the framework applies errors.tolerance. */
    conn_ctx_log(s->ctx, 1, "%s", perr);
    if (conn_record_add_header(r, CONN_HEADER_ERROR, perr, (int32_t)strlen(perr)) != 0)
      goto fail;
    return 1;
  }
  if (ts_bad && !f->warned_ts) {
    f->warned_ts = true;
    conn_ctx_log(s->ctx, 1,
                 "%s:%" PRId64 ": %s is neither epoch milliseconds nor an ISO-8601 date-time; "
                 "using the append time (warned once per file)",
                 f->path, f->line, s->ts_field);
  }
  if (rc == 1)
    return 1;
fail: /* the batch holds only whole records */
  snprintf(err, errlen, "out of memory"); /* the only failure after the checks above */
  conn_record_clear(r);
  out->count--;
  return CONN_E_FAIL;
}

/* Emits the complete lines in f's buffer, up to room records. Returns the
 * number added or CONN_E_FAIL. */
static int conn_file_drain_buffer(file_source_t *s, file_follower_t *f, conn_batch_t *out,
                                  size_t room, char *err, size_t errlen) {
  int added = 0;
  while ((size_t)added < room && f->start < f->len) {
    char *line = f->buf + f->start;
    char *nl = memchr(line, '\n', f->len - f->start);
    if (!nl)
      break;
    size_t n = (size_t)(nl - line);
    f->pos += (int64_t)n + 1;
    f->line++;
    int rc = conn_file_emit(s, f, line, n, out, err, errlen);
    if (rc < 0) { /* not consumed: the next poll meets the same line */
      f->pos -= (int64_t)n + 1;
      f->line--;
      return added > 0 ? added : rc;
    }
    f->start += n + 1;
    added += rc;
  }
  if (f->start == f->len)
    f->start = f->len = 0;
  return added;
}

/* Reads more of f into its buffer. Returns the bytes read, 0 at the end,
 * or CONN_E_RETRY with err. */
static ssize_t conn_file_read(file_follower_t *f, char *err, size_t errlen) {
  if (f->start > 0 && f->start == f->len)
    f->start = f->len = 0;
  if (f->start > 0 && f->cap - f->len < FILE_READ_CHUNK) { /* compact */
    memmove(f->buf, f->buf + f->start, f->len - f->start);
    f->len -= f->start;
    f->start = 0;
  }
  if (f->cap - f->len < FILE_READ_CHUNK) {
    size_t cap = f->cap ? f->cap * 2 : 2 * FILE_READ_CHUNK;
    char *b = realloc(f->buf, cap);
    if (!b) {
      snprintf(err, errlen, "%s: out of memory for a %zu-byte line", f->path, f->len - f->start);
      return CONN_E_RETRY;
    }
    f->buf = b;
    f->cap = cap;
  }
  ssize_t r = pread(f->fd, f->buf + f->len, FILE_READ_CHUNK, f->read_pos);
  if (r < 0) {
    snprintf(err, errlen, "%s: read at byte %" PRId64 ": %s", f->path, f->read_pos,
             strerror(errno));
    return CONN_E_RETRY;
  }
  f->len += (size_t)r;
  f->read_pos += r;
  return r;
}

/* At the end of f's data: checks for truncation and rotation. Returns 1
 * when there may be more to read now, 0 when not, or CONN_E_FAIL. */
static int conn_file_at_end(file_source_t *s, file_follower_t *f, conn_batch_t *out, int *added,
                            char *err, size_t errlen) {
  struct stat st;
  if (fstat(f->fd, &st) == 0 && st.st_size < f->read_pos) {
    conn_ctx_log(s->ctx, 2, "%s: truncated to %lld bytes (was read to %" PRId64 "); reading from 0",
                 f->path, (long long)st.st_size, f->read_pos);
    conn_file_follower_reset(f);
    return 1;
  }
  struct stat now;
  bool same = stat(f->path, &now) == 0 && now.st_dev == f->dev && now.st_ino == f->ino;
  if (same)
    return 0;
  if (!f->rotated) {
    /* Read the old file once more: the writer may have appended between
     * our last read and the rename. */
    f->rotated = true;
    return 1;
  }
  if (f->start < f->len) { /* the rotated file's last line, without '\n' */
    size_t n = f->len - f->start;
    f->pos += (int64_t)n;
    f->line++;
    int rc = conn_file_emit(s, f, f->buf + f->start, n, out, err, errlen);
    if (rc < 0) {
      f->pos -= (int64_t)n;
      f->line--;
      return rc;
    }
    *added += rc;
  }
  conn_ctx_log(s->ctx, 2, "%s: rotated after %" PRId64 " bytes; following the new file", f->path,
               f->pos);
  if (s->is_glob) {
    if (conn_file_ident(s, f) == 0) /* (else it may be read again: no loss) */
      conn_file_retire(s, f->partition, f->dev, f->ino, f->pos, f->head_len, f->head_hash);
  }
  close(f->fd);
  f->fd = -1;
  conn_file_follower_reset(f);
  int rc = conn_file_open(s, f, err, errlen);
  return rc < 0 ? rc : f->fd >= 0;
}

/* Reads up to room records from f. Returns the number added, or a
 * CONN_E_* code with err. */
static int conn_file_follow(file_source_t *s, file_follower_t *f, conn_batch_t *out, size_t room,
                            char *err, size_t errlen) {
  if (f->fd < 0) {
    int rc = conn_file_open(s, f, err, errlen);
    if (rc < 0 || f->fd < 0)
      return rc;
  }
  /* On an error after records were added, the records are returned and
   * the error left for the next poll, which meets it again (nothing was
   * consumed past it): records polled are never thrown away. */
  int added = 0;
  for (;;) {
    int rc = conn_file_drain_buffer(s, f, out, room - (size_t)added, err, errlen);
    if (rc < 0)
      return added > 0 ? added : rc;
    added += rc;
    if ((size_t)added >= room)
      return added;
    ssize_t r = conn_file_read(f, err, errlen);
    if (r < 0)
      return added > 0 ? added : (int)r;
    if (r > 0)
      continue;
    int more = conn_file_at_end(s, f, out, &added, err, errlen);
    if (more < 0)
      return added > 0 ? added : more;
    if (!more || f->fd < 0 || (size_t)added >= room)
      return added;
  }
}

static void conn_file_source_stop(void *task) {
  file_source_t *s = task;
  for (size_t i = 0; i < s->nfiles; i++)
    conn_file_follower_free(s->files[i]);
  free(s->files);
  for (size_t r = 0; r < s->nretired; r++)
    free(s->retired[r].owner);
  free(s->retired);
  free(s->pattern);
  free(s->topic);
  conn_file_json_free(s->checker);
  free(s->key_field);
  free(s->ts_field);
  memset(s, 0, sizeof *s);
}

static char *conn_file_strdup_opt(const char *s) {
  return s ? strdup(s) : NULL;
}

static int conn_file_source_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg,
                                  char *err, size_t errlen) {
  file_source_t *s = task;
  const conn_def_t *d = conn_file_source_defs;
  s->ctx = ctx;
  s->pattern = conn_file_strdup_opt(conn_get_string(d, cfg, "file"));
  s->topic = conn_file_strdup_opt(conn_get_string(d, cfg, "topic"));
  s->key_field = conn_file_strdup_opt(conn_get_string(d, cfg, "key.field"));
  s->ts_field = conn_file_strdup_opt(conn_get_string(d, cfg, "timestamp.field"));
  s->batch_size = (size_t)conn_get_long(d, cfg, "batch.size");
  s->scan_ms = conn_get_long(d, cfg, "scan.interval.ms");
  const char *fmt = conn_get_string(d, cfg, "format");
  s->json = fmt && strcmp(fmt, "json") == 0;
  if (s->json && !(s->checker = conn_file_json_new(s->key_field, s->ts_field))) {
    snprintf(err, errlen, "out of memory");
    conn_file_source_stop(s);
    return CONN_E_FAIL;
  }
  if (!s->pattern || !s->topic) {
    snprintf(err, errlen, "%s", !s->pattern ? "file: missing" : "topic: missing");
    conn_file_source_stop(s);
    return CONN_E_FAIL;
  }
  s->is_glob = strpbrk(s->pattern, "*?[") != NULL;
  int rc = conn_file_scan(s, err, errlen);
  if (rc == 0 && !s->is_glob)
    rc = conn_file_open(s, s->files[0], err, errlen);
  if (rc != 0) {
    conn_file_source_stop(s);
    return rc;
  }
  if (!s->is_glob && s->files[0]->fd < 0)
    conn_ctx_log(ctx, 1, "%s does not exist yet; waiting for it to be created", s->pattern);
  return CONN_OK;
}

static int conn_file_source_poll(void *task, conn_batch_t *out, size_t max, char *err,
                                 size_t errlen) {
  file_source_t *s = task;
  size_t limit = max < s->batch_size ? max : s->batch_size;
  if (s->is_glob && conn_file_now_ms() - s->last_scan >= s->scan_ms) {
    int rc = conn_file_scan(s, err, errlen);
    if (rc != 0)
      return rc;
  }
  size_t added = 0;
  /* Round robin, so one busy file does not starve the others. */
  for (size_t k = 0; k < s->nfiles && added < limit; k++) {
    file_follower_t *f = s->files[(s->next + k) % s->nfiles];
    int rc = conn_file_follow(s, f, out, limit - added, err, errlen);
    if (rc < 0)
      return added > 0 ? (int)added : rc; /* see conn_file_follow */
    added += (size_t)rc;
  }
  if (s->nfiles)
    s->next = (s->next + 1) % s->nfiles;
  return (int)added;
}

static const char *const conn_file_source_aliases[] = {
    "FileStreamSource", "FileStreamSourceConnector",
    "org.apache.kafka.connect.file.FileStreamSourceConnector", NULL};

/* KIP-875: the checks of Kafka's FileStreamSourceConnector.alterOffsets,
 * so that PATCH .../offsets refuses what the task would not understand
 * (and would answer by reading the whole file again). The framework keeps
 * the offsets; nothing to apply here. */
static int conn_file_source_alter_offsets(const conn_config_t *cfg, const char *partition_json,
                                          const char *offset_json, char *msg, size_t len) {
  (void)cfg;
  if (!partition_json) return 0; /* a reset of every partition */
  yajl_val part = conn_json_parse(NULL, partition_json, strlen(partition_json), NULL, 0);
  yajl_val off = offset_json ? conn_json_parse(NULL, offset_json, strlen(offset_json), NULL, 0)
                             : NULL;
  yajl_val fn = conn_json_member(part, "filename");
  yajl_val pos = conn_json_member(off, "position"), ino = conn_json_member(off, "inode");
  yajl_val head = conn_json_member(off, "head"), rot = conn_json_member(off, "rotated");
  int rc = -1;
  if (!fn || !YAJL_IS_STRING(fn) || !*fn->u.string)
    snprintf(msg, len, "Partition objects should contain the key 'filename' (a file name)");
  else if (!offset_json)
    rc = 0; /* a reset of this file: always allowed */
  else if (!pos)
    snprintf(msg, len, "Offset objects should either be null or contain the key 'position'");
  else if (!YAJL_IS_INTEGER(pos))
    snprintf(msg, len, "The value for the 'position' key in the offset is expected to be a "
             "Long value");
  else if (YAJL_GET_INTEGER(pos) < 0)
    snprintf(msg, len, "The value for the 'position' key in the offset should be a "
             "non-negative value");
  else if (ino && !YAJL_IS_NULL(ino) && (!YAJL_IS_INTEGER(ino) || YAJL_GET_INTEGER(ino) < 0))
    snprintf(msg, len, "The value for the 'inode' key in the offset, when given, should be a "
             "non-negative integer (the file's inode)");
  else if (head && !YAJL_IS_NULL(head) && !YAJL_IS_STRING(head))
    snprintf(msg, len, "The value for the 'head' key in the offset, when given, should be a "
             "string (\"<bytes>:<hash>\", the file's identity)");
  else if (rot && !YAJL_IS_NULL(rot) && !YAJL_IS_ARRAY(rot))
    snprintf(msg, len, "The value for the 'rotated' key in the offset, when given, should be an "
             "array (of the files read to their end)");
  else
    rc = 0;
  yajl_tree_free(part);
  yajl_tree_free(off);
  return rc;
}

const conn_plugin_t conn_file_source_plugin = {
    .name = "file-source",
    .aliases = conn_file_source_aliases,
    .kind = CONN_SOURCE,
    .version = "1.0",
    .defs = conn_file_source_defs,
    .validate = conn_file_source_validate,
    .task_configs = NULL, /* one task: a file is read in order by one reader */
    .task_size = sizeof(file_source_t),
    .start = conn_file_source_start,
    .stop = conn_file_source_stop,
    .poll = conn_file_source_poll,
    .alter_offsets = conn_file_source_alter_offsets,
};
