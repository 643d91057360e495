// Flag parsing and --help. Every flag takes "--flag VALUE" or "--flag=VALUE".
#include "flags.hpp"

#include <charconv>
#include <string_view>

namespace agentburn::server {

namespace {

bool parse_int(std::string_view text, int min, int max, int* out) {
  int v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

bool parse_listen(const std::string& text, Flags* out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return false;
  out->host = host;
  return parse_int(std::string_view(text).substr(colon + 1), 0, 65535, &out->port);
}

}  // namespace

std::string help_text() {
  return R"(agentburn-server: a reference server for the AgentBurn HTTP API (agents, ingest,
read-back), storing what it receives in RocksDB.

Usage: agentburn-server --data DIR (--api-key KEY | --no-auth) [options]

  --listen HOST:PORT      address to serve on (default 127.0.0.1:3000); port 0 picks a free
                          port. When ready, one line "listening on http://HOST:PORT" is
                          printed on stdout.
  --data DIR              folder of the database (created if missing); what is stored there
                          survives restarts. Required.
  --api-key KEY           the API key clients send in "x-api-key" or "Authorization: Bearer".
                          Default: $AGENTBURN_API_KEY. With no key the server refuses to start
                          unless --no-auth is given.
  --no-auth               serve every route without a key.
  --strict-auth           require the key on POST /api/agents too (by default that route
                          takes requests without a key, as the AgentBurn docs show; a key
                          that is sent must still be right).
  --tls-cert FILE         serve HTTPS with this PEM certificate (chain) ...
  --tls-key FILE          ... and this PEM private key. Both or neither.
  --enable-fault-injection
                          enable the test-only routes POST/DELETE /api/_faults and
                          GET /api/_stats (see README.md). Never in production.
  --threads N             worker threads, one per open connection (default 64, 1..1024).
  --keep-alive SECONDS    how long an idle keep-alive connection is kept (default 5, 1..300).
  --verbose               log one line per request on stderr.
  --quiet                 log nothing on stderr but errors.
  --help                  show this text.

Limits: request bodies up to 16 MiB (after gzip/deflate decompression), 1 to 1000 events
per ingest request, JSON nested at most 64 levels (32 within one event).

Signals: SIGINT and SIGTERM stop accepting connections, finish the requests in flight and
exit 0.
)";
}

FlagsOutcome parse_flags(int argc, char** argv, const char* env_api_key, Flags* out,
                         std::string* error) {
  bool key_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    auto flag = [&](const char* name) { return arg == name; };
    auto take_value = [&]() -> bool {
      if (has_inline_value) return true;
      if (i + 1 >= argc) {
        *error = arg + " needs a value (see --help)";
        return false;
      }
      value = argv[++i];
      return true;
    };
    auto no_value = [&]() -> bool {
      if (has_inline_value) *error = arg + " takes no value (see --help)";
      return !has_inline_value;
    };

    if (flag("--help") || flag("-h")) return FlagsOutcome::kHelp;
    if (flag("--no-auth") || flag("--strict-auth") || flag("--enable-fault-injection") ||
        flag("--verbose") || flag("--quiet")) {
      if (!no_value()) return FlagsOutcome::kError;
      if (flag("--no-auth")) out->no_auth = true;
      if (flag("--strict-auth")) out->strict_auth = true;
      if (flag("--enable-fault-injection")) out->fault_injection = true;
      if (flag("--verbose")) out->verbose = true;
      if (flag("--quiet")) out->quiet = true;
      continue;
    }
    if (!(flag("--listen") || flag("--data") || flag("--api-key") || flag("--tls-cert") ||
          flag("--tls-key") || flag("--threads") || flag("--keep-alive"))) {
      *error = "unknown flag \"" + arg + "\" (see --help)";
      return FlagsOutcome::kError;
    }
    if (!take_value()) return FlagsOutcome::kError;
    if (flag("--listen")) {
      if (!parse_listen(value, out)) {
        *error = "--listen wants HOST:PORT with a port in 0..65535, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (flag("--data")) {
      out->data_dir = value;
    } else if (flag("--api-key")) {
      out->api_key = value;
      key_given = true;
    } else if (flag("--tls-cert")) {
      out->tls_cert = value;
    } else if (flag("--tls-key")) {
      out->tls_key = value;
    } else if (flag("--threads")) {
      if (!parse_int(value, 1, 1024, &out->threads)) {
        *error = "--threads wants a number in 1..1024, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (!parse_int(value, 1, 300, &out->keep_alive_seconds)) {
      *error = "--keep-alive wants seconds in 1..300, got \"" + value + "\"";
      return FlagsOutcome::kError;
    }
  }

  if (!key_given && env_api_key) out->api_key = env_api_key;
  if (out->data_dir.empty()) {
    *error = "--data DIR is required: the folder where the server keeps what it receives";
    return FlagsOutcome::kError;
  }
  if (out->no_auth && (key_given || out->strict_auth)) {
    *error = "--no-auth cannot be combined with --api-key or --strict-auth";
    return FlagsOutcome::kError;
  }
  if (out->no_auth) out->api_key.clear();
  if (!out->no_auth && out->api_key.empty()) {
    *error =
        "no API key: pass --api-key KEY or set AGENTBURN_API_KEY (or --no-auth to serve "
        "without one)";
    return FlagsOutcome::kError;
  }
  if (out->tls_cert.empty() != out->tls_key.empty()) {
    *error = "--tls-cert and --tls-key go together";
    return FlagsOutcome::kError;
  }
  return FlagsOutcome::kRun;
}

std::string base_url(const Flags& flags, int port) {
  std::string host =
      flags.host.find(':') != std::string::npos ? "[" + flags.host + "]" : flags.host;
  return (flags.tls_cert.empty() ? "http://" : "https://") + host + ":" + std::to_string(port);
}

}  // namespace agentburn::server
