// AgentBurn's read API: GET /api/agents, /api/costs, /api/dashboard, /api/events with a
// cursor, checked field by field against the events that were sent.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "harness.hpp"

using nlohmann::json;
using testing::iso_ms;
using testing::make_event;
using testing::TestServer;

namespace {

constexpr std::int64_t kHour = 3600000, kDay = 24 * kHour;

std::int64_t hour_of(std::int64_t ms) {
  return ms / kHour;
}

double usd(const json& v) {
  return v.get<double>();
}

}  // namespace

TEST_SUITE_BEGIN("server.readapi");

TEST_CASE("GET /api/agents: AgentBurn's summary of each agent, newest first") {
  TestServer s;
  nlohmann::json described = {
      {"name", "first"}, {"description", "does things"}, {"projectId", "p1"}};
  json made = s.post("/api/agents", described.dump()).json();
  std::string first = made["id"], second = s.register_agent("second", "p2");
  std::int64_t now = testing::now_unix_ms();
  s.ingest_ok(json::array(
      {make_event(
           first, 0.25, "1",
           {{"inputTokens", 100}, {"outputTokens", 20}, {"timestamp", iso_ms(now - 2 * kHour)}}),
       make_event(first, 0.5, "2",
                  {{"provider", "openai"}, {"inputTokens", 5}, {"timestamp", iso_ms(now - kHour)}}),
       make_event(second, 1, "3", {{"outputTokens", 9}, {"timestamp", iso_ms(now - 40 * kDay)}})}));
  json agents = s.get("/api/agents").json();
  REQUIRE(agents.size() == 2);
  const json& b = agents[0];
  const json& a = agents[1];
  CHECK(b["id"] == second);
  CHECK(b["name"] == "second");
  CHECK(b["description"].is_null());
  CHECK(b["projectId"] == "p2");
  CHECK(usd(b["totalCost"]) == doctest::Approx(1));
  CHECK(b["eventCount"] == 1);
  CHECK(b["totalInputTokens"] == 0);
  CHECK(b["totalOutputTokens"] == 9);
  CHECK(b["lastActivity"] == iso_ms(now - 40 * kDay));
  CHECK(b["costByProvider"] == json({{"anthropic", 1.0}}));
  CHECK(a["id"] == first);
  CHECK(a["name"] == "first");
  CHECK(a["description"] == "does things");
  CHECK(a["projectId"] == "p1");
  CHECK(usd(a["totalCost"]) == doctest::Approx(0.75));
  CHECK(a["eventCount"] == 2);
  CHECK(a["totalInputTokens"] == 105);
  CHECK(a["totalOutputTokens"] == 20);
  CHECK(a["totalTokens"] == 125);
  CHECK(a["lastActivity"] == iso_ms(now - kHour));
  CHECK(usd(a["costByProvider"]["anthropic"]) == doctest::Approx(0.25));
  CHECK(usd(a["costByProvider"]["openai"]) == doctest::Approx(0.5));
  CHECK(a["tags"] == json::array());
  CHECK(b["tags"] == json({"test"}));
  CHECK(a["createdAt"].is_string());
}

