// Event and agent JSON: parsing with strict checks, validation, and the wire encoding.
#include "event/codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace agentburn::detail {

using json = nlohmann::json;

namespace {

// --- Parsing with duplicate-key and depth checks ---------------------------------------

// nlohmann's DOM builder, plus what the AgentBurn rules add: no key twice in one object, and
// no nesting deeper than kMaxJsonDepth. Errors say where.
class CheckedDomParser {
 public:
  explicit CheckedDomParser(json& root) : dom_(root, false) {}
  std::string error;
  std::string last_key;  // the field being read when an error struck

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (!enter()) return false;
    object_starts_.push_back(keys_.size());
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    if (depth_ == 1) last_key = k.substr(0, 64);
    keys_.push_back(k);
    return dom_.key(k);
  }
  bool end_object() {
    // Duplicates are found once per object by sorting its keys: linear scans would make a
    // hostile object with thousands of keys quadratic.
    auto begin = keys_.begin() + static_cast<std::ptrdiff_t>(object_starts_.back());
    std::sort(begin, keys_.end());
    auto dup = std::adjacent_find(begin, keys_.end());
    if (dup != keys_.end()) {
      error = "duplicate key \"" + dup->substr(0, 64) + "\"";
      if (depth_ == 1) last_key = dup->substr(0, 64);  // the event's own field
      return false;
    }
    keys_.resize(object_starts_.back());
    object_starts_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    auto close = what.find("] ");
    error = close == std::string::npos ? what : what.substr(close + 2);
    if (depth_ == 0) last_key.clear();  // past the event's object: no field to blame
    return false;
  }
  int depth() const { return depth_; }

 private:
  bool enter() {
    // The event's own object is one level; its metadata may nest kMaxJsonDepth more, the
    // same rule track(Event) applies to metadata alone.
    if (++depth_ > kMaxJsonDepth + 1) {
      error = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<std::string> keys_;
  std::vector<std::size_t> object_starts_;
  int depth_ = 0;
};

bool fail(FieldError* err, std::string field, std::string message);

bool parse_checked(std::string_view text, json* out, FieldError* err) {
  CheckedDomParser sax(*out);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true,
                            false);
  if (!ok) {
    std::string why = sax.error.empty() ? "parse error" : sax.error;
    if (why.find("invalid literal") != std::string::npos && sax.depth() > 0) {
      why += " (a value is a JSON string, number, object, array, true, false or null; "
             "NaN and Infinity are not JSON numbers)";
    }
    return fail(err, sax.last_key, "not valid JSON: " + why);
  }
  // Inside a string a raw NUL is a parse error naming its field; outside one nlohmann's
  // parser takes it for the end of the input and would ignore what follows.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    return fail(err, "", "not valid JSON: a NUL byte at offset " + std::to_string(nul) +
                             " after the JSON value");
  }
  return ok;
}

// --- Field names and did-you-mean --------------------------------------------------------

std::string fold_name(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

template <std::size_t N>
std::string unknown_field_message(std::string_view name,
                                  const std::array<std::string_view, N>& known) {
  std::string shown = std::string(name.substr(0, 64));
  std::string msg = "unknown field \"" + shown + "\"";
  if (name.size() <= 64) {
    std::string_view best;
    std::size_t best_distance = 3;
    for (std::string_view k : known) {
      std::size_t d = fold_name(name) == fold_name(k) ? 0 : edit_distance(name, k);
      if (d < best_distance) {
        best_distance = d;
        best = k;
      }
    }
    if (!best.empty()) return msg + "; did you mean \"" + std::string(best) + "\"?";
  }
  msg += "; known fields are";
  for (std::size_t i = 0; i < N; ++i) msg += std::string(i ? ", " : " ") + std::string(known[i]);
  return msg;
}

std::string describe(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Messages quote what the caller sent, cut to a length: keep them valid UTF-8 whatever it was.
std::string utf8_clean(const std::string& s) {
  if (is_valid_utf8(s)) return s;
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    std::size_t n = 1;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xC0) n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (c < 0x80 || (c >= 0xC0 && i + n <= s.size() && is_valid_utf8(s.substr(i, n)))) {
      out.append(s, i, n);
      i += n - 1;
    } else {
      out.push_back('?');
    }
  }
  return out;
}

