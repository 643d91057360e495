#include "pricing/json_scan.hpp"

namespace agentburn::pricing::detail {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool read_u4(std::string_view raw, size_t i, uint32_t* out) {
  if (i + 4 > raw.size()) return false;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    const int h = hex(raw[i + k]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  *out = v;
  return true;
}

}  // namespace

bool decode_json_string(std::string_view raw, std::string* out) {
  out->clear();
  out->reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp = 0;
        if (!read_u4(raw, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo = 0;
          if (i + 2 >= raw.size() || raw[i + 1] != '\\' || raw[i + 2] != 'u' ||
              !read_u4(raw, i + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        put_utf8(cp, out);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

bool json_count(const JsonScalar& v, uint64_t* out) {
  if (v.kind != JsonScalar::kNumber || v.raw.empty() || v.raw.size() > 13) return false;
  uint64_t n = 0;
  for (char c : v.raw) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > 1000000000000ull) return false;
  *out = n;
  return true;
}

std::string shown_scalar(const JsonScalar& v) {
  switch (v.kind) {
    case JsonScalar::kTrue: return "true";
    case JsonScalar::kFalse: return "false";
    case JsonScalar::kNull: return "null";
    case JsonScalar::kNumber: return std::string(v.raw.substr(0, 40));
    case JsonScalar::kString: break;
  }
  std::string s = "\"";
  for (char c : v.raw.substr(0, 40)) {
    const unsigned char u = static_cast<unsigned char>(c);
    s += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  return s + (v.raw.size() > 40 ? "...\"" : "\"");
}

}  // namespace agentburn::pricing::detail
