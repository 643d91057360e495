// Fault injection for tests (--enable-fault-injection): a plan of wrong answers for the
// ingest and agent registration routes, and the counters that let a test see what the
// server was really sent.
// The plan's JSON format is described in README.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace agentburn::server {

// What the plan says about one ingest request.
struct IngestFaults {
  int status = 0;             // answer with this status and store nothing; 0: no such fault
  std::string retry_after;    // Retry-After to send with `status`, verbatim; empty: none
  std::int64_t delay_ms = 0;  // hold the answer this long (the request is processed first)
  bool open_core = false;     // behave as the open-core server: no dedupe, unknown agent -> 500
  bool error_detail = true;   // false: a 400 for invalid events carries no per-event list
  std::shared_ptr<const std::unordered_set<std::string>> reject_keys;  // may be null
};

// What the plan says about one agent registration.
struct AgentFault {
  int status = 0;           // answer with this status and register nothing; 0: no such fault
  std::string retry_after;  // Retry-After to send with `status`, verbatim; empty: none
};

class Faults {
 public:
  // Replaces the plan with `plan_json` (one item or an array of items). On a malformed plan
  // returns false with a message and keeps the current plan.
  bool set_plan(std::string_view plan_json, std::string* error);
  void clear();
  // The plan as it stands, counts remaining.
  std::string plan_json() const;

  // Consumes the plan's counts for one ingest request carrying `events` events (0 when its
  // body did not parse).
  IngestFaults next_ingest(std::size_t events);
  // Consumes the plan's counts for one registration of an agent named `name`.
  AgentFault next_agent(const std::string& name);

  // Waits `ms` milliseconds, or less once shutdown() was called.
  void hold(std::int64_t ms);
  void shutdown();

 private:
  struct StatusItem {
    int status = 0;
    std::string retry_after;
    std::uint64_t remaining = 1;
    std::size_t min_events = 0;
  };
  struct DelayItem {
    std::int64_t ms = 0;
    std::uint64_t remaining = 1;
  };
  struct AgentItem {
    int status = 0;
    std::string retry_after;
    std::unordered_set<std::string> names;
    std::vector<std::string> listed;  // the names as the plan gave them, for plan_json()
    bool limited = false;             // false: every registration of these names, for good
    std::uint64_t remaining = 0;      // when limited
  };
  struct Plan {
    std::vector<StatusItem> statuses;  // the first with a count left (and enough events) applies
    std::vector<DelayItem> delays;     // the first with a count left applies
    std::vector<AgentItem> agents;     // the first naming the agent, with a count left, applies
    std::shared_ptr<const std::unordered_set<std::string>> reject_keys;
    bool open_core = false;
    bool error_detail = true;
  };

  mutable std::mutex mu_;
  std::condition_variable stopping_cv_;
  bool stopping_ = false;
  Plan plan_;
};

// Counters since start, reported by GET /api/_stats.
struct Stats {
  std::atomic<std::uint64_t> ingest_requests{0};
  std::atomic<std::uint64_t> events_received{0};  // every event of every parsed body
  std::atomic<std::uint64_t> events_stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> faults_injected{0};  // injected statuses and rejections
  std::string to_json() const;
};

}  // namespace agentburn::server
