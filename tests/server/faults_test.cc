// Fault injection (--enable-fault-injection): plans of statuses, rejections, delays, agent
// registrations refused or failing for a while, the open-core server's behaviour, and the
// counters tests read back.
#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

namespace {

void plan(TestServer& s, const json& p) {
  auto res = s.post("/api/_faults", p.dump());
  INFO(res.body);
  REQUIRE(res.status == 200);
}

std::size_t stored_count(TestServer& s) {
  return s.get("/api/events?limit=10000").json().size();
}

}  // namespace

TEST_SUITE_BEGIN("server.faults");

TEST_CASE("the fault routes are refused without --enable-fault-injection") {
  TestServer s;
  CHECK(s.post("/api/_faults", R"({"status": 503})").status == 404);
  CHECK(s.del("/api/_faults").status == 404);
  CHECK(s.get("/api/_faults").status == 404);
  CHECK(s.get("/api/_stats").status == 404);
  std::string agent = s.register_agent("a");
  CHECK(s.post("/api/ingest", make_event(agent, 1, "k").dump()).status == 200);
}

TEST_CASE("status faults answer the next N ingest requests in order, with Retry-After") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, json::array({{{"status", 503}, {"count", 2}, {"retry_after", "2"}},
                       {{"status", 429}, {"retry_after", "Wed, 21 Oct 2015 07:28:00 GMT"}},
                       {{"status", 500}, {"count", 1}}}));
  std::string body = make_event(agent, 1, "k").dump();
  auto r1 = s.post("/api/ingest", body);
  CHECK(r1.status == 503);
  CHECK(r1.headers["retry-after"] == "2");
  CHECK(r1.json()["error"].is_string());
  CHECK(s.post("/api/ingest", body).status == 503);
  auto r3 = s.post("/api/ingest", body);
  CHECK(r3.status == 429);
  CHECK(r3.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT");
  auto r4 = s.post("/api/ingest", body);
  CHECK(r4.status == 500);
  CHECK(r4.headers.count("retry-after") == 0);
  CHECK(stored_count(s) == 0);
  CHECK(s.post("/api/ingest", body).status == 200);

  json stats = s.stats();
  CHECK(stats["ingest_requests"] == 5);
  CHECK(stats["events_received"] == 5);
  CHECK(stats["events_stored"] == 1);
  CHECK(stats["faults_injected"] == 4);
  json left = s.get("/api/_faults").json();
  REQUIRE(left.size() == 3);
  CHECK(left[0]["count"] == 0);
}

TEST_CASE("min_events: a status fault only for batches at least that large") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, {{"status", 413}, {"count", 5}, {"min_events", 3}});
  json big = json::array(
      {make_event(agent, 1, "1"), make_event(agent, 1, "2"), make_event(agent, 1, "3")});
  CHECK(s.post("/api/ingest", big.dump()).status == 413);
  CHECK(s.post("/api/ingest", json::array({big[0], big[1]}).dump()).status == 200);
  CHECK(s.post("/api/ingest", big[2].dump()).status == 200);
}

TEST_CASE("reject_keys answers 400 naming those events, as if invalid") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, {{"reject_keys", {"bad-1", "bad-2"}}});
  json batch = json::array({make_event(agent, 1, "ok-0"), make_event(agent, 1, "bad-1"),
                            make_event(agent, 1, "ok-2"), make_event(agent, 1, "bad-2")});
  auto res = s.post("/api/ingest", batch.dump());
  REQUIRE(res.status == 400);
  json errors = res.json()["errors"];
  REQUIRE(errors.size() == 2);
  CHECK(errors[0]["index"] == 1);
  CHECK(errors[1]["index"] == 3);
  CHECK(errors[0]["field"] == "idempotency_key");
  CHECK(stored_count(s) == 0);
  CHECK(s.ingest_ok(json::array({batch[0], batch[2]}))["ingested"] == 2);

  REQUIRE(s.del("/api/_faults").status == 200);
  CHECK(s.ingest_ok(batch[1])["ingested"] == 1);
}

