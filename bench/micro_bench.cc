// agentburn_micro: Google Benchmark timings (means) of the pieces of track() and of the
// sender's read, each beside the raw RocksDB operation it sits on, so that a regression in
// one stage shows by itself. The percentiles and the targets are agentburn_bench's.
// In a build with Redis support, fleet budgets too: reserve and settle against a redis-server
// the benchmarks start on a loopback port, beside a bare INCRBYFLOAT round trip (real time).
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#ifdef AGENTBURN_BENCH_REDIS
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>
#endif

#include "agentburn/agentburn.h"
#include "agentburn/agentburn.hpp"
#include "common.hpp"
#include "event/codec.hpp"
#include "pricing/catalog.hpp"
#include "pricing/usage.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"

namespace {

using namespace bench;
namespace detail = agentburn::detail;

std::string& tmp_base() {
  static std::string base = make_temp_dir(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                          "agentburn-micro-");
  return base;
}

const agentburn::Event& event() {
  static agentburn::Event e = sample_event("agt_bench_0001");
  return e;
}

const std::string& event_json() {
  static std::string j = sample_event_json("agt_bench_0001");
  return j;
}

const std::string& stored() {
  static std::string s = stored_form(event());
  return s;
}

// What the benchmarks keep open between runs, closed before the temporary folder goes.
struct Open {
  std::map<agentburn::Durability, std::unique_ptr<agentburn::Client>> clients;
  // Budgets in Redis, by budget name: closed first, while the Redis server is still up.
  std::map<std::string, std::unique_ptr<agentburn::Client>> fleet;
  std::unique_ptr<RawDb> raw;
  std::unique_ptr<detail::Buffer> buffer;
  ab_client* cabi = nullptr;
  void close() {
    fleet.clear();
    clients.clear();
    raw.reset();
    if (buffer) buffer->close().ok();
    buffer.reset();
    if (cabi) ab_client_close(cabi, 0);
    cabi = nullptr;
  }
};
Open g_open;

agentburn::Client& client(agentburn::Durability d) {
  auto& c = g_open.clients[d];
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "client-");
    o.durability = d;
    o.close_timeout_ms = 0;
    o.ledger = false;  // the baseline: BM_TrackProcessLedger keeps it (the default)
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  return *c;
}

void BM_RawPut(benchmark::State& state) {
  if (!g_open.raw) g_open.raw = std::make_unique<RawDb>(make_temp_dir(tmp_base(), "raw-"));
  for (auto _ : state) g_open.raw->put(stored());
}
BENCHMARK(BM_RawPut);

void BM_NlohmannDump(benchmark::State& state) {
  nlohmann::json doc = nlohmann::json::parse(stored());
  for (auto _ : state) {
    std::string s = doc.dump();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_NlohmannDump);

void BM_NlohmannParse(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::json doc = nlohmann::json::parse(event_json());
    benchmark::DoNotOptimize(doc);
  }
}
BENCHMARK(BM_NlohmannParse);

