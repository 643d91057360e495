// The server's two ways of reading an ingest body, side by side: parse_body (the fast path,
// falling back to the DOM path) and parse_body_dom alone, each followed by validate_items.
// difference() says how two results differ, or "" when they are the same: the same refusal
// text, the same items, the same Event per item, the same accepted events with the same wire
// form and key, the same errors with the same index, field and message. Used by the server's
// unit tests (batch_test.cc) and the ingest_body fuzz target.
#pragma once

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "batch.hpp"
#include "event/codec.hpp"
#include "support/event_compare.hpp"

namespace agentburn::server::equivalence {

struct Judged {
  bool ok = false;
  std::string error;
  ParsedBody parsed;
  // Per item, the Event it was read into, or nothing when it could not be read (a problem of
  // the DOM path, or parse_event_value's refusal).
  std::vector<std::optional<Event>> events;
  std::vector<IncomingEvent> valid;
  std::vector<std::size_t> valid_indexes;
  std::vector<EventError> errors;
};

// Agents "registered" for the comparison: any id not starting with "unknown".
inline bool agent_exists(const std::string& id) { return id.rfind("unknown", 0) != 0; }

inline Judged judge(std::string_view body, bool dom_only) {
  Judged j;
  j.ok = dom_only ? parse_body_dom(body, &j.parsed, &j.error)
                  : parse_body(body, &j.parsed, &j.error);
  if (!j.ok) return j;
  const ParsedBody& p = j.parsed;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.fast) {
      j.events.emplace_back(p.events[i]);
      continue;
    }
    Event e;
    detail::FieldError err;
    if (p.item_problems[i].empty() && detail::parse_event_value(&p.items[i], &e, &err)) {
      j.events.emplace_back(std::move(e));
    } else {
      j.events.emplace_back();
    }
  }
  validate_items(p, agent_exists, &j.valid, &j.valid_indexes, &j.errors);
  return j;
}

inline std::string show_event(const Event& e) {
  auto opt = [](const auto& v) {
    if (!v) return std::string("-");
    if constexpr (std::is_same_v<std::decay_t<decltype(*v)>, std::string>) {
      return nlohmann::json(*v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      return nlohmann::json(*v).dump();
    }
  };
  return "{agentId " + opt(std::optional<std::string>(e.agent_id)) + ", provider " +
         opt(std::optional<std::string>(e.provider)) + ", operation " +
         opt(std::optional<std::string>(e.operation)) + ", costUsd " + opt(e.cost_usd) +
         ", model " + opt(e.model) + ", inputTokens " + opt(e.input_tokens) +
         ", outputTokens " + opt(e.output_tokens) + ", cachedInputTokens " +
         opt(e.cached_input_tokens) + ", reasoningTokens " + opt(e.reasoning_tokens) +
         ", taskId " + opt(e.task_id) + ", workflowId " + opt(e.workflow_id) + ", metadata " +
         opt(e.metadata_json) + ", timestamp " + opt(e.timestamp) + ", idempotency_key " +
         opt(e.idempotency_key) + "}";
}

using testing::same_event;

// The wire form without what validate_event generates afresh on each call (the key and the
// time of an event that has none), which two runs cannot share.
inline std::string stable_wire(const std::string& wire, const Event& e) {
  if (e.idempotency_key && e.timestamp) return wire;
  auto doc = nlohmann::ordered_json::parse(wire);
  if (!e.idempotency_key) doc.erase("idempotency_key");
  if (!e.timestamp) doc.erase("timestamp");
  return doc.dump();
}

inline std::string difference(const Judged& a, const Judged& b) {
  if (a.ok != b.ok) return std::string("parsed: ") + (a.ok ? "yes" : "no") + " vs " +
                           (b.ok ? "yes" : "no (" + b.error + ")");
  if (!a.ok) return a.error == b.error ? "" : "error: " + a.error + " | vs | " + b.error;
  if (a.parsed.is_array != b.parsed.is_array) return "is_array differs";
  if (a.parsed.size() != b.parsed.size()) {
    return "items: " + std::to_string(a.parsed.size()) + " vs " + std::to_string(b.parsed.size());
  }
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    const auto& x = a.events[i];
    const auto& y = b.events[i];
    if (x.has_value() != y.has_value()) return "item " + std::to_string(i) + ": read by one only";
    if (x && !same_event(*x, *y)) {
      return "item " + std::to_string(i) + ": " + show_event(*x) + " | vs | " + show_event(*y);
    }
  }
  if (a.errors.size() != b.errors.size()) {
    return "errors: " + std::to_string(a.errors.size()) + " vs " + std::to_string(b.errors.size());
  }
  for (std::size_t i = 0; i < a.errors.size(); ++i) {
    const EventError& x = a.errors[i];
    const EventError& y = b.errors[i];
    if (x.index != y.index || x.field != y.field || x.message != y.message ||
        x.unknown_agent != y.unknown_agent) {
      return "error " + std::to_string(i) + ": [" + std::to_string(x.index) + "] " + x.field +
             " / " + x.message + " | vs | [" + std::to_string(y.index) + "] " + y.field + " / " +
             y.message;
    }
  }
  if (a.valid_indexes != b.valid_indexes) return "valid indexes differ";
  for (std::size_t j = 0; j < a.valid.size(); ++j) {
    const Event& e = *a.events[a.valid_indexes[j]];
    if (stable_wire(a.valid[j].wire, e) != stable_wire(b.valid[j].wire, e)) {
      return "wire " + std::to_string(j) + ": " + a.valid[j].wire + " | vs | " + b.valid[j].wire;
    }
    if (e.idempotency_key && a.valid[j].idempotency_key != b.valid[j].idempotency_key) {
      return "key " + std::to_string(j) + ": " + a.valid[j].idempotency_key + " vs " +
             b.valid[j].idempotency_key;
    }
  }
  return "";
}

// What the fast path may take: a body the DOM path reads with no problem in any item.
inline std::string fast_path_soundness(const Judged& combined, const Judged& dom) {
  if (!combined.ok || !combined.parsed.fast) return "";
  if (!dom.ok) return "the fast path took a body the DOM path refuses: " + dom.error;
  for (std::size_t i = 0; i < dom.parsed.item_problems.size(); ++i) {
    if (!dom.parsed.item_problems[i].empty()) {
      return "the fast path took item " + std::to_string(i) +
             ", which has a problem: " + dom.parsed.item_problems[i].message;
    }
  }
  return "";
}

}  // namespace agentburn::server::equivalence
