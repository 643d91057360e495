// Hostile inputs shared by the tables of the C++ API and the C ABI: events and agents in
// JSON, and typed events, each with the field its refusal must name.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agentburn/event.hpp"

namespace hostile {

// The fields of the event, as the JSON form names them.
inline const std::vector<std::string>& event_fields() {
  static const std::vector<std::string> fields = {
      "agentId",     "provider",     "operation",         "costUsd",         "model",
      "inputTokens", "outputTokens", "cachedInputTokens", "reasoningTokens", "taskId",
      "workflowId",  "metadata",     "timestamp",         "idempotency_key"};
  return fields;
}

inline const std::string kValidEvent =
    R"({"agentId":"agt_1","provider":"anthropic","operation":"llm_call","costUsd":0.0855})";

// Bytes of a literal, NULs included.
template <std::size_t N>
std::string bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// The valid event with `field` set to the raw JSON text `raw` (any bytes): in place of the
// event's own value for the four it has, else appended last.
inline std::string event_with(const std::string& field, const std::string& raw) {
  const std::pair<std::string, std::string> base[] = {{"agentId", "\"agt_1\""},
                                                      {"provider", "\"anthropic\""},
                                                      {"operation", "\"llm_call\""},
                                                      {"costUsd", "0.0855"}};
  std::string out = "{";
  bool placed = false;
  for (const auto& [name, value] : base) {
    out += (out.size() > 1 ? ",\"" : "\"") + name + "\":" + (name == field ? raw : value);
    placed = placed || name == field;
  }
  if (!placed) out += ",\"" + field + "\":" + raw;
  return out + "}";
}

inline std::string nest_objects(std::size_t depth) {
  std::string s;
  s.reserve(depth * 6 + 2);
  for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(depth, '}');
  return s;
}

inline std::string nest_arrays(std::size_t depth, bool closed = true) {
  return std::string(depth, '[') + (closed ? std::string(depth, ']') : std::string());
}

struct JsonRow {
  std::string name;
  std::string text;   // the bytes passed, NULs included
  std::string field;  // the field the refusal must name; "" when it is about the text as a whole
};

// Hostile events in JSON: every row must be refused, naming `field`.
inline std::vector<JsonRow> event_rows() {
  std::vector<JsonRow> rows;
  auto add = [&](std::string name, std::string text, std::string field) {
    rows.push_back({std::move(name), std::move(text), std::move(field)});
  };
  // Wrong types, for every field.
  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"a number", "5"},       {"a float", "1.5"},  {"true", "true"},
      {"an array", "[\"x\"]"}, {"an object", "{}"}, {"a string", "\"12\""}};
  for (const auto& f : event_fields()) {
    for (const auto& [what, raw] : wrong) {
      bool is_string_field =
          f != "costUsd" && f != "metadata" && f.find("Tokens") == std::string::npos;
      if (is_string_field && raw[0] == '"') continue;  // right type
      if (f == "costUsd" && (raw == "5" || raw == "1.5")) continue;
      if (f == "metadata" && raw == "{}") continue;
      if (f.find("Tokens") != std::string::npos && raw == "5") continue;
      add(f + " as " + what, event_with(f, raw), f);
    }
  }
  // costUsd may be absent: track prices the event (and stores it unpriced when it cannot).
  for (const char* f : {"agentId", "provider", "operation"}) {
    add(std::string(f) + " null (absent, required)", event_with(f, "null"), f);
  }
  // NaN and infinities as JSON literals.
  for (const char* lit : {"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"}) {
    add(std::string("costUsd ") + lit, event_with("costUsd", lit), "costUsd");
    add(std::string("inputTokens ") + lit, event_with("inputTokens", lit), "inputTokens");
    add(std::string("metadata value ") + lit,
        event_with("metadata", std::string("{\"v\":") + lit + "}"), "metadata");
  }
  // Huge and negative numbers.
  add("costUsd 1e308", event_with("costUsd", "1e308"), "costUsd");
  add("costUsd 1e400 (overflows a double)", event_with("costUsd", "1e400"), "costUsd");
  add("costUsd just over 1e9", event_with("costUsd", "1000000000.001"), "costUsd");
  add("costUsd negative", event_with("costUsd", "-0.01"), "costUsd");
  add("costUsd -1e308", event_with("costUsd", "-1e308"), "costUsd");
  add("costUsd with 400 digits", event_with("costUsd", std::string(400, '9')), "costUsd");
  add("inputTokens 2^53 + 1", event_with("inputTokens", "9007199254740993"), "inputTokens");
  add("outputTokens 2^64", event_with("outputTokens", "18446744073709551616"), "outputTokens");
  add("cachedInputTokens 1e300", event_with("cachedInputTokens", "1e300"), "cachedInputTokens");
  add("reasoningTokens -1", event_with("reasoningTokens", "-1"), "reasoningTokens");
  add("inputTokens INT64_MIN", event_with("inputTokens", "-9223372036854775808"), "inputTokens");
  add("inputTokens -1e400", event_with("inputTokens", "-1e400"), "inputTokens");
  // Deep nesting: 1,000 levels parse to the limit and stop; 100,000 are over the size limit
  // before parsing. Neither may use the stack in proportion.
  add("metadata 1,000 objects deep", event_with("metadata", nest_objects(1000)), "metadata");
  add("metadata 1,000 arrays deep", event_with("metadata", "{\"a\":" + nest_arrays(1000) + "}"),
      "metadata");
  add("metadata 1,000 unclosed arrays",
      event_with("metadata", "{\"a\":" + nest_arrays(1000, false)), "metadata");
  add("metadata 33 levels (one too many)", event_with("metadata", nest_objects(33)), "metadata");
  add("the text 1,000 arrays deep", nest_arrays(1000), "");
  add("the text 100,000 arrays deep", nest_arrays(100000), "");
  add("the text 100,000 unclosed objects", std::string(100000, '{'), "");
  add("metadata 100,000 objects deep", event_with("metadata", nest_objects(100000)), "");
  // Huge strings: the text is over 64 KiB, and the field over its own limit is named.
  add("agentId of 1 MB", event_with("agentId", "\"" + std::string(1 << 20, 'a') + "\""),
      "agentId");
  add("metadata string of 10 MB",
      event_with("metadata", "{\"pad\":\"" + std::string(10 << 20, 'x') + "\"}"), "metadata");
  add("metadata string of 20 MB (past 16 MiB: not read)",
      event_with("metadata", "{\"pad\":\"" + std::string(20 << 20, 'x') + "\"}"), "");
  add("10 MB of spaces around a valid event", std::string(10 << 20, ' ') + kValidEvent, "");
  add("10 MB of garbage", std::string(10 << 20, '\x9c'), "");
  add("model of 257 bytes", event_with("model", "\"" + std::string(257, 'm') + "\""), "model");
  add("metadata over 16 KiB",
      event_with("metadata", "{\"pad\":\"" + std::string(16400, 'x') + "\"}"), "metadata");
  // Invalid UTF-8, raw and escaped.
  add("provider with a raw 0xFF byte", event_with("provider", "\"a\xff\""), "provider");
  add("model with an overlong '/'", event_with("model", "\"\xc0\xaf\""), "model");
  add("taskId with a raw surrogate", event_with("taskId", "\"\xed\xa0\x80\""), "taskId");
  add("workflowId past U+10FFFF", event_with("workflowId", "\"\xf4\x90\x80\x80\""), "workflowId");
  add("agentId with a cut sequence", event_with("agentId", "\"\xe2\x82\""), "agentId");
  add("agentId with a lone surrogate escape", event_with("agentId", "\"\\ud800\""), "agentId");
  add("metadata key with invalid UTF-8", event_with("metadata", "{\"\xfe\":1}"), "metadata");
  // Embedded NULs: escaped in JSON, and raw bytes (the caller gives the length).
  add("agentId with \\u0000", event_with("agentId", "\"a\\u0000b\""), "agentId");
  add("idempotency_key with \\u0000", event_with("idempotency_key", "\"k\\u0000\""),
      "idempotency_key");
  add("provider with a raw NUL", event_with("provider", bytes("\"a\0b\"")), "provider");
  add("a raw NUL before the event", std::string(1, '\0') + kValidEvent, "");
  // Control characters.
  add("model with \\n", event_with("model", "\"a\\nb\""), "model");
  add("operation with a raw tab", event_with("operation", "\"llm\tcall\""), "operation");
  // Other values.
  add("operation unknown", event_with("operation", "\"LLM_CALL\""), "operation");
  add("timestamp without an offset", event_with("timestamp", "\"2026-01-02T03:04:05\""),
      "timestamp");
  add("timestamp on Feb 30", event_with("timestamp", "\"2026-02-30T03:04:05Z\""), "timestamp");
  add("timestamp before 1970", event_with("timestamp", "\"1969-12-31T23:59:59Z\""), "timestamp");
  add("idempotency_key of 129 bytes",
      event_with("idempotency_key", "\"" + std::string(129, 'k') + "\""), "idempotency_key");
  add("idempotency_key non-ASCII", event_with("idempotency_key", "\"cl\xc3\xa9\""),
      "idempotency_key");
  // Unknown fields, duplicate keys.
  add("unknown field inputToken", event_with("inputToken", "5"), "inputToken");
  add("unknown field with a 2-byte name", event_with("zz", "5"), "zz");
  add("duplicate key, the last field",
      kValidEvent.substr(0, kValidEvent.size() - 1) + ",\"agentId\":\"b\"}", "agentId");
  add("duplicate key in metadata", event_with("metadata", "{\"a\":1,\"a\":2}"), "metadata");
  // Not one event object.
  add("empty input", "", "");
  add("only whitespace", " \t\r\n  ", "");
  add("a JSON array of one event", "[" + kValidEvent + "]", "");
  add("an empty array", "[]", "");
  add("null", "null", "");
  add("a number", "42", "");
  add("a string", "\"event\"", "");
  add("a truncated event", kValidEvent.substr(0, 30), "provider");
  add("an empty object", "{}", "agentId");
  return rows;
}