TEST_CASE("error_detail false: a 400 for invalid events names none of them") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, {{"error_detail", false}});
  json batch = json::array({make_event(agent, 1, "a"), make_event(agent, -1, "b")});
  auto res = s.post("/api/ingest", batch.dump());
  CHECK(res.status == 400);
  CHECK(res.json()["error"].is_string());
  CHECK(!res.json().contains("errors"));
}

TEST_CASE("a delayed answer: the request is stored first, the answer held") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, {{"delay_ms", 3600000}, {"count", 1}});
  // The client gives up long before the answer; the server has stored the event anyway,
  // as a server that accepts and never answers would have.
  testing::HttpRequest req;
  req.method = "POST";
  req.url = s.url("/api/ingest");
  req.body = make_event(agent, 1, "held").dump();
  req.headers = {"x-api-key: " + s.key};
  req.timeout_ms = 300;
  auto timed_out = testing::http_send(req);
  CHECK(timed_out.status == 0);
  CHECK(timed_out.code == CURLE_OPERATION_TIMEDOUT);
  CHECK(testing::wait_until([&] { return stored_count(s) == 1; }));

  // The resend is acknowledged as a duplicate.
  json again = s.ingest_ok(make_event(agent, 1, "held"));
  CHECK(again["duplicates"] == 1);
  CHECK(stored_count(s) == 1);
  // SIGTERM ends the held request too.
  CHECK(s.process.stop() == 0);
}

TEST_CASE("open-core mode: an unknown agent fails the whole batch with 500; no deduplication") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  plan(s, {{"mode", "open-core"}});
  json batch = json::array({make_event(agent, 1, "x"), make_event("agt_unknown", 1, "y")});
  auto res = s.post("/api/ingest", batch.dump());
  CHECK(res.status == 500);
  CHECK(stored_count(s) == 0);

  json twice = json::array({make_event(agent, 1, "same"), make_event(agent, 1, "same")});
  CHECK(s.ingest_ok(twice)["ingested"] == 2);
  CHECK(s.ingest_ok(twice[0])["ingested"] == 1);
  CHECK(s.get("/api/events?idempotency_key=same").json().size() == 3);
  CHECK(s.stats()["duplicates"] == 0);

  // Invalid events are still a 400.
  CHECK(s.post("/api/ingest", make_event(agent, -1, "neg").dump()).status == 400);
}

TEST_CASE("agent_status: registrations of these names refused for good, or failing N times") {
  TestServer s({"--enable-fault-injection"});
  plan(s, json::array({{{"agent_status", 422}, {"names", {"refused-1", "refused-2"}}},
                       {{"agent_status", 503},
                        {"names", json::array({"flaky-1"})},
                        {"count", 2},
                        {"retry_after", "1"}}}));
  auto post_agent = [&](const std::string& name, bool with_key = false) {
    return s.post("/api/agents", json{{"name", name}, {"projectId", "p"}}.dump(), with_key);
  };
  for (int i = 0; i < 3; ++i) {
    for (const char* name : {"refused-1", "refused-2"}) {
      auto res = post_agent(name);
      INFO(name, " -> ", res.body);
      CHECK(res.status == 422);
      CHECK(res.json()["field"] == "name");
      CHECK(res.json()["error"].get<std::string>().find(name) != std::string::npos);
    }
  }
  auto f1 = post_agent("flaky-1");
  CHECK(f1.status == 503);
  CHECK(f1.headers["retry-after"] == "1");
  CHECK(!f1.json().contains("field"));
  CHECK(post_agent("flaky-1", true).status == 503);
  // Other names, and flaky-1 once its count is spent, register as usual.
  CHECK(post_agent("good").status == 201);
  auto f3 = post_agent("flaky-1");
  CHECK(f3.status == 201);
  CHECK(f3.json()["name"] == "flaky-1");
  CHECK(post_agent("flaky-1").status == 201);
  CHECK(post_agent("refused-1").status == 422);

  // Nothing refused was registered: the agents list holds the three that were.
  json agents = s.get("/api/agents").json();
  REQUIRE(agents.size() == 3);
  for (const auto& a : agents) CHECK(a["name"] != "refused-1");
  CHECK(s.stats()["faults_injected"] == 9);
  // An event naming a refused agent has no agent to name: the usual unknown-agent 400.
  CHECK(s.post("/api/ingest", make_event("agt_refused", 1, "k").dump()).status == 400);

  json left = s.get("/api/_faults").json();
  REQUIRE(left.size() == 2);
  CHECK(left[0] == json{{"agent_status", 422}, {"names", {"refused-1", "refused-2"}}});
  CHECK(left[1]["count"] == 0);
  CHECK(left[1]["names"] == json::array({"flaky-1"}));

  // Ingest faults leave registrations alone, and the other way round.
  plan(s, json::array({{{"status", 503}, {"count", 5}},
                       {{"agent_status", 500}, {"names", json::array({"x"})}, {"count", 1}}}));
  CHECK(post_agent("y").status == 201);
  CHECK(post_agent("x").status == 500);
  CHECK(post_agent("x").status == 201);
  CHECK(s.get("/api/_faults").json()[0]["count"] == 5);
  // An invalid agent is refused for what it is, before any fault.
  plan(s, {{"agent_status", 503}, {"names", json::array({"z"})}});
  auto bad = s.post("/api/agents", R"({"name": "z", "tags": "not-a-list"})", false);
  CHECK(bad.status == 400);
  CHECK(bad.json()["field"] == "tags");
  REQUIRE(s.del("/api/_faults").status == 200);
  CHECK(post_agent("refused-1").status == 201);
}

