// Fleet budgets: one budget shared by processes through a real redis-server, started here on
// a free loopback port (Options::budget_store, README.md "Fleet budgets").
#include "budget/fleet.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agentburn/agentburn.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "budget/redis_store.hpp"
#include "event/codec.hpp"
#include "ledger/rows.hpp"
#include "store/buffer.hpp"
#include "support.hpp"
#include "support/clients.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"
#include "support/tcp_proxy.hpp"

using namespace agentburn;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t nanos(double usd) {
  return ledger::to_nanos(usd);
}

Budget make_budget(const std::string& name, double limit,
                   BudgetPeriod period = BudgetPeriod::kDaily) {
  Budget b;
  b.name = name;
  b.limit_usd = limit;
  b.period = period;
  return b;
}

Options fleet_options(const std::string& root, const std::string& url,
                      std::vector<Budget> budgets) {
  Options o;
  o.buffer_root = root;
  o.budgets = std::move(budgets);
  o.budget_store = url;
  o.budget_store_timeout_ms = 5000;  // the machine may be loaded: nothing here times out
  o.close_timeout_ms = 5000;
  return o;
}

Event event(double cost, const std::string& task = "t1") {
  Event e;
  e.agent_id = "a1";
  e.provider = "openai";
  e.operation = "llm_call";
  e.cost_usd = cost;
  e.task_id = task;
  return e;
}

ReserveRequest request(double usd, const std::string& task = "t1") {
  ReserveRequest r;
  r.agent_id = "a1";
  r.provider = "openai";
  r.task_id = task;
  r.estimate_usd = usd;
  return r;
}

budget::StoreUrl loopback(int port) {
  budget::StoreUrl u;
  u.host = "127.0.0.1";
  u.port = port;
  return u;
}

// A Fleet of `budgets` on the test's Redis, without a client: its callers give the clock.
std::unique_ptr<budget::Fleet> direct_fleet(int port, const std::vector<Budget>& budgets) {
  return std::make_unique<budget::Fleet>(budgets,
                                         std::make_unique<budget::RedisStore>(loopback(port), 2000),
                                         std::make_unique<budget::RedisStore>(loopback(port), 2000));
}

// Applies `records` in one batch at `now`; `done` as Fleet::apply.
Status apply_at(budget::Fleet& fleet, const std::vector<std::string>& records, std::int64_t now,
                std::size_t* done) {
  std::vector<std::string_view> views(records.begin(), records.end());
  std::vector<BudgetAlert> alerts;
  std::vector<std::string> unreadable;
  return fleet.apply(views, now, &alerts, done, &unreadable);
}

// A direct connection to the test's Redis, to read what the budgets keep there.
struct Peek {
  explicit Peek(int port) { store = std::make_unique<budget::RedisStore>(loopback(port), 2000); }
  // A spend key's nano-dollars: the sum of its hours, which its "=" field must equal (and
  // its "<" field must name the oldest of them).
  std::int64_t spent(const std::string& name, const std::string& scope = "",
                     BudgetPeriod period = BudgetPeriod::kDaily) {
    static const char* kHours = R"lua(
local all = redis.call('HGETALL', KEYS[1])
local sum, oldest = 0, -1
for j = 1, #all, 2 do
  if all[j] ~= '=' and all[j] ~= '<' then
    local h = tonumber(all[j])
    sum = sum + tonumber(all[j + 1])
    if oldest < 0 or h < oldest then oldest = h end
  end
end
local v = redis.call('HMGET', KEYS[1], '=', '<')
return {sum, tonumber(v[1] or '-1'), oldest, tonumber(v[2] or '-1')}
)lua";
    std::vector<long long> v;
    if (!store->command({"EVAL", kHours, "1", budget::spend_key(name, period, scope)}, &v).ok() ||
        v.size() != 4) {
      return -1;
    }
    if (v[2] < 0) {
      CHECK(v[1] == -1);  // no hour, no sum
    } else {
      CHECK(v[1] == v[0]);
      CHECK(v[3] == v[2]);
    }
    return v[0];
  }
  // The sum of a window's open holds, as the scripts keep it (expired ones leave it when
  // the window is next read).
  std::int64_t held(const std::string& name, const std::string& scope = "",
                    BudgetPeriod period = BudgetPeriod::kDaily) {
    std::vector<long long> v;
    if (!store->command({"HGET", budget::holds_key(name, period, scope), "="}, &v).ok()) return -1;
    return v.empty() ? 0 : v[0];
  }
  std::unique_ptr<budget::RedisStore> store;
};