TEST_CASE("GET /api/costs: filters, groupBy, byAgent by name, timeSeries") {
  TestServer s;
  std::string a = s.register_agent("alpha"), b = s.register_agent("beta");
  std::int64_t now = testing::now_unix_ms();
  struct Sent {
    std::string agent, provider, operation, model;
    double cost;
    std::int64_t at;
  };
  std::vector<Sent> sent = {{a, "anthropic", "llm_call", "m1", 0.10005, now - 1 * kHour},
                            {a, "openai", "llm_call", "m2", 0.2, now - 3 * kHour},
                            {b, "anthropic", "tool_call", "", 0.4, now - 2 * kDay},
                            {b, "e2b", "compute", "", 0.8, now - 10 * kDay},
                            {a, "anthropic", "llm_call", "m1", 1.6, now - 31 * kDay}};
  json batch = json::array();
  for (std::size_t i = 0; i < sent.size(); ++i) {
    json extra = {{"provider", sent[i].provider},
                  {"operation", sent[i].operation},
                  {"timestamp", iso_ms(sent[i].at)},
                  {"inputTokens", 10 * (i + 1)},
                  {"outputTokens", i + 1}};
    if (!sent[i].model.empty()) extra["model"] = sent[i].model;
    batch.push_back(make_event(sent[i].agent, sent[i].cost, "k" + std::to_string(i), extra));
  }
  s.ingest_ok(batch);

  json all = s.get("/api/costs").json();  // 30 days by default
  CHECK(usd(all["totalCost"]) == doctest::Approx(1.50005));
  CHECK(all["eventCount"] == 4);
  CHECK(all["unpricedCount"] == 0);
  CHECK(all["totalInputTokens"] == 100);
  CHECK(all["totalOutputTokens"] == 10);
  CHECK(usd(all["byProvider"]["anthropic"]) == doctest::Approx(0.50005));
  CHECK(usd(all["byProvider"]["openai"]) == doctest::Approx(0.2));
  CHECK(usd(all["byProvider"]["e2b"]) == doctest::Approx(0.8));
  CHECK(all["byProvider"].size() == 3);
  CHECK(usd(all["byOperation"]["llm_call"]) == doctest::Approx(0.30005));
  CHECK(usd(all["byOperation"]["tool_call"]) == doctest::Approx(0.4));
  CHECK(usd(all["byOperation"]["compute"]) == doctest::Approx(0.8));
  CHECK(usd(all["byModel"]["m1"]) == doctest::Approx(0.10005));
  CHECK(usd(all["byModel"]["unknown"]) == doctest::Approx(1.2));
  CHECK(all["byAgent"].size() == 2);
  CHECK(usd(all["byAgent"]["alpha"]) == doctest::Approx(0.30005));
  CHECK(usd(all["byAgent"]["beta"]) == doctest::Approx(1.2));
  CHECK(usd(all["byAgentId"][a]) == doctest::Approx(0.30005));
  CHECK(usd(all["byAgentId"][b]) == doctest::Approx(1.2));
  CHECK(usd(all["byTask"]["unknown"]) == doctest::Approx(1.50005));
  // timeSeries: one point per UTC day with events, oldest first, costs to 4 decimals.
  std::map<std::string, std::pair<double, int>> days;
  for (std::size_t i = 0; i < 4; ++i) {
    auto& d = days[iso_ms(sent[i].at).substr(0, 10)];
    d.first += sent[i].cost;
    d.second += 1;
  }
  json series = all["timeSeries"];
  REQUIRE(series.size() == days.size());
  std::size_t j = 0;
  for (const auto& [date, d] : days) {
    INFO(date);
    CHECK(series[j]["date"] == date);
    CHECK(usd(series[j]["cost"]) == doctest::Approx(std::round(d.first * 1e4) / 1e4));
    CHECK(series[j]["events"] == d.second);
    ++j;
  }
  CHECK(all["byDay"].size() == days.size());

  json anthropic = s.get("/api/costs?provider=anthropic").json();
  CHECK(anthropic["eventCount"] == 2);
  CHECK(anthropic["byProvider"].size() == 1);
  json tool = s.get("/api/costs?operation=tool_call&agentId=" + b).json();
  CHECK(tool["eventCount"] == 1);
  CHECK(usd(tool["totalCost"]) == doctest::Approx(0.4));
  CHECK(s.get("/api/costs?operation=tool_call&agentId=" + a).json()["eventCount"] == 0);
  CHECK(s.get("/api/costs?days=60").json()["eventCount"] == 5);

  json hourly = s.get("/api/costs?groupBy=hour&days=1").json();
  REQUIRE(hourly["timeSeries"].size() == 2);
  CHECK(hourly["timeSeries"][0]["date"] ==
        iso_ms((hour_of(now) - 3) * kHour).substr(0, 13) + ":00:00Z");
  CHECK(usd(hourly["timeSeries"][0]["cost"]) == doctest::Approx(0.2));
  CHECK(hourly["timeSeries"][1]["date"] ==
        iso_ms((hour_of(now) - 1) * kHour).substr(0, 13) + ":00:00Z");
  CHECK(usd(hourly["timeSeries"][1]["cost"]) == doctest::Approx(0.1001));  // 4 decimals

  auto bad = s.get("/api/costs?groupBy=week");
  CHECK(bad.status == 400);
  CHECK(bad.json()["error"] == "groupBy must be one of day, hour, not \"week\"");
  CHECK(s.get("/api/costs", false).status == 401);
}

