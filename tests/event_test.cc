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

// The refusal of an event in JSON by parse_event_json.
FieldError refusal(const std::string& json) {
  Event e;
  FieldError err;
  CHECK_FALSE(parse_event_json(json, &e, &err));
  return err;
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
  e.input_tokens = 10;
  e.output_tokens = (std::int64_t{1} << 53);
  e.cached_input_tokens = 7;
  e.cache_write_input_tokens = 3;
  e.reasoning_tokens = 9;
  e.cost_source = "computed";
  e.price_key = "gpt-4o";
  e.prices_version = "2026-08-01";
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
  CHECK(*back.input_tokens == 10);
  CHECK(*back.output_tokens == *e.output_tokens);
  CHECK(*back.cached_input_tokens == 7);
  CHECK(*back.reasoning_tokens == 9);
  CHECK(*back.cache_write_input_tokens == 3);
  CHECK(*back.cost_source == "computed");
  CHECK(*back.price_key == "gpt-4o");
  CHECK(*back.prices_version == "2026-08-01");
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
      {with("task_id", "\"t\""), "task_id", "did you mean \"taskId\""},
      {with("input_token", "5"), "input_token", "did you mean \"inputTokens\""},
      {with("output_token", "5"), "output_token", "did you mean \"outputTokens\""},
      {with("cached_input_token", "5"), "cached_input_token",
       "did you mean \"cachedInputTokens\""},
      {with("Cost-USD", "5"), "Cost-USD", "did you mean \"costUsd\""},
      {with("zzzzzzzz", "5"), "zzzzzzzz", "known fields are"},
      {"[1,2]", "", "must be a JSON object"},
      {"not json", "", "not valid JSON"},
      {"", "", "not valid JSON"},
      {R"({"agentId":"a","agentId":"b"})", "agentId", "duplicate key \"agentId\""},
      {R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1,"metadata":{"x":1,"x":2}})",
       "metadata", "duplicate key \"x\""},
      {"{\"agentId\":\"\xff\xfe\"}", "agentId", "not valid JSON"},
      {R"({"agentId":"a","costUsd":NaN})", "costUsd", "must be a finite number, got NaN"},
      {std::string(70000, ' ') + "{}", "agentId", "limit is 65536"},
      {std::string(70000, '{'), "", "limit is 65536"},
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

namespace {

bool same_event(const Event& a, const Event& b) {
  return a.agent_id == b.agent_id && a.provider == b.provider && a.operation == b.operation &&
         a.cost_usd.has_value() == b.cost_usd.has_value() &&
         (!a.cost_usd ||
          (*a.cost_usd == *b.cost_usd && std::signbit(*a.cost_usd) == std::signbit(*b.cost_usd))) &&
         a.model == b.model && a.input_tokens == b.input_tokens &&
         a.output_tokens == b.output_tokens && a.cached_input_tokens == b.cached_input_tokens &&
         a.reasoning_tokens == b.reasoning_tokens && a.task_id == b.task_id &&
         a.workflow_id == b.workflow_id && a.metadata_json == b.metadata_json &&
         a.timestamp == b.timestamp && a.idempotency_key == b.idempotency_key &&
         a.cache_write_input_tokens == b.cache_write_input_tokens &&
         a.cost_source == b.cost_source && a.price_key == b.price_key &&
         a.prices_version == b.prices_version;
}

// Whether the fast path took `json`; wherever it did, the checked parse gives the same event.
bool fast_path_takes(const std::string& json) {
  Event fast, checked;
  FieldError err;
  bool took = parse_event_json_fast(json, &fast);
  bool ok = parse_event_json_checked(json, &checked, &err);
  if (took) {
    CHECK_MESSAGE(ok, err.message);
    CHECK(same_event(fast, checked));
  }
  Event e;
  FieldError err2;
  CHECK(parse_event_json(json, &e, &err2) == ok);
  if (ok) CHECK(same_event(e, checked));
  if (!ok) CHECK(err2.message == err.message);
  return took;
}

}  // namespace

