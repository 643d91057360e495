// What a call's tokens cost, from a catalog entry's rates.
//
// Token counts follow the OpenTelemetry GenAI convention:
//   input        all input tokens, cache reads and cache writes included
//   cached       input tokens read from the prompt cache (part of input)
//   cache_write  input tokens written to the cache (part of input)
//   cache_write_1h  of cache_write, those written to Anthropic's 1-hour cache (part of it)
//   output       all output tokens, reasoning included
//   reasoning    reasoning ("thinking") tokens (part of output)
// Anthropic reports its input without the cache; usage.hpp converts every provider's counts
// to this form.
//
// Cost, in USD, with rates per million tokens:
//     (input - cached - cache_write) x input
//   + cached                         x cache_read      (missing: the input rate)
//   + (cache_write - cache_write_1h) x cache_write     (missing: the input rate)
//   + cache_write_1h                 x cache_write_1h  (missing: the cache_write rate)
//   + (output - reasoning)           x output
//   + reasoning                      x reasoning       (missing: the output rate)
//
// Which rates: start from the standard base rates; when the input is more than a tier's
// threshold, the highest such tier's rates replace them for every token of the request (as
// the providers bill long contexts); with a service tier (batch, flex, priority) the entry
// prices, its base rates and then its own tier replace those in turn. A tier lists only the
// rates it changes. A service tier the entry does not price leaves the standard rates, and
// the result says so (service_tier_priced = false).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agentburn/status.hpp"
#include "pricing/catalog.hpp"

namespace agentburn::pricing {

struct Tokens {
  uint64_t input = 0;
  uint64_t cached = 0;
  uint64_t cache_write = 0;
  uint64_t cache_write_1h = 0;
  uint64_t output = 0;
  uint64_t reasoning = 0;
};

// Refuses counts that break the convention, naming the rule, e.g.
// "cached + cache_write (1200) must not exceed input (1000): input counts every input token,
// cache reads and writes included". Also refuses counts above 10^12.
Status validate_tokens(const Tokens& tokens);

// USD per kind of token; they add up to Cost::total_usd.
struct CostBreakdown {
  double input = 0;           // uncached input
  double cached = 0;          // cache reads
  double cache_write = 0;     // cache writes, 1-hour ones included
  double output = 0;          // output other than reasoning
  double reasoning = 0;
};

struct Cost {
  double total_usd = 0;
  CostBreakdown usd;
  Rates rates;                    // the rates used, every one present (fallbacks applied)
  uint64_t tier_above_tokens = 0; // the long-context tier applied; 0 for none
  ServiceTier service_tier = ServiceTier::kStandard;  // as asked
  bool service_tier_priced = true;  // false: asked for a tier the entry does not price
  std::string key;                // the catalog entry, e.g. "claude-sonnet-4-5"
  MatchKind match = MatchKind::kNone;  // how the model matched it (price() leaves kNone)
  std::string catalog_version;    // e.g. "2026-08-01" (price() leaves it empty)
};

// The effective rates for `input_tokens` of input at `service` (see the top of this file),
// with every fallback applied. Sets *tier_above (0 for none) and *service_priced if given.
Rates effective_rates(const Entry& entry, uint64_t input_tokens, ServiceTier service,
                      uint64_t* tier_above = nullptr, bool* service_priced = nullptr);

// Prices validated tokens with one entry. Refuses what validate_tokens refuses.
Result<Cost> price(const Entry& entry, const Tokens& tokens,
                   ServiceTier service = ServiceTier::kStandard);

// Looks the model up and prices it: the Cost carries the key, the match kind and the
// catalog's version. An unknown model is kInvalid with the nearest catalog names, e.g.
// `model "gpt-4o-mini-2099" (provider "openai") is not in the price catalog (2026-08-01);
// nearest: gpt-4o-mini, ...; give its price in price_overrides_json`.
Result<Cost> estimate(const Catalog& catalog, std::string_view provider, std::string_view model,
                      const Tokens& tokens, ServiceTier service = ServiceTier::kStandard);

}  // namespace agentburn::pricing
