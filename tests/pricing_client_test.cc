// Pricing through the client: an event without costUsd priced by the catalog, unpriced
// events counted and logged once, require_price, catalog options, and track_response.
#include <doctest/doctest.h>

#include <agentburn/agentburn.hpp>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "support.hpp"

using namespace agentburn;

namespace {

Options offline(const std::string& root) {
  Options o;
  o.buffer_root = root;
  return o;
}

Event usage(const std::string& model, std::int64_t input, std::int64_t output) {
  Event e;
  e.agent_id = "agent-1";
  e.provider = "openai";
  e.operation = "llm_call";
  e.model = model;
  e.input_tokens = input;
  e.output_tokens = output;
  return e;
}

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(AGENTBURN_TEST_FIXTURES) + "/responses/" + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_SUITE_BEGIN("pricing.client");

TEST_CASE("an event without costUsd is priced by the catalog, and says how") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Event e = usage("gpt-4o", 1000, 100);
  e.cached_input_tokens = 200;
  auto p = c->price_event(e);
  REQUIRE(p.ok());
  // gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output.
  // 800 x 2.5 + 200 x 1.25 + 100 x 10 = 2000 + 250 + 1000 = 3250 per million = $0.00325.
  CHECK(p->cost_usd == doctest::Approx(0.00325).epsilon(1e-9));
  CHECK(p->cost_source == "computed");
  CHECK(p->price_key == "gpt-4o");
  CHECK(p->match == "exact");
  CHECK(p->cached_usd == doctest::Approx(0.00025));
  CHECK_FALSE(p->prices_version.empty());
  REQUIRE(c->track(e).ok());
  CHECK(c->stats().unpriced == 0);

  e.cost_usd = 0.5;  // a reported cost is kept as given
  p = c->price_event(e);
  CHECK(p->cost_usd == 0.5);
  CHECK(p->cost_source == "reported");
}

TEST_CASE("an unknown model is stored unpriced at $0, counted, and logged once with the nearest names") {
  testing::TempDir root;
  std::mutex mu;
  std::vector<std::string> warnings;
  Options o = offline(root.path());
  o.log = [&](LogLevel level, const std::string& m) {
    std::lock_guard<std::mutex> g(mu);
    if (level == LogLevel::kWarning) warnings.push_back(m);
  };
  auto c = Client::open(o);
  REQUIRE(c.ok());
  for (int i = 0; i < 3; ++i) REQUIRE(c->track(usage("gpt-4oo", 10, 10)).ok());
  CHECK(c->stats().unpriced == 3);
  std::lock_guard<std::mutex> g(mu);
  REQUIRE(warnings.size() == 1);
  CHECK_MESSAGE(warnings[0].find("no price known for model \"gpt-4oo\"") != std::string::npos, warnings[0]);
  CHECK_MESSAGE(warnings[0].find("nearest catalog names:") != std::string::npos, warnings[0]);
}

TEST_CASE("require_price refuses what cannot be priced, naming the model") {
  testing::TempDir root;
  Options o = offline(root.path());
  o.require_price = true;
  auto c = Client::open(o);
  REQUIRE(c.ok());
  Status s = c->track(usage("claude-opus-4", 10, 10));  // no prefix guessing
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK_MESSAGE(s.message().find("\"claude-opus-4\"") != std::string::npos, s.message());
  Event no_tokens = usage("gpt-4o", 0, 0);
  no_tokens.input_tokens.reset();
  no_tokens.output_tokens.reset();
  CHECK(c->track(no_tokens).code() == Status::Code::kInvalid);
  CHECK(c->track(usage("gpt-4o", 10, 10)).ok());
}