TEST_CASE("the fast path reads well-formed events as the checked parse does") {
  // An event with `key` set to the text `value`, as written (with() would re-encode it).
  auto set = [](const std::string& key, const std::string& value) {
    std::string json = R"({"agentId":"a","provider":"p","operation":"compute")";
    if (key != "costUsd") json += R"(,"costUsd":1)";
    return json + ",\"" + key + "\":" + value + "}";
  };
  const std::vector<std::string> inputs = {
      std::string(kValid),
      std::string("{}"),
      std::string(" { } "),
      " \t\r\n" + std::string(kValid) + " \n",
      std::string("{ \"agentId\" :\t\"a\" ,\n\"costUsd\" : 1 }"),
      set("metadata", R"({"b":[1,2.50,{"c":null}],"a":"x","n":-0,"f":1E2,"u":"\u00e9"})"),
      set("metadata", R"({"s":"}]\"{[","t":true,"e":[],"o":{}})"),
      set("metadata", "{}"),
      set("metadata",
          R"({"z":{"y":2,"x":[{"q":1,"p":2}]},"B":1,"a":{},"é":"\/\u0001\n\"\\"})"),
      set("metadata", R"({"big":18446744073709551616,"neg":-9223372036854775809,"e":1.5e300})"),
      set("metadata", R"({"k":[1e21,1e-7,0.1,-0.0,123456789.125,5e-324,1.7976931348623157e308]})"),
      set("metadata", "{\"a\":1,\"A\":2,\"\x7f\":3,\"b \":4,\"b\":5,\"\":6}"),
      set("model", "null"),
      set("metadata", "null"),
      set("costUsd", "null"),
      set("costUsd", "0"),
      set("costUsd", "-0"),
      set("costUsd", "-0.0"),
      set("costUsd", "-7"),
      set("costUsd", "-9223372036854775808"),
      set("costUsd", "18446744073709551615"),
      set("costUsd", "9007199254740993"),
      set("costUsd", "1e-5"),
      set("costUsd", "2.5E+3"),
      set("costUsd", "0.1000000000000000055511151231257827"),
      set("costUsd", "4.9406564584124654e-324"),
      set("inputTokens", "0"),
      set("inputTokens", "9007199254740992"),
      set("inputTokens", "1e3"),
      set("inputTokens", "-0.0"),
      set("outputTokens", "12.000"),
      set("cachedInputTokens", "9.007199254740992e15"),
      set("taskId", R"("t\"q\\b\/s\b\f\n\r\t")"),
      set("taskId", R"("\u0041\u00e9\u20ac\ud83d\ude00\uD83D\uDE00\u07ff\uffff")"),
      set("taskId", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\x7f\xf4\x8f\xbf\xbf\""),
      set("model", R"("a\u0000b")"),
      set("timestamp", R"("2026-01-02T03:04:05.250+02:00")"),
      set("idempotency_key", R"("key-1")"),
      set("reasoningTokens", R"(7,"cachedInputTokens":8,"workflowId":"w","idempotency_key":"k")"),
  };
  for (const std::string& json : inputs) {
    CAPTURE(json);
    CHECK(fast_path_takes(json));
  }
}

