// Delivery against the real agentburn-server: every row of the retry table, TLS, outages,
// restarts and agent registration. Outcomes are counted on the server's side.
#include <doctest/doctest.h>

#include <agentburn/agentburn.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "server/harness.hpp"
#include "support/certs.hpp"
#include "support/clients.hpp"
#include "support/script_server.hpp"
#include "support/tcp_proxy.hpp"

using namespace agentburn;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using testing::online;
using testing::open_client;

Event event(const std::string& agent, int i, const std::string& key = "") {
  Event e;
  e.agent_id = agent;
  e.provider = i % 2 ? "openai" : "anthropic";
  e.operation = i % 3 ? "llm_call" : "tool_call";
  e.cost_usd = 0.001 * (i + 1);
  e.model = "model-" + std::to_string(i % 5);
  e.input_tokens = i;
  e.output_tokens = 2 * i;
  e.cached_input_tokens = i % 7;
  e.task_id = "task-" + std::to_string(i % 11);
  e.workflow_id = "wf";
  e.metadata_json = "{\"i\":" + std::to_string(i) + "}";
  if (!key.empty()) e.idempotency_key = key;
  return e;
}

// Every event stored on the server, keyed by idempotency_key (counting repeats).
std::multiset<std::string> server_keys(testing::TestServer& s, const std::string& ca_file = "") {
  testing::HttpRequest req;
  req.url = s.url("/api/events?limit=10000");
  req.headers.push_back("x-api-key: " + s.key);
  req.ca_file = ca_file;
  auto res = s.client.send(req);
  REQUIRE(res.status == 200);
  std::multiset<std::string> keys;
  for (const auto& e : res.json()) keys.insert(e.value("idempotency_key", ""));
  return keys;
}

void set_faults(testing::TestServer& s, const json& plan) {
  auto res = s.post("/api/_faults", plan.dump());
  INFO(res.body);
  REQUIRE(res.status == 200);
}

std::string register_agent(Client& c, const std::string& name) {
  Agent a;
  a.name = name;
  a.project_id = "delivery-tests";
  auto id = c.register_agent(a);
  REQUIRE_MESSAGE(id.ok(), id.status().to_string());
  return id.value();
}

// Tracks n events and returns their keys.
std::vector<std::string> track_n(Client& c, const std::string& agent, int n, int from = 0) {
  std::vector<std::string> keys;
  for (int i = from; i < from + n; ++i) {
    std::string k;
    Status s = c.track(event(agent, i), &k);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    keys.push_back(k);
  }
  return keys;
}

void require_flushed(Client& c, std::chrono::milliseconds timeout = 30s) {
  Status s = c.flush(timeout);
  std::string why = s.to_string() + " / last error: " + c.stats().last_error;
  REQUIRE_MESSAGE(s.ok(), why);
}

}  // namespace

TEST_SUITE_BEGIN("delivery.basic");

TEST_CASE("events tracked from several threads arrive exactly once, every field intact") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "threads");
  CHECK(agent.rfind("agt_", 0) == 0);
  const int kThreads = 4, kEach = 500;
  std::vector<std::string> keys[kThreads];
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string k;
        REQUIRE(c.track(event(agent, t * kEach + i), &k).ok());
        keys[t].push_back(k);
      }
    });
  }
  for (auto& t : ts) t.join();
  require_flushed(c);
  std::multiset<std::string> want;
  for (auto& v : keys) want.insert(v.begin(), v.end());
  CHECK(server_keys(s) == want);
  auto st = c.stats();
  CHECK(st.delivered == kThreads * kEach);
  CHECK(st.pending == 0);
  CHECK(st.last_delivery_at_ms > 0);
  CHECK(s.stats()["duplicates"] == 0);

  // One event, read back field by field.
  auto res = s.get("/api/events?idempotency_key=" + keys[1][7]);
  REQUIRE(res.status == 200);
  auto stored = res.json();
  REQUIRE(stored.size() == 1);
  json e = stored[0];
  int i = kEach + 7;
  CHECK(e["agentId"] == agent);
  CHECK(e["provider"] == (i % 2 ? "openai" : "anthropic"));
  CHECK(e["operation"] == (i % 3 ? "llm_call" : "tool_call"));
  CHECK(e["costUsd"].get<double>() == doctest::Approx(0.001 * (i + 1)));
  CHECK(e["model"] == "model-" + std::to_string(i % 5));
  CHECK(e["inputTokens"] == i);
  CHECK(e["outputTokens"] == 2 * i);
  CHECK(e["cachedInputTokens"] == i % 7);
  CHECK(e["taskId"] == "task-" + std::to_string(i % 11));
  CHECK(e["workflowId"] == "wf");
  CHECK(e["metadata"]["i"] == i);
  CHECK(e["timestamp"].get<std::string>().back() == 'Z');
}

