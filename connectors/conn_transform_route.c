/*
 * conn_transform_route.c: the SMTs that change only where a record goes,
 * or whether it goes at all: RegexRouter, TimestampRouter and Filter; and
 * the whole-string POSIX regex matcher they share with TopicNameMatches.
 *
 * Regular expressions are POSIX extended (regcomp with REG_EXTENDED), not
 * Java's: no \d, no lazy quantifiers, no (?:...), no named groups; they
 * match the whole topic name, as Java's Matcher.matches() does in Kafka.
 * They are compiled once, at init.
 *
 * TimestampRouter's timestamp.format takes the SimpleDateFormat letters
 * y M d H m s S (numeric forms only) and 'quoted text', in UTC as in Kafka.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn_transform_int.h"

/* ---- whole-string regex ------------------------------------------------------------ */

int conn__regex_compile(conn__regex_t *r, const char *pattern, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  int rc = regcomp(&r->re, pattern, REG_EXTENDED);
  if (rc != 0) {
    char why[160];
    regerror(rc, &r->re, why, sizeof why);
    return conn__terr(err, errlen, "invalid regular expression '%s': %s (POSIX extended syntax)",
                      pattern, why);
  }
  r->groups = r->re.re_nsub;
  r->compiled = true;
  return 0;
}

void conn__regex_free(conn__regex_t *r) {
  if (r->compiled) regfree(&r->re);
  r->compiled = false;
}

/* POSIX matching is leftmost-longest: when the whole string matches, the
 * match regexec reports starts at 0 and is the whole string. So a
 * whole-string test needs no anchors added to the user's pattern (adding
 * ^( )$ would renumber groups, and glibc reads a stray ')' as a literal,
 * which would make the wrapped pattern mean something else). */
bool conn__regex_matches(const conn__regex_t *r, const char *s, regmatch_t *m) {
  if (!r->compiled || !s) return false;
  regmatch_t whole[1];
  regmatch_t *mm = m ? m : whole;
  size_t n = m ? r->groups + 1 : 1;
  if (regexec(&r->re, s, n, mm, 0) != 0) return false;
  return mm[0].rm_so == 0 && (size_t)mm[0].rm_eo == strlen(s);
}

/* ---- RegexRouter ---------------------------------------------------------------- */

static const conn_def_t regex_defs[] = {
    {.name = "regex", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH,
     .doc = "Regular expression to use for matching (POSIX extended syntax; it must match the "
            "whole topic name)."},
    {.name = "replacement", .type = CONN_T_STRING, .importance = CONN_IMP_HIGH,
     .doc = "Replacement string: $1..$n are groups of the regex, \\$ a literal $."},
    CONN_DEF_END,
};

/* The replacement, parsed once: literal pieces and group references. */
typedef struct {
  char *lit;  /* literal text (NULL for a group) */
  size_t group;
} regex_piece_t;

typedef struct {
  conn__regex_t re;
  regex_piece_t *pieces;
  size_t n_pieces;
  regmatch_t *m;
  char *buf;
  size_t cap;
  /* The last topic routed and its result (NULL: unchanged). A task's
   * records mostly share a topic, and a string compare is much cheaper
   * than regexec with groups. */
  char *last_in, *last_out;
} regex_router_t;

#define REGEX_MAX_GROUPS 99 /* a bound for the per-transform match array */

static int regex_add(regex_router_t *t, const char *lit, size_t len, size_t group) {
  regex_piece_t *p = realloc(t->pieces, (t->n_pieces + 1) * sizeof *p);
  if (!p) return -1;
  t->pieces = p;
  p += t->n_pieces;
  p->lit = NULL;
  p->group = group;
  if (lit) {
    if (!(p->lit = strndup(lit, len))) return -1;
  }
  t->n_pieces++;
  return 0;
}

/* Java's Matcher.appendReplacement syntax: '\x' is x; '$' then digits is a
 * group, taking further digits while the number stays a valid group;
 * ${name} (named groups) does not exist in POSIX regex. */
