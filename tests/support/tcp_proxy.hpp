// A loopback TCP proxy that breaks connections on purpose, for the failures an HTTP server
// cannot produce itself: connections reset, answers cut off half-way, connections accepted
// and never served, slow links.
//
//   testing::TcpProxy proxy(server.port());   // listens on 127.0.0.1, a port of its own
//   REQUIRE(proxy.ok());
//   proxy.set_mode(testing::TcpProxy::Mode::kCut);   // for connections accepted from now on
//   ... point the client at proxy.url() ...
//   CHECK(proxy.counters().cuts == 1);
//
// Modes, chosen when a connection is accepted:
// - kPass:   forwards both ways.
// - kReset:  closes the new connection with a TCP reset before reading anything.
// - kCut:    forwards the request, then only part of the server's answer, then closes both
//            sides: the first cut_after bytes, or by default the headers and half the body
//            they announce. The server has handled the request; the client sees an
//            incomplete answer. (libcurl takes an answer cut inside its headers, before
//            Content-Length, as complete: hence the default.)
// - kStall:  accepts and never forwards; the client waits until it gives up.
// - kDelay:  forwards, holding each piece `delay` first.
// - kRandom: one of the above per connection, drawn from a seeded generator with weights.
//
// One thread per connection, at most kMaxConnections at once (more are reset and counted
// as refused). stop() (and the destructor) wakes and joins every thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace testing {

class TcpProxy {
 public:
  enum class Mode { kPass, kReset, kCut, kStall, kDelay, kRandom };

  // Weights of each mode in kRandom.
  struct Mix {
    int pass = 50;
    int reset = 20;
    int cut = 20;
    int stall = 0;
    int delay = 10;
  };

  struct Counters {
    std::uint64_t connections = 0;  // accepted
    std::uint64_t passed = 0;       // served in kPass
    std::uint64_t resets = 0;
    std::uint64_t cuts = 0;  // answers actually cut
    std::uint64_t stalls = 0;
    std::uint64_t delayed = 0;            // served in kDelay
    std::uint64_t upstream_failures = 0;  // the target refused the connection
    std::uint64_t refused = 0;            // over kMaxConnections
  };

  static constexpr int kMaxConnections = 256;

  explicit TcpProxy(int target_port, std::string target_ip = "127.0.0.1")
      : target_port_(target_port), target_ip_(std::move(target_ip)) {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return;
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int yes = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, SOMAXCONN) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TcpProxy() {
    stop();
    for (int fd : wake_) {
      if (fd >= 0) close(fd);
    }
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string url(const char* scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_);
  }

  void set_mode(Mode mode) { mode_.store(mode); }
  void set_cut_after(std::size_t bytes) { cut_after_.store(bytes); }
  void set_delay(std::chrono::milliseconds delay) { delay_ms_.store(delay.count()); }
  // In kPass and kDelay, close a connection once `bytes` of answers went through it (0: never).
  // Clients keep connections alive; with this each one carries about one answer, so that
  // kRandom draws a new fault for every request.
  void set_close_after(std::size_t bytes) { close_after_.store(bytes); }
  void set_random(std::uint64_t seed, Mix mix) {
    std::lock_guard<std::mutex> lock(mu_);
    rng_.seed(seed);
    mix_ = mix;
    mode_.store(Mode::kRandom);
  }