TEST_CASE("offline then online: tracked while the server is down, delivered after a restart") {
  testing::TestServer s;
  testing::TempDir root;
  std::string url = s.process.url();
  std::string agent;
  {
    Client c = open_client(online(root.path(), url));
    agent = register_agent(c, "outage");
  }
  REQUIRE(s.process.stop() == 0);
  std::vector<std::string> keys;
  {
    Client c = open_client(online(root.path(), url));
    keys = track_n(c, agent, 300);
    CHECK(c.flush(300ms).code() == Status::Code::kTimeout);
    CHECK(testing::wait_until([&] { return c.stats().retries > 0; }));
    CHECK(c.close(100ms).code() == Status::Code::kTimeout);  // the rest waits on disk
  }
  REQUIRE(s.process.start());
  Client c = open_client(online(root.path(), url));
  require_flushed(c);
  CHECK(c.stats().adopted == 300);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("gzip bodies and several batches in flight against a slow server") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  set_faults(s, {{"delay_ms", 300}, {"count", 6}});
  Options o = online(root.path(), s.process.url());
  o.gzip = true;
  o.max_batches_in_flight = 4;
  o.batch_max_events = 100;
  Client c = open_client(o);
  std::string agent = register_agent(c, "slow");
  auto keys = track_n(c, agent, 800);
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  CHECK(s.stats()["ingest_requests"].get<int>() >= 8);
}

TEST_CASE("seed_fields_only sends the seed schema's fields alone") {
  testing::TestServer s;
  testing::TempDir root;
  Options o = online(root.path(), s.process.url());
  o.seed_fields_only = true;
  Client c = open_client(o);
  std::string agent = register_agent(c, "seed-only");
  auto keys = track_n(c, agent, 3);
  require_flushed(c);
  auto res = s.get("/api/events?limit=10");
  auto stored = res.json();
  REQUIRE(stored.size() == 3);
  for (const auto& e : stored) {
    // The server assigns keys of its own to events that came without one.
    CHECK(std::find(keys.begin(), keys.end(), e.value("idempotency_key", "")) == keys.end());
    CHECK_FALSE(e.contains("cachedInputTokens"));
    CHECK(e.contains("inputTokens"));
  }
}

TEST_CASE("a server that accepts and never answers: close(500ms) returns at once") {
  testing::TestServer s;
  testing::TempDir root;
  testing::TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  proxy.set_mode(testing::TcpProxy::Mode::kStall);
  Options o = online(root.path(), proxy.url());
  o.request_timeout_ms = 60000;
  Client c = open_client(o);
  auto keys = track_n(c, "agt_none", 5);
  REQUIRE(testing::wait_until([&] { return proxy.counters().stalls > 0; }));
  auto start = Clock::now();
  Status st = c.close(500ms);
  auto took = Clock::now() - start;
  CHECK(st.code() == Status::Code::kTimeout);
  // Far below the 60 s request timeout that a blocking transfer would have waited for.
  CHECK(took < 10s);
  MESSAGE("close(500ms) took ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms");
}

TEST_CASE("plain http to a loopback endpoint ignores the environment's http_proxy: the key never reaches a proxy") {
  testing::TestServer s;
  testing::TempDir root;
  // Whatever reaches this "proxy" stalls there: it stands for a proxy on another machine.
  testing::TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  proxy.set_mode(testing::TcpProxy::Mode::kStall);
  struct EnvProxy {
    explicit EnvProxy(const std::string& url) {
      setenv("http_proxy", url.c_str(), 1);
      setenv("all_proxy", url.c_str(), 1);
    }
    ~EnvProxy() {
      unsetenv("http_proxy");
      unsetenv("all_proxy");
    }
  };
  std::size_t tracked = 0;
  {
    EnvProxy env(proxy.url());
    std::string url = "http://localhost:" + std::to_string(s.process.port());
    Client c = open_client(online(root.path(), url));
    std::string agent = register_agent(c, "no-proxy");
    tracked = track_n(c, agent, 20).size();
    require_flushed(c, 30s);
  }
  CHECK(proxy.counters().connections == 0);
  CHECK(server_keys(s).size() == tracked);  // the test's own client reads http_proxy too
}

TEST_CASE("register_agent against a server that never answers returns a provisional id within register_timeout_ms") {
  testing::TestServer s;
  testing::TempDir root;
  testing::TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  proxy.set_mode(testing::TcpProxy::Mode::kStall);
  Options o = online(root.path(), proxy.url());
  o.request_timeout_ms = 60000;
  o.register_timeout_ms = 300;
  Client c = open_client(o);
  Agent a;
  a.name = "stalled";
  auto start = std::chrono::steady_clock::now();
  auto id = c.register_agent(a);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_MESSAGE(id.ok(), id.status().to_string());
  CHECK(id.value().rfind("ab-local-", 0) == 0);
  CHECK(took < 10s);  // far below the 60 s request timeout it waited for before
  MESSAGE("register_agent took ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms");
}

TEST_CASE("a wrong key: flush answers kAuth at once, retries count, the refusal is logged once") {
  testing::TestServer s({}, "the-right-key");
  testing::TempDir root;
  std::mutex mu;
  int paused_lines = 0;
  Options o = online(root.path(), s.process.url(), "a-wrong-key");
  o.retry_initial_ms = 10;
  o.retry_max_ms = 20;
  o.log = [&](LogLevel, const std::string& m) {
    std::lock_guard<std::mutex> g(mu);
    if (m.find("delivery paused") != std::string::npos) ++paused_lines;
  };
  Client c = open_client(o);
  track_n(c, "agent-1", 10);
  auto start = std::chrono::steady_clock::now();
  Status flushed = c.flush(60s);
  CHECK(flushed.code() == Status::Code::kAuth);
  CHECK_MESSAGE(flushed.message().find("refused the API key") != std::string::npos, flushed.message());
  CHECK(std::chrono::steady_clock::now() - start < 30s);
  // The sender keeps retrying (the key may be fixed on the server): each attempt counts,
  // and the log says it once.
  REQUIRE(testing::wait_until([&] { return c.stats().retries >= 4; }));
  CHECK(c.stats().pending == 10);
  std::lock_guard<std::mutex> g(mu);
  CHECK(paused_lines == 1);
}