static int regex_parse_replacement(regex_router_t *t, const char *s, char *err, size_t errlen) {
  char *lit = malloc(strlen(s) + 1);
  size_t n = 0;
  if (!lit) return conn__terr(err, errlen, "out of memory");
  int rc = 0;
  for (const char *p = s; *p && rc == 0; p++) {
    if (*p == '\\') {
      if (!p[1]) {
        rc = conn__terr(err, errlen, "replacement: character to be escaped is missing");
        break;
      }
      lit[n++] = *++p;
    } else if (*p == '$') {
      if (p[1] < '0' || p[1] > '9') {
        rc = conn__terr(err, errlen,
                        "replacement: '$' must be followed by a group number (named groups "
                        "do not exist in POSIX regular expressions; write \\$ for a '$')");
        break;
      }
      size_t g = (size_t)(*++p - '0');
      while (p[1] >= '0' && p[1] <= '9' && g * 10 + (size_t)(p[1] - '0') <= t->re.groups)
        g = g * 10 + (size_t)(*++p - '0');
      if (g > t->re.groups) {
        rc = conn__terr(err, errlen, "replacement: no group %zu in regex (it has %zu)", g,
                        t->re.groups);
        break;
      }
      if ((n > 0 && regex_add(t, lit, n, 0) != 0) || regex_add(t, NULL, 0, g) != 0)
        rc = conn__terr(err, errlen, "out of memory");
      n = 0;
    } else {
      lit[n++] = *p;
    }
  }
  if (rc == 0 && n > 0 && regex_add(t, lit, n, 0) != 0) rc = conn__terr(err, errlen, "out of memory");
  free(lit);
  return rc;
}

static int regex_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  regex_router_t *t = st;
  char msg[256];
  if (conn__regex_compile(&t->re, conn_get_string(regex_defs, cfg, "regex"), msg, sizeof msg))
    return conn__terr(err, errlen, "regex: %s", msg);
  if (t->re.groups > REGEX_MAX_GROUPS)
    return conn__terr(err, errlen, "regex: more than %d groups", REGEX_MAX_GROUPS);
  if (!(t->m = calloc(t->re.groups + 1, sizeof *t->m)))
    return conn__terr(err, errlen, "out of memory");
  return regex_parse_replacement(t, conn_get_string(regex_defs, cfg, "replacement"), err,
                                 errlen);
}

static void regex_close(void *st) {
  regex_router_t *t = st;
  conn__regex_free(&t->re);
  for (size_t i = 0; i < t->n_pieces; i++) free(t->pieces[i].lit);
  free(t->pieces);
  free(t->m);
  free(t->buf);
  free(t->last_in);
  free(t->last_out);
}

/* Remembers in -> out (out NULL: unchanged); on ENOMEM remembers nothing. */
static void regex_remember(regex_router_t *t, const char *in, const char *out) {
  free(t->last_in);
  free(t->last_out);
  t->last_in = strdup(in);
  t->last_out = out ? strdup(out) : NULL;
  if (!t->last_in || (out && !t->last_out)) {
    free(t->last_in);
    free(t->last_out);
    t->last_in = t->last_out = NULL;
  }
}

static int regex_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  regex_router_t *t = st;
  if (!rec->topic) return 1;
  if (t->last_in && strcmp(t->last_in, rec->topic) == 0) {
    if (t->last_out && conn_record_set_topic(rec, t->last_out) != 0)
      return conn__terr(err, errlen, "out of memory");
    return 1;
  }
  if (!conn__regex_matches(&t->re, rec->topic, t->m)) { /* unchanged */
    regex_remember(t, rec->topic, NULL);
    return 1;
  }
  size_t need = 1;
  for (size_t i = 0; i < t->n_pieces; i++) {
    const regex_piece_t *p = &t->pieces[i];
    need += p->lit ? strlen(p->lit)
                   : t->m[p->group].rm_so < 0 ? 0
                                              : (size_t)(t->m[p->group].rm_eo - t->m[p->group].rm_so);
  }
  if (need > t->cap) {
    char *b = realloc(t->buf, need);
    if (!b) return conn__terr(err, errlen, "out of memory");
    t->buf = b;
    t->cap = need;
  }
  size_t n = 0;
  for (size_t i = 0; i < t->n_pieces; i++) {
    const regex_piece_t *p = &t->pieces[i];
    if (p->lit) {
      size_t l = strlen(p->lit);
      memcpy(t->buf + n, p->lit, l);
      n += l;
    } else if (t->m[p->group].rm_so >= 0) { /* an unmatched group adds nothing, as in Java */
      size_t l = (size_t)(t->m[p->group].rm_eo - t->m[p->group].rm_so);
      memcpy(t->buf + n, rec->topic + t->m[p->group].rm_so, l);
      n += l;
    }
  }
  t->buf[n] = '\0';
  if (n == 0) return conn__terr(err, errlen, "the replacement made an empty topic name");
  regex_remember(t, rec->topic, t->buf);
  if (conn_record_set_topic(rec, t->buf) != 0) return conn__terr(err, errlen, "out of memory");
  return 1;
}