#define REQUIRE_REDIS()                                                   \
  if (!testing::RedisProcess::available()) {                              \
    MESSAGE("redis-server is not installed (scripts/setup installs it)"); \
    return;                                                               \
  }

// A case's prologue: skipped without redis-server; else `dir`, a temporary folder, and
// `redis`, a redis-server of the case's own in it (append-only, on a free loopback port).
#define REDIS_CASE()                      \
  REQUIRE_REDIS();                        \
  testing::TempDir dir;                   \
  testing::RedisProcess redis(dir.path()); \
  REQUIRE(redis.start())

}  // namespace

TEST_SUITE_BEGIN("fleet");

TEST_CASE(
    "4 processes x 16 threads racing $0.01 reservations against one $1.00 budget admit exactly 100 "
    "(forked children)") {
  REDIS_CASE();
  constexpr int kProcs = 4, kThreads = 16, kTries = 5;
  int fds[kProcs][2];
  pid_t pids[kProcs];
  for (int p = 0; p < kProcs; ++p) {
    REQUIRE(pipe(fds[p]) == 0);
    pids[p] = fork();
    if (pids[p] == 0) {
      Options o = fleet_options(dir.sub("root" + std::to_string(p)), redis.url(),
                                {make_budget("fleet", 1.00)});
      // Only the store admits: none while it cannot be reached.
      o.budget_store_unavailable = BudgetStoreUnavailable::kClosed;
      auto c = Client::open(o);
      if (!c.ok()) _exit(2);
      std::atomic<int> admitted{0}, errors{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          for (int i = 0; i < kTries; ++i) {
            auto r = c->reserve(request(0.01));
            if (r.ok()) {
              ++admitted;
              // Half settle the hold with the same cost; the others keep it.
              if ((t + i) % 2 == 0 && !c->track(event(0.01), r.value()).ok()) ++errors;
            } else if (r.status().code() != Status::Code::kBudgetExceeded ||
                       r.status().message().find("would be exceeded") == std::string::npos) {
              ++errors;
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      int n = errors ? -1 : admitted.load();
      if (write(fds[p][1], &n, sizeof n) != sizeof n) _exit(3);
      c->close(std::chrono::seconds(10)).ok();
      _exit(0);
    }
    close(fds[p][1]);
  }
  int total = 0;
  for (int p = 0; p < kProcs; ++p) {
    int n = -2;
    CHECK(read(fds[p][0], &n, sizeof n) == sizeof n);
    CHECK(n >= 0);
    total += n;
    int st;
    waitpid(pids[p], &st, 0);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    close(fds[p][0]);
  }
  CHECK(total == 100);
  // Every cent admitted is held or spent in Redis, once the children's settles are in.
  Peek peek(redis.port());
  CHECK(
      testing::wait_until([&] { return peek.spent("fleet") + peek.held("fleet") == nanos(1.00); }));
  CHECK(peek.spent("fleet") > 0);
}

TEST_CASE(
    "SIGKILL of a process holding reservations: its holds expire by their TTL, and what it tracked "
    "is counted once") {
  REDIS_CASE();
  testing::ServerConfig sc;
  sc.binary = AGENTBURN_SERVER_PATH;
  sc.data_dir = dir.sub("server");
  sc.api_key = testing::kTestKey;
  testing::ServerProcess server(sc);
  REQUIRE_MESSAGE(server.start(), server.error());
  const std::string root = dir.sub("root");
  auto options = [&] {
    Options o = fleet_options(root, redis.url(), {make_budget("fleet", 1000.0)});
    Options on = testing::online(root, server.url());
    o.endpoint = on.endpoint;
    o.api_key = on.api_key;
    o.flush_interval_ms = on.flush_interval_ms;
    o.retry_initial_ms = on.retry_initial_ms;
    o.retry_max_ms = on.retry_max_ms;
    o.reservation_ttl_ms = 1500;
    return o;
  };
  std::string agent;
  {
    Client reg = testing::open_client(testing::online(dir.sub("reg"), server.url()));
    Agent a;
    a.name = "fleet-agent";
    a.project_id = "fleet-tests";
    auto id = reg.register_agent(a);
    REQUIRE_MESSAGE(id.ok(), id.status().to_string());
    agent = id.value();
  }
  auto tracked = [&](double cost) {
    Event e = event(cost);
    e.agent_id = agent;
    return e;
  };
  Peek peek(redis.port());
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fd[0]);
      auto c = Client::open(options());
      if (!c.ok()) _exit(2);
      std::vector<Reservation> held;
      for (int i = 0; i < 5; ++i) {
        auto r = c->reserve(request(0.5));
        if (!r.ok()) _exit(3);
        held.push_back(r.value());
      }
      char ready = 'r';
      if (write(fd[1], &ready, 1) != 1) _exit(4);
      // Tracks until killed: some events with their reservation, most without.
      for (int i = 0;; ++i) {
        Status s = i < 5 ? c->track(tracked(0.001 * (i + 1)), held[i]) : c->track(tracked(0.0001));
        if (!s.ok()) _exit(5);
      }
    }
    close(fd[1]);
    char ready = 0;
    REQUIRE(read(fd[0], &ready, 1) == 1);
    close(fd[0]);
    std::mt19937 rng(static_cast<unsigned>(round * 7919 + 17));
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 200));  // where it dies
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    // Its holds go by their TTL (1.5 s), with no process left to release them.
    CHECK(testing::wait_until([&] { return peek.held("fleet") == 0; }, std::chrono::seconds(20)));
  }
  // The next process takes its folders over: what they tracked reaches the server and Redis.
  {
    Client c = testing::open_client(options());
    CHECK(c.flush(std::chrono::seconds(60)).ok());
    CHECK(c.close(std::chrono::seconds(20)).ok());
  }
  httplib::Client http("127.0.0.1", server.port());
  std::int64_t on_server = 0;
  std::set<std::string> keys;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    auto res =
        http.Get("/api/events?limit=10000&cursor=" + cursor, {{"x-api-key", testing::kTestKey}});
    REQUIRE(res);
    REQUIRE(res->status == 200);
    auto body = nlohmann::json::parse(res->body);
    for (const auto& e : body["events"]) {
      if (keys.insert(e.value("idempotency_key", "")).second)
        on_server += nanos(e.value("costUsd", 0.0));
    }
    if (body["nextCursor"].is_null()) break;
    cursor = body["nextCursor"].get<std::string>();
  }
  CHECK(keys.size() > 15);
  CHECK(peek.spent("fleet") == on_server);
  CHECK(peek.held("fleet") == 0);
}

