#include "pricing/cost.hpp"

#include <nlohmann/json.hpp>

namespace agentburn::pricing {
namespace {

constexpr uint64_t kMaxTokens = 1000000000000ull;  // 10^12

std::string json_quoted(std::string_view s) {
  return nlohmann::json(std::string(s.substr(0, 200)))
      .dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Status validate_tokens(const Tokens& t) {
  const std::pair<const char*, uint64_t> counts[] = {
      {"input", t.input},   {"cached", t.cached}, {"cache_write", t.cache_write},
      {"cache_write_1h", t.cache_write_1h}, {"output", t.output}, {"reasoning", t.reasoning}};
  for (const auto& [name, value] : counts)
    if (value > kMaxTokens)
      return Status::invalid(std::string(name) + ": must be at most 10^12 tokens, got " +
                             std::to_string(value));
  if (t.cached + t.cache_write > t.input)
    return Status::invalid("cached + cache_write (" + std::to_string(t.cached + t.cache_write) +
                           ") must not exceed input (" + std::to_string(t.input) +
                           "): input counts every input token, cache reads and writes included");
  if (t.cache_write_1h > t.cache_write)
    return Status::invalid("cache_write_1h (" + std::to_string(t.cache_write_1h) +
                           ") must not exceed cache_write (" + std::to_string(t.cache_write) +
                           "): cache_write counts every cache write, 1-hour ones included");
  if (t.reasoning > t.output)
    return Status::invalid("reasoning (" + std::to_string(t.reasoning) +
                           ") must not exceed output (" + std::to_string(t.output) +
                           "): output counts every output token, reasoning included");
  return Status();
}

Rates effective_rates(const Entry& entry, uint64_t input_tokens, ServiceTier service,
                      uint64_t* tier_above, bool* service_priced) {
  Rates r = entry.standard.base;
  uint64_t above = 0;
  if (const Tier* t = entry.standard.tier_for(input_tokens)) {
    r.overlay(t->rates);
    above = t->above_tokens;
  }
  bool priced = true;
  if (service != ServiceTier::kStandard) {
    if (const PriceTable* s = entry.service(service)) {
      r.overlay(s->base);
      if (const Tier* t = s->tier_for(input_tokens)) {
        r.overlay(t->rates);
        if (t->above_tokens > above) above = t->above_tokens;
      }
    } else {
      priced = false;
    }
  }
  if (!r.has(RateKind::kCacheRead)) r.set(RateKind::kCacheRead, r.get(RateKind::kInput));
  if (!r.has(RateKind::kCacheWrite)) r.set(RateKind::kCacheWrite, r.get(RateKind::kInput));
  if (!r.has(RateKind::kCacheWrite1h))
    r.set(RateKind::kCacheWrite1h, r.get(RateKind::kCacheWrite));
  if (!r.has(RateKind::kReasoning)) r.set(RateKind::kReasoning, r.get(RateKind::kOutput));
  if (tier_above) *tier_above = above;
  if (service_priced) *service_priced = priced;
  return r;
}

Result<Cost> price(const Entry& entry, const Tokens& t, ServiceTier service) {
  if (Status s = validate_tokens(t); !s.ok()) return s;
  Cost c;
  c.rates = effective_rates(entry, t.input, service, &c.tier_above_tokens, &c.service_tier_priced);
  c.service_tier = service;
  c.key = entry.key;
  const Rates& r = c.rates;
  auto usd = [](uint64_t tokens, double per_million) {
    return static_cast<double>(tokens) * per_million / 1e6;
  };
  c.usd.input = usd(t.input - t.cached - t.cache_write, r.get(RateKind::kInput));
  c.usd.cached = usd(t.cached, r.get(RateKind::kCacheRead));
  c.usd.cache_write = usd(t.cache_write - t.cache_write_1h, r.get(RateKind::kCacheWrite)) +
                      usd(t.cache_write_1h, r.get(RateKind::kCacheWrite1h));
  c.usd.output = usd(t.output - t.reasoning, r.get(RateKind::kOutput));
  c.usd.reasoning = usd(t.reasoning, r.get(RateKind::kReasoning));
  c.total_usd = c.usd.input + c.usd.cached + c.usd.cache_write + c.usd.output + c.usd.reasoning;
  return c;
}

Result<Cost> estimate(const Catalog& catalog, std::string_view provider, std::string_view model,
                      const Tokens& tokens, ServiceTier service) {
  const Match m = catalog.lookup(provider, model);
  if (!m) {
    std::string msg = "model " + json_quoted(model);
    if (!provider.empty()) msg += " (provider " + json_quoted(provider) + ")";
    msg += " is not in the price catalog (" + catalog.version() + ")";
    const auto near = catalog.nearest(model, 3);
    for (size_t i = 0; i < near.size(); ++i) msg += (i == 0 ? "; nearest: " : ", ") + near[i];
    msg += "; give its price in price_overrides_json";
    return Status::invalid(std::move(msg));
  }
  Result<Cost> c = price(*m.entry, tokens, service);
  if (!c.ok()) return c;
  c->match = m.kind;
  c->catalog_version = catalog.version();
  return c;
}

}  // namespace agentburn::pricing
