// Shared by the fuzz targets: invariant checks that abort with a readable report (libFuzzer
// saves the input as a crash; the corpus replay names the file), and the switch for the
// library's known issues.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace agentburn_fuzz {

// Printable form of bytes for a report: non-ASCII and control bytes as \xNN, cut to `max`.
inline std::string show(std::string_view s, std::size_t max = 400) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// Run by fail() before it aborts: a target that keeps files removes them here.
inline void (*before_abort)() = nullptr;

[[noreturn]] inline void fail(const char* file, int line, const char* what,
                              const std::string& detail) {
  std::fprintf(stderr, "\n*** invariant failed at %s:%d: %s\n%s\n", file, line, what,
               detail.c_str());
  std::fflush(stderr);
  if (before_abort) before_abort();
  std::abort();
}

// Issues the fuzzers found, each with a regression input in the corpus (README.md). All are
// fixed, so each check is a failure by default; AGENTBURN_FUZZ_STRICT=0 tolerates them, for
// a run that should look past a known issue for new ones.
inline bool strict() {
  static const bool value = [] {
    const char* v = std::getenv("AGENTBURN_FUZZ_STRICT");
    return !v || !*v || std::string_view(v) != "0";
  }();
  return value;
}

template <typename Detail>
bool known_issue(bool cond, const char* id, const char* file, int line, Detail detail) {
  if (!cond) return false;
  if (!strict()) return true;
  fail(file, line, (std::string("known issue ") + id).c_str(), detail());
}

}  // namespace agentburn_fuzz

#define FUZZ_CHECK(cond, detail)                                            \
  do {                                                                      \
    if (!(cond)) agentburn_fuzz::fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

// A known issue `id` shows when `cond` holds: true (the caller skips the rest of its checks
// for this input) unless strict, where it is a failure. `detail` is only built then.
#define FUZZ_KNOWN_ISSUE(cond, id, detail) \
  agentburn_fuzz::known_issue((cond), id, __FILE__, __LINE__, [&] { return std::string(detail); })