TEST_CASE(
    "Redis stopped and started again: each budget_store_unavailable policy, and no settle lost or "
    "applied twice") {
  REDIS_CASE();
  auto open = [&](const std::string& name, BudgetStoreUnavailable policy) {
    Options o = fleet_options(dir.sub(name), redis.url(), {make_budget("day", 0.10)});
    o.budget_store_timeout_ms = 200;
    o.budget_store_unavailable = policy;
    return testing::open_client(o);
  };
  Client local = open("local", BudgetStoreUnavailable::kLocal);
  Client closed = open("closed", BudgetStoreUnavailable::kClosed);
  Client open_ = open("open", BudgetStoreUnavailable::kOpen);
  Peek peek(redis.port());
  // Before: $0.03 spent by `local`, settled.
  for (int i = 0; i < 3; ++i) REQUIRE(local.track(event(0.01)).ok());
  REQUIRE(testing::wait_until([&] { return peek.spent("day") == nanos(0.03); }));
  // Another process's spend, known only to Redis: $0.05.
  for (int i = 0; i < 5; ++i) REQUIRE(closed.track(event(0.01)).ok());
  REQUIRE(testing::wait_until([&] { return peek.spent("day") == nanos(0.08); }));
  {
    auto r = local.reserve(request(0.03));  // 0.08 + 0.03 > 0.10: Redis refuses
    CHECK(r.status().code() == Status::Code::kBudgetExceeded);
  }

  redis.stop();
  // local: enforces on its own spend ($0.03 of $0.10): $0.05 admitted, $0.03 more refused.
  auto a = local.reserve(request(0.05));
  CHECK(a.ok());
  auto b = local.reserve(request(0.03));
  CHECK(b.status().code() == Status::Code::kBudgetExceeded);
  // closed: refused, naming the store.
  auto c = closed.reserve(request(0.001));
  CHECK(c.status().code() == Status::Code::kBudgetExceeded);
  CHECK(c.status().message().find("redis://127.0.0.1:" + std::to_string(redis.port())) !=
        std::string::npos);
  CHECK(c.status().message().find("closed") != std::string::npos);
  // open: admitted, holding nothing.
  auto d = open_.reserve(request(5.0));
  CHECK(d.ok());
  // Spend while Redis is down waits in each buffer.
  REQUIRE(local.track(event(0.02), a.value()).ok());
  for (int i = 0; i < 4; ++i) REQUIRE(open_.track(event(0.01)).ok());
  CHECK(local.check(request(0)).size() == 1);  // the process's own view, without Redis

  REQUIRE(redis.start());  // the same port, and the append-only file
  // Everything tracked is in Redis exactly once: 0.08 before, 0.02 + 0.04 while down.
  CHECK(testing::wait_until([&] { return peek.spent("day") == nanos(0.14); },
                            std::chrono::seconds(30)));
  // check() reads the shared state again.
  CHECK(testing::wait_until([&] {
    auto s = closed.check(request(0));
    return s.size() == 1 && nanos(s[0].spent_usd) == nanos(0.14);
  }));
  CHECK(closed.reserve(request(0.001)).status().code() == Status::Code::kBudgetExceeded);
  // Closing and reopening (offline clients: their events stay on disk) sends nothing again.
  CHECK(local.close(std::chrono::seconds(5)).code() == Status::Code::kTimeout);
  CHECK(open_.close(std::chrono::seconds(5)).code() == Status::Code::kTimeout);
  Client again = open("local", BudgetStoreUnavailable::kLocal);
  Client again2 = open("open", BudgetStoreUnavailable::kOpen);
  CHECK(again.close(std::chrono::seconds(5)).code() == Status::Code::kTimeout);
  CHECK(peek.spent("day") == nanos(0.14));
}

