// The HTTP API: agents, ingest, read-back, and (with --enable-fault-injection) the test-only
// fault and stats routes. Every answer is JSON; errors are {"error": "..."}.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "faults.hpp"
#include "flags.hpp"
#include "lifecycle.hpp"
#include "store.hpp"

namespace agentburn::server {

// Largest request body, after decompression.
inline constexpr std::size_t kMaxBodyBytes = 16u << 20;

// Parsing a body costs several times its size in memory: bodies over kBigBodyBytes are
// parsed kBigBodySlots at a time, so that many large requests at once cannot exhaust memory.
class BigBodyGate {
 public:
  static constexpr std::size_t kBigBodyBytes = 1u << 20;
  static constexpr int kBigBodySlots = 2;
  class Pass {
   public:
    Pass(BigBodyGate* gate, std::size_t bytes);
    ~Pass();
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

   private:
    BigBodyGate* gate_;
  };

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int busy_ = 0;
};

struct ServerContext {
  ServerContext(const Flags& f, Store& s) : flags(f), store(s) {}
  const Flags& flags;
  Store& store;
  Faults faults;
  Stats stats;
  BigBodyGate big_bodies;
  Lifecycle life;
};

// Registers the routes and the JSON error and exception handlers. Every route handler runs
// inside ctx.life's enter()/leave(), and answers 503 once shutdown began.
void install_routes(httplib::Server& server, ServerContext& ctx);

}  // namespace agentburn::server