TEST_CASE("the fast path leaves refusals and unusual forms to the checked parse") {
  const std::string head = R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1)";
  std::string deep_metadata;
  for (int i = 0; i < 33; ++i) deep_metadata += "[";
  for (int i = 0; i < 33; ++i) deep_metadata += "]";
  const std::vector<std::string> inputs = {
      std::string(""),
      std::string("[]"),
      std::string("\xef\xbb\xbf") + kValid,  // a byte order mark: accepted, by the checked parse
      head + R"(,"agent\u0049d":"a"})",      // an escaped key: the same field
      head + R"(,"agentId":"b"})",
      head + R"(,"agentid":"b"})",
      head + R"(,"model":"m","model":null})",
      head + R"(,"inputTokens":-0})",
      head + R"(,"inputTokens":-1})",
      head + R"(,"inputTokens":1.5})",
      head + R"(,"inputTokens":9007199254740993})",
      head + R"(,"inputTokens":99999999999999999999})",
      head + R"(,"inputTokens":"1"})",
      head + R"(,"model":1})",
      head + R"(,"model":["m"]})",
      head + R"(,"model":"\ud800"})",
      head + R"(,"model":"\udc00"})",
      head + R"(,"model":"\ud800\u0041"})",
      head + R"(,"model":"\x"})",
      head + ",\"model\":\"a\tb\"}",
      head + ",\"model\":\"\xc3\"}",
      head + ",\"model\":\"\xed\xa0\x80\"}",
      head + ",\"model\":\"\xc0\xaf\"}",
      head + R"(,"metadata":[1]})",
      head + R"(,"metadata":{"a":1,"a":2}})",
      head + R"(,"metadata":{"b":{"a":1,"a":2},"a":1}})",
      head + R"(,"metadata":{"\u0061":1}})",  // an escaped key in metadata
      head + R"(,"metadata":{"a":1e400}})",
      head + R"(,"metadata":{"a":truex}})",
      head + R"(,"metadata":{"a":}})",
      head + R"(,"metadata":{"a":"}"})",
      head + R"(,"metadata":{"a":[}})",
      head + R"(,"metadata":{"a":)" + deep_metadata + "}}",
      head + R"(,"costUsd2":1})",
      R"({"agentId":"a","costUsd":1e400})",
      R"({"agentId":"a","costUsd":01})",
      R"({"agentId":"a","costUsd":1.})",
      R"({"agentId":"a","costUsd":.5})",
      R"({"agentId":"a","costUsd":+1})",
      R"({"agentId":"a","costUsd":1e})",
      R"({"agentId":"a","costUsd":NaN})",
      R"({"agentId":"a","costUsd":nul})",
      R"({"agentId":"a",})",
      R"({"agentId":"a"} x)",
      R"({"agentId":"a"}{})",
      std::string(kValid) + std::string(1, '\0'),
      std::string(kValid).substr(0, 40),
  };
  for (const std::string& json : inputs) {
    CAPTURE(json);
    CHECK_FALSE(fast_path_takes(json));
  }
}

TEST_CASE("metadata read by the fast path is in the canonical text") {
  Event e;
  REQUIRE(parse_event_json_fast(
      R"({"metadata": {"b" : [1, 2.50, {"c": null}], "a": "x\u00e9\/\u001f", "n": -0, "f": 1E2}})",
      &e));
  CHECK(*e.metadata_json ==
        "{\"a\":\"x\xc3\xa9/\\u001f\",\"b\":[1,2.5,{\"c\":null}],\"f\":100.0,\"n\":0}");
}

TEST_CASE("refusals keep their exact messages") {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::string head = R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1)";
  std::vector<Case> cases = {
      // Field errors are reported in the order of the field names, not of the text.
      {R"({"provider":1,"agentId":2})", "agentId: must be a string, got 2"},
      {R"({"zzz":1,"agentId":[1,{"b":2}]})", "agentId: must be a string, got [1,{\"b\":2}]"},
      {head + R"(,"model":7,"Model":1})",
       "Model: unknown field \"Model\"; did you mean \"model\"?"},
      // Duplicates: the first in the order of the names, after the whole object is read.
      {R"({"zz":1,"zz":2,"agentId":"a","agentId":"b"})",
       "agentId: not valid JSON: duplicate key \"agentId\""},
      {R"({"agentId":"a","agentId":"b","costUsd":x})",
       "costUsd: not valid JSON: parse error at line 1, column 40: syntax error while parsing "
       "value - invalid literal; last read: '\"costUsd\":x' (a value is a JSON string, number, "
       "object, array, true, false or null; NaN and Infinity are not JSON numbers)"},
      {head + R"(,"metadata":{"a":{"x":1,"x":2}}})",
       "metadata: not valid JSON: duplicate key \"x\""},
      {head + R"(,"inputTokens":-0})", "inputTokens: must be a non-negative integer, got 0"},
      {head + R"(,"inputTokens":1.5})", "inputTokens: must be a non-negative integer, got 1.5"},
      {head + R"(,"model":"\ud800"})",
       "model: not valid JSON: parse error at line 1, column 80: syntax error while parsing value "
       "- invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF; last "
       "read: '\"\\ud800\"'"},
      {std::string(kValid) + std::string(1, '\0') + "x",
       "not valid JSON: a NUL byte at offset 200 after the JSON value"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.json);
    Event e;
    FieldError err;
    CHECK_FALSE(parse_event_json(c.json, &e, &err));
    CHECK(err.message == c.message);
  }
}

