// The catalog's format, the built-in copy, overrides, and the input they must refuse.
#include <doctest/doctest.h>

#include <string>

#include "pricing/catalog.hpp"
#include "pricing/cost.hpp"

using namespace agentburn::pricing;
using agentburn::Status;

namespace {

std::string catalog_with(const std::string& models) {
  return R"({"format":"agentburn-prices/1","version":"2099-01-01","unit":"USD per 1,000,000 tokens","models":)" +
         models + "}";
}

std::string override_error(const std::string& json) {
  Catalog c = Catalog::builtin();
  const size_t before = c.size();
  Status s = c.apply_overrides(json);
  CHECK(c.size() == before);  // all or nothing
  CHECK(c.find("good-one") == nullptr);
  return s.ok() ? "(accepted)" : s.message();
}

std::string catalog_error(const std::string& text) {
  Catalog c;
  REQUIRE(Catalog::parse(catalog_with(R"({"x":{"input":1,"output":2}})"), &c).ok());
  Status s = Catalog::parse(text, &c);
  CHECK(c.size() == 1);  // unchanged
  CHECK(c.find("x") != nullptr);
  return s.ok() ? "(accepted)" : s.message();
}

}  // namespace

TEST_SUITE("pricing.catalog") {
  TEST_CASE("the built-in catalog") {
    const Catalog& c = Catalog::builtin();
    CHECK(&c == &Catalog::builtin());
    CHECK(c.size() > 2000);
    CHECK(c.version() == "2026-08-01");
    const Entry* e = c.find("claude-sonnet-4-5");
    REQUIRE(e);
    CHECK(e->provider == "anthropic");
    const Rates& r = e->standard.base;
    CHECK(r.get(RateKind::kInput) == 3);
    CHECK(r.get(RateKind::kCacheRead) == 0.3);
    CHECK(r.get(RateKind::kCacheWrite) == 3.75);
    CHECK(r.get(RateKind::kCacheWrite1h) == 6);
    CHECK(r.get(RateKind::kOutput) == 15);
    REQUIRE(e->standard.tiers.size() == 1);
    CHECK(e->standard.tiers[0].above_tokens == 200000);
    CHECK(e->standard.tiers[0].rates.get(RateKind::kOutput) == 22.5);
    CHECK(e->standard.tier_for(200000) == nullptr);
    CHECK(e->standard.tier_for(200001) == &e->standard.tiers[0]);
    const Entry* g = c.find("gpt-4o");
    REQUIRE(g);
    REQUIRE(g->service(ServiceTier::kBatch));
    CHECK(g->service(ServiceTier::kBatch)->base.get(RateKind::kInput) == 1.25);
    CHECK(g->service(ServiceTier::kFlex) == nullptr);
    CHECK(g->service(ServiceTier::kStandard) == &g->standard);
    // The wandb/ entries of the 2026-08-01 source are in another unit and are left out.
    CHECK(c.find("wandb/openai/gpt-oss-120b") == nullptr);
  }

  TEST_CASE("a newer catalog of the same format") {
    Catalog c;
    Status s = Catalog::parse(catalog_with(
        R"({"m-1":{"provider":"p","input":1,"output":2,"tiers":[{"above":300000,"input":4},{"above":100000,"input":3}],)"
        R"("priority":{"input":5,"tiers":[{"above":100000,"output":9}]}}})"), &c);
    REQUIRE(s.ok());
    CHECK(c.version() == "2099-01-01");
    const Entry* e = c.find("M-1");
    REQUIRE(e);
    REQUIRE(e->standard.tiers.size() == 2);
    CHECK(e->standard.tiers[0].above_tokens == 100000);  // sorted
    uint64_t above = 0;
    Rates r = effective_rates(*e, 150000, ServiceTier::kPriority, &above);
    CHECK(r.get(RateKind::kInput) == 5);
    CHECK(r.get(RateKind::kOutput) == 9);
    CHECK(r.get(RateKind::kCacheRead) == 5);  // missing: the input rate
    CHECK(r.get(RateKind::kReasoning) == 9);  // missing: the output rate
    CHECK(above == 100000);
    CHECK(effective_rates(*e, 400000, ServiceTier::kStandard).get(RateKind::kInput) == 4);
  }

  TEST_CASE("overrides add and replace, all or nothing") {
    Catalog c = Catalog::builtin();
    const size_t n = c.size();
    Status s = c.apply_overrides(R"({
      "my-ft": {"provider": "openai", "input": 3, "output": 12, "cache_read": 1.5},
      "llama-local": {"input": 0, "output": 0},
      "GPT-4o": {"provider": "openai", "input": 2, "output": 8}})");
    REQUIRE(s.ok());
    CHECK(c.size() == n + 2);
    CHECK(c.version() == "2026-08-01");
    // 500k x 3 + 500k x 1.5 + 100k x 12
    auto ft = estimate(c, "openai", "my-ft", {1000000, 500000, 0, 0, 100000, 0});
    REQUIRE(ft.ok());
    CHECK(ft->total_usd == doctest::Approx(3.45).epsilon(1e-12));
    auto local = estimate(c, "", "llama-local", {5000000, 0, 0, 0, 5000000, 0});
    REQUIRE(local.ok());  // known, and free on purpose
    CHECK(local->total_usd == 0);
    CHECK(local->match == MatchKind::kExact);
    // A negotiated rate replaces the entry whole: no cache price left, 1M x 2 + 1M x 8.
    auto neg = estimate(c, "openai", "gpt-4o", {1000000, 0, 0, 0, 1000000, 0});
    REQUIRE(neg.ok());
    CHECK(neg->total_usd == doctest::Approx(10.0).epsilon(1e-12));
    CHECK(neg->key == "GPT-4o");
    CHECK(c.find("gpt-4o")->services[0] == std::nullopt);
    // The built-in catalog is untouched.
    CHECK(Catalog::builtin().find("my-ft") == nullptr);
    CHECK(Catalog::builtin().find("gpt-4o")->standard.base.get(RateKind::kInput) == 2.5);
  }

  TEST_CASE("bad overrides are refused whole, naming the entry and the field") {
    CHECK(override_error(R"({"good-one":{"input":1,"output":1},"my-ft":{"input":-1,"output":2}})") ==
          R"(price_overrides_json: "my-ft": input: must be a finite number >= 0, got -1)");
    CHECK(override_error(R"({"good-one":{"input":1,"output":1},"my-ft":{"input":"3","output":2}})") ==
          R"(price_overrides_json: "my-ft": input: must be a finite number >= 0, got "3")");
    CHECK(override_error(R"({"m":{"input":1,"output":true}})") ==
          R"(price_overrides_json: "m": output: must be a finite number >= 0, got true)");
    CHECK(override_error(R"({"m":{"input":1,"output":null}})") ==
          R"(price_overrides_json: "m": output: must be a finite number >= 0, got null)");
    CHECK(override_error(R"({"m":{"input":540000,"output":1}})") ==
          R"(price_overrides_json: "m": input: must be at most 10000 (USD per million tokens), got 540000)");
    CHECK(override_error(R"({"m":{"input":1e400,"output":1}})").find("price_overrides_json: ") == 0);
    CHECK(override_error(R"({"m":{"input":1}})") ==
          R"(price_overrides_json: "m": output: is required (USD per million tokens; 0 for a free model))");
    CHECK(override_error(R"({"m":{"input":1,"output":1,"cache_reads":1}})").find(
              R"(price_overrides_json: "m": cache_reads: is not a field of a model)") == 0);
    CHECK(override_error(R"({"m":{"input":1,"output":1,"tiers":[{"input":2}]}})") ==
          R"(price_overrides_json: "m": tiers[0]: needs "above", the input size in tokens beyond which it applies)");
    CHECK(override_error(R"({"m":{"input":1,"output":1,"tiers":[{"above":-5,"input":2}]}})").find(
              R"("m": tiers[0].above: must be a whole number of tokens)") != std::string::npos);
    CHECK(override_error(R"({"m":{"input":1,"output":1,"tiers":[{"above":1.5,"input":2}]}})").find(
              "tiers[0].above: must be a whole number") != std::string::npos);
    CHECK(override_error(R"({"m":{"input":1,"output":1,"tiers":[{"above":9,"input":2},{"above":9,"input":3}]}})")
              .find("tiers[1]: a second tier above 9 tokens") != std::string::npos);
    CHECK(override_error(R"({"m":{"input":1,"output":1,"priority":{"input":-2}}})") ==
          R"(price_overrides_json: "m": priority.input: must be a finite number >= 0, got -2)");
    CHECK(override_error(R"({"m":{"input":1,"output":1,"priority":{"provider":"x"}}})").find(
              "priority.provider: is not a field of a service tier") != std::string::npos);
    CHECK(override_error(R"({"m":{"input":1,"output":1,"provider":7}})").find(
              R"("m": provider: must be a string)") != std::string::npos);
    CHECK(override_error(R"({"m":[1,2]})") ==
          R"(price_overrides_json: "m": must be an object of rates, got [1,2])");
    CHECK(override_error(R"({"":{"input":1,"output":1}})").find("a model name must be 1 to 256") !=
          std::string::npos);
    CHECK(override_error(R"({"A":{"input":1,"output":1},"a":{"input":1,"output":1}})").find(
              "a second entry with this name") != std::string::npos);
    CHECK(override_error(R"({"m":{"input":1,"output":1},"m":{"input":2,"output":2}})").find(
              "appears twice") != std::string::npos);
    CHECK(override_error("[1]").find("price_overrides_json: must be a JSON object of models") == 0);
    CHECK(override_error("").find("price_overrides_json: the text is not valid JSON") == 0);
    CHECK(override_error("{\"m\": {\"input\": NaN, \"output\": 1}}").find("is not valid JSON") !=
          std::string::npos);
    CHECK(override_error("{\"m\":{\"input\":1,\"output\":1}} trailing").find("is not valid JSON") !=
          std::string::npos);
    CHECK(override_error(std::string(10000, '[') + std::string(10000, ']')) ==
          "price_overrides_json: the text nests more than 8 levels deep");
    CHECK(override_error(R"({"m":{"input":1,"output":1,"tiers":[{"above":1,"input":{"a":{"b":{"c":{"d":{}}}}}}]}})")
              .find("nests more than 8 levels") != std::string::npos);
    Catalog c;
    Status s = c.apply_overrides(R"({"m":{"input":-1,"output":1}})", "options.price_overrides");
    CHECK(s.message().find("options.price_overrides: \"m\": input:") == 0);
  }

  TEST_CASE("garbage catalogs are refused and leave the catalog as it was") {
    CHECK(catalog_error("garbage").find("catalog: the text is not valid JSON") == 0);
    CHECK(catalog_error("\xff\xfe{}").find("catalog: the text is not valid JSON") == 0);
    CHECK(catalog_error("42") == "catalog: must be a JSON object, got 42");
    CHECK(catalog_error("{}") == "catalog: format: is required");
    CHECK(catalog_error(R"({"format":"agentburn-prices/2","version":"x","unit":"USD per 1,000,000 tokens","models":{}})") ==
          R"(catalog: format: must be "agentburn-prices/1", got "agentburn-prices/2")");
    CHECK(catalog_error(R"({"format":"agentburn-prices/1","version":"x","unit":"USD per token","models":{}})")
              .find("catalog: unit: must be") == 0);
    CHECK(catalog_error(R"({"format":"agentburn-prices/1","version":"x","unit":"USD per 1,000,000 tokens"})") ==
          "catalog: models: is required");
    CHECK(catalog_error(catalog_with(R"({"gpt-4o":{"input":-1,"output":10}})")) ==
          R"(catalog: "gpt-4o": input: must be a finite number >= 0, got -1)");
    CHECK(catalog_error(catalog_with(R"({"ok":{"input":1,"output":1},"bad":{"input":1,"output":"x"}})"))
              .find(R"(catalog: "bad": output:)") == 0);
    CHECK(catalog_error(catalog_with("[]")).find("catalog: models: must be an object") == 0);
    CHECK(catalog_error(std::string(17u << 20, ' ')).find("more than the 16 MiB limit") !=
          std::string::npos);
    std::string extra = catalog_with("{}");
    extra.insert(1, R"("extra":"x",)");
    CHECK(catalog_error(extra).find("is not a field of a catalog") != std::string::npos);
  }
}
