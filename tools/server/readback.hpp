// Read-back for people, tools and tests: stored events (by cursor), cost totals, agents with
// their totals, as AgentBurn answers them. Totals come from the aggregates kept at ingest
// (aggregates.hpp): a read costs the number of (hour, agent, provider, operation, model)
// cells in its window, not the number of events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "agentburn/status.hpp"
#include "aggregates.hpp"
#include "store.hpp"

namespace agentburn::server {

inline constexpr std::size_t kDefaultEventsLimit = 100;
inline constexpr std::size_t kMaxEventsLimit = 10000;
inline constexpr int kDefaultCostDays = 30;

struct EventQuery {
  std::optional<std::string> agent_id;
  std::optional<std::string> task_id;
  std::optional<std::string> workflow_id;
  std::optional<std::string> idempotency_key;
  std::size_t limit = kDefaultEventsLimit;
  // Events stored before the one this cursor names (a nextCursor answered earlier).
  std::optional<std::uint64_t> cursor;
};

// A JSON array of stored records (wire form plus "id" and "receivedAt"), newest first.
// `next_cursor`: set when more events match past the last one listed.
Status list_events(Store& store, const EventQuery& query, std::string* out_json,
                   std::optional<std::uint64_t>* next_cursor);

// The text of a cursor and back; false for text this server did not give out.
std::string encode_cursor(std::uint64_t seq);
bool decode_cursor(const std::string& text, std::uint64_t* seq);

struct CostQuery {
  std::optional<std::string> agent_id;
  std::optional<std::string> provider;
  std::optional<std::string> operation;
  std::int64_t since_unix_ms = 0;  // counts the hours from the one holding this instant on
  bool by_hour = false;            // timeSeries by UTC hour instead of UTC day
};

// {"totalCost", "eventCount", "unpricedCount", "totalInputTokens", "totalOutputTokens",
//  "byProvider", "byModel", "byOperation", "byAgent" (by agent name), "byAgentId", "byTask",
//  "byDay", "timeSeries": [{"date", "cost", "events"}]}: each "by" object maps a name to a
// cost in USD. Events without a model or taskId count under "unknown"; days are UTC dates
// of the events' timestamps.
Status compute_costs(Store& store, const CostQuery& query, std::string* out_json);

// A JSON array of agents, newest first, each with "totalCost", "eventCount",
// "totalInputTokens", "totalOutputTokens", "totalTokens", "lastActivity" (the latest event
// timestamp, or null) and "costByProvider".
Status list_agents_with_totals(Store& store, std::string* out_json);

// --- Shared by the read routes ----------------------------------------------------------

// Visits the cells of `kind` ('c' by model, 't' by task) from `from_hour` on, oldest first.
Status visit_cells(Store& store, char kind, std::int64_t from_hour,
                   const std::function<void(const Cell&)>& visit);

// Every agent's all-time totals, and by provider.
struct AgentTotals {
  Totals totals;
  std::map<std::string, double> by_provider;
};
Status agent_totals(Store& store, std::map<std::string, AgentTotals>* out);

// Agent id -> name, of every registered agent.
Status agent_names(Store& store, std::map<std::string, std::string>* out);

// "2026-01-02" of an hour; "2026-01-02T03:00:00Z" with `with_hour`.
std::string hour_label(std::int64_t hour, bool with_hour);
// `usd` rounded to `decimals` places.
double round_to(double usd, int decimals);

}  // namespace agentburn::server
