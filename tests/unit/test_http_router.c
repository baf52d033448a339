/* Tests for runtime/http_router.c: pattern matching, parameters, 404/405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

static char seen[256];

static void route_a(void *o, const http_request_t *r, const http_params_t *p, http_response_t *res) {
  (void)o, (void)r, (void)p;
  strcpy(seen, "a");
  res->status = 200;
}

static void route_b(void *o, const http_request_t *r, const http_params_t *p, http_response_t *res) {
  (void)o, (void)r;
  strcpy(seen, "b:");
  for (int i = 0; i < p->count; i++) {
    strcat(seen, p->values[i]);
    strcat(seen, ",");
  }
  res->status = 201;
}

static const http_route_t routes[] = {
    {"GET", "/connectors", route_a},
    {"GET", "/connectors/{name}/tasks/{id}/status", route_b},
    {"POST", "/connectors/{name}/restart", route_b},
    {NULL, NULL, NULL},
};

static int dispatch(const char *method, const char *path, http_response_t *res) {
  http_request_t req = {.method = method, .path = path, .query = "", .body = "", .body_len = 0};
  memset(res, 0, sizeof *res);
  seen[0] = '\0';
  http_route(routes, NULL, &req, res);
  return res->status;
}

static void test_exact_and_params(void **state) {
  (void)state;
  http_response_t res;
  assert_int_equal(dispatch("GET", "/connectors", &res), 200);
  assert_string_equal(seen, "a");
  assert_int_equal(dispatch("GET", "/connectors/", &res), 200);
  assert_int_equal(dispatch("GET", "/connectors/file-src/tasks/3/status", &res), 201);
  assert_string_equal(seen, "b:file-src,3,");
  assert_int_equal(dispatch("POST", "/connectors/x/restart", &res), 201);
  assert_string_equal(seen, "b:x,");
}

static void test_404_and_405_in_error_shape(void **state) {
  (void)state;
  http_response_t res;
  assert_int_equal(dispatch("GET", "/nope", &res), 404);
  assert_string_equal(res.body, "{\"error_code\":404,\"message\":\"Unknown path: /nope\"}");
  free(res.body);
  assert_int_equal(dispatch("DELETE", "/connectors", &res), 405);
  assert_non_null(strstr(res.body, "\"error_code\":405"));
  free(res.body);
  /* An empty segment does not match a parameter. */
  assert_int_equal(dispatch("GET", "/connectors//tasks/1/status", &res), 404);
  free(res.body);
  assert_int_equal(dispatch("GET", "/connectorsX", &res), 404);
  free(res.body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_and_params),
      cmocka_unit_test(test_404_and_405_in_error_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