// What an error quotes of the caller's input: valid UTF-8, no control characters (a NUL
// would cut the text at the C ABI), and bounded.
std::string quotable(const std::string& s, std::size_t max_bytes) {
  std::string out = utf8_clean(s);
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  if (out.size() > max_bytes) {
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

bool fail(FieldError* err, std::string field, std::string message) {
  field = quotable(field, 64);
  err->message = quotable(field.empty() ? message : field + ": " + message, 1024);
  err->field = std::move(field);
  return false;
}

bool get_string(const json& v, const char* field, std::string* out, FieldError* err) {
  if (!v.is_string()) return fail(err, field, "must be a string, got " + describe(v));
  *out = v.get_ref<const std::string&>();
  return true;
}

bool get_count(const json& v, const char* field, std::optional<std::int64_t>* out,
               FieldError* err) {
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(kMaxTokens)) {
      return fail(err, field, "must be at most 2^53, got " + describe(v));
    }
    *out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    return fail(err, field, "must be a non-negative integer, got " + describe(v));
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d >= 0 && d <= static_cast<double>(kMaxTokens) && d == std::floor(d)) {
      *out = static_cast<std::int64_t>(d);
      return true;
    }
  }
  return fail(err, field, "must be a non-negative integer, got " + describe(v));
}

constexpr std::array<std::string_view, 14> kEventFields = {
    "agentId",      "provider", "operation",         "costUsd",         "model",
    "inputTokens",  "outputTokens", "cachedInputTokens", "reasoningTokens", "taskId",
    "workflowId",   "metadata", "timestamp",         "idempotency_key"};

// kEventFields' indices, for the fast path's bitmask of the fields seen.
enum EventField {
  kAgentId, kProvider, kOperation, kCostUsd, kModel, kInputTokens, kOutputTokens,
  kCachedInputTokens, kReasoningTokens, kTaskId, kWorkflowId, kMetadata, kTimestamp,
  kIdempotencyKey
};
static_assert(kEventFields.size() == kIdempotencyKey + 1 && kEventFields.size() <= 32 &&
              kEventFields[kAgentId] == "agentId" && kEventFields[kCostUsd] == "costUsd" &&
              kEventFields[kModel] == "model" && kEventFields[kTaskId] == "taskId" &&
              kEventFields[kMetadata] == "metadata" &&
              kEventFields[kIdempotencyKey] == "idempotency_key");

constexpr std::array<std::string_view, 4> kAgentFields = {"name", "description", "projectId",
                                                          "tags"};

bool set_event_field(const std::string& name, const json& v, Event* e, FieldError* err) {
  const char* f = name.c_str();
  // null is absent, for every known field: a required one is then reported as required.
  if (v.is_null() && std::find(kEventFields.begin(), kEventFields.end(), name) != kEventFields.end()) {
    return true;
  }
  auto opt_string = [&](std::optional<std::string>* out) {
    if (v.is_null()) return true;
    out->emplace();
    return get_string(v, f, &**out, err);
  };
  if (name == "agentId") return get_string(v, f, &e->agent_id, err);
  if (name == "provider") return get_string(v, f, &e->provider, err);
  if (name == "operation") return get_string(v, f, &e->operation, err);
  if (name == "costUsd") {
    if (!v.is_number()) return fail(err, f, "must be a number, got " + describe(v));
    e->cost_usd = v.get<double>();
    return true;
  }
  if (name == "model") return opt_string(&e->model);
  if (name == "taskId") return opt_string(&e->task_id);
  if (name == "workflowId") return opt_string(&e->workflow_id);
  if (name == "timestamp") return opt_string(&e->timestamp);
  if (name == "idempotency_key") return opt_string(&e->idempotency_key);
  if (name == "inputTokens") return v.is_null() || get_count(v, f, &e->input_tokens, err);
  if (name == "outputTokens") return v.is_null() || get_count(v, f, &e->output_tokens, err);
  if (name == "cachedInputTokens") {
    return v.is_null() || get_count(v, f, &e->cached_input_tokens, err);
  }
  if (name == "reasoningTokens") return v.is_null() || get_count(v, f, &e->reasoning_tokens, err);
  if (name == "metadata") {
    if (v.is_null()) return true;
    if (!v.is_object()) return fail(err, f, "must be a JSON object, got " + describe(v));
    e->metadata_json = v.dump(-1, ' ', false, json::error_handler_t::strict);
    return true;
  }
  return fail(err, name, unknown_field_message(name, kEventFields));
}

