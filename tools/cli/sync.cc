// agentburn sync: take over every folder whose process is gone and deliver what it holds.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agentburn/client.hpp"
#include "common.hpp"
#include "folders.hpp"
#include "output.hpp"

namespace agentburn::cli {

namespace {

struct SyncOptions {
  Common common;
  std::string endpoint, key_file, ca_bundle;
  int timeout_s = 300;
};

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) {
  g_interrupted = true;
}

// Progress: a bar redrawn in place on a terminal, a plain line now and then otherwise.
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty), start_(std::chrono::steady_clock::now()) {}

  void show(std::uint64_t delivered, std::uint64_t total, bool last) {
    auto now = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? delivered / secs : 0;
    std::string eta = rate > 0 && total > delivered
                          ? age(static_cast<std::int64_t>((total - delivered) / rate * 1000))
                          : "-";
    char text[160];
    std::snprintf(text, sizeof text, "%s/%s delivered, %.0f events/s, ETA %s",
                  count(delivered).c_str(), count(total).c_str(), rate, eta.c_str());
    if (tty_) {
      double f = total ? static_cast<double>(delivered) / total : 1.0;
      std::string b = bar(f, 30);
      std::size_t cells = 0;
      for (unsigned char c : b) cells += (c & 0xC0) != 0x80;
      std::fprintf(stderr, "\r\033[K[%s%s] %3.0f%% %s%s", b.c_str(),
                   std::string(cells < 30 ? 30 - cells : 0, ' ').c_str(), f * 100, text,
                   last ? "\n" : "");
    } else if (last ||
               (delivered != last_delivered_ && now - last_line_ >= std::chrono::seconds(1))) {
      std::fprintf(stderr, "sync: %s\n", text);
      last_line_ = now;
      last_delivered_ = delivered;
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_line_{};
  std::uint64_t last_delivered_ = ~std::uint64_t{0};
};

int run_sync(const SyncOptions& o) {
  const std::string root = o.common.resolved_root();
  std::vector<Folder> folders;
  std::vector<std::string> refused;
  Status s = list_folders(root, &folders, &refused);
  if (!s.ok()) return fail(kFailure, s.message());
  std::string key;
  s = api_key(o.key_file, &key);
  if (!s.ok()) return fail(kUsage, s.message());
  for (const auto& why : refused) warn("left alone: " + why);
  bool any_dead = false;
  for (const auto& f : folders) {
    if (f.holder > 0) {
      std::fprintf(stderr, "left alone: %s is held by pid %ld, which delivers its own events\n",
                   f.path.c_str(), f.holder);
    } else {
      any_dead = true;
    }
  }
  if (!any_dead) {
    std::printf("nothing to deliver: no folder of a process that is gone under %s\n", root.c_str());
    return kOk;
  }
  Options options;
  options.buffer_root = root;
  options.endpoint = o.endpoint;
  options.api_key = key;
  options.ca_bundle = o.ca_bundle;
  options.ledger = true;  // what it delivers keeps its spend in the ledger
  std::string last_log;
  options.log = [&last_log](LogLevel level, const std::string& m) {
    if (level >= LogLevel::kWarning) last_log = m;
  };
  // Before the sender starts: an interrupt from then on leaves the rest on disk.
  struct sigaction sa = {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto opened = Client::open(options);
  if (!opened.ok())
    return fail(opened.status().code() == Status::Code::kInvalid ? kUsage : kFailure,
                opened.status().message());
  Client client = std::move(opened).value();
  Progress progress(isatty(STDERR_FILENO) == 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  Status flushed;
  std::uint64_t total = 0;
  for (;;) {
    flushed = client.flush(std::chrono::milliseconds(200));
    Stats st = client.stats();
    total = std::max(total, st.delivered + st.dead_letters + st.pending);
    bool done = flushed.ok() || g_interrupted || flushed.code() != Status::Code::kTimeout ||
                (o.timeout_s > 0 && std::chrono::steady_clock::now() >= deadline);
    progress.show(st.delivered, total, done);
    if (done) break;
  }
  Stats st = client.stats();
  Status closed = client.close(std::chrono::milliseconds(0));
  const std::uint64_t left = st.pending;
  if (o.common.json) {
    std::printf("%s\n", nlohmann::json({{"delivered", st.delivered},
                                        {"deadLetters", st.dead_letters},
                                        {"pending", left},
                                        {"interrupted", g_interrupted.load()},
                                        {"lastError", st.last_error}})
                            .dump()
                            .c_str());
  } else {
    std::printf("delivered %s events to %s; %s dead letters; %s left on disk\n",
                count(st.delivered).c_str(), o.endpoint.c_str(), count(st.dead_letters).c_str(),
                count(left).c_str());
  }
  if (g_interrupted) warn("interrupted: what was not delivered stays on disk");
  if (left && !st.last_error.empty()) warn("last error: " + st.last_error);
  if (!flushed.ok() && flushed.code() != Status::Code::kTimeout) warn(flushed.message());
  if (flushed.code() == Status::Code::kAuth && key.empty()) {
    warn("no API key was given: set AGENTBURN_API_KEY or --api-key-file");
  }
  if (left == 0 && st.dead_letters == 0 && flushed.ok()) return kOk;
  return st.delivered ? kPartial : kFailure;
}

}  // namespace

void add_sync(CLI::App& app, Command* run) {
  auto o = std::make_shared<SyncOptions>();
  CLI::App* cmd = add_command(
      app, run, "sync",
      "Take over every folder whose process is gone and deliver all it holds; exit 0 only when "
      "everything was delivered. Ctrl-C leaves what is not delivered on disk.",
      o, run_sync);
  cmd->add_option("--endpoint", o->endpoint, "Base URL of the AgentBurn server")->required();
  add_key_file(cmd, &o->key_file);
  add_ca_bundle(cmd, &o->ca_bundle);
  cmd->add_option("--timeout", o->timeout_s,
                  "Give up after this many seconds (default 300; 0: never)")
      ->check(CLI::NonNegativeNumber);
  set_examples(
      cmd,
      "  AGENTBURN_API_KEY=... agentburn sync --endpoint https://agentburn.example.com\n"
      "  agentburn sync --endpoint http://127.0.0.1:3000 --api-key-file ~/.agentburn-key\n");
}

}  // namespace agentburn::cli
