// Helpers the C++ client tests share: options that retry quickly, an open that must succeed,
// and the idempotency keys a buffer root holds.
#pragma once

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <agentburn/agentburn.hpp>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

// Only where lib/ is on the include path (tests that read a buffer directly).
#if __has_include("store/buffer.hpp")
#include "store/buffer.hpp"
#define AGENTBURN_TESTS_HAVE_BUFFER 1
#endif

namespace testing {

// A client of the server at `url` whose retries, flushes and close run in milliseconds, so
// that the retry table plays out within a test.
inline agentburn::Options online(const std::string& root, const std::string& url,
                                 const std::string& key = kTestKey) {
  agentburn::Options o;
  o.buffer_root = root;
  o.endpoint = url;
  o.api_key = key;
  o.flush_interval_ms = 20;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 200;
  o.request_timeout_ms = 5000;
  o.close_timeout_ms = 500;
  return o;
}

inline agentburn::Client open_client(const agentburn::Options& o) {
  auto c = agentburn::Client::open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  return std::move(c.value());
}

#ifdef AGENTBURN_TESTS_HAVE_BUFFER
// The idempotency keys of everything pending under `root`, counting repeats, read through a
// buffer that takes over or adopts every folder there (so only while no client is open).
inline std::multiset<std::string> keys_on_disk(const std::string& root) {
  agentburn::detail::BufferOptions o;
  o.root = root;
  std::unique_ptr<agentburn::detail::Buffer> b;
  agentburn::Status s = agentburn::detail::Buffer::open(o, &b);
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  std::multiset<std::string> keys;
  std::vector<agentburn::detail::StoredEvent> batch;
  while (true) {
    REQUIRE(b->read_next(1000, 1 << 24, &batch).ok());
    if (batch.empty()) break;
    for (auto& e : batch) {
      auto j = nlohmann::json::parse(e.json, nullptr, false);
      REQUIRE_MESSAGE(j.is_object(), "an event on disk does not parse: " << e.json.substr(0, 200));
      keys.insert(j.value("idempotency_key", ""));
    }
  }
  return keys;
}
#endif

}  // namespace testing
