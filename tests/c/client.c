/* The client offline: agents, flush and stats, dead letters, close and adoption,
 * durability, and the disk cap. */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"
#include "support.h"

/* ---- Agents ------------------------------------------------------------------------- */

void test_agents(const char* tmp) {
  static const char* agent =
      "{\"name\":\"My Agent\",\"description\":\"Handles customer onboarding workflows\","
      "\"projectId\":\"onboarding\",\"tags\":[\"support\",\"onboarding\"]}";
  char* root = path_join(tmp, "agents");
  char* long_description = repeat('d', 4097);
  char* json = concat3("{\"name\":\"n\",\"description\":\"", long_description, "\"}");
  ab_client* c = open_at(root);
  char *id = NULL, *again = NULL, *other = NULL;

  if (!c) goto done;
  CHECK_INVALID(NULL, register_agent(NULL, c, agent));
  CHECK_INVALID(NULL, register_agent(&id, NULL, agent));
  CHECK_INVALID(NULL, ab_client_register_agent_json(&id, c, NULL, 10));
  CHECK_INVALID(NULL, register_agent(&id, c, "{"));
  CHECK_INVALID(NULL, register_agent(&id, c, "[\"My Agent\"]"));
  CHECK_INVALID("name", register_agent(&id, c, "{\"description\":\"no name\"}"));
  CHECK_INVALID("name", register_agent(&id, c, "{\"name\":\"\"}"));
  CHECK_INVALID("name", register_agent(&id, c, "{\"name\":3}"));
  CHECK_INVALID("project", register_agent(&id, c, "{\"name\":\"n\",\"project\":\"p\"}"));
  CHECK_INVALID("projectId", register_agent(&id, c, "{\"name\":\"n\",\"projectId\":\"\"}"));
  CHECK_INVALID("tags", register_agent(&id, c, "{\"name\":\"n\",\"tags\":\"support\"}"));
  CHECK_INVALID("tags", register_agent(&id, c, "{\"name\":\"n\",\"tags\":[1]}"));
  CHECK_INVALID("description", register_agent(&id, c, json));

  /* Offline: a provisional id, the same for the same (name, projectId). */
  id = NULL;
  CHECK_RC(AB_OK, register_agent(&id, c, agent));
  CHECK(id != NULL && strncmp(id, "ab-local-", 9) == 0);
  CHECK_RC(AB_OK, register_agent(&again, c,
                                 "{\"name\":\"My Agent\",\"projectId\":\"onboarding\","
                                 "\"description\":\"changed\",\"tags\":[]}"));
  CHECK(id && again && strcmp(id, again) == 0);
  ab_free(again);
  again = NULL;
  CHECK_RC(AB_OK, register_agent(&other, c, "{\"name\":\"My Agent\",\"projectId\":\"billing\"}"));
  CHECK(id && other && strncmp(other, "ab-local-", 9) == 0 && strcmp(id, other) != 0);
  ab_free(other);
  other = NULL;
  CHECK_RC(AB_OK, register_agent(&other, c, "{\"name\":\"Another Agent\"}"));
  CHECK(id && other && strcmp(id, other) != 0);

  /* The id works as agentId. */
  if (id) {
    char* event = concat3("{\"agentId\":\"", id,
                          "\",\"provider\":\"openai\",\"operation\":\"llm_call\",\"costUsd\":1}");
    CHECK_RC(AB_OK, track(c, event));
    free(event);
  }
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));

  /* And on the next start on the same root. */
  c = open_at(root);
  if (c) {
    CHECK_RC(AB_OK, register_agent(&again, c, agent));
    CHECK(id && again && strcmp(id, again) == 0);
    CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  }
done:
  ab_free(id);
  ab_free(again);
  ab_free(other);
  free(json);
  free(long_description);
  free(root);
}

/* ---- Flush, stats, dead letters ----------------------------------------------------- */

