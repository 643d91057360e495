// Background delivery: one thread per client reads the buffer in arrival order, sends
// batches to POST {endpoint}/api/ingest, and applies the retry table of README.md
// ("Delivery"): acks delete, refused events become dead letters, failures back off.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agentburn/options.hpp"
#include "store/agents.hpp"
#include "store/buffer.hpp"
#include "transport/http.hpp"

namespace agentburn::detail {

struct SenderConfig {
  int batch_max_events = 1000;
  std::size_t batch_max_bytes = 1 << 20;
  int flush_interval_ms = 1000;
  int retry_initial_ms = 500;
  int retry_max_ms = 60000;
  int split_after_failures = 3;
  bool seed_fields_only = false;
  LogCallback log;
};

struct SenderStats {
  std::uint64_t delivered = 0, resent = 0, retries = 0;
  std::string last_error;
  std::int64_t last_delivery_at_ms = 0;
};

// Registers `agent` with POST /api/agents. OK with the server's id in `id`; kNetwork when
// no answer came or the server failed (5xx, 408, 429); kAuth for 401/403; kHttp/kInvalid for
// other refusals. `*configuration` (when given) is set when the failure is one that only a
// change of configuration mends (a TLS handshake that fails), although its code is kNetwork.
Status register_with_server(const TransportConfig& transport, const Agent& agent,
                            const std::atomic<bool>* abort, std::string* id,
                            bool* configuration = nullptr);

class Sender {
 public:
  Sender(Buffer* buffer, AgentRegistry* agents, const TransportConfig& transport,
         const SenderConfig& config);
  ~Sender();

  void start();
  // Sends partial batches now, up to the event numbered `seq`.
  void flush_upto(std::uint64_t seq);
  // Waits until a batch is settled (acked, refused, or failed) or `deadline`.
  void wait_progress(std::chrono::steady_clock::time_point deadline);
  // Aborts transfers in flight and joins the thread. Unsent events stay on disk.
  void stop();
  // After fork(), in the child: the thread does not exist here. Forget it; the caller leaks
  // this object.
  void abandon_after_fork() { thread_ = nullptr; }
  SenderStats stats() const;
  // Why delivery cannot go on until the configuration changes: the server refused the key
  // (kAuth), or the TLS handshake fails (kNetwork). OK while delivery works, or only fails for
  // a while (an outage). flush() answers it at once instead of waiting out its timeout.
  Status blocked() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Batch {
    std::vector<StoredEvent> events;
    // Set by prepare(): for each event, the server's id to send instead of its provisional
    // agent id (empty: the event goes as stored).
    std::vector<std::string> agent_ids;
    bool prepared = false;
    // Every queued key in [front().seq, back().seq] belongs to this batch, so that an ack
    // deletes the range; false once an event left it but stayed queued (its dead letter
    // could not be written), and the ack then deletes the events one by one.
    bool whole = true;
    int failures = 0;  // consecutive 5xx answers
    Clock::time_point first_failure{};
    Clock::time_point first_refusal{};  // first 4xx without detail, of this batch or its whole
    bool maybe_delivered = false;  // an attempt got no answer after sending
  };

  void run();
  bool next_batch(Batch* out);
  bool read_now(Clock::time_point now);
  void idle_wait(Clock::time_point now);
  // Resolves the provisional agent ids of a batch, once: events whose agent the server
  // refused are set aside and leave `b` (also when another agent then fails). kNetwork: an
  // agent could not be registered yet; `b` keeps its other events, to retry later.
  Status prepare(Batch* b);
  // The request body of a prepared batch.
  void encode(const Batch& b, std::string* body);
  Status resolve_agent(const std::string& provisional, std::string* server_id);
  // Moves one event to the dead letters. When that write fails the event stays queued (and
  // claimed), and is retried by retry_settling(); false then.
  bool set_aside(const StoredEvent& e, const std::string& reason);
  // Retries the dead-letter writes and the deletes of acked events that failed.
  void retry_settling(Clock::time_point now);
  void settle(Batch b, const HttpResult& r);
  void settle_refused(Batch b, const HttpResult& r);
  void settle_failed(Batch b, const HttpResult& r);
  void split(Batch b);
  void bury_all(const Batch& b, const std::string& reason);
  void back_off(std::optional<std::int64_t> retry_after_ms);
  void fail(LogLevel level, const std::string& message);
  // Delivery paused for `kind` of reason ("HTTP 401", "TLS", ...): the message becomes the
  // last error and is logged only when the kind changes, not on every retry. Counts a retry
  // unless the caller does. `why` (not OK) also blocks flush() until a batch gets through.
  void pause(const std::string& kind, const std::string& message, Status why = Status(),
             bool count_retry = true);
  void progress();

  Buffer* buffer_;
  AgentRegistry* agents_;
  TransportConfig transport_config_;
  SenderConfig config_;
  std::unique_ptr<Transport> transport_;
  std::thread* thread_ = nullptr;  // on the heap so that a forked child can leak it
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> flush_upto_{0};

  // Sender-thread state.
  std::deque<Batch> ready_;            // batches to send (again) before reading new ones
  std::map<std::uint64_t, Batch> in_flight_;
  std::uint64_t next_tag_ = 1;
  Clock::time_point next_attempt_{};   // backoff gate
  int backoff_exponent_ = 0;
  Clock::time_point partial_since_{};  // when a partial batch was first seen
  bool partial_seen_ = false;
  Clock::time_point last_success_{};
  Clock::time_point next_adoption_{};  // folders of processes that died since open
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::string, std::string> resolved_;  // provisional id -> server id
  // Refused events whose dead letter could not be written, and acked batches whose delete
  // failed (a full disk): both stay queued until a retry writes what happened to them.
  std::vector<std::pair<StoredEvent, std::string>> unburied_;
  std::vector<Batch> unremoved_;
  Clock::time_point next_settle_retry_{};
  // Batches refused (4xx without detail) while no other request got through either: the
  // request, not an event, is the likely fault. They wait, and are bisected or set aside
  // only once another batch is accepted.
  std::deque<Batch> held_;
  bool refusing_ = false;

  mutable std::mutex stats_mu_;
  SenderStats stats_;
  Status blocked_;          // under stats_mu_
  std::string pause_kind_;  // sender thread: the pause last logged, "" since a success
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;
  std::uint64_t progress_count_ = 0;
};

}  // namespace agentburn::detail
