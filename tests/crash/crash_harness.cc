// Kill cycles against the real agentburn-server: trackers on one shared buffer root are
// killed with SIGKILL at random moments (while opening and adopting, while registering an
// agent, while tracking from several threads, while delivering, while closing), then a clean
// client delivers what is left and every acknowledged event is looked up on the server.
//
// A quarter of the cycles start two trackers at once on the root and kill one: the other
// runs on (delivering, closing) while the next cycle's tracker opens and adopts the dead
// folder. Unless --no-faults, a third of the trackers reach the server through a TCP proxy
// that resets, cuts and delays connections, and 40% of the cycles set a server fault plan
// (503, 500, 429 answers, or answers held after the events were stored).
//
//   crash_harness [--cycles N] [--durability buffered|process|system|all] [--seed S]
//                 [--server PATH] [--workdir DIR] [--no-faults] [--set-aside-corrupt] [--verbose]
//
// --set-aside-corrupt opens every client with Options::set_aside_corrupt_buffer, so that a
// folder no process can open (one left by a kill inside Client::open, say) is counted and
// moved aside instead of failing every later open; losses are still checked.
//
// Each tracker reports on a pipe, one line each:
//   S            started, about to open the client
//   O            Client::open returned OK
//   A <id>       register_agent returned (the id the events carry)
//   K <key>      track() returned OK for the event with this idempotency_key
//   F <n>        about to call flush() (n: a number unique in the tracker)
//   C <n>        that flush() returned: for kBuffered, every key reported before "F <n>" is
//                on disk (flush writes the stage before it waits)
//   T            every thread finished tracking
//   D            close() returned
//   W <text>     a warning (a final flush that timed out, say)
//   E <text>     an error that ends the tracker: the harness fails
//
// What must hold, checked on the server once a final clean client has flushed:
// - kProcess and kSystem: every key whose track() returned OK is stored exactly once;
// - kBuffered: every key reported before the tracker's last checkpoint (or by a tracker that
//   closed) is stored exactly once; a key reported later may be missing (counted, allowed);
// - no tracker reports an error, no tracker hangs, the final client opens, flushes and leaves
//   no folder behind, and the server's duplicate count stays within what kills explain.
// The exit status is 0 when all of that holds, 1 otherwise, 2 for bad flags.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agentburn/agentburn.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/http.hpp"
#include "support/server_process.hpp"
#include "support/tcp_proxy.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* const kApiKey = "crash-key-0123456789";
const char* const kProject = "crash";
const char* const kSharedAgent = "crash-shared";
constexpr int kPipeFd = 3;
// Kept in step with the tracker's options: they bound what kills can make the server see
// twice (see the end of Harness::verify).
constexpr int kMaxBatchEvents = 200;
constexpr int kMaxInFlight = 2;
constexpr int kAdoptChunk = 1000;  // events the library moves per synced chunk when adopting

const char* mode_name(agentburn::Durability d) {
  switch (d) {
    case agentburn::Durability::kBuffered: return "buffered";
    case agentburn::Durability::kProcess: return "process";
    case agentburn::Durability::kSystem: return "system";
  }
  return "?";
}

