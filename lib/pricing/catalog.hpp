// The price catalog: what a model's tokens cost, and which catalog entry a (provider, model)
// pair names.
//
// A catalog is the text of data/prices.json ("agentburn-prices/1", described in
// data/README.md): rates in USD per million tokens, long-context tiers and batch/flex/priority
// service tiers. The library compiles one in (Catalog::builtin(), no file or network needed);
// a newer file of the same format can be parsed, and overrides add or replace entries
// (fine-tunes, negotiated rates, self-hosted models priced at $0 on purpose).
//
// Matching, case-insensitive, first hit wins (see lookup()):
//   1. exact names: for each catalog prefix of the caller's provider (provider_prefixes()),
//      "prefix/model" (so the hint prefers its own provider's entry when both exist); then
//      "model" as given; then, for a model written "provider/name" with a provider of the
//      alias table, that provider's "prefix/name" and the bare "name";
//   2. only when step 1 finds nothing: the same with a dated snapshot's undated base name
//      (undated_name(): "-2024-11-20", "-20241120", "@20250929", "-latest");
//   3. nothing else: no prefix or substring guessing ("claude-opus-4" never prices as
//      "claude-opus-4-5", nor the reverse).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/status.hpp"

namespace agentburn::pricing {

// The kinds of token a rate prices. Values index Rates::usd_per_million.
enum class RateKind : uint8_t {
  kInput = 0,        // input not read from or written to a cache
  kOutput = 1,       // output (reasoning included unless kReasoning is given)
  kCacheRead = 2,    // input read from the prompt cache
  kCacheWrite = 3,   // input written to the cache (Anthropic: the 5-minute cache)
  kCacheWrite1h = 4, // input written to the 1-hour cache
  kReasoning = 5     // reasoning (thinking) output
};
inline constexpr size_t kRateKinds = 6;
// The catalog's field name of a rate: "input", "output", "cache_read", "cache_write",
// "cache_write_1h", "reasoning".
const char* rate_name(RateKind kind);

// The largest rate accepted: USD 10,000 per million tokens (1 cent a token). Anything above
// is a unit mistake.
inline constexpr double kMaxRatePerMillion = 10000.0;

// A set of rates in USD per million tokens; a rate may be absent.
struct Rates {
  std::array<double, kRateKinds> usd_per_million{};
  uint8_t present = 0;  // bit (1 << kind) set when that rate is given

  bool has(RateKind k) const { return present & (1u << static_cast<unsigned>(k)); }
  double get(RateKind k) const { return usd_per_million[static_cast<size_t>(k)]; }
  void set(RateKind k, double v) {
    usd_per_million[static_cast<size_t>(k)] = v;
    present |= static_cast<uint8_t>(1u << static_cast<unsigned>(k));
  }
  // Takes every rate `other` gives, keeps the others.
  void overlay(const Rates& other);
};

// Long-context prices: apply to the whole request when its input is more than above_tokens.
struct Tier {
  uint64_t above_tokens = 0;
  Rates rates;  // only the rates this tier changes
};

// One service tier's prices: base rates and tiers ascending by threshold (no duplicates).
struct PriceTable {
  Rates base;
  std::vector<Tier> tiers;
  // The highest tier whose threshold `input_tokens` exceeds; nullptr when none.
  const Tier* tier_for(uint64_t input_tokens) const;
};

enum class ServiceTier : uint8_t { kStandard = 0, kBatch = 1, kFlex = 2, kPriority = 3 };
// "standard", "batch", "flex", "priority".
const char* service_tier_name(ServiceTier tier);
// Accepts those names (any case) and the providers' own words: "default"/"auto" (standard),
// "batches". False for anything else.
bool parse_service_tier(std::string_view name, ServiceTier* out);

struct Entry {
  std::string key;       // as the catalog spells it, e.g. "gemini/gemini-2.5-pro"
  std::string provider;  // the catalog's provider name, e.g. "vertex_ai-language-models"; may be empty
  PriceTable standard;   // input and output are always present here
  std::array<std::optional<PriceTable>, 3> services;  // batch, flex, priority, when priced