TEST_CASE("GET /api/dashboard: windows, change, agents, series, top agents, budgets") {
  TestServer s;
  std::string a = s.register_agent("alpha"), b = s.register_agent("beta");
  std::int64_t now = testing::now_unix_ms();
  struct Sent {
    std::string agent, provider;
    double cost;
    std::int64_t at;
  };
  std::vector<Sent> sent = {
      {a, "anthropic", 1.25, now},       {b, "anthropic", 0.5, now - 2 * kHour},
      {a, "openai", 2, now - 3 * kDay},  {b, "anthropic", 4, now - 20 * kDay},
      {a, "openai", 5, now - 45 * kDay}, {b, "e2b", 16, now - 70 * kDay}};
  json batch = json::array();
  for (std::size_t i = 0; i < sent.size(); ++i) {
    batch.push_back(
        make_event(sent[i].agent, sent[i].cost, "d" + std::to_string(i),
                   {{"provider", sent[i].provider}, {"timestamp", iso_ms(sent[i].at)}}));
  }
  s.ingest_ok(batch);
  REQUIRE(s.post("/api/alerts",
                 json({{"name", "all daily"}, {"budgetUsd", 100}, {"periodType", "daily"}}).dump())
              .status == 201);
  REQUIRE(s.post("/api/alerts", json({{"name", "alpha monthly"},
                                      {"agentId", a},
                                      {"budgetUsd", 3},
                                      {"periodType", "monthly"}})
                                    .dump())
              .status == 201);

  json d = s.get("/api/dashboard").json();
  // What each window holds, by the rules the server states: the UTC day; 7 and 30 days
  // counted from the hour that held now minus 7 or 30 days.
  double today = 0;
  for (const auto& e : sent) {
    if (e.at >= now - now % kDay) today += e.cost;
  }
  CHECK(usd(d["totalCostToday"]) == doctest::Approx(today));
  CHECK(usd(d["totalCostWeek"]) == doctest::Approx(3.75));
  CHECK(usd(d["totalCostMonth"]) == doctest::Approx(7.75));
  CHECK(usd(d["costChangePercent"]) == doctest::Approx(55.0));  // 7.75 against 5
  CHECK(d["activeAgents"] == 2);
  CHECK(d["totalEvents"] == 6);
  CHECK(d["costByProvider"].size() == 2);
  CHECK(usd(d["costByProvider"]["anthropic"]) == doctest::Approx(5.75));
  CHECK(usd(d["costByProvider"]["openai"]) == doctest::Approx(2));
  double series_total = 0;
  std::set<std::string> dates;
  for (const auto& p : d["costTimeSeries"]) {
    series_total += usd(p["cost"]);
    dates.insert(p["date"].get<std::string>());
    CHECK(p["events"].get<int>() >= 1);
  }
  CHECK(series_total == doctest::Approx(7.75));
  for (int i = 0; i < 4; ++i) CHECK(dates.count(iso_ms(sent[i].at).substr(0, 10)) == 1);
  REQUIRE(d["topAgents"].size() == 2);
  CHECK(d["topAgents"][0]["id"] == b);  // 20.5 against 8.25, all time
  CHECK(d["topAgents"][0]["name"] == "beta");
  CHECK(usd(d["topAgents"][0]["totalCost"]) == doctest::Approx(20.5));
  CHECK(d["topAgents"][0]["eventCount"] == 3);
  CHECK(d["topAgents"][0]["lastActivity"] == iso_ms(now - 2 * kHour));
  CHECK(d["topAgents"][1]["name"] == "alpha");
  CHECK(d["topAgents"][1]["lastActivity"] == iso_ms(now));
  REQUIRE(d["budgetAlerts"].size() == 2);
  const json& daily = d["budgetAlerts"][0];
  CHECK(daily["name"] == "all daily");
  CHECK(usd(daily["currentSpend"]) == doctest::Approx(today));
  CHECK(daily["isOver"] == false);
  const json& monthly = d["budgetAlerts"][1];
  CHECK(usd(monthly["currentSpend"]) == doctest::Approx(3.25));
  CHECK(usd(monthly["percentUsed"]) == doctest::Approx(108.33));
  CHECK(monthly["isOver"] == true);
  CHECK(s.get("/api/alerts").json() == d["budgetAlerts"]);
}

