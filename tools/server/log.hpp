// Values from clients written to the log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace agentburn::server {

// `value` with every byte outside printable ASCII (controls, DEL, bytes >= 0x80) and the
// backslash written as \xNN, cut to `max` bytes of input ("..." marks a cut): a decoded
// "%0a" cannot start a forged log line, nor an escape byte reach a terminal.
inline std::string log_escape(std::string_view value, std::size_t max) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size() < max ? value.size() : max);
  for (std::size_t i = 0; i < value.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (value.size() > max) out += "...";
  return out;
}

}  // namespace agentburn::server
