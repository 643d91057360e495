#include "budget/json.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>

#include "budget/engine.hpp"
#include "event/codec.hpp"

namespace agentburn::budget {

using nlohmann::json;

namespace {

Status parse_object(std::string_view text, const char* what, json* out) {
  *out = json::parse(text, nullptr, false);
  if (out->is_discarded()) return Status::invalid(std::string(what) + ": is not valid JSON");
  return Status();
}

// Reads an optional non-empty string field.
Status opt_string(const json& o, const char* key, const std::string& where,
                  std::optional<std::string>* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return Status();
  if (!it->is_string()) return Status::invalid(where + ": " + key + " must be a string");
  *out = it->get<std::string>();
  return Status();
}

Status number(const json& o, const char* key, const std::string& where, double* out,
              bool* present) {
  auto it = o.find(key);
  *present = it != o.end() && !it->is_null();
  if (!*present) return Status();
  if (!it->is_number()) return Status::invalid(where + ": " + key + " must be a number");
  *out = it->get<double>();
  return Status();
}

Status count(const json& o, const char* key, const std::string& where,
             std::optional<std::int64_t>* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return Status();
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
    return Status::invalid(where + ": " + key + " must be a whole number >= 0");
  }
  *out = it->get<std::int64_t>();
  return Status();
}

Status unknown_keys(const json& o, std::initializer_list<const char*> known,
                    const std::string& where) {
  for (auto it = o.begin(); it != o.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status::invalid(where + ": unknown field \"" + it.key() + "\" (known: " + list + ")");
    }
  }
  return Status();
}

json state_value(const BudgetState& s) {
  json j = {{"name", s.name},           {"scope", s.scope},         {"period", s.period},
            {"action", s.action},       {"limitUsd", s.limit_usd},  {"spentUsd", s.spent_usd},
            {"heldUsd", s.held_usd},    {"remainingUsd", s.remaining_usd}};
  j["resetsAt"] = s.resets_at_ms ? json(detail::format_timestamp_ms(s.resets_at_ms)) : json(nullptr);
  return j;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Status parse_budgets_json(std::string_view text, std::vector<Budget>* out) {
  json j;
  Status s = parse_object(text, "budgets", &j);
  if (!s.ok()) return s;
  if (j.is_object()) j = json::array({j});
  if (!j.is_array()) return Status::invalid("budgets: must be a JSON array of budget objects");
  std::vector<Budget> budgets;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& o = j[i];
    std::string where = "budgets[" + std::to_string(i) + "]";
    if (!o.is_object()) return Status::invalid(where + ": must be an object");
    s = unknown_keys(o, {"name", "limitUsd", "period", "action", "alertAt", "agentId", "taskId",
                         "workflowId", "provider", "model"},
                     where);
    if (!s.ok()) return s;
    Budget b;
    auto name = o.find("name");
    if (name == o.end() || !name->is_string()) {
      return Status::invalid(where + ": name is required (a string)");
    }
    b.name = name->get<std::string>();
    bool has = false;
    if (!(s = number(o, "limitUsd", where, &b.limit_usd, &has)).ok()) return s;
    if (!has) return Status::invalid(where + " (\"" + b.name + "\"): limitUsd is required");
    auto period = o.find("period");
    if (period != o.end()) {
      if (!period->is_string() || !parse_period(period->get<std::string>(), &b.period)) {
        return Status::invalid(where + " (\"" + b.name +
                               "\"): period must be \"daily\", \"weekly\", \"monthly\" or \"total\"");
      }
    }
    auto action = o.find("action");
    if (action != o.end()) {
      if (action->is_string() && *action == "block") {
        b.action = BudgetAction::kBlock;
      } else if (action->is_string() && *action == "alert") {
        b.action = BudgetAction::kAlert;
      } else {
        return Status::invalid(where + " (\"" + b.name + "\"): action must be \"block\" or \"alert\"");
      }
    }
    auto at = o.find("alertAt");
    if (at != o.end()) {
      if (!at->is_array()) return Status::invalid(where + ": alertAt must be an array of numbers");
      b.alert_at.clear();
      for (const auto& v : *at) {
        if (!v.is_number()) return Status::invalid(where + ": alertAt must be an array of numbers");
        b.alert_at.push_back(v.get<double>());
      }
    }
    const std::pair<const char*, std::optional<std::string>*> fields[] = {
        {"agentId", &b.agent_id}, {"taskId", &b.task_id}, {"workflowId", &b.workflow_id},
        {"provider", &b.provider}, {"model", &b.model}};
    for (auto [key, field] : fields) {
      if (!(s = opt_string(o, key, where, field)).ok()) return s;
    }
    budgets.push_back(std::move(b));
  }
  if (!(s = check_budgets(budgets)).ok()) return s;
  *out = std::move(budgets);
  return Status();
}

