// Read-back for people and tests: stored events, cost totals, agents with their totals.
// Each answer is computed from one scan of the stored events (newest first), which keeps the
// store simple; a reference server holds thousands of events, not billions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "agentburn/status.hpp"
#include "store.hpp"

namespace agentburn::server {

inline constexpr std::size_t kDefaultEventsLimit = 100;
inline constexpr std::size_t kMaxEventsLimit = 10000;

struct EventQuery {
  std::optional<std::string> agent_id;
  std::optional<std::string> task_id;
  std::optional<std::string> workflow_id;
  std::optional<std::string> idempotency_key;
  std::size_t limit = kDefaultEventsLimit;
};

// A JSON array of stored records (wire form plus "id" and "receivedAt"), newest first.
Status list_events(Store& store, const EventQuery& query, std::string* out_json);

struct CostQuery {
  std::optional<std::string> agent_id;
  std::optional<std::int64_t> since_unix_ms;  // events whose timestamp is at or after this
};

// {"totalCost", "eventCount", "totalInputTokens", "totalOutputTokens", "byProvider",
//  "byModel", "byOperation", "byAgent", "byTask", "byDay"}: each "by" object maps a name to
// a cost in USD. Events without a model or taskId count under "unknown"; days are UTC dates
// of the events' timestamps.
Status compute_costs(Store& store, const CostQuery& query, std::string* out_json);

// A JSON array of agents in creation order, each with "totalCost", "eventCount",
// "totalInputTokens", "totalOutputTokens", "totalTokens", "lastActivity" (the latest event
// timestamp, or null) and "costByProvider".
Status list_agents_with_totals(Store& store, std::string* out_json);

}  // namespace agentburn::server
