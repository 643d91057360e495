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
    open_.push_back('{');
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
    open_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!enter()) return false;
    open_.push_back('[');
    return dom_.start_array(n);
  }
  bool end_array() {
    open_.pop_back();
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) {
    error_at = position > 0 ? position - 1 : 0;
    std::string what = ex.what();
    auto close = what.find("] ");
    error = close == std::string::npos ? what : what.substr(close + 2);
    if (depth_ == 0) last_key.clear();  // past the event's object: no field to blame
    return false;
  }
  int depth() const { return depth_; }

  // When the error is a NaN, Infinity or -Infinity where a value goes (as Python's json.dumps
  // writes them), what to say, naming the field that holds it; else "".
  std::string non_finite(std::string_view text) const {
    std::size_t at = error_at;  // the byte the parser stopped at: the token's first letter
    if (at >= text.size()) return "";
    if (text[at] == 'I' && at > 0 && text[at - 1] == '-') --at;
    std::string_view token;
    for (std::string_view t : {"NaN", "Infinity", "-Infinity"}) {
      if (text.compare(at, t.size(), t) == 0) token = t;
    }
    std::size_t end = at + token.size();
    if (token.empty() || (end < text.size() && !is_one_of(text[end], " \t\r\n,]}"))) return "";
    // A value: after ':' in an object, after '[' or ',' in an array, or the whole text.
    std::size_t before = at;
    while (before > 0 && is_one_of(text[before - 1], " \t\r\n")) --before;
    char prev = before > 0 ? text[before - 1] : '\0';
    bool in_array = !open_.empty() && open_.back() == '[';
    if (prev != ':' && !(in_array && is_one_of(prev, "[,")) && !(open_.empty() && before == 0)) {
      return "";
    }
    std::string got = "must be a finite number, got " + std::string(token);
    if (last_key.empty()) {  // no field holds it: the whole text, or an array that is the text
      return "not valid JSON: NaN and Infinity are not JSON numbers, got " + std::string(token);
    }
    if (depth_ == 1) return got;  // the field's own value
    if (prev == ':') return "\"" + keys_.back().substr(0, 64) + "\" " + got;
    return "an array element " + got;
  }
  std::size_t error_at = 0;  // where the parse error struck, in bytes from the start

 private:
  static bool is_one_of(char c, std::string_view set) {
    return c != '\0' && set.find(c) != std::string_view::npos;
  }
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
  std::string open_;  // '{' or '[' for each array and object open, innermost last
  int depth_ = 0;
};

}  // namespace

bool parse_checked(std::string_view text, json* out, FieldError* err) {
  CheckedDomParser sax(*out);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true,
                            false);
  if (!ok) {
    if (std::string nf = sax.non_finite(text); !nf.empty()) return fail(err, sax.last_key, nf);
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