TEST_CASE("Redis answering slowly: reserve returns within its timeout") {
  REDIS_CASE();
  testing::TcpProxy proxy(redis.port());
  REQUIRE(proxy.ok());
  proxy.set_delay(std::chrono::milliseconds(3000));
  proxy.set_mode(testing::TcpProxy::Mode::kDelay);
  Options o = fleet_options(dir.sub("root"), "redis://127.0.0.1:" + std::to_string(proxy.port()),
                            {make_budget("day", 1.0)});
  o.budget_store_timeout_ms = 50;
  o.budget_store_unavailable = BudgetStoreUnavailable::kClosed;
  o.close_timeout_ms = 100;
  Client c = testing::open_client(o);
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    auto r = c.reserve(request(0.01));
    auto took = Clock::now() - t0;
    CHECK(r.status().code() == Status::Code::kBudgetExceeded);
    // 50 ms asked; a reserve that waited for the store would take 3 s or more.
    CHECK(took < std::chrono::milliseconds(1500));
  }
}

TEST_CASE("a \"*\" scope and rolling windows work as in-process, shared by two clients") {
  REDIS_CASE();
  Budget per_task = make_budget("per-task", 0.05, BudgetPeriod::kWeekly);
  per_task.task_id = "*";
  auto opts = [&](const std::string& name) {
    return fleet_options(dir.sub(name), redis.url(), {per_task});
  };
  Client one = testing::open_client(opts("one"));
  Client two = testing::open_client(opts("two"));
  Peek peek(redis.port());
  // Spend of 8 days ago is outside the weekly window; of 6 days ago, inside.
  auto old_event = [&](int days, double cost, const std::string& task) {
    Event e = event(cost, task);
    auto now = std::chrono::system_clock::now() - std::chrono::hours(24 * days);
    e.timestamp = detail::format_timestamp_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    return e;
  };
  REQUIRE(one.track(old_event(8, 0.04, "t1")).ok());
  REQUIRE(one.track(old_event(6, 0.02, "t1")).ok());
  REQUIRE(one.track(event(0.01, "t1")).ok());
  REQUIRE(one.track(event(0.04, "t2")).ok());
  CHECK(testing::wait_until([&] {
    return peek.spent("per-task", "taskId=t1", BudgetPeriod::kWeekly) == nanos(0.03) &&
           peek.spent("per-task", "taskId=t2", BudgetPeriod::kWeekly) == nanos(0.04);
  }));
  // The other client sees the shared windows: t1 has $0.02 left, t2 $0.01, t3 all.
  CHECK(two.reserve(request(0.03, "t1")).status().code() == Status::Code::kBudgetExceeded);
  CHECK(two.reserve(request(0.02, "t1")).ok());
  CHECK(two.reserve(request(0.02, "t2")).status().code() == Status::Code::kBudgetExceeded);
  CHECK(two.reserve(request(0.05, "t3")).ok());
  auto s = two.check(request(0, "t1"));
  REQUIRE(s.size() == 1);
  CHECK(s[0].scope == "taskId=t1");
  CHECK(nanos(s[0].spent_usd) == nanos(0.03));
  CHECK(nanos(s[0].held_usd) == nanos(0.02));
  CHECK(s[0].period == "weekly");
  CHECK(s[0].resets_at_ms > 0);
}

