// Helpers shared by the benchmarks: timing and percentiles, temporary folders, /proc readers,
// the sample event, a raw RocksDB database configured like the buffer's, the reference
// server as a child process, and small HTTP calls.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agentburn/event.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Latency summary of samples in nanoseconds, reported in microseconds.
struct Percentiles {
  std::size_t n = 0;
  double mean_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};
Percentiles percentiles(std::vector<std::int64_t> samples_ns);

[[noreturn]] void die(const std::string& message);

// A fresh folder "<base>/<prefix>XXXXXX".
std::string make_temp_dir(const std::string& base, const std::string& prefix);
void remove_tree(const std::string& path);
// Sum of the sizes of the regular files under `path`.
std::uint64_t tree_bytes(const std::string& path);
void copy_tree(const std::string& from, const std::string& to);

// /proc/self/status fields in kB ("VmRSS", "VmHWM"); -1 when absent.
long status_kb(const char* field);
// utime + stime of this process, seconds.
double cpu_seconds();
int thread_count();
// Context switches (voluntary + involuntary) summed over this process's threads.
std::uint64_t context_switches();
// "name xN" for each thread name of this process.
std::string thread_names();

// The seed's curl example event (agentId, provider, model, operation, tokens, cost, taskId,
// workflowId); track() adds timestamp and idempotency_key.
agentburn::Event sample_event(const std::string& agent_id);
std::string sample_event_json(const std::string& agent_id);
// What track() stores for `e`: validated (fresh key and timestamp), then encoded.
std::string stored_form(const agentburn::Event& e);

// Opens a client on `root` with the server at `url` as endpoint (max_batches_in_flight
// `slots`), flushes until everything pending is delivered, closes. Times the open (which
// adopts the folders a closed backlog left) and the delivery. Dies on failure.
struct Drain {
  double open_s = 0, drain_s = 0;
  std::uint64_t delivered = 0;
};
Drain drain(const std::string& root, const std::string& url, const std::string& api_key, int slots);

// A plain RocksDB database with the buffer's write-path settings (memtable size and count,
// compression), one column family: the "raw put" baseline.
class RawDb {
 public:
  explicit RawDb(const std::string& path);
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  // Puts `value` under the next 8-byte big-endian key; dies on error.
  void put(const std::string& value, bool sync = false);

 private:
  rocksdb::DB* db_ = nullptr;
  std::uint64_t seq_ = 1;
};

// Opens a buffer folder written by the library (column families default, dead, meta), flushes
// the memtables and compacts everything; for the "after compaction" disk figure.
void flush_and_compact_buffer_folder(const std::string& folder);

// The reference server as a child process on a free loopback port.
class Server {
 public:
  // `extra_args` go after the server's usual flags (e.g. "--no-aggregates").
  Server(const std::string& binary, const std::string& data_dir, const std::string& api_key,
         const std::vector<std::string>& extra_args = {});
  ~Server();
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  void stop();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_;
};

// POST /api/agents; returns the server's agent id. Dies on failure.
std::string register_agent(const std::string& url, const std::string& name);
// GET with the key; returns the body, dies unless 200.
std::string http_get(const std::string& url, const std::string& api_key);
// events_stored of GET /api/_stats (the server runs with --enable-fault-injection for it).
std::uint64_t server_events_stored(const std::string& url, const std::string& api_key);

// Runs `args` (args[0] found in PATH when it has no slash) and returns what it printed on
// stdout; stderr goes through. Dies when it fails or runs past `timeout_s`.
std::string run_capture(const std::vector<std::string>& args, int timeout_s);

}  // namespace bench
