// Parsing with duplicate-key and depth checks: nlohmann's DOM builder plus the AgentBurn rules.
#include <algorithm>
#include <string>
#include <vector>

#include "event/codec_internal.hpp"

namespace agentburn::detail {

namespace {

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

}  // namespace

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

}  // namespace agentburn::detail
