// Reading a catalog (data/prices.json's format) and price overrides: every value checked, the
// whole text or nothing.
#include "pricing/catalog.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <set>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "pricing/builtin_catalog.hpp"

namespace agentburn::pricing {
namespace {

using nlohmann::json;

constexpr size_t kMaxTextBytes = 16u << 20;  // 16 MiB
constexpr int kMaxDepth = 8;                 // the format nests 5 deep at most
constexpr size_t kMaxKeyBytes = 256;
constexpr uint64_t kMaxThreshold = 100000000;  // 100M tokens
constexpr const char* kFormat = "agentburn-prices/1";
constexpr const char* kUnit = "USD per 1,000,000 tokens";

constexpr const char* kRateNames[kRateKinds] = {"input",       "output",         "cache_read",
                                                "cache_write", "cache_write_1h", "reasoning"};
constexpr const char* kServiceNames[] = {"batch", "flex", "priority"};

struct Refusal {
  std::string message;
};

// A short, escaped rendering of a JSON value for messages.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}
std::string json_quoted(std::string_view key) {
  return shown(json(std::string(key.substr(0, 80))));
}

// Parses JSON refusing more than kMaxDepth levels and duplicate keys; throws Refusal.
json parse_guarded(std::string_view text) {
  if (text.size() > kMaxTextBytes)
    throw Refusal{"is " + std::to_string(text.size()) + " bytes, more than the 16 MiB limit"};
  std::vector<std::unordered_set<std::string>> keys;
  auto callback = [&keys](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxDepth)
          throw Refusal{"nests more than " + std::to_string(kMaxDepth) + " levels deep"};
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second)
          throw Refusal{"the key " + shown(parsed) + " appears twice in one object"};
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    std::string what = e.what();
    const size_t close = what.find("] ");
    throw Refusal{"is not valid JSON: " + (close == std::string::npos ? what : what.substr(close + 2))};
  }
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

// Reads one model entry; `where` is `what: "key": ` for messages.
class EntryReader {
 public:
  explicit EntryReader(std::string where) : where_(std::move(where)) {}

  void read(const json& v, Entry* out) {
    if (!v.is_object()) fail("", "must be an object of rates, got " + shown(v));
    read_table(v, &out->standard, "", true, out);
    for (RateKind k : {RateKind::kInput, RateKind::kOutput})
      if (!out->standard.base.has(k))
        fail(rate_name(k), "is required (USD per million tokens; 0 for a free model)");
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Refusal{where_ + (field.empty() ? "" : field + ": ") + why};
  }

  static int rate_index(const std::string& name) {
    for (size_t i = 0; i < kRateKinds; ++i)
      if (name == kRateNames[i]) return static_cast<int>(i);
    return -1;
  }

