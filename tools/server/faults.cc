#include "faults.hpp"

#include <chrono>
#include <nlohmann/json.hpp>

namespace agentburn::server {

using json = nlohmann::json;

namespace {

constexpr std::int64_t kMaxDelayMs = 24LL * 3600 * 1000;
constexpr std::uint64_t kMaxCount = 1000000000;

bool fail(std::string* error, std::size_t index, const std::string& message) {
  *error = "fault plan item " + std::to_string(index) + ": " + message;
  return false;
}

bool get_integer(const json& item, const char* name, std::int64_t min, std::int64_t max,
                 std::int64_t* out) {
  auto it = item.find(name);
  if (it == item.end()) return true;
  if (!it->is_number_integer()) return false;
  std::int64_t v = it->get<std::int64_t>();
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return false;
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

bool only_fields(const json& item, std::initializer_list<const char*> allowed, std::string* bad) {
  for (auto it = item.begin(); it != item.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      *bad = it.key();
      return false;
    }
  }
  return true;
}

// An optional "retry_after": a string, or a non-negative integer written as one. On a bad
// value returns false with the message in *why.
bool get_retry_after(const json& item, std::string* out, std::string* why) {
  auto ra = item.find("retry_after");
  if (ra == item.end()) return true;
  if (ra->is_string()) {
    *out = ra->get<std::string>();
  } else if (ra->is_number_unsigned()) {
    *out = std::to_string(ra->get<std::uint64_t>());
  } else {
    *why = "retry_after must be a string or a non-negative integer";
    return false;
  }
  for (unsigned char c : *out) {
    if (c < 0x20 || c > 0x7E) {
      *why = "retry_after must be printable ASCII";
      return false;
    }
  }
  return true;
}

}  // namespace

bool Faults::set_plan(std::string_view plan_json, std::string* error) {
  json doc = json::parse(plan_json, nullptr, false);
  if (doc.is_discarded()) {
    *error = "the fault plan is not valid JSON";
    return false;
  }
  if (!doc.is_array()) doc = json::array({doc});
  Plan plan;
  auto keys = std::make_shared<std::unordered_set<std::string>>();
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const json& item = doc[i];
    if (!item.is_object()) return fail(error, i, "must be a JSON object");
    std::string bad;
    std::int64_t count = 1;
    if (!get_integer(item, "count", 1, kMaxCount, &count)) {
      return fail(error, i, "count must be an integer in 1..1000000000");
    }
    if (item.contains("status")) {
      if (!only_fields(item, {"status", "count", "retry_after", "min_events"}, &bad)) {
        return fail(error, i, "unknown field \"" + bad + "\" in a status item");
      }
      StatusItem s;
      std::int64_t status = 0, min_events = 0;
      if (!get_integer(item, "status", 200, 599, &status)) {
        return fail(error, i, "status must be an integer in 200..599");
      }
      if (!get_integer(item, "min_events", 0, 1000, &min_events)) {
        return fail(error, i, "min_events must be an integer in 0..1000");
      }
      if (!get_retry_after(item, &s.retry_after, &bad)) return fail(error, i, bad);
      s.status = static_cast<int>(status);
      s.remaining = static_cast<std::uint64_t>(count);
      s.min_events = static_cast<std::size_t>(min_events);
      plan.statuses.push_back(std::move(s));
    } else if (item.contains("agent_status")) {
      if (!only_fields(item, {"agent_status", "names", "count", "retry_after"}, &bad)) {
        return fail(error, i, "unknown field \"" + bad + "\" in an agent_status item");
      }
      AgentItem a;
      std::int64_t status = 0;
      if (!get_integer(item, "agent_status", 400, 599, &status)) {
        return fail(error, i, "agent_status must be an integer in 400..599");
      }
      a.status = static_cast<int>(status);
      auto names = item.find("names");
      if (names == item.end() || !names->is_array() || names->empty()) {
        return fail(error, i, "names must be a non-empty array of agent names");
      }
      for (const json& n : *names) {
        if (!n.is_string() || n.get<std::string>().empty()) {
          return fail(error, i, "names must be a non-empty array of agent names");
        }
        if (a.names.insert(n.get<std::string>()).second) a.listed.push_back(n.get<std::string>());
      }
      if (!get_retry_after(item, &a.retry_after, &bad)) return fail(error, i, bad);
      a.limited = item.contains("count");
      a.remaining = static_cast<std::uint64_t>(count);
      plan.agents.push_back(std::move(a));
    } else if (item.contains("delay_ms")) {
      if (!only_fields(item, {"delay_ms", "count"}, &bad)) {
        return fail(error, i, "unknown field \"" + bad + "\" in a delay item");
      }
      DelayItem d;
      if (!get_integer(item, "delay_ms", 0, kMaxDelayMs, &d.ms)) {
        return fail(error, i, "delay_ms must be an integer in 0..86400000");
      }
      d.remaining = static_cast<std::uint64_t>(count);
      plan.delays.push_back(d);
    } else if (item.contains("reject_keys")) {
      const json& list = item["reject_keys"];
      if (!only_fields(item, {"reject_keys"}, &bad)) {
        return fail(error, i, "unknown field \"" + bad + "\" in a reject_keys item");
      }
      if (!list.is_array()) return fail(error, i, "reject_keys must be an array of strings");
      for (const json& k : list) {
        if (!k.is_string()) return fail(error, i, "reject_keys must be an array of strings");
        keys->insert(k.get<std::string>());
      }
    } else if (item.contains("mode")) {
      const json& mode = item["mode"];
      if (!only_fields(item, {"mode"}, &bad)) {
        return fail(error, i, "unknown field \"" + bad + "\" in a mode item");
      }
      if (mode != "open-core" && mode != "normal") {
        return fail(error, i, "mode must be \"open-core\" or \"normal\"");
      }
      plan.open_core = mode == "open-core";
    } else if (item.contains("error_detail")) {
      if (!only_fields(item, {"error_detail"}, &bad) || !item["error_detail"].is_boolean()) {
        return fail(error, i, "an error_detail item is {\"error_detail\": true|false}");
      }
      plan.error_detail = item["error_detail"].get<bool>();
    } else {
      return fail(error, i,
                  "must have one of status, agent_status, delay_ms, reject_keys, mode or "
                  "error_detail");
    }
  }
  if (!keys->empty()) plan.reject_keys = std::move(keys);
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = std::move(plan);
  return true;
}

