#include "gate.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace agentburn::server {

using Clock = std::chrono::steady_clock;

struct GateConnection {
  int fd = -1;
  std::string client;  // the peer's address, without the port
  SSL* ssl = nullptr;
  bool handshaken = false;
  std::string buf;  // bytes received and not yet consumed, from `pos`
  std::size_t pos = 0;
  std::size_t scanned = 0;   // bytes of buf searched for the end of the header block
  std::size_t newlines = 0;  // '\n' in those bytes
  bool served = false;       // has answered a request (so an empty buf means idle)
  bool eof = false;          // the peer closed its side
  // Answered and closed for writing, with what the client still sends read and dropped
  // for a while, so that a client still sending a refused body gets the answer instead of
  // a reset.
  bool lingering = false;
  std::size_t linger_left = 0;
  Clock::time_point deadline;
  Clock::time_point idle_since;

  bool idle() const { return served && pos >= buf.size(); }
  void compact() {
    buf.erase(0, pos);
    pos = 0;
    scanned = 0;
    newlines = 0;
  }
};

namespace {

thread_local bool t_close_after_answer = false;

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30));
}

// Waits until `fd` is ready for `events` or `deadline` passes.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, ms_until(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

constexpr ssize_t kWantRead = -2;
constexpr ssize_t kWantWrite = -3;