  double rate(const json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "must be a finite number >= 0, got " + shown(v));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) fail(field, "must be a finite number >= 0, got " + shown(v));
    if (d > kMaxRatePerMillion)
      fail(field, "must be at most 10000 (USD per million tokens), got " + shown(v));
    return d;
  }

  void read_tiers(const json& v, PriceTable* table, const std::string& path) {
    if (!v.is_array()) fail(path, "must be an array of tiers, got " + shown(v));
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string at = path + "[" + std::to_string(i) + "]";
      const json& t = v[i];
      if (!t.is_object()) fail(at, "must be an object like {\"above\": 200000, \"input\": 6}");
      Tier tier;
      bool has_above = false;
      for (auto it = t.begin(); it != t.end(); ++it) {
        const std::string field = at + "." + it.key();
        if (it.key() == "above") {
          const json& a = it.value();
          if (!a.is_number_integer() || (a.is_number_integer() && !a.is_number_unsigned()) ||
              a.get<uint64_t>() == 0 || a.get<uint64_t>() > kMaxThreshold)
            fail(field, "must be a whole number of tokens from 1 to 100000000, got " + shown(a));
          tier.above_tokens = a.get<uint64_t>();
          has_above = true;
        } else if (int k = rate_index(it.key()); k >= 0) {
          tier.rates.set(static_cast<RateKind>(k), rate(it.value(), field));
        } else {
          fail(field, "is not a field of a tier (above, input, output, cache_read, cache_write, "
                      "cache_write_1h, reasoning)");
        }
      }
      if (!has_above) fail(at, "needs \"above\", the input size in tokens beyond which it applies");
      if (tier.rates.present == 0) fail(at, "gives no rate");
      for (const Tier& other : table->tiers)
        if (other.above_tokens == tier.above_tokens)
          fail(at, "a second tier above " + std::to_string(tier.above_tokens) + " tokens");
      table->tiers.push_back(tier);
    }
    std::sort(table->tiers.begin(), table->tiers.end(),
              [](const Tier& a, const Tier& b) { return a.above_tokens < b.above_tokens; });
  }

  void read_table(const json& v, PriceTable* table, const std::string& path, bool top,
                  Entry* entry) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& name = it.key();
      const std::string field = path + name;
      if (int k = rate_index(name); k >= 0) {
        table->base.set(static_cast<RateKind>(k), rate(it.value(), field));
      } else if (name == "tiers") {
        read_tiers(it.value(), table, field);
      } else if (top && name == "provider") {
        if (!it.value().is_string() || it.value().get_ref<const std::string&>().size() > 128)
          fail(field, "must be a string of at most 128 bytes, got " + shown(it.value()));
        entry->provider = it.value().get<std::string>();
      } else if (int s = top ? service_index(name) : -1; s >= 0) {
        if (!it.value().is_object())
          fail(field, "must be an object of rates, got " + shown(it.value()));
        PriceTable service;
        read_table(it.value(), &service, field + ".", false, nullptr);
        if (service.base.present == 0 && service.tiers.empty()) fail(field, "gives no rate");
        entry->services[static_cast<size_t>(s)] = std::move(service);
      } else {
        fail(field, top ? "is not a field of a model (provider, input, output, cache_read, "
                          "cache_write, cache_write_1h, reasoning, tiers, batch, flex, priority)"
                        : "is not a field of a service tier (input, output, cache_read, "
                          "cache_write, cache_write_1h, reasoning, tiers)");
      }
    }
  }

  static int service_index(const std::string& name) {
    for (int i = 0; i < 3; ++i)
      if (name == kServiceNames[i]) return i;
    return -1;
  }

  std::string where_;
};

// Reads an object of entries into `out`, refusing bad keys and keys equal but for case.
void read_entries(const json& models, std::string_view what, std::vector<Entry>* out) {
  std::set<std::string> seen;
  out->reserve(models.size());
  for (auto it = models.begin(); it != models.end(); ++it) {
    const std::string& key = it.key();
    const std::string where = std::string(what) + ": " + json_quoted(key) + ": ";
    if (key.empty() || key.size() > kMaxKeyBytes)
      throw Refusal{where + "a model name must be 1 to 256 bytes"};
    for (unsigned char c : key)
      if (c < 0x20 || c == 0x7f) throw Refusal{where + "a model name has no control characters"};
    if (!seen.insert(lowered(key)).second)
      throw Refusal{where + "a second entry with this name (names match whatever their case)"};
    Entry entry;
    entry.key = key;
    EntryReader(where).read(it.value(), &entry);
    out->push_back(std::move(entry));
  }
}

}  // namespace

void Rates::overlay(const Rates& other) {
  for (size_t i = 0; i < kRateKinds; ++i)
    if (other.present & (1u << i)) set(static_cast<RateKind>(i), other.usd_per_million[i]);
}

const Tier* PriceTable::tier_for(uint64_t input_tokens) const {
  const Tier* found = nullptr;
  for (const Tier& t : tiers)
    if (input_tokens > t.above_tokens) found = &t;
  return found;
}

const PriceTable* Entry::service(ServiceTier tier) const {
  if (tier == ServiceTier::kStandard) return &standard;
  const auto& s = services[static_cast<size_t>(tier) - 1];
  return s ? &*s : nullptr;
}

const char* rate_name(RateKind kind) { return kRateNames[static_cast<size_t>(kind)]; }

const char* service_tier_name(ServiceTier tier) {
  return tier == ServiceTier::kStandard ? "standard" : kServiceNames[static_cast<size_t>(tier) - 1];
}

