// The API's contract: agents, keys, batch limits, per-event errors, deduplication, gzip.
#include <doctest/doctest.h>

#include <string>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

namespace {

json agent_body(const std::string& name) {
  return {{"name", name}, {"description", "d"}, {"projectId", "p"}, {"tags", {"a", "b"}}};
}

std::size_t stored_count(TestServer& s) {
  auto res = s.get("/api/events?limit=10000");
  REQUIRE(res.status == 200);
  return res.json().size();
}

}  // namespace

TEST_SUITE_BEGIN("server.api");

TEST_CASE("POST /api/agents answers 201 with the agent and a new id, with or without a key") {
  TestServer s;
  auto res = s.post("/api/agents", agent_body("My Agent").dump(), /*with_key=*/false);
  REQUIRE(res.status == 201);
  json a = res.json();
  CHECK(a["id"].get<std::string>().rfind("agt_", 0) == 0);
  CHECK(a["name"] == "My Agent");
  CHECK(a["description"] == "d");
  CHECK(a["projectId"] == "p");
  CHECK(a["tags"] == json({"a", "b"}));
  CHECK(a["createdAt"].is_string());

  auto again = s.post("/api/agents", agent_body("My Agent").dump(), /*with_key=*/true);
  REQUIRE(again.status == 201);
  CHECK(again.json()["id"] != a["id"]);

  auto minimal = s.post("/api/agents", R"({"name": "only a name"})", false);
  REQUIRE(minimal.status == 201);
  CHECK(minimal.json()["description"].is_null());
  CHECK(minimal.json()["tags"] == json::array());

  auto listed = s.get("/api/agents");
  REQUIRE(listed.status == 200);
  CHECK(listed.json().size() == 3);
  CHECK(listed.json()[2]["id"] == a["id"]);  // newest first
  CHECK(listed.json()[0]["id"] == minimal.json()["id"]);
}

TEST_CASE("POST /api/agents rejects a wrong key, and invalid agents naming the field") {
  TestServer s;
  auto wrong = s.post("/api/agents", agent_body("x").dump(), false, {"x-api-key: nope"});
  CHECK(wrong.status == 401);
  CHECK(wrong.json()["error"].is_string());

  struct Case {
    const char* body;
    const char* field;
  } cases[] = {{R"({"description": "no name"})", "name"},
               {R"({"name": ""})", "name"},
               {R"({"name": "a", "tags": "x"})", "tags"},
               {R"({"name": "a", "projectid": "p"})", "projectid"},
               {R"({"name": 5})", "name"}};
  for (const auto& c : cases) {
    auto res = s.post("/api/agents", c.body, false);
    INFO(c.body, " -> ", res.body);
    CHECK(res.status == 400);
    CHECK(res.json()["field"] == c.field);
    CHECK(!res.json()["error"].get<std::string>().empty());
  }
  CHECK(s.post("/api/agents", "{not json", false).status == 400);
  CHECK(s.post("/api/agents", "[]", false).status == 400);
  CHECK(s.get("/api/agents").json().empty());
}

TEST_CASE("--strict-auth makes the key mandatory on POST /api/agents") {
  TestServer s({"--strict-auth"});
  CHECK(s.post("/api/agents", agent_body("x").dump(), false).status == 401);
  CHECK(s.post("/api/agents", agent_body("x").dump(), true).status == 201);
}

TEST_CASE("ingest and read-back need the key, in x-api-key or Authorization: Bearer") {
  TestServer s;
  std::string agent = s.register_agent("a");
  std::string one = make_event(agent, 1, "k1").dump();

  auto none = s.post("/api/ingest", one, false);
  CHECK(none.status == 401);
  CHECK(none.json()["error"].is_string());
  CHECK(s.post("/api/ingest", one, false, {"x-api-key: wrong"}).status == 401);
  CHECK(s.post("/api/ingest", one, false, {"Authorization: Bearer wrong"}).status == 401);
  CHECK(s.post("/api/ingest", one, false, {"Authorization: Basic " + s.key}).status == 401);
  CHECK(s.post("/api/ingest", one, false, {"x-api-key: " + s.key + "x"}).status == 401);
  CHECK(s.post("/api/ingest", one, false, {"x-api-key: " + s.key.substr(1)}).status == 401);
  CHECK(stored_count(s) == 0);

  CHECK(s.post("/api/ingest", one, false, {"Authorization: Bearer " + s.key}).status == 200);
  CHECK(s.post("/api/ingest", make_event(agent, 1, "k2").dump()).status == 200);
  CHECK(stored_count(s) == 2);

  for (const char* path : {"/api/events", "/api/costs", "/api/agents"}) {
    CHECK(s.get(path, false).status == 401);
    CHECK(s.get(path, true).status == 200);
  }
}

