// The price catalog and the cost of tokens: a table of calls priced by hand from the
// providers' published per-million prices, the classic double-counting mistakes, matching.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "pricing/catalog.hpp"
#include "pricing/cost.hpp"

using namespace agentburn::pricing;
using agentburn::Status;

namespace {

struct PriceCase {
  const char* provider;
  const char* model;
  Tokens tokens;  // input, cached, cache_write, cache_write_1h, output, reasoning
  ServiceTier service;
  const char* key;  // the entry expected, nullptr: no match
  MatchKind kind;
  double usd;       // by hand, from the published per-million prices
};

constexpr ServiceTier kStd = ServiceTier::kStandard;
constexpr MatchKind kExact = MatchKind::kExact, kPrefix = MatchKind::kProviderPrefix,
                    kDated = MatchKind::kDatedFallback, kNone = MatchKind::kNone;

// gpt-4o $2.50/M in, $1.25 cached, $10 out; batch $1.25/$5; gpt-4o-2024-05-13 $5/$15 (no
// cache price); gpt-4o-mini $0.15/$0.075/$0.60; gpt-4.1 $2/$0.50/$8; o3 $2/$0.50/$8 (flex
// $1/$0.25/$4); o1 $15/$7.50/$60; gpt-5 $1.25/$0.125/$10, flex $0.625/$0.0625/$5, priority
// $2.50/$0.25/$20 (no batch price in the catalog); claude-sonnet-4-5 $3 in, $3.75 5-minute
// write, $6 1-hour write, $0.30 read, $15 out, above 200k input $6/$7.50/$12/$0.60/$22.50;
// claude-haiku-4-5 $1/$1.25/$2/$0.10/$5; claude-opus-4-5 $5/$25; claude-opus-4 (20250514)
// $15/$75; gemini-2.5-pro $1.25/$0.125/$10, above 200k $2.50/$0.25/$15; gemini-2.5-flash
// $0.30/$0.03/$2.50; deepseek-chat $0.28/$0.028 hit/$0.42; grok-4 $3/$15; groq
// llama-3.3-70b-versatile $0.59/$0.79; mistral-large-latest $0.50/$1.50; Azure gpt-5.4
// $2.50/$0.25/$15, above 272k $5/$0.50/$22.50, priority $5/$0.50/$30, priority above 272k
// $10/$1/$45; qwen-turbo $0.05 in, $0.20 out, $0.50 thinking.
const PriceCase kCases[] = {
    // plain
    {"openai", "gpt-4o", {1000, 0, 0, 0, 500, 0}, kStd, "gpt-4o", kExact, 0.0075},
    {"OpenAI", "GPT-4o", {1000000, 0, 0, 0, 1000000, 0}, kStd, "gpt-4o", kExact, 12.5},
    {"openai", "gpt-4.1", {1000000, 0, 0, 0, 1000000, 0}, kStd, "gpt-4.1", kExact, 10.0},
    {"anthropic", "claude-sonnet-4-5", {1000, 0, 0, 0, 1000, 0}, kStd, "claude-sonnet-4-5", kExact, 0.018},
    {"anthropic", "claude-opus-4-5", {1000000, 0, 0, 0, 1000000, 0}, kStd, "claude-opus-4-5", kExact, 30.0},
    {"xai", "grok-4", {1000000, 0, 0, 0, 1000000, 0}, kStd, "xai/grok-4", kPrefix, 18.0},
    {"x-ai", "grok-4", {1000000, 0, 0, 0, 0, 0}, kStd, "xai/grok-4", kPrefix, 3.0},
    {"groq", "llama-3.3-70b-versatile", {1000000, 0, 0, 0, 1000000, 0}, kStd, "groq/llama-3.3-70b-versatile", kPrefix, 1.38},
    {"mistral", "mistral-large-latest", {1000000, 0, 0, 0, 1000000, 0}, kStd, "mistral/mistral-large-latest", kPrefix, 2.0},
    // cached: (10000-4000) x 2.50 + 4000 x 1.25 + 1000 x 10 = 0.015 + 0.005 + 0.01
    {"openai", "gpt-4o", {10000, 4000, 0, 0, 1000, 0}, kStd, "gpt-4o", kExact, 0.03},
    // 1M x 0.15 + 1M x 0.075 + 100k x 0.60
    {"openai", "gpt-4o-mini", {2000000, 1000000, 0, 0, 100000, 0}, kStd, "gpt-4o-mini", kExact, 0.285},
    // DeepSeek: 400k x 0.28 + 600k x 0.028 + 100k x 0.42
    {"deepseek", "deepseek-chat", {1000000, 600000, 0, 0, 100000, 0}, kStd, "deepseek/deepseek-chat", kPrefix, 0.1708},
    // no cache price: cached tokens at the input rate, 1M x 5
    {"openai", "gpt-4o-2024-05-13", {1000000, 500000, 0, 0, 0, 0}, kStd, "gpt-4o-2024-05-13", kExact, 5.0},
    // cache writes: 10000 x 3 + 80000 x 0.30 + 10000 x 3.75 + 2000 x 15
    {"anthropic", "claude-sonnet-4-5", {100000, 80000, 10000, 0, 2000, 0}, kStd, "claude-sonnet-4-5", kExact, 0.1215},
    // 1-hour writes: 10000 x 3 + 6000 x 3.75 + 4000 x 6
    {"anthropic", "claude-sonnet-4-5", {20000, 0, 10000, 4000, 0, 0}, kStd, "claude-sonnet-4-5", kExact, 0.0765},
    // 3000 x 1 + 5000 x 0.10 + 2000 x 1.25 + 1000 x 5
    {"anthropic", "claude-haiku-4-5", {10000, 5000, 2000, 0, 1000, 0}, kStd, "claude-haiku-4-5", kExact, 0.011},
    // reasoning: 30000 x 2 + 20000 x 0.50 + 5000 x 8 + 25000 x 8
    {"openai", "o3", {50000, 20000, 0, 0, 30000, 25000}, kStd, "o3", kExact, 0.31},
    // 1000 x 15 + 1000 x 60 + 9000 x 60
    {"openai", "o1", {1000, 0, 0, 0, 10000, 9000}, kStd, "o1", kExact, 0.615},
    // Gemini thinking: 10000 x 0.30 + 1000 x 2.50 + 4000 x 2.50
    {"gemini", "gemini-2.5-flash", {10000, 0, 0, 0, 5000, 4000}, kStd, "gemini/gemini-2.5-flash", kPrefix, 0.0155},
    // thinking priced apart: 0.05 + 600k x 0.20 + 400k x 0.50
    {"dashscope", "qwen-turbo", {1000000, 0, 0, 0, 1000000, 400000}, kStd, "dashscope/qwen-turbo", kPrefix, 0.37},
    // 80000 x 1.25 + 20000 x 0.125 + 2000 x 10 + 3000 x 10
    {"google", "gemini-2.5-pro", {100000, 20000, 0, 0, 5000, 3000}, kStd, "gemini/gemini-2.5-pro", kPrefix, 0.1525},
    // the 200k tier, every token at its rates: 150000 x 6 + 50000 x 0.60 + 50000 x 7.50 + 10000 x 22.50
    {"anthropic", "claude-sonnet-4-5", {250000, 50000, 50000, 0, 10000, 0}, kStd, "claude-sonnet-4-5", kExact, 1.53},
    // exactly 200k is not above it: 200000 x 3 + 1000 x 15
    {"anthropic", "claude-sonnet-4-5", {200000, 0, 0, 0, 1000, 0}, kStd, "claude-sonnet-4-5", kExact, 0.615},
    // one more token is: 200001 x 6 + 1000 x 22.50
    {"anthropic", "claude-sonnet-4-5", {200001, 0, 0, 0, 1000, 0}, kStd, "claude-sonnet-4-5", kExact, 1.222506},
    // 300000 x 2.50 + 10000 x 15
    {"google", "gemini-2.5-pro", {300000, 0, 0, 0, 10000, 0}, kStd, "gemini/gemini-2.5-pro", kPrefix, 0.9},
    {"vertex_ai", "gemini-2.5-pro", {100000, 0, 0, 0, 0, 0}, kStd, "gemini-2.5-pro", kExact, 0.125},
    // service tiers: batch 1M x 1.25 + 1M x 5
    {"openai", "gpt-4o", {1000000, 0, 0, 0, 1000000, 0}, ServiceTier::kBatch, "gpt-4o", kExact, 6.25},
    // flex: 50k x 0.625 + 50k x 0.0625 + 10k x 5
    {"openai", "gpt-5", {100000, 50000, 0, 0, 10000, 0}, ServiceTier::kFlex, "gpt-5", kExact, 0.084375},
    // priority: 50k x 2.50 + 50k x 0.25 + 10k x 20
    {"openai", "gpt-5", {100000, 50000, 0, 0, 10000, 0}, ServiceTier::kPriority, "gpt-5", kExact, 0.3375},
    // Azure gpt-5.4 above 272k, standard: 200000 x 5 + 100000 x 0.50 + 1000 x 22.50
    {"azure", "gpt-5.4", {300000, 100000, 0, 0, 1000, 0}, kStd, "azure/gpt-5.4", kPrefix, 1.0725},
    // ... and priority: 200000 x 10 + 100000 x 1 + 1000 x 45
    {"azure", "gpt-5.4", {300000, 100000, 0, 0, 1000, 0}, ServiceTier::kPriority, "azure/gpt-5.4", kPrefix, 2.145},
    // dated snapshots: their own entry when the catalog has one
    {"openai", "gpt-4o-2024-11-20", {1000000, 0, 0, 0, 1000000, 0}, kStd, "gpt-4o-2024-11-20", kExact, 12.5},
    {"openai", "gpt-4o-2024-05-13", {1000000, 0, 0, 0, 1000000, 0}, kStd, "gpt-4o-2024-05-13", kExact, 20.0},
    {"anthropic", "claude-opus-4-20250514", {1000000, 0, 0, 0, 1000000, 0}, kStd, "claude-opus-4-20250514", kExact, 90.0},
    {"anthropic", "claude-sonnet-4-5-20250929", {100000, 0, 0, 0, 0, 0}, kStd, "claude-sonnet-4-5-20250929", kExact, 0.3},
    // ... else their undated base
    {"openai", "gpt-4o-2099-12-31", {1000000, 0, 0, 0, 0, 0}, kStd, "gpt-4o", kDated, 2.5},
    {"openai", "gpt-4o-20991231", {1000000, 0, 0, 0, 0, 0}, kStd, "gpt-4o", kDated, 2.5},
    {"anthropic", "claude-sonnet-4-5@20250929", {100000, 0, 0, 0, 0, 0}, kStd, "claude-sonnet-4-5", kDated, 0.3},
    {"anthropic", "claude-haiku-4-5-latest", {1000000, 0, 0, 0, 0, 0}, kStd, "claude-haiku-4-5", kDated, 1.0},
    {"vertex_ai", "claude-sonnet-4-5@20250929", {100000, 0, 0, 0, 0, 0}, ServiceTier::kBatch, "vertex_ai/claude-sonnet-4-5@20250929", kPrefix, 0.15},
    // a model already prefixed, any case
    {"", "anthropic/claude-sonnet-4-5", {1000, 0, 0, 0, 1000, 0}, kStd, "claude-sonnet-4-5", kPrefix, 0.018},
    {"anthropic", "ANTHROPIC/Claude-Sonnet-4-5", {1000, 0, 0, 0, 1000, 0}, kStd, "claude-sonnet-4-5", kPrefix, 0.018},
    {"", "openai/gpt-4o", {1000, 0, 0, 0, 500, 0}, kStd, "gpt-4o", kPrefix, 0.0075},
    // unknown: nothing, never a neighbour's price
    {"anthropic", "claude-opus-4", {1000, 0, 0, 0, 1000, 0}, kStd, nullptr, kNone, 0},
    {"anthropic", "claude-opus-4-20991231", {1000, 0, 0, 0, 1000, 0}, kStd, nullptr, kNone, 0},
    {"openai", "gpt-4o-mini-turbo", {1000, 0, 0, 0, 1000, 0}, kStd, nullptr, kNone, 0},
    {"openai", "gpt-4o-0613", {1000, 0, 0, 0, 1000, 0}, kStd, nullptr, kNone, 0},
    {"", "", {1000, 0, 0, 0, 1000, 0}, kStd, nullptr, kNone, 0},
};

bool near_usd(double got, double want) { return std::fabs(got - want) <= 1e-12 + 1e-9 * want; }

}  // namespace