TEST_CASE(
    "fork while threads reserve and track: each child reserves and settles on a connection of its "
    "own (forked children)") {
  REDIS_CASE();
  std::optional<Client> client;
  client.emplace(testing::open_client(
      fleet_options(dir.sub("root"), redis.url(), {make_budget("fork", 1000.0)})));
  Client& c = *client;
  std::atomic<bool> stop{false};
  std::atomic<int> tracked{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        auto r = c.reserve(request(0.01));
        if (!r.ok() || !c.track(event(0.01), r.value()).ok()) {
          ++failures;
          continue;
        }
        ++tracked;
      }
    });
  }
  REQUIRE(testing::wait_until([&] { return tracked.load() > 20; }));
  // AGENTBURN_FORKS=0 under AddressSanitizer, whose allocator locks a child of a busy parent
  // can find held (see .ci/run).
  const char* forks = std::getenv("AGENTBURN_FORKS");
  const int kChildren = forks ? std::min(5, std::atoi(forks)) : 5;
  for (int i = 0; i < kChildren; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      auto r = c.reserve(request(0.01));
      auto other = c.reserve(request(0.5));
      if (!r.ok() || !other.ok()) _exit(1);
      if (!c.track(event(0.01), r.value()).ok()) _exit(2);
      if (!c.release(other.value()).ok()) _exit(3);
      // Offline: its events stay on disk (kTimeout); its settles are applied before.
      if (c.close(std::chrono::seconds(10)).code() != Status::Code::kTimeout) _exit(4);
      client.reset();  // destroyed in the child: nothing of its parent's threads waits here
      _exit(0);
    }
    int st = 0;
    bool ended = testing::wait_until([&] { return waitpid(pid, &st, WNOHANG) == pid; },
                                     std::chrono::seconds(60));
    if (!ended) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    }
    CHECK(ended);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
  }
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  c.close(std::chrono::seconds(10)).ok();
  // Every cent tracked, by the parent and by each child, is spent in Redis; nothing is held.
  Peek peek(redis.port());
  CHECK(testing::wait_until(
      [&] { return peek.spent("fork") == nanos(0.01) * (tracked.load() + kChildren); }));
  CHECK(peek.held("fork") == 0);
}

TEST_CASE("a window's spend, kept as a sum, follows hours that enter it and leave it (a clock moved on)") {
  REDIS_CASE();
  auto owned = direct_fleet(redis.port(), {make_budget("week", 100.0, BudgetPeriod::kWeekly)});
  budget::Fleet& fleet = *owned;
  Peek peek(redis.port());
  budget::Scope scope;
  scope.agent_id = "a";
  scope.has_agent = true;
  const std::int64_t hour_ms = 3600 * 1000;
  const std::int64_t t0 = 1'800'000'000'000 / hour_ms * hour_ms;  // an hour's start
  const std::int64_t h0 = t0 / hour_ms;
  auto settle = [&](std::int64_t hour, std::int64_t nanos, const std::string& key,
                    std::int64_t now) {
    std::size_t done = 0;
    REQUIRE(apply_at(fleet, {fleet.settle_record(scope, hour, nanos, key, nullptr)}, now, &done)
                .ok());
    CHECK(done == 1);
  };
  auto spent = [&](std::int64_t now) {
    std::vector<BudgetState> out;
    REQUIRE(fleet.check(scope, now, &out).ok());
    REQUIRE(out.size() == 1);
    return nanos(out[0].spent_usd);
  };
  settle(h0, 1000, "k1", t0);
  settle(h0 - 100, 20, "k2", t0);  // an older hour, added after: the oldest is now it
  CHECK(peek.spent("week", "", BudgetPeriod::kWeekly) == 1020);
  CHECK(spent(t0) == 1020);
  // 100 hours on, the window starts at h0 - 67: the old hour leaves it, read or settled.
  const std::int64_t t1 = t0 + 100 * hour_ms;
  CHECK(spent(t1) == 1000);
  CHECK(peek.spent("week", "", BudgetPeriod::kWeekly) == 1000);
  settle(h0 - 50, 300, "k3", t1);
  settle(h0 - 200, 4000, "k4", t1);  // before the window: not counted
  CHECK(spent(t1) == 1300);
  CHECK(peek.spent("week", "", BudgetPeriod::kWeekly) == 1300);
  // A week past every hour: nothing left, and the key is gone.
  CHECK(spent(t1 + 24 * 8 * hour_ms) == 0);
  CHECK(peek.spent("week", "", BudgetPeriod::kWeekly) == 0);
}

