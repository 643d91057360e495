// Shutdown bookkeeping: which handlers are running and which answers are not yet written,
// so that SIGTERM can finish the requests in flight without waiting for idle keep-alive
// connections (cpp-httplib holds those up to the keep-alive timeout before its workers
// return).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace agentburn::server {

class Lifecycle {
 public:
  // At the start of a handler: false once shutdown began (the handler answers 503).
  bool enter() {
    std::lock_guard<std::mutex> lock(mu_);
    settle_stale_answer();
    if (closing_) return false;
    ++active_;
    return true;
  }
  // At the end of a handler: its answer is about to be written.
  void leave() {
    std::lock_guard<std::mutex> lock(mu_);
    --active_;
    ++unwritten_;
    answer_pending_ = true;
    cv_.notify_all();
  }
  // From cpp-httplib's logger, which runs once an answer is written, on the same thread.
  void written() {
    std::lock_guard<std::mutex> lock(mu_);
    settle_stale_answer();
    cv_.notify_all();
  }

  void request_stop() {
    set([this] { stop_requested_ = true; });
  }
  void listener_ended() {
    set([this] { listener_ended_ = true; });
  }
  // Blocks until a stop is requested (true) or the listener ended on its own (false).
  bool wait_for_stop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_requested_ || listener_ended_; });
    return stop_requested_;
  }

  // Refuses new handlers, then waits for the running ones (up to `handlers`) and for their
  // answers to be written (up to `writes` more: an answer whose write failed is never
  // reported, so this wait is bounded).
  void shut_down(std::chrono::milliseconds handlers, std::chrono::milliseconds writes) {
    std::unique_lock<std::mutex> lock(mu_);
    closing_ = true;
    cv_.wait_for(lock, handlers, [&] { return active_ == 0 || listener_ended_; });
    cv_.wait_for(lock, writes, [&] { return unwritten_ == 0 || listener_ended_; });
  }

 private:
  template <typename F>
  void set(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    f();
    cv_.notify_all();
  }
  // A worker thread handles one request at a time: an answer still pending on this thread
  // when it logs or starts another request is written (or its write failed).
  void settle_stale_answer() {
    if (!answer_pending_) return;
    answer_pending_ = false;
    --unwritten_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  int unwritten_ = 0;
  bool closing_ = false;
  bool stop_requested_ = false;
  bool listener_ended_ = false;
  static thread_local bool answer_pending_;
};

inline thread_local bool Lifecycle::answer_pending_ = false;

}  // namespace agentburn::server
