// testing::TcpProxy in front of the server: resets, cut answers, stalls, delays, a seeded mix.
#include <doctest/doctest.h>

#include <string>

#include "harness.hpp"
#include "support/tcp_proxy.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TcpProxy;

namespace {

testing::HttpResponse ingest_via(const TcpProxy& proxy, const testing::TestServer& s,
                                 const json& body, long timeout_ms = 20000) {
  testing::HttpRequest req;
  req.method = "POST";
  req.url = proxy.url() + "/api/ingest";
  req.body = body.dump();
  req.headers = {"x-api-key: " + s.key};
  req.timeout_ms = timeout_ms;
  return testing::http_send(req);
}

std::size_t stored_count(testing::TestServer& s) {
  return s.get("/api/events?limit=10000").json().size();
}

}  // namespace

TEST_SUITE_BEGIN("server.proxy");

TEST_CASE("pass-through and reset") {
  testing::TestServer s;
  std::string agent = s.register_agent("a");
  TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());

  auto passed = ingest_via(proxy, s, make_event(agent, 1, "p1"));
  CHECK(passed.status == 200);

  proxy.set_mode(TcpProxy::Mode::kReset);
  auto reset = ingest_via(proxy, s, make_event(agent, 1, "p2"));
  CHECK(reset.status == 0);
  CHECK(reset.code != CURLE_OK);
  CHECK(stored_count(s) == 1);

  auto c = proxy.counters();
  CHECK(c.connections == 2);
  CHECK(c.passed == 1);
  CHECK(c.resets == 1);
}

TEST_CASE("a cut answer: the server stored the events, the client saw no answer") {
  testing::TestServer s;
  std::string agent = s.register_agent("a");
  TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  proxy.set_mode(TcpProxy::Mode::kCut);
  json batch = json::array({make_event(agent, 1, "cut-1"), make_event(agent, 1, "cut-2")});
  auto cut = ingest_via(proxy, s, batch);
  CHECK(cut.status == 0);
  CHECK(cut.code != CURLE_OK);
  CHECK(proxy.counters().cuts == 1);
  CHECK(stored_count(s) == 2);

  proxy.set_mode(TcpProxy::Mode::kPass);
  auto resent = ingest_via(proxy, s, batch);
  REQUIRE(resent.status == 200);
  CHECK(resent.json()["duplicates"] == 2);
  CHECK(stored_count(s) == 2);
}

TEST_CASE("stall and delay") {
  testing::TestServer s;
  std::string agent = s.register_agent("a");
  TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());

  proxy.set_mode(TcpProxy::Mode::kStall);
  auto stalled = ingest_via(proxy, s, make_event(agent, 1, "s1"), 300);
  CHECK(stalled.code == CURLE_OPERATION_TIMEDOUT);
  CHECK(proxy.counters().stalls == 1);
  CHECK(stored_count(s) == 0);

  proxy.set_mode(TcpProxy::Mode::kDelay);
  proxy.set_delay(std::chrono::milliseconds(20));
  CHECK(ingest_via(proxy, s, make_event(agent, 1, "s2")).status == 200);
  CHECK(proxy.counters().delayed == 1);
  // A stalled connection still open does not keep stop() from returning.
  proxy.set_mode(TcpProxy::Mode::kStall);
  testing::HttpRequest req;
  req.url = proxy.url() + "/api/costs";
  req.timeout_ms = 200;
  CHECK(testing::http_send(req).status == 0);
  proxy.stop();
  CHECK(proxy.counters().stalls == 2);
}

TEST_CASE("a seeded random mix is the same every run, and every connection is counted") {
  testing::TestServer s;
  std::string agent = s.register_agent("a");
  TcpProxy::Counters runs[2];
  for (auto& counters : runs) {
    TcpProxy proxy(s.process.port());
    REQUIRE(proxy.ok());
    proxy.set_random(7, TcpProxy::Mix{});
    proxy.set_delay(std::chrono::milliseconds(1));
    int answered = 0;
    for (int i = 0; i < 40; ++i) {
      auto res = ingest_via(proxy, s, make_event(agent, 1, "mix-" + std::to_string(i)));
      answered += res.status == 200;
    }
    counters = proxy.counters();
    CHECK(counters.connections == 40);
    CHECK(counters.passed + counters.resets + counters.cuts + counters.delayed == 40);
    CHECK(answered == static_cast<int>(counters.passed + counters.delayed));
    CHECK(counters.resets > 0);
    CHECK(counters.cuts > 0);
  }
  CHECK(runs[0].resets == runs[1].resets);
  CHECK(runs[0].cuts == runs[1].cuts);
  CHECK(runs[0].passed == runs[1].passed);
  // The same seed resets the same requests in both runs; cut ones reached the server.
  CHECK(stored_count(s) == 40 - runs[0].resets);
}

TEST_SUITE_END();
