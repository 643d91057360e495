// The body of POST /api/ingest: one event or an array of them, parsed and validated with
// the same rules (and messages) as the library's track().
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/event.hpp"
#include "store.hpp"

namespace agentburn::server {

inline constexpr std::size_t kMaxBatchEvents = 1000;
// Nesting allowed in a whole body: the batch's array, an event, and its metadata. Each event
// on its own is held to kMaxEventDepth.
inline constexpr int kMaxBodyDepth = 64;
// The event object plus metadata of the library's kMaxJsonDepth levels: the deepest event
// that the library's track() accepts.
inline constexpr int kMaxEventDepth = kMaxJsonDepth + 1;

// Why an item cannot be an event although the body is valid JSON.
struct ItemProblem {
  std::string field;  // the event's field it is in, or empty
  std::string message;
  bool empty() const { return message.empty(); }
};

struct ParsedBody {
  bool is_array = false;
  std::vector<nlohmann::json> items;
  // Per item: a duplicate key or too deep a nesting; empty when fine.
  std::vector<ItemProblem> item_problems;
};

// Parses the body. False (with `error`) when the body as a whole is unusable: not JSON,
// nested deeper than kMaxBodyDepth, or more than kMaxBatchEvents events.
bool parse_body(std::string_view body, ParsedBody* out, std::string* error);

struct EventError {
  std::size_t index = 0;
  std::string field;
  std::string message;
  bool unknown_agent = false;  // valid, but its agentId names no registered agent
};

// Validates every item. `valid` gets the events that passed (in order), `errors` one entry
// per event that did not.
void validate_items(const ParsedBody& body,
                    const std::function<bool(const std::string&)>& agent_exists,
                    std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
                    std::vector<EventError>* errors);

}  // namespace agentburn::server
