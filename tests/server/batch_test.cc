// The ingest body's fast path against the DOM path (tools/server/batch.cc): on every body
// here, parse_body (fast path first) and parse_body_dom alone must give the same result
// (body_equivalence.hpp), and the fast path must take the well-formed bodies it is for and
// decline the others.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "body_equivalence.hpp"

using agentburn::server::kMaxBatchEvents;
namespace eq = agentburn::server::equivalence;

namespace {

// Checks that both paths agree on `body`; returns whether the fast path took it.
bool same_both_ways(const std::string& body) {
  eq::Judged combined = eq::judge(body, /*dom_only=*/false);
  eq::Judged dom = eq::judge(body, /*dom_only=*/true);
  std::string shown = body.size() > 300 ? body.substr(0, 300) + "..." : body;
  INFO("body: ", shown);
  CHECK(eq::difference(combined, dom) == "");
  CHECK(eq::fast_path_soundness(combined, dom) == "");
  CHECK(!dom.parsed.fast);
  return combined.ok && combined.parsed.fast;
}

std::string event(const std::string& key, const std::string& extra = "") {
  return R"({"agentId":"agt_1","provider":"anthropic","operation":"llm_call","costUsd":0.25,)"
         R"("idempotency_key":")" + key + "\"" + extra + "}";
}

// `text` with the first `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

std::string batch(const std::vector<std::string>& items, const std::string& sep = ",") {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out + "]";
}

std::string nested(int levels) {  // metadata `levels` deep: {"x":[[...]]}
  return R"(,"metadata":{"x":)" + std::string(static_cast<std::size_t>(levels - 1), '[') +
         std::string(static_cast<std::size_t>(levels - 1), ']') + "}";
}

// Every field, in an unusual order, with escapes, unicode and numbers of every form.
const std::string kFull =
    R"({ "metadata" : {"z":1,"a":{"y":[1,2.5e3,-0,true,null,"s\"}]"],"b":"\u00e9\ud83d\ude00"},)"
    R"("m":-0.0,"n":1E+2}, "timestamp":"2026-01-02T05:04:05.250+02:00",)"
    R"("idempotency_key":"full-1","reasoningTokens":1.0e3,"cachedInputTokens":0,)"
    R"("outputTokens":20,"inputTokens":9007199254740992,"workflowId":"w\/1",)"
    R"("taskId":"t\\\"}]{[","model":"claude \u0041","costUsd":1e-3,"operation":"tool_call",)"
    R"("provider":"e2b","agentId":"agt_\u00e9"})";

}  // namespace

TEST_SUITE_BEGIN("server.batch");

TEST_CASE("the fast path takes well-formed bodies, with the DOM path's result") {
  std::vector<std::string> bodies = {
      event("a"),
      " \n\t\r" + event("a") + "\r\n\t ",
      batch({event("a")}),
      batch({event("a"), event("b"), event("c")}),
      " [ \n" + event("a") + " ,\t" + event("b") + "\r\n] \n",
      batch({event("a"), event("a"), event("b"), event("a")}),  // keys repeated in the batch
      kFull,
      batch({kFull, event("b"), kFull}),
      event("n", R"(,"model":null,"taskId":null,"metadata":null,"inputTokens":null)"),
      event("m", R"(,"metadata":{})"),
      event("m", R"(,"metadata":{"b":{"d":[],"c":{}},"a":"[{\"}"})"),
      event("deepest", nested(32)),  // the deepest the library takes: the event is 33 levels
      batch({event("deepest", nested(32)), event("x")}),
      R"({"agentId":"agt_1","provider":"p","operation":"compute","costUsd":0})",  // no key/time
      batch({R"({"agentId":"agt_1","provider":"p","operation":"compute","costUsd":5})",
             R"({"agentId":"agt_1","provider":"p","operation":"compute","costUsd":5})"}),
      // Valid JSON and known fields, but refused by validate_event or the agent check: the
      // fast path reads them, and validate_items gives the same errors.
      batch({event("a"), replaced(event("bad-cost"), "0.25", "-1"),
             replaced(event("unknown-agent"), "agt_1", "unknown_agent"), event("b")}),
      replaced(event("bad op"), "llm_call", "llm_cal"),
      replaced(event("nan"), "0.25", "1e300"),
      event("has space"),
      event("t", R"(,"timestamp":"yesterday")"),
      event("t", R"(,"timestamp":"9999-12-31T23:59:59.999-01:00")"),
      event("e", R"(,"model":"")"),
      event("big", R"(,"metadata":{"pad":")" + std::string(17000, 'x') + "\"}"),
      "{}", "[{}]", batch({event("a"), "{ }", event("b")}),  // "agentId: is required"
  };
  std::size_t taken = 0;
  for (const auto& body : bodies) taken += same_both_ways(body);
  CHECK(taken == bodies.size());

  // The largest batch there is.
  std::vector<std::string> items;
  for (std::size_t i = 0; i < kMaxBatchEvents; ++i) items.push_back(event("k" + std::to_string(i)));
  CHECK(same_both_ways(batch(items)));
  eq::Judged j = eq::judge(batch(items), false);
  CHECK(j.parsed.fast);
  CHECK(j.valid.size() == kMaxBatchEvents);
  CHECK(j.errors.empty());
}

