// The spend ledger of a buffer folder: every event tracked counts once, as an event the folder
// still holds or as a ledger row, whatever takes it out (delivery, drop_oldest, a purge, an
// adoption) and wherever the process is killed.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/db.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "ledger/event_row.hpp"
#include "ledger/rows.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"
#include "support.hpp"

#include <filesystem>
namespace fs = std::filesystem;

using agentburn::Status;
using agentburn::detail::Buffer;
using agentburn::detail::BufferOptions;
using agentburn::detail::StoredEvent;
namespace ledger = agentburn::ledger;

namespace {

// A stored event of `cost_usd` dollars (in micro-dollars, to sum exactly) and 10 input tokens.
std::string event(int i, long micros, const char* agent = "a1") {
  return std::string("{\"agentId\":\"") + agent +
         "\",\"provider\":\"openai\",\"operation\":\"llm_call\",\"model\":\"gpt-4o\",\"costUsd\":" +
         std::to_string(micros / 1e6) + ",\"inputTokens\":10,\"timestamp\":\"2026-12-07T1" +
         std::to_string(i % 10) + ":00:00.000Z\",\"idempotency_key\":\"k" + std::to_string(i) + "\"}";
}

BufferOptions opts(const std::string& root) {
  BufferOptions o;
  o.root = root;
  o.ledger = true;
  return o;
}

struct Sum {
  std::int64_t events = 0, nanos = 0, input = 0, rows = 0;
};

// What read_ledger counts, and how many ledger rows (not events) it read.
Sum spend(Buffer& b) {
  Sum s;
  REQUIRE(b.read_ledger(
                [&](std::string_view key, std::string_view value) {
                  ledger::Row r;
                  REQUIRE(ledger::decode_key(key, &r));
                  REQUIRE(ledger::decode_value(value, &r.totals));
                  s.events += r.totals[ledger::kEvents];
                  s.nanos += r.totals[ledger::kCostNanos];
                  s.input += r.totals[ledger::kInputTokens];
                  s.rows += r.totals[ledger::kEvents] != 1 || r.origin.size();
                },
                [] {})
              .ok());
  return s;
}

std::unique_ptr<Buffer> open(const BufferOptions& o) {
  std::unique_ptr<Buffer> b;
  Status s = Buffer::open(o, &b);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return b;
}

}  // namespace

TEST_SUITE("ledger") {
TEST_CASE("an event's row is computed from its stored text") {
  std::string key;
  ledger::Totals t{};
  REQUIRE(ledger::row_of_event(event(3, 250000), &key, &t));
  ledger::Row r;
  REQUIRE(ledger::decode_key(key, &r));
  CHECK(r.agent_id == "a1");
  CHECK(r.model == "gpt-4o");
  CHECK(r.hour == ledger::hour_of(1796648400000LL));  // 2026-12-07T13:00Z
  CHECK(t[ledger::kEvents] == 1);
  CHECK(t[ledger::kCostNanos] == 250000000);
  CHECK(t[ledger::kInputTokens] == 10);
  CHECK_FALSE(ledger::row_of_event("{\"n\":1}", &key, &t));  // no event: nothing to count
  CHECK_FALSE(ledger::row_of_event("not json", &key, &t));
}

TEST_CASE("delivered, dropped, buried and purged events keep their spend, counted once") {
  testing::TempDir root;
  auto b = open(opts(root.path()));
  const int n = 50;
  for (int i = 0; i < n; ++i) REQUIRE(b->append(event(i, 10000 + i)).ok());
  const std::int64_t want = n * 10000000LL + 1000LL * (n * (n - 1) / 2);
  Sum s = spend(*b);
  CHECK(s.events == n);
  CHECK(s.nanos == want);
  CHECK(s.rows == 0);  // all still events
  // Delivered: a whole read, then part of one (key by key).
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(20, 1 << 20, &batch).ok());
  REQUIRE(b->remove(batch, true).ok());
  batch.clear();
  REQUIRE(b->read_next(10, 1 << 20, &batch).ok());
  REQUIRE(b->bury(batch[0], "refused").ok());
  batch.erase(batch.begin());
  REQUIRE(b->remove(batch, false).ok());
  s = spend(*b);
  CHECK(s.events == n);
  CHECK(s.nanos == want);
  CHECK(s.input == 10 * n);
  CHECK(s.rows > 0);
  // A dead letter requeued and buried again, then purged.
  REQUIRE(b->requeue_dead_letters().ok());
  CHECK(spend(*b).nanos == want);
  batch.clear();
  REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
  for (std::size_t i = 0; i < 5; ++i) REQUIRE(b->bury(batch[i], "refused").ok());
  REQUIRE(b->purge_dead_letters().ok());
  CHECK(b->dead_count() == 0);
  s = spend(*b);
  CHECK(s.events == n);
  CHECK(s.nanos == want);
  const std::string folder = b->folder();
  REQUIRE(b->close().ok());
  {
    // 15 events stay queued, so does the folder, which says when it last delivered.
    // As `agentburn status` opens it.
    rocksdb::Options o = agentburn::detail::db_options(false, rocksdb::Env::Default(), nullptr);
    rocksdb::ColumnFamilyOptions with_merge = o;
    with_merge.merge_operator = ledger::merge_operator();
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, o}, {"dead", o}, {"meta", o}, {"ledger", with_merge}};
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* db = nullptr;
    auto opened = rocksdb::DB::OpenForReadOnly(o, folder, cfs, &h, &db);
    REQUIRE_MESSAGE(opened.ok(), opened.ToString());
    std::string at;
    auto got = db->Get(rocksdb::ReadOptions(), h[2], "last_delivery", &at);
    CHECK_MESSAGE(got.ok(), got.ToString());
    CHECK(std::atoll(at.c_str()) > 1700000000000LL);
    for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
    delete db;
  }
  // And after a restart.
  auto again = open(opts(root.path()));
  s = spend(*again);
  CHECK(s.events == n);
  CHECK(s.nanos == want);
}

