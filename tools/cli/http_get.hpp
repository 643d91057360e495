// One GET to an AgentBurn server with the API key, for the commands that read a server
// (report --server, budgets --server, doctor).
#pragma once

#include <cstdint>
#include <string>

#include "agentburn/status.hpp"

namespace agentburn::cli {

struct GetResult {
  long status = 0;  // 0: no HTTP answer (error says why)
  std::string body;
  std::string error;
  std::string date;         // the Date header
  std::string cert_expiry;  // https: the server certificate's "Expire date"
  std::string cert_subject;
};

struct GetOptions {
  std::string api_key;  // sent as x-api-key and Authorization: Bearer; "" sends none
  int timeout_ms = 15000;
  bool cert_info = false;
  std::string ca_bundle;  // PEM file of CA certificates to trust instead of the system's
};

GetResult http_get(const std::string& url, const GetOptions& options);

// A server's base URL checked (http or https; plain http only to a loopback host) and
// without a trailing slash; kInvalid naming `what`.
Status server_url(const std::string& what, const std::string& url, std::string* base);

// The server's JSON answer to GET base+path, or an error naming the URL and the status.
Status get_json(const std::string& base, const std::string& path, const std::string& key,
                std::string* body);

}  // namespace agentburn::cli
