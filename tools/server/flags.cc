// Flag parsing and --help. Every flag takes "--flag VALUE" or "--flag=VALUE".
#include "flags.hpp"

#include <charconv>
#include <fstream>
#include <sstream>
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

// The key is the file's first line, without its line end and surrounding blanks.
bool read_key_file(const std::string& path, std::string* key, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "--api-key-file: cannot read " + path;
    return false;
  }
  std::string line;
  std::getline(in, line);
  const char* blanks = " \t\r\n";
  auto first = line.find_first_not_of(blanks);
  if (first == std::string::npos) {
    *error = "--api-key-file: " + path + " holds no key on its first line";
    return false;
  }
  *key = line.substr(first, line.find_last_not_of(blanks) - first + 1);
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

Usage: agentburn-server --data DIR [--api-key-file FILE | --no-auth] [options]
       (the key may also come from $AGENTBURN_API_KEY)

  --listen HOST:PORT      address to serve on (default 127.0.0.1:3000); port 0 picks a free
                          port. When ready, one line "listening on http://HOST:PORT" is
                          printed on stdout.
  --data DIR              folder of the database (created if missing, mode 0700, its files
                          0600; an existing folder that others can read is tightened to
                          0700); what is stored there survives restarts. Required.
  --api-key-file FILE     read the API key clients send in "x-api-key" or "Authorization:
                          Bearer" from the first line of FILE (keep it mode 0600).
                          Default: $AGENTBURN_API_KEY. With no key the server refuses to start
                          unless --no-auth is given.
  --api-key KEY           the key itself. Avoid it: a command line can be read by every local
                          user (ps, /proc/PID/cmdline). Use --api-key-file or the variable.
  --no-auth               serve every route without a key.
  --strict-auth           require the key on POST /api/agents too (by default that route
                          takes requests without a key, as the AgentBurn docs show; a key
                          that is sent must still be right).
  --tls-cert FILE         serve HTTPS with this PEM certificate (chain) ...
  --tls-key FILE          ... and this PEM private key. Both or neither.
  --enable-fault-injection
                          enable the test-only routes POST/DELETE /api/_faults and
                          GET /api/_stats (see README.md). Never in production.
  --threads N             worker threads, one per request being served (default 64,
                          1..1024). Idle connections and headers still arriving hold none.
  --keep-alive SECONDS    how long an idle keep-alive connection is kept (default 5, 1..300).
  --header-timeout SECONDS
                          time for a request's whole header block to arrive, from its first
                          byte (default 10, 1..300); then 408 and the connection is closed.
  --max-connections N     open connections in all (default 1000, 1..100000); past it the
                          oldest idle keep-alive connection is closed, or the new one is
                          answered 503.
  --max-connections-per-client N
                          open connections from one address (default 128, 1..100000); past
                          it the client's oldest idle one is closed, or the new one is 503.
  --max-body-memory MIB   request bodies held in memory at once, in MiB (default 256,
                          1..65536); a request that would go past it is answered 503.
  --no-aggregates         do not keep cost aggregates as events are stored (to measure
                          what they cost); the totals routes answer 503. The next run
                          without the flag rebuilds them from the stored events.
  --verbose               log one line per request on stderr.
  --quiet                 log nothing on stderr but errors.
  --help                  show this text.

Limits: request bodies up to 16 MiB (after gzip/deflate decompression), 1 to 1000 events
per ingest request, JSON nested at most 64 levels (32 within one event); request headers
up to 100 lines and 64 KiB (431 past either). A request with a body and without the right
key is answered 401 before its body is read.

Signals: SIGINT and SIGTERM stop accepting connections, finish the requests in flight and
exit 0.
)";
}

FlagsOutcome parse_flags(int argc, char** argv, const char* env_api_key, Flags* out,
                         std::string* error) {
  bool key_given = false;
  std::string key_file;
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
        flag("--verbose") || flag("--quiet") || flag("--no-aggregates")) {
      if (!no_value()) return FlagsOutcome::kError;
      if (flag("--no-auth")) out->no_auth = true;
      if (flag("--strict-auth")) out->strict_auth = true;
      if (flag("--enable-fault-injection")) out->fault_injection = true;
      if (flag("--verbose")) out->verbose = true;
      if (flag("--quiet")) out->quiet = true;
      if (flag("--no-aggregates")) out->aggregates = false;
      continue;
    }
    if (!(flag("--listen") || flag("--data") || flag("--api-key") || flag("--api-key-file") ||
          flag("--tls-cert") || flag("--tls-key") || flag("--threads") || flag("--keep-alive") ||
          flag("--header-timeout") || flag("--max-connections") ||
          flag("--max-connections-per-client") || flag("--max-body-memory"))) {
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
    } else if (flag("--api-key-file")) {
      key_file = value;
    } else if (flag("--tls-cert")) {
      out->tls_cert = value;
    } else if (flag("--tls-key")) {
      out->tls_key = value;
    } else if (flag("--threads")) {
      if (!parse_int(value, 1, 1024, &out->threads)) {
        *error = "--threads wants a number in 1..1024, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (flag("--header-timeout")) {
      if (!parse_int(value, 1, 300, &out->header_timeout_seconds)) {
        *error = "--header-timeout wants seconds in 1..300, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (flag("--max-connections") || flag("--max-connections-per-client")) {
      int* target = flag("--max-connections") ? &out->max_connections
                                              : &out->max_connections_per_client;
      if (!parse_int(value, 1, 100000, target)) {
        *error = arg + " wants a number in 1..100000, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (flag("--max-body-memory")) {
      if (!parse_int(value, 1, 65536, &out->max_body_memory_mib)) {
        *error = "--max-body-memory wants MiB in 1..65536, got \"" + value + "\"";
        return FlagsOutcome::kError;
      }
    } else if (!parse_int(value, 1, 300, &out->keep_alive_seconds)) {
      *error = "--keep-alive wants seconds in 1..300, got \"" + value + "\"";
      return FlagsOutcome::kError;
    }
  }

  if (!key_file.empty()) {
    if (key_given) {
      *error = "--api-key and --api-key-file cannot be combined";
      return FlagsOutcome::kError;
    }
    if (!read_key_file(key_file, &out->api_key, error)) return FlagsOutcome::kError;
    key_given = true;
  }
  if (!key_given && env_api_key) out->api_key = env_api_key;
  if (out->data_dir.empty()) {
    *error = "--data DIR is required: the folder where the server keeps what it receives";
    return FlagsOutcome::kError;
  }
  if (out->no_auth && (key_given || out->strict_auth)) {
    *error = "--no-auth cannot be combined with --api-key, --api-key-file or --strict-auth";
    return FlagsOutcome::kError;
  }
  if (out->no_auth) out->api_key.clear();
  if (!out->no_auth && out->api_key.empty()) {
    *error =
        "no API key: pass --api-key-file FILE or set AGENTBURN_API_KEY (or --no-auth to "
        "serve without one)";
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
