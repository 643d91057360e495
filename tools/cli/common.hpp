// What every command shares: the exit codes, --root and --json, errors, and how a command is
// registered with the parser.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agentburn/status.hpp"

namespace agentburn::cli {

// The exit codes, as `agentburn --help` documents them.
enum Exit : int { kOk = 0, kFailure = 1, kUsage = 2, kPartial = 3 };

// The options every command takes.
struct Common {
  std::string root;   // --root; empty: the library's default buffer root
  bool json = false;  // --json
  // The root to use: --root, or the library's default.
  std::string resolved_root() const;
};

// What the parser's callback leaves for main() to run once parsing has succeeded.
using Command = std::function<int()>;

// Adds --root and --json to a command.
void add_common(CLI::App* command, Common* common);
// A command whose options (with their `common` member) live as long as the parser, run by
// main() with `body` once parsing has succeeded.
template <typename Options>
CLI::App* add_command(CLI::App& app, Command* run, const std::string& name,
                      const std::string& description, std::shared_ptr<Options> options,
                      int (*body)(const Options&)) {
  CLI::App* cmd = app.add_subcommand(name, description);
  add_common(cmd, &options->common);
  cmd->callback([run, options, body] { *run = [options, body] { return body(*options); }; });
  return cmd;
}

// --api-key-file: the API key is read from a file, or from AGENTBURN_API_KEY, never from an
// argument, which `ps` shows to every user.
void add_key_file(CLI::App* command, std::string* key_file);

// --ca-bundle: a PEM file of CA certificates to trust instead of the system's.
void add_ca_bundle(CLI::App* command, std::string* ca_bundle);

// The examples shown at the end of a command's --help.
void set_examples(CLI::App* command, const std::string& examples);

// "agentburn: <message>" on stderr; returns `code`.
int fail(int code, const std::string& message);
void warn(const std::string& message);

// A time given as "7d", "12h", "2w" (that long before now), "2026-12-01" (midnight UTC) or
// an ISO 8601 date-time with an offset. kInvalid naming `what` and the forms accepted.
Status parse_time(const std::string& what, const std::string& text, std::int64_t now_ms,
                  std::int64_t* unix_ms);

// The whole content of a small file (the API key file, a budgets file); kInvalid naming it.
Status read_small_file(const std::string& what, const std::string& path, std::string* out);
// The API key: the file given, else AGENTBURN_API_KEY; "" when neither is set. Never from an
// argument, which `ps` would show to every user.
Status api_key(const std::string& key_file, std::string* out);

// The commands.
void add_status(CLI::App& app, Command* run);
void add_report(CLI::App& app, Command* run);
void add_events(CLI::App& app, Command* run);
void add_dead_letters(CLI::App& app, Command* run);
void add_sync(CLI::App& app, Command* run);
void add_price(CLI::App& app, Command* run);
void add_budgets(CLI::App& app, Command* run);
void add_doctor(CLI::App& app, Command* run);

}  // namespace agentburn::cli
