// Command-line flags of agentburn-server.
#pragma once

#include <string>

namespace agentburn::server {

struct Flags {
  std::string host = "127.0.0.1";
  int port = 3000;  // 0: the kernel picks a free port
  std::string data_dir;
  std::string api_key;  // --api-key-file's first line, --api-key, else $AGENTBURN_API_KEY
  bool no_auth = false;
  bool strict_auth = false;
  std::string tls_cert;
  std::string tls_key;
  bool fault_injection = false;
  int threads = 64;
  int keep_alive_seconds = 5;
  int header_timeout_seconds = 10;
  int max_connections = 1000;
  int max_connections_per_client = 128;
  int max_body_memory_mib = 256;
  bool aggregates = true;  // --no-aggregates turns them off
  bool verbose = false;
  bool quiet = false;
};

enum class FlagsOutcome { kRun, kHelp, kError };

// Parses argv into `out`; `env_api_key` (may be null) is the key from the environment.
// kError fills `error` with a message that names the flag.
FlagsOutcome parse_flags(int argc, char** argv, const char* env_api_key, Flags* out,
                         std::string* error);

std::string help_text();

// "http://127.0.0.1:3000" (brackets around IPv6 literals).
std::string base_url(const Flags& flags, int port);

}  // namespace agentburn::server