bool parse_mode(const std::string& s, agentburn::Durability* d) {
  if (s == "buffered") *d = agentburn::Durability::kBuffered;
  else if (s == "process") *d = agentburn::Durability::kProcess;
  else if (s == "system") *d = agentburn::Durability::kSystem;
  else return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// The tracker: a process of its own, killed by the harness at any moment.
// ---------------------------------------------------------------------------------------

struct TrackerArgs {
  std::string root, endpoint, name;
  agentburn::Durability durability = agentburn::Durability::kProcess;
  std::uint64_t seed = 1;
  int threads = 4;
  int events = 300;  // per thread
  int batch_max_events = 100;
  int in_flight = 1;
  bool set_aside_corrupt = false;
};

// One line per write(2): below PIPE_BUF, so lines of several threads never interleave.
void emit(const std::string& line) {
  std::string l = line + "\n";
  const char* p = l.data();
  std::size_t left = l.size();
  while (left > 0) {
    ssize_t n = write(kPipeFd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(9);  // the harness is gone
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

[[noreturn]] void die(int code, const std::string& what) {
  std::string one_line = what;
  for (auto& c : one_line) {
    if (c == '\n') c = ' ';
  }
  emit("E " + one_line.substr(0, 3000));
  _exit(code);
}

int tracker_main(const TrackerArgs& a) {
  emit("S");
  agentburn::Options o;
  o.buffer_root = a.root;
  o.durability = a.durability;
  o.endpoint = a.endpoint;
  o.api_key = kApiKey;
  o.flush_interval_ms = 20;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 200;
  o.connect_timeout_ms = 2000;
  o.request_timeout_ms = 3000;
  o.batch_max_events = a.batch_max_events;
  o.max_batches_in_flight = a.in_flight;
  o.close_timeout_ms = 1000;
  o.set_aside_corrupt_buffer = a.set_aside_corrupt;
  auto opened = agentburn::Client::open(o);
  if (!opened.ok()) die(3, "open: " + opened.status().to_string());
  agentburn::Client c = std::move(opened.value());
  emit("O");

  agentburn::Agent mine, shared;
  mine.name = "crash-" + a.name;
  mine.project_id = kProject;
  mine.tags = {"crash"};
  shared.name = kSharedAgent;
  shared.project_id = kProject;
  auto mine_id = c.register_agent(mine);
  if (!mine_id.ok()) die(4, "register_agent: " + mine_id.status().to_string());
  auto shared_id = c.register_agent(shared);
  if (!shared_id.ok()) die(4, "register_agent (shared): " + shared_id.status().to_string());
  emit("A " + mine_id.value() + " " + shared_id.value());

  std::atomic<int> next_flush{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(a.seed * 1000003 + static_cast<std::uint64_t>(t));
      int until_flush = std::uniform_int_distribution<int>(5, 80)(rng);
      for (int i = 0; i < a.events; ++i) {
        agentburn::Event e;
        e.agent_id = rng() % 50 == 0 ? shared_id.value() : mine_id.value();
        e.provider = i % 2 ? "openai" : "anthropic";
        e.operation = i % 3 ? "llm_call" : "tool_call";
        e.model = "model-" + std::to_string(i % 4);
        e.cost_usd = 0.0001 * static_cast<double>(i + 1);
        e.input_tokens = i;
        e.output_tokens = 2 * i;
        e.task_id = a.name;
        e.metadata_json = "{\"thread\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
        std::string key;
        agentburn::Status s = c.track(e, &key);
        if (!s.ok()) die(5, "track: " + s.to_string());
        emit("K " + key);
        if (--until_flush == 0) {
          until_flush = std::uniform_int_distribution<int>(5, 80)(rng);
          int n = next_flush.fetch_add(1);
          emit("F " + std::to_string(n));
          // Waits for delivery up to a few ms: paces the tracker, and kills land while
          // batches are in flight. kTimeout only says that delivery is still under way.
          auto wait = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 30)(rng));
          s = c.flush(wait);
          if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) die(6, "flush: " + s.to_string());
          emit("C " + std::to_string(n));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  emit("T");
  int n = next_flush.fetch_add(1);
  emit("F " + std::to_string(n));
  agentburn::Status s = c.flush(10s);
  if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) die(6, "final flush: " + s.to_string());
  if (!s.ok()) emit("W final flush: " + s.to_string());
  emit("C " + std::to_string(n));
  s = c.close(1s);
  if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) die(7, "close: " + s.to_string());
  emit("D");
  return 0;
}

// ---------------------------------------------------------------------------------------
// The harness.
// ---------------------------------------------------------------------------------------

// A tracker as the harness sees it.
struct Tracker {
  std::string name;
  pid_t pid = -1;
  int fd = -1;  // read end of its pipe; -1 at EOF
  bool reaped = false;
  int exit_code = -1;  // 128 + signal when killed
  bool killed = false;
  bool via_proxy = false;
  Clock::time_point started_at{};
  std::string partial;
  std::vector<std::string> keys;  // acknowledged, in report order
  std::map<std::string, std::size_t> flush_marks;  // "F n" -> keys before it
  std::size_t checkpoint = 0;     // keys covered by a returned flush()
  std::string phase = "spawned";  // the last status line seen
  std::string killed_in;          // the phase when the kill was sent
  std::vector<std::string> errors, warnings;

  bool started() const { return phase != "spawned"; }
  bool finished() const { return fd < 0 && reaped; }
  bool closed_cleanly() const { return phase == "done" && exit_code == 0; }
};

void on_line(Tracker* t, const std::string& line) {
  if (line.empty()) return;
  char kind = line[0];
  std::string rest = line.size() > 2 ? line.substr(2) : "";
  switch (kind) {
    case 'S': t->phase = "opening"; break;
    case 'O': t->phase = "registering"; break;
    case 'A': t->phase = "tracking"; break;
    case 'K': t->keys.push_back(rest); break;
    case 'F': t->flush_marks[rest] = t->keys.size(); break;
    case 'C': {
      auto it = t->flush_marks.find(rest);
      if (it != t->flush_marks.end()) t->checkpoint = std::max(t->checkpoint, it->second);
      break;
    }
    case 'T': t->phase = "final flush and close"; break;
    case 'D': t->phase = "done"; break;
    case 'W': t->warnings.push_back(rest); break;
    case 'E': t->errors.push_back(rest); break;
    default: t->errors.push_back("unknown line from the tracker: " + line);
  }
}

// Reads what is there without blocking; closes the pipe at EOF and reaps at exit.
void drain(Tracker* t) {
  while (t->fd >= 0) {
    char buf[65536];
    ssize_t n = read(t->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      close(t->fd);
      t->fd = -1;
      break;
    }
    t->partial.append(buf, static_cast<std::size_t>(n));
    std::size_t pos = 0, nl;
    while ((nl = t->partial.find('\n', pos)) != std::string::npos) {
      on_line(t, t->partial.substr(pos, nl - pos));
      pos = nl + 1;
    }
    t->partial.erase(0, pos);
  }
  if (t->fd < 0 && !t->reaped) {
    int status = 0;
    pid_t r = waitpid(t->pid, &status, WNOHANG);
    if (r == t->pid) {
      t->reaped = true;
      t->exit_code = testing::process_detail::decode_status(status);
    }
  }
}

// Reads every open pipe until `done()` holds or `deadline` passes. True when done() held.
bool pump(std::vector<std::shared_ptr<Tracker>>& live, Clock::time_point deadline,
          const std::function<bool()>& done) {
  for (;;) {
    for (auto& t : live) drain(t.get());
    if (done()) return true;
    auto now = Clock::now();
    if (now >= deadline) return false;
    std::vector<pollfd> fds;
    for (auto& t : live) {
      if (t->fd >= 0) fds.push_back({t->fd, POLLIN, 0});
    }
    int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    // A pipe at EOF whose process is not reaped yet, or none open: check again shortly.
    bool unreaped = std::any_of(live.begin(), live.end(), [](auto& t) { return t->fd < 0 && !t->reaped; });
    if (fds.empty() || unreaped) ms = std::min(ms, 2);
    if (fds.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(ms, 0)));
      continue;
    }
    int n = poll(fds.data(), fds.size(), std::max(ms, 0));
    if (n < 0 && errno != EINTR) return false;
  }
}

