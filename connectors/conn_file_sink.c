/*
 * conn_file_sink.c: the file sink connector (`file-sink`; Kafka's
 * FileStreamSink): writes each record as one line to a file, or to
 * standard output when `file` is absent or "-" (as Kafka).
 *
 * Line format:
 *   format=string   the value's bytes as they are, then '\n'
 *   format=json     the value, which must be JSON (else the record is
 *                   reported through conn_ctx_report: errors.tolerance and
 *                   the dead letter queue decide), compacted onto one line
 *                   when it spans several
 *   include.key=true, string:  key '\t' value   (a null key prints "null",
 *                               as kafka-console-consumer's print.key)
 *   include.key=true, json:    {"key": K, "value": V}; K is the key as JSON
 *                               when it parses as JSON, else a JSON string,
 *                               or null
 * A tombstone (null value) is skipped (behavior.on.null.values=ignore, the
 * default) or written as the line "null" as Kafka's FileStreamSink does
 * (write).
 *
 * Buffering and durability: put appends lines to a memory buffer; the
 * buffer is written to the file (visible to readers, not yet durable) at
 * the end of each put by default (flush.lines and flush.ms 0; Kafka's sink
 * writes each line as it is put), or, to coalesce small puts, when it
 * holds flush.lines lines or its oldest line is flush.ms old at a put;
 * always when it passes 1 MiB, and at flush. flush writes and fsyncs, and
 * only then does the framework commit the consumed offsets: a crash
 * between a write and the commit means those records are written again
 * after the restart (at-least-once, as Kafka's file sink).
 *
 * Rotation (file.max.bytes > 0): before a line would take the file past
 * the limit, the file is fsynced and renamed to <file>.1, then <file>.2 at
 * the next rotation, and so on (the highest number is the newest; after a
 * restart numbering continues after the highest existing one), the
 * directory fsynced, and a new <file> created. A single line longer than
 * the limit still goes whole into one file.
 */
#include "conn_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#define FILE_SINK_BUF_MAX (1 << 20)

static const char *const sink_formats[] = {"string", "json", NULL};
static const char *const sink_null_values[] = {"ignore", "write", NULL};

static const conn_def_t conn_file_sink_defs[] = {
    {.name = "file", .type = CONN_T_STRING, .optional = true, .importance = CONN_IMP_HIGH,
     .group = "File",
     .doc = "The file to append lines to (created when missing). Absent or \"-\": standard "
            "output, as Kafka."},
    {.name = "format", .type = CONN_T_STRING, .default_value = "string", .choices = sink_formats,
     .importance = CONN_IMP_MEDIUM, .group = "Format",
     .doc = "string: each line is the value's bytes. json: the value must be JSON (a record "
            "whose value is not goes to errors.tolerance and the dead letter queue) and is "
            "written on one line."},
    {.name = "include.key", .type = CONN_T_BOOLEAN, .default_value = "false",
     .importance = CONN_IMP_LOW, .group = "Format",
     .doc = "Also write the key: format=string writes key<TAB>value (a null key as \"null\"); "
            "format=json writes {\"key\": K, \"value\": V}, K as JSON when the key is JSON, "
            "else a JSON string."},
    {.name = "behavior.on.null.values", .type = CONN_T_STRING, .default_value = "ignore",
     .choices = sink_null_values, .importance = CONN_IMP_LOW, .group = "Format",
     .doc = "Tombstones (null values): ignore skips them; write writes the line \"null\" as "
            "Kafka's FileStreamSink does."},
    {.name = "flush.lines", .type = CONN_T_INT, .default_value = "0", .min = 0, .max = INT32_MAX,
     .importance = CONN_IMP_LOW, .group = "Flush",
     .doc = "Write buffered lines to the file once this many are buffered (0: no line limit). "
            "With flush.lines and flush.ms both 0, every put's lines are written at its end. "
            "Durable (fsynced) only at the framework's flush, before offsets are committed."},
    {.name = "flush.ms", .type = CONN_T_LONG, .default_value = "0", .min = 0,
     .max = 86400000, .importance = CONN_IMP_LOW, .group = "Flush",
     .doc = "Write buffered lines to the file when the oldest is this old at a put (0: no age "
            "limit). With flush.lines and flush.ms both 0 (the default), every put's lines are "
            "written at its end, as Kafka's FileStreamSink writes them."},
    {.name = "file.max.bytes", .type = CONN_T_LONG, .default_value = "0", .min = 0,
     .max = INT64_MAX, .importance = CONN_IMP_LOW, .group = "Rotation",
     .doc = "Rotate the file before it would pass this size: it is renamed to <file>.1, then "
            "<file>.2 and so on (highest is newest) and a new file started. 0: never. Needs a "
            "file."},
    CONN_DEF_END,
};

