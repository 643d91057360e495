#include "common.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "event/codec.hpp"
#include "store/root.hpp"

namespace agentburn::cli {

std::string Common::resolved_root() const {
  return root.empty() ? detail::default_buffer_root() : root;
}

void add_common(CLI::App* command, Common* common) {
  command->add_option("--root", common->root,
                      "Buffer root (default: $XDG_DATA_HOME/agentburn/buffer or "
                      "~/.local/share/agentburn/buffer)");
  command->add_flag("--json", common->json, "Machine-readable output (JSON)");
}

void add_key_file(CLI::App* command, std::string* key_file) {
  command->add_option("--api-key-file", *key_file,
                      "File holding the API key (default: $AGENTBURN_API_KEY; never an "
                      "argument, which ps shows)");
}

void add_ca_bundle(CLI::App* command, std::string* ca_bundle) {
  command
      ->add_option("--ca-bundle", *ca_bundle,
                   "PEM file of CA certificates to trust instead of the system's")
      ->check(CLI::ExistingFile);
}

void set_examples(CLI::App* command, const std::string& examples) {
  command->footer("Examples:\n" + examples +
                  "\nExit codes: 0 ok, 1 failure, 2 usage error, 3 partial (some folders or "
                  "events could not be handled).");
}

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "agentburn: %s\n", message.c_str());
  return code;
}

void warn(const std::string& message) {
  std::fprintf(stderr, "agentburn: warning: %s\n", message.c_str());
}

namespace {

bool parse_count(const std::string& digits, std::int64_t* out) {
  if (digits.empty() || digits.size() > 9) return false;
  std::int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

Status parse_time(const std::string& what, const std::string& text, std::int64_t now_ms,
                  std::int64_t* unix_ms) {
  static const struct {
    char unit;
    std::int64_t ms;
  } kUnits[] = {{'h', 3600000}, {'d', 86400000}, {'w', 7 * 86400000LL}};
  if (!text.empty()) {
    for (const auto& u : kUnits) {
      std::int64_t n = 0;
      if (text.back() == u.unit && parse_count(text.substr(0, text.size() - 1), &n)) {
        *unix_ms = now_ms - n * u.ms;
        return Status();
      }
    }
  }
  std::string full = text.size() == 10 ? text + "T00:00:00Z" : text;
  if (detail::parse_timestamp(full, unix_ms)) return Status();
  return Status::invalid(what + ": \"" + text +
                         "\" is not a time; give a duration before now (7d, 12h, 2w), a UTC "
                         "date (2026-12-01) or a date-time with an offset "
                         "(2026-12-01T09:00:00Z)");
}

Status read_small_file(const std::string& what, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid(what + ": cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::invalid(what + ": cannot read " + path);
  *out = text.str();
  return Status();
}

Status api_key(const std::string& key_file, std::string* out) {
  if (!key_file.empty()) {
    std::string text;
    Status s = read_small_file("--api-key-file", key_file, &text);
    if (!s.ok()) return s;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    if (text.empty()) return Status::invalid("--api-key-file: " + key_file + " is empty");
    *out = text;
    return Status();
  }
  const char* env = std::getenv("AGENTBURN_API_KEY");
  *out = env ? env : "";
  return Status();
}

}  // namespace agentburn::cli