TEST_CASE("the fast path declines what it is not for, and the DOM path answers") {
  const std::string e = event("a");
  std::vector<std::string> bodies = {
      "", " ", "\n\t", "[]", "[ ]", " [\n] ", "null", "1", "\"x\"", "[1]",
      "[null]", "[[]]", "[" + e + ",1]", "[" + e + ",null]", "[" + e + ",[]]",
      // structure around the items
      "[" + e + ",]", "[" + e, "[" + e + ",", "[" + e + "]]", "[" + e + "] x", e + " " + e,
      e + ",", "[" + e + e + "]", "[" + e + ",," + e + "]", "[," + e + "]", e + "]", "[" + e + "}",
      "{" + e + "}", "\xEF\xBB\xBF" + e, "\xEF\xBB\xBF[" + e + "]", "/**/" + e, e + "//",
      // whitespace nlohmann does not skip
      "\f" + e, e + "\v", "[" + e + "\f]", "\xC2\xA0" + e,
      // NUL bytes anywhere
      std::string("\0", 1) + e, e + std::string("\0", 1), e + std::string("\0garbage", 8),
      "[" + e + std::string(",\0", 2) + e + "]",
      event("a", std::string(R"(,"model":"a)") + '\0' + "b\""),
      // duplicate keys, at the top and in metadata, in and out of order
      event("a", R"(,"provider":"b")"), event("a", R"(,"metadata":{"a":1,"a":2})"),
      event("a", R"(,"metadata":{"b":1,"a":2,"b":3})"),
      event("a", R"(,"metadata":{"x":{"k":1,"k":1}})"),
      batch({e, event("a", R"(,"provider":"b")"), event("c")}),
      // nesting past the limits, alone and among good items
      event("d", nested(33)), batch({e, event("d", nested(33)), event("c")}),
      batch({e, event("d", nested(40))}), event("d", nested(70)),
      std::string(100, '[') + std::string(100, ']'), batch({e, std::string(64, '[')}),
      // keys and values the fast reader leaves to the checked parse
      event("a", R"(,"costUSD":1)"), event("a", R"(,"\u006dodel":"m")"),
      event("a", R"(,"metadata":{"\u0061":1})"), event("a", R"(,"costUsd":"1")"),
      event("a", R"(,"inputTokens":-1)"), event("a", R"(,"inputTokens":1.5)"),
      event("a", R"(,"inputTokens":9007199254740993)"), event("a", R"(,"model":5)"),
      event("a", R"(,"metadata":"{}")"), event("a", R"(,"metadata":[])"),
      event("a", R"(,"metadata":{"n":1e400})"), event("a", R"(,"metadata":{"n":NaN})"),
      event("a", R"(,"metadata":{"n":01})"), event("a", R"(,"metadata":{"n":1.})"),
      event("a", R"(,"metadata":{"n":-})"), event("a", R"(,"metadata":{"n":tru})"),
      event("a", R"(,"model":"\ud800")"), event("a", R"(,"model":"\udc00x")"),
      event("a", R"(,"model":"\x")"), event("a", "\xff"), event("a", ",\"model\":\"\xC0\xAF\""),
      event("a", ",\"model\":\"tab\there\""), event("a", R"(,"model":"a",)"),
      event("a", R"(,"metadata":{"a":1,})"), event("a", R"(,"metadata":{"a" 1})"),
      event("a", R"(,"metadata":{"a":[1,]})"), event("a", R"(,"metadata":{"a":[1 2]})"),
      R"({"agentId":"agt_1","agentId":"agt_2"})",
      // strings that hold brackets, quotes and backslashes, cut short
      "[" + event("a", R"(,"model":"}]")") + "," + event("a", R"(,"model":"\"")"),
      R"([{"model":"\"}, {"x":1}]")", R"([{"model":"\\"}, {"x":1}])",
      "[" + event("a", R"(,"model":"a\\)"),
  };
  // More than a batch holds: the 1,001st item is refused whatever it is.
  std::vector<std::string> items;
  for (std::size_t i = 0; i <= kMaxBatchEvents; ++i) items.push_back(event("k" + std::to_string(i)));
  bodies.push_back(batch(items));
  items.back() = "1";
  bodies.push_back(batch(items));

  for (const auto& body : bodies) {
    INFO("declined body: ", body.substr(0, 200));
    CHECK(!same_both_ways(body));
  }
}