static bool conn_file_sink_is_stdout(const char *file) {
  return file == NULL || strcmp(file, "-") == 0;
}

static int conn_file_sink_validate(const conn_config_t *cfg, const char **key, char *msg,
                                   size_t len) {
  if (conn_get_long(conn_file_sink_defs, cfg, "file.max.bytes") > 0 &&
      conn_file_sink_is_stdout(conn_get_string(conn_file_sink_defs, cfg, "file"))) {
    *key = "file.max.bytes";
    snprintf(msg, len, "rotation needs a file; standard output cannot be rotated");
    return -1;
  }
  return 0;
}

typedef struct {
  conn_ctx_t *ctx;
  char *path;          /* NULL: standard output */
  int fd;
  bool json, include_key, write_nulls;
  int64_t flush_lines, flush_ms, max_bytes;
  int64_t size;        /* bytes in the current file (written, not buffered) */
  int next_index;      /* next rotation suffix */
  char *buf;
  size_t len, cap;
  int64_t buffered;    /* lines in buf */
  int64_t oldest_ms;   /* when the oldest buffered line was added */
  yajl_gen gen;        /* reused for the json envelope and compaction */
} file_sink_t;

static int64_t conn_file_sink_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int conn_file_sink_append(file_sink_t *s, const void *p, size_t n) {
  if (s->cap - s->len < n) {
    size_t cap = s->cap ? s->cap : 65536;
    while (cap - s->len < n)
      cap *= 2;
    char *b = realloc(s->buf, cap);
    if (!b)
      return -1;
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n);
  s->len += n;
  return 0;
}

/* Writes the buffer to the file. Returns CONN_OK or CONN_E_RETRY (a full
 * disk may clear; what was written stays, the rest is kept). */
static int conn_file_sink_open(file_sink_t *s, char *err, size_t errlen);

static int conn_file_sink_write(file_sink_t *s, char *err, size_t errlen) {
  if (s->fd < 0) { /* a failed reopen after a rotation */
    int rc = conn_file_sink_open(s, err, errlen);
    if (rc != CONN_OK)
      return rc == CONN_E_FAIL ? CONN_E_RETRY : rc;
  }
  size_t done = 0;
  while (done < s->len) {
    ssize_t w = write(s->fd, s->buf + done, s->len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      snprintf(err, errlen, "%s: write: %s", s->path ? s->path : "stdout", strerror(errno));
      memmove(s->buf, s->buf + done, s->len - done);
      s->len -= done;
      s->size += (int64_t)done;
      return CONN_E_RETRY;
    }
    done += (size_t)w;
  }
  s->size += (int64_t)done;
  s->len = 0;
  s->buffered = 0;
  return CONN_OK;
}

static int conn_file_sink_fsync(file_sink_t *s, char *err, size_t errlen) {
  if (!s->path)
    return CONN_OK; /* a pipe or terminal: nothing to make durable */
  if (fsync(s->fd) != 0) {
    snprintf(err, errlen, "%s: fsync: %s", s->path, strerror(errno));
    return CONN_E_RETRY;
  }
  return CONN_OK;
}

static int conn_file_sink_open(file_sink_t *s, char *err, size_t errlen) {
  s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (s->fd < 0) {
    snprintf(err, errlen, "%s: %s", s->path, strerror(errno));
    return errno == ENOENT || errno == EACCES || errno == EISDIR ? CONN_E_FAIL : CONN_E_RETRY;
  }
  struct stat st;
  s->size = fstat(s->fd, &st) == 0 ? st.st_size : 0;
  return CONN_OK;
}

/* fsyncs the directory holding path, so a rename in it survives a crash. */
static void conn_file_sink_sync_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return;
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  free(copy);
}

/* The first free rotation suffix: one more than the highest existing. */
static int conn_file_sink_next_index(const char *path) {
  char name[PATH_MAX];
  int i = 1;
  for (;;) {
    snprintf(name, sizeof name, "%s.%d", path, i);
    if (access(name, F_OK) != 0)
      return i;
    i++;
  }
}

/* Rotation: write and fsync what is buffered (it belongs to the old
 * file), rename, sync the directory (the rename survives a crash), open a
 * new file. */
static int conn_file_sink_rotate(file_sink_t *s, char *err, size_t errlen) {
  int rc = conn_file_sink_write(s, err, errlen);
  if (rc == CONN_OK)
    rc = conn_file_sink_fsync(s, err, errlen);
  if (rc != CONN_OK)
    return rc;
  char name[PATH_MAX];
  int free_index = conn_file_sink_next_index(s->path);
  if (free_index > s->next_index)
    s->next_index = free_index;
  snprintf(name, sizeof name, "%s.%d", s->path, s->next_index);
  if (rename(s->path, name) != 0) {
    snprintf(err, errlen, "%s: rotating to %s: %s", s->path, name, strerror(errno));
    return CONN_E_RETRY;
  }
  s->next_index++;
  close(s->fd);
  s->fd = -1;
  conn_file_sink_sync_dir(s->path);
  conn_ctx_log(s->ctx, 2, "%s: rotated to %s", s->path, name);
  return conn_file_sink_open(s, err, errlen);
}

