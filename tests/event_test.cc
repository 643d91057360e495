// The event model: every validation rule with an input that breaks it, and round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"

using agentburn::Event;
using namespace agentburn::detail;

namespace {

const char* kValid =
    R"({"agentId":"a1","provider":"anthropic","model":"claude-3.5-sonnet","operation":"llm_call",)"
    R"("inputTokens":12500,"outputTokens":3200,"costUsd":0.0855,"taskId":"ticket-CTMS-5109",)"
    R"("workflowId":"sprint-42"})";

// Parses, validates with defaults and encodes; returns the error message or "" on success.
std::string check(const std::string& json, std::string* encoded = nullptr,
                  std::string* field = nullptr) {
  Event e;
  Normalized norm;
  FieldError err;
  if (!parse_event_json(json, &e, &err) || !validate_event(e, true, true, &norm, &err)) {
    if (field) *field = err.field;
    return err.message.empty() ? "(empty message)" : err.message;
  }
  if (encoded) {
    encoded->clear();
    encode_event(e, norm, false, encoded);
  }
  return "";
}

std::string with(const std::string& key, const std::string& value_json) {
  auto j = nlohmann::json::parse(kValid);
  if (value_json.empty()) {
    j.erase(key);
  } else {
    j[key] = nlohmann::json::parse(value_json);
  }
  return j.dump();
}

}  // namespace

TEST_CASE("the seed's example event is valid and encodes to the wire form") {
  std::string out;
  REQUIRE(check(kValid, &out) == "");
  auto j = nlohmann::json::parse(out);
  CHECK(j["agentId"] == "a1");
  CHECK(j["provider"] == "anthropic");
  CHECK(j["operation"] == "llm_call");
  CHECK(j["costUsd"].get<double>() == doctest::Approx(0.0855));
  CHECK(j["inputTokens"] == 12500);
  CHECK(j["outputTokens"] == 3200);
  CHECK(j["taskId"] == "ticket-CTMS-5109");
  CHECK(j["workflowId"] == "sprint-42");
  CHECK(j["idempotency_key"].get<std::string>().size() == 36);
  CHECK(j["idempotency_key"].get<std::string>()[14] == '7');  // UUID version 7
  CHECK(j["timestamp"].get<std::string>().back() == 'Z');
  CHECK_FALSE(j.contains("metadata"));
  CHECK_FALSE(j.contains("cachedInputTokens"));
  CHECK(out.rfind("{\"agentId\":", 0) == 0);  // agentId first: the sender relies on it
}

TEST_CASE("encode then parse gives back every field") {
  Event e;
  e.agent_id = "agent \"quoted\" \\ and\ttab";
  e.provider = "openai";
  e.operation = "tool_call";
  e.cost_usd = 1e-9;
  e.model = "gpt-4o";
  e.input_tokens = 0;
  e.output_tokens = (std::int64_t{1} << 53);
  e.cached_input_tokens = 7;
  e.reasoning_tokens = 9;
  e.task_id = "t\xc3\xa9";  // UTF-8
  e.workflow_id = "w";
  e.metadata_json = R"({"b": [1, 2, {"c": null}], "a": "x"})";
  e.timestamp = "2026-03-01T01:30:00.5+01:30";
  e.idempotency_key = "my-key-1";
  Normalized norm;
  FieldError err;
  e.agent_id = "agent-1";
  REQUIRE(validate_event(e, true, false, &norm, &err));
  std::string out;
  encode_event(e, norm, false, &out);
  Event back;
  Normalized norm2;
  REQUIRE(parse_event_json(out, &back, &err));
  REQUIRE(validate_event(back, true, true, &norm2, &err));
  CHECK(back.agent_id == e.agent_id);
  CHECK(back.provider == e.provider);
  CHECK(back.operation == e.operation);
  CHECK(*back.cost_usd == *e.cost_usd);
  CHECK(*back.model == *e.model);
  CHECK(*back.input_tokens == 0);
  CHECK(*back.output_tokens == *e.output_tokens);
  CHECK(*back.cached_input_tokens == 7);
  CHECK(*back.reasoning_tokens == 9);
  CHECK(*back.task_id == *e.task_id);
  CHECK(*back.workflow_id == "w");
  CHECK(nlohmann::json::parse(*back.metadata_json) == nlohmann::json::parse(*e.metadata_json));
  CHECK(*back.timestamp == "2026-03-01T00:00:00.500Z");
  CHECK(*back.idempotency_key == "my-key-1");
  std::string again;
  encode_event(back, norm2, false, &again);
  CHECK(again == out);  // the encoding is canonical
}