TEST_CASE("full_policy drop_oldest: the dropped events' spend stays") {
  testing::TempDir root;
  BufferOptions o = opts(root.path());
  o.disk_cap_bytes = 20 * 300;
  o.full_policy = agentburn::FullPolicy::kDropOldest;
  auto b = open(o);
  for (int i = 0; i < 100; ++i) REQUIRE(b->append(event(i, 1000)).ok());
  CHECK(b->dropped() > 0);
  Sum s = spend(*b);
  CHECK(s.events == 100);
  CHECK(s.nanos == 100 * 1000000LL);
}

TEST_CASE("a folder killed with SIGKILL while it delivers: its spend, adopted, is counted once") {
  testing::TempDir root;
  const int n = 3000;
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(opts(root.path()), &b).ok()) _exit(2);
    for (int i = 0; i < n; ++i) {
      if (!b->append(event(i, 7)).ok()) _exit(3);
    }
    if (write(ready[1], "r", 1) != 1) _exit(6);
    // Deliver in batches until killed.
    for (;;) {
      std::vector<StoredEvent> batch;
      if (!b->read_next(97, 1 << 20, &batch).ok()) _exit(4);
      if (batch.empty()) break;
      if (!b->remove(batch, true).ok()) _exit(5);
    }
    for (;;) pause();
  }
  // Killed at some point of its deliveries (or after them).
  char x;
  REQUIRE(read(ready[0], &x, 1) == 1);
  usleep(static_cast<useconds_t>(getpid() % 7) * 1000);
  kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  // A second, live folder adopts it (the first open takes it over in place; the second
  // copies it in).
  auto taker = open(opts(root.path()));
  Sum s = spend(*taker);
  CHECK(s.events == n);
  CHECK(s.nanos == n * 7000LL);
}