// --- The fast path -------------------------------------------------------------------------

// Reads an event in one pass over the text, with no DOM and no copy of a key: each field is
// written straight into the Event, the fields seen are kept in a bitmask, and metadata is
// written in its canonical text as it is read. It takes only what the checked parse accepts,
// with the same result, and declines the rest: an unknown, escaped or repeated key, a value
// of the wrong type or out of range, a number it could not convert exactly as nlohmann does,
// a byte order mark, anything that is not JSON. What it declines goes to the checked parse,
// so every refusal keeps its message.
class FastEventReader {
 public:
  FastEventReader(std::string_view text, Event* out)
      : p_(text.data()), end_(text.data() + text.size()), out_(out) {}

  bool read() {
    skip_ws();
    if (!take('{')) return false;
    skip_ws();
    if (!take('}')) {
      std::uint32_t seen = 0;
      for (;;) {
        int f = read_key();
        if (f < 0 || (seen & (1u << f)) != 0) return false;
        seen |= 1u << f;
        skip_ws();
        if (!take(':')) return false;
        skip_ws();
        if (!read_value(static_cast<EventField>(f))) return false;
        skip_ws();
        if (take('}')) break;
        if (!take(',')) return false;
        skip_ws();
      }
    }
    skip_ws();
    return p_ == end_;
  }

 private:
  // A number's text, checked against JSON's grammar.
  struct Number {
    const char* begin;
    bool negative;
    bool integer;  // no fraction and no exponent: nlohmann reads it as an integer if it fits
  };