TEST_CASE("a record of an hour before a window's first, in a batch, adds to the other windows") {
  // Just past midnight UTC: a record of 23:00 yesterday is outside today's daily window (with
  // no spend yet today, so without a key) and inside the monthly one; one of now, in both.
  REDIS_CASE();
  auto owned = direct_fleet(redis.port(), {make_budget("day", 100.0),
                                           make_budget("month", 100.0, BudgetPeriod::kMonthly)});
  budget::Fleet& fleet = *owned;
  Peek peek(redis.port());
  budget::Scope scope;
  scope.agent_id = "a";
  scope.has_agent = true;
  const std::int64_t hour_ms = 3600 * 1000, day_ms = 24 * hour_ms;
  const std::int64_t now = 1'800'000'000'000 / day_ms * day_ms + 60 * 1000;  // 00:01 UTC
  const std::int64_t hour = now / hour_ms;
  for (int batch = 0; batch < 2; ++batch) {
    // Alone, then beside a record of now.
    std::vector<std::string> r{fleet.settle_record(scope, hour - 1, 1000, "late-" + std::to_string(batch), nullptr)};
    if (batch == 1) r.push_back(fleet.settle_record(scope, hour, 20, "now", nullptr));
    std::size_t done = 0;
    Status s = apply_at(fleet, r, now, &done);
    CHECK_MESSAGE(s.ok(), s.to_string());
    CHECK(done == r.size());
  }
  CHECK(peek.spent("month", "", BudgetPeriod::kMonthly) == 2020);
  CHECK(peek.spent("day") == 20);
  std::vector<BudgetState> out;
  REQUIRE(fleet.check(scope, now, &out).ok());
  REQUIRE(out.size() == 2);
  for (const BudgetState& st : out) {
    CAPTURE(st.name);
    CHECK(nanos(st.spent_usd) == (st.name == "day" ? 20 : 2020));
  }
}

TEST_CASE("ten thousand holds that expired together leave at the next reserve") {
  // As a fleet that died holding them leaves them: more than one script call can unpack.
  REDIS_CASE();
  Client c = testing::open_client(
      fleet_options(dir.sub("root"), redis.url(), {make_budget("many", 1.00)}));
  Peek peek(redis.port());
  const std::string h = budget::holds_key("many", BudgetPeriod::kDaily, "");
  static const char* kFill = R"lua(
local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call('HSET', KEYS[1], 'dead-' .. i, '10')
  redis.call('ZADD', KEYS[2], 1, 'dead-' .. i)
end
redis.call('HSET', KEYS[1], '=', tostring(10 * n))
return n
)lua";
  std::vector<long long> v;
  REQUIRE(peek.store->command({"EVAL", kFill, "2", h, budget::expiry_key(h), "10000"}, &v).ok());
  CHECK(peek.held("many") == 100000);
  auto r = c.reserve(request(0.5));
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(peek.held("many") == nanos(0.5));
  CHECK(c.release(r.value()).ok());
  CHECK(peek.held("many") == 0);
}

TEST_CASE("a reservation of $0 is held, released and settled like any other") {
  REDIS_CASE();
  Client c = testing::open_client(
      fleet_options(dir.sub("root"), redis.url(), {make_budget("zero", 1.00)}));
  Peek peek(redis.port());
  auto released = c.reserve(request(0));
  REQUIRE(released.ok());
  CHECK(c.release(released.value()).ok());
  auto settled = c.reserve(request(0));
  auto other = c.reserve(request(0.25));
  REQUIRE(settled.ok());
  REQUIRE(other.ok());
  REQUIRE(c.track(event(0.02), settled.value()).ok());
  REQUIRE(c.track(event(0.03), other.value()).ok());
  REQUIRE(c.track(event(0.04)).ok());
  CHECK(testing::wait_until([&] { return peek.spent("zero") == nanos(0.09); }));
  CHECK(peek.held("zero") == 0);
  auto s = c.check(request(0));
  REQUIRE(s.size() == 1);
  CHECK(nanos(s[0].spent_usd) == nanos(0.09));
  CHECK(nanos(s[0].held_usd) == 0);
}