TEST_CASE("an endpoint given with /api/ingest appended is taken as its base URL, with a warning") {
  testing::TestServer s;
  testing::TempDir root;
  std::mutex mu;
  std::string warned;
  Options o = online(root.path(), s.process.url() + "/api/ingest/");
  o.log = [&](LogLevel, const std::string& m) {
    std::lock_guard<std::mutex> g(mu);
    if (m.find("endpoint:") == 0) warned = m;
  };
  Client c = open_client(o);
  std::string agent = register_agent(c, "suffixed");
  CHECK(agent.rfind("agt_", 0) == 0);
  auto keys = track_n(c, agent, 10);
  require_flushed(c);
  CHECK(server_keys(s).size() == keys.size());
  std::lock_guard<std::mutex> g(mu);
  CHECK(warned == "endpoint: the base URL is expected, without /api/ingest; using " + s.process.url());
}

TEST_CASE("flush first takes in the folders of processes that have ended: their events are delivered too") {
  testing::TestServer s;
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "pool");
  auto keys = track_n(c, agent, 10);
  // What a worker process leaves when it ends without closing its client: a folder of its
  // own, unlocked, with its events in it (made here on another root and moved in).
  std::vector<std::string> worker_keys;
  {
    testing::TempDir elsewhere;
    {
      Client worker = open_client(testing::online(elsewhere.path(), "http://127.0.0.1:9"));
      worker_keys = track_n(worker, agent, 25, 1000);
      (void)worker.close(0ms);  // kTimeout: its events stay on disk, as intended
    }
    for (const auto& e : std::filesystem::directory_iterator(elsewhere.path())) {
      if (e.is_directory()) std::filesystem::rename(e.path(), root.sub("p999-worker"));
    }
  }
  REQUIRE(std::filesystem::exists(root.sub("p999-worker")));
  require_flushed(c);
  auto stored = server_keys(s);
  CHECK(stored.size() == keys.size() + worker_keys.size());
  for (const auto& k : worker_keys) CHECK(stored.count(k) == 1);
}

TEST_CASE("priced events reach the server with how they were priced; unpriced ones are counted") {
  testing::TestServer s;
  testing::TempDir root;
  for (bool seed_only : {false, true}) {
    CAPTURE(seed_only);
    Options o = online(root.path(), s.process.url());
    o.seed_fields_only = seed_only;
    Client c = open_client(o);
    std::string agent = register_agent(c, seed_only ? "priced-seed" : "priced");
    Event e = event(agent, 1);
    e.cost_usd.reset();
    e.model = "gpt-4o";
    e.input_tokens = 1000;
    e.output_tokens = 100;
    e.cached_input_tokens.reset();
    e.reasoning_tokens.reset();
    e.metadata_json = R"({"mine": 1})";
    REQUIRE(c.track(e).ok());
    Event unknown = e;
    unknown.model = "no-such-model";
    REQUIRE(c.track(unknown).ok());
    require_flushed(c);
    auto res = s.get("/api/events?agentId=" + agent);
    REQUIRE(res.status == 200);
    json events = res.json();
    REQUIRE(events.size() == 2);
    for (const auto& ev : events) {
      const json& where = seed_only ? ev["metadata"] : ev;
      INFO(ev.dump());
      if (ev["model"] == "gpt-4o") {
        // 1000 x $2.50/M + 100 x $10/M
        CHECK(ev["costUsd"].get<double>() == doctest::Approx(0.0035));
        CHECK(where["costSource"] == "computed");
        CHECK(where["priceKey"] == "gpt-4o");
      } else {
        CHECK(ev["costUsd"].get<double>() == 0);
        CHECK(where["costSource"] == "unpriced");
      }
      CHECK(ev["metadata"]["mine"] == 1);
    }
  }
  auto costs = s.get("/api/costs").json();
  CHECK(costs["unpricedCount"] == 2);
}