TEST_CASE("an event over the size limit names the field that makes it so, when it can") {
  const std::string head = R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1)";
  auto size = [](const std::string& json) {
    return "the event is " + std::to_string(json.size()) + " bytes; the limit is 65536";
  };

  // A big metadata: its own limit is what the caller must hear of.
  std::string big_metadata = head + R"(,"metadata":{"pad":")" + std::string(1000000, 'x') + "\"}}";
  FieldError err = refusal(big_metadata);
  CHECK(err.field == "metadata");
  CHECK(err.message == "metadata: is 1000010 bytes encoded; the limit is 16384 (" +
                           size(big_metadata) + ")");

  std::string big_agent = R"({"agentId":")" + std::string(1 << 20, 'a') +
                          R"(","provider":"p","operation":"compute","costUsd":1})";
  err = refusal(big_agent);
  CHECK(err.field == "agentId");
  CHECK(err.message ==
        "agentId: is 1048576 bytes; the limit is 256 (" + size(big_agent) + ")");

  // The first field validation refuses, as for an event under the limit.
  std::string two = R"({"agentId":"a","provider":"p","operation":"nope","costUsd":1,"model":")" +
                     std::string(70000, 'm') + "\"}";
  err = refusal(two);
  CHECK(err.field == "operation");

  // No field to name: every field is valid (the text is big with spaces), the text is past
  // 16 MiB, or the event's form is one the fast path leaves to the checked parse.
  for (const std::string& json :
       {std::string(70000, ' ') + head + "}",
        head + R"(,"metadata":{"pad":")" + std::string(17 << 20, 'x') + "\"}}",
        R"({"agentId":"a","provider":"p","operation":"compute","costUsd":"1","metadata":{"p":")" +
            std::string(70000, 'x') + "\"}}",
        std::string(70000, '[')}) {
    CAPTURE(json.substr(0, 120));
    err = refusal(json);
    CHECK(err.field == "");
    CHECK(err.message == size(json));
  }
}

TEST_CASE("NaN and Infinity in place of a number name the field that holds them") {
  const std::string head = R"({"agentId":"a","provider":"p","operation":"compute")";
  struct Case {
    std::string json;
    std::string field;
    std::string message;
  };
  const std::vector<Case> cases = {
      {head + R"(,"costUsd":NaN})", "costUsd", "costUsd: must be a finite number, got NaN"},
      {head + R"(,"costUsd": Infinity})", "costUsd",
       "costUsd: must be a finite number, got Infinity"},
      {head + R"(,"costUsd":-Infinity,"model":"m"})", "costUsd",
       "costUsd: must be a finite number, got -Infinity"},
      {head + ",\"costUsd\":1,\"inputTokens\":\n  NaN\n}", "inputTokens",
       "inputTokens: must be a finite number, got NaN"},
      {head + R"(,"costUsd":1,"metadata":{"a":{"v":Infinity}}})", "metadata",
       "metadata: \"v\" must be a finite number, got Infinity"},
      {head + R"(,"costUsd":1,"metadata":{"v":[1, -Infinity]}})", "metadata",
       "metadata: an array element must be a finite number, got -Infinity"},
      {"NaN", "", "not valid JSON: NaN and Infinity are not JSON numbers, got NaN"},
      {"[Infinity]", "", "not valid JSON: NaN and Infinity are not JSON numbers, got Infinity"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.json);
    FieldError err = refusal(c.json);
    CHECK(err.field == c.field);
    CHECK(err.message == c.message);
  }
  // Not NaN where a value goes, or another spelling: the parser's own message.
  for (const std::string& json :
       {head + R"(,"costUsd":NaNa})", head + R"(,"costUsd":nan})", head + R"(,"costUsd" NaN})",
        std::string(R"({"agentId":"a",NaN:1})")}) {
    CAPTURE(json);
    CHECK(refusal(json).message.find("not valid JSON: parse error") != std::string::npos);
  }
  // Metadata given as text to track(Event): the same words, under metadata.
  Event e;
  e.agent_id = "a";
  e.provider = "p";
  e.operation = "compute";
  e.cost_usd = 1;
  e.metadata_json = R"({"v":NaN})";
  Normalized norm;
  FieldError err;
  CHECK_FALSE(validate_event(e, true, false, &norm, &err));
  CHECK(err.message == "metadata: v: must be a finite number, got NaN");
}
