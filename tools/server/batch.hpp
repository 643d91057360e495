// The body of POST /api/ingest: one event or an array of them, parsed and validated with
// the same rules (and messages) as the library's track().
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace agentburn::server {

inline constexpr std::size_t kMaxBatchEvents = 1000;
// Nesting allowed in a whole body: the batch's array, an event, and its metadata. Each event
// on its own is held to the library's kMaxJsonDepth.
inline constexpr int kMaxBodyDepth = 64;

struct ParsedBody {
  bool is_array = false;
  std::vector<nlohmann::json> items;
  // Per item: why it cannot be an event although the body is valid JSON (a duplicate key,
  // too deep); empty when fine.
  std::vector<std::string> item_problems;
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
void validate_items(const ParsedBody& body, const std::function<bool(const std::string&)>& agent_exists,
                    std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
                    std::vector<EventError>* errors);

}  // namespace agentburn::server