void BM_EncodeEvent(benchmark::State& state) {
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::validate_event(event(), true, false, &norm, &err)) die(err.message);
  for (auto _ : state) {
    std::string out;
    out.reserve(256);
    detail::encode_event(event(), norm, false, &out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_EncodeEvent);

void BM_ValidateEvent(benchmark::State& state) {
  for (auto _ : state) {
    detail::Normalized norm;
    detail::FieldError err;
    bool ok = detail::validate_event(event(), true, false, &norm, &err);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_ValidateEvent);

void BM_NewUuidV7(benchmark::State& state) {
  for (auto _ : state) {
    std::string u = detail::new_uuid_v7();
    benchmark::DoNotOptimize(u);
  }
}
BENCHMARK(BM_NewUuidV7);

void BM_FormatTimestampNow(benchmark::State& state) {
  for (auto _ : state) {
    std::string t = detail::format_timestamp_ms(detail::now_unix_ms());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_FormatTimestampNow);

// The sample event with a small metadata object, as agents often send.
const std::string& event_json_metadata() {
  static std::string j = event_json().substr(0, event_json().size() - 1) +
                         R"(,"metadata":{"ticket":"CTMS-5109","attempt":2,"tags":["triage","p1"]}})";
  return j;
}

void parse_event(benchmark::State& state, const std::string& json) {
  for (auto _ : state) {
    agentburn::Event e;
    detail::FieldError err;
    bool ok = detail::parse_event_json(json, &e, &err);
    if (!ok) die(err.message);
    benchmark::DoNotOptimize(e);
  }
}

// parse_event_json takes the sample event by its fast path; the checked parse (a DOM with
// every check, which refusals go through) is beside it for comparison.
void BM_ParseEventJson(benchmark::State& state) { parse_event(state, event_json()); }
BENCHMARK(BM_ParseEventJson);

void BM_ParseEventJsonMetadata(benchmark::State& state) {
  parse_event(state, event_json_metadata());
}
BENCHMARK(BM_ParseEventJsonMetadata);

void BM_ParseEventJsonChecked(benchmark::State& state) {
  for (auto _ : state) {
    agentburn::Event e;
    detail::FieldError err;
    bool ok = detail::parse_event_json_checked(event_json(), &e, &err);
    if (!ok) die(err.message);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_ParseEventJsonChecked);

void BM_BufferAppendProcess(benchmark::State& state) {
  if (!g_open.buffer) {
    detail::BufferOptions bo;
    bo.root = make_temp_dir(tmp_base(), "buffer-");
    bo.durability = agentburn::Durability::kProcess;
    agentburn::Status s = detail::Buffer::open(bo, &g_open.buffer);
    if (!s.ok()) die(s.to_string());
  }
  for (auto _ : state) {
    agentburn::Status s = g_open.buffer->append(stored());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_BufferAppendProcess);

void BM_TrackProcess(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcess);

// The same event with its costUsd left out: priced from its model and tokens by the catalog.
// Against BM_TrackProcess: the cost of pricing in track().
void BM_TrackProcessComputedCost(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  agentburn::Event e = event();
  e.cost_usd.reset();
  e.model = "claude-sonnet-4-5";  // a catalog name (the sample's model is written otherwise)
  for (auto _ : state) {
    agentburn::Status s = c.track(e);
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessComputedCost);

// A client with 10 budgets defined: five that match the sample event (its agent, its
// provider, every event, each task, each workflow) and five that do not, with periods of
// every kind; so each track writes its ledger row and counts its cost in five windows.
agentburn::Client& budget_client() {
  static std::unique_ptr<agentburn::Client> c;
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "budgets-");
    o.close_timeout_ms = 0;
    const agentburn::BudgetPeriod periods[] = {
        agentburn::BudgetPeriod::kDaily, agentburn::BudgetPeriod::kWeekly,
        agentburn::BudgetPeriod::kMonthly, agentburn::BudgetPeriod::kTotal};
    agentburn::Event e = event();
    for (int i = 0; i < 10; ++i) {
      agentburn::Budget b;
      b.name = "budget-" + std::to_string(i);
      b.limit_usd = 1e9;
      b.period = periods[i % 4];
      bool match = i < 5;
      switch (i % 5) {
        case 0: b.agent_id = match ? e.agent_id : "someone-else"; break;
        case 1: b.provider = match ? e.provider : "nobody"; break;
        case 2: if (!match) b.model = "no-such-model"; break;
        case 3: b.task_id = match ? "*" : "no-task"; break;
        case 4: b.workflow_id = match ? "*" : "no-workflow"; break;
      }
      o.budgets.push_back(b);
    }
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  return *c;
}

// track() with 10 budgets defined. Against BM_TrackProcess: the ledger row written in the
// event's batch and the windows counted.
void BM_TrackProcessBudgets10(benchmark::State& state) {
  auto& c = budget_client();
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessBudgets10);

// track() with the ledger on (the default) and no budget. The row is written when the event
// leaves the folder, by the sender: BM_LedgerFoldEvent is that cost, per event.
void BM_TrackProcessLedger(benchmark::State& state) {
  static std::unique_ptr<agentburn::Client> c;
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "ledger-");
    o.close_timeout_ms = 0;
    o.ledger = true;
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  for (auto _ : state) {
    agentburn::Status s = c->track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessLedger);

// What the sender adds per delivered event with the ledger on: the event's row computed from
// its stored text and summed into the batch's rows (encoded and written once per row).
void BM_LedgerFoldEvent(benchmark::State& state) {
  for (auto _ : state) {
    detail::LedgerFold fold;
    fold.add(stored());
    benchmark::DoNotOptimize(fold);
  }
}
BENCHMARK(BM_LedgerFoldEvent);

// reserve() then track(event, reservation) with the same 10 budgets. Against
// BM_TrackProcessBudgets10: what the reservation adds to the track it settles.
void BM_ReserveSettleBudgets10(benchmark::State& state) {
  auto& c = budget_client();
  agentburn::ReserveRequest req;
  agentburn::Event e = event();
  req.agent_id = e.agent_id;
  req.provider = e.provider;
  req.task_id = e.task_id;
  req.workflow_id = e.workflow_id;
  req.model = e.model;
  req.estimate_usd = 0.01;
  for (auto _ : state) {
    auto r = c.reserve(req);
    if (!r.ok()) die(r.status().to_string());
    agentburn::Status s = c.track(e, r.value());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_ReserveSettleBudgets10);

#ifdef AGENTBURN_BENCH_REDIS
// --- Fleet budgets (Options::budget_store "redis://...") ------------------------------------
// A redis-server of the benchmarks' own (the system's binary), on a free loopback port, in a
// temporary folder, without persistence; started at the first Redis benchmark, stopped at
// exit. Without the binary the Redis benchmarks are skipped with an error.

struct RedisServer {
  pid_t pid = -1;
  int port = 0;
  std::string error;  // why there is none, once tried
  bool tried = false;
};
RedisServer g_redis;

void stop_redis() {
  if (g_redis.pid <= 0) return;
  pid_t pid = g_redis.pid;
  g_redis.pid = -1;
  kill(pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string find_redis_server() {
  if (access("/usr/bin/redis-server", X_OK) == 0) return "/usr/bin/redis-server";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (std::size_t at = 0; at <= dirs.size();) {
    std::size_t end = dirs.find(':', at);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(at, end - at) + "/redis-server";
    if (end > at && access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return "";
}

// A loopback port nobody listens on now (the kernel's pick; the server binds it moments later,
// and another try is made if someone took it in between).
int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// Whether the server on `port` answers PING with PONG.
bool redis_pong(int port) {
  timeval tv{0, 200000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    redisSetTimeout(c, tv);
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
    if (r) freeReplyObject(r);
  }
  if (c) redisFree(c);
  return ok;
}

// Starts the server and waits, up to 10 s per try, until it answers PING.
bool start_redis_once(const std::string& binary, const std::string& dir, int port) {
  std::string port_s = std::to_string(port);
  std::vector<std::string> args = {binary,      "--port",       port_s, "--bind",
                                   "127.0.0.1", "--save",       "",     "--appendonly",
                                   "no",        "--daemonize",  "no",   "--dir",
                                   dir,         "--logfile",    "redis.log"};
  pid_t pid = fork();
  if (pid < 0) {
    g_redis.error = "fork failed";
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the benchmarks
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  g_redis.pid = pid;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {  // exited: the port was taken, or worse
      g_redis.pid = -1;
      g_redis.error = "redis-server exited at start (" +
                      (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                         : "signal " + std::to_string(WTERMSIG(status))) +
                      ")";
      return false;
    }
    if (redis_pong(port)) {
      g_redis.port = port;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop_redis();
  g_redis.error = "redis-server did not answer PING within 10 s";
  return false;
}

// The port of the benchmarks' redis-server, started on first use; 0 with g_redis.error when
// there is none.
int redis_port() {
  if (g_redis.tried) return g_redis.port;
  g_redis.tried = true;
  std::string binary = find_redis_server();
  if (binary.empty()) {
    g_redis.error = "redis-server not found (Debian: apt install redis-server)";
    return 0;
  }
  std::string dir = make_temp_dir(tmp_base(), "redis-");
  std::atexit(stop_redis);  // also on die()
  for (int attempt = 0; attempt < 3 && g_redis.port == 0; ++attempt) {
    int port = free_loopback_port();
    if (port == 0) {
      g_redis.error = "no free loopback port";
      break;
    }
    start_redis_once(binary, dir, port);
  }
  if (g_redis.port != 0) g_redis.error.clear();
  return g_redis.port;
}

// The baseline: one bare INCRBYFLOAT round trip over hiredis (blocking, one connection),
// what the cheapest shared counter in Redis costs. Real time: the caller waits on the
// socket, so CPU time would leave the round trip out.
void BM_RedisIncrbyfloat(benchmark::State& state) {
  int port = redis_port();
  if (port == 0) {
    state.SkipWithError(g_redis.error.c_str());
    return;
  }
  timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (!c || c->err) {
    state.SkipWithError(c ? c->errstr : "cannot connect to redis-server");
    if (c) redisFree(c);
    return;
  }
  redisSetTimeout(c, tv);
  for (auto _ : state) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "INCRBYFLOAT ab:bench:incrbyfloat 0.01"));
    if (!r || r->type != REDIS_REPLY_STRING) die(std::string("INCRBYFLOAT failed: ") + c->errstr);
    freeReplyObject(r);
  }
  redisFree(c);
}
BENCHMARK(BM_RedisIncrbyfloat)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A client whose one budget, `name` (daily, block, every event, a limit of $1e9 so it never
// refuses), is kept in the benchmarks' redis-server; null with the reason when there is none.
agentburn::Client* fleet_client(const std::string& name, std::string* error,
                                agentburn::BudgetPeriod period = agentburn::BudgetPeriod::kDaily) {
  std::unique_ptr<agentburn::Client>& c = g_open.fleet[name];
  static std::map<std::string, std::string> failures;
  std::string& failed = failures[name];
  if (!c && failed.empty()) {
    int port = redis_port();
    if (port == 0) {
      failed = g_redis.error;
    } else {
      agentburn::Options o;
      o.buffer_root = make_temp_dir(tmp_base(), "fleet-");
      o.budget_store = "redis://127.0.0.1:" + std::to_string(port);
      o.budget_store_timeout_ms = 1000;  // a loaded machine; not a refusal the row would hide
      o.budget_store_unavailable = agentburn::BudgetStoreUnavailable::kClosed;
      o.close_timeout_ms = 10000;  // close() applies what is left of the settle queue
      o.reservation_ttl_ms = 3600000;  // the open holds of BM_FleetReserveReleaseOpenHolds
      agentburn::Budget b;
      b.name = name;
      b.limit_usd = 1e9;
      b.period = period;
      o.budgets.push_back(b);
      auto r = agentburn::Client::open(o);
      if (!r.ok()) {
        failed = r.status().to_string();
      } else {
        c = std::make_unique<agentburn::Client>(std::move(r.value()));
      }
    }
  }
  if (!c) *error = failed;
  return c.get();
}

agentburn::ReserveRequest fleet_request() {
  agentburn::ReserveRequest req;
  const agentburn::Event& e = event();
  req.agent_id = e.agent_id;
  req.provider = e.provider;
  req.task_id = e.task_id;
  req.workflow_id = e.workflow_id;
  req.model = e.model;
  req.estimate_usd = 0.000001;
  return req;
}

// The shared window of budget `name` as the store has it (spent, held): one round trip.
agentburn::BudgetState fleet_state(agentburn::Client& c, const std::string& name) {
  for (const auto& s : c.check(fleet_request())) {
    if (s.name == name) return s;
  }
  die("the fleet budget's window is missing");
}

// Waits, untimed, until the store's window of budget `name` satisfies `done` (60 s at most).
template <typename Done>
void wait_fleet(agentburn::Client& c, const std::string& name, Done done) {
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!done(fleet_state(c, name))) {
    if (Clock::now() >= deadline) die("the settles did not reach Redis within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The timed loop of the reserve + release benchmarks: two round trips an iteration.
void reserve_release(benchmark::State& state, agentburn::Client& c) {
  agentburn::ReserveRequest req = fleet_request();
  for (auto _ : state) {
    auto r = c.reserve(req);
    if (!r.ok()) die(r.status().to_string());
    agentburn::Status s = c.release(r.value());
    if (!s.ok()) die(s.to_string());
  }
}

// Client::reserve (one EVALSHA round trip to Redis on the caller's thread: the hold is checked
// against the window's spend and holds and written, atomically) then Client::track(event,
// reservation) of an event of $0.000001: the event and its settle record in one RocksDB write.
// The settle itself (the spend added in Redis, the hold dropped) is applied by the client's
// background settle thread over a connection of its own, so it is not in the caller's time;
// it competes for the same 2 cores and the same redis-server. Real time, for the round trip.
// Counters: `unsettled_at_end`, the reservations whose settle had not reached Redis when the
// loop ended (the settle thread's lag); after the loop, untimed, the benchmark waits until
// they are all applied, so the next benchmark does not pay for them.
void BM_FleetReserveTrack(benchmark::State& state) {
  std::string why;
  agentburn::Client* c = fleet_client("fleet-bench", &why);
  if (!c) {
    state.SkipWithError(why.c_str());
    return;
  }
  agentburn::ReserveRequest req = fleet_request();
  agentburn::Event e = event();
  e.cost_usd = 0.000001;
  for (auto _ : state) {
    auto r = c->reserve(req);
    if (!r.ok()) die(r.status().to_string());
    agentburn::Status s = c->track(e, r.value());
    if (!s.ok()) die(s.to_string());
  }
  agentburn::BudgetState at_end = fleet_state(*c, "fleet-bench");
  state.counters["unsettled_at_end"] = std::round(at_end.held_usd / 0.000001);
  wait_fleet(*c, "fleet-bench", [](const agentburn::BudgetState& st) { return st.held_usd <= 0; });
}
BENCHMARK(BM_FleetReserveTrack)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Client::reserve then Client::release, both on the caller's thread: two round trips (the
// reserve script, then the release script dropping the hold). Real time.
void BM_FleetReserveRelease(benchmark::State& state) {
  std::string why;
  agentburn::Client* c = fleet_client("fleet-bench", &why);
  if (!c) {
    state.SkipWithError(why.c_str());
    return;
  }
  reserve_release(state, *c);
}
BENCHMARK(BM_FleetReserveRelease)->UseRealTime()->Unit(benchmark::kMicrosecond);

// BM_FleetReserveRelease on a window (a budget of its own) that holds N other reservations,
// neither settled nor released, as a window does while the settles of its tracked events wait
// in a settle queue (BM_FleetReserveTrack's `unsettled_at_end`) or while N calls are under
// way across the fleet. The reserve script sums the window's holds (it reads them all) before
// it admits: against BM_FleetReserveRelease, what each open hold adds. Real time.
void BM_FleetReserveReleaseOpenHolds(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::string name = "fleet-holds-" + std::to_string(n);
  std::string why;
  agentburn::Client* c = fleet_client(name, &why);
  if (!c) {
    state.SkipWithError(why.c_str());
    return;
  }
  agentburn::ReserveRequest req = fleet_request();
  static std::map<int, bool> filled;  // the N holds, made once (they last the hour's TTL)
  if (!filled[n]) {
    for (int i = 0; i < n; ++i) {
      auto r = c->reserve(req);
      if (!r.ok()) die(r.status().to_string());
    }
    filled[n] = true;
  }
  reserve_release(state, *c);
  state.counters["open_holds"] = std::round(fleet_state(*c, name).held_usd / 0.000001);
}
BENCHMARK(BM_FleetReserveReleaseOpenHolds)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// BM_FleetReserveRelease on a monthly window (a budget of its own) with spend in N of its
// hours (events tracked 0 to N - 1 hours ago, all settled first; a monthly window holds up
// to 720). The reserve script reads the window's spend before it admits: /720 against /1 is
// what the window's hours add. Real time.
void BM_FleetReserveReleaseHours(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::string name = "fleet-hours-" + std::to_string(n);
  std::string why;
  agentburn::Client* c = fleet_client(name, &why, agentburn::BudgetPeriod::kMonthly);
  if (!c) {
    state.SkipWithError(why.c_str());
    return;
  }
  static std::map<int, bool> filled;
  if (!filled[n]) {
    agentburn::Event e = event();
    e.cost_usd = 0.000001;
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    for (int i = 0; i < n; ++i) {
      e.timestamp = agentburn::detail::format_timestamp_ms(now - i * 3600000LL);
      e.idempotency_key.reset();
      agentburn::Status s = c->track(e);
      if (!s.ok()) die(s.to_string());
    }
    wait_fleet(*c, name, [n](const agentburn::BudgetState& st) {
      return std::llround(st.spent_usd / 0.000001) >= n;
    });
    filled[n] = true;
  }
  reserve_release(state, *c);
}
BENCHMARK(BM_FleetReserveReleaseHours)
    ->Arg(1)
    ->Arg(720)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
#endif  // AGENTBURN_BENCH_REDIS

// One catalog lookup, cycling through an exact name, a provider-prefixed one, a dated
// snapshot's fallback and a miss.
void BM_PriceLookup(benchmark::State& state) {
  const auto& catalog = agentburn::pricing::Catalog::builtin();
  const char* models[] = {"gpt-4o", "claude-sonnet-4-5", "gpt-4o-2099-01-01", "no-such-model"};
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += static_cast<bool>(catalog.lookup("openai", models[i++ & 3]));
  }
  benchmark::DoNotOptimize(hits);
}
BENCHMARK(BM_PriceLookup);

// usage_from_response on a 2 KB OpenAI Chat Completions body.
void BM_UsageFromResponse2KB(benchmark::State& state) {
  std::string body =
      R"({"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"gpt-4o-2024-08-06",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":")" +
      std::string(1700, 'x') +
      R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,)"
      R"("prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},)"
      R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},)"
      R"("system_fingerprint":"fp_1"})";
  for (auto _ : state) {
    auto u = agentburn::pricing::usage_from_response("openai", body);
    if (!u.ok()) die(u.status().to_string());
    benchmark::DoNotOptimize(u->tokens.input);
  }
  state.counters["bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_UsageFromResponse2KB);

void BM_TrackBuffered(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kBuffered);
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackBuffered);

void BM_TrackJsonProcess(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  for (auto _ : state) {
    agentburn::Status s = c.track_json(event_json());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackJsonProcess);

void BM_CAbiTrackJsonProcess(benchmark::State& state) {
  if (!g_open.cabi) {
    ab_options* o = nullptr;
    std::string root = make_temp_dir(tmp_base(), "cabi-");
    if (ab_options_new(&o) != AB_OK || ab_options_set_buffer_root(o, root.c_str()) != AB_OK ||
        ab_client_open(&g_open.cabi, o) != AB_OK) {
      die(ab_last_error());
    }
    ab_options_free(o);
  }
  ab_client* c = g_open.cabi;
  const std::string& j = event_json();
  for (auto _ : state) {
    if (ab_client_track_json(c, j.data(), j.size()) != AB_OK) die(ab_last_error());
  }
}
BENCHMARK(BM_CAbiTrackJsonProcess);

// The sender's read: 1,000 events per read_next from a buffer of 200k (the cursor wraps by
// reopening when it reaches the end).
void BM_ReadNext1000(benchmark::State& state) {
  detail::BufferOptions bo;
  bo.root = make_temp_dir(tmp_base(), "read-");
  bo.durability = agentburn::Durability::kProcess;
  std::unique_ptr<detail::Buffer> b;
  agentburn::Status s = detail::Buffer::open(bo, &b);
  if (!s.ok()) die(s.to_string());
  for (int i = 0; i < 200000; ++i) {
    s = b->append(stored());
    if (!s.ok()) die(s.to_string());
  }
  std::vector<detail::StoredEvent> out;
  std::size_t events = 0;
  for (auto _ : state) {
    s = b->read_next(1000, 1 << 20, &out);
    if (!s.ok()) die(s.to_string());
    if (out.empty()) {
      state.PauseTiming();
      b->close().ok();
      b.reset();
      bo.root = make_temp_dir(tmp_base(), "read-");
      s = detail::Buffer::open(bo, &b);
      for (int i = 0; i < 200000 && s.ok(); ++i) s = b->append(stored());
      if (!s.ok()) die(s.to_string());
      state.ResumeTiming();
    }
    events += out.size();
  }
  state.counters["us_per_event"] = benchmark::Counter(
      static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  b->close().ok();
}
BENCHMARK(BM_ReadNext1000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_open.close();
#ifdef AGENTBURN_BENCH_REDIS
  stop_redis();  // after the fleet client's close, which applies the rest of its settles
#endif
  remove_tree(tmp_base());
  return 0;
}