TEST_CASE("malformed plans are refused and leave the plan as it was") {
  TestServer s({"--enable-fault-injection"});
  plan(s, {{"status", 503}, {"count", 7}});
  for (const char* bad : {"not json", R"({"status": 99})", R"({"status": 503, "count": 0})",
                          R"({"status": 503, "cuont": 2})", R"({"delay_ms": -1})",
                          R"({"reject_keys": "k"})", R"({"mode": "chaos"})", R"({"what": 1})",
                          R"([1])", R"({"status": 503, "retry_after": [1]})"}) {
    auto res = s.post("/api/_faults", bad);
    INFO(bad, " -> ", res.body);
    CHECK(res.status == 400);
    CHECK(res.json()["error"].is_string());
  }
  // Agent items: each message names the field at fault.
  const std::pair<const char*, const char*> bad_agent_items[] = {
      {R"({"agent_status": 422})", "names"},
      {R"({"agent_status": 422, "names": []})", "names"},
      {R"({"agent_status": 422, "names": "a"})", "names"},
      {R"({"agent_status": 422, "names": ["a", 1]})", "names"},
      {R"({"agent_status": 422, "names": [""]})", "names"},
      {R"({"agent_status": 200, "names": ["a"]})", "agent_status"},
      {R"({"agent_status": 600, "names": ["a"]})", "agent_status"},
      {R"({"agent_status": "422", "names": ["a"]})", "agent_status"},
      {R"({"agent_status": 503, "names": ["a"], "count": 0})", "count"},
      {R"({"agent_status": 503, "names": ["a"], "count": 1.5})", "count"},
      {R"({"agent_status": 503, "names": ["a"], "retry_after": -1})", "retry_after"},
      {R"({"agent_status": 503, "names": ["a"], "name": "a"})", "\"name\""},
      {R"({"agent_status": 503, "names": ["a"], "min_events": 1})", "\"min_events\""},
      {R"([{"status": 503}, {"agent_status": 422, "names": ["a"], "delay_ms": 5}])", "item 1"},
  };
  for (const auto& [bad, field] : bad_agent_items) {
    auto res = s.post("/api/_faults", bad);
    INFO(bad, " -> ", res.body);
    CHECK(res.status == 400);
    CHECK(res.json()["error"].get<std::string>().find(field) != std::string::npos);
  }
  json current = s.get("/api/_faults").json();
  REQUIRE(current.size() == 1);
  CHECK(current[0]["count"] == 7);
  CHECK(s.del("/api/_faults").status == 200);
  CHECK(s.get("/api/_faults").json().empty());
}

TEST_CASE("the fault routes need the key") {
  TestServer s({"--enable-fault-injection"});
  CHECK(s.post("/api/_faults", R"({"status": 503})", false).status == 401);
  CHECK(s.get("/api/_stats", false).status == 401);
}

TEST_SUITE_END();
