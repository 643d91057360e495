// A one-pass JSON scanner for reading a few fields out of a response body without building a
// DOM: it checks the whole text is valid JSON (RFC 8259, one value), refuses nesting deeper
// than a limit, and hands each scalar to a visitor with the keys that lead to it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace agentburn::pricing::detail {

inline constexpr int kMaxJsonDepth = 64;

// The keys leading to a value; an array level's key is "[]". Keys are raw (escapes not
// decoded), which is exact for the ASCII names providers use.
struct JsonPath {
  std::array<std::string_view, kMaxJsonDepth> keys;
  int depth = 0;
  std::string_view at(int i) const { return i < depth ? keys[static_cast<size_t>(i)] : std::string_view(); }
};

struct JsonScalar {
  enum Kind : uint8_t { kString, kNumber, kTrue, kFalse, kNull } kind;
  std::string_view raw;  // a string's contents between the quotes (escapes kept); a number's text
  bool escaped = false;  // a string holding backslash escapes
};

// Decodes a string's raw contents (escapes, \u surrogate pairs) into UTF-8. False when invalid.
bool decode_json_string(std::string_view raw, std::string* out);
// A whole number 0..10^12 written plainly ("123"); false for anything else.
bool json_count(const JsonScalar& v, uint64_t* out);
// A short printable rendering of a value for messages.
std::string shown_scalar(const JsonScalar& v);

// Scans `text` as one JSON value. Calls visit(const JsonPath&, const JsonScalar&) for each
// scalar, in order; visit returns false to stop (the scan then returns true). On invalid
// JSON returns false with *error set ("invalid JSON at byte 17: ...").
template <typename Visit>
bool scan_json(std::string_view text, Visit&& visit, std::string* error) {
  const char* const begin = text.data();
  const char* p = begin;
  const char* const end = begin + text.size();
  JsonPath path;
  std::array<char, kMaxJsonDepth> open{};  // '{' or '['
  auto fail = [&](const char* why) {
    *error = "invalid JSON at byte " + std::to_string(p - begin) + ": " + why;
    return false;
  };
  auto ws = [&] {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  };
  auto string = [&](std::string_view* raw, bool* escaped) {
    const char* s = ++p;  // after the opening quote
    *escaped = false;
    while (p < end && *p != '"') {
      const unsigned char c = static_cast<unsigned char>(*p);
      if (c < 0x20) return false;
      if (c == '\\') {
        *escaped = true;
        if (++p >= end) return false;
        if (*p == 'u') {
          for (int i = 0; i < 4; ++i) {
            if (++p >= end) return false;
            const char h = *p;
            if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
              return false;
          }
        } else if (std::string_view("\"\\/bfnrt").find(*p) == std::string_view::npos) {
          return false;
        }
      }
      ++p;
    }
    if (p >= end) return false;
    *raw = std::string_view(s, static_cast<size_t>(p - s));
    ++p;
    return true;
  };
  auto digits = [&] {
    const char* s = p;
    while (p < end && *p >= '0' && *p <= '9') ++p;
    return p > s;
  };
  for (;;) {
    // A value is expected.
    ws();
    if (p >= end) return fail("the text ends where a value was expected");
    JsonScalar v{JsonScalar::kNull, {}, false};
    const char c = *p;
    if (c == '{' || c == '[') {
      if (path.depth >= kMaxJsonDepth) return fail("nested more than 64 levels deep");
      open[static_cast<size_t>(path.depth)] = c;
      path.keys[static_cast<size_t>(path.depth++)] = c == '[' ? "[]" : "";
      ++p;
      ws();
      if (p < end && *p == (c == '{' ? '}' : ']')) {
        ++p;
        --path.depth;
        goto after_value;
      }
      if (c == '[') continue;
      goto read_key;
    } else if (c == '"') {
      v.kind = JsonScalar::kString;
      if (!string(&v.raw, &v.escaped)) return fail("a string is not well formed");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const char* s = p;
      if (*p == '-') ++p;
      if (p < end && *p == '0') ++p;
      else if (!digits()) return fail("a number is not well formed");
      if (p < end && *p == '.' && (++p, !digits())) return fail("a number is not well formed");
      if (p < end && (*p == 'e' || *p == 'E')) {
        ++p;
        if (p < end && (*p == '+' || *p == '-')) ++p;
        if (!digits()) return fail("a number is not well formed");
      }
      v.kind = JsonScalar::kNumber;
      v.raw = std::string_view(s, static_cast<size_t>(p - s));
    } else {
      const std::string_view rest(p, static_cast<size_t>(end - p));
      if (rest.substr(0, 4) == "true") v.kind = JsonScalar::kTrue, p += 4;
      else if (rest.substr(0, 5) == "false") v.kind = JsonScalar::kFalse, p += 5;
      else if (rest.substr(0, 4) == "null") v.kind = JsonScalar::kNull, p += 4;
      else return fail("unexpected character");
    }
    if (!visit(static_cast<const JsonPath&>(path), static_cast<const JsonScalar&>(v))) return true;
  after_value:
    for (;;) {
      ws();
      if (path.depth == 0) {
        if (p != end) return fail("more text after the JSON value");
        return true;
      }
      const char o = open[static_cast<size_t>(path.depth - 1)];
      if (p >= end) return fail("the text ends inside an object or array");
      if (*p == ',') {
        ++p;
        if (o == '[') break;  // the next element
        goto read_key;
      }
      if (*p != (o == '{' ? '}' : ']')) return fail(o == '{' ? "expected , or }" : "expected , or ]");
      ++p;
      --path.depth;
    }
    continue;
  read_key:
    ws();
    if (p >= end || *p != '"') return fail("expected a key");
    {
      bool escaped = false;
      if (!string(&path.keys[static_cast<size_t>(path.depth - 1)], &escaped))
        return fail("a key is not well formed");
    }
    ws();
    if (p >= end || *p != ':') return fail("expected :");
    ++p;
  }
}

}  // namespace agentburn::pricing::detail