/* Whether data (n bytes) parses as one JSON value. */
static bool conn_file_sink_is_json(const void *data, size_t n) {
  yajl_handle h = yajl_alloc(NULL, NULL, NULL);
  if (!h)
    return false;
  bool ok = yajl_parse(h, data, n) == yajl_status_ok && yajl_complete_parse(h) == yajl_status_ok;
  yajl_free(h);
  return ok;
}

/* Appends a JSON value to g: the text parsed and regenerated (which
 * compacts it), or, when as_string and it is not JSON, a JSON string.
 * Returns 0, or -1 when the text is not JSON (and not as_string). */
static int conn_file_sink_gen_json(yajl_gen g, const void *data, int32_t len, bool as_string) {
  if (data == NULL) {
    yajl_gen_null(g);
    return 0;
  }
  char err[8];
  yajl_val v = conn_json_parse(NULL, data, (size_t)len, err, sizeof err);
  if (v) {
    int rc = conn_json_gen(g, v);
    yajl_tree_free(v);
    return rc;
  }
  if (!as_string)
    return -1;
  /* Not valid UTF-8 either: yajl_gen writes the bytes as they are. */
  yajl_gen_string(g, data, (size_t)len);
  return 0;
}

/* Appends one record's line to the buffer. Returns 1 (added), 0 (skipped
 * or reported), or CONN_E_FAIL. */
static int conn_file_sink_line(file_sink_t *s, const conn_record_t *r, char *err,
                               size_t errlen) {
  if (r->value == NULL && !s->write_nulls)
    return 0;
  const void *val = r->value ? r->value : "null";
  size_t vlen = r->value ? (size_t)r->value_len : 4;
  int rc = 0;
  if (!s->json) {
    if (s->include_key) {
      rc |= conn_file_sink_append(s, r->key ? r->key : "null", r->key ? (size_t)r->key_len : 4);
      rc |= conn_file_sink_append(s, "\t", 1);
    }
    rc |= conn_file_sink_append(s, val, vlen);
  } else {
    bool multiline = memchr(val, '\n', vlen) || memchr(val, '\r', vlen);
    if (!s->include_key && !multiline) {
      if (!conn_file_sink_is_json(val, vlen))
        goto not_json;
      rc |= conn_file_sink_append(s, val, vlen);
    } else {
      yajl_gen_reset(s->gen, NULL);
      yajl_gen_clear(s->gen);
      if (s->include_key) {
        yajl_gen_map_open(s->gen);
        yajl_gen_string(s->gen, (const unsigned char *)"key", 3);
        conn_file_sink_gen_json(s->gen, r->key, r->key_len, true);
        yajl_gen_string(s->gen, (const unsigned char *)"value", 5);
      }
      if (conn_file_sink_gen_json(s->gen, r->value ? val : NULL, (int32_t)vlen, false) != 0)
        goto not_json;
      if (s->include_key)
        yajl_gen_map_close(s->gen);
      const unsigned char *b;
      size_t n;
      yajl_gen_get_buf(s->gen, &b, &n);
      rc |= conn_file_sink_append(s, b, n);
    }
  }
  rc |= conn_file_sink_append(s, "\n", 1);
  if (rc != 0) {
    snprintf(err, errlen, "out of memory");
    return CONN_E_FAIL;
  }
  return 1;
not_json:;
  char reason[256];
  snprintf(reason, sizeof reason,
           "file sink (format=json): the value of %s-%" PRId32 "@%" PRId64 " is not JSON",
           r->topic ? r->topic : "?", r->partition, r->offset);
  conn_ctx_report(s->ctx, r, reason);
  return 0;
}