TEST_CASE("seed_fields_only leaves out the additions") {
  Event e;
  e.agent_id = "a";
  e.provider = "p";
  e.operation = "compute";
  e.cost_usd = 2;
  e.cached_input_tokens = 1;
  e.reasoning_tokens = 1;
  Normalized norm;
  FieldError err;
  REQUIRE(validate_event(e, true, false, &norm, &err));
  std::string out;
  encode_event(e, norm, true, &out);
  auto j = nlohmann::json::parse(out);
  CHECK_FALSE(j.contains("idempotency_key"));
  CHECK_FALSE(j.contains("cachedInputTokens"));
  CHECK_FALSE(j.contains("reasoningTokens"));
  CHECK(j.contains("timestamp"));
}

TEST_CASE("each validation rule rejects an input that breaks it, naming the field") {
  struct Case {
    std::string json;
    std::string field;
    std::string says;
  };
  const std::string big(300, 'x');
  std::vector<Case> cases = {
      {with("agentId", ""), "agentId", "required"},
      {with("provider", ""), "provider", "required"},
      {with("operation", ""), "operation", "required"},
      {with("costUsd", ""), "costUsd", "required"},
      {with("agentId", "null"), "agentId", "is required"},
      {with("costUsd", "null"), "costUsd", "is required"},
      {with("agentId", "42"), "agentId", "must be a string"},
      {with("agentId", "\"\""), "agentId", "required"},
      {with("agentId", "\"" + big + "\""), "agentId", "limit is 256"},
      {with("agentId", "\"a\\u0000b\""), "agentId", "control characters"},
      {with("provider", "[]"), "provider", "must be a string"},
      {with("operation", "\"llm\""), "operation", "must be llm_call, tool_call, compute or api_call"},
      {with("costUsd", "\"0.1\""), "costUsd", "must be a number"},
      {with("costUsd", "-1"), "costUsd", "finite number in [0, 1e9]"},
      {with("costUsd", "1e300"), "costUsd", "finite number"},
      {with("costUsd", "true"), "costUsd", "must be a number"},
      {with("inputTokens", "-5"), "inputTokens", "non-negative integer"},
      {with("inputTokens", "1.5"), "inputTokens", "non-negative integer"},
      {with("inputTokens", "\"12\""), "inputTokens", "non-negative integer"},
      {with("outputTokens", "9007199254740993"), "outputTokens", "at most 2^53"},
      {with("cachedInputTokens", "-1"), "cachedInputTokens", "non-negative integer"},
      {with("reasoningTokens", "{}"), "reasoningTokens", "non-negative integer"},
      {with("model", "\"\""), "model", "must not be empty"},
      {with("taskId", "7"), "taskId", "must be a string"},
      {with("workflowId", "\"" + big + "\""), "workflowId", "limit is 256"},
      {with("metadata", "[1]"), "metadata", "must be a JSON object"},
      {with("metadata", "\"x\""), "metadata", "must be a JSON object"},
      {with("metadata", "{\"k\":\"" + std::string(17000, 'm') + "\"}"), "metadata", "limit is 16384"},
      {with("timestamp", "\"yesterday\""), "timestamp", "ISO 8601"},
      {with("timestamp", "\"2026-01-02T03:04:05\""), "timestamp", "UTC offset"},
      {with("timestamp", "\"2026-02-30T03:04:05Z\""), "timestamp", "ISO 8601"},
      {with("timestamp", "\"2026-01-02\""), "timestamp", "ISO 8601"},
      {with("timestamp", "1700000000"), "timestamp", "must be a string"},
      {with("idempotency_key", "\"has space\""), "idempotency_key", "printable ASCII"},
      {with("idempotency_key", "\"" + std::string(129, 'k') + "\""), "idempotency_key", "1 to 128"},
      {with("inputToken", "5"), "inputToken", "did you mean \"inputTokens\""},
      {with("input_tokens", "5"), "input_tokens", "did you mean \"inputTokens\""},
      {with("cost_usd", "5"), "cost_usd", "did you mean \"costUsd\""},
      {with("zzzzzzzz", "5"), "zzzzzzzz", "known fields are"},
      {"[1,2]", "", "must be a JSON object"},
      {"not json", "", "not valid JSON"},
      {"", "", "not valid JSON"},
      {R"({"agentId":"a","agentId":"b"})", "agentId", "duplicate key \"agentId\""},
      {R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1,"metadata":{"x":1,"x":2}})",
       "metadata", "duplicate key \"x\""},
      {"{\"agentId\":\"\xff\xfe\"}", "agentId", "not valid JSON"},
      {R"({"agentId":"a","costUsd":NaN})", "costUsd", "NaN and Infinity are not JSON numbers"},
      {std::string(70000, ' ') + "{}", "", "limit is 65536"},
      {std::string(kValid) + std::string(1, '\0') + "garbage", "", "a NUL byte at offset"},
      {R"({"agentId":"a","agentId":"b","provider":"p","operation":"compute","costUsd":1})",
       "agentId", "duplicate key"},
      {std::string(kValid) + " x", "", "not valid JSON"},
      {with("timestamp", "\"9999-12-31T23:59:59-23:59\""), "timestamp", "ISO 8601"},
  };
  std::string deep = "{\"agentId\":\"a\",\"provider\":\"p\",\"operation\":\"compute\",\"costUsd\":1,\"metadata\":";
  for (int i = 0; i < 40; ++i) deep += "{\"d\":";  // 40 levels of metadata
  deep += "1";
  for (int i = 0; i < 41; ++i) deep += "}";
  cases.push_back({deep, "metadata", "nested deeper than 32"});
  for (const auto& c : cases) {
    CAPTURE(c.json.substr(0, 200));
    std::string field;
    std::string msg = check(c.json, nullptr, &field);
    CHECK(field == c.field);
    CHECK_MESSAGE(msg.find(c.says) != std::string::npos, msg);
    CHECK(agentburn::detail::is_valid_utf8(msg));
    if (!c.field.empty()) CHECK(msg.rfind(c.field + ":", 0) == 0);
  }
}

