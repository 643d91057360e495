// The server's own connection loop, in front of cpp-httplib's request handling.
//
// cpp-httplib 0.11 gives each connection a pool thread for as long as it stays open: a
// thread waits on each idle keep-alive connection, and on each client that sends its
// headers a line at a time (only each read has a timeout), and it reads any number of header
// lines. A few dozen slow or idle connections, with no key, held every thread and the server
// answered no one. None of that can be changed from outside the compiled library, so the
// gate takes the connections over:
//
// - One thread (epoll) holds every connection that is not in a request: new ones, idle
//   keep-alive ones, and plain-HTTP ones whose headers are still arriving (read into the
//   connection's buffer, without a thread).
// - Caps: connections in all (`max_connections`) and per client address
//   (`max_per_client`). Past a cap a new connection is answered 503 with
//   "Connection: close" and closed at once, except that at the total cap the oldest idle
//   keep-alive connection is closed to make room (an idle connection costs the client
//   nothing to reopen).
// - Headers: the whole header block must arrive within `header_timeout` of the request's
//   first byte (of the accept, for a new connection), else 408 and close; over
//   `max_header_bytes` or `max_header_lines` lines, 431 and close. Only then does a worker
//   (`workers` threads) take the connection, run exactly one request through cpp-httplib
//   (`Server::process_request`, which parses and routes it and writes the answer), and hand
//   the connection back for the next request unless it is to be closed. One client
//   address holds at most half the workers at once.
// - Reads of a request's body wait at most `read_timeout` each and `request_timeout` in all.
// - TLS: bytes cannot be looked at before the handshake, so a worker does the handshake and
//   reads the header block, with the same deadline and caps; idle TLS connections wait in
//   the gate like plain ones.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace agentburn::server {

struct GateOptions {
  int workers = 64;
  int max_connections = 1000;
  int max_per_client = 128;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{5000};
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds request_timeout{60000};
  std::size_t max_header_bytes = 64 * 1024;  // request line, header lines and the empty line
  int max_header_lines = 100;                // header lines, the request line not counted
  SSL_CTX* tls = nullptr;                    // serve TLS with this context
};

// Runs one request on `strm` (cpp-httplib's Server::process_request); `ssl` is the
// connection's TLS session or null.
using RequestRunner = std::function<bool(httplib::Stream& strm, bool close_connection,
                                         bool& connection_closed, SSL* ssl)>;

struct GateConnection;

class ConnectionGate {
 public:
  ConnectionGate(GateOptions options, RequestRunner run, std::function<void()> after_request);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Takes an accepted socket (from cpp-httplib's accept loop); never blocks.
  void admit(int fd);

  // Stops taking requests: idle and incomplete connections are closed, requests whose
  // headers are complete are served (with "Connection: close"); returns once those are done
  // or after `drain`.
  void shutdown(std::chrono::milliseconds drain);

  // From the thread writing an answer (cpp-httplib's logger): close the connection after
  // this answer if the answer says "Connection: close" (cpp-httplib 0.11 does not itself).
  static void note_answer(const httplib::Response& res);

 private:
  using Clock = std::chrono::steady_clock;
  using Conn = std::unique_ptr<GateConnection>;

  void gate_loop();
  void take_inbox();
  void welcome(int fd);
  void wait_for_request(Conn c);
  void linger(Conn c);
  void on_readable(GateConnection* c);
  void dispatch(int fd);
  void expire(Clock::time_point now);
  void worker_loop();
  void serve(Conn c);
  bool tls_ready(GateConnection& c);
  void give_back(Conn c);
  void close_conn(Conn c, bool graceful = false);
  void refuse(GateConnection& c, int status, const std::string& message);
  void wake();

  GateOptions o_;
  RequestRunner run_;
  std::function<void()> after_request_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;

  std::mutex mu_;  // everything below
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::vector<int> new_fds_;
  std::vector<Conn> returned_;
  std::deque<Conn> ready_;
  int busy_ = 0;
  int open_ = 0;
  std::map<std::string, int> per_client_;       // open connections per address
  std::map<std::string, int> busy_per_client_;  // workers serving each address
  bool stopping_ = false;
  bool gate_done_ = false;

  // Owned by the gate thread only.
  std::map<int, Conn> waiting_;

  std::thread gate_thread_;
  std::vector<std::thread> workers_;
};

}  // namespace agentburn::server