static void check_stats_shape(ab_client* c) {
  static const char* const counters[] = {"pending", "pending_bytes", "delivered",
                                         "resent",  "retries",       "dead_letters",
                                         "dropped", "rejected",      "adopted"};
  char* json = NULL;
  const char* v;
  size_t i;

  CHECK_RC(AB_OK, ab_client_stats_json(&json, c));
  CHECK(json != NULL && json[0] == '{');
  for (i = 0; json && i < sizeof counters / sizeof counters[0]; ++i) {
    v = json_member(json, counters[i]);
    check_true(v != NULL && isdigit((unsigned char)*v), counters[i], __FILE__, __LINE__);
  }
  /* Offline: nothing delivered, no sender error. */
  v = json ? json_member(json, "last_error") : NULL;
  CHECK(v != NULL && strncmp(v, "\"\"", 2) == 0);
  v = json ? json_member(json, "last_delivery_at") : NULL;
  CHECK(v != NULL && strncmp(v, "null", 4) == 0);
  ab_free(json);
}

void test_delivery_offline(const char* tmp) {
  char* root = path_join(tmp, "delivery");
  ab_client* c = open_at(root);
  char* out = NULL;
  int i;

  if (!c) goto done;
  CHECK_INVALID(NULL, ab_client_flush(NULL, 0));
  CHECK_INVALID(NULL, ab_client_stats_json(NULL, c));
  CHECK_INVALID(NULL, ab_client_stats_json(&out, NULL));
  CHECK_INVALID(NULL, ab_client_dead_letters_json(NULL, c, 10));
  CHECK_INVALID(NULL, ab_client_dead_letters_json(&out, NULL, 10));
  CHECK_INVALID(NULL, ab_client_requeue_dead_letters(NULL));
  CHECK_INVALID(NULL, ab_client_purge_dead_letters(NULL));

  check_stats_shape(c);
  CHECK(stat_of(c, "pending") == 0 && stat_of(c, "pending_bytes") == 0);
  CHECK(stat_of(c, "delivered") == 0 && stat_of(c, "adopted") == 0);

  /* Nothing pending: flush has nothing to wait for. */
  CHECK_RC(AB_OK, ab_client_flush(c, 0));
  CHECK_RC(AB_OK, ab_client_flush(c, 1000));

  /* Pending with no endpoint: AB_ETIMEOUT, at once whatever the timeout. */
  for (i = 0; i < 3; ++i) CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK_RC(AB_ETIMEOUT, ab_client_flush(c, 0));
  CHECK_RC(AB_ETIMEOUT, ab_client_flush(c, 3600000));
  CHECK(stat_of(c, "pending") == 3);
  CHECK(stat_of(c, "pending_bytes") > 0 && stat_of(c, "pending_bytes") != STAT_MISSING);
  check_stats_shape(c);

  out = NULL;
  CHECK_RC(AB_OK, ab_client_dead_letters_json(&out, c, 100));
  CHECK(out != NULL && strcmp(out, "[]") == 0);
  ab_free(out);
  out = NULL;
  CHECK_RC(AB_OK, ab_client_dead_letters_json(&out, c, 0));
  CHECK(out != NULL && strcmp(out, "[]") == 0);
  ab_free(out);
  CHECK_RC(AB_OK, ab_client_requeue_dead_letters(c));
  CHECK_RC(AB_OK, ab_client_purge_dead_letters(c));
  CHECK(stat_of(c, "pending") == 3 && stat_of(c, "dead_letters") == 0);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
done:
  free(root);
}

/* ---- Close and adoption ------------------------------------------------------------- */

