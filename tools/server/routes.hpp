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

// Bytes of request bodies held in memory at once, across all requests: each request takes
// what it reads as it reads it (routes that let cpp-httplib read the body take its declared
// length, or the 16 MiB cap, up front), and gives it back when it ends. Past the limit the
// request is answered 503, so that many large bodies at once cannot exhaust memory.
class BodyMemory {
 public:
  explicit BodyMemory(std::size_t limit) : limit_(limit) {}
  bool take(std::size_t bytes);
  void give(std::size_t bytes);

 private:
  std::mutex mu_;
  std::size_t limit_;
  std::size_t used_ = 0;
};

struct ServerContext {
  ServerContext(const Flags& f, Store& s)
      : flags(f),
        store(s),
        body_memory(static_cast<std::size_t>(f.max_body_memory_mib) << 20) {}
  const Flags& flags;
  Store& store;
  BodyMemory body_memory;
  Faults faults;
  Stats stats;
  BigBodyGate big_bodies;
  Lifecycle life;
};

// Registers the routes and the JSON error and exception handlers. Every route handler runs
// inside ctx.life's enter()/leave(), and answers 503 once shutdown began.
//
// Before any body is read (cpp-httplib's pre-routing handler runs once the headers are in):
// a request with both Content-Length and Transfer-Encoding, or two Content-Lengths, is a
// 400; one with a body and without the right key is a 401 (a body sent without a key to
// POST /api/agents passes unless --strict-auth, as the route allows). Both answers close
// the connection, the body unread.
void install_routes(httplib::Server& server, ServerContext& ctx);

// After each request, on its thread: gives back the body memory it took.
void end_of_request(ServerContext& ctx);

}  // namespace agentburn::server
