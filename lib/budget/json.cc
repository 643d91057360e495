#include "budget/json.hpp"

#include <nlohmann/json.hpp>

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
