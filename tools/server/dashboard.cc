#include "dashboard.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "alerts.hpp"
#include "event/codec.hpp"
#include "readback.hpp"

namespace agentburn::server {

using json = nlohmann::ordered_json;

namespace {

constexpr std::size_t kTopAgents = 10;

// What the windows of the dashboard add up, from one scan of 60 days of cells.
struct Windows {
  std::int64_t today = 0, week = 0, month = 0, previous_month = 0;  // nano-USD
  std::set<std::string> active_agents;
  std::map<std::string, std::int64_t> by_provider;
  std::map<std::int64_t, Totals> by_day;  // the day's first hour -> totals
};

Status add_windows(Store& store, std::int64_t now_ms, Windows* w) {
  std::int64_t today = period_start_hour("daily", now_ms);
  std::int64_t week = period_start_hour("weekly", now_ms);
  std::int64_t month = period_start_hour("monthly", now_ms);
  std::int64_t previous = hour_of(now_ms - 60 * kDayMs);
  return visit_cells(store, 'c', previous, [&](const Cell& c) {
    std::int64_t nanos = c.totals.cost_nanos;
    if (c.hour < month) {
      w->previous_month += nanos;
      return;
    }
    w->month += nanos;
    if (c.hour >= week) w->week += nanos;
    if (c.hour >= today) w->today += nanos;
    w->active_agents.insert(c.agent_id);
    w->by_provider[c.provider] += nanos;
    w->by_day[c.hour - (c.hour % 24 + 24) % 24].add(c.totals);
  });
}

double usd(std::int64_t nanos) {
  return static_cast<double>(nanos) / 1e9;
}

Status top_agents(Store& store, json* out, std::int64_t* total_events) {
  std::map<std::string, AgentTotals> totals;
  std::map<std::string, std::string> names;
  Status s = agent_totals(store, &totals);
  if (s.ok()) s = agent_names(store, &names);
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, Totals>> ranked;
  *total_events = 0;
  for (const auto& [id, t] : totals) {
    *total_events += t.totals.events;
    ranked.emplace_back(id, t.totals);
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second.cost_nanos != b.second.cost_nanos ? a.second.cost_nanos > b.second.cost_nanos
                                                      : a.first < b.first;
  });
  if (ranked.size() > kTopAgents) ranked.resize(kTopAgents);
  *out = json::array();
  for (const auto& [id, t] : ranked) {
    auto name = names.find(id);
    out->push_back({{"id", id},
                    {"name", name != names.end() ? name->second : id},
                    {"totalCost", t.cost()},
                    {"eventCount", t.events},
                    {"lastActivity", detail::format_timestamp_ms(t.last_ms)}});
  }
  return Status();
}

}  // namespace

Status compute_dashboard(Store& store, std::int64_t now_ms, std::string* out_json) {
  Windows w;
  json top, alerts;
  std::int64_t total_events = 0;
  Status s = add_windows(store, now_ms, &w);
  if (s.ok()) s = top_agents(store, &top, &total_events);
  if (s.ok()) s = alerts_with_spend(store, now_ms, &alerts);
  if (!s.ok()) return s;
  json by_provider = json::object();
  for (const auto& [name, nanos] : w.by_provider) by_provider[name] = usd(nanos);
  json series = json::array();
  for (const auto& [hour, t] : w.by_day) {
    series.push_back(
        {{"date", hour_label(hour, false)}, {"cost", round_to(t.cost(), 4)}, {"events", t.events}});
  }
  json change = nullptr;
  if (w.previous_month > 0) {
    change = round_to(100.0 * static_cast<double>(w.month - w.previous_month) /
                          static_cast<double>(w.previous_month),
                      2);
  }
  *out_json = json{{"totalCostToday", usd(w.today)},
                   {"totalCostWeek", usd(w.week)},
                   {"totalCostMonth", usd(w.month)},
                   {"costChangePercent", change},
                   {"activeAgents", w.active_agents.size()},
                   {"totalEvents", total_events},
                   {"costByProvider", std::move(by_provider)},
                   {"costTimeSeries", std::move(series)},
                   {"topAgents", std::move(top)},
                   {"budgetAlerts", std::move(alerts)}}
                  .dump(-1, ' ', false, json::error_handler_t::replace);
  return Status();
}

}  // namespace agentburn::server
