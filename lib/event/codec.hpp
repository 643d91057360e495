// Event and agent models: validation and the JSON wire form. Shared by the client and by
// agentburn-server, so that both sides enforce the same rules with the same messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agentburn/event.hpp"
#include "agentburn/status.hpp"

namespace agentburn::detail {

// What a validation failure names: the JSON field and the reason, e.g.
// field "costUsd", message "costUsd: must be a finite number >= 0, got -1".
struct FieldError {
  std::string field;
  std::string message;
};

// Parses one event in the AgentBurn JSON form into `out`, checking types, unknown fields
// (with a did-you-mean), duplicate keys, nesting depth and size. Values are checked by
// validate_event. On failure returns false and fills `err`.
bool parse_event_json(std::string_view json, Event* out, FieldError* err);

// The two halves of parse_event_json, apart for the tests and the fuzz target's differential
// check. The fast path reads an event in one pass with no DOM, each field straight into
// `out`; it takes only well-formed events it is sure the checked parse accepts with the same
// result, and returns false for anything else (which is not a refusal: `out` may then hold
// part of the input). The checked parse builds a DOM with every check, and is what every
// refusal's message comes from.
bool parse_event_json_fast(std::string_view json, Event* out);
bool parse_event_json_checked(std::string_view json, Event* out, FieldError* err);

// Parses an already-parsed JSON value (any nlohmann::json) into an event: used by the server
// for the elements of a batch. Declared with a void* to keep nlohmann out of this header.
bool parse_event_value(const void* nlohmann_json_value, Event* out, FieldError* err);

// What validation derived from an event: the normalised timestamp, the idempotency key it
// assigned, and the canonical text of metadata given as a string. Empty: use the event's own.
struct Normalized {
  std::string idempotency_key;
  std::string timestamp;
  std::int64_t timestamp_ms = 0;  // the same, as Unix milliseconds
  std::optional<std::string> metadata_json;
  // Set by the client's pricing step: the cost and how it was found replace the event's own
  // costUsd, costSource, priceKey and pricesVersion (empty: left out). The views point into
  // the client's price catalog, which outlives every encode.
  std::optional<double> cost_usd;
  const char* cost_source = nullptr;
  std::string_view price_key;
  std::string_view prices_version;
};

// Checks every value rule (required fields, ranges, UTF-8, lengths, timestamp syntax).
// With `fill_defaults`, assigns a UUIDv7 key and the current time when they are absent.
// `metadata_trusted`: the event came from parse_event_* and its metadata is already the
// canonical encoding of a checked JSON object, so it is not parsed again.
// `cost_optional`: a missing costUsd is no error (the client prices the event afterwards).
bool validate_event(const Event& event, bool fill_defaults, bool metadata_trusted,
                    Normalized* norm, FieldError* err, bool cost_optional = false);

// Appends the wire form of a validated event to `out`: the seed's camelCase names in a fixed
// order (agentId first), absent optionals omitted, `norm`'s values in place of the event's.
// `seed_fields_only` leaves out idempotency_key, cachedInputTokens and reasoningTokens.
void encode_event(const Event& event, const Normalized& norm, bool seed_fields_only,
                  std::string* out);

// Agents: {"name", "description", "projectId", "tags"}.
bool parse_agent_json(std::string_view json, Agent* out, FieldError* err);
bool parse_agent_value(const void* nlohmann_json_value, Agent* out, FieldError* err);
bool validate_agent(const Agent& agent, FieldError* err);
std::string encode_agent(const Agent& agent);

// Status::invalid with "field: message" text, for the client's callers.
Status to_status(const FieldError& err);

// Helpers shared with the store and the server.
std::string new_uuid_v7();
std::int64_t now_unix_ms();
// "2026-01-02T03:04:05.678Z" for a Unix time in milliseconds.
std::string format_timestamp_ms(std::int64_t unix_ms);
// Parses ISO 8601 date-time with an offset (Z, +hh:mm, +hhmm) into Unix milliseconds.
bool parse_timestamp(std::string_view text, std::int64_t* unix_ms);
bool is_valid_utf8(std::string_view s);
// Appends s as a JSON string literal (quotes included).
void append_json_string(std::string_view s, std::string* out);
// Deepest nesting of arrays and objects in a JSON text; stops counting past `limit`.
int json_depth(std::string_view json, int limit);

}  // namespace agentburn::detail
