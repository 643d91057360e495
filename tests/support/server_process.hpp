// Runs the real agentburn-server binary for a test: starts it on a loopback port, waits for
// its "listening on URL" line with a deadline, stops it with SIGTERM (SIGKILL after a
// deadline), kills it with SIGKILL, and restarts it on the same data folder and port.
//
//   testing::ServerConfig config;
//   config.binary = AGENTBURN_SERVER_PATH;
//   config.data_dir = dir.sub("server");
//   config.api_key = "test-key";      // or config.no_auth = true
//   config.extra_args = {"--enable-fault-injection"};
//   testing::ServerProcess server(config);
//   REQUIRE(server.start());          // server.error() says why not
//   ... server.url(), server.port() ...
//   server.kill9();                   // or server.stop(), which returns the exit code
//   REQUIRE(server.start());          // same data folder, same port
//
// The child gets SIGKILL if the thread that started it exits (PR_SET_PDEATHSIG), so that a
// test killed by its timeout leaves no server behind: start servers from a thread that
// outlives them (the test's own thread does).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace testing {

struct ServerConfig {
  std::string binary;    // path of agentburn-server
  std::string data_dir;  // --data
  std::string api_key;   // --api-key, when not empty
  bool no_auth = false;  // --no-auth
  std::vector<std::string> extra_args;
  std::vector<std::string> env;  // "NAME=value" entries added to the inherited environment
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port on the first start; later starts reuse the port
  std::chrono::milliseconds start_timeout{20000};
  std::chrono::milliseconds stop_timeout{15000};
};

// What a process that ran to its end printed, and how it ended.
struct ProcessResult {
  int exit_code = -1;  // the exit status; 128 + signal when killed; -1 if it could not run
  std::string out;
  std::string err;
  bool timed_out = false;
};

namespace process_detail {

using Clock = std::chrono::steady_clock;

inline std::vector<char*> make_argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// In the child, between fork and exec: async-signal-safe calls only.
// The inherited environment with `extra` ("NAME=value") replacing or adding entries.
inline std::vector<char*> make_envp(std::vector<std::string>& extra) {
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) {
    bool replaced = false;
    for (const auto& x : extra) {
      std::size_t name = x.find('=') + 1;
      replaced = replaced || std::string(*e).compare(0, name, x, 0, name) == 0;
    }
    if (!replaced) envp.push_back(*e);
  }
  for (auto& e : extra) envp.push_back(e.data());
  envp.push_back(nullptr);
  return envp;
}

[[noreturn]] inline void exec_child(char* const* argv, char* const* envp, int out_fd, int err_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  if (out_fd >= 0) dup2(out_fd, 1);
  if (err_fd >= 0) dup2(err_fd, 2);
  // Sockets and files of the test (a proxy's listening socket, say) must not outlive it in
  // the server.
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 4096; ++fd) close(fd);
  }
  execve(argv[0], argv, envp);
  _exit(127);
}