TEST_CASE("error messages stay valid UTF-8 whatever the input") {
  std::string cut = "\"" + std::string(63, 'a') + "\xc3\xa9\"";  // a 2-byte char across byte 64
  for (const std::string& json : {with("operation", cut), with(std::string(63, 'k') + "\xc3\xa9", "1"),
                                  with("costUsd", "\"" + std::string(36, 'x') + "\xe2\x82\xac\""),
                                  std::string("{\"agentId\":\"a\xff\"}")}) {
    std::string msg = check(json);
    CHECK(!msg.empty());
    CHECK_MESSAGE(agentburn::detail::is_valid_utf8(msg), msg);
  }
}

TEST_CASE("metadata nesting: the same limit through JSON and through Event") {
  auto nested = [](int levels) {
    std::string m;
    for (int i = 0; i < levels; ++i) m += "{\"d\":";
    m += "1";
    for (int i = 0; i < levels; ++i) m += "}";
    return m;
  };
  for (int levels : {agentburn::kMaxJsonDepth, agentburn::kMaxJsonDepth + 1}) {
    bool want_ok = levels <= agentburn::kMaxJsonDepth;
    CHECK((check(with("metadata", nested(levels))) == "") == want_ok);
    Event e;
    e.agent_id = "a";
    e.provider = "p";
    e.operation = "compute";
    e.cost_usd = 1;
    e.metadata_json = nested(levels);
    Normalized norm;
    FieldError err;
    CHECK(validate_event(e, true, false, &norm, &err) == want_ok);
  }
}

TEST_CASE("duplicate keys are found in objects with many keys") {
  std::string m = "{";
  for (int i = 0; i < 3000; ++i) m += "\"k" + std::to_string(i) + "\":1,";
  m += "\"k1234\":2}";
  std::string msg = check(with("metadata", "{}").replace(0, 1, "{\"metadata\":" + m + ","));
  CHECK(msg.find("duplicate key \"k1234\"") != std::string::npos);
}