struct Config {
  int cycles = 40;
  std::vector<agentburn::Durability> modes = {agentburn::Durability::kProcess};
  std::uint64_t seed = 1;
  std::string server;
  std::string workdir;
  std::string self;
  bool faults = true;
  bool set_aside_corrupt = false;
  bool verbose = false;
};

struct Totals {
  int cycles = 0, kills = 0, trackers = 0, pairs = 0, fault_plans = 0;
  std::map<std::string, int> kills_by_phase;
  std::uint64_t acked = 0, checked = 0, unflushed_missing = 0, lost = 0, stored_twice = 0;
  std::uint64_t server_stored = 0, server_received = 0, server_duplicates = 0;
  std::uint64_t server_requests = 0, faults_injected = 0;
  std::uint64_t proxy_resets = 0, proxy_cuts = 0, proxy_delayed = 0;
  std::uint64_t adopted_at_end = 0, dead_letters = 0, set_aside = 0, empty_staging = 0;
  std::vector<std::string> failures;
};

class Harness {
 public:
  Harness(const Config& cfg, agentburn::Durability mode, testing::ServerProcess* server,
          const std::string& root, std::uint64_t seed)
      : cfg_(cfg), mode_(mode), server_(server), root_(root), rng_(seed) {}

  Totals run();

 private:
  std::shared_ptr<Tracker> spawn(const std::string& endpoint, bool via_proxy);
  void kill_tracker(Tracker* t);
  void maybe_set_faults();
  void reap_survivors(Clock::time_point deadline);
  void final_client();
  void verify();
  testing::HttpResponse get(const std::string& path);
  void fail(const std::string& why) {
    totals_.failures.push_back(why);
    std::fprintf(stderr, "crash_harness [%s]: FAIL: %s\n", mode_name(mode_), why.c_str());
  }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  const Config& cfg_;
  agentburn::Durability mode_;
  testing::ServerProcess* server_;
  std::string root_;
  std::mt19937_64 rng_;
  std::unique_ptr<testing::TcpProxy> proxy_;
  testing::HttpClient http_;
  std::vector<std::shared_ptr<Tracker>> all_;
  std::vector<std::shared_ptr<Tracker>> live_;
  int spawned_ = 0;
  Totals totals_;
};