  Counters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    return counters_;
  }

  // Stops accepting, wakes every connection and joins all threads. Idempotent.
  void stop() {
    if (stopping_.exchange(true)) return;
    if (wake_[1] >= 0) {
      char b = 1;
      (void)!write(wake_[1], &b, 1);
    }
    if (acceptor_.joinable()) acceptor_.join();
    std::list<Conn> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns.swap(conns_);
    }
    for (auto& c : conns) c.thread.join();
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
  }

 private:
  struct Conn {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  sockaddr_in loopback(int port) const {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, port == 0 ? "127.0.0.1" : target_ip_.c_str(), &addr.sin_addr);
    return addr;
  }

  template <typename F>
  void count(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(counters_);
  }

  static void reset_and_close(int fd) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }

  Mode pick_mode() {
    Mode m = mode_.load();
    if (m != Mode::kRandom) return m;
    std::lock_guard<std::mutex> lock(mu_);
    int weights[] = {mix_.pass, mix_.reset, mix_.cut, mix_.stall, mix_.delay};
    int total = 0;
    for (int w : weights) total += std::max(w, 0);
    if (total == 0) return Mode::kPass;
    int r = std::uniform_int_distribution<int>(0, total - 1)(rng_);
    const Mode modes[] = {Mode::kPass, Mode::kReset, Mode::kCut, Mode::kStall, Mode::kDelay};
    for (int i = 0; i < 5; ++i) {
      r -= std::max(weights[i], 0);
      if (r < 0) return modes[i];
    }
    return Mode::kPass;
  }

  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      // Drawn here, in accept order, so that a seed gives the same sequence every run.
      Mode mode = pick_mode();
      std::lock_guard<std::mutex> lock(mu_);
      ++counters_.connections;
      conns_.remove_if([](Conn& c) {
        if (!c.done->load()) return false;
        c.thread.join();
        return true;
      });
      if (conns_.size() >= static_cast<std::size_t>(kMaxConnections)) {
        ++counters_.refused;
        reset_and_close(client);
        continue;
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      conns_.push_back(Conn{std::thread([this, client, mode, done] {
                              serve(client, mode);
                              done->store(true);
                            }),
                            done});
    }
  }

  void serve(int client, Mode mode) {
    int yes = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    if (mode == Mode::kReset) {
      count([](Counters& c) { ++c.resets; });
      reset_and_close(client);
      return;
    }
    if (mode == Mode::kStall) {
      count([](Counters& c) { ++c.stalls; });
      stall(client);
      close(client);
      return;
    }
    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = loopback(target_port_);
    if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      count([](Counters& c) { ++c.upstream_failures; });
      close(server);
      reset_and_close(client);
      return;
    }
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    count([mode](Counters& c) {
      c.passed += mode == Mode::kPass;
      c.delayed += mode == Mode::kDelay;
    });
    pump(client, server, mode);
    close(server);
    close(client);
  }

  // Reads and drops what the client sends until it closes or the proxy stops.
  void stall(int client) {
    for (;;) {
      pollfd fds[2] = {{client, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (fds[0].revents) {
        char buf[4096];
        if (read(client, buf, sizeof buf) <= 0) return;
      }
    }
  }

  // Waits `ms` unless the proxy stops first; false when it stopped.
  bool hold(long ms) {
    if (ms <= 0) return true;
    pollfd fd = {wake_[0], POLLIN, 0};
    return poll(&fd, 1, static_cast<int>(ms)) == 0;
  }

  bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (fds[1].revents) return false;
      ssize_t sent = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      data += sent;
      n -= static_cast<std::size_t>(sent);
    }
    return true;
  }

  // Where kCut stops forwarding the answer in `head` (its first bytes): SIZE_MAX while more
  // bytes are needed to tell. With no fixed cut_after, half-way through the body that the
  // headers announce, so that the client sees an answer it knows to be incomplete.
  static std::size_t cut_point(const std::string& head, std::size_t cut_after) {
    if (cut_after > 0) return head.size() >= cut_after ? cut_after : SIZE_MAX;
    std::size_t end = head.find("\r\n\r\n");
    if (end == std::string::npos) return head.size() >= 65536 ? head.size() / 2 : SIZE_MAX;
    std::size_t header_bytes = end + 4;
    std::string lower = head.substr(0, header_bytes);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::size_t at = lower.find("\r\ncontent-length:");
    std::size_t length =
        at == std::string::npos ? 0 : std::strtoull(lower.c_str() + at + 17, nullptr, 10);
    if (length == 0) return header_bytes / 2;
    std::size_t cut = header_bytes + length / 2;
    return head.size() >= cut ? cut : SIZE_MAX;
  }

  void pump(int client, int server, Mode mode) {
    std::size_t answered = 0;  // answer bytes passed on
    std::string head;  // kCut: the answer's bytes held until the cut point is known
    bool client_open = true, server_open = true;
    char buf[16384];
    while (client_open || server_open) {
      pollfd fds[3] = {{client_open ? client : -1, POLLIN, 0},
                       {server_open ? server : -1, POLLIN, 0},
                       {wake_[0], POLLIN, 0}};
      if (poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[2].revents) return;
      for (int side = 0; side < 2; ++side) {
        if (!fds[side].revents) continue;
        int from = side == 0 ? client : server, to = side == 0 ? server : client;
        ssize_t got = read(from, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          // The server ended its answer before the cut point: pass it on whole.
          if (side == 1 && !head.empty() && !send_all(client, head.data(), head.size())) return;
          head.clear();
          shutdown(to, SHUT_WR);
          (side == 0 ? client_open : server_open) = false;
          continue;
        }
        std::size_t n = static_cast<std::size_t>(got);
        if (mode == Mode::kDelay && !hold(delay_ms_.load())) return;
        if (mode == Mode::kCut && side == 1) {
          head.append(buf, n);
          std::size_t cut = cut_point(head, cut_after_.load());
          if (cut == SIZE_MAX) continue;
          send_all(client, head.data(), cut);
          count([](Counters& c) { ++c.cuts; });
          return;
        }
        if (!send_all(to, buf, n)) return;
        if (side == 1) {
          answered += n;
          std::size_t limit = close_after_.load();
          if (limit > 0 && answered >= limit) return;
        }
      }
    }
  }

  const int target_port_;
  const std::string target_ip_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::atomic<Mode> mode_{Mode::kPass};
  std::atomic<std::size_t> cut_after_{0};
  std::atomic<std::size_t> close_after_{0};
  std::atomic<long> delay_ms_{0};
  std::thread acceptor_;

  mutable std::mutex mu_;  // guards counters_, conns_, rng_, mix_
  Counters counters_;
  std::list<Conn> conns_;
  std::mt19937_64 rng_{1};
  Mix mix_;
};

}  // namespace testing