  bool take(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // The index in kEventFields of a key written without escapes, or -1.
  int read_key() {
    if (!take('"')) return -1;
    const char* start = p_;
    while (p_ != end_ && *p_ != '"') {
      if (*p_ == '\\') return -1;
      ++p_;
    }
    if (p_ == end_) return -1;
    std::string_view key(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    for (std::size_t i = 0; i < kEventFields.size(); ++i) {
      std::string_view name = kEventFields[i];  // the length and first letter tell most apart
      if (name.size() == key.size() && name[0] == key[0] &&
          std::memcmp(name.data(), key.data(), name.size()) == 0) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  bool read_value(EventField f) {
    if (p_ == end_) return false;
    if (*p_ == 'n') {  // null: absent
      if (end_ - p_ < 4 || std::memcmp(p_, "null", 4) != 0) return false;
      p_ += 4;
      return true;
    }
    switch (f) {
      case kAgentId: return read_string(&out_->agent_id);
      case kProvider: return read_string(&out_->provider);
      case kOperation: return read_string(&out_->operation);
      case kCostUsd: return read_cost(&out_->cost_usd);
      case kModel: return read_opt_string(&out_->model);
      case kInputTokens: return read_count(&out_->input_tokens);
      case kOutputTokens: return read_count(&out_->output_tokens);
      case kCachedInputTokens: return read_count(&out_->cached_input_tokens);
      case kReasoningTokens: return read_count(&out_->reasoning_tokens);
      case kTaskId: return read_opt_string(&out_->task_id);
      case kWorkflowId: return read_opt_string(&out_->workflow_id);
      case kMetadata: return read_metadata();
      case kTimestamp: return read_opt_string(&out_->timestamp);
      case kIdempotencyKey: return read_opt_string(&out_->idempotency_key);
    }
    return false;
  }

  bool read_opt_string(std::optional<std::string>* out) {
    if (!*out) out->emplace();
    return read_string(&**out);
  }

  // Moves past the bytes of a string that stand for themselves (up to a '"', a '\\' or a raw
  // control character) and returns the OR of them: its high bit says UTF-8 must be checked.
  unsigned skip_plain_run() {
    unsigned high = 0;
    while (p_ != end_) {
      auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c == '"' || c == '\\') break;
      high |= c;
      ++p_;
    }
    return high;
  }

  // A JSON string, decoded as nlohmann decodes it: UTF-8 checked, no raw control characters,
  // \u escapes with surrogate pairs only in pairs.
  bool read_string(std::string* out) {
    if (!take('"')) return false;
    out->clear();
    for (;;) {
      // A run of bytes that stand for themselves: UTF-8 sequences never hold '"', '\' or a
      // byte below 0x20, so a sequence cut by one fails the check of its run.
      const char* run = p_;
      unsigned high = skip_plain_run();
      std::string_view bytes(run, static_cast<std::size_t>(p_ - run));
      if ((high & 0x80) != 0 && !is_valid_utf8(bytes)) return false;
      out->append(bytes);
      if (p_ == end_) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      if (*p_ != '\\') return false;  // a raw control character
      ++p_;
      if (p_ == end_) return false;
      char e = *p_++;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          std::uint32_t cp;
          if (!read_hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low;
            if (!take('\\') || !take('u') || !read_hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(cp, out);
          break;
        }
        default: return false;
      }
    }
  }

  bool read_hex4(std::uint32_t* cp) {
    if (end_ - p_ < 4) return false;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      std::uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      v = v << 4 | d;
    }
    *cp = v;
    return true;
  }

  static void append_utf8(std::uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | cp >> 6));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | cp >> 12));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | cp >> 18));
      out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool digits() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool scan_number(Number* n) {
    n->begin = p_;
    n->negative = take('-');
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    if (!take('0')) digits();
    n->integer = true;
    if (take('.')) {
      if (!digits()) return false;
      n->integer = false;
    }
    if (take('e') || take('E')) {
      if (!take('+')) take('-');
      if (!digits()) return false;
      n->integer = false;
    }
    return true;
  }

  template <typename T>
  bool convert(const Number& n, T* value) const {
    auto r = std::from_chars(n.begin, p_, *value);
    return r.ec == std::errc() && r.ptr == p_;
  }

  // As nlohmann reads a number and get<double>() converts it: an integer that fits 64 bits
  // is converted from the integer, anything else read as a double (declined when out of range).
  bool read_cost(std::optional<double>* out) {
    Number n;
    if (!scan_number(&n)) return false;
    double d;
    if (n.integer && !n.negative) {
      std::uint64_t u;
      if (!convert(n, &u)) return false;
      d = static_cast<double>(u);
    } else if (n.integer) {
      std::int64_t i;
      if (!convert(n, &i)) return false;
      d = static_cast<double>(i);
    } else if (!convert(n, &d)) {
      return false;
    }
    *out = d;
    return true;
  }

  // What get_count accepts: an unsigned integer up to 2^53, or a number with a fraction or
  // an exponent whose value is such an integer. A negative integer, even -0, is refused.
  bool read_count(std::optional<std::int64_t>* out) {
    Number n;
    if (!scan_number(&n)) return false;
    if (n.integer) {
      std::uint64_t u;
      if (n.negative || !convert(n, &u) || u > static_cast<std::uint64_t>(kMaxTokens)) {
        return false;
      }
      *out = static_cast<std::int64_t>(u);
      return true;
    }
    double d;
    if (!convert(n, &d) || !std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxTokens) ||
        d != std::floor(d)) {
      return false;
    }
    *out = static_cast<std::int64_t>(d);
    return true;
  }

  // Metadata: an object, written straight into the event in its canonical text, as
  // set_event_field's dump() of the checked parse's DOM would write it: no whitespace, the
  // members of each object sorted by key (std::map's order), integers as they are (-0 as 0),
  // other numbers as nlohmann writes them, strings escaped as nlohmann escapes them. Declined:
  // a key with escapes, a key twice in one object, nesting past 32 levels (the event is one
  // more), and anything the fast path declines elsewhere.
  bool read_metadata() {
    if (p_ == end_ || *p_ != '{') return false;
    std::string& text = out_->metadata_json.emplace();
    text.reserve(128);
    return canonical_value(&text, 0);
  }

  bool canonical_value(std::string* out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return canonical_object(out, depth + 1);
      case '[': return canonical_array(out, depth + 1);
      case '"': return canonical_string(out);
      case 't': return canonical_literal("true", out);
      case 'f': return canonical_literal("false", out);
      case 'n': return canonical_literal("null", out);
      default: return canonical_number(out);
    }
  }

  bool canonical_literal(std::string_view word, std::string* out) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    out->append(word);
    return true;
  }

  bool canonical_number(std::string* out) {
    Number n;
    if (!scan_number(&n)) return false;
    std::string_view token(n.begin, static_cast<std::size_t>(p_ - n.begin));
    if (n.integer && !n.negative) {
      std::uint64_t u;
      if (convert(n, &u)) {
        out->append(token);  // JSON has no leading zeros: the digits are the canonical form
        return true;
      }
    } else if (n.integer) {
      std::int64_t i;
      if (convert(n, &i)) {
        out->append(i == 0 ? std::string_view("0") : token);
        return true;
      }
    }
    double d;  // a fraction, an exponent, or an integer past 64 bits: a double, as nlohmann
    if (!convert(n, &d)) return false;
    out->append(json(d).dump());
    return true;
  }

  bool canonical_string(std::string* out) {
    const char* start = p_;
    ++p_;
    unsigned high = skip_plain_run();
    if (p_ != end_ && *p_ == '"') {  // no escapes: the text is its own canonical form
      ++p_;
      std::string_view quoted(start, static_cast<std::size_t>(p_ - start));
      if ((high & 0x80) != 0 && !is_valid_utf8(quoted)) return false;
      out->append(quoted);
      return true;
    }
    p_ = start;
    if (!read_string(&decoded_)) return false;
    append_json_string(decoded_, out);  // escapes exactly what nlohmann's dump escapes
    return true;
  }

  bool canonical_array(std::string* out, int depth) {
    if (depth > kMaxJsonDepth) return false;
    ++p_;
    out->push_back('[');
    skip_ws();
    if (!take(']')) {
      for (;;) {
        if (!canonical_value(out, depth)) return false;
        skip_ws();
        if (take(']')) break;
        if (!take(',')) return false;
        out->push_back(',');
        skip_ws();
      }
    }
    out->push_back(']');
    return true;
  }

  // Members are written in the order given; when that is not the keys' order, they are
  // sorted afterwards, by their spans in `out`.
  bool canonical_object(std::string* out, int depth) {
    if (depth > kMaxJsonDepth) return false;
    ++p_;
    const std::size_t first = members_.size();
    const std::size_t open = out->size();
    out->push_back('{');
    skip_ws();
    bool in_order = true;
    if (!take('}')) {
      for (;;) {
        if (!take('"')) return false;
        const char* k = p_;
        unsigned high = 0;
        while (p_ != end_ && *p_ != '"') {
          auto c = static_cast<unsigned char>(*p_);
          if (c < 0x20 || c == '\\') return false;
          high |= c;
          ++p_;
        }
        if (p_ == end_) return false;
        std::string_view key(k, static_cast<std::size_t>(p_ - k));
        ++p_;
        if ((high & 0x80) != 0 && !is_valid_utf8(key)) return false;
        skip_ws();
        if (!take(':')) return false;
        skip_ws();
        if (members_.size() > first) {
          if (!(members_.back().key < key)) in_order = false;
          out->push_back(',');
        }
        const std::size_t begin = out->size();
        out->push_back('"');
        out->append(key);
        out->append("\":");
        if (!canonical_value(out, depth)) return false;
        members_.push_back({key, begin, out->size()});
        skip_ws();
        if (take('}')) break;
        if (!take(',')) return false;
        skip_ws();
      }
    }
    if (!in_order) {
      auto b = members_.begin() + static_cast<std::ptrdiff_t>(first);
      std::sort(b, members_.end(), [](const Member& x, const Member& y) { return x.key < y.key; });
      if (std::adjacent_find(b, members_.end(), [](const Member& x, const Member& y) {
            return x.key == y.key;
          }) != members_.end()) {
        return false;  // a duplicate key: the checked parse says which
      }
      reorder_.assign(*out, open + 1, std::string::npos);
      out->resize(open + 1);
      for (auto m = b; m != members_.end(); ++m) {
        if (m != b) out->push_back(',');
        out->append(reorder_, m->begin - open - 1, m->end - m->begin);
      }
    }
    out->push_back('}');
    members_.resize(first);
    return true;
  }

  // A member of an object being written: its key (as given: keys with escapes are declined)
  // and where its text is in the output.
  struct Member {
    std::string_view key;
    std::size_t begin;
    std::size_t end;
  };

  const char* p_;
  const char* const end_;
  Event* const out_;
  std::vector<Member> members_;  // of the objects being written, innermost last
  std::string reorder_;          // an object's members while they are sorted
  std::string decoded_;          // a string with escapes, between decoding and escaping
};

