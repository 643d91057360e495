// HTTP over libcurl for the AgentBurn API: several POSTs in flight on reused connections
// (curl's multi interface), each with connect and total timeouts, and a wake-up that lets
// close() abort them at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agentburn/status.hpp"

namespace agentburn::detail {

struct TransportConfig {
  std::string endpoint;  // base URL without a trailing slash
  std::string api_key;
  std::string proxy;
  // Ignore the environment's proxy variables (http_proxy, all_proxy): set for plain http to a
  // loopback endpoint without a `proxy` option, which a proxy elsewhere could only expose.
  bool direct = false;
  std::string ca_bundle;
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 30000;
  bool gzip = false;
  int slots = 1;  // transfers in flight at once
};

struct HttpResult {
  long status = 0;    // 0 when no HTTP answer came
  std::string body;   // the first 64 KiB of the answer
  std::optional<std::int64_t> retry_after_ms;  // from Retry-After (seconds or HTTP date)
  std::string error;  // libcurl's reason when status == 0; never holds the API key
  // No answer, but the request may have reached the server (timeout or reset after sending):
  // sending it again may count it twice at a server that does not deduplicate.
  bool maybe_delivered = false;
  // The TLS handshake failed or the server's certificate was not trusted: a configuration
  // error (https:// to a plain-http server, a wrong CA bundle), not an outage.
  bool tls_failed = false;
};

// Checks an endpoint URL: http or https, and plain http only to a loopback host unless
// `allow_insecure_http`. Returns the URL without trailing slashes in `normalized`.
// An endpoint given with the ingest route appended ("https://host/api/ingest") is taken as
// the base URL before it, with `*stripped` set so that the caller can say so.
Status check_endpoint(const std::string& url, bool allow_insecure_http, std::string* normalized,
                      bool* stripped = nullptr);

// Checks the route to the endpoint as a whole: plain http (unless `allow_insecure_http`) may
// go through a proxy only when the proxy is on this machine too (a loopback host), since the
// API key would cross the network in clear on the way to it. With no `proxy` option, a plain
// http loopback endpoint is reached directly, whatever the environment's http_proxy says
// (see TransportConfig::direct).
Status check_route(const std::string& endpoint, const std::string& proxy,
                   bool allow_insecure_http);

// Whether `endpoint` is plain http to a loopback host: such a route never takes a proxy
// from the environment.
bool is_plain_http_loopback(const std::string& endpoint);

// Whether the API key can go in an HTTP header as it is: no control characters (CR and LF
// would end the header and start another one).
Status check_api_key(const std::string& key);

// Parses a Retry-After value: delta-seconds or an HTTP date. Milliseconds from now, >= 0.
std::optional<std::int64_t> parse_retry_after(const std::string& value);

class Transport {
 public:
  explicit Transport(const TransportConfig& config);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  int in_flight() const { return in_flight_; }
  bool has_free_slot() const { return in_flight_ < config_.slots; }

  // Starts POST {endpoint}{path}. False when no slot is free.
  bool start(const std::string& path, std::string body, std::uint64_t tag);
  // Runs the transfers for at most `max_wait` (less if one finishes or interrupt() is
  // called) and appends the finished ones to `done`.
  void poll(std::chrono::milliseconds max_wait,
            std::vector<std::pair<std::uint64_t, HttpResult>>* done);
  // From any thread: makes a poll() under way return now.
  void interrupt();
  // Aborts every transfer in flight; their results are dropped.
  void cancel_all();

  // One blocking POST on a connection of its own, bounded by the timeouts; returns early
  // (status 0, error "aborted") once `*abort` becomes true.
  // One blocking GET of {endpoint}{path}, as post_once.
  static HttpResult get_once(const TransportConfig& config, const std::string& path,
                             const std::atomic<bool>* abort);
  static HttpResult post_once(const TransportConfig& config, const std::string& path,
                              const std::string& body, const std::atomic<bool>* abort);

  struct Slot;

 private:
  void start_curl();

  TransportConfig config_;
  std::atomic<void*> multi_{nullptr};  // made at the first start(); interrupt() reads it
  std::vector<Slot*> slots_;
  int in_flight_ = 0;
};

}  // namespace agentburn::detail
