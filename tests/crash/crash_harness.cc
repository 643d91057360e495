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
// Agents, chosen by the seeded generator like everything else:
// - A sixth of the trackers run offline (no endpoint): every agent they register gets the
//   root's provisional id, and their events wait until a later process delivers them.
// - Unless --no-faults, 30% of the trackers register two agents offline first, before the
//   server has seen them: one whose name the server refuses (422, for good) and one it fails
//   to register (503) a few times; their events are mixed with those of the tracker's own
//   agent in the same batches. The refused agent's events must end as dead letters (never on
//   the server, never lost), the others on the server once.
// - 15% of the cycles start two or three offline trackers at once that register the same 20
//   agent names and track with them: they must all get the same provisional id for a name,
//   and every event must reach the server under the server's id for its agent.
// Every event names its agent in workflowId too, so that each stored event is checked to be
// under the agent it was tracked for.
//
// --scenario disk (as root; skipped with a note otherwise) runs rounds on a small tmpfs
// instead: an offline tracker leaves a backlog, a tracker with an endpoint takes it over and
// delivers it while tracking more, the server holds its answers and refuses some keys (so
// dead letters must be written), and the harness fills the disk while that goes on, then
// frees it (and kills the tracker in some rounds). Every acknowledged event must end on the
// server once or as a dead letter once, and the clean client that finishes each round must
// leave no folder behind once its dead letters are counted and purged.
//
//   crash_harness [--cycles N] [--durability buffered|process|system|all] [--seed S]
//                 [--scenario cycles|disk] [--server PATH] [--workdir DIR] [--no-faults]
//                 [--set-aside-corrupt] [--verbose]
//
// --set-aside-corrupt opens every client with Options::set_aside_corrupt_buffer, so that a
// folder no process can open (one left by a kill inside Client::open, say) is counted and
// moved aside instead of failing every later open; losses are still checked.
//
// Each tracker reports on a pipe, one line each:
//   S            started, about to open the client
//   O            Client::open returned OK
//   P <r> <f>    the provisional ids of the refused and the flaky agent (registered offline)
//   N <name> <id>  the id register_agent returned for one of the shared offline names
//   A <id>       register_agent returned (the id the events carry)
//   K <key> [r]  track() returned OK for the event with this idempotency_key ("r": an event
//                of the refused agent, which must end as a dead letter)
//   X            track() or flush() refused for lack of disk space (--scenario disk only)
//   L <text>     an error the library logged (--scenario disk only)
//   F <n>        about to call flush() (n: a number unique in the tracker)
//   C <n>        that flush() returned: for kBuffered, every key reported before "F <n>" is
//                on disk (flush writes the stage before it waits)
//   T            every thread finished tracking
//   D            close() returned
//   W <text>     a warning (a final flush that timed out, say)
//   E <text>     an error that ends the tracker: the harness fails
//
// What must hold, checked on the server once a final clean client has flushed:
// - kProcess and kSystem: every key whose track() returned OK is stored exactly once, or
//   for the refused agent's events (and keys the server refuses) is a dead letter exactly
//   once and not stored;
// - kBuffered: the same for every key reported before the tracker's last checkpoint (or by
//   a tracker that closed); a key reported later may be missing (counted, allowed);
// - every stored event is under the server id of the agent it was tracked for;
// - no tracker reports an error, no tracker hangs, the final client opens, flushes, holds
//   no dead letter but those expected (listed, not purged nor requeued, and still there for
//   the next client, which purges them), leaves no folder behind, and the server's
//   duplicate count stays within what kills explain.
// The exit status is 0 when all of that holds, 1 otherwise, 2 for bad flags.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
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
#include "support/tmpfs.hpp"

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
  bool offline = false;        // no endpoint: every agent gets a provisional id
  std::string refused, flaky;  // agents registered offline first; empty: none
  std::string herd;            // names <herd>-0 .. <herd>-(herd_size-1), registered offline
  int herd_size = 0;
  bool explicit_keys = false;  // idempotency keys <name>-<thread>-<i>, known to the harness
  bool tolerate_full = false;  // a full disk refusing track() or flush() is expected
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

bool is_provisional(const std::string& id) { return id.rfind("ab-local-", 0) == 0; }

bool disk_full(const agentburn::Status& s) {
  using Code = agentburn::Status::Code;
  return s.code() == Code::kStorage || s.code() == Code::kFull;
}

agentburn::Agent agent_named(const std::string& name) {
  agentburn::Agent a;
  a.name = name;
  a.project_id = kProject;
  return a;
}

std::string explicit_key(const std::string& tracker, int thread, int i) {
  return tracker + "-" + std::to_string(thread) + "-" + std::to_string(i);
}

