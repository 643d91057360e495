// Client::spend's question and answer in JSON (the C ABI and the bindings speak it).
#pragma once

#include <string>
#include <string_view>

#include "agentburn/client.hpp"

namespace agentburn::ledger {

// {"since": ISO 8601, "until": ISO 8601, "by": ["model", ...] or "model,agent"}; every field
// optional. kInvalid naming the field.
Status parse_spend_query_json(std::string_view json, SpendQuery* out);
// {"by": [...], "total": {totals}, "groups": [{"key": {"model": "gpt-4o", ...}, totals...}]}
// with totals {"events", "costUsd", "inputTokens", "outputTokens", "cachedInputTokens",
// "cacheWriteInputTokens", "reasoningTokens", "unpriced"}.
std::string spend_report_json(const SpendQuery& query, const SpendReport& report);

}  // namespace agentburn::ledger
