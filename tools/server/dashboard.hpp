// GET /api/dashboard, as AgentBurn answers it, and the page served at GET / that shows it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agentburn/status.hpp"
#include "store.hpp"

namespace agentburn::server {

// {"totalCostToday" (the current UTC day), "totalCostWeek", "totalCostMonth" (the last 7 and
// 30 days), "costChangePercent" (the last 30 days against the 30 before, in percent; null
// when those spent nothing), "activeAgents" (agents with events in the last 30 days),
// "totalEvents" (all stored), "costByProvider" (30 days), "costTimeSeries" ([{date, cost,
// events}] by UTC day, 30 days), "topAgents" (the 10 that spent most, all time, with
// "lastActivity"), "budgetAlerts" (GET /api/alerts' answer)} at `now_ms`.
Status compute_dashboard(Store& store, std::int64_t now_ms, std::string* out_json);

// The page (HTML with its CSS and JavaScript), compiled in from dashboard/index.html.
std::string_view dashboard_page();

}  // namespace agentburn::server