int tracker_main(const TrackerArgs& a) {
  emit("S");
  std::mt19937_64 choose(a.seed);
  agentburn::Options o;
  o.buffer_root = a.root;
  o.durability = a.durability;
  o.endpoint = a.offline ? std::string() : a.endpoint;
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
  if (a.tolerate_full) {
    // What the library says about the full disk: the harness counts the writes it retried.
    o.log = [](agentburn::LogLevel level, const std::string& message) {
      if (level < agentburn::LogLevel::kError) return;
      std::string line = message.substr(0, 1000);
      for (auto& ch : line) {
        if (ch == '\n') ch = ' ';
      }
      emit("L " + line);
    };
  }
  const bool mixed = !a.refused.empty();

  // The refused and the flaky agent are registered before the server has seen them: by a
  // client without an endpoint, as a process that ran offline earlier would have.
  std::string refused_id, flaky_id;
  auto register_offline = [&](agentburn::Client& c) {
    auto r = c.register_agent(agent_named(a.refused));
    if (!r.ok()) die(4, "register_agent (refused, offline): " + r.status().to_string());
    auto f = c.register_agent(agent_named(a.flaky));
    if (!f.ok()) die(4, "register_agent (flaky, offline): " + f.status().to_string());
    if (!is_provisional(r.value()) || !is_provisional(f.value())) {
      die(4, "register_agent offline answered a non-provisional id: " + r.value() + " " +
                 f.value());
    }
    refused_id = r.value();
    flaky_id = f.value();
  };
  if (mixed && !a.offline) {
    agentburn::Options off = o;
    off.endpoint.clear();
    auto opened = agentburn::Client::open(off);
    if (!opened.ok()) die(3, "open (offline, to register): " + opened.status().to_string());
    register_offline(opened.value());
    agentburn::Status s = opened.value().close(1s);
    if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) {
      die(7, "close (offline, to register): " + s.to_string());
    }
  }

  auto opened = agentburn::Client::open(o);
  if (!opened.ok()) die(3, "open: " + opened.status().to_string());
  agentburn::Client c = std::move(opened.value());
  emit("O");

  if (mixed && a.offline) register_offline(c);
  if (mixed && !a.offline) {
    // Online, the server refuses the agent (kInvalid); through a proxy that cut the answer,
    // the root's provisional id comes back. Never anything else.
    auto r = c.register_agent(agent_named(a.refused));
    if (r.ok() && r.value() != refused_id) {
      die(4, "register_agent (refused, online) answered " + r.value() + ", not " + refused_id);
    }
    if (!r.ok() && r.status().code() != agentburn::Status::Code::kInvalid &&
        r.status().code() != agentburn::Status::Code::kNetwork) {
      die(4, "register_agent (refused, online): " + r.status().to_string());
    }
    // Half the time the flaky agent is asked for online too: the server's id, or (503) the
    // same provisional id.
    if (choose() % 2 == 0) {
      auto f = c.register_agent(agent_named(a.flaky));
      if (!f.ok()) die(4, "register_agent (flaky, online): " + f.status().to_string());
      if (is_provisional(f.value()) && f.value() != flaky_id) {
        die(4, "register_agent (flaky, online) answered " + f.value() + ", not " + flaky_id);
      }
      flaky_id = f.value();
    }
  }
  if (mixed) emit("P " + refused_id + " " + flaky_id);

  std::vector<std::pair<std::string, std::string>> herd;  // name, id
  for (int i = 0; i < a.herd_size; ++i) {
    std::string name = a.herd + "-" + std::to_string(i);
    auto id = c.register_agent(agent_named(name));
    if (!id.ok()) die(4, "register_agent (" + name + "): " + id.status().to_string());
    if (a.offline && !is_provisional(id.value())) {
      die(4, "register_agent (" + name + ") offline answered " + id.value());
    }
    emit("N " + name + " " + id.value());
    herd.emplace_back(name, id.value());
  }

  agentburn::Agent mine = agent_named("crash-" + a.name), shared = agent_named(kSharedAgent);
  mine.tags = {"crash"};
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
        // Which agent: mostly the tracker's own; the refused and the flaky one (or the
        // shared offline names) in the same batches.
        int pick = static_cast<int>(rng() % 100);
        bool refused = false;
        const std::string* name = &mine.name;
        e.agent_id = mine_id.value();
        if (rng() % 50 == 0) {
          name = &shared.name;
          e.agent_id = shared_id.value();
        } else if (!herd.empty() && pick < 80) {
          auto& h = herd[rng() % herd.size()];
          name = &h.first;
          e.agent_id = h.second;
        } else if (mixed && pick < 12) {
          name = &a.refused;
          e.agent_id = refused_id;
          refused = true;
        } else if (mixed && pick < 24) {
          name = &a.flaky;
          e.agent_id = flaky_id;
        }
        e.provider = i % 2 ? "openai" : "anthropic";
        e.operation = i % 3 ? "llm_call" : "tool_call";
        e.model = "model-" + std::to_string(i % 4);
        e.cost_usd = 0.0001 * static_cast<double>(i + 1);
        e.input_tokens = i;
        e.output_tokens = 2 * i;
        e.task_id = a.name;
        e.workflow_id = *name;  // the agent it is tracked for, checked on the server
        e.metadata_json = "{\"thread\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
        if (a.explicit_keys) e.idempotency_key = explicit_key(a.name, t, i);
        std::string key;
        agentburn::Status s = c.track(e, &key);
        if (!s.ok() && a.tolerate_full && disk_full(s)) {
          emit("X");
          // Paces the retries of a thread while the disk is full; decides nothing.
          std::this_thread::sleep_for(2ms);
          continue;
        }
        if (!s.ok()) die(5, "track: " + s.to_string());
        emit(refused ? "K " + key + " r" : "K " + key);
        if (--until_flush == 0) {
          until_flush = std::uniform_int_distribution<int>(5, 80)(rng);
          int n = next_flush.fetch_add(1);
          emit("F " + std::to_string(n));
          // Waits for delivery up to a few ms: paces the tracker, and kills land while
          // batches are in flight. kTimeout only says that delivery is still under way.
          auto wait = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 30)(rng));
          s = c.flush(wait);
          if (!s.ok() && a.tolerate_full && disk_full(s)) {
            emit("X");  // the stage was not written: no checkpoint
            continue;
          }
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
  // On a full disk the stage of kBuffered cannot be written yet: again until the disk has
  // room, within a deadline.
  for (auto until = Clock::now() + 30s; a.tolerate_full && disk_full(s) && Clock::now() < until;) {
    emit("X");
    std::this_thread::sleep_for(20ms);
    s = c.flush(10s);
  }
  if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) die(6, "final flush: " + s.to_string());
  if (!s.ok() && !a.offline) emit("W final flush: " + s.to_string());
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
  bool offline = false;
  int herd = -1;  // the cycle whose shared offline names it registered; -1: none
  Clock::time_point started_at{};
  std::string partial;
  std::vector<std::string> keys;  // acknowledged, in report order
  std::vector<bool> refused;      // per key: an event of the refused agent
  std::map<std::string, std::size_t> flush_marks;  // "F n" -> keys before it
  std::size_t checkpoint = 0;     // keys covered by a returned flush()
  std::map<std::string, std::string> herd_ids;  // shared offline name -> id it was given
  std::uint64_t full_refusals = 0;              // "X" lines
  std::uint64_t unburied = 0, unremoved = 0, other_logged = 0;  // "L" lines: writes retried
  std::vector<std::string> logged;  // the first few other "L" lines
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
    case 'P': break;
    case 'N': {
      auto space = rest.find(' ');
      if (space == std::string::npos) {
        t->errors.push_back("a bad N line from the tracker: " + line);
      } else {
        t->herd_ids[rest.substr(0, space)] = rest.substr(space + 1);
      }
      break;
    }
    case 'A': t->phase = "tracking"; break;
    case 'K': {
      bool refused = rest.size() > 2 && rest.compare(rest.size() - 2, 2, " r") == 0;
      t->keys.push_back(refused ? rest.substr(0, rest.size() - 2) : rest);
      t->refused.push_back(refused);
      break;
    }
    case 'X': ++t->full_refusals; break;
    case 'L':
      if (rest.find("stays queued until it can be written") != std::string::npos) {
        ++t->unburied;  // a dead letter that could not be written yet
      } else if (rest.find("; retrying") != std::string::npos) {
        ++t->unremoved;  // acknowledged events that could not be deleted yet
      } else {
        ++t->other_logged;
        if (t->logged.size() < 3) t->logged.push_back(rest);
      }
      break;
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
  std::string scenario = "cycles";  // or "disk"
  std::string server;
  std::string workdir;
  std::string self;
  bool faults = true;
  bool set_aside_corrupt = false;
  bool verbose = false;
};