testing::HttpResponse Harness::get(const std::string& path) {
  testing::HttpRequest req;
  req.url = server_->url() + path;
  req.headers.push_back(std::string("x-api-key: ") + kApiKey);
  req.timeout_ms = 60000;
  return http_.send(req);
}

std::shared_ptr<Tracker> Harness::spawn(const std::string& endpoint, bool via_proxy) {
  auto t = std::make_shared<Tracker>();
  t->name = std::string(mode_name(mode_)) + "-" + std::to_string(spawned_++);
  t->via_proxy = via_proxy;
  std::vector<std::string> args = {
      cfg_.self, "--tracker", "--root", root_, "--endpoint", endpoint, "--name", t->name,
      "--durability", mode_name(mode_), "--seed", std::to_string(rng_()),
      "--threads", std::to_string(uniform(3, 4)), "--events", std::to_string(uniform(100, 1200)),
      "--batch", std::to_string(std::vector<int>{25, 100, kMaxBatchEvents}[uniform(0, 2)]),
      "--in-flight", std::to_string(uniform(1, kMaxInFlight))};
  if (cfg_.set_aside_corrupt) args.push_back("--set-aside-corrupt");
  auto argv = testing::process_detail::make_argv(args);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    fail(std::string("pipe: ") + std::strerror(errno));
    return nullptr;
  }
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  pid_t pid = fork();
  if (pid == 0) {
    // Async-signal-safe calls only until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], kPipeFd);  // dup2 clears O_CLOEXEC on the copy
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
      for (int fd = 4; fd < 4096; ++fd) close(fd);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    fail(std::string("fork: ") + std::strerror(errno));
    return nullptr;
  }
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  t->pid = pid;
  t->fd = fds[0];
  t->started_at = Clock::now();
  all_.push_back(t);
  live_.push_back(t);
  ++totals_.trackers;
  return t;
}

void Harness::kill_tracker(Tracker* t) {
  drain(t);
  if (t->reaped) return;  // it ended before the kill
  t->killed_in = t->phase;
  kill(t->pid, SIGKILL);
  t->killed = true;
  ++totals_.kills;
  ++totals_.kills_by_phase[t->phase];
}

// A random fault plan for the cycle to come: 5xx or 429 answers, or answers held after the
// events were stored (a kill then leaves them stored but unacknowledged).
void Harness::maybe_set_faults() {
  if (!cfg_.faults || uniform(0, 99) >= 40) return;
  json plan;
  switch (uniform(0, 3)) {
    case 0: plan = {{"status", 503}, {"count", uniform(1, 2)}}; break;
    case 1: plan = {{"status", 500}, {"count", 1}}; break;
    case 2: plan = {{"status", 429}, {"count", uniform(1, 2)}, {"retry_after", "0"}}; break;
    default: plan = {{"delay_ms", uniform(20, 250)}, {"count", uniform(1, 3)}}; break;
  }
  testing::HttpRequest req;
  req.method = "POST";
  req.url = server_->url() + "/api/_faults";
  req.body = plan.dump();
  req.headers = {"Content-Type: application/json", std::string("x-api-key: ") + kApiKey};
  auto res = http_.send(req);
  if (res.status != 200) {
    fail("POST /api/_faults answered " + std::to_string(res.status) + ": " + res.body + res.error);
    return;
  }
  ++totals_.fault_plans;
}

void Harness::reap_survivors(Clock::time_point deadline) {
  pump(live_, deadline, [&] {
    return std::all_of(live_.begin(), live_.end(), [](auto& t) { return t->finished(); });
  });
  for (auto& t : live_) {
    if (t->finished()) continue;
    fail("tracker " + t->name + " (pid " + std::to_string(t->pid) + ") did not finish in time; phase: " +
         t->phase + "; killed to go on");
    kill(t->pid, SIGKILL);
    int status = 0;
    waitpid(t->pid, &status, 0);
    t->reaped = true;
    t->exit_code = 128 + SIGKILL;
    drain(t.get());
    if (t->fd >= 0) {
      close(t->fd);
      t->fd = -1;
    }
  }
  live_.clear();
}

