// Read-back: GET /api/events, /api/costs and /api/agents against what was sent.
#include <doctest/doctest.h>

#include <ctime>
#include <map>
#include <string>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

namespace {

std::string iso_days_ago(int days) {
  std::time_t t = std::time(nullptr) - static_cast<std::time_t>(days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

TEST_SUITE_BEGIN("server.readback");

TEST_CASE("GET /api/events: newest first, wire form plus id and receivedAt, filters, limit") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b");
  json sent = json::array();
  for (int i = 0; i < 30; ++i) {
    json extra = {{"taskId", i % 3 == 0 ? "t0" : "t1"},
                  {"workflowId", "w" + std::to_string(i % 2)},
                  {"model", "m"},
                  {"inputTokens", i},
                  {"metadata", {{"i", i}}}};
    sent.push_back(make_event(i % 2 ? b : a, 0.25, "ev" + std::to_string(i), extra));
  }
  json ids = s.ingest_ok(sent)["ids"];

  json all = s.get("/api/events").json();
  REQUIRE(all.size() == 30);
  for (int i = 0; i < 30; ++i) {
    const json& got = all[static_cast<std::size_t>(29 - i)];
    CHECK(got["id"] == ids[static_cast<std::size_t>(i)]);
    CHECK(got["receivedAt"].is_string());
    CHECK(got["idempotency_key"] == "ev" + std::to_string(i));
    CHECK(got["metadata"] == json({{"i", i}}));
    CHECK(got["inputTokens"] == i);
    CHECK(got["timestamp"].is_string());
  }

  CHECK(s.get("/api/events?agentId=" + a).json().size() == 15);
  CHECK(s.get("/api/events?taskId=t0").json().size() == 10);
  CHECK(s.get("/api/events?workflowId=w1&agentId=" + b).json().size() == 15);
  CHECK(s.get("/api/events?workflowId=w1&agentId=" + a).json().empty());
  json by_key = s.get("/api/events?idempotency_key=ev7").json();
  REQUIRE(by_key.size() == 1);
  CHECK(by_key[0]["id"] == ids[7]);
  json limited = s.get("/api/events?limit=5&agentId=" + a).json();
  REQUIRE(limited.size() == 5);
  CHECK(limited[0]["idempotency_key"] == "ev28");

  CHECK(s.get("/api/events?limit=10001").status == 400);
  CHECK(s.get("/api/events?limit=abc").status == 400);
  CHECK(s.get("/api/events?limit=10000").status == 200);
}

TEST_CASE("GET /api/costs: the figures match what was sent") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b");
  const char* providers[] = {"anthropic", "openai", "e2b"};
  const char* operations[] = {"llm_call", "tool_call", "compute", "api_call"};
  double total = 0;
  long long in_tokens = 0, out_tokens = 0;
  std::map<std::string, double> by_provider, by_model, by_operation, by_agent, by_task, by_day;
  json batch = json::array();
  for (int i = 0; i < 200; ++i) {
    double cost = 0.001 * (i + 1);
    std::string agent = i % 3 ? a : b;
    std::string provider = providers[i % 3], operation = operations[i % 4];
    json extra = {{"provider", provider}, {"operation", operation}};
    extra["inputTokens"] = 100 + i;
    extra["outputTokens"] = 10 + i;
    std::string model = "unknown", task = "unknown";
    if (i % 5) extra["model"] = model = "model-" + std::to_string(i % 2);
    if (i % 4) extra["taskId"] = task = "task-" + std::to_string(i % 7);
    std::string ts = iso_days_ago(i % 3);
    extra["timestamp"] = ts;
    batch.push_back(make_event(agent, cost, "c" + std::to_string(i), extra));
    total += cost;
    in_tokens += 100 + i;
    out_tokens += 10 + i;
    by_provider[provider] += cost;
    by_model[model] += cost;
    by_operation[operation] += cost;
    by_agent[agent] += cost;
    by_task[task] += cost;
    by_day[ts.substr(0, 10)] += cost;
    if (batch.size() == 64 || i == 199) {
      s.ingest_ok(batch);
      batch = json::array();
    }
  }
  // Resends are not counted twice.
  s.ingest_ok(make_event(a, 0.001, "c0", {{"provider", "anthropic"}}));

  json costs = s.get("/api/costs").json();
  CHECK(costs["totalCost"].get<double>() == doctest::Approx(total));
  CHECK(costs["eventCount"] == 200);
  CHECK(costs["totalInputTokens"] == in_tokens);
  CHECK(costs["totalOutputTokens"] == out_tokens);
  auto same = [](const json& got, const std::map<std::string, double>& want) {
    CHECK(got.size() == want.size());
    for (const auto& [name, cost] : want) {
      INFO(name);
      CHECK(got.value(name, -1.0) == doctest::Approx(cost));
    }
  };
  same(costs["byProvider"], by_provider);
  same(costs["byModel"], by_model);
  same(costs["byOperation"], by_operation);
  same(costs["byAgentId"], by_agent);
  same(costs["byAgent"], {{"a", by_agent[a]}, {"b", by_agent[b]}});
  same(costs["byTask"], by_task);
  same(costs["byDay"], by_day);

  json only_b = s.get("/api/costs?agentId=" + b).json();
  CHECK(only_b["totalCost"].get<double>() == doctest::Approx(by_agent[b]));
  CHECK(only_b["byAgent"].size() == 1);
  CHECK(only_b["byAgentId"].size() == 1);
}

TEST_CASE("GET /api/costs?days=N counts events of the last N days (30 by default)") {
  TestServer s;
  std::string a = s.register_agent("a");
  s.ingest_ok(json::array({make_event(a, 1, "now"),
                           make_event(a, 2, "old", {{"timestamp", iso_days_ago(10)}}),
                           make_event(a, 4, "older", {{"timestamp", iso_days_ago(40)}})}));
  CHECK(s.get("/api/costs?days=1").json()["totalCost"].get<double>() == doctest::Approx(1));
  CHECK(s.get("/api/costs?days=30").json()["totalCost"].get<double>() == doctest::Approx(3));
  CHECK(s.get("/api/costs").json()["totalCost"].get<double>() == doctest::Approx(3));
  CHECK(s.get("/api/costs?days=36500").json()["totalCost"].get<double>() == doctest::Approx(7));
  CHECK(s.get("/api/costs?days=30").json()["eventCount"] == 2);
  CHECK(s.get("/api/costs?days=0").status == 400);
  CHECK(s.get("/api/costs?days=x").status == 400);
}

TEST_CASE("GET /api/agents lists agents with their totals, newest first") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b"), idle = s.register_agent("c");
  s.ingest_ok(json::array(
      {make_event(a, 1.5, "1", {{"inputTokens", 10}, {"outputTokens", 5}}),
       make_event(a, 0.5, "2", {{"provider", "openai"}, {"timestamp", "2030-01-02T03:04:05Z"}}),
       make_event(b, 2, "3", {{"inputTokens", 7}})}));
  json newest_first = s.get("/api/agents").json();
  REQUIRE(newest_first.size() == 3);
  json agents = {newest_first[2], newest_first[1], newest_first[0]};
  CHECK(agents[0]["id"] == a);
  CHECK(agents[0]["totalCost"].get<double>() == doctest::Approx(2.0));
  CHECK(agents[0]["eventCount"] == 2);
  CHECK(agents[0]["totalInputTokens"] == 10);
  CHECK(agents[0]["totalOutputTokens"] == 5);
  CHECK(agents[0]["totalTokens"] == 15);
  CHECK(agents[0]["lastActivity"] == "2030-01-02T03:04:05.000Z");
  CHECK(agents[0]["costByProvider"]["anthropic"].get<double>() == doctest::Approx(1.5));
  CHECK(agents[0]["costByProvider"]["openai"].get<double>() == doctest::Approx(0.5));
  CHECK(agents[1]["id"] == b);
  CHECK(agents[1]["totalTokens"] == 7);
  CHECK(agents[2]["id"] == idle);
  CHECK(agents[2]["eventCount"] == 0);
  CHECK(agents[2]["lastActivity"].is_null());
}

TEST_SUITE_END();
