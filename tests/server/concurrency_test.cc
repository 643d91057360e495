// Many clients at once: every event accounted for, and a key sent by several clients at the
// same moment stored once.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;

TEST_SUITE_BEGIN("server.concurrency");

TEST_CASE("50 concurrent keep-alive clients: every event accounted for") {
  testing::TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  constexpr int kClients = 50, kRequests = 20, kBatch = 10, kShared = 5;
  std::atomic<long> ingested{0}, duplicates{0}, failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      testing::HttpClient http;
      for (int r = 0; r < kRequests; ++r) {
        json batch = json::array();
        for (int e = 0; e < kBatch; ++e) {
          std::string key =
              "c" + std::to_string(c) + "-r" + std::to_string(r) + "-e" + std::to_string(e);
          batch.push_back(make_event(agent, 0.01, key));
        }
        // Keys every client sends in the same round: only one copy may be stored.
        if (r < kShared) batch.push_back(make_event(agent, 0.01, "shared-" + std::to_string(r)));
        testing::HttpRequest req;
        req.method = "POST";
        req.url = s.url("/api/ingest");
        req.body = batch.dump();
        req.headers = {"x-api-key: " + s.key, "Content-Type: application/json"};
        auto res = http.send(req);
        if (res.status != 200) {
          ++failures;
          continue;
        }
        json answer = res.json();
        ingested += answer["ingested"].get<long>();
        duplicates += answer["duplicates"].get<long>();
      }
    });
  }
  for (auto& t : clients) t.join();

  const long unique = kClients * kRequests * kBatch + kShared;
  const long shared_resends = (kClients - 1) * kShared;
  CHECK(failures == 0);
  CHECK(ingested == unique);
  CHECK(duplicates == shared_resends);
  json costs = s.get("/api/costs").json();
  CHECK(costs["eventCount"] == unique);
  CHECK(costs["totalCost"].get<double>() == doctest::Approx(unique * 0.01));
  json stats = s.stats();
  CHECK(stats["ingest_requests"] == kClients * kRequests);
  CHECK(stats["events_received"] == unique + shared_resends);
  CHECK(stats["events_stored"] == unique);
  for (int r = 0; r < kShared; ++r) {
    CHECK(s.get("/api/events?idempotency_key=shared-" + std::to_string(r)).json().size() == 1);
  }
  CHECK(s.process.stop() == 0);
}

TEST_SUITE_END();