TEST_CASE("the API key appears in no error, log line, stats or file of the buffer") {
  const std::string secret = "sk-secret-key-do-not-leak-98765";
  testing::TestServer s({}, "the-right-key");
  testing::TempDir root;
  std::string logged;
  std::mutex mu;
  Options o = online(root.path(), s.process.url(), secret);
  o.log = [&](LogLevel, const std::string& m) {
    std::lock_guard<std::mutex> g(mu);
    logged += m + "\n";
  };
  {
    Client c = open_client(o);
    Agent a;
    a.name = "leak-check";
    auto id = c.register_agent(a);  // 201: the agents route takes no key unless strict
    track_n(c, id.ok() ? id.value() : "agt_x", 20);
    CHECK(c.flush(30s).code() == Status::Code::kAuth);  // 401: paused, said at once
    CHECK(testing::wait_until([&] { return c.stats().last_error.find("401") != std::string::npos; }));
    auto st = c.stats();
    CHECK(st.last_error.find(secret) == std::string::npos);
    CHECK(st.pending == 20);
  }
  {
    std::lock_guard<std::mutex> g(mu);
    CHECK(logged.find("401") != std::string::npos);
    CHECK(logged.find(secret) == std::string::npos);
  }
  std::string cmd = "grep -r -l -a -F '" + secret + "' '" + root.path() + "' > /dev/null";
  CHECK(std::system(cmd.c_str()) != 0);  // grep finds nothing
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("delivery.retry");

TEST_CASE("401: delivery pauses, nothing is dropped, and the right key delivers it all") {
  testing::TestServer s;
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string agent;
  {
    Client c = open_client(online(root.path(), s.process.url()));
    agent = register_agent(c, "auth");
  }
  {
    Client c = open_client(online(root.path(), s.process.url(), "wrong-key"));
    keys = track_n(c, agent, 50);
    CHECK(c.flush(30s).code() == Status::Code::kAuth);
    CHECK(testing::wait_until(
        [&] { return c.stats().last_error.find("refused the API key") != std::string::npos; }));
    auto st = c.stats();
    CHECK(st.pending == 50);
    CHECK(st.dead_letters == 0);
  }
  Client c = open_client(online(root.path(), s.process.url()));
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("503 with Retry-After: retried no sooner than asked, then delivered") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Options o = online(root.path(), s.process.url());
  o.retry_max_ms = 5000;  // Retry-After is capped at retry_max_ms
  Client c = open_client(o);
  std::string agent = register_agent(c, "retry-after");
  set_faults(s, {{"status", 503}, {"count", 2}, {"retry_after", "1"}});
  auto start = Clock::now();
  auto keys = track_n(c, agent, 10);
  require_flushed(c);
  auto took = Clock::now() - start;
  // Two answers asked for a second each: the third attempt cannot come before 2 s.
  CHECK(took >= 2s);
  CHECK(c.stats().retries == 2);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("429 and 500 answers are retried; an outage sets nothing aside") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "outage-5xx");
  set_faults(s, json::array({{{"status", 429}, {"count", 2}}, {{"status", 500}, {"count", 1000000}}}));
  auto keys = track_n(c, agent, 40);
  CHECK(c.flush(1500ms).code() == Status::Code::kTimeout);
  CHECK(testing::wait_until([&] { return c.stats().retries >= 3; }));
  auto st = c.stats();
  CHECK(st.dead_letters == 0);  // the server fails everything: an outage, not poison
  CHECK(st.pending == 40);
  REQUIRE(s.del("/api/_faults").status == 200);
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  CHECK(c.stats().dead_letters == 0);
}

TEST_CASE("400 naming bad events: exactly those become dead letters, the rest arrives") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "per-event");
  set_faults(s, {{"reject_keys", {"bad-1", "bad-2"}}});
  std::vector<std::string> good;
  for (int i = 0; i < 30; ++i) {
    std::string key = i == 5 ? "bad-1" : i == 17 ? "bad-2" : "good-" + std::to_string(i);
    REQUIRE(c.track(event(agent, i, key)).ok());
    if (key.rfind("good", 0) == 0) good.push_back(key);
  }
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(good.begin(), good.end()));
  auto dead = c.dead_letters(10);
  REQUIRE(dead.size() == 2);
  std::set<std::string> dead_keys;
  for (const auto& d : dead) {
    dead_keys.insert(json::parse(d.event_json)["idempotency_key"].get<std::string>());
    CHECK(d.reason.find("400") != std::string::npos);
  }
  CHECK(dead_keys == std::set<std::string>{"bad-1", "bad-2"});
  CHECK(c.stats().dead_letters == 2);
  // Requeued once the server takes them: they arrive, and nothing else twice.
  REQUIRE(s.del("/api/_faults").status == 200);
  REQUIRE(c.requeue_dead_letters().ok());
  require_flushed(c);
  CHECK(server_keys(s).size() == 30);
  CHECK(c.stats().dead_letters == 0);
}

TEST_CASE("400 with no detail: the batch is split until the refused event stands alone") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "bisect");
  set_faults(s, json::array({{{"reject_keys", {"poison"}}}, {{"error_detail", false}}}));
  std::vector<std::string> good;
  for (int i = 0; i < 64; ++i) {
    std::string key = i == 41 ? "poison" : "ok-" + std::to_string(i);
    REQUIRE(c.track(event(agent, i, key)).ok());
    if (i != 41) good.push_back(key);
  }
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(good.begin(), good.end()));
  auto dead = c.dead_letters(10);
  REQUIRE(dead.size() == 1);
  CHECK(json::parse(dead[0].event_json)["idempotency_key"] == "poison");
}

TEST_CASE("open-core server: a poisoned event failing with 500 is isolated and set aside") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Options o = online(root.path(), s.process.url());
  o.split_after_failures = 2;
  Client c = open_client(o);
  std::string agent = register_agent(c, "open-core");
  set_faults(s, {{"mode", "open-core"}});
  std::vector<std::string> good;
  for (int i = 0; i < 40; ++i) {
    std::string key = "oc-" + std::to_string(i);
    REQUIRE(c.track(event(i == 23 ? "agt_unknown" : agent, i, key)).ok());
    if (i != 23) good.push_back(key);
  }
  require_flushed(c);
  auto stored = server_keys(s);
  CHECK(std::set<std::string>(stored.begin(), stored.end()) ==
        std::set<std::string>(good.begin(), good.end()));
  CHECK(stored.size() == good.size());  // no dedupe there: nothing was sent twice after a 2xx
  auto dead = c.dead_letters(10);
  REQUIRE(dead.size() == 1);
  CHECK(json::parse(dead[0].event_json)["agentId"] == "agt_unknown");
  CHECK(dead[0].reason.find("500") != std::string::npos);
}