struct Totals {
  int cycles = 0, kills = 0, trackers = 0, pairs = 0, fault_plans = 0;
  int offline = 0, mixed = 0, herd_cycles = 0, herd_trackers = 0, disk_fills = 0;
  std::map<std::string, int> kills_by_phase;
  std::uint64_t acked = 0, checked = 0, unflushed_missing = 0, lost = 0, stored_twice = 0;
  std::uint64_t server_stored = 0, server_received = 0, server_duplicates = 0;
  std::uint64_t server_requests = 0, faults_injected = 0;
  std::uint64_t proxy_resets = 0, proxy_cuts = 0, proxy_delayed = 0;
  std::uint64_t adopted_at_end = 0, dead_letters = 0, set_aside = 0, empty_staging = 0;
  std::uint64_t dead_expected = 0, dead_accounted = 0, dead_unreported = 0;
  std::uint64_t refused_delivered = 0, misfiled = 0, full_refusals = 0, filler_bytes = 0;
  std::uint64_t unburied = 0, unremoved = 0, other_logged = 0;
  std::vector<std::string> failures;

  void add(const Totals& t) {
    cycles += t.cycles;
    kills += t.kills;
    trackers += t.trackers;
    pairs += t.pairs;
    fault_plans += t.fault_plans;
    offline += t.offline;
    mixed += t.mixed;
    herd_cycles += t.herd_cycles;
    herd_trackers += t.herd_trackers;
    disk_fills += t.disk_fills;
    for (auto& [p, n] : t.kills_by_phase) kills_by_phase[p] += n;
    acked += t.acked;
    lost += t.lost;
    unflushed_missing += t.unflushed_missing;
    stored_twice += t.stored_twice;
    server_stored += t.server_stored;
    server_received += t.server_received;
    server_duplicates += t.server_duplicates;
    server_requests += t.server_requests;
    faults_injected += t.faults_injected;
    proxy_resets += t.proxy_resets;
    proxy_cuts += t.proxy_cuts;
    proxy_delayed += t.proxy_delayed;
    adopted_at_end += t.adopted_at_end;
    dead_letters += t.dead_letters;
    set_aside += t.set_aside;
    empty_staging += t.empty_staging;
    dead_expected += t.dead_expected;
    dead_accounted += t.dead_accounted;
    dead_unreported += t.dead_unreported;
    refused_delivered += t.refused_delivered;
    misfiled += t.misfiled;
    full_refusals += t.full_refusals;
    filler_bytes += t.filler_bytes;
    unburied += t.unburied;
    unremoved += t.unremoved;
    other_logged += t.other_logged;
    failures.insert(failures.end(), t.failures.begin(), t.failures.end());
  }
};

// How to start one tracker; zero counts are drawn at random as usual.
struct Spawn {
  std::string name;  // from Harness::next_name()
  std::string endpoint;
  bool via_proxy = false;
  bool offline = false;
  std::string refused, flaky;
  std::string herd;
  int herd_size = 0;
  int herd_cycle = -1;
  bool explicit_keys = false;
  bool tolerate_full = false;
  int threads = 0, events = 0;
};

// Writes to `path` until the file system is full; the bytes written.
std::uint64_t fill_disk(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  std::string chunk(1 << 16, 'f');
  std::uint64_t total = 0;
  for (;;) {
    ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // ENOSPC
    total += static_cast<std::uint64_t>(n);
  }
  close(fd);
  return total;
}

class Harness {
 public:
  Harness(const Config& cfg, agentburn::Durability mode, testing::ServerProcess* server,
          const std::string& root, std::uint64_t seed)
      : cfg_(cfg), mode_(mode), server_(server), root_(root), rng_(seed) {}

  Totals run();
  Totals run_disk();  // root_ is on a tmpfs: each round uses a folder of its own under it

 private:
  std::string next_name() {
    return std::string(mode_name(mode_)) + "-" + std::to_string(spawned_++);
  }
  std::shared_ptr<Tracker> spawn(const Spawn& how);
  void kill_tracker(Tracker* t);
  json standing_faults() const;
  bool post_faults(const json& plan);
  void maybe_set_faults(const std::vector<std::string>& flaky, bool new_refused);
  json server_stats();
  void prune_live();
  void reap_survivors(Clock::time_point deadline);
  void check_trackers();
  void check_herds();
  bool expected_dead_letter(const std::string& key, const std::string& workflow) const;
  void final_client(const std::string& root);
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
  std::vector<std::string> refused_names_;  // refused by the server for good (422)
  std::set<std::string> reject_keys_;       // keys the server refuses (--scenario disk)
  std::multiset<std::string> dead_seen_;    // keys of the dead letters final clients listed
  std::map<int, std::vector<std::shared_ptr<Tracker>>> herds_;  // cycle -> its trackers
  Totals totals_;
};

testing::HttpResponse Harness::get(const std::string& path) {
  testing::HttpRequest req;
  req.url = server_->url() + path;
  req.headers.push_back(std::string("x-api-key: ") + kApiKey);
  req.timeout_ms = 60000;
  return http_.send(req);
}

json Harness::server_stats() {
  auto res = get("/api/_stats");
  json j = res.status == 200 ? res.json() : json();
  return j.is_object() ? j : json::object();
}

