// Field-by-field equality of two Events, for the tests and fuzz targets that check that two
// ways of reading an event (the fast reader and the checked DOM parse) agree.
#pragma once

#include <cmath>
#include <cstring>
#include <optional>

#include "agentburn/event.hpp"

namespace testing {

// Bit for bit: a cost of -0 is not 0 here (encode_event writes both as 0, but the Events
// should still be the same); two NaNs are the same.
inline bool same_cost(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b) return !a && !b;
  return std::memcmp(&*a, &*b, sizeof(double)) == 0 || (std::isnan(*a) && std::isnan(*b));
}

inline bool same_event(const agentburn::Event& a, const agentburn::Event& b) {
  return a.agent_id == b.agent_id && a.provider == b.provider && a.operation == b.operation &&
         same_cost(a.cost_usd, b.cost_usd) && a.model == b.model &&
         a.input_tokens == b.input_tokens && a.output_tokens == b.output_tokens &&
         a.cached_input_tokens == b.cached_input_tokens &&
         a.reasoning_tokens == b.reasoning_tokens && a.task_id == b.task_id &&
         a.workflow_id == b.workflow_id && a.metadata_json == b.metadata_json &&
         a.timestamp == b.timestamp && a.idempotency_key == b.idempotency_key &&
         a.cache_write_input_tokens == b.cache_write_input_tokens &&
         a.cost_source == b.cost_source && a.price_key == b.price_key &&
         a.prices_version == b.prices_version;
}

}  // namespace testing
