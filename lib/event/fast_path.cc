// The fast path: a hand-written one-pass reader for the common event shape, with no DOM.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "event/codec_internal.hpp"
#include "event/json_cursor.hpp"

namespace agentburn::detail {

namespace {

// Reads an event in one pass over the text, with no DOM and no copy of a key: each field is
// written straight into the Event, the fields seen are kept in a bitmask, and metadata is
// written in its canonical text as it is read. It takes only what the checked parse accepts,
// with the same result, and declines the rest: an unknown, escaped or repeated key, a value
// of the wrong type or out of range, a number it could not convert exactly as nlohmann does,
// a byte order mark, anything that is not JSON. What it declines goes to the checked parse,
// so every refusal keeps its message.
class FastEventReader : private JsonCursor {
 public:
  FastEventReader(std::string_view text, Event* out) : JsonCursor(text), out_(out) {}

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
      case kCacheWriteInputTokens: return read_count(&out_->cache_write_input_tokens);
      case kCostSource: return read_opt_string(&out_->cost_source);
      case kPriceKey: return read_opt_string(&out_->price_key);
      case kPricesVersion: return read_opt_string(&out_->prices_version);
    }
    return false;
  }

  bool read_opt_string(std::optional<std::string>* out) {
    if (!*out) out->emplace();
    return read_string(&**out);
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

  Event* const out_;
  std::vector<Member> members_;  // of the objects being written, innermost last
  std::string reorder_;          // an object's members while they are sorted
  std::string decoded_;          // a string with escapes, between decoding and escaping
};

}  // namespace

bool read_event_fast(std::string_view text, Event* out) {
  return FastEventReader(text, out).read();
}

bool parse_event_json_fast(std::string_view text, Event* out) {
  return text.size() <= kMaxEventBytes && read_event_fast(text, out);
}

}  // namespace agentburn::detail
