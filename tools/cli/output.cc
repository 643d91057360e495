#include "output.hpp"

#include <algorithm>
#include <cmath>

namespace agentburn::cli {

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
  right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}
void Table::add_footer(std::vector<std::string> row) {
  footer_.push_back(std::move(row));
}

namespace {

// Display width: UTF-8 continuation bytes take no column.
std::size_t width_of(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

}  // namespace

void Table::print(std::FILE* out) const {
  std::vector<std::size_t> w(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < w.size(); ++i) {
      w[i] = std::max(w[i], width_of(row[i]));
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  for (const auto& r : footer_) measure(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      std::string pad(w[i] - width_of(cell), ' ');
      if (i) text += "  ";
      text += right_[i] ? pad + cell : cell + pad;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    std::fprintf(out, "%s\n", text.c_str());
  };
  auto rule = [&] {
    std::size_t total = 0;
    for (std::size_t x : w) total += x;
    total += 2 * (w.empty() ? 0 : w.size() - 1);
    std::string r;
    for (std::size_t i = 0; i < total; ++i) r += "\u2500";
    std::fprintf(out, "%s\n", r.c_str());
  };
  line(header_);
  rule();
  for (const auto& r : rows_) line(r);
  if (!footer_.empty()) {
    if (!rows_.empty()) rule();
    for (const auto& r : footer_) line(r);
  }
}

std::string count(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string usd(std::int64_t nanos) {
  // Rounded to 1/10,000 of a dollar, in integers: no floating point error in a total.
  std::int64_t units = (nanos + (nanos >= 0 ? 50000 : -50000)) / 100000;
  std::int64_t whole = units / 10000, frac = units % 10000;
  if (frac < 0) frac = -frac;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld", static_cast<long long>(frac));
  return std::string(units < 0 && whole == 0 ? "-" : "") + "$" + count(whole) + "." + buf;
}

std::string bytes(std::uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::string age(std::int64_t ms) {
  if (ms < 0) ms = 0;
  std::int64_t s = ms / 1000;
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh %lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd %lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string bar(double fraction, int width) {
  if (!(fraction > 0)) return "";
  int eighths = static_cast<int>(std::lround(std::min(fraction, 1.0) * width * 8));
  static const char* kParts[] = {"",       "\u258f", "\u258e", "\u258d",
                                 "\u258c", "\u258b", "\u258a", "\u2589"};
  std::string out;
  for (int i = 0; i < eighths / 8; ++i) out += "\u2588";
  out += kParts[eighths % 8];
  if (out.empty()) out = "\u258f";
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace agentburn::cli