// Inputs that look hostile and are valid: each must be accepted (and counted as pending).
inline std::vector<JsonRow> accepted_rows() {
  return {
      {"a byte order mark first", "\xef\xbb\xbf" + kValidEvent, ""},
      {"whitespace around", " \n\t" + kValidEvent + "\r\n ", ""},
      {"optional fields null",
       event_with("model", "null").insert(1, "\"metadata\":null,\"inputTokens\":null,"), ""},
      {"metadata with \\u0000 in a key and a value",
       event_with("metadata", "{\"\\u0000\":\"\\u0000\"}"), ""},
      {"metadata 32 levels deep", event_with("metadata", nest_objects(32)), ""},
      {"metadata with NaN in a string", event_with("metadata", "{\"v\":\"NaN\"}"), ""},
      {"costUsd 0", event_with("costUsd", "0"), ""},
      {"costUsd 1e9", event_with("costUsd", "1e9"), ""},
      {"costUsd the smallest denormal", event_with("costUsd", "4.9e-324"), ""},
      {"inputTokens 2^53", event_with("inputTokens", "9007199254740992"), ""},
      {"outputTokens 1e3", event_with("outputTokens", "1e3"), ""},
      {"model with a surrogate pair escape", event_with("model", "\"\\ud83d\\ude00\""), ""},
      {"model of 256 bytes of UTF-8",
       event_with(
           "model", "\"" + std::string(128, 'x') +
                        [] {
                          std::string s;
                          for (int i = 0; i < 64; ++i) s += "\xc3\xa9";
                          return s;
                        }() +
                        "\""),
       ""},
      {"timestamp at the offset extremes",
       event_with("timestamp", "\"2026-01-02T03:04:05.999999999-23:59\""), ""},
  };
}