Totals Harness::run() {
  proxy_ = std::make_unique<testing::TcpProxy>(server_->port());
  if (!proxy_->ok()) {
    fail("the TCP proxy could not listen");
    return totals_;
  }
  testing::TcpProxy::Mix mix;
  mix.pass = 70;
  mix.reset = 10;
  mix.cut = 10;
  mix.stall = 0;
  mix.delay = 10;
  proxy_->set_random(rng_(), mix);
  proxy_->set_delay(20ms);
  proxy_->set_close_after(1);  // about one answer per connection: a fresh draw per request

  for (int cycle = 0; cycle < cfg_.cycles; ++cycle) {
    ++totals_.cycles;
    maybe_set_faults();
    bool pair = uniform(0, 3) == 0;
    totals_.pairs += pair;
    bool via_proxy = cfg_.faults && uniform(0, 2) == 0;
    std::string endpoint = via_proxy ? proxy_->url() : server_->url();
    auto victim = spawn(endpoint, via_proxy);
    if (!victim) break;
    std::shared_ptr<Tracker> partner = pair ? spawn(server_->url(), false) : nullptr;
    if (!pump(live_, Clock::now() + 30s, [&] { return victim->started() || victim->finished(); })) {
      fail("tracker " + victim->name + " did not start within 30 s");
    }
    // The random delay is the point of the test, not a wait for a condition: mostly while
    // tracking or delivering, sometimes inside open, adoption or registration.
    int delay_ms = uniform(0, 99) < 20 ? uniform(0, 5) : uniform(5, 300);
    pump(live_, Clock::now() + std::chrono::milliseconds(delay_ms), [] { return false; });
    kill_tracker(victim.get());
    if (cfg_.verbose) {
      std::fprintf(stderr, "cycle %d: %s killed after %d ms in %s with %zu keys%s\n", cycle,
                   victim->name.c_str(), delay_ms,
                   victim->killed ? victim->killed_in.c_str() : "(had ended)", victim->keys.size(),
                   pair ? " (a partner runs on)" : "");
    }
    // The victim's pipe reaches EOF once it is dead; the partner runs on into the next
    // cycles, so that the next tracker opens (and adopts) while it delivers and closes.
    pump(live_, Clock::now() + 30s, [&] { return victim->finished(); });
    std::vector<std::shared_ptr<Tracker>> still;
    for (auto& t : live_) {
      if (!t->finished()) still.push_back(t);
    }
    live_.swap(still);
  }
  reap_survivors(Clock::now() + 60s);

  for (auto& t : all_) {
    for (auto& e : t->errors) fail("tracker " + t->name + ": " + e);
    if (!t->killed && t->exit_code != 0 && t->errors.empty()) {
      fail("tracker " + t->name + " exited with " + std::to_string(t->exit_code) +
           " in phase " + t->phase + " without being killed");
    }
  }
  auto pc = proxy_->counters();
  totals_.proxy_resets = pc.resets;
  totals_.proxy_cuts = pc.cuts;
  totals_.proxy_delayed = pc.delayed;
  proxy_->stop();

  final_client();
  verify();
  return totals_;
}

void Harness::final_client() {
  // No faults for the final delivery.
  testing::HttpRequest req;
  req.method = "DELETE";
  req.url = server_->url() + "/api/_faults";
  req.headers = {std::string("x-api-key: ") + kApiKey};
  http_.send(req);

  agentburn::Options o;
  o.buffer_root = root_;
  o.endpoint = server_->url();
  o.api_key = kApiKey;
  o.flush_interval_ms = 20;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 200;
  o.close_timeout_ms = 5000;
  o.set_aside_corrupt_buffer = cfg_.set_aside_corrupt;
  auto c = agentburn::Client::open(o);
  if (!c.ok()) {
    fail("the final client could not open the root: " + c.status().to_string());
    o.set_aside_corrupt_buffer = true;
    c = agentburn::Client::open(o);
    if (!c.ok()) {
      fail("not even with set_aside_corrupt_buffer: " + c.status().to_string());
      return;
    }
  }
  agentburn::Status s = c->flush(120s);
  auto st = c->stats();
  totals_.adopted_at_end = st.adopted;
  totals_.dead_letters = st.dead_letters;
  if (!s.ok()) fail("the final flush did not deliver everything: " + s.to_string());
  if (st.dead_letters) {
    std::string why;
    for (auto& d : c->dead_letters(3)) why += " [" + d.reason + "]";
    fail(std::to_string(st.dead_letters) + " dead letters after the final flush:" + why);
  }
  s = c->close(10s);
  if (!s.ok()) fail("the final close: " + s.to_string());
  int left = 0, aside = 0;
  for (const auto& e : fs::directory_iterator(root_)) {
    if (!e.is_directory()) continue;
    std::string name = e.path().filename().string();
    if (name.rfind("corrupt-", 0) == 0) {
      ++aside;
    } else if (name.rfind(".new-", 0) == 0 && !fs::exists(e.path() / "agentburn.lock")) {
      // A process killed between creating its folder and its lock file: a later open
      // removes it once it is a minute old.
      ++totals_.empty_staging;
    } else {
      ++left;
    }
  }
  if (left) fail(std::to_string(left) + " buffer folders are left under the root after the final close");
  totals_.set_aside = static_cast<std::uint64_t>(aside);
  if (aside && !cfg_.set_aside_corrupt) {
    fail(std::to_string(aside) + " buffer folders were set aside as corrupt");
  }
}