// One read attempt that never waits: bytes, 0 at the end, -1 on an error, or kWantRead /
// kWantWrite.
ssize_t read_now(GateConnection& c, char* p, std::size_t n) {
  if (c.ssl) {
    int got = SSL_read(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (got > 0) return got;
    switch (SSL_get_error(c.ssl, got)) {
      case SSL_ERROR_WANT_READ:
        return kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      default:
        return -1;
    }
  }
  for (;;) {
    ssize_t got = ::recv(c.fd, p, n, MSG_DONTWAIT);
    if (got >= 0) return got;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? kWantRead : -1;
  }
}

// Reads at least one byte, waiting until `deadline`: bytes, 0 at the end, -1 on an error or
// when the deadline passed.
ssize_t read_wait(GateConnection& c, char* p, std::size_t n, Clock::time_point deadline) {
  for (;;) {
    ssize_t got = read_now(c, p, n);
    if (got >= 0 || got == -1) return got;
    if (!wait_fd(c.fd, got == kWantRead ? POLLIN : POLLOUT, deadline)) return -1;
  }
}

// Writes all of it; each wait for room is bounded by `timeout`.
bool write_all(GateConnection& c, const char* p, std::size_t n,
               std::chrono::milliseconds timeout) {
  while (n > 0) {
    ssize_t put;
    short want = POLLOUT;
    if (c.ssl) {
      int r = SSL_write(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
      if (r > 0) {
        put = r;
      } else {
        int err = SSL_get_error(c.ssl, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
        want = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        put = kWantWrite;
      }
    } else {
      put = ::send(c.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (put < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
        put = kWantWrite;
      }
    }
    if (put == kWantWrite) {
      if (!wait_fd(c.fd, want, Clock::now() + timeout)) return false;
      continue;
    }
    p += put;
    n -= static_cast<std::size_t>(put);
  }
  return true;
}

std::string address_of(const sockaddr_storage& addr, int* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    if (port) *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    if (port) *port = ntohs(in6->sin6_port);
  }
  return text;
}

std::string peer_address(int fd, int* port = nullptr) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  return address_of(addr, port);
}

const char* status_text(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

enum class Scan { kComplete, kIncomplete, kTooLarge, kNotHttp };

// What a plain-http server answers bytes that cannot begin a request (a TLS ClientHello from a
// client told https://): at once, rather than at the header deadline.
constexpr const char* kNotHttpPlain =
    "not an HTTP request (a TLS handshake? this server speaks plain http: use http://)";
constexpr const char* kNotHttp = "not an HTTP request";

constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 4u << 20;

// Looks for the end of the request's header block ("\r\n\r\n") in what was received.
Scan scan_headers(GateConnection& c, const GateOptions& o) {
  const std::string& b = c.buf;  // pos is 0 between requests
  // A request begins with its method, a token (after empty lines a client may send first).
  std::size_t start = b.find_first_not_of("\r\n");
  for (std::size_t i = start; i < b.size() && i < start + 24; ++i) {
    char ch = b[i];
    if (ch == ' ') break;
    if (!((ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_')) return Scan::kNotHttp;
  }
  std::size_t from = c.scanned > 3 ? c.scanned - 3 : 0;
  std::size_t end = b.find("\r\n\r\n", from);
  if (end != std::string::npos) {
    if (end + 4 > o.max_header_bytes) return Scan::kTooLarge;
    auto lines = std::count(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(end + 4), '\n');
    // The request line, the header lines, the empty line.
    return lines - 2 > o.max_header_lines ? Scan::kTooLarge : Scan::kComplete;
  }
  if (b.size() >= o.max_header_bytes) return Scan::kTooLarge;
  c.newlines += static_cast<std::size_t>(
      std::count(b.begin() + static_cast<std::ptrdiff_t>(c.scanned), b.end(), '\n'));
  c.scanned = b.size();
  return c.newlines > static_cast<std::size_t>(o.max_header_lines) + 1 ? Scan::kTooLarge
                                                                        : Scan::kIncomplete;
}

// The stream cpp-httplib reads one request from and writes its answer to: the
// connection's buffered bytes first, then the socket (or TLS session), each wait bounded by
// the read timeout and all of them by the request's deadline.
class GateStream final : public httplib::Stream {
 public:
  GateStream(GateConnection& c, const GateOptions& o, Clock::time_point deadline)
      : c_(c), o_(o), deadline_(deadline) {}

  bool is_readable() const override {
    if (c_.pos < c_.buf.size() || (c_.ssl && SSL_pending(c_.ssl) > 0)) return true;
    return wait_fd(c_.fd, POLLIN, read_deadline());
  }
  bool is_writable() const override {
    return wait_fd(c_.fd, POLLOUT, Clock::now() + o_.write_timeout);
  }

  ssize_t read(char* ptr, std::size_t size) override {
    if (c_.pos >= c_.buf.size()) {
      c_.buf.resize(16384);
      c_.pos = 0;
      ssize_t got = read_wait(c_, c_.buf.data(), c_.buf.size(), read_deadline());
      c_.buf.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
      if (got <= 0) {
        failed_ = true;
        if (got == 0) c_.eof = true;
        return got;
      }
    }
    std::size_t n = std::min(size, c_.buf.size() - c_.pos);
    std::memcpy(ptr, c_.buf.data() + c_.pos, n);
    c_.pos += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, std::size_t size) override {
    if (!write_all(c_, ptr, size, o_.write_timeout)) {
      failed_ = true;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_address(c_.fd, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(c_.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      ip = address_of(addr, &port);
    }
  }
  socket_t socket() const override { return c_.fd; }

  bool failed() const { return failed_; }

 private:
  Clock::time_point read_deadline() const {
    return std::min(Clock::now() + o_.read_timeout, deadline_);
  }

  GateConnection& c_;
  const GateOptions& o_;
  Clock::time_point deadline_;
  bool failed_ = false;
};

}  // namespace

void ConnectionGate::note_answer(const httplib::Response& res) {
  std::string connection = res.get_header_value("Connection");
  if (strcasecmp(connection.c_str(), "close") == 0) t_close_after_answer = true;
}

ConnectionGate::ConnectionGate(GateOptions options, RequestRunner run,
                               std::function<void()> after_request)
    : o_(std::move(options)), run_(std::move(run)), after_request_(std::move(after_request)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = event_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
  gate_thread_ = std::thread([this] { gate_loop(); });
  for (int i = 0; i < o_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ConnectionGate::~ConnectionGate() {
  shutdown(std::chrono::milliseconds(0));
  // Threads still in a request keep running until the process exits; they are not waited for.
  auto finish = [](std::thread& t) {
    if (t.joinable()) t.detach();
  };
  finish(gate_thread_);
  for (auto& t : workers_) finish(t);
}

void ConnectionGate::wake() {
  std::uint64_t one = 1;
  ssize_t ignored = ::write(event_fd_, &one, sizeof one);
  (void)ignored;
}

void ConnectionGate::admit(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      new_fds_.push_back(fd);
      fd = -1;
    }
  }
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  wake();
}

void ConnectionGate::shutdown(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake();
  work_cv_.notify_all();
  std::unique_lock<std::mutex> lock(mu_);
  bool drained = idle_cv_.wait_for(lock, drain, [&] { return gate_done_ && ready_.empty() && busy_ == 0; });
  lock.unlock();
  if (!drained) return;
  gate_thread_.join();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

// --- The gate thread --------------------------------------------------------------------

void ConnectionGate::gate_loop() {
  epoll_event events[64];
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) {
        std::vector<int> fds;
        fds.swap(new_fds_);
        std::vector<Conn> back;
        back.swap(returned_);
        lock.unlock();
        for (int fd : fds) ::close(fd);
        for (auto& c : back) close_conn(std::move(c));
        for (auto& [fd, c] : waiting_) close_conn(std::move(c));
        waiting_.clear();
        lock.lock();
        gate_done_ = true;
        work_cv_.notify_all();
        idle_cv_.notify_all();
        return;
      }
    }
    auto now = Clock::now();
    expire(now);
    int timeout = 1000;
    for (auto& [fd, c] : waiting_) timeout = std::min(timeout, ms_until(c->deadline));
    int n = epoll_wait(epoll_fd_, events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == event_fd_) {
        std::uint64_t count;
        while (::read(event_fd_, &count, sizeof count) > 0) {
        }
        take_inbox();
        continue;
      }
      auto it = waiting_.find(fd);
      if (it != waiting_.end()) on_readable(it->second.get());
    }
  }
}

void ConnectionGate::take_inbox() {
  std::vector<int> fds;
  std::vector<Conn> back;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fds.swap(new_fds_);
    back.swap(returned_);
  }
  for (int fd : fds) welcome(fd);
  for (auto& c : back) {
    if (c->lingering) {
      linger(std::move(c));
    } else {
      wait_for_request(std::move(c));
    }
  }
}

void ConnectionGate::welcome(int fd) {
  auto c = std::make_unique<GateConnection>();
  c->fd = fd;
  c->client = peer_address(fd);
  auto now = Clock::now();
  c->deadline = now + o_.header_timeout;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int yes = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);

  bool over_client, over_total;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = per_client_.find(c->client);
    over_client = it != per_client_.end() && it->second >= o_.max_per_client;
    over_total = open_ >= o_.max_connections;
  }
  if (over_client || over_total) {
    // Make room by closing the oldest idle keep-alive connection (of this client when it is
    // this client's cap that is reached).
    GateConnection* oldest = nullptr;
    for (auto& [wfd, w] : waiting_) {
      if (!w->idle() || (over_client && w->client != c->client)) continue;
      if (!oldest || w->idle_since < oldest->idle_since) oldest = w.get();
    }
    if (oldest) {
      int ofd = oldest->fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, ofd, nullptr);
      close_conn(std::move(waiting_[ofd]), true);
      waiting_.erase(ofd);
      over_client = over_total = false;
    }
  }
  if (over_client || over_total) {
    refuse(*c, 503,
           over_client ? "too many connections from this address; retry later"
                       : "too many connections; retry later");
    ::close(fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++open_;
    ++per_client_[c->client];
  }
  if (o_.tls) {
    c->ssl = SSL_new(o_.tls);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
      close_conn(std::move(c));
      return;
    }
    SSL_set_accept_state(c->ssl);
  }
  wait_for_request(std::move(c));
}