TEST_CASE("-0 costs encode as 0, a fixed point of the wire form") {
  std::string out;
  REQUIRE(check(with("costUsd", "-0.0"), &out) == "");
  CHECK(out.find("\"costUsd\":0,") != std::string::npos);
}

TEST_CASE("error texts quote the input bounded and without control characters") {
  std::string msg = check(with("x\u0000y" + std::string(5000, 'z'), "1"));
  CHECK(msg.find('\0') == std::string::npos);
  CHECK(msg.size() < 1200);
}

TEST_CASE("optional fields given as null are treated as absent") {
  std::string out;
  REQUIRE(check(with("model", "null"), &out) == "");
  CHECK(out.find("model") == std::string::npos);
}

TEST_CASE("C++ events are checked like JSON ones") {
  Event e;
  e.agent_id = "a";
  e.provider = "p";
  e.operation = "api_call";
  Normalized norm;
  FieldError err;
  e.cost_usd = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  CHECK(err.field == "costUsd");
  e.cost_usd = std::numeric_limits<double>::infinity();
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  e.cost_usd = 0.5;
  e.input_tokens = -1;
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  CHECK(err.field == "inputTokens");
  e.input_tokens.reset();
  e.metadata_json = "{not json";
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  CHECK(err.field == "metadata");
  e.metadata_json = "[1]";
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  e.metadata_json = "{ \"a\" : 1 }";
  REQUIRE(validate_event(e, true, false, &norm, &err));
  CHECK(*norm.metadata_json == "{\"a\":1}");
  e.provider = "\xc3\x28";  // invalid UTF-8
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  CHECK(err.message.find("UTF-8") != std::string::npos);
}

TEST_CASE("timestamps normalise to UTC with milliseconds") {
  std::int64_t ms;
  REQUIRE(parse_timestamp("1970-01-01T00:00:00Z", &ms));
  CHECK(ms == 0);
  REQUIRE(parse_timestamp("2024-02-29T23:59:59.999-00:30", &ms));
  CHECK(format_timestamp_ms(ms) == "2024-03-01T00:29:59.999Z");
  REQUIRE(parse_timestamp("2026-11-26T13:21:19.123456789+0100", &ms));
  CHECK(format_timestamp_ms(ms) == "2026-11-26T12:21:19.123Z");
  CHECK_FALSE(parse_timestamp("2023-02-29T00:00:00Z", &ms));
  CHECK_FALSE(parse_timestamp("2026-01-01T24:00:00Z", &ms));
  CHECK_FALSE(parse_timestamp("2026-01-01T00:00:00Zjunk", &ms));
  CHECK_FALSE(parse_timestamp("2026-01-01T00:00:00.Z", &ms));
}

TEST_CASE("UUIDv7 keys are unique and time-ordered") {
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string k = new_uuid_v7();
    CHECK(k.size() == 36);
    CHECK(seen.insert(k).second);
    CHECK(k.substr(0, 13) >= prev.substr(0, std::min<std::size_t>(13, prev.size())));
    prev = k;
  }
}

TEST_CASE("agents: required name, typed fields, did-you-mean") {
  agentburn::Agent a;
  FieldError err;
  REQUIRE(parse_agent_json(
      R"({"name":"My Agent","description":"Handles customer onboarding workflows","projectId":"onboarding","tags":["support","onboarding"]})",
      &a, &err));
  CHECK(a.name == "My Agent");
  CHECK(*a.project_id == "onboarding");
  CHECK(a.tags.size() == 2);
  auto j = nlohmann::json::parse(encode_agent(a));
  CHECK(j["tags"][1] == "onboarding");
  agentburn::Agent b;
  CHECK_FALSE(parse_agent_json(R"({"description":"x"})", &b, &err));
  CHECK(err.field == "name");
  agentburn::Agent c;
  CHECK_FALSE(parse_agent_json(R"({"name":"n","tags":"x"})", &c, &err));
  CHECK(err.field == "tags");
  agentburn::Agent d;
  CHECK_FALSE(parse_agent_json(R"({"name":"n","project_id":"x"})", &d, &err));
  CHECK(err.message.find("did you mean \"projectId\"") != std::string::npos);
}