TEST_CASE("400 for every request, as a proxy refusing a header would: nothing set aside, delivery waits") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "refused-requests");
  set_faults(s, json::array({{{"status", 400}, {"count", 1000000}}, {{"error_detail", false}}}));
  auto keys = track_n(c, agent, 40);
  CHECK(c.flush(0ms).code() == Status::Code::kTimeout);
  // Delivery pauses and says why; bisection stops at the first event refused alone.
  REQUIRE(testing::wait_until([&] {
    return c.stats().last_error.find("every request is refused") != std::string::npos &&
           c.stats().retries >= 3;
  }));
  auto st = c.stats();
  CHECK(st.dead_letters == 0);
  CHECK(st.pending == 40);
  CHECK(c.dead_letters(100).empty());
  CHECK_MESSAGE(st.last_error.find("HTTP 400") != std::string::npos, st.last_error);
  auto requests = s.get("/api/_stats").json()["ingest_requests"].get<int>();
  CHECK_MESSAGE(requests < 40, requests << " requests: the refusals were bisected to the end");
  // The cause goes away: everything arrives, once.
  REQUIRE(s.post("/api/_faults", "[]").status == 200);
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  CHECK(c.stats().dead_letters == 0);
}

TEST_CASE("a poisoned event refused alone among accepted batches is still set aside") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Options o = online(root.path(), s.process.url());
  o.batch_max_events = 1;  // every request holds one event: one refused, the others accepted
  Client c = open_client(o);
  std::string agent = register_agent(c, "poison-alone");
  set_faults(s, json::array({{{"reject_keys", {"poison"}}}, {{"error_detail", false}}}));
  REQUIRE(c.track(event(agent, 0, "poison")).ok());
  auto keys = track_n(c, agent, 5, 1);
  require_flushed(c);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  REQUIRE(c.dead_letters(10).size() == 1);
  CHECK(c.stats().pending == 0);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("delivery.proxy");

TEST_CASE("resets, cut answers and delays on the way: every event arrives exactly once") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  testing::TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  Options o = online(root.path(), proxy.url());
  o.batch_max_events = 25;
  o.request_timeout_ms = 2000;
  std::string agent;
  {
    Client direct = open_client(online(root.path(), s.process.url()));
    agent = register_agent(direct, "proxy");
  }
  testing::TcpProxy::Mix mix;
  mix.pass = 40;
  mix.reset = 25;
  mix.cut = 25;
  mix.delay = 10;
  proxy.set_random(20261126, mix);
  proxy.set_delay(50ms);
  proxy.set_close_after(1);  // a connection per answer: a fault drawn for every request
  Client c = open_client(o);
  auto keys = track_n(c, agent, 500);
  require_flushed(c, 120s);
  auto stored = server_keys(s);
  CHECK(std::set<std::string>(stored.begin(), stored.end()) ==
        std::set<std::string>(keys.begin(), keys.end()));
  CHECK(stored.size() == keys.size());  // the server's dedupe absorbed every resend
  auto counters = proxy.counters();
  auto st = c.stats();
  MESSAGE("connections ", counters.connections, ", resets ", counters.resets, ", cuts ",
          counters.cuts, "; client retries ", st.retries, ", resent ", st.resent,
          "; server duplicates ", s.stats()["duplicates"].get<int>());
  CHECK(counters.resets + counters.cuts > 0);
  CHECK(st.retries > 0);
  CHECK(st.dead_letters == 0);
}

TEST_CASE("an answer cut after the server stored the batch: resent, counted, stored once") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  testing::TcpProxy proxy(s.process.port());
  REQUIRE(proxy.ok());
  std::string agent;
  {
    Client direct = open_client(online(root.path(), s.process.url()));
    agent = register_agent(direct, "cut");
  }
  proxy.set_mode(testing::TcpProxy::Mode::kCut);
  proxy.set_cut_after(0);  // the request goes through; the answer never comes back
  Client c = open_client(online(root.path(), proxy.url()));
  auto keys = track_n(c, agent, 10);
  REQUIRE(testing::wait_until([&] { return proxy.counters().cuts >= 2; }));
  proxy.set_mode(testing::TcpProxy::Mode::kPass);
  require_flushed(c);
  auto st = c.stats();
  CHECK(st.resent >= 1);  // events that may have arrived were sent again, and counted
  CHECK(st.retries >= 2);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  CHECK(s.stats()["duplicates"].get<std::uint64_t>() == st.resent);  // each resend absorbed
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("delivery.tls");

