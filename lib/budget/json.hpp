// Budgets, reservation requests and budget windows in their JSON form (camelCase, as the C
// ABI and the bindings speak them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agentburn/budget.hpp"
#include "agentburn/status.hpp"

namespace agentburn::budget {

struct ServerBudget;

// [{"name", "limitUsd", "period": "daily"|"weekly"|"monthly"|"total", "action":
// "block"|"alert", "alertAt": [0.5, ...], "agentId", "taskId", "workflowId", "provider",
// "model"}, ...]; kInvalid naming the budget and the field. Checked as Options::budgets are.
Status parse_budgets_json(std::string_view json, std::vector<Budget>* out);
// {"agentId", "taskId", "workflowId", "provider", "model", "estimateUsd", "inputTokens",
// "maxOutputTokens"}; every field optional.
Status parse_reserve_json(std::string_view json, ReserveRequest* out);
// The answer of AgentBurn's GET /api/alerts (an array, or an object holding one under
// "alerts" or "data"): each active alert {"id", "name", "agentId"?, "budgetUsd",
// "periodType": "daily"|"weekly"|"monthly", "currentSpend"} as a budget of action `action`.
// Alerts that cannot be read are skipped and named in `skipped`.
Status parse_server_alerts(std::string_view json, BudgetAction action,
                           std::vector<ServerBudget>* out, std::string* skipped);
std::string state_json(const BudgetState& s);
std::string states_json(const std::vector<BudgetState>& states);
std::string alert_json(const BudgetAlert& a);
std::string reservation_json(const Reservation& r);

}  // namespace agentburn::budget