void ConnectionGate::linger(Conn c) {
  if (c->ssl && c->handshaken) SSL_shutdown(c->ssl);
  ::shutdown(c->fd, SHUT_WR);
  c->lingering = true;
  c->linger_left = kLingerBytes;
  c->deadline = Clock::now() + kLingerTime;
  c->buf.clear();
  c->pos = 0;
  wait_for_request(std::move(c));
}

void ConnectionGate::wait_for_request(Conn c) {
  int fd = c->fd;
  if (c->lingering) {
    // Registered below.
  } else if (!c->ssl && !c->buf.empty()) {
    Scan scan = scan_headers(*c, o_);
    if (scan == Scan::kTooLarge) {
      refuse(*c, 431, "the request's header block is over the limit");
      return linger(std::move(c));
    }
    if (scan == Scan::kNotHttp) {
      refuse(*c, 400, kNotHttpPlain);
      return linger(std::move(c));
    }
    if (scan == Scan::kComplete || c->eof) {
      if (scan != Scan::kComplete) return close_conn(std::move(c));
      waiting_[fd] = std::move(c);
      return dispatch(fd);
    }
  } else if (c->ssl && (c->pos < c->buf.size() || SSL_pending(c->ssl) > 0)) {
    waiting_[fd] = std::move(c);
    return dispatch(fd);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return close_conn(std::move(c));
  waiting_[fd] = std::move(c);
}

void ConnectionGate::on_readable(GateConnection* c) {
  int fd = c->fd;
  if (c->lingering) {
    char drop[16384];
    for (;;) {
      ssize_t got = ::recv(fd, drop, sizeof drop, MSG_DONTWAIT);
      if (got > 0 && static_cast<std::size_t>(got) < c->linger_left) {
        c->linger_left -= static_cast<std::size_t>(got);
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (got < 0 && errno == EINTR) continue;
      break;  // the end, an error, or enough dropped
    }
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close_conn(std::move(waiting_[fd]));
    waiting_.erase(fd);
    return;
  }
  if (c->idle()) c->deadline = Clock::now() + o_.header_timeout;  // a request begins
  if (c->ssl) return dispatch(fd);  // the handshake and headers are read by a worker

  const std::size_t cap = o_.max_header_bytes + 1;
  bool failed = false;
  while (c->buf.size() < cap) {
    std::size_t old = c->buf.size();
    c->buf.resize(std::min(cap, old + 16384));
    ssize_t got = read_now(*c, c->buf.data() + old, c->buf.size() - old);
    c->buf.resize(old + (got > 0 ? static_cast<std::size_t>(got) : 0));
    if (got > 0) continue;
    if (got == 0) c->eof = true;
    failed = got == -1;
    break;
  }
  Scan scan = c->buf.empty() ? Scan::kIncomplete : scan_headers(*c, o_);
  if (scan == Scan::kComplete) return dispatch(fd);
  if (scan == Scan::kTooLarge || scan == Scan::kNotHttp || c->eof || failed) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    Conn owned = std::move(waiting_[fd]);
    waiting_.erase(fd);
    if (scan == Scan::kNotHttp && !failed) {
      refuse(*owned, 400, kNotHttpPlain);
      return linger(std::move(owned));
    }
    if (scan != Scan::kTooLarge || failed) return close_conn(std::move(owned));
    refuse(*owned, 431,
           "the request's header block is over " + std::to_string(o_.max_header_bytes) +
               " bytes or " + std::to_string(o_.max_header_lines) + " lines");
    linger(std::move(owned));
  }
}

void ConnectionGate::dispatch(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  Conn c = std::move(waiting_[fd]);
  waiting_.erase(fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(std::move(c));
  }
  work_cv_.notify_one();
}

void ConnectionGate::expire(Clock::time_point now) {
  std::vector<int> due;
  for (auto& [fd, c] : waiting_) {
    if (c->deadline <= now) due.push_back(fd);
  }
  for (int fd : due) {
    Conn c = std::move(waiting_[fd]);
    waiting_.erase(fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    bool idle = c->idle();
    // TLS connections get no plain-text answer; idle keep-alive ones are simply closed.
    if (idle || c->ssl || c->lingering) {
      close_conn(std::move(c), idle);
      continue;
    }
    refuse(*c, 408,
           "the request's headers did not arrive within " +
               std::to_string(o_.header_timeout.count() / 1000) + " s");
    linger(std::move(c));
  }
}

// --- Workers ----------------------------------------------------------------------------

void ConnectionGate::worker_loop() {
  // One client address holds at most half the workers at once: its other requests wait
  // while those of other clients are served (a client sending bodies slowly, say to the
  // route that takes requests without a key, cannot take every worker).
  const int per_client = std::max(1, o_.workers / 2);
  for (;;) {
    Conn c;
    std::string client;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto pick = ready_.end();
      work_cv_.wait(lock, [&] {
        pick = std::find_if(ready_.begin(), ready_.end(), [&](const Conn& r) {
          auto it = busy_per_client_.find(r->client);
          return it == busy_per_client_.end() || it->second < per_client;
        });
        return pick != ready_.end() || (stopping_ && gate_done_ && ready_.empty());
      });
      if (pick == ready_.end()) return;
      c = std::move(*pick);
      ready_.erase(pick);
      client = c->client;
      ++busy_;
      ++busy_per_client_[client];
    }
    serve(std::move(c));
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
      if (--busy_per_client_[client] <= 0) busy_per_client_.erase(client);
    }
    work_cv_.notify_all();
    idle_cv_.notify_all();
  }
}

