/* agentburn from C: register an agent, track what it spends, flush, print the stats.
 *
 * AGENTBURN_ENDPOINT: the server (unset: offline, the events wait on disk for a later run);
 * AGENTBURN_API_KEY: its key; AGENTBURN_BUFFER_DIR: the buffer root (unset: the default). */
#include <agentburn/agentburn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the agent spent; a NULL model or a negative token count leaves the field out. */
struct cost {
  const char *provider, *operation, *model, *task_id;
  double usd;
  int64_t input_tokens, output_tokens;
};

static const struct cost kCosts[] = {
    {"anthropic", "llm_call", "claude-3.5-sonnet", "ticket-CTMS-5109", 0.0855, 12500, 3200},
    {"github", "tool_call", NULL, "ticket-CTMS-5109", 0.0004, -1, -1},
    {"e2b", "compute", NULL, "ticket-CTMS-5110", 0.0021, -1, -1},
    {"serpapi", "api_call", NULL, "ticket-CTMS-5110", 0.005, -1, -1}};

static int track(ab_client* client, const char* agent_id, const struct cost* c) {
  char key[AB_KEY_SIZE];
  ab_event* e = NULL;
  int rc = ab_event_new(&e, agent_id, c->provider, c->operation, c->usd);
  if (rc == AB_OK) rc = ab_event_set_model(e, c->model);
  if (rc == AB_OK) rc = ab_event_set_input_tokens(e, c->input_tokens);
  if (rc == AB_OK) rc = ab_event_set_output_tokens(e, c->output_tokens);
  if (rc == AB_OK) rc = ab_event_set_task_id(e, c->task_id);
  if (rc == AB_OK) rc = ab_event_set_workflow_id(e, "sprint-42");
  if (rc == AB_OK) rc = ab_client_track(key, client, e); /* durable on disk when AB_OK */
  ab_event_free(e);
  if (rc == AB_OK) printf("tracked %-9s %-9s $%.4f  %s\n", c->operation, c->provider, c->usd, key);
  return rc;
}

static int fail(ab_client* client, const char* what, int rc) {
  fprintf(stderr, "%s: %s: %s\n", what, ab_strerror(rc), ab_last_error());
  ab_client_close(client, 0); /* NULL is fine */
  return 1;
}

int main(void) {
  static const char agent[] =
      "{\"name\":\"Support Bot\",\"projectId\":\"onboarding\",\"tags\":[\"support\"]}";
  ab_options* opts = NULL;
  ab_client* client = NULL;
  char *agent_id = NULL, *stats = NULL;
  size_t i;
  /* getenv's NULL, for an unset variable, leaves the option at its default. */
  int rc = ab_options_new(&opts);
  if (rc == AB_OK) rc = ab_options_set_endpoint(opts, getenv("AGENTBURN_ENDPOINT"));
  if (rc == AB_OK) rc = ab_options_set_api_key(opts, getenv("AGENTBURN_API_KEY"));
  if (rc == AB_OK) rc = ab_options_set_buffer_root(opts, getenv("AGENTBURN_BUFFER_DIR"));
  if (rc == AB_OK) rc = ab_client_open(&client, opts);
  ab_options_free(opts); /* the client keeps its own copy */
  if (rc != AB_OK) return fail(client, "opening the client", rc);

  /* Offline (or with the server down) the id is a provisional "ab-local-..." one. */
  rc = ab_client_register_agent_json(&agent_id, client, agent, strlen(agent));
  if (rc != AB_OK) return fail(client, "registering the agent", rc);
  printf("agent %s\n", agent_id);
  for (i = 0; rc == AB_OK && i < sizeof kCosts / sizeof kCosts[0]; ++i) {
    rc = track(client, agent_id, &kCosts[i]);
  }
  ab_free(agent_id);
  if (rc != AB_OK) return fail(client, "tracking", rc);

  /* AB_ETIMEOUT is not a failure: what was not delivered stays on disk. */
  rc = ab_client_flush(client, 2000);
  if (rc != AB_OK && rc != AB_ETIMEOUT) return fail(client, "flushing", rc);
  printf("flush: %s\n", rc == AB_OK ? "all delivered" : ab_last_error());
  if (ab_client_stats_json(&stats, client) == AB_OK) printf("stats: %s\n", stats);
  ab_free(stats);
  rc = ab_client_close(client, 0);
  return rc == AB_OK || rc == AB_ETIMEOUT ? 0 : fail(NULL, "closing", rc);
}