void Harness::verify() {
  // Every stored event, agent by agent (the server answers at most 10,000 events per call).
  std::map<std::string, int> stored;  // idempotency_key -> times stored
  std::set<std::string> incomplete_agents;
  auto agents = get("/api/agents");
  if (agents.status != 200) {
    fail("GET /api/agents answered " + std::to_string(agents.status) + agents.error);
    return;
  }
  for (const auto& a : agents.json()) {
    std::string id = a.value("id", "");
    int count = a.value("eventCount", 0);
    if (count == 0) continue;
    if (count > 10000) {
      incomplete_agents.insert(id);
      continue;
    }
    auto res = get("/api/events?limit=10000&agentId=" + id);
    if (res.status != 200) {
      fail("GET /api/events for agent " + id + " answered " + std::to_string(res.status));
      continue;
    }
    auto events = res.json();
    if (static_cast<int>(events.size()) != count) incomplete_agents.insert(id);
    for (const auto& e : events) ++stored[e.value("idempotency_key", "")];
  }
  auto lookup = [&](const std::string& key) -> int {
    auto it = stored.find(key);
    if (it != stored.end() || incomplete_agents.empty()) return it == stored.end() ? 0 : it->second;
    auto res = get("/api/events?limit=10&idempotency_key=" + key);
    return res.status == 200 ? static_cast<int>(res.json().size()) : 0;
  };

  std::vector<std::string> lost_examples, twice_examples;
  for (auto& t : all_) {
    // What this tracker's events may lose: nothing, or for kBuffered what a killed tracker
    // reported after its last returned flush().
    std::size_t must = t->keys.size();
    if (mode_ == agentburn::Durability::kBuffered && !t->closed_cleanly()) must = t->checkpoint;
    for (std::size_t i = 0; i < t->keys.size(); ++i) {
      ++totals_.acked;
      int n = lookup(t->keys[i]);
      if (n > 1) {
        ++totals_.stored_twice;
        if (twice_examples.size() < 5) twice_examples.push_back(t->keys[i] + " (" + t->name + ")");
      }
      if (n > 0) continue;
      if (i >= must) {
        ++totals_.unflushed_missing;
        continue;
      }
      ++totals_.lost;
      if (lost_examples.size() < 10) {
        lost_examples.push_back(t->keys[i] + " (" + t->name + ", key " + std::to_string(i + 1) +
                                " of " + std::to_string(t->keys.size()) + ", checkpoint " +
                                std::to_string(t->checkpoint) + ", killed in " +
                                (t->killed ? t->killed_in : std::string("-")) + ")");
      }
    }
  }
  auto st = get("/api/_stats");
  if (st.status == 200) {
    auto j = st.json();
    totals_.server_stored = j.value("events_stored", 0ULL);
    totals_.server_received = j.value("events_received", 0ULL);
    totals_.server_duplicates = j.value("duplicates", 0ULL);
    totals_.server_requests = j.value("ingest_requests", 0ULL);
    totals_.faults_injected = j.value("faults_injected", 0ULL);
  } else {
    fail("GET /api/_stats answered " + std::to_string(st.status));
  }
  if (totals_.lost) {
    std::string list;
    for (auto& k : lost_examples) list += "\n    " + k;
    fail(std::to_string(totals_.lost) + " acknowledged events are not on the server, e.g.:" + list);
  }
  if (totals_.stored_twice) {
    std::string list;
    for (auto& k : twice_examples) list += "\n    " + k;
    fail(std::to_string(totals_.stored_twice) + " events are stored more than once, e.g.:" + list);
  }
  // Sent twice: a killed process's batches in flight, a chunk it was adopting when killed,
  // answers the proxy cut, and transfers a close() aborted (one per tracker at most). More
  // than that means two live processes sent the same events.
  std::uint64_t bound = static_cast<std::uint64_t>(totals_.kills) *
                            (kMaxBatchEvents * kMaxInFlight + kAdoptChunk) +
                        totals_.proxy_cuts * kMaxBatchEvents +
                        static_cast<std::uint64_t>(totals_.trackers) * kMaxBatchEvents * kMaxInFlight;
  if (totals_.server_duplicates > bound) {
    fail("the server saw " + std::to_string(totals_.server_duplicates) +
         " events again, more than kills and cut answers explain (" + std::to_string(bound) + ")");
  }
}

