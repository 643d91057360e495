// Private to the codec's source files (lib/event/*.cc): the field tables, the checked parse,
// error texts and the small readers and writers the event and agent codecs share.
#pragma once

#include <array>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "event/codec.hpp"

namespace agentburn::detail {

using json = nlohmann::json;

inline constexpr std::array<std::string_view, 18> kEventFields = {
    "agentId",      "provider", "operation",         "costUsd",         "model",
    "inputTokens",  "outputTokens", "cachedInputTokens", "reasoningTokens", "taskId",
    "workflowId",   "metadata", "timestamp",         "idempotency_key", "cacheWriteInputTokens",
    "costSource",   "priceKey", "pricesVersion"};

// kEventFields' indices, for the fast path's bitmask of the fields seen.
enum EventField {
  kAgentId, kProvider, kOperation, kCostUsd, kModel, kInputTokens, kOutputTokens,
  kCachedInputTokens, kReasoningTokens, kTaskId, kWorkflowId, kMetadata, kTimestamp,
  kIdempotencyKey, kCacheWriteInputTokens, kCostSource, kPriceKey, kPricesVersion
};
static_assert(kEventFields.size() == kPricesVersion + 1 && kEventFields.size() <= 32 &&
              kEventFields[kCacheWriteInputTokens] == "cacheWriteInputTokens" &&
              kEventFields[kPricesVersion] == "pricesVersion" &&
              kEventFields[kAgentId] == "agentId" && kEventFields[kCostUsd] == "costUsd" &&
              kEventFields[kModel] == "model" && kEventFields[kTaskId] == "taskId" &&
              kEventFields[kMetadata] == "metadata" &&
              kEventFields[kIdempotencyKey] == "idempotency_key");

inline constexpr std::array<std::string_view, 4> kAgentFields = {"name", "description",
                                                                 "projectId", "tags"};

// json_checked.cc: parses `text` into `out` with nlohmann's parser plus the AgentBurn rules
// (no key twice in one object, no nesting past kMaxJsonDepth, no NUL after the value).
bool parse_checked(std::string_view text, json* out, FieldError* err);

// fast_path.cc: the fast path's reader with no limit on the text's size; false when it
// declines (`out` may then hold part of the input).
bool read_event_fast(std::string_view text, Event* out);

// names.cc: "unknown field "x"", with a did-you-mean among `known` when one is close, else
// the list of the known fields.
std::string unknown_field_message(std::string_view name, const std::string_view* known,
                                  std::size_t count);
template <std::size_t N>
std::string unknown_field_message(std::string_view name,
                                  const std::array<std::string_view, N>& known) {
  return unknown_field_message(name, known.data(), N);
}

// names.cc: a JSON value as an error quotes it, at most 40 bytes.
std::string describe(const json& v);

// names.cc: fills `err` with the field and "field: message", both made safe to quote (valid
// UTF-8, no control characters, bounded), and returns false.
bool fail(FieldError* err, std::string field, std::string message);

// codec.cc: a JSON string's value, or a refusal naming `field`.
bool get_string(const json& v, const char* field, std::string* out, FieldError* err);

// codec.cc: a required text value: not empty, at most `max_bytes`, UTF-8, no control
// characters.
bool check_text(const std::string& s, const char* field, std::size_t max_bytes, FieldError* err);

// codec.cc: appends ,"name":"value" when `v` is set.
void append_opt_string(const char* name, const std::optional<std::string>& v, std::string* out);

}  // namespace agentburn::detail
