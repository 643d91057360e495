/* Events given as JSON and as typed values: every rule, the keys, copying. */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"
#include "support.h"

static const int64_t kMaxTokens = (int64_t)1 << 53;

/* 36 characters, version nibble 7, RFC 9562 variant. */
static int is_uuid_v7(const char* k) {
  int i;
  if (strlen(k) != 36) return 0;
  for (i = 0; i < 36; ++i) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? k[i] != '-' : !isxdigit((unsigned char)k[i])) return 0;
  }
  return k[14] == '7' && strchr("89abAB", k[19]) != NULL;
}

/* ---- Tracking JSON ------------------------------------------------------------------ */

struct bad_event {
  const char* json;
  const char* names; /* what ab_last_error() must name; NULL: no field to name, any text */
};

static const struct bad_event kBadEvents[] = {
    {"", NULL},
    {"{", NULL},
    {"not json", NULL},
    {"[]", NULL},
    {"42", NULL},
    {EVENT("") " trailing", NULL},
    {"{\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":1}", "agentId"},
    {"{\"agentId\":\"\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":1}", "agentId"},
    {"{\"agentId\":7,\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":1}", "agentId"},
    {"{\"agentId\":\"a\",\"operation\":\"llm_call\",\"costUsd\":1}", "provider"},
    {"{\"agentId\":\"a\",\"provider\":null,\"operation\":\"llm_call\",\"costUsd\":1}", "provider"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"costUsd\":1}", "operation"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm\",\"costUsd\":1}", "operation"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"LLM_CALL\",\"costUsd\":1}",
     "operation"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":1,"
     "\"inputTokens\":1,\"cachedInputTokens\":2}", "cachedInputTokens"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":-1}", "costUsd"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":1e10}",
     "costUsd"},
    {"{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":\"1\"}",
     "costUsd"},
    {EVENT(",\"inputTokens\":-1"), "inputTokens"},
    {EVENT(",\"inputTokens\":9007199254740993"), "inputTokens"},
    {EVENT(",\"outputTokens\":1.5"), "outputTokens"},
    {EVENT(",\"outputTokens\":\"3\""), "outputTokens"},
    {EVENT(",\"cachedInputTokens\":-5"), "cachedInputTokens"},
    {EVENT(",\"reasoningTokens\":true"), "reasoningTokens"},
    {EVENT(",\"model\":\"\""), "model"},
    {EVENT(",\"model\":5"), "model"},
    {EVENT(",\"taskId\":\"a\\u0001b\""), "taskId"},
    {EVENT(",\"workflowId\":\"line\\nbreak\""), "workflowId"},
    {EVENT(",\"metadata\":[1]"), "metadata"},
    {EVENT(",\"metadata\":\"{}\""), "metadata"},
    {EVENT(",\"timestamp\":\"2026-01-02\""), "timestamp"},
    {EVENT(",\"timestamp\":\"2026-01-02T03:04:05\""), "timestamp"},
    {EVENT(",\"timestamp\":\"yesterday\""), "timestamp"},
    {EVENT(",\"idempotency_key\":\"\""), "idempotency_key"},
    {EVENT(",\"idempotency_key\":\"has space\""), "idempotency_key"},
    {EVENT(",\"idempotency_key\":\"caf\\u00e9\""), "idempotency_key"},
    {EVENT(",\"inputToken\":5"), "inputTokens"}, /* the did-you-mean */
    {EVENT(",\"cost_usd\":5"), "cost_usd"},
    {EVENT(",\"costUsd\":2"), "costUsd"}, /* a duplicate key */
};

/* An event whose JSON nests `levels` deep: the event, its metadata object, then arrays. */
static char* nested_metadata(int levels) {
  char* open = repeat('[', (size_t)levels - 2);
  char* close = repeat(']', (size_t)levels - 2);
  char* arrays = concat3(open, "1", close);
  char* json = concat3("{" REQUIRED ",\"metadata\":{\"deep\":", arrays, "}}");
  free(arrays);
  free(close);
  free(open);
  return json;
}

