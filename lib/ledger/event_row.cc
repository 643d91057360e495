#include "ledger/event_row.hpp"

#include "event/codec.hpp"

namespace agentburn::ledger {

std::int64_t hour_of(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 3600000 : (unix_ms - 3599999) / 3600000;
}

std::string key_of(const Event& e, std::int64_t hour) {
  return encode_key(hour, "",
                    {e.agent_id, e.provider, e.model ? std::string_view(*e.model) : "",
                     e.operation, e.task_id ? std::string_view(*e.task_id) : "",
                     e.workflow_id ? std::string_view(*e.workflow_id) : ""});
}

Totals totals_of(const Event& e, std::int64_t cost_nanos, bool unpriced) {
  Totals t{};
  t[kEvents] = 1;
  t[kCostNanos] = cost_nanos;
  t[kInputTokens] = e.input_tokens.value_or(0);
  t[kOutputTokens] = e.output_tokens.value_or(0);
  t[kCachedInputTokens] = e.cached_input_tokens.value_or(0);
  t[kCacheWriteInputTokens] = e.cache_write_input_tokens.value_or(0);
  t[kReasoningTokens] = e.reasoning_tokens.value_or(0);
  t[kUnpriced] = unpriced ? 1 : 0;
  return t;
}

bool row_of_event(std::string_view event_json, std::string* key, Totals* totals) {
  Event e;
  detail::FieldError err;
  std::int64_t ms = 0;
  if (!detail::parse_event_json(event_json, &e, &err) || !e.timestamp ||
      !detail::parse_timestamp(*e.timestamp, &ms)) {
    return false;
  }
  *key = key_of(e, hour_of(ms));
  *totals = totals_of(e, to_nanos(e.cost_usd.value_or(0.0)),
                      e.cost_source && *e.cost_source == "unpriced");
  return true;
}

}  // namespace agentburn::ledger
