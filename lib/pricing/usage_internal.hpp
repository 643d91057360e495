// The pieces of usage.cc and usage_stream.cc, apart for each other and the tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pricing/usage.hpp"

namespace agentburn::pricing::detail {

inline constexpr const char* kExpected =
    "OpenAI (Chat Completions or Responses), Anthropic Messages or Google Gemini";

// What one JSON document (a body, or one stream event's data) says, gathered in one pass.
// Fields of a message_start's "message" and of a Responses event's "response" are gathered
// as the document's own. Views point into the scanned text.
struct DocFields {
  enum Count : uint8_t {
    kPromptTokens, kCompletionTokens, kPromptCached, kPromptCacheHit, kCompletionReasoning,
    kInputTokens, kOutputTokens, kInputCached, kOutputReasoning,
    kCacheRead, kCacheCreation, kCacheCreation1h,
    kGPrompt, kGCandidates, kGThoughts, kGCached, kGToolUse,
    kCountKinds
  };
  uint64_t count[kCountKinds] = {};
  uint32_t present = 0;
  bool has(Count c) const { return present & (1u << c); }

  std::string_view object, type;   // top-level "object" and "type"
  std::string model;               // decoded "model" / "modelVersion" (also in message/response)
  std::string error;               // error.message, or "error" when an error has no message
  bool has_choices = false, has_candidates = false, has_usage_metadata = false;
  bool finish_reason = false;      // a Gemini candidate's finishReason
  std::string bad;                 // the first count that is not a whole number, explained
};

// Scans one JSON document into *out, the first `skip` levels left out (1 for the elements of
// a Gemini chunk array, whose later values then replace earlier ones); false with *error for
// invalid JSON.
bool scan_fields(std::string_view json, int skip, DocFields* out, std::string* error);

// The shape a document's fields show, if any.
std::optional<ResponseShape> shape_of(const DocFields& f);

// Converts a shape's counts to the convention of cost.hpp, and validates them.
Status fill_tokens(ResponseShape shape, const DocFields& f, Tokens* t);

bool starts_with(std::string_view s, std::string_view prefix);

// Turns the fields of a non-streamed body into usage; the message says what was missing.
Status usage_from_fields(const DocFields& f, Usage* out);

// Reads an SSE transcript (or a Gemini chunk array when `json_array`).
Status usage_from_stream(std::string_view body, bool json_array, Usage* out);


}  // namespace agentburn::pricing::detail