TEST_SUITE("pricing.cost") {
  TEST_CASE("priced by hand") {
    const Catalog& catalog = Catalog::builtin();
    REQUIRE(catalog.version() == "2026-08-01");
    for (const PriceCase& c : kCases) {
      const std::string provider = c.provider, model = c.model;
      CAPTURE(provider);
      CAPTURE(model);
      const Match m = catalog.lookup(c.provider, c.model);
      auto cost = estimate(catalog, c.provider, c.model, c.tokens, c.service);
      if (!c.key) {
        CHECK_FALSE(m);
        CHECK_FALSE(cost.ok());
        continue;
      }
      REQUIRE(m);
      CHECK(m.entry->key == c.key);
      CHECK(match_kind_name(m.kind) == std::string(match_kind_name(c.kind)));
      REQUIRE(cost.ok());
      const double got = cost->total_usd;
      CAPTURE(got);
      CHECK(near_usd(got, c.usd));
      CHECK(cost->key == c.key);
      CHECK(cost->catalog_version == "2026-08-01");
      const CostBreakdown& b = cost->usd;
      CHECK(near_usd(b.input + b.cached + b.cache_write + b.output + b.reasoning, cost->total_usd));
    }
  }

  TEST_CASE("breakdown, tier and service tier are reported") {
    auto c = estimate(Catalog::builtin(), "anthropic", "claude-sonnet-4-5",
                      {250000, 50000, 50000, 0, 10000, 0});
    REQUIRE(c.ok());
    CHECK(c->tier_above_tokens == 200000);
    CHECK(near_usd(c->usd.input, 0.9));
    CHECK(near_usd(c->usd.cached, 0.03));
    CHECK(near_usd(c->usd.cache_write, 0.375));
    CHECK(near_usd(c->usd.output, 0.225));
    CHECK(c->usd.reasoning == 0);
    CHECK(c->rates.get(RateKind::kInput) == 6);
    // gpt-5 has no batch price: standard rates, and the result says so.
    auto b = estimate(Catalog::builtin(), "openai", "gpt-5", {1000000, 0, 0, 0, 0, 0},
                      ServiceTier::kBatch);
    REQUIRE(b.ok());
    CHECK_FALSE(b->service_tier_priced);
    CHECK(near_usd(b->total_usd, 1.25));
    // A service tier lists only what it changes: gpt-4o's batch has no cache price, so the
    // standard one stays: 600k x 1.25 (batch input) + 400k x 1.25 (cache read).
    auto g = estimate(Catalog::builtin(), "openai", "gpt-4o", {1000000, 400000, 0, 0, 0, 0},
                      ServiceTier::kBatch);
    REQUIRE(g.ok());
    CHECK(g->service_tier_priced);
    CHECK(near_usd(g->total_usd, 1.25));
  }

  TEST_CASE("the classic double counts") {
    const Catalog& catalog = Catalog::builtin();
    // Cached tokens are part of input: billed once, at the cache rate (1000 x 1.25).
    auto cached = estimate(catalog, "openai", "gpt-4o", {1000, 1000, 0, 0, 0, 0});
    REQUIRE(cached.ok());
    CHECK(near_usd(cached->total_usd, 0.00125));
    // Reasoning is part of output: billed once (1000 x 8), neither twice nor not at all.
    auto twice = estimate(catalog, "openai", "o3", {0, 0, 0, 0, 1000, 1000});
    REQUIRE(twice.ok());
    CHECK(near_usd(twice->total_usd, 0.008));
    auto part = estimate(catalog, "openai", "o3", {0, 0, 0, 0, 1000, 800});
    REQUIRE(part.ok());
    CHECK(near_usd(part->total_usd, 0.008));
    CHECK(near_usd(part->usd.reasoning, 0.0064));
    // Cache writes cost more than input, not nothing: 10000 x 3.75.
    auto writes = estimate(catalog, "anthropic", "claude-sonnet-4-5", {10000, 0, 10000, 0, 0, 0});
    REQUIRE(writes.ok());
    CHECK(near_usd(writes->total_usd, 0.0375));
    // claude-opus-4-5 and claude-opus-4 (20250514) are different prices, never each other's.
    CHECK(catalog.lookup("anthropic", "claude-opus-4-5").entry->key == "claude-opus-4-5");
    CHECK_FALSE(catalog.lookup("anthropic", "claude-opus-4"));
    CHECK_FALSE(catalog.lookup("anthropic", "claude-opus"));
    CHECK_FALSE(catalog.lookup("anthropic", "claude-opus-4-5-extra"));
    // A dated name the catalog lacks is not $0: its base, or an error.
    auto dated = estimate(catalog, "anthropic", "claude-opus-4-5-20991231", {1000000, 0, 0, 0, 0, 0});
    REQUIRE(dated.ok());
    CHECK(dated->match == MatchKind::kDatedFallback);
    CHECK(near_usd(dated->total_usd, 5.0));
    auto unknown = estimate(catalog, "anthropic", "claude-opus-4-20991231", {1000000, 0, 0, 0, 0, 0});
    CHECK_FALSE(unknown.ok());
  }

  TEST_CASE("token rules") {
    CHECK(validate_tokens({100, 60, 40, 0, 10, 10}).ok());
    Status s = validate_tokens({100, 60, 41, 0, 0, 0});
    CHECK(s.code() == agentburn::Status::Code::kInvalid);
    CHECK(s.message().find("cached + cache_write (101) must not exceed input (100)") == 0);
    s = validate_tokens({0, 0, 0, 0, 10, 11});
    CHECK(s.message().find("reasoning (11) must not exceed output (10)") == 0);
    s = validate_tokens({10, 0, 5, 6, 0, 0});
    CHECK(s.message().find("cache_write_1h (6) must not exceed cache_write (5)") == 0);
    s = validate_tokens({2000000000000ull, 0, 0, 0, 0, 0});
    CHECK(s.message().find("input: must be at most 10^12") == 0);
    CHECK_FALSE(estimate(Catalog::builtin(), "openai", "gpt-4o", {10, 11, 0, 0, 0, 0}).ok());
  }

  TEST_CASE("unknown models name the nearest") {
    auto c = estimate(Catalog::builtin(), "anthropic", "claude-opus-4", {1, 0, 0, 0, 1, 0});
    REQUIRE_FALSE(c.ok());
    const std::string& m = c.status().message();
    CHECK(m.find("model \"claude-opus-4\" (provider \"anthropic\") is not in the price catalog "
                 "(2026-08-01); nearest: ") == 0);
    CHECK(m.find("/claude-opus-4") != std::string::npos);
    CHECK(m.find("price_overrides_json") != std::string::npos);
    auto near = Catalog::builtin().nearest("gpt-4o-mini-2099", 3);
    REQUIRE(near.size() == 3);
    CHECK(near[0].rfind("gpt-4o-mini", 0) == 0);
  }
}

