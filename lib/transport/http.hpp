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
};

// Checks an endpoint URL: http or https, and plain http only to a loopback host unless
// `allow_insecure_http`. Returns the URL without trailing slashes in `normalized`.
Status check_endpoint(const std::string& url, bool allow_insecure_http, std::string* normalized);

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