Status parse_reserve_json(std::string_view text, ReserveRequest* out) {
  json o;
  Status s = parse_object(text.empty() ? std::string_view("{}") : text, "reserve", &o);
  if (!s.ok()) return s;
  if (!o.is_object()) return Status::invalid("reserve: must be a JSON object");
  const std::string where = "reserve";
  s = unknown_keys(o, {"agentId", "taskId", "workflowId", "provider", "model", "estimateUsd",
                       "inputTokens", "maxOutputTokens"},
                   where);
  if (!s.ok()) return s;
  ReserveRequest r;
  const std::pair<const char*, std::optional<std::string>*> fields[] = {
      {"agentId", &r.agent_id}, {"taskId", &r.task_id}, {"workflowId", &r.workflow_id},
      {"provider", &r.provider}, {"model", &r.model}};
  for (auto [key, field] : fields) {
    if (!(s = opt_string(o, key, where, field)).ok()) return s;
  }
  double est = 0;
  bool has = false;
  if (!(s = number(o, "estimateUsd", where, &est, &has)).ok()) return s;
  if (has) r.estimate_usd = est;
  if (!(s = count(o, "inputTokens", where, &r.input_tokens)).ok()) return s;
  if (!(s = count(o, "maxOutputTokens", where, &r.max_output_tokens)).ok()) return s;
  *out = std::move(r);
  return Status();
}

Status parse_server_alerts(std::string_view text, BudgetAction action,
                           std::vector<ServerBudget>* out, std::string* skipped) {
  json j = json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (const char* key : {"alerts", "data"}) {
      if (j.contains(key) && j[key].is_array()) {
        j = j[key];
        break;
      }
    }
  }
  if (!j.is_array()) return Status::invalid("GET /api/alerts: the answer is not a list of alerts");
  out->clear();
  for (const auto& a : j) {
    auto str = [&](const char* key) -> std::string {
      auto it = a.find(key);
      if (it == a.end() || it->is_null()) return "";
      if (it->is_string()) return it->get<std::string>();
      if (it->is_number_integer()) return std::to_string(it->get<std::int64_t>());
      return "";
    };
    auto num = [&](const char* key, double* v) {
      auto it = a.find(key);
      if (it == a.end()) return false;
      if (it->is_number()) {
        *v = it->get<double>();
      } else if (it->is_string()) {  // decimal columns are often answered as text
        char* end = nullptr;
        std::string s = it->get<std::string>();
        *v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end) return false;
      } else {
        return false;
      }
      return std::isfinite(*v) && *v >= 0;
    };
    if (!a.is_object()) continue;
    auto active = a.find("isActive");
    if (active != a.end() && active->is_boolean() && !active->get<bool>()) continue;
    ServerBudget sb;
    sb.id = str("id");
    sb.budget.name = str("name");
    double spent = 0;
    if (sb.id.empty() || !num("budgetUsd", &sb.budget.limit_usd) || !num("currentSpend", &spent) ||
        !parse_period(str("periodType"), &sb.budget.period) ||
        sb.budget.period == BudgetPeriod::kTotal) {
      if (!skipped->empty()) *skipped += ", ";
      *skipped += sb.id.empty() ? "(an alert without an id)" : sb.id;
      continue;
    }
    if (sb.budget.name.empty()) sb.budget.name = sb.id;
    sb.budget.name = "server:" + sb.budget.name;
    std::string agent = str("agentId");
    if (!agent.empty()) sb.budget.agent_id = agent;
    sb.budget.action = action;
    sb.server_spent_nanos = ledger::to_nanos(spent);
    out->push_back(std::move(sb));
  }
  return Status();
}

std::string state_json(const BudgetState& s) { return dump(state_value(s)); }

std::string states_json(const std::vector<BudgetState>& states) {
  json a = json::array();
  for (const auto& s : states) a.push_back(state_value(s));
  return dump(a);
}

std::string alert_json(const BudgetAlert& a) {
  json j = state_value(a.state);
  j["threshold"] = a.threshold;
  return dump(j);
}

std::string reservation_json(const Reservation& r) {
  json j = {{"id", r.id}, {"estimateUsd", r.estimate_usd}, {"budgets", r.budgets}};
  j["expiresAt"] = detail::format_timestamp_ms(r.expires_at_ms);
  return dump(j);
}

}  // namespace agentburn::budget
