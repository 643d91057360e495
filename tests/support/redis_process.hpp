// Runs a real redis-server for a test, on a free loopback port, with its append-only file in
// a folder of the test's: started, stopped (SIGTERM: it writes what it holds) or killed, and
// started again on the same port and data.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "budget/redis_store.hpp"
#include "support.hpp"

namespace testing {

inline const char* kRedisServer = "/usr/bin/redis-server";

inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class RedisProcess {
 public:
  explicit RedisProcess(std::string dir) : dir_(std::move(dir)), port_(free_port()) {}
  ~RedisProcess() { kill9(); }

  static bool available() { return access(kRedisServer, X_OK) == 0; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Starts it and waits (with a deadline) until it answers PING.
  bool start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string port = std::to_string(port_), log = dir_ + "/redis.log";
      execl(kRedisServer, "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
            "--dir", dir_.c_str(), "--appendonly", "yes", "--appendfsync", "always", "--save",
            "", "--daemonize", "no", "--logfile", log.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return wait_until([&] { return ping(); }, std::chrono::seconds(20));
  }
  bool ping() {
    agentburn::budget::StoreUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    agentburn::budget::RedisStore s(u, 1000);
    std::vector<long long> out;
    std::string text;
    return s.command({"PING"}, &out, &text).ok() && text == "PONG";
  }
  void stop() { end(SIGTERM); }
  void kill9() { end(SIGKILL); }

 private:
  void end(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace testing