TEST_CASE("GET /api/dashboard of an empty server, and with nothing to compare against") {
  TestServer s;
  json d = s.get("/api/dashboard").json();
  CHECK(d["totalCostToday"] == 0);
  CHECK(d["totalCostMonth"] == 0);
  CHECK(d["costChangePercent"].is_null());
  CHECK(d["activeAgents"] == 0);
  CHECK(d["totalEvents"] == 0);
  CHECK(d["costTimeSeries"].empty());
  CHECK(d["topAgents"].empty());
  CHECK(d["budgetAlerts"].empty());
  CHECK(s.get("/api/dashboard", false).status == 401);
}

TEST_CASE("GET /api/events with a cursor reads every stored event, page by page") {
  TestServer s;
  std::string a = s.register_agent("a"), b = s.register_agent("b");
  json batch = json::array();
  for (int i = 0; i < 250; ++i) {
    batch.push_back(make_event(i % 5 ? a : b, 0.01, "p" + std::to_string(i)));
    if (batch.size() == 100 || i == 249) {
      s.ingest_ok(batch);
      batch = json::array();
    }
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  std::string previous_key = "p999";
  for (;;) {
    auto res = s.get("/api/events?limit=100&cursor=" + cursor);
    REQUIRE(res.status == 200);
    json page = res.json();
    ++pages;
    for (const auto& e : page["events"]) {
      CHECK(seen.insert(e["id"].get<std::string>()).second);
      std::string key = e["idempotency_key"];
      CHECK(std::stoi(key.substr(1)) < std::stoi(previous_key.substr(1)));  // newest first
      previous_key = key;
    }
    if (page["nextCursor"].is_null()) break;
    CHECK(page["events"].size() == 100);
    cursor = page["nextCursor"];
    REQUIRE(pages < 10);
  }
  CHECK(pages == 3);
  CHECK(seen.size() == 250);

  // Filters hold across pages; a full last page says there is no more.
  json first = s.get("/api/events?limit=25&cursor=&agentId=" + b).json();
  CHECK(first["events"].size() == 25);
  REQUIRE(first["nextCursor"].is_string());
  json second = s.get("/api/events?limit=25&agentId=" + b +
                      "&cursor=" + first["nextCursor"].get<std::string>())
                    .json();
  CHECK(second["events"].size() == 25);
  CHECK(second["nextCursor"].is_null());
  for (const auto& e : second["events"]) CHECK(e["agentId"] == b);

  // Without a cursor the answer is the array it always was, with the next cursor in a header.
  auto plain = s.get("/api/events?limit=10");
  CHECK(plain.json().is_array());
  CHECK(plain.headers.count("x-next-cursor") == 1);
  auto bad = s.get("/api/events?cursor=nope");
  CHECK(bad.status == 400);
  CHECK(bad.json()["error"].get<std::string>().find("cursor \"nope\"") != std::string::npos);
}

TEST_SUITE_END();