TEST_CASE("--no-auth serves every route without a key") {
  testing::TempDir dir;
  auto config = testing::server_config(dir, {}, "");
  config.no_auth = true;
  testing::ServerProcess p(config);
  REQUIRE(p.start());
  testing::HttpRequest req;
  req.url = p.url() + "/api/costs";
  CHECK(testing::http_send(req).status == 200);
}

TEST_CASE("a batch holds 1 to 1000 events; more, none or not JSON is 400") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json batch = json::array();
  for (int i = 0; i < 1000; ++i) batch.push_back(make_event(agent, 0.001, "b" + std::to_string(i)));
  json ok = s.ingest_ok(batch);
  CHECK(ok["ingested"] == 1000);
  CHECK(ok["duplicates"] == 0);
  CHECK(ok["ids"].size() == 1000);

  batch.push_back(make_event(agent, 0.001, "b1000"));
  auto over = s.post("/api/ingest", batch.dump());
  CHECK(over.status == 400);
  CHECK(over.json()["error"].get<std::string>().find("1000") != std::string::npos);

  CHECK(s.post("/api/ingest", "[]").status == 400);
  CHECK(s.post("/api/ingest", "").status == 400);
  CHECK(s.post("/api/ingest", "{\"agentId\": ").status == 400);
  CHECK(s.post("/api/ingest", "not json").status == 400);
  CHECK(s.post("/api/ingest", "[{}] trailing").status == 400);
  CHECK(stored_count(s) == 1000);
}

TEST_CASE("a body over 16 MiB is 413") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json e = make_event(agent, 1, "big");
  e["metadata"] = {{"pad", std::string(17u << 20, 'x')}};
  auto res = s.post("/api/ingest", e.dump());
  CHECK(res.status == 413);
  CHECK(res.json()["error"].is_string());
  CHECK(stored_count(s) == 0);
}

TEST_CASE("an invalid event fails its batch, and the answer names each bad event") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json batch = json::array();
  for (int i = 0; i < 6; ++i) batch.push_back(make_event(agent, 1, "e" + std::to_string(i)));
  batch[1]["costUsd"] = -1;
  batch[3]["operation"] = "llm_cal";
  batch[4]["agentId"] = "agt_nobody";
  batch[5]["costUSD"] = 1;
  auto res = s.post("/api/ingest", batch.dump());
  REQUIRE(res.status == 400);
  json errors = res.json()["errors"];
  REQUIRE(errors.size() == 4);
  CHECK(errors[0]["index"] == 1);
  CHECK(errors[0]["field"] == "costUsd");
  CHECK(errors[1]["index"] == 3);
  CHECK(errors[1]["field"] == "operation");
  CHECK(errors[2]["index"] == 4);
  CHECK(errors[2]["field"] == "agentId");
  CHECK(errors[3]["index"] == 5);
  CHECK(errors[3]["field"] == "costUSD");
  CHECK(errors[3]["message"].get<std::string>().find("did you mean \"costUsd\"") !=
        std::string::npos);
  CHECK(stored_count(s) == 0);

  // A client sets exactly those aside and resends the rest.
  json rest = json::array();
  for (int i : {0, 2}) rest.push_back(batch[i]);
  CHECK(s.ingest_ok(rest)["ingested"] == 2);
  CHECK(stored_count(s) == 2);
}

TEST_CASE("the same rules as the library: types, ranges, timestamps, metadata, sizes") {
  TestServer s;
  std::string agent = s.register_agent("a");
  struct Case {
    json patch;
    const char* field;
  } cases[] = {
      {{{"costUsd", "1"}}, "costUsd"},
      {{{"inputTokens", -5}}, "inputTokens"},
      {{{"outputTokens", 1.5}}, "outputTokens"},
      {{{"timestamp", "yesterday"}}, "timestamp"},
      {{{"metadata", "not an object"}}, "metadata"},
      {{{"metadata", {{"pad", std::string(17000, 'x')}}}}, "metadata"},
      {{{"provider", ""}}, "provider"},
      {{{"model", std::string(300, 'm')}}, "model"},
      {{{"idempotency_key", "has space"}}, "idempotency_key"},
  };
  for (const auto& c : cases) {
    json e = make_event(agent, 1, "k");
    for (auto it = c.patch.begin(); it != c.patch.end(); ++it) e[it.key()] = it.value();
    auto res = s.post("/api/ingest", e.dump());
    INFO(e.dump().substr(0, 200), " -> ", res.body.substr(0, 300));
    CHECK(res.status == 400);
    CHECK(res.json()["errors"][0]["field"] == c.field);
  }
  json missing = {{"agentId", agent}, {"provider", "p"}, {"operation", "compute"}};
  CHECK(s.post("/api/ingest", missing.dump()).json()["errors"][0]["field"] == "costUsd");
  CHECK(stored_count(s) == 0);
}

