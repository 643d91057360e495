// The fast path's lexer: a cursor over JSON text that reads strings and numbers exactly as
// nlohmann reads them, and declines (returns false) where it cannot be sure. Private to
// fast_path.cc; in a header only to keep that file short, every member inline as before.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "event/codec.hpp"

namespace agentburn::detail {

class JsonCursor {
 protected:
  explicit JsonCursor(std::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

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

  const char* p_;
  const char* const end_;
};

}  // namespace agentburn::detail