std::shared_ptr<Tracker> Harness::spawn(const Spawn& how) {
  auto t = std::make_shared<Tracker>();
  t->name = how.name;
  t->via_proxy = how.via_proxy;
  t->offline = how.offline;
  t->herd = how.herd_cycle;
  int threads = how.threads ? how.threads : uniform(3, 4);
  int events = how.events ? how.events : uniform(100, 1200);
  std::vector<std::string> args = {
      cfg_.self, "--tracker", "--root", root_, "--endpoint", how.endpoint, "--name", t->name,
      "--durability", mode_name(mode_), "--seed", std::to_string(rng_()),
      "--threads", std::to_string(threads), "--events", std::to_string(events),
      "--batch", std::to_string(std::vector<int>{25, 100, kMaxBatchEvents}[uniform(0, 2)]),
      "--in-flight", std::to_string(uniform(1, kMaxInFlight))};
  if (cfg_.set_aside_corrupt) args.push_back("--set-aside-corrupt");
  if (how.offline) args.push_back("--offline");
  if (!how.refused.empty()) {
    args.insert(args.end(), {"--refused", how.refused, "--flaky", how.flaky});
  }
  if (how.herd_size) {
    args.insert(args.end(), {"--herd", how.herd, "--herd-size", std::to_string(how.herd_size)});
  }
  if (how.explicit_keys) args.push_back("--explicit-keys");
  if (how.tolerate_full) args.push_back("--tolerate-full");
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
  totals_.offline += how.offline;
  totals_.mixed += !how.refused.empty();
  if (how.herd_cycle >= 0) {
    herds_[how.herd_cycle].push_back(t);
    ++totals_.herd_trackers;
  }
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

// What every plan carries for as long as the run lasts: the agents the server refuses and
// the keys it rejects, so that their events can only ever end as dead letters.
json Harness::standing_faults() const {
  json items = json::array();
  if (!refused_names_.empty()) items.push_back({{"agent_status", 422}, {"names", refused_names_}});
  if (!reject_keys_.empty()) items.push_back({{"reject_keys", reject_keys_}});
  return items;
}

bool Harness::post_faults(const json& plan) {
  testing::HttpRequest req;
  req.url = server_->url() + "/api/_faults";
  req.headers = {std::string("x-api-key: ") + kApiKey};
  if (plan.empty()) {
    req.method = "DELETE";
  } else {
    req.method = "POST";
    req.body = plan.dump();
    req.headers.push_back("Content-Type: application/json");
  }
  auto res = http_.send(req);
  if (res.status != 200) {
    fail(req.method + " /api/_faults answered " + std::to_string(res.status) + ": " + res.body +
         res.error);
    return false;
  }
  return true;
}

// A random fault plan for the cycle to come: 5xx or 429 answers, or answers held after the
// events were stored (a kill then leaves them stored but unacknowledged); and for a tracker
// with a flaky agent, that agent's registrations failing with 503 a few times.
void Harness::maybe_set_faults(const std::vector<std::string>& flaky, bool new_refused) {
  json plan = json::array();
  if (cfg_.faults && uniform(0, 99) < 40) {
    switch (uniform(0, 3)) {
      case 0: plan.push_back({{"status", 503}, {"count", uniform(1, 2)}}); break;
      case 1: plan.push_back({{"status", 500}, {"count", 1}}); break;
      case 2:
        plan.push_back({{"status", 429}, {"count", uniform(1, 2)}, {"retry_after", "0"}});
        break;
      default: plan.push_back({{"delay_ms", uniform(20, 250)}, {"count", uniform(1, 3)}}); break;
    }
    ++totals_.fault_plans;
  }
  for (const auto& name : flaky) {
    plan.push_back(
        {{"agent_status", 503}, {"names", json::array({name})}, {"count", uniform(2, 6)}});
  }
  if (plan.empty() && !new_refused) return;  // the plan in force stands
  for (auto& item : standing_faults()) plan.push_back(item);
  post_faults(plan);
}

void Harness::prune_live() {
  std::vector<std::shared_ptr<Tracker>> still;
  for (auto& t : live_) {
    if (!t->finished()) still.push_back(t);
  }
  live_.swap(still);
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

void Harness::check_trackers() {
  for (auto& t : all_) {
    for (auto& e : t->errors) fail("tracker " + t->name + ": " + e);
    if (!t->killed && t->exit_code != 0 && t->errors.empty()) {
      fail("tracker " + t->name + " exited with " + std::to_string(t->exit_code) +
           " in phase " + t->phase + " without being killed");
    }
    totals_.full_refusals += t->full_refusals;
    totals_.unburied += t->unburied;
    totals_.unremoved += t->unremoved;
    totals_.other_logged += t->other_logged;
  }
}

// Trackers that registered the same names offline at once on one root got one provisional
// id per name.
void Harness::check_herds() {
  for (auto& [cycle, trackers] : herds_) {
    std::map<std::string, std::set<std::string>> ids;
    for (auto& t : trackers) {
      for (auto& [name, id] : t->herd_ids) ids[name].insert(id);
    }
    for (auto& [name, set] : ids) {
      if (set.size() == 1 && is_provisional(*set.begin())) continue;
      std::string list;
      for (auto& id : set) list += " " + id;
      fail("cycle " + std::to_string(cycle) + ": " + std::to_string(trackers.size()) +
           " trackers registering \"" + name + "\" offline at once got" + list +
           " (one provisional id expected)");
    }
  }
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
    // What the cycle's tracker does: registers the same names offline as one or two others
    // started with it (a herd), or registers a refused and a flaky agent offline first
    // (mixed), or runs offline, or none of these.
    bool herd = uniform(0, 99) < 15;
    bool mixed = !herd && cfg_.faults && uniform(0, 99) < 30;
    bool offline = !herd && uniform(0, 5) == 0;
    bool pair = !herd && uniform(0, 3) == 0;
    bool partner_mixed = pair && cfg_.faults && uniform(0, 99) < 30;
    totals_.pairs += pair;
    Spawn v, p;
    v.name = next_name();
    if (pair) p.name = next_name();
    std::vector<std::string> flaky;
    for (auto [spec, with] : {std::pair{&v, mixed}, std::pair{&p, partner_mixed}}) {
      if (!with) continue;
      spec->refused = "refused-" + spec->name;
      spec->flaky = "flaky-" + spec->name;
      refused_names_.push_back(spec->refused);
      flaky.push_back(spec->flaky);
    }
    maybe_set_faults(flaky, mixed || partner_mixed);
    v.via_proxy = !herd && !offline && cfg_.faults && uniform(0, 2) == 0;
    v.endpoint = v.via_proxy ? proxy_->url() : server_->url();
    v.offline = offline || herd;
    if (herd) {
      ++totals_.herd_cycles;
      v.herd = std::string("herd-") + mode_name(mode_) + "-" + std::to_string(cycle);
      v.herd_size = 20;
      v.herd_cycle = cycle;
      v.threads = uniform(2, 3);
      v.events = uniform(100, 500);
    }
    auto victim = spawn(v);
    if (!victim) break;
    std::shared_ptr<Tracker> partner;
    if (pair) {
      p.endpoint = server_->url();
      partner = spawn(p);
    }
    if (herd) {
      // The others of the herd start at once with it, and run on into the next cycles.
      for (int n = uniform(1, 2); n > 0; --n) {
        Spawn h = v;
        h.name = next_name();
        h.threads = uniform(2, 3);
        h.events = uniform(100, 500);
        spawn(h);
      }
    }
    // A tracker registering agents offline first opens twice, and a herd's registrations
    // wait on each other: most of the time the kill comes once it tracks, so that events of
    // those agents are on disk.
    bool after_registration = (mixed || herd) && uniform(0, 9) < 7;
    if (!pump(live_, Clock::now() + 30s, [&] { return victim->started() || victim->finished(); })) {
      fail("tracker " + victim->name + " did not start within 30 s");
    }
    auto registered = [&] { return victim->phase == "tracking" || victim->finished(); };
    if (after_registration && !pump(live_, Clock::now() + 30s, registered)) {
      fail("tracker " + victim->name + " did not register its agents within 30 s");
    }
    // The random delay is the point of the test, not a wait for a condition: mostly while
    // tracking or delivering, sometimes inside open, adoption or registration.
    int delay_ms = uniform(0, 99) < 20 ? uniform(0, 5) : uniform(5, 300);
    pump(live_, Clock::now() + std::chrono::milliseconds(delay_ms), [] { return false; });
    kill_tracker(victim.get());
    if (cfg_.verbose) {
      std::fprintf(stderr, "cycle %d: %s%s killed after %d ms in %s with %zu keys%s\n", cycle,
                   victim->name.c_str(),
                   herd ? " (herd)" : mixed ? " (mixed)" : offline ? " (offline)" : "", delay_ms,
                   victim->killed ? victim->killed_in.c_str() : "(had ended)", victim->keys.size(),
                   pair ? " (a partner runs on)" : "");
    }
    // The victim's pipe reaches EOF once it is dead; the partner runs on into the next
    // cycles, so that the next tracker opens (and adopts) while it delivers and closes.
    pump(live_, Clock::now() + 30s, [&] { return victim->finished(); });
    prune_live();
  }
  auto stage = [&](const char* what) {
    if (cfg_.verbose) std::fprintf(stderr, "%s\n", what);
  };
  stage("cycles done; waiting for the trackers still running");
  reap_survivors(Clock::now() + 60s);
  check_trackers();
  check_herds();
  auto pc = proxy_->counters();
  totals_.proxy_resets = pc.resets;
  totals_.proxy_cuts = pc.cuts;
  totals_.proxy_delayed = pc.delayed;
  proxy_->stop();

  stage("the final client delivers what is left");
  final_client(root_);
  stage("verifying on the server");
  verify();
  return totals_;
}

Totals Harness::run_disk() {
  const std::string mnt = root_;
  for (int round = 0; round < cfg_.cycles; ++round) {
    ++totals_.cycles;
    const std::string root = mnt + "/" + mode_name(mode_) + "-" + std::to_string(round);
    const std::string filler = mnt + "/filler";
    std::string where = "round " + std::to_string(round) + ": ";
    std::error_code ec;
    fs::create_directories(root, ec);
    std::string saved_root = root_;
    root_ = root;

    // A backlog, tracked offline: its agents get provisional ids.
    Spawn a;
    a.name = next_name();
    a.offline = true;
    a.explicit_keys = true;
    a.threads = 2;
    a.events = uniform(800, 2000);
    auto backlog = spawn(a);
    if (!backlog) break;
    if (!pump(live_, Clock::now() + 60s, [&] { return backlog->finished(); })) {
      fail(where + "the offline tracker did not finish within 60 s");
    }
    prune_live();

    // The server refuses one key in 11 of both trackers (dead letters to write) and holds
    // its first answers, so that requests are in flight when the disk fills.
    Spawn b;
    b.name = next_name();
    b.endpoint = server_->url();
    b.explicit_keys = true;
    b.tolerate_full = true;
    b.threads = 2;
    b.events = uniform(300, 1000);
    int residue = uniform(0, 10);
    for (const Spawn* sp : {&a, &b}) {
      for (int t = 0; t < sp->threads; ++t) {
        for (int i = residue; i < sp->events; i += 11) {
          reject_keys_.insert(explicit_key(sp->name, t, i));
        }
      }
    }
    json plan = standing_faults();
    plan.push_back({{"delay_ms", uniform(100, 300)}, {"count", uniform(4, 10)}});
    post_faults(plan);
    ++totals_.fault_plans;
    json base = server_stats();
    auto counter = [&](const json& j, const char* name) { return j.value(name, 0ULL); };
    auto deliverer = spawn(b);
    if (!deliverer) break;

    // Throttled look at the server's counters while pumping the tracker's pipe.
    json now_stats = base;
    auto last_look = Clock::now() - 1s;
    auto look = [&] {
      if (Clock::now() - last_look >= 10ms) {
        now_stats = server_stats();
        last_look = Clock::now();
      }
      return now_stats;
    };
    // Fill once delivery is under way: the tracker took the backlog over and a batch of it
    // reached the server.
    bool delivering = pump(live_, Clock::now() + 30s, [&] {
      return deliverer->finished() ||
             (deliverer->phase != "spawned" && deliverer->phase != "opening" &&
              counter(look(), "ingest_requests") > counter(base, "ingest_requests"));
    });
    if (!delivering) fail(where + "delivery did not start within 30 s");
    std::uint64_t filled = fill_disk(filler);
    totals_.filler_bytes += filled;
    ++totals_.disk_fills;
    json at_fill = server_stats();
    // The disk stays full until the client has met it: a refused track(), a rejection
    // answered (dead letters to write) or two more requests (acks to delete).
    bool met = pump(live_, Clock::now() + 20s, [&] {
      json j = look();
      return deliverer->finished() || deliverer->full_refusals > 0 ||
             counter(j, "faults_injected") > counter(at_fill, "faults_injected") ||
             counter(j, "ingest_requests") >= counter(at_fill, "ingest_requests") + 2;
    });
    if (!met) fail(where + "the delivering tracker met nothing of the full disk within 20 s");
    int hold_ms = uniform(0, 300);
    pump(live_, Clock::now() + std::chrono::milliseconds(hold_ms), [] { return false; });
    if (!fs::remove(filler, ec)) fail(where + "cannot remove the filler: " + ec.message());
    bool kill_it = uniform(0, 2) == 0;
    int kill_after = uniform(0, 400);
    if (kill_it) {
      pump(live_, Clock::now() + std::chrono::milliseconds(kill_after), [] { return false; });
      kill_tracker(deliverer.get());
    }
    if (cfg_.verbose) {
      std::fprintf(stderr,
                   "round %d: %s filled %llu bytes, held %d ms, %llu refused tracks, %llu dead"
                   " letters and %llu acks retried, %s\n",
                   round, deliverer->name.c_str(), (unsigned long long)filled, hold_ms,
                   (unsigned long long)deliverer->full_refusals,
                   (unsigned long long)deliverer->unburied,
                   (unsigned long long)deliverer->unremoved,
                   deliverer->killed ? ("killed in " + deliverer->killed_in).c_str()
                                     : "not killed");
    }
    reap_survivors(Clock::now() + 60s);
    if (cfg_.verbose) {
      for (auto& l : deliverer->logged) std::fprintf(stderr, "  logged: %s\n", l.c_str());
    }
    final_client(root);
    root_ = saved_root;
    if (!totals_.failures.empty()) {
      // The tmpfs goes with the process: what failed is kept in the work folder.
      std::string kept = cfg_.workdir + "/kept-" + mode_name(mode_) + "-" + std::to_string(round);
      fs::copy(root, kept, fs::copy_options::recursive, ec);
    }
    fs::remove_all(root, ec);
  }
  reap_survivors(Clock::now() + 60s);
  check_trackers();
  verify();
  return totals_;
}

// A dead letter is expected for an event of a refused agent (its workflowId names the agent)
// and for a key the server rejects; for nothing else.
bool Harness::expected_dead_letter(const std::string& key, const std::string& workflow) const {
  return workflow.rfind("refused-", 0) == 0 || reject_keys_.count(key) > 0;
}

void Harness::final_client(const std::string& root) {
  // No faults for the final delivery, but refused agents and rejected keys stay refused.
  post_faults(standing_faults());

  agentburn::Options o;
  o.buffer_root = root;
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
  totals_.adopted_at_end += st.adopted;
  totals_.dead_letters += st.dead_letters;
  if (!s.ok()) fail("the final flush did not deliver everything: " + s.to_string());
  if (st.pending) {
    fail("the final client still has " + std::to_string(st.pending) + " events pending");
  }

  // The dead letters are listed, neither purged nor requeued: each must be an event of a
  // refused agent or one with a rejected key, once.
  std::multiset<std::string> listed;
  std::vector<std::string> unexpected;
  auto dead = c->dead_letters(std::size_t{1} << 22);
  for (const auto& d : dead) {
    json e = json::parse(d.event_json, nullptr, false);
    std::string key = e.is_object() ? e.value("idempotency_key", "") : "";
    std::string workflow = e.is_object() ? e.value("workflowId", "") : "";
    listed.insert(key);
    if (!expected_dead_letter(key, workflow)) {
      if (unexpected.size() < 5) {
        unexpected.push_back(key + " [" + d.reason + "] " + d.event_json.substr(0, 200));
      }
      continue;
    }
    if (workflow.rfind("refused-", 0) == 0 && !is_provisional(e.value("agentId", ""))) {
      fail("a dead letter of refused agent " + workflow + " carries agentId " +
           e.value("agentId", "") + ", not a provisional id");
    }
  }
  if (dead.size() != st.dead_letters) {
    fail("the final client counts " + std::to_string(st.dead_letters) + " dead letters and lists " +
         std::to_string(dead.size()));
  }
  if (!unexpected.empty()) {
    std::string why;
    for (auto& u : unexpected) why += "\n    " + u;
    fail("dead letters the server's refusals do not explain after the final flush:" + why);
  }
  std::vector<std::string> twice;
  std::size_t listed_twice = 0;
  for (auto it = listed.begin(); it != listed.end(); it = listed.upper_bound(*it)) {
    if (listed.count(*it) < 2) continue;
    ++listed_twice;
    if (twice.size() < 5) {
      twice.push_back(*it + " (" + std::to_string(listed.count(*it)) + " times)");
    }
  }
  if (listed_twice) {
    std::string why;
    for (auto& u : twice) why += "\n    " + u;
    fail(std::to_string(listed_twice) + " events are dead letters more than once:" + why);
  }
  dead_seen_.insert(listed.begin(), listed.end());
  s = c->close(10s);
  if (!s.ok()) fail("the final close: " + s.to_string());

  auto folders_left = [&](int* aside) {
    int left = 0;
    for (const auto& e : fs::directory_iterator(root)) {
      if (!e.is_directory()) continue;
      std::string name = e.path().filename().string();
      if (name == "ledger") continue;  // the root's spend ledger, no buffer folder
      if (name.rfind("corrupt-", 0) == 0) {
        ++*aside;
      } else if (name.rfind(".new-", 0) == 0 && !fs::exists(e.path() / "agentburn.lock")) {
        // A process killed between creating its folder and its lock file: a later open
        // removes it once it is a minute old.
        ++totals_.empty_staging;
      } else {
        ++left;
      }
    }
    return left;
  };
  int aside = 0;
  int left = folders_left(&aside);
  if (!dead.empty()) {
    // The dead letters keep one folder, and are all still there for the next client, which
    // purges them once counted: then nothing may be left.
    if (left != 1) {
      fail(std::to_string(left) + " buffer folders are left under the root after the final close"
           " (one, holding the dead letters, expected)");
    }
    agentburn::Options check;
    check.buffer_root = root;
    check.set_aside_corrupt_buffer = cfg_.set_aside_corrupt;
    auto again = agentburn::Client::open(check);
    if (!again.ok()) {
      fail("the client after the final one could not open the root: " + again.status().to_string());
    } else {
      std::multiset<std::string> relisted;
      for (const auto& d : again->dead_letters(std::size_t{1} << 22)) {
        json e = json::parse(d.event_json, nullptr, false);
        relisted.insert(e.is_object() ? e.value("idempotency_key", "") : "");
      }
      if (relisted != listed || again->stats().dead_letters != dead.size()) {
        fail("the dead letters changed across a clean close and open: " +
             std::to_string(listed.size()) + " listed, then " + std::to_string(relisted.size()) +
             " (counted " + std::to_string(again->stats().dead_letters) + ")");
      }
      // Once counted, they go (unless something failed: then they stay for a look).
      if (totals_.failures.empty()) {
        s = again->purge_dead_letters();
        if (!s.ok()) fail("purge_dead_letters: " + s.to_string());
        if (again->stats().dead_letters != 0) fail("dead letters are counted after the purge");
      }
      s = again->close(10s);
      if (!s.ok()) fail("the close after the purge: " + s.to_string());
    }
    aside = 0;
    left = folders_left(&aside);
    if (!totals_.failures.empty()) left = 0;  // kept on purpose
  }
  if (left) fail(std::to_string(left) + " buffer folders are left under the root after the final close");
  totals_.set_aside += static_cast<std::uint64_t>(aside);
  if (aside && !cfg_.set_aside_corrupt) {
    fail(std::to_string(aside) + " buffer folders were set aside as corrupt");
  }
}

void Harness::verify() {
  // Every stored event, tracker by tracker (each event's taskId names its tracker; the server
  // answers at most 10,000 events per call and scans all it holds for each), each checked to
  // be under the agent it was tracked for (its workflowId names it).
  std::map<std::string, int> stored;  // idempotency_key -> times stored
  bool incomplete = false;
  std::vector<std::string> misfiled_examples;
  auto agents = get("/api/agents");
  if (agents.status != 200) {
    fail("GET /api/agents answered " + std::to_string(agents.status) + agents.error);
    return;
  }
  std::map<std::string, std::string> agent_names;  // server id -> name
  for (const auto& a : agents.json()) agent_names[a.value("id", "")] = a.value("name", "");
  constexpr std::size_t kLimit = 10000;
  for (const auto& t : all_) {
    if (t->keys.empty()) continue;
    auto res = get("/api/events?limit=" + std::to_string(kLimit) + "&taskId=" + t->name);
    if (res.status != 200) {
      fail("GET /api/events for tracker " + t->name + " answered " + std::to_string(res.status));
      incomplete = true;
      continue;
    }
    auto events = res.json();
    if (events.size() >= kLimit) incomplete = true;
    for (const auto& e : events) {
      ++stored[e.value("idempotency_key", "")];
      std::string id = e.value("agentId", ""), workflow = e.value("workflowId", "");
      if (workflow == agent_names[id]) continue;
      ++totals_.misfiled;
      if (misfiled_examples.size() < 5) {
        misfiled_examples.push_back(e.value("idempotency_key", "") + " tracked for \"" + workflow +
                                    "\" is stored under " + id + " (\"" + agent_names[id] + "\")");
      }
    }
  }
  auto lookup = [&](const std::string& key) -> int {
    auto it = stored.find(key);
    if (it != stored.end() || !incomplete) return it == stored.end() ? 0 : it->second;
    auto res = get("/api/events?limit=10&idempotency_key=" + key);
    return res.status == 200 ? static_cast<int>(res.json().size()) : 0;
  };

  std::vector<std::string> lost_examples, twice_examples, refused_examples, dead_examples;
  std::set<std::string> reported;
  std::uint64_t dead_unexpected = 0;
  for (auto& t : all_) {
    // What this tracker's events may lose: nothing, or for kBuffered what a killed tracker
    // reported after its last returned flush().
    std::size_t must = t->keys.size();
    if (mode_ == agentburn::Durability::kBuffered && !t->closed_cleanly()) must = t->checkpoint;
    for (std::size_t i = 0; i < t->keys.size(); ++i) {
      const std::string& key = t->keys[i];
      reported.insert(key);
      ++totals_.acked;
      int n = lookup(key);
      auto d = dead_seen_.count(key);
      bool dead_expected = t->refused[i] || reject_keys_.count(key);
      if (n > 1 || d > 1 || (n > 0 && d > 0)) {
        ++totals_.stored_twice;
        if (twice_examples.size() < 5) {
          twice_examples.push_back(key + " (" + t->name + ": stored " + std::to_string(n) +
                                   ", dead letters " + std::to_string(d) + ")");
        }
      }
      if (dead_expected) {
        ++totals_.dead_expected;
        if (n > 0) {
          ++totals_.refused_delivered;
          if (refused_examples.size() < 5) refused_examples.push_back(key + " (" + t->name + ")");
          continue;
        }
        if (d > 0) {
          ++totals_.dead_accounted;
          continue;
        }
      } else {
        if (d > 0) {
          ++dead_unexpected;
          if (dead_examples.size() < 5) dead_examples.push_back(key + " (" + t->name + ")");
          continue;
        }
        if (n > 0) continue;
      }
      if (i >= must) {
        ++totals_.unflushed_missing;
        continue;
      }
      ++totals_.lost;
      if (lost_examples.size() < 10) {
        lost_examples.push_back(key + " (" + t->name + ", key " + std::to_string(i + 1) + " of " +
                                std::to_string(t->keys.size()) + ", checkpoint " +
                                std::to_string(t->checkpoint) + ", killed in " +
                                (t->killed ? t->killed_in : std::string("-")) +
                                (dead_expected ? ", expected as a dead letter" : "") + ")");
      }
    }
  }
  for (const auto& key : dead_seen_) totals_.dead_unreported += reported.count(key) == 0;
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
  auto examples = [](const std::vector<std::string>& list) {
    std::string out;
    for (auto& k : list) out += "\n    " + k;
    return out;
  };
  if (totals_.lost) {
    fail(std::to_string(totals_.lost) +
         " acknowledged events are neither on the server nor dead letters, e.g.:" +
         examples(lost_examples));
  }
  if (totals_.stored_twice) {
    fail(std::to_string(totals_.stored_twice) +
         " events are stored more than once, or stored and a dead letter, e.g.:" +
         examples(twice_examples));
  }
  if (totals_.refused_delivered) {
    fail(std::to_string(totals_.refused_delivered) +
         " events of refused agents or with rejected keys are on the server, e.g.:" +
         examples(refused_examples));
  }
  if (dead_unexpected) {
    fail(std::to_string(dead_unexpected) +
         " events that should have been delivered are dead letters, e.g.:" +
         examples(dead_examples));
  }
  if (totals_.misfiled) {
    fail(std::to_string(totals_.misfiled) +
         " events are stored under another agent than theirs, e.g.:" +
         examples(misfiled_examples));
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
              " %llu delayed; adopted by the final client %llu\n",
              t.fault_plans, (unsigned long long)t.faults_injected,
              (unsigned long long)t.proxy_resets, (unsigned long long)t.proxy_cuts,
              (unsigned long long)t.proxy_delayed, (unsigned long long)t.adopted_at_end);
  std::printf("  agents: %d offline trackers, %d with a refused and a flaky agent, %d cycles of"
              " %d trackers registering the same names offline; events misfiled %llu\n",
              t.offline, t.mixed, t.herd_cycles, t.herd_trackers, (unsigned long long)t.misfiled);
  std::printf("  dead letters: %llu at the end, %llu acked events expected as dead letters of which"
              " %llu accounted for (plus %llu never reported acked), %llu delivered instead\n",
              (unsigned long long)t.dead_letters, (unsigned long long)t.dead_expected,
              (unsigned long long)t.dead_accounted, (unsigned long long)t.dead_unreported,
              (unsigned long long)t.refused_delivered);
  if (t.disk_fills) {
    std::printf("  full disk: %d fills (%.1f MiB of filler in all), %llu track()/flush() calls"
                " refused for want of space; delivery met it: %llu dead letters and %llu acks"
                " whose writes were retried, %llu other errors logged\n",
                t.disk_fills, static_cast<double>(t.filler_bytes) / (1 << 20),
                (unsigned long long)t.full_refusals, (unsigned long long)t.unburied,
                (unsigned long long)t.unremoved, (unsigned long long)t.other_logged);
  }
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
               "                     [--seed S] [--scenario cycles|disk] [--server PATH]\n"
               "                     [--workdir DIR] [--no-faults] [--set-aside-corrupt]\n"
               "                     [--verbose]\n",
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
  const bool disk = cfg.scenario == "disk";
  if (disk && geteuid() != 0) {
    std::printf("crash_harness: --scenario disk skipped: mounting a small tmpfs needs root\n");
    return 0;
  }
  bool own_workdir = cfg.workdir.empty();
  if (own_workdir) {
    std::string tmpl = (fs::temp_directory_path() / "agentburn-crash-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return usage("cannot create a work folder");
    cfg.workdir = tmpl;
  } else {
    std::error_code ec;
    fs::create_directories(cfg.workdir, ec);
  }
  std::unique_ptr<testing::Tmpfs> tmpfs;  // in a mount namespace of its own, or not at all
  if (disk) {
    // Before any thread or child exists, so that all of them see the mount.
    tmpfs = std::make_unique<testing::Tmpfs>(cfg.workdir + "/disk", "48m", true);
    if (!tmpfs->mounted()) {
      std::printf("crash_harness: --scenario disk skipped: cannot mount a tmpfs here: %s\n",
                  tmpfs->error().c_str());
      tmpfs.reset();
      std::error_code ec;
      if (own_workdir) fs::remove_all(cfg.workdir, ec);
      return 0;
    }
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
  std::printf("crash_harness: seed %llu, %d %s per mode, server %s\n", (unsigned long long)cfg.seed,
              cfg.cycles, disk ? "full-disk rounds" : "cycles", server.url().c_str());
  std::fflush(stdout);

  bool ok = true;
  Totals all;
  std::uint64_t seed = cfg.seed;
  for (auto mode : cfg.modes) {
    std::string root = disk ? cfg.workdir + "/disk" : cfg.workdir + "/root-" + mode_name(mode);
    std::error_code ec;
    if (!disk) {
      fs::remove_all(root, ec);
      fs::create_directories(root, ec);
    }
    // Each mode gets a fresh server database too, so that its figures are its own.
    server.stop();
    fs::remove_all(sc.data_dir, ec);
    if (!server.start()) {
      std::fprintf(stderr, "crash_harness: the server did not restart: %s\n", server.error().c_str());
      return 1;
    }
    auto start = Clock::now();
    Harness h(cfg, mode, &server, root, seed++);
    Totals t = disk ? h.run_disk() : h.run();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::string label = std::string("durability ") + mode_name(mode);
    print_totals(label.c_str(), t);
    std::printf("  %.1f s\n", secs);
    ok = ok && t.failures.empty() && t.lost == 0;
    all.add(t);
  }
  if (cfg.modes.size() > 1) print_totals("all modes", all);
  int stop_code = server.stop();
  if (stop_code != 0) {
    std::fprintf(stderr, "crash_harness: the server exited with %d\n", stop_code);
    ok = false;
  }
  tmpfs.reset();
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
      if (f == "--set-aside-corrupt") { a.set_aside_corrupt = true; continue; }
      if (f == "--offline") { a.offline = true; continue; }
      if (f == "--explicit-keys") { a.explicit_keys = true; continue; }
      if (f == "--tolerate-full") { a.tolerate_full = true; continue; }
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
      else if (f == "--refused") a.refused = v;
      else if (f == "--flaky") a.flaky = v;
      else if (f == "--herd") a.herd = v;
      else if (f == "--herd-size") a.herd_size = std::atoi(v);
      else return 2;
    }
    if (a.refused.empty() != a.flaky.empty()) return 2;
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
    } else if (f == "--scenario") {
      cfg.scenario = v;
      if (cfg.scenario != "cycles" && cfg.scenario != "disk") {
        return usage("--scenario: cycles or disk");
      }
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
