// Token usage read from a provider's response body, converted to the OpenTelemetry GenAI
// convention of cost.hpp (input includes the cache, output includes reasoning).
//
// Shapes read (the provider may be empty: the shape is always inferred from the body):
//   OpenAI Chat Completions, and every OpenAI-compatible API answering in that shape
//     usage.prompt_tokens -> input, usage.prompt_tokens_details.cached_tokens -> cached
//     (DeepSeek's usage.prompt_cache_hit_tokens when there is no cached_tokens),
//     usage.completion_tokens -> output, completion_tokens_details.reasoning_tokens -> reasoning
//   OpenAI Responses
//     usage.input_tokens, input_tokens_details.cached_tokens, usage.output_tokens,
//     output_tokens_details.reasoning_tokens
//   Anthropic Messages (its input_tokens leaves the cache out)
//     input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens,
//     cached = cache_read_input_tokens, cache_write = cache_creation_input_tokens,
//     cache_write_1h = cache_creation.ephemeral_1h_input_tokens, output = output_tokens
//   Google Gemini (usageMetadata)
//     input = promptTokenCount + toolUsePromptTokenCount, cached = cachedContentTokenCount,
//     output = candidatesTokenCount + thoughtsTokenCount, reasoning = thoughtsTokenCount;
//     the model is modelVersion
// Streams: the whole transcript of a streamed answer, as Server-Sent Events ("data: {...}"
// lines): OpenAI's final usage chunk (sent with stream_options.include_usage), Anthropic's
// message_start and its last message_delta (cumulative), Responses' response.completed (or
// response.incomplete), Gemini's last chunk (also as the JSON array streamGenerateContent
// returns without alt=sse). A stream cut before its usage is an error, never zeros.
//
// Everything else is kInvalid saying what was expected: not JSON, an error response (its
// message quoted), a body without usage, counts that are not whole numbers, counts that
// break the convention, bodies over 16 MiB, JSON nested over 64 levels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agentburn/status.hpp"
#include "pricing/cost.hpp"

namespace agentburn::pricing {

enum class ResponseShape : uint8_t {
  kOpenAIChat = 0,       // Chat Completions (and the legacy Completions), OpenAI-compatible APIs
  kOpenAIResponses = 1,  // the Responses API
  kAnthropicMessages = 2,
  kGemini = 3            // generateContent, on Google AI Studio or Vertex AI
};
// "openai_chat", "openai_responses", "anthropic_messages", "gemini".
const char* response_shape_name(ResponseShape shape);

inline constexpr size_t kMaxResponseBytes = 16u << 20;  // 16 MiB

struct Usage {
  std::string provider;  // as given; when none was given, the shape's own ("openai",
                         // "anthropic", "gemini"), which an OpenAI-compatible API is not
  std::string model;     // as the response names it (the last one named in a stream);
                         // empty when it names none
  Tokens tokens;         // validated (validate_tokens)
  ResponseShape shape = ResponseShape::kOpenAIChat;
  bool streamed = false; // read from an SSE transcript or a Gemini chunk array
};

// Reads the usage of one response body or stream transcript. Allocation-light: no DOM, one
// pass over the text (about 2 us for a 2 KB body).
Result<Usage> usage_from_response(std::string_view provider, std::string_view body);

}  // namespace agentburn::pricing
