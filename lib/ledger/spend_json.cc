#include "ledger/spend_json.hpp"

#include <nlohmann/json.hpp>

#include "event/codec.hpp"

namespace agentburn::ledger {

using nlohmann::json;

Status parse_spend_query_json(std::string_view text, SpendQuery* out) {
  json o = json::parse(text.empty() ? std::string_view("{}") : text, nullptr, false);
  if (!o.is_object()) return Status::invalid("spend: the query must be a JSON object");
  SpendQuery q;
  for (auto it = o.begin(); it != o.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) continue;
    if (k == "since" || k == "until") {
      std::int64_t ms = 0;
      if (!v.is_string() || !detail::parse_timestamp(v.get<std::string>(), &ms)) {
        return Status::invalid("spend: " + k + " must be an ISO 8601 time such as "
                               "2026-12-01T00:00:00Z");
      }
      (k == "since" ? q.since_ms : q.until_ms) = ms;
    } else if (k == "by") {
      if (v.is_string()) {
        std::string list = v.get<std::string>();
        for (std::size_t pos = 0; pos <= list.size();) {
          std::size_t comma = list.find(',', pos);
          if (comma == std::string::npos) comma = list.size();
          if (comma > pos) q.by.push_back(list.substr(pos, comma - pos));
          pos = comma + 1;
        }
      } else if (v.is_array()) {
        for (const auto& d : v) {
          if (!d.is_string()) return Status::invalid("spend: by must be a list of names");
          q.by.push_back(d.get<std::string>());
        }
      } else {
        return Status::invalid("spend: by must be a list of names");
      }
    } else {
      return Status::invalid("spend: unknown field \"" + k + "\" (known: since, until, by)");
    }
  }
  *out = std::move(q);
  return Status();
}

namespace {

json totals_json(const SpendTotals& t) {
  return {{"events", t.events},
          {"costUsd", t.cost_usd},
          {"inputTokens", t.input_tokens},
          {"outputTokens", t.output_tokens},
          {"cachedInputTokens", t.cached_input_tokens},
          {"cacheWriteInputTokens", t.cache_write_input_tokens},
          {"reasoningTokens", t.reasoning_tokens},
          {"unpriced", t.unpriced}};
}

}  // namespace

std::string spend_report_json(const SpendQuery& query, const SpendReport& report) {
  json groups = json::array();
  for (const auto& g : report.groups) {
    json key = json::object();
    for (std::size_t i = 0; i < g.key.size() && i < query.by.size(); ++i) key[query.by[i]] = g.key[i];
    json item = totals_json(g.totals);
    item["key"] = key;
    groups.push_back(item);
  }
  json out = {{"by", query.by}, {"total", totals_json(report.total)}, {"groups", groups}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace agentburn::ledger
