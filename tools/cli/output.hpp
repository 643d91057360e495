// Text output: aligned tables, money, sizes and ages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace agentburn::cli {

// An aligned table: numbers right-aligned, text left-aligned, a rule under the header and
// above the footer rows (totals).
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned);
  void add(std::vector<std::string> row);
  void add_footer(std::vector<std::string> row);
  void print(std::FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_, footer_;
};

// "$1,234.5678": dollars from nano-dollars, 4 decimals.
std::string usd(std::int64_t nanos);
// 1234567 -> "1,234,567".
std::string count(std::int64_t n);
// 1536 -> "1.5 KiB".
std::string bytes(std::uint64_t n);
// A duration in milliseconds as "3d 4h", "12m", "45s".
std::string age(std::int64_t ms);
// A bar of `width` cells for `fraction` (0..1) of the widest.
std::string bar(double fraction, int width);
// CSV field quoting (RFC 4180).
std::string csv_field(const std::string& s);

}  // namespace agentburn::cli