bool check_text(const std::string& s, const char* field, std::size_t max_bytes, FieldError* err) {
  if (s.empty()) return fail(err, field, "must not be empty (omit an optional field instead)");
  if (s.size() > max_bytes) {
    return fail(err, field,
                "is " + std::to_string(s.size()) + " bytes; the limit is " +
                    std::to_string(max_bytes));
  }
  if (!is_valid_utf8(s)) return fail(err, field, "is not valid UTF-8");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return fail(err, field, "must not contain control characters");
  }
  return true;
}

bool check_opt_text(const std::optional<std::string>& s, const char* field, FieldError* err) {
  return !s || check_text(*s, field, kMaxIdBytes, err);
}

bool check_count(const std::optional<std::int64_t>& v, const char* field, FieldError* err) {
  if (v && (*v < 0 || *v > kMaxTokens)) {
    return fail(err, field, "must be an integer in [0, 2^53], got " + std::to_string(*v));
  }
  return true;
}

bool check_metadata(const std::string& given, bool trusted, std::optional<std::string>* canonical,
                    FieldError* err) {
  const std::string* text = &given;
  if (!trusted) {
    if (json_depth(*text, kMaxJsonDepth) > kMaxJsonDepth) {
      return fail(err, "metadata", "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    json doc;
    FieldError inner;
    if (!parse_checked(*text, &doc, &inner)) return fail(err, "metadata", inner.message);
    if (!doc.is_object()) return fail(err, "metadata", "must be a JSON object, got " + describe(doc));
    *canonical = doc.dump();
    text = &**canonical;
  }
  if (text->size() > kMaxMetadataBytes) {
    return fail(err, "metadata",
                "is " + std::to_string(text->size()) + " bytes encoded; the limit is " +
                    std::to_string(kMaxMetadataBytes));
  }
  return true;
}

bool validate_event_impl(const Event* e, bool fill_defaults, bool metadata_trusted, Normalized* norm,
                         FieldError* err) {
  if (e->agent_id.empty()) return fail(err, "agentId", "is required (the id of a registered agent)");
  if (!check_text(e->agent_id, "agentId", kMaxIdBytes, err)) return false;
  if (e->provider.empty()) return fail(err, "provider", "is required (openai, anthropic, e2b, ...)");
  if (!check_text(e->provider, "provider", kMaxIdBytes, err)) return false;
  const std::string& op = e->operation;
  if (op.empty()) {
    return fail(err, "operation", "is required: llm_call, tool_call, compute or api_call");
  }
  if (op != "llm_call" && op != "tool_call" && op != "compute" && op != "api_call") {
    std::string shown = is_valid_utf8(op) ? op.substr(0, 64) : std::string("(not UTF-8)");
    return fail(err, "operation",
                "must be llm_call, tool_call, compute or api_call, got \"" + shown + "\"");
  }
  if (!e->cost_usd) return fail(err, "costUsd", "is required (the cost in USD, a number)");
  double cost = *e->cost_usd;
  if (!std::isfinite(cost) || cost < 0 || cost > kMaxCostUsd) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, cost);
    return fail(err, "costUsd",
                "must be a finite number in [0, 1e9], got " + std::string(buf, r.ptr));
  }
  if (!check_opt_text(e->model, "model", err) || !check_opt_text(e->task_id, "taskId", err) ||
      !check_opt_text(e->workflow_id, "workflowId", err) ||
      !check_count(e->input_tokens, "inputTokens", err) ||
      !check_count(e->output_tokens, "outputTokens", err) ||
      !check_count(e->cached_input_tokens, "cachedInputTokens", err) ||
      !check_count(e->reasoning_tokens, "reasoningTokens", err)) {
    return false;
  }
  if (e->metadata_json &&
      !check_metadata(*e->metadata_json, metadata_trusted, &norm->metadata_json, err)) {
    return false;
  }
  if (e->idempotency_key) {
    const std::string& k = *e->idempotency_key;
    if (k.empty() || k.size() > kMaxKeyBytes) {
      return fail(err, "idempotency_key", "must be 1 to 128 bytes, got " + std::to_string(k.size()));
    }
    for (unsigned char c : k) {
      if (c < 0x21 || c > 0x7E) {
        return fail(err, "idempotency_key", "must be printable ASCII without spaces");
      }
    }
  } else if (fill_defaults) {
    norm->idempotency_key = new_uuid_v7();
  }
  if (e->timestamp) {
    std::int64_t ms;
    if (!parse_timestamp(*e->timestamp, &ms)) {
      std::string shown = is_valid_utf8(*e->timestamp) ? e->timestamp->substr(0, 64) : "(not UTF-8)";
      return fail(err, "timestamp",
                  "must be ISO 8601 with a date, a time and a UTC offset, such as "
                  "2026-01-02T03:04:05Z or 2026-01-02T05:04:05.250+02:00; got \"" + shown + "\"");
    }
    norm->timestamp = format_timestamp_ms(ms);
  } else if (fill_defaults) {
    norm->timestamp = format_timestamp_ms(now_unix_ms());
  }
  return true;
}