bool ConnectionGate::tls_ready(GateConnection& c) {
  while (!c.handshaken) {
    int r = SSL_accept(c.ssl);
    if (r == 1) {
      c.handshaken = true;
      break;
    }
    int err = SSL_get_error(c.ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
    if (!wait_fd(c.fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c.deadline)) return false;
  }
  c.compact();
  for (;;) {
    Scan scan = c.buf.empty() ? Scan::kIncomplete : scan_headers(c, o_);
    if (scan == Scan::kComplete) return true;
    if (scan == Scan::kTooLarge) {
      refuse(c, 431, "the request's header block is over the limit");
      return false;
    }
    if (scan == Scan::kNotHttp) {
      refuse(c, 400, kNotHttp);
      return false;
    }
    if (c.eof) return false;
    char tmp[16384];
    std::size_t room = o_.max_header_bytes + 1 - c.buf.size();
    ssize_t got = read_wait(c, tmp, std::min(sizeof tmp, room), c.deadline);
    if (got == 0) return false;
    if (got < 0) {
      if (Clock::now() >= c.deadline) refuse(c, 408, "the request's headers did not arrive in time");
      return false;
    }
    if (c.buf.empty() && c.served) c.deadline = Clock::now() + o_.header_timeout;
    c.buf.append(tmp, static_cast<std::size_t>(got));
  }
}

void ConnectionGate::serve(Conn c) {
  if (c->ssl && !tls_ready(*c)) return close_conn(std::move(c));
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
  }
  GateStream strm(*c, o_, Clock::now() + o_.request_timeout);
  bool connection_closed = false;
  t_close_after_answer = false;
  bool ok = run_(strm, stopping, connection_closed, c->ssl);
  if (after_request_) after_request_();
  bool keep = ok && !connection_closed && !t_close_after_answer && !strm.failed() && !c->eof;
  if (!keep) {
    // What is left of the request (a refused body) is drained by the gate for a while.
    if (!ok || strm.failed() || c->eof) return close_conn(std::move(c));
    c->lingering = true;
    return give_back(std::move(c));
  }
  c->compact();
  c->served = true;
  auto now = Clock::now();
  c->idle_since = now;
  c->deadline = now + (c->buf.empty() ? o_.idle_timeout : o_.header_timeout);
  give_back(std::move(c));
}

void ConnectionGate::give_back(Conn c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      returned_.push_back(std::move(c));
    }
  }
  if (c) return close_conn(std::move(c), true);
  wake();
}

void ConnectionGate::close_conn(Conn c, bool graceful) {
  if (!c) return;
  if (c->ssl) {
    if (graceful && c->handshaken) SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  ::close(c->fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    auto it = per_client_.find(c->client);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  }
  idle_cv_.notify_all();
}

void ConnectionGate::refuse(GateConnection& c, int status, const std::string& message) {
  std::string body = "{\"error\":\"" + message + "\"}";
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                     "\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n" +
                     (status == 503 ? "Retry-After: 1\r\n" : "") + "\r\n";
  std::string all = head + body;
  if (c.ssl) {
    if (c.handshaken) write_all(c, all.data(), all.size(), std::chrono::milliseconds(1000));
  } else {
    // From the gate thread: one attempt that never waits (the answer fits the send buffer).
    ssize_t ignored = ::send(c.fd, all.data(), all.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
  }
}

}  // namespace agentburn::server