static const char *const regex_aliases[] = {"org.apache.kafka.connect.transforms.RegexRouter",
                                            NULL};

const conn_transform_plugin_t conn__regex_router = {
    .name = "RegexRouter", .aliases = regex_aliases, .defs = regex_defs,
    .state_size = sizeof(regex_router_t), .init = regex_init, .apply = regex_apply,
    .close = regex_close};

/* ---- TimestampRouter ------------------------------------------------------------- */

static const conn_def_t ts_defs[] = {
    {.name = "topic.format", .type = CONN_T_STRING, .default_value = "${topic}-${timestamp}",
     .importance = CONN_IMP_HIGH,
     .doc = "Format string which can contain ${topic} and ${timestamp} as placeholders for the "
            "topic and timestamp, respectively."},
    {.name = "timestamp.format", .type = CONN_T_STRING, .default_value = "yyyyMMdd",
     .importance = CONN_IMP_HIGH,
     .doc = "Format string for the timestamp, in java.text.SimpleDateFormat's letters: yyyy yy "
            "MM M dd d HH H mm m ss s SSS and 'quoted text'; in UTC."},
    CONN_DEF_END,
};

/* One field of the compiled timestamp format. */
typedef struct {
  char letter; /* 0: literal */
  int width;   /* letters repeated */
  char *lit;
} ts_piece_t;

typedef struct {
  char *topic_format;
  ts_piece_t *pieces;
  size_t n_pieces;
  char *buf;
  size_t cap;
} ts_router_t;

static int ts_add(ts_router_t *t, char letter, int width, const char *lit, size_t len) {
  ts_piece_t *p = realloc(t->pieces, (t->n_pieces + 1) * sizeof *p);
  if (!p) return -1;
  t->pieces = p;
  p += t->n_pieces++;
  p->letter = letter;
  p->width = width;
  p->lit = NULL;
  if (lit && !(p->lit = strndup(lit, len))) return -1;
  return 0;
}

static int ts_compile(ts_router_t *t, const char *f, char *err, size_t errlen) {
  char *lit = malloc(strlen(f) + 1);
  size_t n = 0;
  int rc = 0;
  if (!lit) return conn__terr(err, errlen, "out of memory");
  for (const char *p = f; *p && rc == 0;) {
    char c = *p;
    if (c == '\'') { /* 'text', '' is a quote */
      if (p[1] == '\'') {
        lit[n++] = '\'';
        p += 2;
        continue;
      }
      const char *q = p + 1;
      for (;;) {
        if (!*q) {
          rc = conn__terr(err, errlen, "timestamp.format: unterminated quote in '%s'", f);
          break;
        }
        if (*q == '\'' && q[1] == '\'') {
          lit[n++] = '\'';
          q += 2;
        } else if (*q == '\'') {
          break;
        } else {
          lit[n++] = *q++;
        }
      }
      p = *q ? q + 1 : q;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      int w = 0;
      while (p[w] == c) w++;
      if (!strchr("yMdHmsS", c) || (c == 'M' && w > 2)) {
        rc = conn__terr(err, errlen,
                        "timestamp.format: pattern letters '%.*s' are not supported (runnel "
                        "supports y M d H m s S, numeric forms only)",
                        w, p);
        break;
      }
      if ((n > 0 && ts_add(t, 0, 0, lit, n) != 0) || ts_add(t, c, w, NULL, 0) != 0)
        rc = conn__terr(err, errlen, "out of memory");
      n = 0;
      p += w;
    } else {
      lit[n++] = c;
      p++;
    }
  }
  if (rc == 0 && n > 0 && ts_add(t, 0, 0, lit, n) != 0) rc = conn__terr(err, errlen, "out of memory");
  free(lit);
  return rc;
}

static int ts_init(void *st, const conn_config_t *cfg, char *err, size_t errlen) {
  ts_router_t *t = st;
  if (!(t->topic_format = strdup(conn_get_string(ts_defs, cfg, "topic.format"))))
    return conn__terr(err, errlen, "out of memory");
  return ts_compile(t, conn_get_string(ts_defs, cfg, "timestamp.format"), err, errlen);
}

static void ts_close(void *st) {
  ts_router_t *t = st;
  for (size_t i = 0; i < t->n_pieces; i++) free(t->pieces[i].lit);
  free(t->pieces);
  free(t->topic_format);
  free(t->buf);
}