void test_close_and_adopt(const char* tmp) {
  char* root = path_join(tmp, "adopt");
  char* empty_root = path_join(tmp, "adopt-empty");
  ab_client* c = open_at(root);
  int i;

  if (!c) goto done;
  for (i = 0; i < 3; ++i) CHECK_RC(AB_OK, track(c, EVENT(",\"taskId\":\"adopt\"")));
  /* Offline, closing reports events left on disk, however long it may wait. */
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 3600000));
  CHECK(count_folders(root, "") == 1);

  c = open_at(root);
  if (!c) goto done;
  CHECK(stat_of(c, "adopted") == 3);
  CHECK(stat_of(c, "pending") == 3);
  CHECK(count_folders(root, "") == 1); /* the old folder was emptied into the new one */
  CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, -1)); /* < 0: the options' close timeout */

  c = open_at(root);
  if (!c) goto done;
  CHECK(stat_of(c, "adopted") == 5);
  CHECK(stat_of(c, "pending") == 5);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));

  /* Nothing pending: AB_OK, and the folder goes. */
  c = open_at(empty_root);
  if (!c) goto done;
  CHECK_RC(AB_OK, ab_client_close(c, -1));
  CHECK(count_folders(empty_root, "") == 0);
done:
  free(root);
  free(empty_root);
}

/* ab_client_shutdown: closed but not freed. Every later call is AB_ECLOSED, whatever it is
 * given; ab_client_close then only frees; what was pending stays on disk for the next start. */
void test_shutdown(const char* tmp) {
  char* root = path_join(tmp, "shutdown");
  char* empty_root = path_join(tmp, "shutdown-empty");
  ab_client* c = open_at(root);
  ab_event* e = NULL;
  char key[AB_KEY_SIZE];
  char* out = NULL;
  int i;

  CHECK_INVALID("client", ab_client_shutdown(NULL, 0));
  if (!c) goto done;
  for (i = 0; i < 3; ++i) CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK_RC(AB_OK, ab_event_new(&e, "agent-1", "anthropic", "llm_call", 0.01));
  /* Offline with events pending: they stay on disk, however long it may wait. */
  CHECK_RC(AB_ETIMEOUT, ab_client_shutdown(c, 3600000));
  CHECK(count_folders(root, "") == 1);

  CHECK_RC(AB_ECLOSED, ab_client_shutdown(c, 0));
  CHECK(strstr(ab_last_error(), "shut down") != NULL);
  CHECK_RC(AB_ECLOSED, track(c, EVENT("")));
  CHECK(strstr(ab_last_error(), "closed") != NULL);
  /* Closed comes first, before the event's own faults. */
  CHECK_RC(AB_ECLOSED, track(c, "{\"costUsd\":-1}"));
  CHECK_RC(AB_ECLOSED, ab_client_track_json(c, NULL, 0));
  memset(key, 'x', sizeof key);
  CHECK_RC(AB_ECLOSED, ab_client_track_json_key(key, c, EVENT(""), strlen(EVENT(""))));
  CHECK(key[0] == 'x'); /* not written */
  CHECK_RC(AB_ECLOSED, ab_client_track(key, c, e));
  CHECK_RC(AB_ECLOSED, ab_client_track(NULL, c, NULL));
  out = (char*)&out;
  CHECK_RC(AB_ECLOSED, register_agent(&out, c, "{\"name\":\"After Shutdown\"}"));
  CHECK(out == NULL);
  CHECK_RC(AB_ECLOSED, ab_client_flush(c, 0));
  out = (char*)&out;
  CHECK_RC(AB_ECLOSED, ab_client_stats_json(&out, c));
  CHECK(out == NULL);
  out = (char*)&out;
  CHECK_RC(AB_ECLOSED, ab_client_dead_letters_json(&out, c, 10));
  CHECK(out == NULL);
  CHECK_RC(AB_ECLOSED, ab_client_requeue_dead_letters(c));
  CHECK_RC(AB_ECLOSED, ab_client_purge_dead_letters(c));
  /* The NULL checks of the out-parameters still come first. */
  CHECK_RC(AB_EINVALID, ab_client_stats_json(NULL, c));
  CHECK_RC(AB_OK, ab_client_close(c, 0));

  /* The three events are the next client's. */
  c = open_at(root);
  if (c) {
    CHECK(stat_of(c, "adopted") == 3 && stat_of(c, "pending") == 3);
    CHECK_RC(AB_ETIMEOUT, ab_client_shutdown(c, -1)); /* < 0: the options' close timeout */
    CHECK_RC(AB_OK, ab_client_close(c, -1));
  }

  /* Nothing pending: AB_OK, and the folder goes at the shutdown, not at the free. */
  c = open_at(empty_root);
  if (c) {
    CHECK_RC(AB_OK, ab_client_shutdown(c, 0));
    CHECK(count_folders(empty_root, "") == 0);
    CHECK_RC(AB_OK, ab_client_close(c, 0));
  }
done:
  ab_event_free(e);
  free(root);
  free(empty_root);
}

