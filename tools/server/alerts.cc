#include "alerts.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "event/codec.hpp"
#include "readback.hpp"

namespace agentburn::server {

using json = nlohmann::ordered_json;

namespace {

constexpr std::size_t kMaxNameBytes = 256;

bool fail(AlertError* err, std::string field, std::string message) {
  err->field = std::move(field);
  err->message = std::move(message);
  return false;
}

}  // namespace

std::int64_t period_start_hour(const std::string& period_type, std::int64_t now_ms) {
  std::int64_t now_hour = hour_of(now_ms);
  if (period_type == "daily") return now_hour - ((now_hour % 24) + 24) % 24;
  return hour_of(now_ms - (period_type == "weekly" ? 7 : 30) * kDayMs);
}

bool parse_alert(std::string_view body, const std::function<bool(const std::string&)>& agent_exists,
                 json* record, AlertError* err) {
  json in = json::parse(body, nullptr, false);
  if (!in.is_object()) return fail(err, "", "the body must be a JSON object");
  auto name = in.find("name");
  if (name == in.end() || !name->is_string() || name->get<std::string>().empty()) {
    return fail(err, "name", "name is required (a non-empty string)");
  }
  if (name->get<std::string>().size() > kMaxNameBytes) {
    return fail(err, "name", "name is longer than 256 bytes");
  }
  auto budget = in.find("budgetUsd");
  if (budget == in.end() || !budget->is_number() || !std::isfinite(budget->get<double>()) ||
      budget->get<double>() <= 0) {
    return fail(err, "budgetUsd", "budgetUsd must be a positive number");
  }
  auto period = in.find("periodType");
  if (period == in.end() || !period->is_string() ||
      (*period != "daily" && *period != "weekly" && *period != "monthly")) {
    return fail(err, "periodType", "periodType must be one of daily, weekly, monthly");
  }
  json agent_id = nullptr;
  if (auto a = in.find("agentId"); a != in.end() && !a->is_null()) {
    if (!a->is_string() || a->get<std::string>().empty()) {
      return fail(err, "agentId", "agentId must be a string (or null for every agent)");
    }
    if (!agent_exists(a->get<std::string>())) {
      return fail(
          err, "agentId",
          "agentId: no agent \"" + a->get<std::string>().substr(0, 64) + "\" is registered");
    }
    agent_id = *a;
  }
  *record = {{"id", "alt_" + detail::new_uuid_v7()},
             {"name", *name},
             {"agentId", agent_id},
             {"budgetUsd", budget->get<double>()},
             {"periodType", *period},
             {"isActive", true},
             {"createdAt", detail::format_timestamp_ms(detail::now_unix_ms())}};
  return true;
}

Status alerts_with_spend(Store& store, std::int64_t now_ms, json* out) {
  std::vector<std::string> records;
  Status s = store.list_alerts(&records);
  if (!s.ok()) return s;
  struct Watch {
    json alert;
    std::int64_t from_hour;
    std::string agent_id;  // empty: every agent
    std::int64_t spent_nanos = 0;
  };
  std::vector<Watch> watches;
  std::int64_t earliest = INT64_MAX;
  for (const auto& text : records) {
    json alert = json::parse(text, nullptr, false);
    if (!alert.is_object()) continue;
    Watch w{alert, period_start_hour(alert.value("periodType", "monthly"), now_ms),
            alert["agentId"].is_string() ? alert["agentId"].get<std::string>() : ""};
    earliest = std::min(earliest, w.from_hour);
    watches.push_back(std::move(w));
  }
  if (!watches.empty()) {
    s = visit_cells(store, 'c', earliest, [&](const Cell& c) {
      for (Watch& w : watches) {
        if (c.hour >= w.from_hour && (w.agent_id.empty() || w.agent_id == c.agent_id)) {
          w.spent_nanos += c.totals.cost_nanos;
        }
      }
    });
    if (!s.ok()) return s;
  }
  *out = json::array();
  for (Watch& w : watches) {
    double spent = static_cast<double>(w.spent_nanos) / 1e9;
    double budget = w.alert.value("budgetUsd", 0.0);
    w.alert["currentSpend"] = spent;
    w.alert["percentUsed"] = budget > 0 ? round_to(100 * spent / budget, 2) : 0.0;
    w.alert["isOver"] = spent >= budget;
    out->push_back(std::move(w.alert));
  }
  return Status();
}

}  // namespace agentburn::server
