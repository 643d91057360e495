// What the cost aggregates count of one event (aggregates.hpp), read from a validated event
// as it is ingested. Header-only, so that the ingest body's parser (batch.cc) can fill it in
// wherever it is compiled.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agentburn/event.hpp"
#include "event/codec.hpp"

namespace agentburn::server {

inline constexpr std::int64_t kHourMs = 3600000;
inline constexpr std::int64_t kDayMs = 24 * kHourMs;

// Sums of integers, so that they are exact whatever the order they were added in. Costs are
// counted in nano-USD (1e-9 USD).
struct Totals {
  std::int64_t cost_nanos = 0;
  std::int64_t events = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t unpriced = 0;  // events recorded without a known price (costSource "unpriced")
  std::int64_t last_ms = INT64_MIN;  // the latest event timestamp, in ms since 1970

  void add(const Totals& o) {
    cost_nanos += o.cost_nanos;
    events += o.events;
    input_tokens += o.input_tokens;
    output_tokens += o.output_tokens;
    unpriced += o.unpriced;
    last_ms = std::max(last_ms, o.last_ms);
  }
  double cost() const { return static_cast<double>(cost_nanos) / 1e9; }
};

inline std::int64_t to_nanos(double usd) {
  return std::llround(usd * 1e9);
}

// The UTC hour holding `unix_ms`, in hours since 1970.
inline std::int64_t hour_of(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / kHourMs : -((-unix_ms + kHourMs - 1) / kHourMs);
}

// What the aggregates need of one stored event.
struct EventFacts {
  std::string agent_id, provider, operation;
  std::string model = "unknown";
  std::string task_id = "unknown";
  Totals totals;  // of this one event
  std::int64_t hour() const { return hour_of(totals.last_ms); }
};

// Recorded by a client that found no price for it: costSource "unpriced", also when a client
// that sends the seed's fields only put it in metadata.
inline bool says_unpriced(const std::optional<std::string>& cost_source,
                          const std::optional<std::string>& metadata_json) {
  if (cost_source && *cost_source == "unpriced") return true;
  if (!metadata_json || metadata_json->find("costSource") == std::string::npos) return false;
  auto md = nlohmann::json::parse(*metadata_json, nullptr, false);
  auto it = md.is_object() ? md.find("costSource") : md.end();
  return it != md.end() && it->is_string() && *it == "unpriced";
}

// From a validated event and its normalized values (its timestamp, its cost).
inline EventFacts facts_of_event(const Event& event, const detail::Normalized& norm) {
  EventFacts f;
  f.agent_id = event.agent_id;
  f.provider = event.provider;
  f.operation = event.operation;
  if (event.model) f.model = *event.model;
  if (event.task_id) f.task_id = *event.task_id;
  f.totals.cost_nanos = to_nanos(norm.cost_usd ? *norm.cost_usd : event.cost_usd.value_or(0));
  f.totals.events = 1;
  f.totals.input_tokens = event.input_tokens.value_or(0);
  f.totals.output_tokens = event.output_tokens.value_or(0);
  std::optional<std::string> source = event.cost_source;
  if (norm.cost_source) source = norm.cost_source;
  f.totals.unpriced =
      says_unpriced(source, norm.metadata_json ? norm.metadata_json : event.metadata_json);
  const std::string& ts = norm.timestamp.empty() ? event.timestamp.value_or("") : norm.timestamp;
  if (!detail::parse_timestamp(ts, &f.totals.last_ms)) f.totals.last_ms = detail::now_unix_ms();
  return f;
}

}  // namespace agentburn::server
