// Field names and error texts: did-you-mean for unknown fields, and what an error quotes.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "event/codec_internal.hpp"

namespace agentburn::detail {

namespace {

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

}  // namespace

std::string unknown_field_message(std::string_view name, const std::string_view* known,
                                  std::size_t count) {
  std::string shown = std::string(name.substr(0, 64));
  std::string msg = "unknown field \"" + shown + "\"";
  if (name.size() <= 64) {
    // Close as written, or once case, '_' and '-' are set aside: input_token is inputTokens
    // less one letter.
    const std::string folded = fold_name(name);
    std::string_view best;
    std::size_t best_distance = 3;
    for (std::size_t i = 0; i < count; ++i) {
      std::string_view k = known[i];
      const std::string k_folded = fold_name(k);
      std::size_t d = folded == k_folded
                          ? 0
                          : std::min(edit_distance(name, k), edit_distance(folded, k_folded));
      if (d < best_distance) {
        best_distance = d;
        best = k;
      }
    }
    if (!best.empty()) return msg + "; did you mean \"" + std::string(best) + "\"?";
  }
  msg += "; known fields are";
  for (std::size_t i = 0; i < count; ++i) {
    msg += std::string(i ? ", " : " ") + std::string(known[i]);
  }
  return msg;
}

std::string describe(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

bool fail(FieldError* err, std::string field, std::string message) {
  field = quotable(field, 64);
  err->message = quotable(field.empty() ? message : field + ": " + message, 1024);
  err->field = std::move(field);
  return false;
}

}  // namespace agentburn::detail