// Library issues (tests/fuzz/README.md, known issues): rows whose refusal names the wrong
// field, or whose message is not as clear as it must be. Each is expected to fail.
inline std::vector<JsonRow> known_issue_rows_wrong_field() {
  return {
      {"trailing garbage after a valid event", kValidEvent + " x", ""},
      {"two events back to back", kValidEvent + kValidEvent, ""},
      {"duplicate key before the last field",
       R"({"agentId":"a","agentId":"b","provider":"p","operation":"compute","costUsd":1})",
       "agentId"},
  };
}

// A NUL byte ends the input for the JSON parser: a valid event followed by a NUL and
// anything is accepted, the rest ignored. Each must be refused.
inline std::vector<JsonRow> known_issue_rows_nul_ends_input() {
  return {
      {"a raw NUL after the event", kValidEvent + bytes("\0"), ""},
      {"a raw NUL and garbage after the event", kValidEvent + bytes("\0garbage{]"), ""},
      {"a raw NUL and a second event", kValidEvent + bytes("\0") + kValidEvent, ""},
  };
}

inline const std::string kValidAgent =
    R"({"name":"My Agent","description":"d","projectId":"onboarding","tags":["a","b"]})";

// Hostile agents for register_agent_json: every row must be refused, naming `field`.
inline std::vector<JsonRow> agent_rows() {
  return {
      {"name missing", R"({"description":"d"})", "name"},
      {"name a number", R"({"name":5})", "name"},
      {"name null", R"({"name":null})", "name"},
      {"name empty", R"({"name":""})", "name"},
      {"name NaN", R"({"name":NaN})", "name"},
      {"name with \\u0000", R"({"name":"a\u0000b"})", "name"},
      {"name with a raw NUL", bytes("{\"name\":\"a\0b\"}"), "name"},
      {"name of 1 MB", "{\"name\":\"" + std::string(1 << 20, 'n') + "\"}", ""},
      {"name of 257 bytes", "{\"name\":\"" + std::string(257, 'n') + "\"}", "name"},
      {"name with invalid UTF-8", "{\"name\":\"\xff\"}", "name"},
      {"description a number", R"({"name":"a","description":1})", "description"},
      {"description over 4 KiB",
       "{\"name\":\"a\",\"description\":\"" + std::string(4097, 'd') + "\"}", "description"},
      {"projectId an array", R"({"name":"a","projectId":["p"]})", "projectId"},
      {"tags a string", R"({"name":"a","tags":"x"})", "tags"},
      {"tags with a number", R"({"name":"a","tags":["x",2]})", "tags"},
      {"tags with Infinity", R"({"name":"a","tags":[Infinity]})", "tags"},
      {"tags 1,000 arrays deep", "{\"name\":\"a\",\"tags\":" + nest_arrays(1000) + "}", "tags"},
      {"65 tags",
       [] {
         std::string t = "{\"name\":\"a\",\"tags\":[";
         for (int i = 0; i < 65; ++i) t += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
         return t + "]}";
       }(),
       "tags"},
      {"unknown field project_id", R"({"name":"a","project_id":"p"})", "project_id"},
      {"duplicate name, last", R"({"description":"d","name":"a","name":"b"})", "name"},
      {"100,000 arrays deep", nest_arrays(100000), ""},
      {"10 MB body", std::string(10 << 20, '{'), ""},
      {"empty input", "", ""},
      {"only whitespace", "\n\n ", ""},
      {"an array", "[" + kValidAgent + "]", ""},
  };
}

