// Budget alerts, as AgentBurn keeps them: POST /api/alerts defines one ({name, agentId?,
// budgetUsd, periodType}), GET answers each with what was spent in its current period, and
// DELETE /api/alerts?id= removes one. Periods: "daily" is the current UTC day, "weekly" and
// "monthly" the last 7 and 30 days, rolling (counted by the hour, from the aggregates).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agentburn/status.hpp"
#include "store.hpp"

namespace agentburn::server {

// The first hour counted by a period ("daily", "weekly" or "monthly") at `now_ms`.
std::int64_t period_start_hour(const std::string& period_type, std::int64_t now_ms);

struct AlertError {
  std::string field;  // the body's field that is wrong, or empty
  std::string message;
};

// Reads and checks a POST /api/alerts body into the alert's stored record ({"id", "name",
// "agentId", "budgetUsd", "periodType", "isActive", "createdAt"}). False with `err` naming
// what is wrong.
bool parse_alert(std::string_view body, const std::function<bool(const std::string&)>& agent_exists,
                 nlohmann::ordered_json* record, AlertError* err);

// Every alert, oldest first, each with "currentSpend" (USD), "percentUsed" (of budgetUsd,
// two decimals) and "isOver" (spend at or past the budget), at `now_ms`.
Status alerts_with_spend(Store& store, std::int64_t now_ms, nlohmann::ordered_json* out);

}  // namespace agentburn::server