TEST_CASE("TLS: an untrusted certificate is a configuration error, said at once, and nothing is lost; the CA option trusts it") {
  testing::TempDir certs;
  REQUIRE(testing::make_certificates(certs.path()));
  testing::TestServer s({"--tls-cert", certs.sub("server.pem"), "--tls-key", certs.sub("server.key")});
  REQUIRE(s.process.url().rfind("https://", 0) == 0);
  testing::TempDir root;
  Options trusted = online(root.path(), s.process.url());
  trusted.ca_bundle = certs.sub("ca.pem");
  std::string agent;
  {
    Client c = open_client(trusted);
    agent = register_agent(c, "tls");
  }
  std::vector<std::string> keys;
  {
    Client c = open_client(online(root.path(), s.process.url()));
    Agent a;
    a.name = "tls-untrusted";
    auto id = c.register_agent(a);  // no trust: said, not hidden behind a provisional id
    REQUIRE_FALSE(id.ok());
    CHECK(id.status().code() == Status::Code::kNetwork);
    CHECK_MESSAGE(id.status().message().find("TLS handshake") != std::string::npos, id.status().message());
    CHECK_MESSAGE(id.status().message().find("ca_bundle") != std::string::npos, id.status().message());
    keys = track_n(c, agent, 20);
    // flush answers the configuration error as soon as the sender meets it, not after 60 s.
    auto start = std::chrono::steady_clock::now();
    Status flushed = c.flush(60s);
    CHECK(flushed.code() == Status::Code::kNetwork);
    CHECK_MESSAGE(flushed.message().find("TLS handshake") != std::string::npos, flushed.message());
    CHECK(std::chrono::steady_clock::now() - start < 30s);
    CHECK(c.stats().pending == 20);
    CHECK(c.stats().retries >= 1);
  }
  Client c = open_client(trusted);
  require_flushed(c);
  CHECK(server_keys(s, certs.sub("ca.pem")) == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("TLS: https:// to a plain-http server says so at once, from register_agent and from flush") {
  testing::TestServer s;
  testing::TempDir root;
  std::string url = "https://127.0.0.1:" + std::to_string(s.process.port());
  Client c = open_client(online(root.path(), url));
  Agent a;
  a.name = "wrong-scheme";
  auto start = std::chrono::steady_clock::now();
  auto id = c.register_agent(a);
  REQUIRE_FALSE(id.ok());
  CHECK(id.status().code() == Status::Code::kNetwork);
  CHECK_MESSAGE(id.status().message().find("plain http (then use http://)") != std::string::npos,
                id.status().message());
  track_n(c, "agent-1", 5);
  Status flushed = c.flush(60s);
  CHECK(flushed.code() == Status::Code::kNetwork);
  CHECK(std::chrono::steady_clock::now() - start < 30s);
  CHECK(c.stats().pending == 5);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("delivery.agents");

TEST_CASE("register_agent online: the server's id, asked once across restarts") {
  testing::TestServer s;
  testing::TempDir root;
  std::string first;
  {
    Client c = open_client(online(root.path(), s.process.url()));
    first = register_agent(c, "once");
    CHECK(register_agent(c, "once") == first);
  }
  Client c = open_client(online(root.path(), s.process.url()));
  CHECK(register_agent(c, "once") == first);
  auto agents = s.get("/api/agents").json();
  int named = 0;
  for (const auto& a : agents) named += a["name"] == "once";
  CHECK(named == 1);
}

TEST_CASE("register_agent offline: a provisional id, swapped for the server's on delivery") {
  testing::TestServer s;
  testing::TempDir root;
  std::string url = s.process.url();
  REQUIRE(s.process.stop() == 0);
  std::string provisional;
  std::vector<std::string> keys;
  {
    Client c = open_client(online(root.path(), url));
    provisional = register_agent(c, "later");
    CHECK(provisional.rfind("ab-local-", 0) == 0);
    CHECK(register_agent(c, "later") == provisional);  // the same id while offline
    keys = track_n(c, provisional, 25);
  }
  REQUIRE(s.process.start());
  Client c = open_client(online(root.path(), url));
  require_flushed(c);
  auto stored = s.get("/api/events?limit=100").json();
  REQUIRE(stored.size() == 25);
  std::string server_id = stored[0]["agentId"];
  CHECK(server_id.rfind("agt_", 0) == 0);
  for (const auto& e : stored) CHECK(e["agentId"] == server_id);
  CHECK(register_agent(c, "later") == server_id);  // online now: the server's id
  auto agents = s.get("/api/agents").json();
  int named = 0;
  for (const auto& a : agents) named += a["name"] == "later";
  CHECK(named == 1);
}

TEST_CASE("a provisional agent the server will not register yet: its events wait, retries count") {
  testing::TestServer s({"--strict-auth"});
  testing::TempDir root;
  std::string url = s.process.url();
  REQUIRE(s.process.stop() == 0);
  std::string provisional;
  {
    Client c = open_client(online(root.path(), url, "wrong-key"));
    provisional = register_agent(c, "refused-later");
    CHECK(provisional.rfind("ab-local-", 0) == 0);
    track_n(c, provisional, 5);
  }
  REQUIRE(s.process.start());
  Client c = open_client(online(root.path(), url, "wrong-key"));
  CHECK(c.flush(30s).code() == Status::Code::kAuth);  // the registration's 401, said at once
  CHECK(testing::wait_until([&] {
    auto now = c.stats();
    return now.retries > 0 && now.last_error.find("register") != std::string::npos;
  }));
  auto st = c.stats();
  CHECK(st.pending == 5);
  CHECK(st.dead_letters == 0);  // a refused key is no reason to give events up
  CHECK(st.last_error.find("401") != std::string::npos);
}

TEST_CASE("a refused agent is an error, not a provisional id") {
  testing::TestServer s({"--strict-auth"});
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url(), "wrong"));
  Agent a;
  a.name = "strict";
  auto id = c.register_agent(a);
  CHECK(id.status().code() == Status::Code::kAuth);
  Agent bad;
  CHECK(c.register_agent(bad).status().code() == Status::Code::kInvalid);
  CHECK(c.register_agent_json(R"({"name":"x","project":"y"})").status().message().find(
            "did you mean \"projectId\"") != std::string::npos);
}

TEST_CASE("a refused agent's events are set aside once while another agent of the batch cannot be registered yet") {
  // Registration refuses "bad" (422) and answers 503 for "flaky" until told otherwise.
  std::mutex mu;
  bool flaky_ok = false;
  std::vector<json> received;
  testing::ScriptServer srv;
  srv.on_post("/api/agents", [&](const httplib::Request& req, httplib::Response& res) {
    std::string name = json::parse(req.body).value("name", "");
    std::lock_guard<std::mutex> g(mu);
    if (name == "bad") {
      res.status = 422;
      res.set_content(R"({"error":"agent refused","field":"name"})", "application/json");
    } else if (name == "flaky" && !flaky_ok) {
      res.status = 503;
      res.set_content(R"({"error":"try later"})", "application/json");
    } else {
      res.status = 201;
      res.set_content(json{{"id", "agt_" + name}}.dump(), "application/json");
    }
  });
  srv.on_post("/api/ingest", [&](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body);
    std::lock_guard<std::mutex> g(mu);
    for (auto& e : body) received.push_back(e);
    res.set_content(json{{"ingested", body.size()}}.dump(), "application/json");
  });
  REQUIRE(srv.start());
  testing::TempDir root;
  std::string kb, kf;
  {
    Options o;
    o.buffer_root = root.path();  // offline: provisional ids
    Client c = open_client(o);
    std::string bad = register_agent(c, "bad"), flaky = register_agent(c, "flaky");
    REQUIRE(c.track(event(bad, 1), &kb).ok());
    REQUIRE(c.track(event(flaky, 2), &kf).ok());
  }
  {
    Client c = open_client(online(root.path(), srv.url()));
    REQUIRE(testing::wait_until([&] { return c.stats().retries >= 4; }));
    // Set aside once, however many times the batch is retried.
    auto st = c.stats();
    CHECK(st.pending == 1);
    CHECK(st.dead_letters == 1);
    auto dead = c.dead_letters(10);
    REQUIRE(dead.size() == 1);
    CHECK(json::parse(dead[0].event_json)["idempotency_key"] == kb);
    CHECK(dead[0].reason.find("422") != std::string::npos);
    // Dropping the dead letter leaves the other agent's event on disk.
    REQUIRE(c.purge_dead_letters().ok());
    CHECK(c.stats().pending == 1);
    CHECK(c.close(0ms).code() == Status::Code::kTimeout);
  }
  CHECK(testing::count_folders(root.path()) == 1);
  {
    std::lock_guard<std::mutex> g(mu);
    flaky_ok = true;
  }
  Client c = open_client(online(root.path(), srv.url()));
  require_flushed(c);
  std::lock_guard<std::mutex> g(mu);
  REQUIRE(received.size() == 1);
  CHECK(received[0]["idempotency_key"] == kf);
  CHECK(received[0]["agentId"] == "agt_flaky");
}