void append_key(const char* name, std::string* out) {
  out->push_back(',');
  out->push_back('"');
  out->append(name);
  out->append("\":");
}

void append_opt_string(const char* name, const std::optional<std::string>& v, std::string* out) {
  if (!v) return;
  append_key(name, out);
  append_json_string(*v, out);
}

void append_opt_count(const char* name, const std::optional<std::int64_t>& v, std::string* out) {
  if (!v) return;
  append_key(name, out);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, *v);
  out->append(buf, r.ptr);
}

}  // namespace

bool parse_event_value(const void* value, Event* out, FieldError* err) {
  const json& v = *static_cast<const json*>(value);
  if (!v.is_object()) return fail(err, "", "an event must be a JSON object, got " + describe(v));
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!set_event_field(it.key(), it.value(), out, err)) return false;
  }
  return true;
}

bool parse_event_json_fast(std::string_view text, Event* out) {
  return text.size() <= kMaxEventBytes && FastEventReader(text, out).read();
}

bool parse_event_json_checked(std::string_view text, Event* out, FieldError* err) {
  if (text.size() > kMaxEventBytes) {
    return fail(err, "", "the event is " + std::to_string(text.size()) +
                             " bytes; the limit is " + std::to_string(kMaxEventBytes));
  }
  json doc;
  if (!parse_checked(text, &doc, err)) return false;
  return parse_event_value(&doc, out, err);
}