inline int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` until `deadline`; true with its decoded status when it ended.
inline bool wait_exit(pid_t pid, Clock::time_point deadline, int* code) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *code = decode_status(status);
      return true;
    }
    if (r < 0 && errno != EINTR) {
      *code = -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

inline int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace process_detail

// Runs `args` (args[0] is the program's path) to its end and collects its output. After
// `timeout` the process is killed and `timed_out` set.
inline ProcessResult run_process(std::vector<std::string> args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                 std::vector<std::string> env = {}) {
  using namespace process_detail;
  ProcessResult result;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return result;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return result;
  }
  auto argv = make_argv(args);
  auto envp = make_envp(env);
  pid_t pid = fork();
  if (pid == 0) exec_child(argv.data(), envp.data(), out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return result;
  }
  auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    int n = poll(fds, 2, ms_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  return result;
}

class ServerProcess {
 public:
  explicit ServerProcess(ServerConfig config) : config_(std::move(config)) {}
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits for its "listening on" line. False, with error() saying
  // why, when it exited or did not print the line within start_timeout.
  bool start() {
    using namespace process_detail;
    if (running()) return true;
    error_.clear();
    std::vector<std::string> args = {config_.binary, "--listen",
                                     listen_host() + ":" + std::to_string(config_.port), "--data",
                                     config_.data_dir};
    if (!config_.api_key.empty()) args.insert(args.end(), {"--api-key", config_.api_key});
    if (config_.no_auth) args.push_back("--no-auth");
    args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
    auto argv = make_argv(args);
    auto envp = make_envp(config_.env);

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return fail("pipe failed");
    pid_t pid = fork();
    if (pid == 0) exec_child(argv.data(), envp.data(), out[1], -1);
    close(out[1]);
    if (pid < 0) {
      close(out[0]);
      return fail("fork failed");
    }
    pid_ = pid;
    stdout_fd_ = out[0];

    std::string seen;
    auto deadline = Clock::now() + config_.start_timeout;
    const std::string marker = "listening on ";
    for (;;) {
      auto pos = seen.find(marker);
      auto eol = pos == std::string::npos ? pos : seen.find('\n', pos);
      if (eol != std::string::npos) {
        url_ = seen.substr(pos + marker.size(), eol - pos - marker.size());
        port_ = std::stoi(url_.substr(url_.rfind(':') + 1));
        config_.port = port_;
        return true;
      }
      pollfd pfd = {stdout_fd_, POLLIN, 0};
      int n = poll(&pfd, 1, ms_left(deadline));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return abort_start("no \"listening on\" line within the start timeout", seen);
      char buf[512];
      ssize_t got = read(stdout_fd_, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return abort_start("the server exited before listening", seen);
      seen.append(buf, static_cast<std::size_t>(got));
    }
  }

  // SIGTERM, then SIGKILL if it has not exited after stop_timeout. Returns its exit code
  // (0: a clean stop), 128 + signal if it was killed, -1 if it was not running.
  int stop() {
    if (!running()) return -1;
    kill(pid_, SIGTERM);
    int code = -1;
    auto deadline = process_detail::Clock::now() + config_.stop_timeout;
    if (!process_detail::wait_exit(pid_, deadline, &code)) {
      kill(pid_, SIGKILL);
      process_detail::wait_exit(pid_, process_detail::Clock::time_point::max(), &code);
      killed_after_timeout_ = true;
    }
    forget();
    return code;
  }

  // Kills the server at once, as a crash would.
  void kill9() {
    if (!running()) return;
    kill(pid_, SIGKILL);
    int code = 0;
    process_detail::wait_exit(pid_, process_detail::Clock::time_point::max(), &code);
    forget();
  }

  // stop() then start(): same data folder, same port.
  bool restart() {
    stop();
    return start();
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  // As the server printed it: "http://127.0.0.1:PORT", or https:// when serving TLS.
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }
  // True once a stop() had to fall back to SIGKILL.
  bool killed_after_timeout() const { return killed_after_timeout_; }
  // Changes take effect at the next start().
  ServerConfig& config() { return config_; }

 private:
  using Clock = process_detail::Clock;

  std::string listen_host() const {
    return config_.host.find(':') != std::string::npos ? "[" + config_.host + "]" : config_.host;
  }

  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }

  bool abort_start(const std::string& why, const std::string& seen) {
    kill(pid_, SIGKILL);
    int code = 0;
    process_detail::wait_exit(pid_, Clock::time_point::max(), &code);
    forget();
    return fail(why + " (exit code " + std::to_string(code) + ", stdout: \"" + seen + "\")");
  }

  void forget() {
    if (stdout_fd_ >= 0) close(stdout_fd_);
    stdout_fd_ = -1;
    pid_ = -1;
  }

  ServerConfig config_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string url_;
  std::string error_;
  bool killed_after_timeout_ = false;
};

}  // namespace testing
