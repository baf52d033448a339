/* Tests for runtime/metrics.c: registry, atomic updates, exposition text. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static void collect(void *opaque, metrics_buf_t *b) {
  metrics_buf_family(b, METRICS_GAUGE, "x_gauge", "A gauge from a collector.");
  metrics_buf_sample(b, "x_gauge", "a=\"1\"", *(double *)opaque);
}

static void test_render_exposition_format(void **state) {
  (void)state;
  metrics_t *m = metrics_new();
  metrics_series_t *ok = metrics_series(m, METRICS_COUNTER, "req_total", "Requests.", "code=\"200\"");
  metrics_series_t *nf = metrics_series(m, METRICS_COUNTER, "req_total", "Requests.", "code=\"404\"");
  assert_ptr_equal(ok, metrics_series(m, METRICS_COUNTER, "req_total", "Requests.", "code=\"200\""));
  metrics_add(ok, 2);
  metrics_add(nf, 1);
  double g = 0.5;
  metrics_add_collector(m, collect, &g);
  size_t len;
  char *text = metrics_render(m, &len);
  assert_string_equal(text,
                      "# HELP req_total Requests.\n# TYPE req_total counter\n"
                      "req_total{code=\"200\"} 2\nreq_total{code=\"404\"} 1\n"
                      "# HELP x_gauge A gauge from a collector.\n# TYPE x_gauge gauge\n"
                      "x_gauge{a=\"1\"} 0.5\n");
  assert_int_equal(len, strlen(text));
  free(text);
  metrics_remove_collector(m, collect, &g);
  text = metrics_render(m, &len);
  assert_null(strstr(text, "x_gauge"));
  free(text);
  metrics_free(m);
}

static void *bump(void *arg) {
  for (int i = 0; i < 100000; i++) metrics_add(arg, 1);
  return NULL;
}

static void test_concurrent_adds_are_not_lost(void **state) {
  (void)state;
  metrics_t *m = metrics_new();
  metrics_series_t *s = metrics_series(m, METRICS_COUNTER, "c_total", "C.", NULL);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, bump, s);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  assert_true(metrics_get(s) == 400000.0);
  metrics_free(m);
}

static void test_process_collector(void **state) {
  (void)state;
  metrics_t *m = metrics_new();
  metrics_add_collector(m, metrics_collect_process, NULL);
  size_t len;
  char *text = metrics_render(m, &len);
  assert_non_null(strstr(text, "\nprocess_cpu_seconds_total "));
  assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
  assert_non_null(strstr(text, "\nprocess_open_fds "));
  assert_non_null(strstr(text, "\nprocess_start_time_seconds "));
  free(text);
  metrics_free(m);
}

/* Label values from users (connector and job names) are escaped as the
 * text format requires, and are never cut short. */
static void test_labels_are_escaped_whole(void **state) {
  (void)state;
  char *l = metrics_labels("connector", "a\"b\\c\nd", "task", "0", NULL);
  assert_string_equal(l, "connector=\"a\\\"b\\\\c\\nd\",task=\"0\"");
  free(l);
  char big[2000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  l = metrics_labels("connector", big, "task", "7", NULL);
  assert_int_equal(strlen(l), strlen("connector=\"\",task=\"7\"") + sizeof big - 1);
  assert_string_equal(l + strlen(l) - 11, "x\",task=\"7\"");
  free(l);
}

/* metrics_remove_series drops exactly the series carrying the label, and a
 * series registered again afterwards starts from zero. */
static void test_remove_series(void **state) {
  (void)state;
  metrics_t *m = metrics_new();
  char *a0 = metrics_labels("connector", "a", "task", "0", NULL);
  char *a1 = metrics_labels("connector", "a", "task", "1", NULL);
  char *ab = metrics_labels("connector", "a,connector=\"b", "task", "0", NULL);
  char *b0 = metrics_labels("connector", "b", "task", "0", NULL);
  metrics_add(metrics_series(m, METRICS_COUNTER, "r_total", "R.", a0), 5);
  metrics_add(metrics_series(m, METRICS_COUNTER, "r_total", "R.", a1), 6);
  metrics_add(metrics_series(m, METRICS_COUNTER, "r_total", "R.", ab), 7);
  metrics_add(metrics_series(m, METRICS_COUNTER, "r_total", "R.", b0), 8);
  metrics_add(metrics_series(m, METRICS_GAUGE, "g", "G.", a0), 9);
  assert_int_equal(metrics_remove_series(m, "connector", "b"), 1);
  assert_int_equal(metrics_remove_series(m, "connector", "a"), 3);
  assert_int_equal(metrics_remove_series(m, "connector", "a"), 0);
  size_t len;
  char *text = metrics_render(m, &len);
  assert_string_equal(text, "# HELP r_total R.\n# TYPE r_total counter\n"
                            "r_total{connector=\"a,connector=\\\"b\",task=\"0\"} 7\n"
                            "# HELP g G.\n# TYPE g gauge\n");
  free(text);
  /* The family's tail is kept right: new series append after the survivors. */
  metrics_add(metrics_series(m, METRICS_COUNTER, "r_total", "R.", a0), 1);
  text = metrics_render(m, &len);
  assert_non_null(strstr(text, "task=\"0\"} 7\nr_total{connector=\"a\",task=\"0\"} 1\n"));
  free(text);
  free(a0), free(a1), free(ab), free(b0);
  metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_render_exposition_format),
      cmocka_unit_test(test_concurrent_adds_are_not_lost),
      cmocka_unit_test(test_process_collector),
      cmocka_unit_test(test_labels_are_escaped_whole),
      cmocka_unit_test(test_remove_series),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