TEST_CASE("a hold expires at its TTL in Redis: its money is free again for every process") {
  REDIS_CASE();
  Options oa = fleet_options(dir.sub("a"), redis.url(), {make_budget("ttl", 1.00)});
  oa.reservation_ttl_ms = 300;
  Client a = testing::open_client(oa);
  Client b =
      testing::open_client(fleet_options(dir.sub("b"), redis.url(), {make_budget("ttl", 1.00)}));
  auto kept = b.reserve(request(0.10));  // an open hold of b's, kept throughout
  REQUIRE(kept.ok());
  REQUIRE(a.reserve(request(0.60)).ok());
  CHECK(b.reserve(request(0.60)).status().code() == Status::Code::kBudgetExceeded);
  auto s = b.check(request(0));
  REQUIRE(s.size() == 1);
  CHECK(nanos(s[0].held_usd) == nanos(0.70));
  // a never settles nor releases: its hold leaves at 300 ms, b's stays.
  CHECK(
      testing::wait_until([&] { return b.reserve(request(0.60)).ok(); }, std::chrono::seconds(20)));
  s = b.check(request(0));
  REQUIRE(s.size() == 1);
  CHECK(nanos(s[0].held_usd) == nanos(0.70));  // b's 0.10 and 0.60
  CHECK(b.release(kept.value()).ok());
  s = b.check(request(0));
  CHECK(nanos(s[0].held_usd) == nanos(0.60));
}

// A forked child stores one event per record (an empty one: no record) in a buffer of `o`,
// delivers them all, and dies without a close: the folder keeps no counters, so the next
// open numbers from its (empty) queue, from 1 again.
void die_after_delivering(const detail::BufferOptions& o, const std::vector<std::string>& records) {
  pid_t pid = fork();
  if (pid == 0) {
    std::unique_ptr<detail::Buffer> b;
    if (!detail::Buffer::open(o, &b).ok()) _exit(1);
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (!b->append("{\"e\":1}", records[i], "key-" + std::to_string(i)).ok()) _exit(2);
    }
    if (!b->flush_stage().ok()) _exit(3);
    std::vector<detail::StoredEvent> got;
    if (!b->read_next(10, 1 << 20, &got).ok() || got.size() != records.size()) _exit(4);
    if (!b->remove(got, true).ok()) _exit(5);
    _exit(0);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
}

TEST_CASE(
    "a folder taken over after a kill keeps every settle record, whatever its sequence numbers (a "
    "forked child)") {
  testing::TempDir dir;
  detail::BufferOptions o;
  o.root = dir.path();
  o.keep_settles = true;
  die_after_delivering(o, {"record-1"});
  std::unique_ptr<detail::Buffer> b;
  REQUIRE(detail::Buffer::open(o, &b).ok());
  REQUIRE(b->append("{\"e\":2}", "record-2", "key-2").ok());
  std::vector<std::pair<std::string, std::string>> records;
  REQUIRE(b->read_settles(100, &records).ok());
  REQUIRE(records.size() == 2);
  CHECK(records[0].second == "record-1");
  CHECK(records[1].second == "record-2");
  // At close, unsettled records keep the folder, for the next process to apply.
  REQUIRE(b->close().ok());
  CHECK(testing::count_folders(dir.path()) == 1);
  // A client without a store drops them with the folder.
  o.keep_settles = false;
  REQUIRE(detail::Buffer::open(o, &b).ok());
  REQUIRE(b->read_settles(100, &records).ok());
  CHECK(records.size() == 2);
  std::vector<detail::StoredEvent> got;
  REQUIRE(b->read_next(10, 1 << 20, &got).ok());
  REQUIRE(got.size() == 1);  // the second event, still queued
  REQUIRE(b->remove(got, true).ok());
  REQUIRE(b->close().ok());
  CHECK(testing::count_folders(dir.path()) == 0);
}

TEST_CASE(
    "the settle queue, read and emptied while appends run, gives each record once and misses "
    "none") {
  // Reads seek past what earlier reads found deleted; a record appended meanwhile, whatever
  // its place (three appending threads, a taken-over record sorting after new ones), is read.
  for (Durability d : {Durability::kProcess, Durability::kSystem, Durability::kBuffered}) {
    CAPTURE(static_cast<int>(d));
    testing::TempDir dir;
    detail::BufferOptions o;
    o.root = dir.path();
    o.keep_settles = true;
    o.durability = d;
    // A predecessor's record at sequence number 5.
    die_after_delivering(o, {"", "", "", "", "old"});
    std::unique_ptr<detail::Buffer> b;
    REQUIRE(detail::Buffer::open(o, &b).ok());
    std::map<std::string, int> seen;
    auto drain = [&] {
      std::vector<std::pair<std::string, std::string>> records;
      REQUIRE(b->read_settles(7, &records).ok());
      std::vector<std::string> keys;
      for (auto& r : records) {
        ++seen[r.second];
        keys.push_back(r.first);
      }
      REQUIRE(b->remove_settles(keys).ok());
      return records.size();
    };
    // This client numbers from 1 again: its records sort before the taken-over one (number
    // 5), which a read finds alone and deletes.
    CHECK(drain() == 1);
    REQUIRE(b->append("{}", "first", "first").ok());
    REQUIRE(b->flush_stage().ok());
    CHECK(drain() == 1);
    REQUIRE(b->append("{}", "second", "second").ok());
    REQUIRE(b->flush_stage().ok());
    CHECK(drain() == 1);
    CHECK(seen.size() == 3);
    constexpr int kThreads = 3, kEach = 1500;
    std::atomic<int> done{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          std::string v = std::to_string(t) + "-" + std::to_string(i);
          if (!b->append("{}", v, v).ok()) break;
        }
        ++done;
      });
    }
    while (done.load() < kThreads) drain();
    for (auto& w : writers) w.join();
    REQUIRE(b->flush_stage().ok());
    while (drain() > 0) {
    }
    CHECK(seen.size() == kThreads * kEach + 3);
    CHECK(seen.count("old") == 1);
    int twice = 0;
    for (auto& [v, n] : seen) twice += n != 1;
    CHECK(twice == 0);
    // Appended after the queue was found empty.
    REQUIRE(b->append("{}", "late", "late").ok());
    REQUIRE(b->flush_stage().ok());
    std::vector<std::pair<std::string, std::string>> records;
    REQUIRE(b->read_settles(7, &records).ok());
    REQUIRE(records.size() == 1);
    CHECK(records[0].second == "late");
    REQUIRE(b->close().ok());
  }
}