TEST_CASE("agent ids are per server: a root used with server A and then server B sends B its own ids") {
  testing::TestServer a, b;
  testing::TempDir root;
  std::string offline_id, id_a;
  std::vector<std::string> keys_a, keys_b, offline_a, offline_b;
  {
    Options o;
    o.buffer_root = root.path();
    Client c = open_client(o);
    offline_id = register_agent(c, "roaming");
    CHECK(offline_id.rfind("ab-local-", 0) == 0);
    offline_a = track_n(c, offline_id, 3);
  }
  {
    Client c = open_client(online(root.path(), a.process.url()));
    id_a = register_agent(c, "roaming");
    keys_a = track_n(c, id_a, 5, 10);
    require_flushed(c);  // the offline events go to A, the first endpoint that delivers them
  }
  {
    Options o;
    o.buffer_root = root.path();
    Client c = open_client(o);
    CHECK(register_agent(c, "roaming") == offline_id);  // offline: the root's provisional id
    offline_b = track_n(c, offline_id, 4, 20);
  }
  Client c = open_client(online(root.path(), b.process.url()));
  std::string id_b = register_agent(c, "roaming");
  CHECK(id_b != id_a);
  keys_b = track_n(c, id_b, 5, 30);
  require_flushed(c);
  CHECK(c.stats().dead_letters == 0);
  std::vector<std::string> want_a = keys_a, want_b = keys_b;
  want_a.insert(want_a.end(), offline_a.begin(), offline_a.end());
  want_b.insert(want_b.end(), offline_b.begin(), offline_b.end());
  CHECK(server_keys(a) == std::multiset<std::string>(want_a.begin(), want_a.end()));
  CHECK(server_keys(b) == std::multiset<std::string>(want_b.begin(), want_b.end()));
  for (const auto& e : b.get("/api/events?limit=100").json()) CHECK(e["agentId"] == id_b);
  for (const auto& e : a.get("/api/events?limit=100").json()) CHECK(e["agentId"] == id_a);
}

