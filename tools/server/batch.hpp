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

// A body read in one of two ways. The fast path (`fast`) reads each item straight into an
// Event and fills `events` only; the DOM path fills `items` and `item_problems`.
struct ParsedBody {
  bool is_array = false;
  bool fast = false;
  std::vector<nlohmann::json> items;
  // Per item: a duplicate key or too deep a nesting; empty when fine.
  std::vector<ItemProblem> item_problems;
  std::vector<Event> events;
  // The number of items, whichever way the body was read.
  std::size_t size() const { return fast ? events.size() : items.size(); }
};

// Parses the body. False (with `error`) when the body as a whole is unusable: not JSON,
// nested deeper than kMaxBodyDepth, or more than kMaxBatchEvents events. Tries
// parse_body_fast first and falls back to parse_body_dom for the whole body, so the answer is
// always the DOM path's (the fast path only makes it cheaper).
bool parse_body(std::string_view body, ParsedBody* out, std::string* error);

// The fast path alone: true only for a body that is one event object or a non-empty array of
// at most kMaxBatchEvents event objects, with no NUL byte, nesting within kMaxEventDepth per
// item, only JSON whitespace between and around the items, and every item taken by
// detail::parse_event_json_fast (which takes only events the DOM path reads with no problem,
// to the same Event). False for anything else, with no error: `out` may then hold part of
// the body, and the caller falls back to parse_body_dom.
bool parse_body_fast(std::string_view body, ParsedBody* out);

// The DOM path alone (nlohmann SAX to DOM): every error and per-item problem comes from here.
bool parse_body_dom(std::string_view body, ParsedBody* out, std::string* error);

struct EventError {
  std::size_t index = 0;
  std::string field;
  std::string message;
  bool unknown_agent = false;  // valid, but its agentId names no registered agent
};

// Validates every item (the fast path's events, or the DOM's items). `valid` gets the events that passed (in order), `errors` one entry
// per event that did not.
void validate_items(const ParsedBody& body,
                    const std::function<bool(const std::string&)>& agent_exists,
                    std::vector<IncomingEvent>* valid, std::vector<std::size_t>* valid_indexes,
                    std::vector<EventError>* errors);

}  // namespace agentburn::server