bool parse_event_json(std::string_view text, Event* out, FieldError* err) {
  return parse_event_json_fast(text, out) || parse_event_json_checked(text, out, err);
}

bool validate_event(const Event& event, bool fill_defaults, bool metadata_trusted,
                    Normalized* norm, FieldError* err) {
  *norm = Normalized();
  return validate_event_impl(&event, fill_defaults, metadata_trusted, norm, err);
}

void encode_event(const Event& e, const Normalized& norm, bool seed_fields_only,
                  std::string* out) {
  out->append("{\"agentId\":");
  append_json_string(e.agent_id, out);
  append_key("provider", out);
  append_json_string(e.provider, out);
  append_key("operation", out);
  append_json_string(e.operation, out);
  append_key("costUsd", out);
  char buf[32];
  double cost = e.cost_usd.value_or(0.0);
  if (cost == 0) cost = 0;  // -0 would read back as 0 and encode differently
  auto r = std::to_chars(buf, buf + sizeof buf, cost);
  out->append(buf, r.ptr);
  append_opt_string("model", e.model, out);
  append_opt_count("inputTokens", e.input_tokens, out);
  append_opt_count("outputTokens", e.output_tokens, out);
  if (!seed_fields_only) {
    append_opt_count("cachedInputTokens", e.cached_input_tokens, out);
    append_opt_count("reasoningTokens", e.reasoning_tokens, out);
  }
  append_opt_string("taskId", e.task_id, out);
  append_opt_string("workflowId", e.workflow_id, out);
  if (e.metadata_json) {
    append_key("metadata", out);
    out->append(norm.metadata_json ? *norm.metadata_json : *e.metadata_json);
  }
  if (!norm.timestamp.empty()) {
    append_key("timestamp", out);
    append_json_string(norm.timestamp, out);
  } else {
    append_opt_string("timestamp", e.timestamp, out);
  }
  if (!seed_fields_only) {
    if (!norm.idempotency_key.empty()) {
      append_key("idempotency_key", out);
      append_json_string(norm.idempotency_key, out);
    } else {
      append_opt_string("idempotency_key", e.idempotency_key, out);
    }
  }
  out->push_back('}');
}