bool parse_service_tier(std::string_view name, ServiceTier* out) {
  const std::string n = lowered(name);
  if (n == "standard" || n == "default" || n == "auto") *out = ServiceTier::kStandard;
  else if (n == "batch" || n == "batches") *out = ServiceTier::kBatch;
  else if (n == "flex") *out = ServiceTier::kFlex;
  else if (n == "priority") *out = ServiceTier::kPriority;
  else return false;
  return true;
}

const char* match_kind_name(MatchKind kind) {
  switch (kind) {
    case MatchKind::kExact: return "exact";
    case MatchKind::kProviderPrefix: return "provider_prefix";
    case MatchKind::kDatedFallback: return "dated_fallback";
    default: return "none";
  }
}

Status Catalog::parse(std::string_view text, Catalog* out) {
  try {
    json doc;
    try {
      doc = parse_guarded(text);
    } catch (const Refusal& r) {
      throw Refusal{"catalog: the text " + r.message};
    }
    if (!doc.is_object()) throw Refusal{"catalog: must be a JSON object, got " + shown(doc)};
    Catalog parsed;
    const json* models = nullptr;
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string& k = it.key();
      const json& v = it.value();
      if (k == "models") {
        if (!v.is_object()) throw Refusal{"catalog: models: must be an object, got " + shown(v)};
        models = &v;
      } else if (k == "format" || k == "unit" || k == "version" || k == "source" ||
                 k == "attribution" || k == "license") {
        if (!v.is_string()) throw Refusal{"catalog: " + k + ": must be a string, got " + shown(v)};
        const std::string& s = v.get_ref<const std::string&>();
        if (k == "format" && s != kFormat)
          throw Refusal{"catalog: format: must be \"" + std::string(kFormat) + "\", got " + shown(v)};
        if (k == "unit" && s != kUnit)
          throw Refusal{"catalog: unit: must be \"" + std::string(kUnit) + "\", got " + shown(v)};
        if (k == "version") {
          if (s.empty() || s.size() > 64)
            throw Refusal{"catalog: version: must be 1 to 64 characters, got " + shown(v)};
          parsed.version_ = s;
        }
      } else {
        throw Refusal{"catalog: " + json_quoted(k) + " is not a field of a catalog (format, version, "
                      "unit, source, attribution, license, models)"};
      }
    }
    for (const char* required : {"format", "unit", "version"})
      if (!doc.contains(required))
        throw Refusal{"catalog: " + std::string(required) + ": is required"};
    if (!models) throw Refusal{"catalog: models: is required"};
    read_entries(*models, "catalog", &parsed.entries_);
    parsed.rebuild_index();
    *out = std::move(parsed);
    return Status();
  } catch (const Refusal& r) {
    return Status::invalid(r.message);
  } catch (const std::bad_alloc&) {
    return Status(Status::Code::kNoMemory, "catalog: out of memory");
  }
}

Status Catalog::apply_overrides(std::string_view json_text, std::string_view what) {
  const std::string label(what);
  try {
    json doc;
    try {
      doc = parse_guarded(json_text);
    } catch (const Refusal& r) {
      throw Refusal{label + ": the text " + r.message};
    }
    if (!doc.is_object())
      throw Refusal{label + ": must be a JSON object of models, like {\"my-model\": {\"input\": "
                    "3, \"output\": 15}}, got " + shown(doc)};
    std::vector<Entry> added;
    read_entries(doc, label, &added);
    std::vector<Entry> merged = entries_;
    for (Entry& e : added) {
      if (const Entry* old = find(e.key))
        merged[static_cast<size_t>(old - entries_.data())] = std::move(e);
      else
        merged.push_back(std::move(e));
    }
    Catalog next;
    next.version_ = version_;
    next.entries_ = std::move(merged);
    next.rebuild_index();
    *this = std::move(next);
    return Status();
  } catch (const Refusal& r) {
    return Status::invalid(r.message);
  } catch (const std::bad_alloc&) {
    return Status(Status::Code::kNoMemory, label + ": out of memory");
  }
}

const Catalog& Catalog::builtin() {
  // Leaked on purpose: usable from any thread and any destructor until the process ends.
  static const Catalog* catalog = [] {
    auto* c = new Catalog;
    if (!Catalog::parse(builtin_catalog_text(), c).ok()) *c = Catalog();
    return c;
  }();
  return *catalog;
}

}  // namespace agentburn::pricing
