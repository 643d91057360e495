// The totals kept at ingest agree with the stored events: after restarts, after kill -9 in
// the middle of ingesting, with resends deduplicated, and after a run without them.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

namespace {

struct Sums {
  long long events = 0, input_tokens = 0, output_tokens = 0;
  double cost = 0;
  std::map<std::string, long long> events_by_agent;
};

// Every stored event, read back page by page.
template <class Server>
Sums stored_events(Server& s) {
  Sums sums;
  std::string cursor;
  for (;;) {
    json page = s.get("/api/events?limit=10000&cursor=" + cursor).json();
    REQUIRE(page.contains("events"));
    for (const auto& e : page["events"]) {
      ++sums.events;
      sums.cost += e["costUsd"].get<double>();
      sums.input_tokens += e.value("inputTokens", 0LL);
      sums.output_tokens += e.value("outputTokens", 0LL);
      ++sums.events_by_agent[e["agentId"].get<std::string>()];
    }
    if (page["nextCursor"].is_null()) return sums;
    cursor = page["nextCursor"];
  }
}

// The aggregates' answers equal the sums of the stored events.
template <class Server>
void check_agree(Server& s) {
  Sums sums = stored_events(s);
  json costs = s.get("/api/costs?days=36500").json();
  CHECK(costs["eventCount"] == sums.events);
  CHECK(costs["totalCost"].template get<double>() == doctest::Approx(sums.cost));
  CHECK(costs["totalInputTokens"] == sums.input_tokens);
  CHECK(costs["totalOutputTokens"] == sums.output_tokens);
  json dashboard = s.get("/api/dashboard").json();
  CHECK(dashboard["totalEvents"] == sums.events);
  for (const auto& agent : s.get("/api/agents").json()) {
    INFO(agent["name"]);
    CHECK(agent["eventCount"] == sums.events_by_agent[agent["id"].template get<std::string>()]);
  }
}

json numbered_event(const std::string& agent, int n) {
  return make_event(agent, 0.001 * (n % 97 + 1), "n" + std::to_string(n),
                    {{"inputTokens", n % 13}, {"outputTokens", n % 7}});
}

}  // namespace

TEST_SUITE_BEGIN("server.aggregates");

TEST_CASE("aggregates agree with the events after kill -9 mid-ingest, resends and restarts") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b");
  std::mutex mu;
  std::condition_variable acked;
  int acknowledged = 0;
  std::atomic<int> attempted{0};
  std::atomic<bool> stop{false};
  std::string url = s.url("/api/ingest");
  std::thread sender([&] {
    testing::HttpClient client;
    for (int batch = 0; !stop; ++batch) {
      json events = json::array();
      // Each batch resends five events of the one before: duplicates count once.
      for (int i = std::max(0, batch * 50 - 5); i < batch * 50 + 50; ++i) {
        events.push_back(numbered_event(i % 2 ? a : b, i));
      }
      attempted = batch * 50 + 50;
      testing::HttpRequest req;
      req.method = "POST";
      req.url = url;
      req.body = events.dump();
      req.headers = {"Content-Type: application/json", "x-api-key: " + s.key};
      if (client.send(req).status != 200) return;  // the server was killed
      std::lock_guard<std::mutex> lock(mu);
      ++acknowledged;
      acked.notify_all();
    }
  });
  bool enough = false;
  {
    std::unique_lock<std::mutex> lock(mu);
    enough = acked.wait_for(lock, std::chrono::seconds(60), [&] { return acknowledged >= 20; });
  }
  s.process.kill9();  // while the sender is sending its next batch
  stop = true;
  sender.join();
  REQUIRE(enough);

  REQUIRE(s.process.start());
  check_agree(s);

  // Everything attempted, sent again: what was stored is a duplicate, the rest is new.
  json all = json::array();
  for (int i = 0; i < attempted; ++i) {
    all.push_back(numbered_event(i % 2 ? a : b, i));
    if (all.size() == 1000 || i == attempted - 1) {
      s.ingest_ok(all);
      all = json::array();
    }
  }
  check_agree(s);
  json costs = s.get("/api/costs?days=36500").json();
  CHECK(costs["eventCount"] == attempted.load());
  double expected = 0;
  for (int i = 0; i < attempted; ++i) expected += 0.001 * (i % 97 + 1);
  CHECK(costs["totalCost"].get<double>() == doctest::Approx(expected));

  REQUIRE(s.process.stop() == 0);
  REQUIRE(s.process.start());
  check_agree(s);
  CHECK(s.get("/api/costs?days=36500").json() == costs);
}

TEST_CASE("--no-aggregates: the totals routes say so, and the next run rebuilds them") {
  testing::TempDir dir;
  std::string agent;
  {
    testing::ServerProcess off(testing::server_config(dir, {"--no-aggregates"}));
    REQUIRE(off.start());
    testing::HttpClient client;
    auto send = [&](const std::string& method, const std::string& path, const std::string& body) {
      testing::HttpRequest req;
      req.method = method;
      req.url = off.url() + path;
      req.body = body;
      req.headers = {"Content-Type: application/json",
                     "x-api-key: " + std::string(testing::kTestKey)};
      return client.send(req);
    };
    agent = send("POST", "/api/agents", R"({"name":"a"})").json()["id"];
    json batch = json::array();
    for (int i = 0; i < 300; ++i) batch.push_back(numbered_event(agent, i));
    REQUIRE(send("POST", "/api/ingest", batch.dump()).status == 200);
    for (const char* path : {"/api/agents", "/api/costs", "/api/dashboard", "/api/alerts"}) {
      auto res = send("GET", path, "");
      INFO(path);
      CHECK(res.status == 503);
      CHECK(res.json()["error"].get<std::string>().find("--no-aggregates") != std::string::npos);
    }
    CHECK(send("GET", "/api/events?limit=1", "").status == 200);
    REQUIRE(off.stop() == 0);
  }
  testing::ServerProcess on(testing::server_config(dir));
  REQUIRE(on.start());
  struct Client {
    testing::ServerProcess& p;
    testing::HttpClient http;
    testing::HttpResponse get(const std::string& path) {
      testing::HttpRequest req;
      req.url = p.url() + path;
      req.headers = {"x-api-key: " + std::string(testing::kTestKey)};
      return http.send(req);
    }
  } client{on, {}};
  check_agree(client);
  CHECK(client.get("/api/costs").json()["eventCount"] == 300);
}

TEST_SUITE_END();