void Faults::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan();
}

std::string Faults::plan_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  json items = json::array();
  for (const auto& s : plan_.statuses) {
    json item = {{"status", s.status}, {"count", s.remaining}};
    if (!s.retry_after.empty()) item["retry_after"] = s.retry_after;
    if (s.min_events) item["min_events"] = s.min_events;
    items.push_back(std::move(item));
  }
  for (const auto& d : plan_.delays) items.push_back({{"delay_ms", d.ms}, {"count", d.remaining}});
  for (const auto& a : plan_.agents) {
    json item = {{"agent_status", a.status}, {"names", a.listed}};
    if (a.limited) item["count"] = a.remaining;
    if (!a.retry_after.empty()) item["retry_after"] = a.retry_after;
    items.push_back(std::move(item));
  }
  if (plan_.reject_keys) {
    json keys = json::array();
    for (const auto& k : *plan_.reject_keys) keys.push_back(k);
    items.push_back({{"reject_keys", std::move(keys)}});
  }
  if (plan_.open_core) items.push_back({{"mode", "open-core"}});
  if (!plan_.error_detail) items.push_back({{"error_detail", false}});
  return items.dump(-1, ' ', false, json::error_handler_t::replace);
}

IngestFaults Faults::next_ingest(std::size_t events) {
  std::lock_guard<std::mutex> lock(mu_);
  IngestFaults f;
  for (auto& s : plan_.statuses) {
    if (s.remaining == 0 || events < s.min_events) continue;
    --s.remaining;
    f.status = s.status;
    f.retry_after = s.retry_after;
    break;
  }
  for (auto& d : plan_.delays) {
    if (d.remaining == 0) continue;
    --d.remaining;
    f.delay_ms = d.ms;
    break;
  }
  f.reject_keys = plan_.reject_keys;
  f.open_core = plan_.open_core;
  f.error_detail = plan_.error_detail;
  return f;
}

AgentFault Faults::next_agent(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  AgentFault f;
  for (auto& a : plan_.agents) {
    if ((a.limited && a.remaining == 0) || !a.names.count(name)) continue;
    if (a.limited) --a.remaining;
    f.status = a.status;
    f.retry_after = a.retry_after;
    break;
  }
  return f;
}

void Faults::hold(std::int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
}

void Faults::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stopping_cv_.notify_all();
}

std::string Stats::to_json() const {
  return json{{"ingest_requests", ingest_requests.load()},
              {"events_received", events_received.load()},
              {"events_stored", events_stored.load()},
              {"duplicates", duplicates.load()},
              {"faults_injected", faults_injected.load()}}
      .dump();
}

}  // namespace agentburn::server
