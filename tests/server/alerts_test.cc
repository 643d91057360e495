// Budget alerts: POST /api/alerts (validated field by field), GET with each alert's spend in
// its period, DELETE /api/alerts?id=.
#include <doctest/doctest.h>

#include <string>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

TEST_SUITE_BEGIN("server.alerts");

TEST_CASE("POST /api/alerts: the alert as stored, and a clear error for each bad field") {
  TestServer s;
  std::string a = s.register_agent("a");
  auto res = s.post(
      "/api/alerts",
      json({{"name", "team cap"}, {"agentId", a}, {"budgetUsd", 12.5}, {"periodType", "weekly"}})
          .dump());
  REQUIRE(res.status == 201);
  json made = res.json();
  CHECK(made["id"].get<std::string>().rfind("alt_", 0) == 0);
  CHECK(made["name"] == "team cap");
  CHECK(made["agentId"] == a);
  CHECK(made["budgetUsd"] == 12.5);
  CHECK(made["periodType"] == "weekly");
  CHECK(made["isActive"] == true);
  CHECK(made["createdAt"].is_string());
  json global = s.post("/api/alerts",
                       json({{"name", "all"}, {"budgetUsd", 1}, {"periodType", "daily"}}).dump())
                    .json();
  CHECK(global["agentId"].is_null());

  struct Bad {
    json body;
    const char* field;
    const char* message;
  };
  const Bad bad[] = {
      {{{"budgetUsd", 1}, {"periodType", "daily"}},
       "name",
       "name is required (a non-empty string)"},
      {{{"name", ""}, {"budgetUsd", 1}, {"periodType", "daily"}},
       "name",
       "name is required (a non-empty string)"},
      {{{"name", std::string(257, 'n')}, {"budgetUsd", 1}, {"periodType", "daily"}},
       "name",
       "name is longer than 256 bytes"},
      {{{"name", "x"}, {"periodType", "daily"}},
       "budgetUsd",
       "budgetUsd must be a positive number"},
      {{{"name", "x"}, {"budgetUsd", 0}, {"periodType", "daily"}},
       "budgetUsd",
       "budgetUsd must be a positive number"},
      {{{"name", "x"}, {"budgetUsd", "5"}, {"periodType", "daily"}},
       "budgetUsd",
       "budgetUsd must be a positive number"},
      {{{"name", "x"}, {"budgetUsd", 5}, {"periodType", "yearly"}},
       "periodType",
       "periodType must be one of daily, weekly, monthly"},
      {{{"name", "x"}, {"budgetUsd", 5}},
       "periodType",
       "periodType must be one of daily, weekly, monthly"},
      {{{"name", "x"}, {"budgetUsd", 5}, {"periodType", "daily"}, {"agentId", 7}},
       "agentId",
       "agentId must be a string (or null for every agent)"},
      {{{"name", "x"}, {"budgetUsd", 5}, {"periodType", "daily"}, {"agentId", "agt_nobody"}},
       "agentId",
       "agentId: no agent \"agt_nobody\" is registered"},
  };
  for (const auto& b : bad) {
    INFO(b.body.dump());
    auto r = s.post("/api/alerts", b.body.dump());
    CHECK(r.status == 400);
    CHECK(r.json()["field"] == b.field);
    CHECK(r.json()["error"] == b.message);
  }
  auto not_object = s.post("/api/alerts", "[1]");
  CHECK(not_object.status == 400);
  CHECK(not_object.json()["error"] == "the body must be a JSON object");
  CHECK(s.post("/api/alerts", "{}", false).status == 401);
  CHECK(s.get("/api/alerts").json().size() == 2);
}

TEST_CASE("GET /api/alerts: the spend of each period, by agent or for all") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b");
  std::int64_t now = testing::now_unix_ms();
  auto iso = testing::iso_ms;
  const std::int64_t day = 86400000;
  s.ingest_ok(json::array({make_event(a, 1, "1"), make_event(b, 2, "2"),
                           make_event(a, 4, "3", {{"timestamp", iso(now - 3 * day)}}),
                           make_event(a, 8, "4", {{"timestamp", iso(now - 20 * day)}}),
                           make_event(a, 16, "5", {{"timestamp", iso(now - 40 * day)}})}));
  auto define = [&](const char* name, json agent, double budget, const char* period) {
    json body = {{"name", name}, {"budgetUsd", budget}, {"periodType", period}};
    if (!agent.is_null()) body["agentId"] = agent;
    REQUIRE(s.post("/api/alerts", body.dump()).status == 201);
  };
  define("a daily", a, 2, "daily");
  define("all daily", nullptr, 3, "daily");
  define("a weekly", a, 5, "weekly");
  define("a monthly", a, 10, "monthly");
  json alerts = s.get("/api/alerts").json();
  REQUIRE(alerts.size() == 4);
  CHECK(alerts[0]["name"] == "a daily");
  CHECK(alerts[0]["currentSpend"] == 1);
  CHECK(alerts[0]["percentUsed"] == 50);
  CHECK(alerts[0]["isOver"] == false);
  CHECK(alerts[1]["currentSpend"] == 3);  // both agents, today
  CHECK(alerts[1]["percentUsed"] == 100);
  CHECK(alerts[1]["isOver"] == true);  // the spend reached the budget
  CHECK(alerts[2]["currentSpend"] == 5);
  CHECK(alerts[3]["currentSpend"] == 13);
  CHECK(alerts[3]["percentUsed"] == 130);
  CHECK(alerts[3]["isOver"] == true);
  CHECK(s.get("/api/alerts", false).status == 401);
}

TEST_CASE("DELETE /api/alerts?id= removes one alert") {
  TestServer s;
  json made = s.post("/api/alerts",
                     json({{"name", "x"}, {"budgetUsd", 1}, {"periodType", "monthly"}}).dump())
                  .json();
  std::string id = made["id"];
  auto missing = s.del("/api/alerts");
  CHECK(missing.status == 400);
  CHECK(missing.json()["error"] == "id is required: DELETE /api/alerts?id=ALERT_ID");
  auto unknown = s.del("/api/alerts?id=alt_none");
  CHECK(unknown.status == 404);
  CHECK(unknown.json()["error"] == "no alert \"alt_none\"");
  auto gone = s.del("/api/alerts?id=" + id);
  CHECK(gone.status == 200);
  CHECK(gone.json() == json({{"success", true}, {"id", id}}));
  CHECK(s.get("/api/alerts").json().empty());
  CHECK(s.del("/api/alerts?id=" + id).status == 404);
  // The alert is gone for good: a restart does not bring it back.
  REQUIRE(s.process.stop() == 0);
  REQUIRE(s.process.start());
  CHECK(s.get("/api/alerts").json().empty());
}

TEST_SUITE_END();
