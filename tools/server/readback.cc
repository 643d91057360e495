#include "readback.hpp"

#include <climits>
#include <map>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"

namespace agentburn::server {

using json = nlohmann::ordered_json;

namespace {

std::string dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string text_field(const json& record, const char* name, const char* fallback = "") {
  auto it = record.find(name);
  return it != record.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::int64_t count_field(const json& record, const char* name) {
  auto it = record.find(name);
  return it != record.end() && it->is_number() ? it->get<std::int64_t>() : 0;
}

double cost_field(const json& record) {
  auto it = record.find("costUsd");
  return it != record.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool matches(const json& record, const char* name, const std::optional<std::string>& wanted) {
  return !wanted || text_field(record, name) == *wanted;
}

json to_object(const std::map<std::string, double>& totals) {
  json out = json::object();
  for (const auto& [name, cost] : totals) out[name] = cost;
  return out;
}

}  // namespace

Status list_events(Store& store, const EventQuery& query, std::string* out_json) {
  bool filtered = query.agent_id || query.task_id || query.workflow_id || query.idempotency_key;
  std::string out = "[";
  std::size_t n = 0;
  Status s = store.scan_newest_first([&](std::string_view record) {
    if (filtered) {
      json r = json::parse(record, nullptr, false);
      if (!matches(r, "agentId", query.agent_id) || !matches(r, "taskId", query.task_id) ||
          !matches(r, "workflowId", query.workflow_id) ||
          !matches(r, "idempotency_key", query.idempotency_key)) {
        return true;
      }
    }
    if (n++) out.push_back(',');
    out.append(record);
    return n < query.limit;
  });
  if (!s.ok()) return s;
  out.push_back(']');
  *out_json = std::move(out);
  return Status();
}

Status compute_costs(Store& store, const CostQuery& query, std::string* out_json) {
  double total = 0;
  std::int64_t events = 0, input_tokens = 0, output_tokens = 0, unpriced = 0;
  std::map<std::string, double> by_provider, by_model, by_operation, by_agent, by_task, by_day;
  Status s = store.scan_newest_first([&](std::string_view text) {
    json r = json::parse(text, nullptr, false);
    if (!matches(r, "agentId", query.agent_id)) return true;
    std::string timestamp = text_field(r, "timestamp");
    if (query.since_unix_ms) {
      std::int64_t ms = 0;
      if (!detail::parse_timestamp(timestamp, &ms) || ms < *query.since_unix_ms) return true;
    }
    double cost = cost_field(r);
    total += cost;
    ++events;
    // Recorded by a client that found no price for it (costSource "unpriced", also when a
    // seed-fields-only client put it in metadata).
    auto md = r.find("metadata");
    if (text_field(r, "costSource") == "unpriced" ||
        (md != r.end() && md->is_object() && text_field(*md, "costSource") == "unpriced")) {
      ++unpriced;
    }
    input_tokens += count_field(r, "inputTokens");
    output_tokens += count_field(r, "outputTokens");
    by_provider[text_field(r, "provider")] += cost;
    by_model[text_field(r, "model", "unknown")] += cost;
    by_operation[text_field(r, "operation")] += cost;
    by_agent[text_field(r, "agentId")] += cost;
    by_task[text_field(r, "taskId", "unknown")] += cost;
    by_day[timestamp.substr(0, 10)] += cost;
    return true;
  });
  if (!s.ok()) return s;
  *out_json = dump(json{{"totalCost", total},
                        {"eventCount", events},
                        {"unpricedCount", unpriced},
                        {"totalInputTokens", input_tokens},
                        {"totalOutputTokens", output_tokens},
                        {"byProvider", to_object(by_provider)},
                        {"byModel", to_object(by_model)},
                        {"byOperation", to_object(by_operation)},
                        {"byAgent", to_object(by_agent)},
                        {"byTask", to_object(by_task)},
                        {"byDay", to_object(by_day)}});
  return Status();
}

Status list_agents_with_totals(Store& store, std::string* out_json) {
  struct Totals {
    double cost = 0;
    std::int64_t events = 0, input_tokens = 0, output_tokens = 0;
    std::int64_t last_activity_ms = INT64_MIN;
    std::string last_activity;
    std::map<std::string, double> by_provider;
  };
  std::map<std::string, Totals> totals;
  Status s = store.scan_newest_first([&](std::string_view text) {
    json r = json::parse(text, nullptr, false);
    Totals& t = totals[text_field(r, "agentId")];
    double cost = cost_field(r);
    t.cost += cost;
    ++t.events;
    t.input_tokens += count_field(r, "inputTokens");
    t.output_tokens += count_field(r, "outputTokens");
    t.by_provider[text_field(r, "provider")] += cost;
    std::string timestamp = text_field(r, "timestamp");
    std::int64_t ms = 0;
    if (detail::parse_timestamp(timestamp, &ms) && ms > t.last_activity_ms) {
      t.last_activity_ms = ms;
      t.last_activity = std::move(timestamp);
    }
    return true;
  });
  if (!s.ok()) return s;
  std::vector<std::string> records;
  s = store.list_agents(&records);
  if (!s.ok()) return s;
  json out = json::array();
  for (const auto& text : records) {
    json agent = json::parse(text, nullptr, false);
    if (!agent.is_object()) continue;
    const Totals& t = totals[text_field(agent, "id")];
    agent["totalCost"] = t.cost;
    agent["eventCount"] = t.events;
    agent["totalInputTokens"] = t.input_tokens;
    agent["totalOutputTokens"] = t.output_tokens;
    agent["totalTokens"] = t.input_tokens + t.output_tokens;
    agent["lastActivity"] = t.last_activity.empty() ? json(nullptr) : json(t.last_activity);
    agent["costByProvider"] = to_object(t.by_provider);
    out.push_back(std::move(agent));
  }
  *out_json = dump(out);
  return Status();
}

}  // namespace agentburn::server