void print_totals(const char* label, const Totals& t) {
  std::printf("%s: %d cycles, %d trackers (%d cycles with two at once), %d kills", label,
              t.cycles, t.trackers, t.pairs, t.kills);
  if (!t.kills_by_phase.empty()) {
    std::printf(" (");
    bool first = true;
    for (auto& [phase, n] : t.kills_by_phase) {
      std::printf("%s%s %d", first ? "" : ", ", phase.c_str(), n);
      first = false;
    }
    std::printf(")");
  }
  std::printf("\n  events acked %llu, stored on the server %llu, raw resends absorbed by the server %llu"
              " (received %llu in %llu requests, duplicates %llu)\n",
              (unsigned long long)t.acked, (unsigned long long)t.server_stored,
              (unsigned long long)(t.server_received - t.server_stored),
              (unsigned long long)t.server_received, (unsigned long long)t.server_requests,
              (unsigned long long)t.server_duplicates);
  std::printf("  faults: %d server plans (%llu answers injected), proxy %llu resets, %llu cut answers,"
              " %llu delayed; adopted by the final client %llu; dead letters %llu\n",
              t.fault_plans, (unsigned long long)t.faults_injected,
              (unsigned long long)t.proxy_resets, (unsigned long long)t.proxy_cuts,
              (unsigned long long)t.proxy_delayed, (unsigned long long)t.adopted_at_end,
              (unsigned long long)t.dead_letters);
  if (t.set_aside) {
    std::printf("  folders no process could open, set aside: %llu\n", (unsigned long long)t.set_aside);
  }
  if (t.empty_staging) {
    std::printf("  empty folders of processes killed while creating them (removed after a minute): %llu\n",
                (unsigned long long)t.empty_staging);
  }
  std::printf("  lost: %llu", (unsigned long long)t.lost);
  if (t.unflushed_missing) {
    std::printf(" (plus %llu acked after the last flush() of a killed kBuffered tracker, allowed)",
                (unsigned long long)t.unflushed_missing);
  }
  std::printf("; stored twice: %llu; failures: %zu\n", (unsigned long long)t.stored_twice,
              t.failures.size());
  std::fflush(stdout);
}

int usage(const char* why) {
  std::fprintf(stderr,
               "crash_harness: %s\n"
               "usage: crash_harness [--cycles N] [--durability buffered|process|system|all]\n"
               "                     [--seed S] [--server PATH] [--workdir DIR] [--no-faults]\n"
               "                     [--set-aside-corrupt] [--verbose]\n",
               why);
  return 2;
}

std::string self_path() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