TEST_CASE("a registry with two provisional ids for one agent: events of either go out under the server's id") {
  testing::TestServer s;
  testing::TempDir root;
  // As an older version could leave it: one agent under two entries, each with its own id;
  // and a version 1 entry whose server id belongs to whatever endpoint asks first.
  {
    std::ofstream f(root.sub("agents.json"));
    f << json{{"version", 1},
              {"agents",
               {{{"name", "twice"}, {"projectId", "delivery-tests"}, {"id", "ab-local-first"}, {"provisional", true},
                 {"agent", {{"name", "twice"}, {"projectId", "delivery-tests"}}}},
                {{"name", "twice"}, {"projectId", "delivery-tests"}, {"id", "ab-local-second"}, {"provisional", true},
                 {"agent", {{"name", "twice"}, {"projectId", "delivery-tests"}}}}}}}
             .dump();
  }
  std::vector<std::string> keys;
  {
    Options o;
    o.buffer_root = root.path();
    Client c = open_client(o);
    CHECK(register_agent(c, "twice") == "ab-local-first");
    for (const char* id : {"ab-local-first", "ab-local-second"}) {
      auto k = track_n(c, id, 3, static_cast<int>(keys.size()));
      keys.insert(keys.end(), k.begin(), k.end());
    }
  }
  Client c = open_client(online(root.path(), s.process.url()));
  require_flushed(c);
  CHECK(c.stats().dead_letters == 0);
  CHECK(server_keys(s) == std::multiset<std::string>(keys.begin(), keys.end()));
  std::set<std::string> ids;
  for (const auto& e : s.get("/api/events?limit=100").json()) ids.insert(e["agentId"].get<std::string>());
  CHECK(ids.size() == 1);
  CHECK(register_agent(c, "twice") == *ids.begin());
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("delivery.budgets");

namespace {

// The server's budget named `name` as the client sees it, if it has it.
std::optional<BudgetState> server_budget(Client& c, const std::string& name) {
  for (const auto& b : c.budgets()) {
    if (b.name == "server:" + name) return b;
  }
  return std::nullopt;
}

bool server_spent_is(Client& c, const std::string& name, double usd) {
  auto b = server_budget(c, name);
  return b && std::abs(b->spent_usd - usd) < 1e-9;
}

}  // namespace

TEST_CASE("a budget of the server's blocks reserve once its spend plus what the server has not seen reaches it") {
  testing::TestServer s;
  testing::TempDir root;
  std::string url = s.process.url();
  Options o = online(root.path(), url);
  o.sync_server_budgets = true;
  o.enforce_server_budgets = true;
  o.budget_sync_interval_ms = 100;
  Client c = open_client(o);
  std::string agent = register_agent(c, "budgeted");
  std::string other = register_agent(c, "not-budgeted");
  auto created = s.post("/api/alerts", json{{"name", "cap"}, {"agentId", agent}, {"budgetUsd", 1.0},
                                            {"periodType", "daily"}}.dump());
  REQUIRE(created.status == 201);

  auto spend = [&](const std::string& who, double usd) {
    Event e = event(who, 1);
    e.cost_usd = usd;
    REQUIRE(c.track(e).ok());
  };
  spend(agent, 0.25);
  spend(agent, 0.25);
  spend(other, 5.0);  // another agent's spend is not this budget's
  require_flushed(c);
  // Read from the server: $0.50, whatever the client counted on its own.
  REQUIRE(testing::wait_until([&] { return server_spent_is(c, "cap", 0.50); }));

  // The server goes down: spend it has not seen counts, and blocks.
  REQUIRE(s.process.stop() == 0);
  spend(agent, 0.25);
  CHECK(server_spent_is(c, "cap", 0.75));
  ReserveRequest req;
  req.agent_id = agent;
  req.estimate_usd = 0.30;
  BudgetState refused;
  auto r = c.reserve(req, &refused);
  CHECK(r.status().code() == Status::Code::kBudgetExceeded);
  CHECK(refused.name == "server:cap");
  CHECK(refused.spent_usd == doctest::Approx(0.75));
  // Syncs that fail (the server is down) keep the spend as it was.
  CHECK(testing::wait_until([&] { return c.stats().retries > 0; }));
  CHECK(server_spent_is(c, "cap", 0.75));
  req.estimate_usd = 0.25;
  auto fits = c.reserve(req);
  REQUIRE(fits.ok());
  REQUIRE(c.release(fits.value()).ok());

  // Back up: the events are delivered and the server counts them; the client counts each
  // event once, from the server's total.
  REQUIRE(s.process.start());
  require_flushed(c);
  REQUIRE(testing::wait_until([&] {
    auto res = s.get("/api/alerts");
    return res.status == 200 && res.json().size() == 1 &&
           std::abs(res.json()[0]["currentSpend"].get<double>() - 0.75) < 1e-9;
  }));
  // Two syncs after delivery, the spend is still $0.75: not counted again.
  CHECK(testing::wait_until([&] { return server_spent_is(c, "cap", 0.75); }));
  // Spend the server counts from elsewhere (another machine) arrives with the next sync.
  auto ingest = s.post("/api/ingest", json{{"agentId", agent}, {"provider", "openai"},
                                           {"operation", "llm_call"}, {"costUsd", 0.2}}.dump());
  REQUIRE(ingest.status < 300);
  REQUIRE(testing::wait_until([&] { return server_spent_is(c, "cap", 0.95); }));
  req.estimate_usd = 0.10;
  CHECK(c.reserve(req).status().code() == Status::Code::kBudgetExceeded);
  // A budget deleted on the server goes from the client.
  auto id = created.json()["id"].get<std::string>();
  REQUIRE(s.del("/api/alerts?id=" + id).status == 200);
  REQUIRE(testing::wait_until([&] { return !server_budget(c, "cap"); }));
  CHECK(c.reserve(req).ok());
}

TEST_SUITE_END();