/* Events built at run time: too long for a literal, or nested too deep. */
static void track_big_bad_events(ab_client* c, int* refused) {
  char* s = repeat('m', 257);
  char* json = concat3("{" REQUIRED ",\"model\":\"", s, "\"}");
  CHECK_INVALID("model", track(c, json));
  free(json);
  free(s);

  s = repeat('k', 129);
  json = concat3("{" REQUIRED ",\"idempotency_key\":\"", s, "\"}");
  CHECK_INVALID("idempotency_key", track(c, json));
  free(json);
  free(s);

  s = repeat('a', 257);
  json = concat3("{\"agentId\":\"", s,
                 "\",\"provider\":\"p\",\"operation\":\"compute\",\"costUsd\":1}");
  CHECK_INVALID("agentId", track(c, json));
  free(json);
  free(s);

  /* Metadata over 16 KiB encoded. */
  s = repeat('x', 17 * 1024);
  json = concat3("{" REQUIRED ",\"metadata\":{\"blob\":\"", s, "\"}}");
  CHECK_INVALID("metadata", track(c, json));
  free(json);
  free(s);

  /* A JSON text over 64 KiB. */
  s = repeat(' ', 65 * 1024);
  json = concat3("{" REQUIRED, s, "}");
  CHECK_INVALID(NULL, track(c, json));
  free(json);
  free(s);

  /* Metadata nested 33 levels deep (the event's own object makes 34): the limit is 32. */
  json = nested_metadata(34);
  CHECK_INVALID("metadata", track(c, json));
  free(json);
  *refused += 6;
}

/* An error quotes the value it refused, cut to a length. Its text stays UTF-8 (the header:
 * strings are UTF-8) whatever the value and wherever the cut falls, so that bindings can
 * decode it. */
static void track_quoting_events(ab_client* c, int* refused) {
  char* a63 = repeat('a', 63);
  char* a35 = repeat('a', 35);
  /* A two-byte character across byte 64, where quoted names and values are cut... */
  char* value = concat3(a63, "\xc3\xa9", "");
  /* ...and across byte 37 of a JSON value shown as it was given. */
  char* cost = concat3(a35, "\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9");
  char* events[5];
  size_t i;
  events[0] =
      concat3("{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"", value, "\",\"costUsd\":1}");
  events[1] = concat3("{" REQUIRED ",\"", value, "\":1}");
  events[2] = concat3("{" REQUIRED ",\"timestamp\":\"", value, "\"}");
  events[3] =
      concat3("{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"llm_call\",\"costUsd\":\"",
              cost, "\"}");
  events[4] = concat3("{" REQUIRED ",\"model\":\"", "\xff\xfe", "\"}"); /* not UTF-8 at all */
  for (i = 0; i < sizeof events / sizeof events[0]; ++i) {
    CHECK_RC(AB_EINVALID, track(c, events[i]));
    check_true(is_utf8(ab_last_error()), "is_utf8(ab_last_error())", __FILE__, __LINE__);
    ++*refused;
    free(events[i]);
  }
  free(cost);
  free(value);
  free(a35);
  free(a63);
}

/* Fills the key buffer with a non-NUL byte, so a missing terminator shows. */
static int track_key(char key[AB_KEY_SIZE], ab_client* c, const char* json) {
  memset(key, 'X', AB_KEY_SIZE);
  return ab_client_track_json_key(key, c, json, strlen(json));
}