// A typed event (C++ Event, or the C ABI's setters) and the field its refusal must name.
struct TypedRow {
  std::string name;
  agentburn::Event event;
  std::string field;
  bool c_can_express = true;  // the C setters take NUL-terminated strings and clear on < 0
};

inline agentburn::Event valid_typed() {
  agentburn::Event e;
  e.agent_id = "agt_1";
  e.provider = "anthropic";
  e.operation = "llm_call";
  e.cost_usd = 0.0855;
  return e;
}

inline std::vector<TypedRow> typed_rows() {
  std::vector<TypedRow> rows;
  auto add = [&](std::string name, auto change, std::string field, bool c_ok = true) {
    agentburn::Event e = valid_typed();
    change(e);
    rows.push_back({std::move(name), std::move(e), std::move(field), c_ok});
  };
  const double inf = std::numeric_limits<double>::infinity();
  add(
      "costUsd NaN", [](auto& e) { e.cost_usd = std::nan(""); }, "costUsd");
  add(
      "costUsd -NaN", [](auto& e) { e.cost_usd = -std::nan(""); }, "costUsd");
  add(
      "costUsd +inf", [&](auto& e) { e.cost_usd = inf; }, "costUsd");
  add(
      "costUsd -inf", [&](auto& e) { e.cost_usd = -inf; }, "costUsd");
  add(
      "costUsd max double", [](auto& e) { e.cost_usd = std::numeric_limits<double>::max(); },
      "costUsd");
  add(
      "costUsd -1", [](auto& e) { e.cost_usd = -1; }, "costUsd");
  add(
      "costUsd -denormal", [](auto& e) { e.cost_usd = -std::numeric_limits<double>::denorm_min(); },
      "costUsd");
  add(
      "costUsd 1e9 + 1", [](auto& e) { e.cost_usd = 1e9 + 1; }, "costUsd");
  add(
      "reasoningTokens above outputTokens",
      [](auto& e) {
        e.output_tokens = 1;
        e.reasoning_tokens = 2;
      },
      "reasoningTokens", false);
  add(
      "inputTokens -1", [](auto& e) { e.input_tokens = -1; }, "inputTokens", false);
  add(
      "outputTokens INT64_MIN",
      [](auto& e) { e.output_tokens = std::numeric_limits<std::int64_t>::min(); }, "outputTokens",
      false);
  add(
      "cachedInputTokens INT64_MAX",
      [](auto& e) { e.cached_input_tokens = std::numeric_limits<std::int64_t>::max(); },
      "cachedInputTokens");
  add(
      "reasoningTokens 2^53 + 1", [](auto& e) { e.reasoning_tokens = (std::int64_t{1} << 53) + 1; },
      "reasoningTokens");
  add(
      "agentId empty", [](auto& e) { e.agent_id.clear(); }, "agentId");
  add(
      "agentId of 1 MB", [](auto& e) { e.agent_id.assign(1 << 20, 'a'); }, "agentId");
  add(
      "provider of 10 MB", [](auto& e) { e.provider.assign(10 << 20, 'p'); }, "provider");
  add(
      "model of 10 MB", [](auto& e) { e.model = std::string(10 << 20, 'm'); }, "model");
  add(
      "agentId invalid UTF-8", [](auto& e) { e.agent_id = "agt_\xff"; }, "agentId");
  add(
      "provider overlong", [](auto& e) { e.provider = "\xc0\xaf"; }, "provider");
  add(
      "model with a surrogate", [](auto& e) { e.model = "\xed\xb0\x80"; }, "model");
  add(
      "taskId cut sequence", [](auto& e) { e.task_id = "t\xe2\x82"; }, "taskId");
  add(
      "workflowId past U+10FFFF", [](auto& e) { e.workflow_id = "\xf7\xbf\xbf\xbf"; },
      "workflowId");
  add(
      "agentId with an embedded NUL", [](auto& e) { e.agent_id = bytes("a\0b"); }, "agentId",
      false);
  add(
      "model with an embedded NUL", [](auto& e) { e.model = bytes("m\0"); }, "model", false);
  add(
      "idempotency_key with an embedded NUL", [](auto& e) { e.idempotency_key = bytes("k\0k"); },
      "idempotency_key", false);
  add(
      "idempotency_key of 1 MB", [](auto& e) { e.idempotency_key = std::string(1 << 20, 'k'); },
      "idempotency_key");
  add(
      "idempotency_key empty", [](auto& e) { e.idempotency_key = ""; }, "idempotency_key");
  add(
      "timestamp garbage", [](auto& e) { e.timestamp = "yesterday"; }, "timestamp");
  add(
      "timestamp of 1 MB", [](auto& e) { e.timestamp = std::string(1 << 20, '9'); }, "timestamp");
  add(
      "timestamp invalid UTF-8", [](auto& e) { e.timestamp = "2026-01-02T03:04:05\xff"; },
      "timestamp");
  add(
      "operation with control characters", [](auto& e) { e.operation = "llm_call\n"; },
      "operation");
  add(
      "metadata empty", [](auto& e) { e.metadata_json = ""; }, "metadata");
  add(
      "metadata whitespace", [](auto& e) { e.metadata_json = "  \n"; }, "metadata");
  add(
      "metadata an array", [](auto& e) { e.metadata_json = "[1]"; }, "metadata");
  add(
      "metadata NaN", [](auto& e) { e.metadata_json = "{\"v\":NaN}"; }, "metadata");
  add(
      "metadata trailing garbage", [](auto& e) { e.metadata_json = "{} x"; }, "metadata");
  add(
      "metadata duplicate keys", [](auto& e) { e.metadata_json = "{\"a\":1,\"a\":1}"; },
      "metadata");
  add(
      "metadata raw NUL inside", [](auto& e) { e.metadata_json = bytes("{\"a\":\"\0\"}"); },
      "metadata");
  add(
      "metadata invalid UTF-8", [](auto& e) { e.metadata_json = "{\"a\":\"\xff\"}"; }, "metadata");
  add(
      "metadata 1,000 deep", [](auto& e) { e.metadata_json = nest_objects(1000); }, "metadata");
  add(
      "metadata 100,000 deep", [](auto& e) { e.metadata_json = nest_objects(100000); }, "metadata");
  add(
      "metadata 100,000 unclosed", [](auto& e) { e.metadata_json = std::string(100000, '['); },
      "metadata");
  add(
      "metadata 10 MB",
      [](auto& e) { e.metadata_json = "{\"a\":\"" + std::string(10 << 20, 'x') + "\"}"; },
      "metadata");
  add(
      "metadata 1e400", [](auto& e) { e.metadata_json = "{\"a\":1e400}"; }, "metadata");
  return rows;
}

inline bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    static const std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Messages name their field first: "costUsd: must be ...".
inline bool names_field(const std::string& message, const std::string& field) {
  return message.compare(0, field.size() + 2, field + ": ") == 0;
}

inline bool names_no_event_field(const std::string& message) {
  for (const auto& f : event_fields()) {
    if (names_field(message, f)) return false;
  }
  return true;
}

}  // namespace hostile