TEST_CASE("mixed valid and invalid items keep their indexes and messages") {
  std::vector<std::string> items = {event("a"),
                                    event("dup", R"(,"model":"m","model":"n")"),
                                    event("b"),
                                    event("deep", nested(33)),
                                    event("c", R"(,"costUSD":1)"),
                                    event("d", R"(,"inputTokens":"5")"),
                                    event("e"),
                                    "[]",
                                    "7",
                                    event("f")};
  std::string body = batch(items, ",\n  ");
  CHECK(!same_both_ways(body));
  eq::Judged j = eq::judge(body, false);
  REQUIRE(j.ok);
  CHECK(!j.parsed.fast);
  std::vector<std::size_t> bad;
  for (const auto& err : j.errors) bad.push_back(err.index);
  CHECK(bad == std::vector<std::size_t>{1, 3, 4, 5, 7, 8});
  CHECK(j.valid_indexes == std::vector<std::size_t>{0, 2, 6, 9});
  CHECK(j.errors[0].message == "model: duplicate key \"model\"");
  CHECK(j.errors[1].field == "metadata");
  CHECK(j.errors[2].field == "costUSD");
}

TEST_CASE("every prefix and every one-byte change of a batch: both paths agree") {
  const std::string body =
      batch({event("a", R"(,"metadata":{"k":[1,{"q":"\"]"}],"b":2}, "model":"m\\")"),
             " " + kFull + " ", event("c", R"(,"inputTokens":12,"timestamp":"2026-01-02T03:04:05Z")")});
  CHECK(same_both_ways(body));
  std::size_t taken = 0, cases = 0;
  for (std::size_t n = 0; n < body.size(); ++n) {
    ++cases;
    taken += same_both_ways(body.substr(0, n));
  }
  CHECK(taken == 0);  // no prefix is a whole body
  static const char kBytes[] = "\"\\{}[],: \t\n\0x1e-.\x80\xff";
  const std::string replacements(kBytes, sizeof kBytes - 1);
  for (std::size_t i = 0; i < body.size(); ++i) {
    std::string shorter = body;
    shorter.erase(i, 1);
    ++cases;
    taken += same_both_ways(shorter);
    for (char r : replacements) {
      if (body[i] == r) continue;
      std::string changed = body;
      changed[i] = r;
      ++cases;
      taken += same_both_ways(changed);
    }
  }
  // Many changes keep the body well-formed (a letter in a string, a digit): the fast path
  // takes those, and declines the rest.
  CHECK(taken > 0);
  CHECK(taken < cases);
}

TEST_SUITE_END();
