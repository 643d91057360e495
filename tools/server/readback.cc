#include "readback.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

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

bool matches(const json& record, const char* name, const std::optional<std::string>& wanted) {
  return !wanted || text_field(record, name) == *wanted;
}

bool matches(const std::string& value, const std::optional<std::string>& wanted) {
  return !wanted || value == *wanted;
}

json to_object(const std::map<std::string, double>& totals) {
  json out = json::object();
  for (const auto& [name, cost] : totals) out[name] = cost;
  return out;
}

json to_object(const std::map<std::string, std::int64_t>& nanos) {
  json out = json::object();
  for (const auto& [name, n] : nanos) out[name] = static_cast<double>(n) / 1e9;
  return out;
}

std::string timestamp_or_empty(const Totals& t) {
  return t.events > 0 ? detail::format_timestamp_ms(t.last_ms) : std::string();
}

}  // namespace

std::string encode_cursor(std::uint64_t seq) {
  return "c" + std::to_string(seq);
}

bool decode_cursor(const std::string& text, std::uint64_t* seq) {
  if (text.size() < 2 || text[0] != 'c') return false;
  auto r = std::from_chars(text.data() + 1, text.data() + text.size(), *seq);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() && *seq > 0;
}

Status list_events(Store& store, const EventQuery& query, std::string* out_json,
                   std::optional<std::uint64_t>* next_cursor) {
  bool filtered = query.agent_id || query.task_id || query.workflow_id || query.idempotency_key;
  std::string out = "[";
  std::size_t n = 0;
  std::uint64_t last_seq = 0;
  next_cursor->reset();
  Status s = store.scan_before(
      query.cursor.value_or(UINT64_MAX), [&](std::uint64_t seq, std::string_view record) {
        if (filtered) {
          json r = json::parse(record, nullptr, false);
          if (!matches(r, "agentId", query.agent_id) || !matches(r, "taskId", query.task_id) ||
              !matches(r, "workflowId", query.workflow_id) ||
              !matches(r, "idempotency_key", query.idempotency_key)) {
            return true;
          }
        }
        if (n == query.limit) {  // one more matches: there is a next page
          *next_cursor = last_seq;
          return false;
        }
        if (n++) out.push_back(',');
        out.append(record);
        last_seq = seq;
        return true;
      });
  if (!s.ok()) return s;
  out.push_back(']');
  *out_json = std::move(out);
  return Status();
}

std::string hour_label(std::int64_t hour, bool with_hour) {
  std::string ts = detail::format_timestamp_ms(hour * kHourMs);
  return with_hour ? ts.substr(0, 13) + ":00:00Z" : ts.substr(0, 10);
}

double round_to(double usd, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(usd * scale) / scale;
}

Status visit_cells(Store& store, char kind, std::int64_t from_hour,
                   const std::function<void(const Cell&)>& visit) {
  Cell cell;
  return store.scan_aggregates(hour_prefix(kind, from_hour),
                               [&](std::string_view key, std::string_view value) {
                                 if (decode_cell(key, value, &cell)) visit(cell);
                                 return true;
                               });
}

Status agent_totals(Store& store, std::map<std::string, AgentTotals>* out) {
  Cell cell;
  return store.scan_aggregates("a", [&](std::string_view key, std::string_view value) {
    if (!decode_cell(key, value, &cell)) return true;
    AgentTotals& t = (*out)[cell.agent_id];
    t.totals.add(cell.totals);
    t.by_provider[cell.provider] += cell.totals.cost();
    return true;
  });
}

Status agent_names(Store& store, std::map<std::string, std::string>* out) {
  std::vector<std::string> records;
  Status s = store.list_agents(&records);
  if (!s.ok()) return s;
  for (const auto& text : records) {
    json agent = json::parse(text, nullptr, false);
    if (agent.is_object()) (*out)[text_field(agent, "id")] = text_field(agent, "name");
  }
  return Status();
}

Status compute_costs(Store& store, const CostQuery& query, std::string* out_json) {
  Totals total;
  std::map<std::string, std::int64_t> by_provider, by_model, by_operation, by_agent_id, by_task,
      by_day;
  std::map<std::int64_t, Totals> series;  // by hour or by day's first hour
  auto wanted = [&](const Cell& c) {
    return matches(c.agent_id, query.agent_id) && matches(c.provider, query.provider) &&
           matches(c.operation, query.operation);
  };
  std::int64_t from = hour_of(query.since_unix_ms);
  Status s = visit_cells(store, 'c', from, [&](const Cell& c) {
    if (!wanted(c)) return;
    std::int64_t nanos = c.totals.cost_nanos;
    total.add(c.totals);
    by_provider[c.provider] += nanos;
    by_model[c.name] += nanos;
    by_operation[c.operation] += nanos;
    by_agent_id[c.agent_id] += nanos;
    by_day[hour_label(c.hour, false)] += nanos;
    series[query.by_hour ? c.hour : c.hour - (c.hour % 24 + 24) % 24].add(c.totals);
  });
  if (s.ok()) {
    s = visit_cells(store, 't', from, [&](const Cell& c) {
      if (wanted(c)) by_task[c.name] += c.totals.cost_nanos;
    });
  }
  std::map<std::string, std::string> names;
  if (s.ok()) s = agent_names(store, &names);
  if (!s.ok()) return s;
  std::map<std::string, std::int64_t> by_agent;
  for (const auto& [id, nanos] : by_agent_id) {
    auto it = names.find(id);
    by_agent[it != names.end() ? it->second : id] += nanos;
  }
  json time_series = json::array();
  for (const auto& [hour, t] : series) {
    time_series.push_back({{"date", hour_label(hour, query.by_hour)},
                           {"cost", round_to(t.cost(), 4)},
                           {"events", t.events}});
  }
  *out_json = dump(json{{"totalCost", total.cost()},
                        {"eventCount", total.events},
                        {"unpricedCount", total.unpriced},
                        {"totalInputTokens", total.input_tokens},
                        {"totalOutputTokens", total.output_tokens},
                        {"byProvider", to_object(by_provider)},
                        {"byModel", to_object(by_model)},
                        {"byOperation", to_object(by_operation)},
                        {"byAgent", to_object(by_agent)},
                        {"byAgentId", to_object(by_agent_id)},
                        {"byTask", to_object(by_task)},
                        {"byDay", to_object(by_day)},
                        {"timeSeries", std::move(time_series)}});
  return Status();
}

Status list_agents_with_totals(Store& store, std::string* out_json) {
  std::map<std::string, AgentTotals> totals;
  Status s = agent_totals(store, &totals);
  if (!s.ok()) return s;
  std::vector<std::string> records;
  s = store.list_agents(&records);
  if (!s.ok()) return s;
  json out = json::array();
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    json agent = json::parse(*it, nullptr, false);
    if (!agent.is_object()) continue;
    const AgentTotals& t = totals[text_field(agent, "id")];
    std::string last = timestamp_or_empty(t.totals);
    agent["totalCost"] = t.totals.cost();
    agent["eventCount"] = t.totals.events;
    agent["totalInputTokens"] = t.totals.input_tokens;
    agent["totalOutputTokens"] = t.totals.output_tokens;
    agent["totalTokens"] = t.totals.input_tokens + t.totals.output_tokens;
    agent["lastActivity"] = last.empty() ? json(nullptr) : json(last);
    agent["costByProvider"] = to_object(t.by_provider);
    out.push_back(std::move(agent));
  }
  *out_json = dump(out);
  return Status();
}

}  // namespace agentburn::server
