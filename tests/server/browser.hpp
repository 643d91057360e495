// A headless chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// commands in on fd 3, answers and events out on fd 4, each a JSON text ended by a NUL), so
// that a test can open the dashboard, type into it, read what it shows, see its console
// errors and take a screenshot.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace testing {

class Browser {
 public:
  using Clock = std::chrono::steady_clock;

  // `profile_dir`: a fresh folder for the browser's profile.
  Browser(std::string chromium, std::string profile_dir)
      : chromium_(std::move(chromium)), profile_dir_(std::move(profile_dir)) {}
  ~Browser() { close(); }
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Starts the browser and opens a blank page to drive. False with error() on failure.
  bool start() {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
      return fail("pipe failed");
    }
    std::vector<std::string> args = {chromium_,
                                     "--headless",
                                     "--no-sandbox",  // tests may run as root
                                     "--remote-debugging-pipe",
                                     "--user-data-dir=" + profile_dir_,
                                     "--disable-gpu",
                                     "--no-first-run",
                                     "--no-default-browser-check",
                                     "--disable-extensions",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--hide-scrollbars",
                                     "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      // Out of the way of 3 and 4 first, whatever numbers the pipes got.
      int in = fcntl(to_child[0], F_DUPFD, 10), out = fcntl(from_child[1], F_DUPFD, 10);
      dup2(in, 3);
      dup2(out, 4);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_ = to_child[1];
    from_ = from_child[0];
    if (pid_ < 0) return fail("fork failed");
    nlohmann::json target = call("Target.createTarget", {{"url", "about:blank"}}, false);
    if (!target.contains("targetId")) return fail("no page: " + error_);
    nlohmann::json attached =
        call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}, false);
    if (!attached.contains("sessionId")) return fail("cannot attach: " + error_);
    session_ = attached["sessionId"];
    for (const char* domain : {"Runtime.enable", "Log.enable", "Page.enable"}) {
      if (call(domain).is_null()) return false;
    }
    return true;
  }

  const std::string& error() const { return error_; }

  // Sends a command (to the page unless `to_browser`) and waits for its answer: the result,
  // or null with error() set.
  nlohmann::json call(const std::string& method, nlohmann::json params = nlohmann::json::object(),
                      bool to_page = true) {
    nlohmann::json msg = {{"id", ++next_id_}, {"method", method}, {"params", std::move(params)}};
    if (to_page) msg["sessionId"] = session_;
    std::string text = msg.dump() + '\0';
    for (std::size_t sent = 0; sent < text.size();) {
      ssize_t n = ::write(to_, text.data() + sent, text.size() - sent);
      if (n <= 0) return fail_null("cannot write to the browser");
      sent += static_cast<std::size_t>(n);
    }
    auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      nlohmann::json m;
      if (!next_message(deadline, &m)) return fail_null(method + ": no answer from the browser");
      if (!m.contains("id")) {
        events_.push_back(std::move(m));
        continue;
      }
      if (m["id"] != next_id_) continue;
      if (m.contains("error")) return fail_null(method + ": " + m["error"].dump());
      return m["result"];
    }
  }

  // The value of a JavaScript expression in the page (JSON-serialisable values).
  nlohmann::json eval(const std::string& expression) {
    nlohmann::json r =
        call("Runtime.evaluate",
             {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (r.is_null() || r.contains("exceptionDetails")) return nullptr;
    return r["result"].value("value", nlohmann::json());
  }

  // Evaluates `expression` until it is true or the deadline passes.
  bool wait_until(const std::string& expression, std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (eval(expression) == true) return true;
      // Lets the page run until it sends something (or 50 ms): no busy loop.
      nlohmann::json m;
      if (next_message(std::min(deadline, Clock::now() + std::chrono::milliseconds(50)), &m)) {
        events_.push_back(std::move(m));
      }
    }
    return false;
  }

  // Console errors, uncaught exceptions and errors the browser logged, as text.
  std::vector<std::string> console_errors() const {
    std::vector<std::string> out;
    for (const auto& e : events_) {
      std::string method = e.value("method", "");
      const nlohmann::json& p = e["params"];
      if (method == "Runtime.exceptionThrown") {
        out.push_back("exception: " + p["exceptionDetails"].dump());
      } else if (method == "Runtime.consoleAPICalled" &&
                 (p["type"] == "error" || p["type"] == "assert")) {
        out.push_back("console." + p["type"].get<std::string>() + ": " + p["args"].dump());
      } else if (method == "Log.entryAdded" && p["entry"]["level"] == "error") {
        out.push_back("log: " + p["entry"].value("text", "") + " " + p["entry"].value("url", ""));
      }
    }
    return out;
  }
  void clear_events() { events_.clear(); }

  void close() {
    if (pid_ <= 0) return;
    call("Browser.close", nlohmann::json::object(), false);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      pollfd p{from_, POLLIN, 0};  // the pipe closes when the browser exits
      if (poll(&p, 1, 100) > 0) {
        char buf[4096];
        if (::read(from_, buf, sizeof buf) <= 0) (void)0;
      }
    }
    ::close(to_);
    ::close(from_);
    pid_ = -1;
  }

 private:
  bool next_message(Clock::time_point deadline, nlohmann::json* out) {
    for (;;) {
      auto end = buffer_.find('\0');
      if (end != std::string::npos) {
        *out = nlohmann::json::parse(buffer_.substr(0, end), nullptr, false);
        buffer_.erase(0, end + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[65536];
      ssize_t n = ::read(from_, buf, sizeof buf);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

  bool fail(const std::string& message) {
    error_ = message;
    return false;
  }
  nlohmann::json fail_null(const std::string& message) {
    error_ = message;
    return nullptr;
  }

  std::string chromium_, profile_dir_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  int next_id_ = 0;
  std::string session_;
  std::string buffer_;
  std::string error_;
  std::vector<nlohmann::json> events_;
};

}  // namespace testing
