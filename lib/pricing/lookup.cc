// Matching a (provider, model) pair to a catalog entry: the alias table, the dated-name rule,
// the hash index and the nearest names.
#include <algorithm>
#include <cstring>

#include "pricing/catalog.hpp"

namespace agentburn::pricing {
namespace {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// FNV-1a over the lowercased bytes, fed piece by piece.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void add(std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(lower(c));
      h *= 1099511628211ull;
    }
  }
};

// The one alias table: provider names as callers write them (their SDKs, OpenTelemetry's
// gen_ai.provider.name / gen_ai.system values, common spellings) -> catalog prefixes.
struct Alias {
  const char* name;
  const char* prefix1;
  const char* prefix2;
};
constexpr Alias kAliases[] = {
    {"openai", "openai", nullptr},
    {"azure", "azure", nullptr},
    {"azure_openai", "azure", nullptr},
    {"azure-openai", "azure", nullptr},
    {"az.ai.openai", "azure", nullptr},
    {"azure_ai", "azure_ai", nullptr},
    {"az.ai.inference", "azure_ai", nullptr},
    {"anthropic", "anthropic", nullptr},
    {"google", "gemini", nullptr},
    {"gemini", "gemini", nullptr},
    {"gcp.gemini", "gemini", nullptr},
    {"google_ai_studio", "gemini", nullptr},
    {"google-ai-studio", "gemini", nullptr},
    {"gcp.gen_ai", "gemini", "vertex_ai"},
    {"vertex_ai", "vertex_ai", nullptr},
    {"vertex-ai", "vertex_ai", nullptr},
    {"vertexai", "vertex_ai", nullptr},
    {"vertex", "vertex_ai", nullptr},
    {"gcp.vertex_ai", "vertex_ai", nullptr},
    {"google_vertex", "vertex_ai", nullptr},
    {"bedrock", "bedrock", nullptr},
    {"aws.bedrock", "bedrock", nullptr},
    {"aws_bedrock", "bedrock", nullptr},
    {"amazon_bedrock", "bedrock", nullptr},
    {"amazon-bedrock", "bedrock", nullptr},
    {"bedrock_converse", "bedrock", nullptr},
    {"mistral", "mistral", nullptr},
    {"mistral_ai", "mistral", nullptr},
    {"mistralai", "mistral", nullptr},
    {"groq", "groq", nullptr},
    {"deepseek", "deepseek", nullptr},
    {"xai", "xai", nullptr},
    {"x_ai", "xai", nullptr},
    {"x-ai", "xai", nullptr},
    {"x.ai", "xai", nullptr},
    {"openrouter", "openrouter", nullptr},
    {"together", "together_ai", nullptr},
    {"together_ai", "together_ai", nullptr},
    {"togetherai", "together_ai", nullptr},
    {"fireworks", "fireworks_ai", nullptr},
    {"fireworks_ai", "fireworks_ai", nullptr},
    {"perplexity", "perplexity", nullptr},
    {"deepinfra", "deepinfra", nullptr},
    {"cerebras", "cerebras", nullptr},
    {"moonshot", "moonshot", nullptr},
    {"moonshotai", "moonshot", nullptr},
    {"dashscope", "dashscope", nullptr},
    {"alibaba", "dashscope", nullptr},
    {"ibm.watsonx.ai", "watsonx", nullptr},
    {"watsonx", "watsonx", nullptr},
    {"ollama", "ollama", nullptr},
    {"vercel_ai_gateway", "vercel_ai_gateway", nullptr},
};

