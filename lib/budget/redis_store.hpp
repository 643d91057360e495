// The connection to a shared budget store on Redis (Options::budget_store "redis://..."),
// and the four server-side scripts every budget change runs as (see fleet.hpp for what they
// keep). One connection, reused by every thread in turn and opened again, with backoff, after
// a failure; every call, the wait for the connection included, is bounded by one timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/status.hpp"

struct redisContext;

namespace agentburn::budget {

struct StoreUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string password;
  // "redis://host:port/db", without the password: for messages.
  std::string shown() const;
};

// kInvalid, saying what is wrong, unless `url` is "local" or a redis:// URL this build can
// use.
Status check_store_url(const std::string& url);
Status parse_store_url(const std::string& url, StoreUrl* out);

enum class Script { kReserve = 0, kSettle = 1, kRelease = 2, kRead = 3 };

class RedisStore {
 public:
  RedisStore(StoreUrl url, int timeout_ms);
  ~RedisStore();
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // Runs `script` (by its hash; loaded first where the server does not know it) and gives its
  // reply's integers, flattened. kNetwork or kTimeout when the store cannot be reached within
  // the timeout (or refused for a while after a failure: see backoff), kInternal for an error
  // the store answered. `extra` is added to the timeout (a batch of settles).
  Status run(Script script, const std::vector<std::string>& keys,
             const std::vector<std::string>& args, std::vector<long long>* out,
             std::chrono::milliseconds extra = std::chrono::milliseconds(0));
  // One plain command (bench and tests): its reply's integers, or its string in `text`.
  Status command(const std::vector<std::string>& argv, std::vector<long long>* out,
                 std::string* text = nullptr);

  const StoreUrl& url() const { return url_; }
  // Whether the last call reached the store (true before the first).
  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }

  // fork(): the connection's lock is taken before and released after in the parent; in the
  // child the connection (a socket shared with the parent) is dropped, never used.
  void lock_for_fork() { acquire(Clock::time_point::max()); }
  void unlock_after_fork_parent() { release(); }
  void after_fork_child();

 private:
  using Clock = std::chrono::steady_clock;
  // The connection, one caller at a time, waited for until a deadline. (A flag under a mutex
  // and a condition variable rather than std::timed_mutex, whose timed lock ThreadSanitizer
  // does not follow.)
  bool acquire(Clock::time_point deadline);
  void release();
  struct Turn {
    RedisStore* store;
    bool held;
    Turn(RedisStore* s, Clock::time_point deadline) : store(s), held(s->acquire(deadline)) {}
    ~Turn() {
      if (held) store->release();
    }
  };
  // With mu_ held: a connection ready for a command, or why there is none.
  Status connect(Clock::time_point deadline);
  Status call(const std::vector<std::string_view>& argv, Clock::time_point deadline, void** reply);
  void fail(const std::string& why);  // drops the connection, backs off

  StoreUrl url_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable turn_cv_;
  bool busy_ = false;
  redisContext* ctx_ = nullptr;
  std::string sha_[4];  // the scripts' hashes, once loaded on this connection's server
  Clock::time_point retry_at_{};  // no new connection before this, after a failure
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
  std::chrono::microseconds socket_timeout_{0};  // as last set on ctx_
  std::atomic<bool> reachable_{true};
};

}  // namespace agentburn::budget