TEST_CASE("a computed cost past $1e9 is refused by track, price_event and reserve, naming the price entry") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  // 10^12 input tokens (the most a count may be) at $10,000 a million: $1e10, past the limit
  // a reported cost has.
  const std::string model = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507";
  Status s = c->track(usage(model, 1'000'000'000'000, 0));
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK_MESSAGE(s.message() == "costUsd: the catalog's price of this event's tokens (\"" + model +
                                   "\") is $10000000000.00, past the limit of $1e9; check its token counts",
                s.message());
  CHECK(c->stats().rejected == 1);
  CHECK(c->stats().pending == 0);
  // The preview says what track would do.
  auto preview = c->price_event(usage(model, 1'000'000'000'000, 0));
  CHECK(preview.status().message() == s.message());
  // A reservation whose settling track would be refused is refused first.
  ReserveRequest r;
  r.provider = "openai";
  r.model = model;
  r.input_tokens = 1'000'000'000'000;
  r.max_output_tokens = 0;
  auto held = c->reserve(r);
  CHECK(held.status().code() == Status::Code::kInvalid);
  CHECK_MESSAGE(held.status().message().rfind("reserve: the catalog's price of the call's largest cost (\"" + model + "\") is $10000000000.00, past the limit of $1e9", 0) == 0,
                held.status().message());
  r.model.reset();
  r.estimate_usd = 2e9;
  held = c->reserve(r);
  CHECK(held.status().message() ==
        "estimateUsd: must be at most 1e9, the limit of an event's cost (the track that settles it), got 2000000000.00");
  r.estimate_usd = 1e9;
  CHECK(c->reserve(r).ok());
  CHECK(c->track(usage("gpt-4o", 10, 10)).ok());
}

TEST_CASE("price overrides and a catalog file: used when given, refused whole when malformed") {
  testing::TempDir root;
  Options o = offline(root.path());
  o.price_overrides_json = R"({"my-finetune": {"provider": "openai", "input": 3, "output": 12},
                               "llama-local": {"input": 0, "output": 0}})";
  auto c = Client::open(o);
  REQUIRE(c.ok());
  auto p = c->price_event(usage("my-finetune", 1000000, 1000000));
  CHECK(p->cost_usd == doctest::Approx(15.0));
  CHECK(p->price_key == "my-finetune");
  p = c->price_event(usage("llama-local", 5000, 5000));
  CHECK(p->cost_source == "computed");  // $0 on purpose, not unpriced
  CHECK(p->cost_usd == 0);

  o.price_overrides_json = R"({"bad": {"input": -1, "output": 1}})";
  auto bad = Client::open(o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Status::Code::kInvalid);
  CHECK_MESSAGE(bad.status().message().find("\"bad\": input") != std::string::npos, bad.status().message());

  Options f = offline(root.path());
  f.price_catalog_path = root.sub("missing.json");
  auto missing = Client::open(f);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("price_catalog_path") == 0);
}

TEST_CASE("track_response reads a provider's answer and prices it") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Event fields;
  fields.agent_id = "agent-1";
  fields.task_id = "t-1";
  std::string key;
  REQUIRE(c->track_response(fields, "openai", fixture("openai_chat.json"), &key).ok());
  CHECK_FALSE(key.empty());
  // gpt-4o-2024-08-06: 1117 input of which 1024 cached, 46 output:
  // 93 x 2.5 + 1024 x 1.25 + 46 x 10 = 232.5 + 1280 + 460 = 1972.5 per million.
  Event same = usage("gpt-4o-2024-08-06", 1117, 46);
  same.cached_input_tokens = 1024;
  CHECK(c->price_event(same)->cost_usd == doctest::Approx(0.0019725));
  Status cut = c->track_response(fields, "openai", fixture("openai_chat_stream_cut.sse"));
  CHECK(cut.code() == Status::Code::kInvalid);
  CHECK(c->track_response(fields, "", "not a response").code() == Status::Code::kInvalid);
  CHECK(c->stats().pending == 1);
}

TEST_CASE("token parts larger than their whole are refused, saying which rule") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Event e = usage("gpt-4o", 100, 10);
  e.cached_input_tokens = 80;
  e.cache_write_input_tokens = 30;
  Status s = c->track(e);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK_MESSAGE(s.message().find("cachedInputTokens + cacheWriteInputTokens (110) is more than "
                                 "inputTokens (100)") != std::string::npos,
                s.message());
  Event r = usage("gpt-4o", 100, 10);
  r.reasoning_tokens = 11;
  s = c->track(r);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find("reasoningTokens (11) is more than outputTokens (10)") != std::string::npos);
}

TEST_SUITE_END();