// --- Agents --------------------------------------------------------------------------------

bool parse_agent_value(const void* value, Agent* out, FieldError* err) {
  const json& v = *static_cast<const json*>(value);
  if (!v.is_object()) return fail(err, "", "an agent must be a JSON object, got " + describe(v));
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    const json& f = it.value();
    if (k == "name") {
      if (!get_string(f, "name", &out->name, err)) return false;
    } else if (k == "description" || k == "projectId") {
      if (f.is_null()) continue;
      auto& slot = k == "description" ? out->description : out->project_id;
      slot.emplace();
      if (!get_string(f, k.c_str(), &*slot, err)) return false;
    } else if (k == "tags") {
      if (f.is_null()) continue;
      if (!f.is_array()) return fail(err, "tags", "must be an array of strings, got " + describe(f));
      for (std::size_t i = 0; i < f.size(); ++i) {
        if (!f[i].is_string()) {
          return fail(err, "tags", "element " + std::to_string(i) + " must be a string, got " +
                                       describe(f[i]));
        }
        out->tags.push_back(f[i].get<std::string>());
      }
    } else {
      return fail(err, k, unknown_field_message(k, kAgentFields));
    }
  }
  return validate_agent(*out, err);
}

bool parse_agent_json(std::string_view text, Agent* out, FieldError* err) {
  if (text.size() > kMaxEventBytes) {
    return fail(err, "", "the agent is " + std::to_string(text.size()) +
                             " bytes; the limit is " + std::to_string(kMaxEventBytes));
  }
  json doc;
  return parse_checked(text, &doc, err) && parse_agent_value(&doc, out, err);
}

bool validate_agent(const Agent& a, FieldError* err) {
  if (a.name.empty()) return fail(err, "name", "is required");
  if (!check_text(a.name, "name", kMaxIdBytes, err)) return false;
  if (a.description) {
    if (a.description->size() > kMaxDescriptionBytes) {
      return fail(err, "description", "is " + std::to_string(a.description->size()) +
                                          " bytes; the limit is " +
                                          std::to_string(kMaxDescriptionBytes));
    }
    if (!is_valid_utf8(*a.description)) return fail(err, "description", "is not valid UTF-8");
  }
  if (a.project_id && !check_text(*a.project_id, "projectId", kMaxIdBytes, err)) return false;
  if (a.tags.size() > kMaxTags) {
    return fail(err, "tags", "has " + std::to_string(a.tags.size()) + " tags; the limit is " +
                                 std::to_string(kMaxTags));
  }
  for (const auto& t : a.tags) {
    if (!check_text(t, "tags", kMaxIdBytes, err)) return false;
  }
  return true;
}

std::string encode_agent(const Agent& a) {
  std::string out = "{\"name\":";
  append_json_string(a.name, &out);
  append_opt_string("description", a.description, &out);
  append_opt_string("projectId", a.project_id, &out);
  out.append(",\"tags\":[");
  for (std::size_t i = 0; i < a.tags.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(a.tags[i], &out);
  }
  out.append("]}");
  return out;
}

Status to_status(const FieldError& err) { return Status::invalid(err.message); }

}  // namespace agentburn::detail
