// agentburn price and agentburn prices search: the compiled-in price catalog, offline.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "output.hpp"
#include "pricing/catalog.hpp"
#include "pricing/cost.hpp"

namespace agentburn::cli {

namespace {

using pricing::RateKind;

struct PriceOptions {
  Common common;
  std::string model, provider;
  std::uint64_t input = 0, output = 0, cached = 0, cache_write = 0, reasoning = 0;
};

struct SearchOptions {
  Common common;
  std::string text;
  std::size_t limit = 50;
};

std::string money(double usd_value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.6g", usd_value);
  return buf;
}

nlohmann::json rates_json(const pricing::Rates& r) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t k = 0; k < pricing::kRateKinds; ++k) {
    auto kind = static_cast<RateKind>(k);
    if (r.has(kind)) j[pricing::rate_name(kind)] = r.get(kind);
  }
  return j;
}

std::string rates_text(const pricing::Rates& r) {
  std::string out;
  for (std::size_t k = 0; k < pricing::kRateKinds; ++k) {
    auto kind = static_cast<RateKind>(k);
    if (!r.has(kind)) continue;
    if (!out.empty()) out += ", ";
    out += std::string(pricing::rate_name(kind)) + " " + money(r.get(kind));
  }
  return out;
}

int run_price(const PriceOptions& o) {
  const pricing::Catalog& catalog = pricing::Catalog::builtin();
  pricing::Tokens t;
  t.input = o.input, t.output = o.output, t.cached = o.cached, t.cache_write = o.cache_write;
  t.reasoning = o.reasoning;
  Status valid = pricing::validate_tokens(t);
  if (!valid.ok()) return fail(kUsage, valid.message());
  auto cost = pricing::estimate(catalog, o.provider, o.model, t);
  if (!cost.ok()) return fail(kFailure, cost.status().message());
  const pricing::Cost& c = cost.value();
  const double kinds[] = {c.usd.input, c.usd.cached, c.usd.cache_write, c.usd.output,
                          c.usd.reasoning};
  const char* names[] = {"input (uncached)", "cache reads", "cache writes", "output", "reasoning"};
  const std::uint64_t tokens[] = {t.input - t.cached - t.cache_write, t.cached, t.cache_write,
                                  t.output - t.reasoning, t.reasoning};
  if (o.common.json) {
    nlohmann::json j = {{"model", o.model},
                        {"provider", o.provider},
                        {"priceKey", c.key},
                        {"match", pricing::match_kind_name(c.match)},
                        {"pricesVersion", c.catalog_version},
                        {"costUsd", c.total_usd},
                        {"ratesPerMillion", rates_json(c.rates)},
                        {"tierAboveTokens", c.tier_above_tokens},
                        {"breakdown",
                         {{"input", c.usd.input},
                          {"cached", c.usd.cached},
                          {"cacheWrite", c.usd.cache_write},
                          {"output", c.usd.output},
                          {"reasoning", c.usd.reasoning}}}};
    std::printf("%s\n", j.dump(2).c_str());
    return kOk;
  }
  std::printf("%s: catalog entry \"%s\" (%s match), prices of %s\n", o.model.c_str(), c.key.c_str(),
              pricing::match_kind_name(c.match), c.catalog_version.c_str());
  std::printf("rates per million tokens: %s\n", rates_text(c.rates).c_str());
  if (c.tier_above_tokens) {
    std::printf("long-context tier: input above %s tokens\n", count(c.tier_above_tokens).c_str());
  }
  Table table({"tokens", "count", "cost"}, {false, true, true});
  for (int i = 0; i < 5; ++i) {
    if (tokens[i]) table.add({names[i], count(tokens[i]), money(kinds[i])});
  }
  table.add_footer({"total", count(t.input + t.output), money(c.total_usd)});
  table.print(stdout);
  return kOk;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

int run_search(const SearchOptions& o) {
  const pricing::Catalog& catalog = pricing::Catalog::builtin();
  const std::string needle = lower(o.text);
  std::vector<const pricing::Entry*> hits;
  for (const auto& e : catalog.entries()) {
    if (lower(e.key).find(needle) != std::string::npos) hits.push_back(&e);
  }
  std::sort(hits.begin(), hits.end(),
            [](const pricing::Entry* a, const pricing::Entry* b) { return a->key < b->key; });
  if (hits.empty()) {
    std::string near;
    for (const auto& n : catalog.nearest(o.text, 5)) near += (near.empty() ? "" : ", ") + n;
    return fail(kFailure, "no catalog entry contains \"" + o.text + "\" (catalog " +
                              catalog.version() + "); nearest: " + near);
  }
  const std::size_t shown = o.limit ? std::min(o.limit, hits.size()) : hits.size();
  if (o.common.json) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < shown; ++i) {
      out.push_back({{"key", hits[i]->key},
                     {"provider", hits[i]->provider},
                     {"ratesPerMillion", rates_json(hits[i]->standard.base)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return kOk;
  }
  Table t({"model", "provider", "input", "output", "cache read", "cache write"},
          {false, false, true, true, true, true});
  auto rate = [](const pricing::Rates& r, RateKind k) { return r.has(k) ? money(r.get(k)) : "-"; };
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& r = hits[i]->standard.base;
    t.add({hits[i]->key, hits[i]->provider, rate(r, RateKind::kInput), rate(r, RateKind::kOutput),
           rate(r, RateKind::kCacheRead), rate(r, RateKind::kCacheWrite)});
  }
  t.print(stdout);
  std::printf("%zu of %zu entries; USD per million tokens, catalog %s\n", shown, hits.size(),
              catalog.version().c_str());
  return kOk;
}

}  // namespace

void add_price(CLI::App& app, Command* run) {
  auto o = std::make_shared<PriceOptions>();
  CLI::App* cmd = add_command(app, run, "price",
                              "What a call costs by the compiled-in price catalog, with its "
                              "breakdown and the catalog entry that matched",
                              o, run_price);
  cmd->add_option("model", o->model, "The model, as the provider names it")->required();
  cmd->add_option("--provider", o->provider, "The provider (openai, anthropic, google, ...)");
  cmd->add_option("--input", o->input, "Input tokens, cache reads and writes included");
  cmd->add_option("--output", o->output, "Output tokens, reasoning included");
  cmd->add_option("--cached", o->cached, "Input tokens read from the prompt cache");
  cmd->add_option("--cache-write", o->cache_write, "Input tokens written to the cache");
  cmd->add_option("--reasoning", o->reasoning, "Reasoning tokens (part of --output)");
  set_examples(cmd,
               "  agentburn price gpt-4o --input 12000 --output 800\n"
               "  agentburn price claude-sonnet-4-5 --provider anthropic --input 50000 "
               "--cached 40000 --output 2000\n");

  auto s = std::make_shared<SearchOptions>();
  CLI::App* prices = app.add_subcommand("prices", "The price catalog");
  prices->require_subcommand(1);
  CLI::App* search = add_command(*prices, run, "search", "Catalog entries whose name contains TEXT",
                                 s, run_search);
  search->add_option("text", s->text, "Part of a model name (case-insensitive)")->required();
  search->add_option("--limit", s->limit, "At most this many entries (default 50; 0: all)");
  set_examples(search,
               "  agentburn prices search sonnet\n  agentburn prices search gpt-4o --json\n");
}

}  // namespace agentburn::cli