static void conn_file_sink_stop(void *task) {
  file_sink_t *s = task;
  char err[256];
  if (s->fd >= 0 && s->len > 0)
    conn_file_sink_write(s, err, sizeof err); /* best effort; offsets say what is durable */
  if (s->path && s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  if (s->gen)
    yajl_gen_free(s->gen);
  free(s->buf);
  free(s->path);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}

static int conn_file_sink_start(void *task, conn_ctx_t *ctx, const conn_config_t *cfg,
                                char *err, size_t errlen) {
  file_sink_t *s = task;
  const conn_def_t *d = conn_file_sink_defs;
  s->ctx = ctx;
  s->fd = -1;
  const char *file = conn_get_string(d, cfg, "file");
  const char *fmt = conn_get_string(d, cfg, "format");
  const char *nulls = conn_get_string(d, cfg, "behavior.on.null.values");
  s->json = fmt && strcmp(fmt, "json") == 0;
  s->write_nulls = nulls && strcmp(nulls, "write") == 0;
  s->include_key = conn_get_bool(d, cfg, "include.key");
  s->flush_lines = conn_get_long(d, cfg, "flush.lines");
  s->flush_ms = conn_get_long(d, cfg, "flush.ms");
  s->max_bytes = conn_get_long(d, cfg, "file.max.bytes");
  s->gen = yajl_gen_alloc(NULL);
  if (!s->gen) {
    snprintf(err, errlen, "out of memory");
    return CONN_E_FAIL;
  }
  if (conn_file_sink_is_stdout(file)) {
    s->fd = STDOUT_FILENO;
    return CONN_OK;
  }
  s->path = strdup(file);
  int rc = s->path ? conn_file_sink_open(s, err, errlen) : CONN_E_FAIL;
  if (rc != CONN_OK) {
    conn_file_sink_stop(s);
    return rc;
  }
  s->next_index = 1;
  return CONN_OK;
}

static int conn_file_sink_put(void *task, const conn_record_t *records, size_t n, char *err,
                              size_t errlen) {
  file_sink_t *s = task;
  /* put is called again with the same records after CONN_E_RETRY, so it
   * may only ask for a retry before it buffers any of them: here, when a
   * backlog left by failed writes has grown past the bound. Later write
   * failures keep the lines buffered and surface at flush, which the
   * framework retries before it commits any offset. */
  if (s->len >= FILE_SINK_BUF_MAX) {
    int rc = conn_file_sink_write(s, err, errlen);
    if (rc != CONN_OK)
      return rc;
  }
  for (size_t i = 0; i < n; i++) {
    size_t mark = s->len;
    int rc = conn_file_sink_line(s, &records[i], err, errlen);
    if (rc < 0)
      return rc;
    if (rc == 0)
      continue;
    if (s->buffered == 0)
      s->oldest_ms = conn_file_sink_now_ms();
    s->buffered++;
    if (s->max_bytes > 0 && s->size + (int64_t)s->len > s->max_bytes &&
        s->size + (int64_t)mark > 0) {
      /* The line just added would pass the limit: it goes to the next
       * file. It is held aside while the buffer before it is written to
       * the old file. */
      size_t line_len = s->len - mark;
      char *line = malloc(line_len);
      if (!line) {
        snprintf(err, errlen, "out of memory");
        return CONN_E_FAIL;
      }
      memcpy(line, s->buf + mark, line_len);
      s->len = mark;
      s->buffered--;
      char rerr[256];
      if (conn_file_sink_rotate(s, rerr, sizeof rerr) != CONN_OK)
        conn_ctx_log(s->ctx, 1, "%s (rotation retried at the next line)", rerr);
      rc = conn_file_sink_append(s, line, line_len);
      free(line);
      if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return CONN_E_FAIL;
      }
      if (s->buffered++ == 0)
        s->oldest_ms = conn_file_sink_now_ms();
    }
  }
  bool every_put = s->flush_lines == 0 && s->flush_ms == 0;
  bool due = s->len >= FILE_SINK_BUF_MAX || (every_put && s->buffered > 0) ||
             (s->flush_lines > 0 && s->buffered >= s->flush_lines) ||
             (s->flush_ms > 0 && s->buffered > 0 &&
              conn_file_sink_now_ms() - s->oldest_ms >= s->flush_ms);
  if (due) {
    char werr[256];
    if (conn_file_sink_write(s, werr, sizeof werr) != CONN_OK)
      conn_ctx_log(s->ctx, 1, "%s (kept buffered; retried at flush)", werr);
  }
  return CONN_OK;
}

static int conn_file_sink_flush(void *task, char *err, size_t errlen) {
  file_sink_t *s = task;
  int rc = conn_file_sink_write(s, err, errlen);
  return rc == CONN_OK ? conn_file_sink_fsync(s, err, errlen) : rc;
}

static const char *const conn_file_sink_aliases[] = {
    "FileStreamSink", "FileStreamSinkConnector",
    "org.apache.kafka.connect.file.FileStreamSinkConnector", NULL};

const conn_plugin_t conn_file_sink_plugin = {
    .name = "file-sink",
    .aliases = conn_file_sink_aliases,
    .kind = CONN_SINK,
    .version = "1.0",
    .defs = conn_file_sink_defs,
    .validate = conn_file_sink_validate,
    .task_configs = NULL, /* one task: lines of one file are written by one writer */
    .task_size = sizeof(file_sink_t),
    .start = conn_file_sink_start,
    .stop = conn_file_sink_stop,
    .put = conn_file_sink_put,
    .flush = conn_file_sink_flush,
};