  // kStandard: &standard; the others: the service tier's table, or nullptr when not priced.
  const PriceTable* service(ServiceTier tier) const;
};

enum class MatchKind : uint8_t {
  kNone = 0,
  kExact,           // the model as given is a catalog key
  kProviderPrefix,  // found after adding the provider's prefix, or removing the model's own
  kDatedFallback    // a dated snapshot priced as its undated base name
};
// "none", "exact", "provider_prefix", "dated_fallback".
const char* match_kind_name(MatchKind kind);

struct Match {
  const Entry* entry = nullptr;  // points into the catalog: valid until it changes or dies
  MatchKind kind = MatchKind::kNone;
  explicit operator bool() const { return entry != nullptr; }
};

// The catalog prefixes of a provider name as callers write it: "google", "gemini" and
// "gcp.gemini" -> "gemini"; "vertex", "gcp.vertex_ai" -> "vertex_ai"; "aws.bedrock" ->
// "bedrock"; "x-ai" -> "xai"; ... (the one alias table, in lookup.cc). A name the table does
// not know is its own prefix (the catalog has "nebius/...", "cerebras/...", ...).
struct ProviderPrefixes {
  std::array<std::string_view, 2> names{};
  size_t count = 0;
  bool known = false;  // the name is in the alias table
  const std::string_view* begin() const { return names.data(); }
  const std::string_view* end() const { return names.data() + count; }
};
ProviderPrefixes provider_prefixes(std::string_view provider);

// The undated base of a dated snapshot name, or `name` itself when it carries no date:
// "gpt-4o-2024-11-20" -> "gpt-4o", "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5",
// "claude-sonnet-4-5@20250929" -> "claude-sonnet-4-5", "claude-3-7-sonnet-latest" ->
// "claude-3-7-sonnet". Dates must look like dates (20YY, month 01-12, day 01-31);
// four-digit suffixes such as "-0613" are versions, not dates, and are kept.
std::string_view undated_name(std::string_view name);

class Catalog {
 public:
  Catalog() = default;  // empty: matches nothing

  // The catalog compiled into the library (data/prices.json at build time), parsed on first
  // use, once, thread-safe. Never fails (the build checks the file).
  static const Catalog& builtin();

  // Parses a whole catalog text in the data/prices.json format. All or nothing: on any error
  // `out` is left unchanged and the Status (kInvalid) names the entry and the field, e.g.
  // `catalog: "gpt-4o": input: must be a finite number >= 0, got -1`.
  static Status parse(std::string_view text, Catalog* out);

  // Adds or replaces entries from a JSON object of entries in the catalog's model format:
  //   {"my-ft": {"provider": "openai", "input": 3, "output": 12, "cache_read": 1.5},
  //    "llama-local": {"input": 0, "output": 0}}
  // A replaced entry is replaced whole (not merged). Keys match case-insensitively. All or
  // nothing: on error the catalog is unchanged and the message starts with `what`, e.g.
  // `price_overrides_json: "my-ft": input: must be a finite number >= 0, got -1`.
  // Invalidates the Match pointers of this catalog.
  Status apply_overrides(std::string_view json_text,
                         std::string_view what = "price_overrides_json");

  // The entry `model` names, given the provider the caller uses (may be empty); see the top
  // of this file. No allocation; well under a microsecond.
  Match lookup(std::string_view provider, std::string_view model) const;

  // The entry whose key is exactly `key` (case-insensitive), or nullptr.
  const Entry* find(std::string_view key) const;

  // Up to n catalog keys nearest to `model` by edit distance (on the whole key and on the
  // part after its provider prefix), nearest first: for "unknown model" messages.
  std::vector<std::string> nearest(std::string_view model, size_t n) const;

  // The catalog's date, e.g. "2026-08-01" (overrides do not change it).
  const std::string& version() const { return version_; }
  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  friend struct CatalogBuilder;
  // Finds the key `a + "/" + b` (just `b` when `a` is empty), case-insensitively.
  const Entry* find_joined(std::string_view a, std::string_view b) const;
  void rebuild_index();

  std::string version_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> hashes_;  // per entry: hash of its lowercased key
  std::vector<uint32_t> slots_;   // open addressing: entry index + 1, 0 = empty
};

}  // namespace agentburn::pricing