void test_track_json(const char* tmp) {
  char* root = path_join(tmp, "track-json");
  ab_client* c = open_at(root);
  char key[AB_KEY_SIZE], key2[AB_KEY_SIZE];
  uint64_t tracked = 0, rejected_before;
  int refused = 0;
  size_t i;

  if (!c) goto done;
  CHECK_INVALID(NULL, track(NULL, EVENT("")));
  CHECK_INVALID(NULL, ab_client_track_json(c, NULL, 10));
  CHECK_INVALID(NULL, ab_client_track_json_key(key, NULL, "{}", 2));
  CHECK_INVALID(NULL, ab_client_track_json_key(key, c, NULL, 10));

  /* Every rule break is refused, names the field, stores nothing, and counts as rejected. */
  rejected_before = stat_of(c, "rejected");
  for (i = 0; i < sizeof kBadEvents / sizeof kBadEvents[0]; ++i) {
    int rc = track(c, kBadEvents[i].json);
    check_code(rc, AB_EINVALID, kBadEvents[i].names, kBadEvents[i].json, __FILE__, __LINE__);
    ++refused;
  }
  track_big_bad_events(c, &refused);
  track_quoting_events(c, &refused);
  CHECK(stat_of(c, "pending") == 0);
  CHECK(stat_of(c, "rejected") == rejected_before + (uint64_t)refused);

  /* The edges that are allowed, and null as absent. */
  CHECK_RC(AB_OK, track(c, EVENT(",\"inputTokens\":9007199254740992,\"outputTokens\":0")));
  CHECK_RC(AB_OK, track(c,
                        "{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"tool_call\","
                        "\"costUsd\":0}"));
  CHECK_RC(AB_OK, track(c,
                        "{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"compute\","
                        "\"costUsd\":1e9}"));
  CHECK_RC(AB_OK, track(c, EVENT(",\"model\":null,\"taskId\":null,\"workflowId\":null,"
                                 "\"metadata\":null,\"timestamp\":null,\"inputTokens\":null,"
                                 "\"idempotency_key\":null")));
  CHECK_RC(AB_OK, track(c,
                        "{\"agentId\":\"agent-1\",\"provider\":\"e2b\",\"operation\":\"api_call\","
                        "\"costUsd\":0.5,\"model\":\"claude-3.5-sonnet\",\"inputTokens\":12500,"
                        "\"outputTokens\":3200,\"cachedInputTokens\":100,\"reasoningTokens\":7,"
                        "\"taskId\":\"ticket-CTMS-5109\",\"workflowId\":\"sprint-42\","
                        "\"metadata\":{\"ticket\":42,\"nested\":{\"a\":[1,2]}},"
                        "\"timestamp\":\"2026-01-02T05:04:05.250+02:00\"}"));
  CHECK_RC(AB_OK, track(c, EVENT(",\"outputTokens\":2.0,\"timestamp\":\"2026-01-02T03:04:05Z\"")));
  {
    char* json = nested_metadata(32); /* the most allowed */
    CHECK_RC(AB_OK, track(c, json));
    free(json);
  }
  tracked += 7;

  /* `len` bytes, no NUL needed: what follows is not read. */
  {
    const char* text = EVENT("") "}garbage";
    CHECK_RC(AB_OK, ab_client_track_json(c, text, strlen(EVENT(""))));
    ++tracked;
  }

  /* The key: assigned (a UUIDv7, a new one each time) or the caller's, NUL-terminated. */
  CHECK_RC(AB_OK, track_key(key, c, EVENT("")));
  CHECK(memchr(key, '\0', AB_KEY_SIZE) != NULL && is_uuid_v7(key));
  CHECK_RC(AB_OK, track_key(key2, c, EVENT("")));
  CHECK(memchr(key2, '\0', AB_KEY_SIZE) != NULL && is_uuid_v7(key2) && strcmp(key, key2) != 0);
  CHECK_RC(AB_OK, track_key(key, c, EVENT(",\"idempotency_key\":\"order-17/llm#1\"")));
  CHECK(memchr(key, '\0', AB_KEY_SIZE) != NULL && strcmp(key, "order-17/llm#1") == 0);
  {
    char* longest = repeat('k', AB_KEY_SIZE - 1);
    char* json = concat3("{" REQUIRED ",\"idempotency_key\":\"", longest, "\"}");
    CHECK_RC(AB_OK, track_key(key, c, json));
    CHECK(key[AB_KEY_SIZE - 1] == '\0' && strcmp(key, longest) == 0);
    free(json);
    free(longest);
  }
  tracked += 4;
  /* The header does not say whether out_key may be NULL here; either answer is sound, but
   * not a crash. */
  {
    int rc = ab_client_track_json_key(NULL, c, EVENT(""), strlen(EVENT("")));
    CHECK(rc == AB_OK || rc == AB_EINVALID);
    if (rc == AB_OK) ++tracked;
  }

  CHECK(stat_of(c, "pending") == tracked);
  CHECK(stat_of(c, "rejected") == rejected_before + (uint64_t)refused);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
done:
  free(root);
}

