// agentburn from C++: register an agent, track what it spends, flush, print the stats.
//
// AGENTBURN_ENDPOINT: the server (unset: offline, the events wait on disk for a later run);
// AGENTBURN_API_KEY: its key; AGENTBURN_BUFFER_DIR: the buffer root (unset: the default).
#include <agentburn/agentburn.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

// Empty when unset: the option's default.
std::string env(const char* name) {
  return std::getenv(name) ? std::getenv(name) : "";
}

int fail(const char* what, const agentburn::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  return 1;
}

}  // namespace

int main() {
  agentburn::Options options;
  options.endpoint = env("AGENTBURN_ENDPOINT");
  options.api_key = env("AGENTBURN_API_KEY");
  options.buffer_root = env("AGENTBURN_BUFFER_DIR");
  auto client = agentburn::Client::open(options);
  if (!client.ok()) return fail("opening the client", client.status());

  // Offline (or with the server down) the id is a provisional "ab-local-..." one.
  // {name, description, projectId, tags}
  auto agent_id = client->register_agent({"Support Bot", {}, "onboarding", {"support"}});
  if (!agent_id.ok()) return fail("registering the agent", agent_id.status());
  std::printf("agent %s\n", agent_id.value().c_str());

  auto event = [&](const char* provider, const char* operation, double usd, const char* task) {
    agentburn::Event e;
    e.agent_id = agent_id.value();
    e.provider = provider;
    e.operation = operation;
    e.cost_usd = usd;
    e.task_id = task;
    e.workflow_id = "sprint-42";
    return e;
  };
  agentburn::Event llm = event("anthropic", "llm_call", 0.0855, "ticket-CTMS-5109");
  llm.model = "claude-3.5-sonnet";
  llm.input_tokens = 12500;
  llm.output_tokens = 3200;
  for (const agentburn::Event& e : {llm, event("github", "tool_call", 0.0004, "ticket-CTMS-5109"),
                                    event("e2b", "compute", 0.0021, "ticket-CTMS-5110"),
                                    event("serpapi", "api_call", 0.005, "ticket-CTMS-5110")}) {
    std::string key;
    agentburn::Status s = client->track(e, &key);  // durable on disk when OK
    if (!s.ok()) return fail("tracking", s);
    std::printf("tracked %-9s %-9s $%.4f  %s\n", e.operation.c_str(), e.provider.c_str(),
                *e.cost_usd, key.c_str());
  }

  // kTimeout is not a failure: what was not delivered stays on disk.
  agentburn::Status flushed = client->flush(std::chrono::seconds(2));
  if (!flushed.ok() && flushed.code() != agentburn::Status::Code::kTimeout) {
    return fail("flushing", flushed);
  }
  std::printf("flush: %s\n", flushed.ok() ? "all delivered" : flushed.message().c_str());
  agentburn::Stats st = client->stats();
  std::printf("stats: pending=%llu delivered=%llu dead_letters=%llu last_error=\"%s\"\n",
              static_cast<unsigned long long>(st.pending),
              static_cast<unsigned long long>(st.delivered),
              static_cast<unsigned long long>(st.dead_letters), st.last_error.c_str());
  return 0;  // the Client's destructor closes it
}