TEST_CASE("an adopted folder's events and rows are counted once, after a crash between copy and delete (forked children)") {
  testing::TempDir root;
  // Folder B: half its events delivered, then its process dies (its lock goes with it).
  int b_ready[2], b_die[2];
  REQUIRE(pipe(b_ready) == 0);
  REQUIRE(pipe(b_die) == 0);
  char x;
  pid_t pb = fork();
  REQUIRE(pb >= 0);
  if (pb == 0) {
    close(b_die[1]);
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(opts(root.path()), &b).ok()) _exit(2);
    for (int i = 0; i < 2500; ++i) {
      if (!b->append(event(i, 3)).ok()) _exit(3);
    }
    std::vector<StoredEvent> batch;
    if (!b->read_next(1200, 1 << 24, &batch).ok() || !b->remove(batch, true).ok()) _exit(4);
    if (write(b_ready[1], "r", 1) != 1) _exit(5);
    (void)read(b_die[0], &x, 1);
    _exit(0);
  }
  REQUIRE(read(b_ready[0], &x, 1) == 1);
  // Folder A (opened while B lives): adopts B and is killed after copying its first chunk.
  int a_ready[2];
  REQUIRE(pipe(a_ready) == 0);
  pid_t pa = fork();
  REQUIRE(pa >= 0);
  if (pa == 0) {
    close(b_die[1]);
    BufferOptions o = opts(root.path());
    o.test_point = [](const char* point) {
      if (std::string(point) == "adopt:chunk_copied") _exit(0);
    };
    std::unique_ptr<Buffer> a;
    if (!Buffer::open(o, &a).ok()) _exit(2);
    if (write(a_ready[1], "r", 1) != 1) _exit(3);
    while (testing::count_folders(root.path()) == 2) {
      (void)a->adopt_dead_folders();
      usleep(1000);
    }
    _exit(4);
  }
  REQUIRE(read(a_ready[0], &x, 1) == 1);
  close(b_die[1]);
  int status = 0;
  REQUIRE(waitpid(pb, &status, 0) == pb);
  REQUIRE(waitpid(pa, &status, 0) == pa);
  REQUIRE(WEXITSTATUS(status) == 0);  // killed at the point: B's first chunk is in both
  REQUIRE(testing::count_folders(root.path()) == 2);
  auto c = open(opts(root.path()));
  CHECK(testing::count_folders(root.path()) == 1);
  Sum s = spend(*c);
  CHECK(s.events == 2500);
  CHECK(s.nanos == 2500 * 3000LL);
  CHECK(c->pending() == 1300);  // and the queue holds each undelivered event once
}

TEST_CASE("a clean close moves the spend to the root ledger and the folder goes; a fold cut short counts once (a forked child)") {
  testing::TempDir root;
  for (int round = 0; round < 3; ++round) {
    auto b = open(opts(root.path()));
    for (int i = 0; i < 10; ++i) REQUIRE(b->append(event(round * 100 + i, 1000)).ok());
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
    REQUIRE(b->remove(batch, true).ok());
    CHECK(spend(*b).events == 10 * (round + 1));
    REQUIRE(b->close().ok());
    CHECK(testing::count_folders(root.path()) == 0);  // nothing but the root ledger stays
  }
  CHECK(fs::is_directory(root.path() + "/ledger"));
  // A process killed after its rows reached the root ledger, before it deleted them: the
  // next one takes the folder over and counts them once, and folds them again, once.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    BufferOptions o = opts(root.path());
    o.test_point = [](const char* point) {
      if (std::string(point) == "fold:written") _exit(0);
    };
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(o, &b).ok()) _exit(2);
    for (int i = 0; i < 10; ++i) {
      if (!b->append(event(900 + i, 1000)).ok()) _exit(3);
    }
    std::vector<StoredEvent> batch;
    if (!b->read_next(1000, 1 << 20, &batch).ok() || !b->remove(batch, true).ok()) _exit(4);
    (void)b->close();
    _exit(5);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(testing::count_folders(root.path()) == 1);
  {
    auto b = open(opts(root.path()));
    Sum s = spend(*b);
    CHECK(s.events == 40);
    CHECK(s.nanos == 40 * 1000000LL);
    REQUIRE(b->append(event(950, 1000)).ok());  // more spend on the same rows, then folded
    CHECK(spend(*b).events == 41);
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
    REQUIRE(b->remove(batch, true).ok());
    CHECK(spend(*b).events == 41);
    REQUIRE(b->close().ok());
  }
  CHECK(testing::count_folders(root.path()) == 0);
  auto b = open(opts(root.path()));
  CHECK(spend(*b).events == 41);
  CHECK(spend(*b).nanos == 41 * 1000000LL);
}
}