TEST_CASE("nesting and duplicate keys: per event when the body is otherwise fine") {
  TestServer s;
  std::string agent = s.register_agent("a");
  std::string good = make_event(agent, 1, "g").dump();
  std::string deep_meta = std::string(40, '[') + std::string(40, ']');
  std::string deep = make_event(agent, 1, "d").dump();
  deep.insert(deep.size() - 1, ",\"metadata\":{\"x\":" + deep_meta + "}");
  std::string dup = R"({"agentId":")" + agent +
                    R"(","provider":"a","provider":"b","operation":"compute","costUsd":1})";
  auto res = s.post("/api/ingest", "[" + good + "," + deep + "," + dup + "]");
  REQUIRE(res.status == 400);
  json errors = res.json()["errors"];
  REQUIRE(errors.size() == 2);
  CHECK(errors[0]["index"] == 1);
  CHECK(errors[0]["field"] == "metadata");
  CHECK(errors[0]["message"].get<std::string>().find("nested deeper") != std::string::npos);
  CHECK(errors[1]["index"] == 2);
  CHECK(errors[1]["message"].get<std::string>().find("duplicate key") != std::string::npos);

  auto very_deep = s.post("/api/ingest", std::string(100000, '[') + std::string(100000, ']'));
  CHECK(very_deep.status == 400);
  CHECK(stored_count(s) == 0);

  // Metadata 32 levels deep, which the library's track() accepts.
  std::string deepest = make_event(agent, 1, "deepest").dump();
  deepest.insert(deepest.size() - 1,
                 ",\"metadata\":{\"x\":" + std::string(31, '[') + std::string(31, ']') + "}");
  CHECK(s.post("/api/ingest", "[" + deepest + "]").status == 200);
  CHECK(s.post("/api/ingest", deepest).json()["duplicates"] == 1);
}

TEST_CASE("deduplication: a stored idempotency_key is acknowledged, not stored again") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json first = s.ingest_ok(make_event(agent, 1, "same"));
  CHECK(first["ingested"] == 1);
  CHECK(first["duplicates"] == 0);

  json again = s.ingest_ok(json::array(
      {make_event(agent, 1, "same"), make_event(agent, 2, "new"), make_event(agent, 2, "new")}));
  CHECK(again["ingested"] == 1);
  CHECK(again["duplicates"] == 2);
  CHECK(again["ids"][0] == first["ids"][0]);
  CHECK(again["ids"][1] == again["ids"][2]);

  // Without a key the server assigns one: each such event is new.
  json no_key = {{"agentId", agent}, {"provider", "p"}, {"operation", "compute"}, {"costUsd", 1}};
  CHECK(s.ingest_ok(json::array({no_key, no_key}))["ingested"] == 2);
  CHECK(stored_count(s) == 4);
  auto costs = s.get("/api/costs").json();
  CHECK(costs["totalCost"].get<double>() == doctest::Approx(5.0));
}

TEST_CASE("gzip bodies are accepted; bombs, broken gzip and unknown encodings are not") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json batch = json::array();
  for (int i = 0; i < 50; ++i) batch.push_back(make_event(agent, 0.5, "z" + std::to_string(i)));
  std::string gz = testing::gzip_compress(batch.dump());
  auto ok = s.post("/api/ingest", gz, true, {"Content-Encoding: gzip"});
  REQUIRE(ok.status == 200);
  CHECK(ok.json()["ingested"] == 50);

  std::string bomb = testing::gzip_compress(std::string(64u << 20, ' '));
  REQUIRE(bomb.size() < (1u << 20));
  CHECK(s.post("/api/ingest", bomb, true, {"Content-Encoding: gzip"}).status == 413);

  std::string broken = gz.substr(0, gz.size() / 2) + std::string(100, 'x');
  CHECK(s.post("/api/ingest", broken, true, {"Content-Encoding: gzip"}).status == 400);
  CHECK(s.post("/api/ingest", batch.dump(), true, {"Content-Encoding: zstd"}).status == 415);
  CHECK(stored_count(s) == 50);
}

TEST_CASE("errors are JSON with the right status") {
  TestServer s;
  auto missing = s.get("/api/nothing");
  CHECK(missing.status == 404);
  CHECK(missing.json()["error"].is_string());
  auto wrong_method = s.del("/api/ingest");
  CHECK(wrong_method.status == 405);
  CHECK(wrong_method.headers["allow"] == "POST");
  CHECK(wrong_method.json()["error"].is_string());
  CHECK(s.post("/api/costs", "{}").status == 405);
  auto bad_limit = s.get("/api/events?limit=0");
  CHECK(bad_limit.status == 400);
  CHECK(bad_limit.json()["error"].is_string());
}

TEST_SUITE_END();