TEST_SUITE("pricing.lookup") {
  TEST_CASE("undated names") {
    CHECK(undated_name("gpt-4o-2024-11-20") == "gpt-4o");
    CHECK(undated_name("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5");
    CHECK(undated_name("claude-sonnet-4-5@20250929") == "claude-sonnet-4-5");
    CHECK(undated_name("claude-3-7-sonnet-latest") == "claude-3-7-sonnet");
    CHECK(undated_name("gpt-4-0613") == "gpt-4-0613");          // a version, not a date
    CHECK(undated_name("model-20251399") == "model-20251399");  // month 13
    CHECK(undated_name("model-19991231") == "model-19991231");
    CHECK(undated_name("2024-11-20") == "2024-11-20");
    CHECK(undated_name("x-12345678") == "x-12345678");
  }

  TEST_CASE("the alias table") {
    auto one = [](const char* p) {
      auto x = provider_prefixes(p);
      return x.count ? std::string(x.names[0]) : std::string();
    };
    CHECK(one("google") == "gemini");
    CHECK(one("gcp.gemini") == "gemini");
    CHECK(one("GEMINI") == "gemini");
    CHECK(one("gcp.vertex_ai") == "vertex_ai");
    CHECK(one("vertex") == "vertex_ai");
    CHECK(one("aws.bedrock") == "bedrock");
    CHECK(one("az.ai.openai") == "azure");
    CHECK(one("x-ai") == "xai");
    CHECK(one("mistral_ai") == "mistral");
    CHECK(one("nebius") == "nebius");  // not in the table: its own prefix
    CHECK_FALSE(provider_prefixes("nebius").known);
    CHECK(provider_prefixes("").count == 0);
    CHECK(provider_prefixes("gcp.gen_ai").count == 2);
  }

  TEST_CASE("the provider hint prefers its own entry") {
    const Catalog& c = Catalog::builtin();
    CHECK(c.lookup("gemini", "gemini-2.5-pro").entry->key == "gemini/gemini-2.5-pro");
    CHECK(c.lookup("vertex_ai", "gemini-2.5-pro").entry->key == "gemini-2.5-pro");
    CHECK(c.lookup("", "gemini-2.5-pro").entry->key == "gemini-2.5-pro");
    CHECK(c.lookup("azure", "gpt-4o").entry->key == "azure/gpt-4o");
    CHECK(c.lookup("openai", "gpt-4o").entry->key == "gpt-4o");
    CHECK(c.lookup("bogus provider", "gpt-4o").entry->key == "gpt-4o");
    CHECK(c.lookup("vertex_ai", "claude-opus-4").entry->key == "vertex_ai/claude-opus-4");
    CHECK(c.find("GPT-4O") == c.find("gpt-4o"));
    CHECK(c.find("gpt-4o") != nullptr);
    CHECK_FALSE(c.lookup("openai", std::string(600, 'a')));
  }
}