/* ---- Typed events ------------------------------------------------------------------- */

static void test_event_null_handle(void) {
  ab_event* e = NULL;
  CHECK_INVALID(NULL, ab_event_new(NULL, "a", "p", "llm_call", 1.0));
  CHECK_INVALID(NULL, ab_event_set_model(e, "gpt-4o"));
  CHECK_INVALID(NULL, ab_event_set_task_id(e, "t"));
  CHECK_INVALID(NULL, ab_event_set_workflow_id(e, "w"));
  CHECK_INVALID(NULL, ab_event_set_timestamp(e, "2026-01-02T03:04:05Z"));
  CHECK_INVALID(NULL, ab_event_set_idempotency_key(e, "k"));
  CHECK_INVALID(NULL, ab_event_set_metadata_json(e, "{}", 2));
  CHECK_INVALID(NULL, ab_event_set_input_tokens(e, 1));
  CHECK_INVALID(NULL, ab_event_set_output_tokens(e, 1));
  CHECK_INVALID(NULL, ab_event_set_cached_input_tokens(e, 1));
  CHECK_INVALID(NULL, ab_event_set_reasoning_tokens(e, 1));
}

/* A required field given badly is refused by track, naming it. */
static void check_bad_required(ab_client* c, const char* agent, const char* provider,
                               const char* operation, double cost, const char* names) {
  ab_event* e = NULL;
  CHECK_RC(AB_OK, ab_event_new(&e, agent, provider, operation, cost));
  CHECK_INVALID(names, ab_client_track(NULL, c, e));
  ab_event_free(e);
}

/* Each token setter: above 2^53 refused at track; negative clears; 2^53 allowed. */
static void check_tokens(ab_client* c, ab_event* e, int (*set)(ab_event*, int64_t),
                         const char* names) {
  CHECK_RC(AB_OK, set(e, kMaxTokens + 1));
  CHECK_INVALID(names, ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, set(e, -1));
  CHECK_RC(AB_OK, ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, set(e, kMaxTokens));
  CHECK_RC(AB_OK, ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, set(e, -1));
}

