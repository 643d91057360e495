// Raw HTTP/1.1 over a plain TCP connection, for tests that need what a client library does
// not do: headers sent a line at a time, connections held open and idle, a chosen source
// address (any 127.x address works on Linux loopback, so that a test can be several
// clients), answers read with deadlines, and whether the server closed the connection.
// Also the resident memory of a process, from /proc.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <strings.h>

namespace testing {

class RawConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to 127.0.0.1:port from `source`.
  RawConnection(int port, const std::string& source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    connected_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0 &&
                 ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False once the server closed or reset the connection.
  bool send_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  // One answer: its header block and the Content-Length bytes after it. Empty when the
  // connection ended or `timeout` passed first (then timed_out() is true).
  std::string read_answer(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = Clock::now() + timeout;
    timed_out_ = false;
    for (;;) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t length = content_length(buf_.substr(0, end + 4));
        if (buf_.size() >= end + 4 + length) {
          std::string answer = buf_.substr(0, end + 4 + length);
          buf_.erase(0, answer.size());
          return answer;
        }
      }
      int got = fill(deadline);
      if (got <= 0) return std::string();
    }
  }

  // True when the server closes (or resets) the connection within `timeout`; what it sends
  // meanwhile is kept for read_answer.
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      int got = fill(deadline);
      if (got == 0) return !timed_out_;
      if (got < 0) return true;
    }
  }

  bool timed_out() const { return timed_out_; }

 private:
  // Bytes read, 0 at the end or when the deadline passed (timed_out_), -1 on an error.
  int fill(Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        timed_out_ = true;
        return 0;
      }
      pollfd p = {fd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) continue;
      char chunk[16384];
      ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return -1;
      buf_.append(chunk, static_cast<std::size_t>(got));
      return static_cast<int>(got);
    }
  }

  static std::size_t content_length(const std::string& head) {
    std::size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string::npos) {
      pos += 2;
      if (strncasecmp(head.c_str() + pos, "Content-Length:", 15) == 0) {
        return std::strtoul(head.c_str() + pos + 15, nullptr, 10);
      }
    }
    return 0;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool timed_out_ = false;
  std::string buf_;
};

// The status of an answer read by read_answer ("HTTP/1.1 431 ..."), 0 if none.
inline int answer_status(const std::string& answer) {
  if (answer.compare(0, 5, "HTTP/") != 0) return 0;
  auto space = answer.find(' ');
  return space == std::string::npos ? 0 : std::atoi(answer.c_str() + space + 1);
}

// The value of header `name` in an answer, "" if absent (the first one; name in any case).
inline std::string answer_header(const std::string& answer, const std::string& name) {
  std::size_t pos = 0;
  auto end = answer.find("\r\n\r\n");
  while ((pos = answer.find("\r\n", pos)) != std::string::npos && pos < end) {
    pos += 2;
    if (strncasecmp(answer.c_str() + pos, (name + ":").c_str(), name.size() + 1) == 0) {
      std::size_t from = answer.find_first_not_of(' ', pos + name.size() + 1);
      return answer.substr(from, answer.find("\r\n", from) - from);
    }
  }
  return std::string();
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); -1 if it cannot be read.
inline long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) {
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

}  // namespace testing