int harness_main(Config cfg) {
  signal(SIGPIPE, SIG_IGN);
  bool own_workdir = cfg.workdir.empty();
  if (own_workdir) {
    std::string tmpl = (fs::temp_directory_path() / "agentburn-crash-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return usage("cannot create a work folder");
    cfg.workdir = tmpl;
  } else {
    std::error_code ec;
    fs::create_directories(cfg.workdir, ec);
  }
  testing::ServerConfig sc;
  sc.binary = cfg.server;
  sc.data_dir = cfg.workdir + "/server";
  sc.api_key = kApiKey;
  sc.extra_args = {"--enable-fault-injection", "--quiet"};
  testing::ServerProcess server(sc);
  if (!server.start()) {
    std::fprintf(stderr, "crash_harness: the server did not start: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("crash_harness: seed %llu, %d cycles per mode, server %s\n",
              (unsigned long long)cfg.seed, cfg.cycles, server.url().c_str());
  std::fflush(stdout);

  bool ok = true;
  Totals all;
  std::uint64_t seed = cfg.seed;
  for (auto mode : cfg.modes) {
    std::string root = cfg.workdir + "/root-" + mode_name(mode);
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::create_directories(root, ec);
    // Each mode gets a fresh server database too, so that its figures are its own.
    server.stop();
    fs::remove_all(sc.data_dir, ec);
    if (!server.start()) {
      std::fprintf(stderr, "crash_harness: the server did not restart: %s\n", server.error().c_str());
      return 1;
    }
    auto start = Clock::now();
    Harness h(cfg, mode, &server, root, seed++);
    Totals t = h.run();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::string label = std::string("durability ") + mode_name(mode);
    print_totals(label.c_str(), t);
    std::printf("  %.1f s\n", secs);
    ok = ok && t.failures.empty() && t.lost == 0;
    all.cycles += t.cycles;
    all.kills += t.kills;
    all.trackers += t.trackers;
    all.pairs += t.pairs;
    all.fault_plans += t.fault_plans;
    for (auto& [p, n] : t.kills_by_phase) all.kills_by_phase[p] += n;
    all.acked += t.acked;
    all.lost += t.lost;
    all.unflushed_missing += t.unflushed_missing;
    all.stored_twice += t.stored_twice;
    all.server_stored += t.server_stored;
    all.server_received += t.server_received;
    all.server_duplicates += t.server_duplicates;
    all.server_requests += t.server_requests;
    all.faults_injected += t.faults_injected;
    all.proxy_resets += t.proxy_resets;
    all.proxy_cuts += t.proxy_cuts;
    all.proxy_delayed += t.proxy_delayed;
    all.adopted_at_end += t.adopted_at_end;
    all.dead_letters += t.dead_letters;
    all.set_aside += t.set_aside;
    all.empty_staging += t.empty_staging;
    all.failures.insert(all.failures.end(), t.failures.begin(), t.failures.end());
  }
  if (cfg.modes.size() > 1) print_totals("all modes", all);
  int stop_code = server.stop();
  if (stop_code != 0) {
    std::fprintf(stderr, "crash_harness: the server exited with %d\n", stop_code);
    ok = false;
  }
  if (ok) {
    std::error_code ec;
    if (own_workdir) fs::remove_all(cfg.workdir, ec);
    std::printf("crash_harness: PASS\n");
    return 0;
  }
  for (std::size_t i = 0; i < all.failures.size() && i < 20; ++i) {
    std::printf("  failure: %s\n", all.failures[i].c_str());
  }
  if (all.failures.size() > 20) std::printf("  ... and %zu more\n", all.failures.size() - 20);
  std::printf("crash_harness: FAIL (files kept in %s)\n", cfg.workdir.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto value = [&](std::size_t* i) -> const char* {
    return *i + 1 < args.size() ? args[++*i].c_str() : nullptr;
  };
  if (!args.empty() && args[0] == "--tracker") {
    TrackerArgs a;
    for (std::size_t i = 1; i < args.size(); ++i) {
      const std::string& f = args[i];
      if (f == "--set-aside-corrupt") {
        a.set_aside_corrupt = true;
        continue;
      }
      const char* v = value(&i);
      if (!v) return 2;
      if (f == "--root") a.root = v;
      else if (f == "--endpoint") a.endpoint = v;
      else if (f == "--name") a.name = v;
      else if (f == "--durability") { if (!parse_mode(v, &a.durability)) return 2; }
      else if (f == "--seed") a.seed = std::strtoull(v, nullptr, 10);
      else if (f == "--threads") a.threads = std::atoi(v);
      else if (f == "--events") a.events = std::atoi(v);
      else if (f == "--batch") a.batch_max_events = std::atoi(v);
      else if (f == "--in-flight") a.in_flight = std::atoi(v);
      else return 2;
    }
    return tracker_main(a);
  }

  Config cfg;
  cfg.server = AGENTBURN_SERVER_PATH;
  cfg.self = self_path();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    if (f == "--no-faults") { cfg.faults = false; continue; }
    if (f == "--set-aside-corrupt") { cfg.set_aside_corrupt = true; continue; }
    if (f == "--verbose") { cfg.verbose = true; continue; }
    if (f == "--help" || f == "-h") { usage("kill cycles against agentburn-server"); return 0; }
    const char* v = value(&i);
    if (!v) return usage(("missing value for " + f).c_str());
    if (f == "--cycles") {
      cfg.cycles = std::atoi(v);
      if (cfg.cycles < 1) return usage("--cycles must be at least 1");
    } else if (f == "--durability") {
      std::string m = v;
      cfg.modes.clear();
      if (m == "all") {
        cfg.modes = {agentburn::Durability::kBuffered, agentburn::Durability::kProcess,
                     agentburn::Durability::kSystem};
      } else {
        agentburn::Durability d;
        if (!parse_mode(m, &d)) return usage("--durability: buffered, process, system or all");
        cfg.modes = {d};
      }
    } else if (f == "--seed") {
      cfg.seed = std::strtoull(v, nullptr, 10);
    } else if (f == "--server") {
      cfg.server = v;
    } else if (f == "--workdir") {
      cfg.workdir = fs::absolute(v).string();
    } else {
      return usage(("unknown flag " + f).c_str());
    }
  }
  if (cfg.self.empty()) return usage("cannot find this program's own path");
  return harness_main(cfg);
}