/* Each durability keeps what track accepted across close and reopen; the buffered stage is
 * written by close. */
void test_durability(const char* tmp) {
  static const int levels[] = {AB_DURABILITY_BUFFERED, AB_DURABILITY_PROCESS, AB_DURABILITY_SYSTEM};
  size_t l;
  int i;
  for (l = 0; l < sizeof levels / sizeof levels[0]; ++l) {
    char name[32];
    char* root;
    ab_options* o;
    ab_client* c = NULL;
    snprintf(name, sizeof name, "durability-%d", levels[l]);
    root = path_join(tmp, name);
    o = options_at(root);
    CHECK_RC(AB_OK, ab_options_set_durability(o, levels[l]));
    /* Long, so that close, not the stage writer, writes the buffered events. */
    CHECK_RC(AB_OK, ab_options_set_buffered_flush_ms(o, 1000));
    CHECK_RC(AB_OK, ab_client_open(&c, o));
    ab_options_free(o);
    if (c) {
      for (i = 0; i < 10; ++i) CHECK_RC(AB_OK, track(c, EVENT("")));
      CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
      c = open_at(root);
      CHECK(c && stat_of(c, "adopted") == 10 && stat_of(c, "pending") == 10);
      CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
    }
    free(root);
  }
}

/* ---- The disk cap ------------------------------------------------------------------- */

static ab_client* open_capped(const char* root, uint64_t cap, int policy) {
  ab_client* c = NULL;
  ab_options* o = options_at(root);
  CHECK_RC(AB_OK, ab_options_set_disk_cap(o, cap));
  CHECK_RC(AB_OK, ab_options_set_full_policy(o, policy));
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  ab_options_free(o);
  return c;
}

void test_disk_cap(const char* tmp) {
  const uint64_t cap = 4096;
  char* reject_root = path_join(tmp, "cap-reject");
  char* drop_root = path_join(tmp, "cap-drop");
  ab_client* c = open_capped(reject_root, cap, AB_FULL_REJECT);
  uint64_t accepted = 0;
  int i, rc = AB_OK;

  if (c) {
    for (i = 0; i < 1000 && rc == AB_OK; ++i) {
      rc = track(c, EVENT(""));
      if (rc == AB_OK) ++accepted;
    }
    CHECK_RC(AB_EFULL, rc);
    CHECK(accepted > 0);
    /* Refused again, and nothing stored was touched. */
    CHECK_RC(AB_EFULL, track(c, EVENT("")));
    CHECK(stat_of(c, "pending") == accepted);
    CHECK(stat_of(c, "pending_bytes") <= cap);
    CHECK(stat_of(c, "dropped") == 0);
    CHECK(stat_of(c, "rejected") == 2);
    CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  }

  c = open_capped(drop_root, cap, AB_FULL_DROP_OLDEST);
  if (c) {
    for (i = 0; i < 100; ++i) CHECK_RC(AB_OK, track(c, EVENT("")));
    CHECK(stat_of(c, "dropped") > 0);
    CHECK(stat_of(c, "pending") + stat_of(c, "dropped") == 100);
    CHECK(stat_of(c, "pending_bytes") <= cap);
    CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  }
  free(reject_root);
  free(drop_root);
}
