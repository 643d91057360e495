/* Budgets through the C ABI: the options, reserve / settle / release, AB_EBUDGET with its
 * refusal as JSON, check and budgets, the alert callback, and bad arguments. */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"
#include "support.h"

static int alerts_seen = 0;
static char last_alert[1024];

static void on_alert(const char* alert_json, void* user_data) {
  int* counter = (int*)user_data;
  ++*counter;
  strncpy(last_alert, alert_json, sizeof last_alert - 1);
}

static int reserve(char id[AB_RESERVATION_SIZE], ab_client* c, const char* json) {
  return ab_client_reserve_json(id, c, json, strlen(json));
}

void test_budgets(const char* tmp) {
  char* root = path_join(tmp, "budgets");
  ab_options* o = options_at(root);
  ab_client* c = NULL;
  char id[AB_RESERVATION_SIZE], id2[AB_RESERVATION_SIZE];
  char key[AB_KEY_SIZE];
  char* out = NULL;
  const char* settle = EVENT(",\"taskId\":\"t1\"");
  if (!o) return;

  CHECK_INVALID("budgets[0] (\"x\"): limitUsd",
                ab_options_set_budgets_json(o, "[{\"name\":\"x\",\"limitUsd\":-1}]"));
  CHECK_INVALID("not valid JSON", ab_options_set_budgets_json(o, "[{"));
  CHECK_INVALID("reservation_ttl_ms", ab_options_set_reservation_ttl_ms(o, 0));
  CHECK_RC(AB_OK, ab_options_set_budgets_json(
                      o, "[{\"name\":\"per-task\",\"taskId\":\"*\",\"limitUsd\":0.025,"
                         "\"alertAt\":[0.5]}]"));
  CHECK_RC(AB_OK, ab_options_set_budget_alert(o, on_alert, &alerts_seen));
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  ab_options_free(o);
  if (!c) return;

  /* $0.01 a call against $0.025: two admitted, the third refused. */
  CHECK_RC(AB_OK, reserve(id, c, "{\"taskId\":\"t1\",\"estimateUsd\":0.01}"));
  CHECK(strncmp(id, "abr-", 4) == 0);
  CHECK_RC(AB_OK, ab_client_track_json_reserved(key, c, id, settle, strlen(settle)));
  CHECK(strlen(key) > 0);
  CHECK(alerts_seen == 0);
  CHECK_RC(AB_OK, reserve(id2, c, "{\"taskId\":\"t1\",\"estimateUsd\":0.01}"));
  CHECK_RC(AB_OK, ab_client_track_json_reserved(NULL, c, id2, settle, strlen(settle)));
  CHECK(alerts_seen == 1);
  CHECK(strstr(last_alert, "\"threshold\":0.5") != NULL);
  CHECK(strstr(last_alert, "\"scope\":\"taskId=t1\"") != NULL);
  CHECK_RC(AB_EBUDGET, reserve(id, c, "{\"taskId\":\"t1\",\"estimateUsd\":0.01}"));
  CHECK(id[0] == '\0');
  CHECK(strstr(ab_last_error(), "budget \"per-task\" [taskId=t1] would be exceeded") != NULL);
  CHECK(strstr(ab_last_refusal(), "\"name\":\"per-task\"") != NULL);
  CHECK(strstr(ab_last_refusal(), "\"spentUsd\":0.02") != NULL);
  CHECK(strstr(ab_last_refusal(), "\"estimateUsd\":0.01") != NULL);
  CHECK(strcmp(ab_strerror(AB_EBUDGET), "budget exceeded") == 0);

  /* Another task has a window of its own; release gives a hold back, once. */
  CHECK_RC(AB_OK, reserve(id, c, "{\"taskId\":\"t2\",\"estimateUsd\":0.02}"));
  CHECK_RC(AB_OK, ab_client_budgets_json(&out, c));
  CHECK(out && strstr(out, "\"heldUsd\":0.02") != NULL);
  ab_free(out);
  CHECK_RC(AB_OK, ab_client_release(c, id));
  CHECK_INVALID("is not open", ab_client_release(c, id));
  CHECK_RC(AB_OK, ab_client_check_json(&out, c, "{\"taskId\":\"t1\"}", 15));
  CHECK(out && strstr(out, "\"remainingUsd\":0.005") != NULL);
  ab_free(out);

  /* Bad arguments. */
  CHECK_INVALID("estimateUsd", reserve(id, c, "{\"taskId\":\"t1\"}"));
  CHECK_INVALID("unknown field \"task\"", reserve(id, c, "{\"task\":\"t1\"}"));
  CHECK_INVALID("out_id", ab_client_reserve_json(NULL, c, "{}", 2));
  CHECK_INVALID("client", reserve(id, NULL, "{}"));
  CHECK_INVALID("reservation_id", ab_client_release(c, NULL));
  CHECK_INVALID("reservation_id", ab_client_release(c, ""));
  CHECK_INVALID("reservation_id",
                ab_client_track_json_reserved(NULL, c, NULL, settle, strlen(settle)));
  CHECK_INVALID("out", ab_client_budgets_json(NULL, c));
  CHECK_INVALID("json", ab_client_check_json(&out, c, NULL, 3));

  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  free(root);
}