/* Formats ms (UTC) into out (at least 64 bytes plus the literals). */
static size_t ts_format(const ts_router_t *t, int64_t ms, char *out, size_t cap) {
  int64_t secs = ms / 1000, milli = ms % 1000;
  if (milli < 0) milli += 1000, secs--;
  time_t tt = (time_t)secs;
  struct tm tm;
  gmtime_r(&tt, &tm);
  size_t n = 0;
  for (size_t i = 0; i < t->n_pieces && n < cap; i++) {
    const ts_piece_t *p = &t->pieces[i];
    long long v = 0;
    int w = p->width;
    switch (p->letter) {
    case 0: n += (size_t)snprintf(out + n, cap - n, "%s", p->lit); continue;
    case 'y': v = tm.tm_year + 1900LL; if (w == 2) v %= 100; break;
    case 'M': v = tm.tm_mon + 1; break;
    case 'd': v = tm.tm_mday; break;
    case 'H': v = tm.tm_hour; break;
    case 'm': v = tm.tm_min; break;
    case 's': v = tm.tm_sec; break;
    case 'S': v = milli; break;
    }
    n += (size_t)snprintf(out + n, cap - n, "%0*lld", w, v);
  }
  return n < cap ? n : cap - 1;
}

static int ts_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  ts_router_t *t = st;
  if (rec->timestamp < 0) return conn__terr(err, errlen, "timestamp missing on record");
  size_t lits = 0;
  for (size_t i = 0; i < t->n_pieces; i++) lits += t->pieces[i].lit ? strlen(t->pieces[i].lit) : 0;
  char stamp[256];
  size_t slen;
  char *sp = stamp;
  if (lits + 32 * t->n_pieces + 1 > sizeof stamp) {
    sp = malloc(lits + 32 * t->n_pieces + 1);
    if (!sp) return conn__terr(err, errlen, "out of memory");
    slen = ts_format(t, rec->timestamp, sp, lits + 32 * t->n_pieces + 1);
  } else {
    slen = ts_format(t, rec->timestamp, stamp, sizeof stamp);
  }
  /* topic.format with ${topic} and ${timestamp} replaced (String.replace
   * in Kafka: every occurrence). */
  const char *topic = rec->topic ? rec->topic : "";
  size_t tlen = strlen(topic), need = 1;
  for (const char *p = t->topic_format; *p;) {
    if (strncmp(p, "${topic}", 8) == 0) need += tlen, p += 8;
    else if (strncmp(p, "${timestamp}", 12) == 0) need += slen, p += 12;
    else need++, p++;
  }
  if (need > t->cap) {
    char *b = realloc(t->buf, need);
    if (!b) {
      if (sp != stamp) free(sp);
      return conn__terr(err, errlen, "out of memory");
    }
    t->buf = b;
    t->cap = need;
  }
  size_t n = 0;
  for (const char *p = t->topic_format; *p;) {
    if (strncmp(p, "${topic}", 8) == 0) memcpy(t->buf + n, topic, tlen), n += tlen, p += 8;
    else if (strncmp(p, "${timestamp}", 12) == 0) memcpy(t->buf + n, sp, slen), n += slen, p += 12;
    else t->buf[n++] = *p++;
  }
  t->buf[n] = '\0';
  if (sp != stamp) free(sp);
  if (conn_record_set_topic(rec, t->buf) != 0) return conn__terr(err, errlen, "out of memory");
  return 1;
}

static const char *const ts_aliases[] = {"org.apache.kafka.connect.transforms.TimestampRouter",
                                         NULL};

const conn_transform_plugin_t conn__timestamp_router = {
    .name = "TimestampRouter", .aliases = ts_aliases, .defs = ts_defs,
    .state_size = sizeof(ts_router_t), .init = ts_init, .apply = ts_apply, .close = ts_close};

/* ---- Filter --------------------------------------------------------------------- */

static const conn_def_t filter_defs[] = {CONN_DEF_END};

static int filter_apply(void *st, conn_record_t *rec, char *err, size_t errlen) {
  return 0; /* drops every record it is applied to: use it with a predicate */
}

static const char *const filter_aliases[] = {"org.apache.kafka.connect.transforms.Filter", NULL};

const conn_transform_plugin_t conn__filter = {
    .name = "Filter", .aliases = filter_aliases, .defs = filter_defs, .state_size = 0,
    .apply = filter_apply};