TEST_CASE("a bad budget_store is refused at open, naming what is wrong and never the password") {
  for (const char* url : {"redis://", "redis://host:99999", "redis://host:12/x", "memcached://h",
                          "redis://:s3cret@[::1"}) {
    Options o;
    o.budget_store = url;
    o.budgets = {make_budget("b", 1)};
    testing::TempDir dir;
    o.buffer_root = dir.path();
    auto c = Client::open(o);
    CAPTURE(url);
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK(c.status().message().find("budget_store") != std::string::npos);
    CHECK(c.status().message().find("s3cret") == std::string::npos);
  }
  // The store's other options, each refused naming itself.
  testing::TempDir dir;
  auto refused = [&](Options o, const char* name) {
    o.buffer_root = dir.path();
    o.budgets = {make_budget("b", 1)};
    o.budget_store = "redis://127.0.0.1:1";
    auto c = Client::open(o);
    CAPTURE(name);
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK(c.status().message().find(name) == 0);
  };
  Options o;
  o.budget_store_timeout_ms = 0;
  refused(o, "budget_store_timeout_ms");
  o.budget_store_timeout_ms = 60001;
  refused(o, "budget_store_timeout_ms");
  o = Options();
  o.budget_store_unavailable = static_cast<BudgetStoreUnavailable>(7);
  refused(o, "budget_store_unavailable");
}

TEST_CASE("an estimate past what the store sums exactly is refused before any call to it") {
  testing::TempDir dir;
  // Nothing listens on port 1: the refusal comes before any connection.
  Options o = fleet_options(dir.path(), "redis://127.0.0.1:1", {make_budget("big", 1e9)});
  o.budget_store_unavailable = BudgetStoreUnavailable::kClosed;
  Client c = testing::open_client(o);
  auto r = c.reserve(request(1e7));
  INFO(r.status().message());
  CHECK(r.status().code() == Status::Code::kInvalid);
  CHECK(r.status().message().find("$9,007,199") != std::string::npos);
}

TEST_CASE(
    "a settle record that cannot be read is logged and dropped; the records after it are applied") {
  REDIS_CASE();
  const std::string root = dir.sub("root");
  {
    // A folder left with a damaged record beside a good one.
    detail::BufferOptions bo;
    bo.root = root;
    bo.keep_settles = true;
    std::unique_ptr<detail::Buffer> b;
    REQUIRE(detail::Buffer::open(bo, &b).ok());
    REQUIRE(b->append("{\"e\":1}", "7:garbage", "key-1").ok());
    REQUIRE(b->close().ok());
  }
  std::mutex mu;
  std::vector<std::string> logged;
  Options o = fleet_options(root, redis.url(), {make_budget("day", 1.0)});
  o.log = [&](LogLevel, const std::string& m) {
    std::lock_guard<std::mutex> g(mu);
    logged.push_back(m);
  };
  Client c = testing::open_client(o);
  REQUIRE(c.track(event(0.25)).ok());
  Peek peek(redis.port());
  CHECK(testing::wait_until([&] { return peek.spent("day") == nanos(0.25); }));
  CHECK(testing::wait_until([&] {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& m : logged) {
      if (m.find("dropped a settle record that cannot be read: 7:garbage") == 0) return true;
    }
    return false;
  }));
}

TEST_SUITE_END();
