// agentburn: the cost event and the agent, as the AgentBurn API defines them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agentburn {

// One billable thing an agent did. Field names follow the AgentBurn event schema; the JSON
// names are given beside each field. Optional fields left empty are omitted on the wire.
//
// Limits (checked by Client::track, each breach rejected with a Status naming the field):
// - agentId, provider, model, taskId, workflowId: UTF-8, no control characters,
//   1..256 bytes (kMaxIdBytes);
// - idempotency_key: 1..128 printable ASCII bytes (kMaxKeyBytes);
// - token counts: integers in [0, 2^53];
// - costUsd: a finite number in [0, 1e9]; absent, track() prices the event from its model
//   and tokens with the price catalog (see README.md, "Pricing");
// - cachedInputTokens + cacheWriteInputTokens <= inputTokens, reasoningTokens <= outputTokens
//   (when both sides are given): they are parts of it, as OpenTelemetry counts them;
// - metadata: a JSON object, at most 16 KiB encoded (kMaxMetadataBytes), nesting depth 32;
// - the whole encoded event: at most 64 KiB (kMaxEventBytes).
struct Event {
  std::string agent_id;   // "agentId", required: the id register_agent returned
  std::string provider;   // "provider", required: openai, anthropic, e2b, ...
  std::string operation;  // "operation", required: llm_call | tool_call | compute | api_call
  // "costUsd": cost in USD. Absent: computed from model and tokens by track().
  std::optional<double> cost_usd;

  std::optional<std::string> model;                // "model"
  std::optional<std::int64_t> input_tokens;        // "inputTokens"
  std::optional<std::int64_t> output_tokens;       // "outputTokens"
  std::optional<std::int64_t> cached_input_tokens; // "cachedInputTokens": cache reads, part of input
  // "cacheWriteInputTokens": input written to the prompt cache (Anthropic's cache creation),
  // part of inputTokens.
  std::optional<std::int64_t> cache_write_input_tokens;
  std::optional<std::int64_t> reasoning_tokens;    // "reasoningTokens": part of outputTokens
  std::optional<std::string> task_id;              // "taskId"
  std::optional<std::string> workflow_id;          // "workflowId"
  // "metadata": the text of a JSON object, e.g. R"({"ticket": 42})".
  std::optional<std::string> metadata_json;
  // "timestamp": ISO 8601 with a date, a time and an offset ("2026-01-02T03:04:05Z",
  // "2026-01-02T05:04:05.250+02:00"). Normalised to UTC with milliseconds. Empty: the time
  // of track().
  std::optional<std::string> timestamp;
  // "idempotency_key": the event's identity on every delivery attempt, so that a server
  // that deduplicates counts it once. Empty: track() assigns a UUIDv7.
  std::optional<std::string> idempotency_key;

  // How costUsd was found, set by track() (a value given is replaced): "costSource" is
  // "reported" (given by the caller), "computed" (from the catalog entry "priceKey" of the
  // catalog dated "pricesVersion") or "unpriced" (no price known: costUsd 0).
  std::optional<std::string> cost_source;
  std::optional<std::string> price_key;
  std::optional<std::string> prices_version;
};

// An entity that groups cost events. POST /api/agents takes these fields.
struct Agent {
  std::string name;                        // "name", required, 1..256 bytes
  std::optional<std::string> description;  // "description", at most 4 KiB
  std::optional<std::string> project_id;   // "projectId", at most 256 bytes
  std::vector<std::string> tags;           // "tags", at most 64 tags of 1..256 bytes
};

inline constexpr std::size_t kMaxIdBytes = 256;
inline constexpr std::size_t kMaxKeyBytes = 128;
inline constexpr std::size_t kMaxMetadataBytes = 16 * 1024;
inline constexpr std::size_t kMaxEventBytes = 64 * 1024;
inline constexpr int kMaxJsonDepth = 32;
inline constexpr double kMaxCostUsd = 1e9;
inline constexpr std::int64_t kMaxTokens = std::int64_t{1} << 53;
inline constexpr std::size_t kMaxDescriptionBytes = 4096;
inline constexpr std::size_t kMaxTags = 64;

}  // namespace agentburn