size_t table_size_for(size_t n) {
  size_t size = 16;
  while (size < n * 2) size <<= 1;
  return size;
}

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
int num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}
bool plausible_date(std::string_view y, std::string_view m, std::string_view d) {
  if (!digits(y) || !digits(m) || !digits(d) || y.size() != 4 || m.size() != 2 || d.size() != 2)
    return false;
  int year = num(y), month = num(m), day = num(d);
  return year >= 2000 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

size_t edit_distance(std::string_view a, std::string_view b, std::vector<size_t>* row) {
  row->resize(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) (*row)[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = (*row)[0];
    (*row)[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = (*row)[j];
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      (*row)[j] = std::min({up + 1, (*row)[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return (*row)[b.size()];
}

}  // namespace

ProviderPrefixes provider_prefixes(std::string_view provider) {
  ProviderPrefixes out;
  if (provider.empty()) return out;
  for (const Alias& a : kAliases) {
    if (!iequals(provider, a.name)) continue;
    out.known = true;
    out.names[out.count++] = a.prefix1;
    if (a.prefix2) out.names[out.count++] = a.prefix2;
    return out;
  }
  if (provider.size() <= 64 && provider.find('/') == std::string_view::npos)
    out.names[out.count++] = provider;
  return out;
}

std::string_view undated_name(std::string_view name) {
  const size_t n = name.size();
  // -YYYY-MM-DD
  if (n > 11 && name[n - 11] == '-' && name[n - 6] == '-' && name[n - 3] == '-' &&
      plausible_date(name.substr(n - 10, 4), name.substr(n - 5, 2), name.substr(n - 2, 2)))
    return name.substr(0, n - 11);
  // -YYYYMMDD or @YYYYMMDD (Vertex AI)
  if (n > 9 && (name[n - 9] == '-' || name[n - 9] == '@') &&
      plausible_date(name.substr(n - 8, 4), name.substr(n - 4, 2), name.substr(n - 2, 2)))
    return name.substr(0, n - 9);
  if (n > 7 && iequals(name.substr(n - 7), "-latest")) return name.substr(0, n - 7);
  return name;
}

void Catalog::rebuild_index() {
  hashes_.resize(entries_.size());
  slots_.assign(table_size_for(entries_.size()), 0);
  const size_t mask = slots_.size() - 1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    Hasher h;
    h.add(entries_[i].key);
    hashes_[i] = h.h;
    size_t s = h.h & mask;
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = static_cast<uint32_t>(i + 1);
  }
}

const Entry* Catalog::find_joined(std::string_view a, std::string_view b) const {
  if (slots_.empty()) return nullptr;
  Hasher h;
  if (!a.empty()) {
    h.add(a);
    h.add("/");
  }
  h.add(b);
  const size_t total = a.empty() ? b.size() : a.size() + 1 + b.size();
  const size_t mask = slots_.size() - 1;
  for (size_t s = h.h & mask; slots_[s] != 0; s = (s + 1) & mask) {
    const size_t i = slots_[s] - 1;
    if (hashes_[i] != h.h) continue;
    const std::string& key = entries_[i].key;
    if (key.size() != total) continue;
    std::string_view k(key);
    if (a.empty() ? iequals(k, b)
                  : (iequals(k.substr(0, a.size()), a) && k[a.size()] == '/' &&
                     iequals(k.substr(a.size() + 1), b)))
      return &entries_[i];
  }
  return nullptr;
}

const Entry* Catalog::find(std::string_view key) const { return find_joined({}, key); }

namespace {

// Step 1 of the matching rule (catalog.hpp) for one model name.
Match match_names(const Catalog& catalog, const ProviderPrefixes& hint, std::string_view model,
                  const Entry* (*find)(const Catalog&, std::string_view, std::string_view)) {
  for (std::string_view prefix : hint)
    if (const Entry* e = find(catalog, prefix, model)) return {e, MatchKind::kProviderPrefix};
  if (const Entry* e = find(catalog, {}, model)) return {e, MatchKind::kExact};
  const size_t slash = model.find('/');
  if (slash == std::string_view::npos) return {};
  const ProviderPrefixes own = provider_prefixes(model.substr(0, slash));
  if (!own.known) return {};
  const std::string_view rest = model.substr(slash + 1);
  for (std::string_view prefix : own)
    if (const Entry* e = find(catalog, prefix, rest)) return {e, MatchKind::kProviderPrefix};
  if (const Entry* e = find(catalog, {}, rest)) return {e, MatchKind::kProviderPrefix};
  return {};
}

}  // namespace

Match Catalog::lookup(std::string_view provider, std::string_view model) const {
  if (model.empty() || model.size() > 512) return {};
  const ProviderPrefixes hint = provider_prefixes(provider);
  auto find = [](const Catalog& c, std::string_view a, std::string_view b) {
    return c.find_joined(a, b);
  };
  Match m = match_names(*this, hint, model, find);
  if (m) return m;
  const std::string_view base = undated_name(model);
  if (base.size() == model.size()) return {};
  m = match_names(*this, hint, base, find);
  if (m) m.kind = MatchKind::kDatedFallback;
  return m;
}

std::vector<std::string> Catalog::nearest(std::string_view model, size_t n) const {
  if (n == 0 || entries_.empty()) return {};
  model = model.substr(0, 128);
  const size_t model_slash = model.rfind('/');
  const std::string_view model_tail =
      model_slash == std::string_view::npos ? model : model.substr(model_slash + 1);
  std::vector<std::pair<size_t, const std::string*>> scored;
  scored.reserve(entries_.size());
  std::vector<size_t> row;
  for (const Entry& e : entries_) {
    std::string_view key(e.key);
    std::string_view k = key.substr(0, 160);
    const size_t full = edit_distance(model, k, &row);
    size_t d = full;
    const size_t slash = key.rfind('/');
    if (slash != std::string_view::npos)
      d = std::min(d, edit_distance(model_tail, key.substr(slash + 1).substr(0, 160), &row));
    // Nearest first; among equals, the nearer whole key (the bare name before its resellers).
    scored.emplace_back(d * 1024 + std::min<size_t>(full, 1023), &e.key);
  }
  n = std::min(n, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
                    [](const auto& x, const auto& y) {
                      return x.first != y.first ? x.first < y.first : *x.second < *y.second;
                    });
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(*scored[i].second);
  return out;
}

}  // namespace agentburn::pricing