void test_typed_events(const char* tmp) {
  char* root = path_join(tmp, "typed");
  ab_client* c = open_at(root);
  ab_event* e = NULL;
  char key[AB_KEY_SIZE], key2[AB_KEY_SIZE];
  char model[32];
  char* long_text = repeat('m', 257);
  uint64_t tracked = 0;

  test_event_null_handle();
  if (!c) goto done;
  CHECK_RC(AB_OK, ab_event_new(&e, "agent-1", "openai", "llm_call", 0.25));
  CHECK(e != NULL);
  if (!e) goto done;
  CHECK_INVALID(NULL, ab_client_track(key, NULL, e));
  CHECK_INVALID(NULL, ab_client_track(key, c, NULL));

  /* Every optional field set; the key comes back, and is new on each track. */
  strcpy(model, "gpt-4o");
  CHECK_RC(AB_OK, ab_event_set_model(e, model));
  model[0] = '\0'; /* the event keeps its own copy */
  CHECK_RC(AB_OK, ab_event_set_task_id(e, "ticket-CTMS-5109"));
  CHECK_RC(AB_OK, ab_event_set_workflow_id(e, "sprint-42"));
  CHECK_RC(AB_OK, ab_event_set_timestamp(e, "2026-01-02T03:04:05Z"));
  CHECK_RC(AB_OK, ab_event_set_metadata_json(e, "{\"ticket\":42}", 13));
  CHECK_RC(AB_OK, ab_event_set_input_tokens(e, 12500));
  CHECK_RC(AB_OK, ab_event_set_output_tokens(e, 3200));
  CHECK_RC(AB_OK, ab_event_set_cached_input_tokens(e, 1000));
  CHECK_RC(AB_OK, ab_event_set_reasoning_tokens(e, 0));
  memset(key, 'X', sizeof key);
  CHECK_RC(AB_OK, ab_client_track(key, c, e));
  CHECK(memchr(key, '\0', AB_KEY_SIZE) != NULL && is_uuid_v7(key));
  memset(key2, 'X', sizeof key2);
  CHECK_RC(AB_OK, ab_client_track(key2, c, e));
  CHECK(memchr(key2, '\0', AB_KEY_SIZE) != NULL && is_uuid_v7(key2) && strcmp(key, key2) != 0);
  CHECK_RC(AB_OK, ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_idempotency_key(e, "typed-key-1"));
  CHECK_RC(AB_OK, ab_client_track(key, c, e));
  CHECK(strcmp(key, "typed-key-1") == 0);
  CHECK_RC(AB_OK, ab_event_set_idempotency_key(e, NULL));
  tracked += 4;

  /* Optional strings: a bad value is refused naming the field; NULL clears it. */
  CHECK_RC(AB_OK, ab_event_set_model(e, ""));
  CHECK_INVALID("model", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_model(e, long_text));
  CHECK_INVALID("model", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_model(e, NULL));
  CHECK_RC(AB_OK, ab_event_set_task_id(e, "tab\there"));
  CHECK_INVALID("taskId", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_task_id(e, NULL));
  CHECK_RC(AB_OK, ab_event_set_workflow_id(e, "\xff\xfe"));
  CHECK_INVALID("workflowId", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_workflow_id(e, NULL));
  CHECK_RC(AB_OK, ab_event_set_timestamp(e, "2026-01-02T03:04:05"));
  CHECK_INVALID("timestamp", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_timestamp(e, NULL));
  CHECK_RC(AB_OK, ab_event_set_idempotency_key(e, "has space"));
  CHECK_INVALID("idempotency_key", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_idempotency_key(e, ""));
  CHECK_INVALID("idempotency_key", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_idempotency_key(e, NULL));
  CHECK_RC(AB_OK, ab_event_set_metadata_json(e, "[1]", 3));
  CHECK_INVALID("metadata", ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_metadata_json(e, "{\"a\":", 5));
  CHECK_INVALID("metadata", ab_client_track(NULL, c, e));
  /* `len` bytes only. */
  CHECK_RC(AB_OK, ab_event_set_metadata_json(e, "{\"a\":1}trailing", 7));
  CHECK_RC(AB_OK, ab_client_track(NULL, c, e));
  CHECK_RC(AB_OK, ab_event_set_metadata_json(e, NULL, 0));
  CHECK_RC(AB_OK, ab_client_track(NULL, c, e));
  tracked += 2;

  check_tokens(c, e, ab_event_set_input_tokens, "inputTokens");
  check_tokens(c, e, ab_event_set_output_tokens, "outputTokens");
  check_tokens(c, e, ab_event_set_cached_input_tokens, "cachedInputTokens");
  check_tokens(c, e, ab_event_set_reasoning_tokens, "reasoningTokens");
  tracked += 8;

  check_bad_required(c, NULL, "openai", "llm_call", 1.0, "agentId");
  check_bad_required(c, "", "openai", "llm_call", 1.0, "agentId");
  check_bad_required(c, long_text, "openai", "llm_call", 1.0, "agentId");
  check_bad_required(c, "agent-1", NULL, "llm_call", 1.0, "provider");
  check_bad_required(c, "agent-1", "openai", NULL, 1.0, "operation");
  check_bad_required(c, "agent-1", "openai", "bogus", 1.0, "operation");
  check_bad_required(c, "agent-1", "openai", "llm_call", -0.5, "costUsd");
  check_bad_required(c, "agent-1", "openai", "llm_call", 2e9, "costUsd");
  check_bad_required(c, "agent-1", "openai", "llm_call", NAN, "costUsd");
  check_bad_required(c, "agent-1", "openai", "llm_call", INFINITY, "costUsd");

  CHECK(stat_of(c, "pending") == tracked);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
done:
  ab_event_free(e);
  free(long_text);
  free(root);
}
