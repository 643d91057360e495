// The durable buffer: persistence, adoption, several owners on one root, the disk cap, dead
// letters, format versions and corruption.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include <rocksdb/db.h>

#include "store/buffer.hpp"
#include "support.hpp"

using agentburn::Durability;
using agentburn::FullPolicy;
using agentburn::Status;
using agentburn::detail::Buffer;
using agentburn::detail::BufferOptions;
using agentburn::detail::StoredEvent;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

BufferOptions opts(const std::string& root, Durability d = Durability::kProcess) {
  BufferOptions o;
  o.root = root;
  o.durability = d;
  o.disk_cap_bytes = 0;
  return o;
}

std::unique_ptr<Buffer> open_buffer(const BufferOptions& o) {
  std::unique_ptr<Buffer> b;
  Status s = Buffer::open(o, &b);
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  return b;
}

std::string ev(int i) { return "{\"n\":" + std::to_string(i) + "}"; }

// Everything readable, in order.
std::vector<std::string> drain(Buffer& b, bool remove = false) {
  std::vector<std::string> out;
  std::vector<StoredEvent> batch;
  while (true) {
    REQUIRE(b.read_next(1000, 1 << 20, &batch).ok());
    if (batch.empty()) break;
    for (auto& e : batch) out.push_back(e.json);
    if (remove) REQUIRE(b.remove(batch, true).ok());
  }
  return out;
}

}  // namespace

TEST_CASE("events survive close and reopen, in order, in every durability mode") {
  for (auto d : {Durability::kBuffered, Durability::kProcess, Durability::kSystem}) {
    testing::TempDir root;
    {
      auto b = open_buffer(opts(root.path(), d));
      for (int i = 0; i < 2500; ++i) REQUIRE(b->append(ev(i)).ok());
      CHECK(b->pending() == 2500);
      REQUIRE(b->close().ok());
    }
    CHECK(testing::count_folders(root.path()) == 1);  // kept: not empty
    auto b = open_buffer(opts(root.path(), d));
    CHECK(b->adopted() == 2500);
    CHECK(b->pending() == 2500);
    auto all = drain(*b);
    REQUIRE(all.size() == 2500);
    for (int i = 0; i < 2500; ++i) CHECK(all[i] == ev(i));
    CHECK(testing::count_folders(root.path()) == 1);  // the adopted folder is gone
  }
}

// Runs `body` in a child process that ends without closing anything, as a killed one would.
void in_dying_child(const std::function<int()>& body) {
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(body());
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("a reopened buffer takes its predecessor's folder over whole, counters and order kept") {
  testing::TempDir root;
  std::string folder;
  std::uint64_t bytes = 0;
  {
    auto b = open_buffer(opts(root.path()));
    for (int i = 0; i < 300; ++i) REQUIRE(b->append(ev(i)).ok());
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(100, 1 << 20, &batch).ok());
    REQUIRE(b->remove(batch, true).ok());  // 0..99 delivered
    REQUIRE(b->read_next(1, 1 << 20, &batch).ok());
    REQUIRE(b->bury(batch[0], "refused").ok());  // 100 a dead letter
    REQUIRE(b->read_next(50, 1 << 20, &batch).ok());  // 101..150 in flight at close
    folder = b->folder();
    bytes = b->pending_bytes();
    CHECK(b->pending() == 199);
    REQUIRE(b->close().ok());
  }
  auto b = open_buffer(opts(root.path()));
  CHECK(b->folder() == folder);  // the same folder: nothing was copied
  CHECK(testing::count_folders(root.path()) == 1);
  CHECK(b->adopted() == 199);
  CHECK(b->pending() == 199);
  CHECK(b->pending_bytes() == bytes);
  CHECK(b->dead_count() == 1);
  REQUIRE(b->append(ev(300)).ok());
  auto all = drain(*b);
  REQUIRE(all.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(all[i] == ev(101 + i));
}

TEST_CASE("a folder taken over after a crash is counted again, also when a clean close came first") {
  testing::TempDir root;
  std::uint64_t bytes = 0;
  {
    auto b = open_buffer(opts(root.path()));
    for (int i = 0; i < 100; ++i) REQUIRE(b->append(ev(i)).ok());
    bytes = b->pending_bytes();
    REQUIRE(b->close().ok());  // leaves the counters record
  }
  // Takes it over (consuming the record), adds 50 and dies without a close.
  in_dying_child([&] {
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(opts(root.path()), &b).ok() || b->pending() != 100) return 2;
    for (int i = 100; i < 150; ++i) {
      if (!b->append(ev(i)).ok()) return 3;
    }
    std::vector<StoredEvent> batch;
    if (!b->read_next(10, 1 << 20, &batch).ok() || !b->remove(batch, true).ok()) return 4;
    b.release();  // never closed: the process just ends
    return 0;
  });
  auto b = open_buffer(opts(root.path()));
  CHECK(b->pending() == 140);
  CHECK(b->pending_bytes() == bytes + 50 * (ev(100).size() + 8) - 10 * (ev(0).size() + 8));
  REQUIRE(b->append(ev(150)).ok());
  auto all = drain(*b);
  REQUIRE(all.size() == 141);
  for (int i = 0; i < 141; ++i) CHECK(all[i] == ev(10 + i));
}

TEST_CASE("with two dead folders, one is taken over and the other adopted") {
  testing::TempDir root;
  for (int round = 0; round < 2; ++round) {
    in_dying_child([&] {
      std::unique_ptr<Buffer> b;
      if (!Buffer::open(opts(root.path()), &b).ok()) return 2;
      for (int i = 0; i < 10; ++i) {
        if (!b->append(ev(round * 10 + i)).ok()) return 3;
      }
      b.release();
      return 0;
    });
  }
  // The second child took over the first child's folder: one folder, 20 events.
  CHECK(testing::count_folders(root.path()) == 1);
  // Now make two: a live buffer adds its own folder, then dies.
  in_dying_child([&] {
    std::unique_ptr<Buffer> a, b;
    if (!Buffer::open(opts(root.path()), &a).ok()) return 2;  // takes over the 20
    if (!Buffer::open(opts(root.path()), &b).ok()) return 3;  // a new folder
    if (a->pending() != 20 || b->pending() != 0) return 4;
    for (int i = 20; i < 25; ++i) {
      if (!b->append(ev(i)).ok()) return 5;
    }
    a.release();
    b.release();
    return 0;
  });
  CHECK(testing::count_folders(root.path()) == 2);
  auto b = open_buffer(opts(root.path()));
  CHECK(testing::count_folders(root.path()) == 1);
  CHECK(b->adopted() == 25);
  auto all = drain(*b);
  std::set<std::string> uniq(all.begin(), all.end());
  CHECK(uniq.size() == 25);
}

TEST_CASE("the oldest pending event is known while batches are read, acked out of order, buried") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  CHECK(b->first_pending_seq() == 1);  // none: the next one
  for (int i = 0; i < 30; ++i) REQUIRE(b->append(ev(i)).ok());
  CHECK(b->first_pending_seq() == 1);
  std::vector<StoredEvent> first, second, third;
  REQUIRE(b->read_next(10, 1 << 20, &first).ok());   // 1..10
  REQUIRE(b->read_next(10, 1 << 20, &second).ok());  // 11..20
  REQUIRE(b->remove(second, true).ok());
  CHECK(b->first_pending_seq() == 1);
  // A batch split in halves: the later half acked first.
  std::vector<StoredEvent> lo(first.begin(), first.begin() + 5), hi(first.begin() + 5, first.end());
  REQUIRE(b->remove(hi, true).ok());
  CHECK(b->first_pending_seq() == 1);
  REQUIRE(b->bury(lo[0], "refused").ok());
  CHECK(b->first_pending_seq() == 2);
  lo.erase(lo.begin());
  REQUIRE(b->remove(lo, true).ok());
  CHECK(b->first_pending_seq() == 21);  // unread, found from the cursor
  REQUIRE(b->read_next(100, 1 << 20, &third).ok());
  CHECK(b->first_pending_seq() == 21);
  REQUIRE(b->remove(third, true).ok());
  CHECK(b->first_pending_seq() == 31);
  CHECK(b->pending() == 0);
}

std::uint64_t sst_bytes(const std::string& folder) {
  // A compaction running meanwhile deletes tables between the listing and the stat: a table
  // gone by then no longer takes space, so it counts as nothing rather than as an error.
  std::uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() != ".sst") continue;
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(e.path(), ec);
    if (!ec) n += size;
  }
  return n;
}

TEST_CASE("the space of delivered events comes back: the acked prefix is compacted in the background") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  std::uint64_t x = 88172645463325252ull;  // xorshift: values that do not compress away
  const int n = 200500;
  for (int i = 0; i < n; ++i) {
    char text[96];
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::snprintf(text, sizeof text, "{\"n\":%d,\"pad\":\"%016llx%016llx\"}", i,
                  static_cast<unsigned long long>(x), static_cast<unsigned long long>(x * 31));
    REQUIRE(b->append(text).ok());
  }
  // The memtables reach disk as tables once enough is written; wait for some.
  REQUIRE(testing::wait_until([&] { return sst_bytes(b->folder()) > 4u << 20; }));
  const std::uint64_t before = sst_bytes(b->folder());
  CHECK(drain(*b, true).size() == static_cast<std::size_t>(n));
  CHECK(b->pending() == 0);
  bool shrunk = testing::wait_until([&] { return sst_bytes(b->folder()) < before / 4; },
                                    std::chrono::seconds(60));
  std::string sizes = std::to_string(before) + " bytes of tables before, " +
                      std::to_string(sst_bytes(b->folder())) + " after";
  CHECK_MESSAGE(shrunk, sizes);
  REQUIRE(b->close().ok());
}

TEST_CASE("system durability: threads appending at once share synced writes, and lose nothing") {
  testing::TempDir root;
  std::set<std::string> want;
  {
    auto b = open_buffer(opts(root.path(), Durability::kSystem));
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 150; ++i) failed += !b->append(ev(t * 1000 + i)).ok();
      });
      for (int i = 0; i < 150; ++i) want.insert(ev(t * 1000 + i));
    }
    for (auto& th : threads) th.join();
    CHECK(failed.load() == 0);
    CHECK(b->pending() == 1200);
    CHECK(b->last_seq() == 1200);
    // Everything appended is readable at once (the group's writer updated the watermark).
    CHECK(b->readable_upto() == 1200);
    auto all = drain(*b);
    CHECK(all.size() == 1200);
    CHECK(std::set<std::string>(all.begin(), all.end()) == want);
    // Each thread's events keep their order.
    for (int t = 0; t < 8; ++t) {
      int last = -1;
      for (const auto& e : all) {
        int n = std::stoi(e.substr(5));
        if (n / 1000 != t) continue;
        CHECK(n % 1000 > last);
        last = n % 1000;
      }
    }
  }
  auto b = open_buffer(opts(root.path(), Durability::kSystem));
  auto again = drain(*b);
  CHECK(std::set<std::string>(again.begin(), again.end()) == want);
}

TEST_CASE("the counters never dip below zero while events are delivered as they are written") {
  // The sender may read and remove an event the moment it is readable: counting it only
  // after that (as a group commit's waiting threads once did) made pending_bytes wrap below
  // zero for a moment, and a concurrent append saw a full buffer.
  for (auto d : {Durability::kSystem, Durability::kProcess}) {
    testing::TempDir root;
    auto o = opts(root.path(), d);
    o.disk_cap_bytes = 1 << 30;
    auto b = open_buffer(o);
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0}, wrapped{0};
    std::thread reader([&] {
      std::vector<StoredEvent> batch;
      while (!stop) {
        if (b->read_next(100, 1 << 20, &batch).ok() && !batch.empty()) b->remove(batch, true).ok();
        if (b->pending_bytes() > (1ull << 40) || b->pending() > (1ull << 40)) ++wrapped;
      }
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) failed += !b->append(ev(t * 1000 + i)).ok();
      });
    }
    for (auto& w : writers) w.join();
    stop = true;
    reader.join();
    CHECK(failed.load() == 0);
    CHECK(wrapped.load() == 0);
    drain(*b, true);
    CHECK(b->pending() == 0);
    CHECK(b->pending_bytes() == 0);
  }
}

TEST_CASE("an empty buffer folder is removed at close") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  REQUIRE(b->append(ev(1)).ok());
  REQUIRE(b->remove(std::vector<StoredEvent>{}, true).ok());
  drain(*b, true);
  CHECK(b->pending() == 0);
  CHECK(testing::count_folders(root.path()) == 1);
  REQUIRE(b->close().ok());
  CHECK(testing::count_folders(root.path()) == 0);
  auto st = fs::status(root.path());
  CHECK(fs::exists(st));
}

TEST_CASE("buffer folders are private to the user") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.sub("a/b")));
  auto perms = fs::status(b->folder()).permissions();
  CHECK((perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  CHECK((fs::status(root.sub("a/b")).permissions() & fs::perms::others_all) == fs::perms::none);
}

TEST_CASE("a folder left by a process that died is adopted; a live one is not") {
  testing::TempDir root;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(opts(root.path()), &b).ok()) _exit(2);
    for (int i = 0; i < 100; ++i) {
      if (!b->append(ev(i)).ok()) _exit(3);
    }
    _exit(0);  // no close: the process just ends
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto a = open_buffer(opts(root.path()));
  CHECK(a->adopted() == 100);
  CHECK(drain(*a).size() == 100);
  // A second buffer on the same root while the first lives: nothing to adopt.
  auto b = open_buffer(opts(root.path()));
  CHECK(b->adopted() == 0);
  CHECK(a->pending() == 100);
  CHECK(testing::count_folders(root.path()) == 2);
}

TEST_CASE("folders of processes that died while creating them are cleaned up, not fatal") {
  testing::TempDir root;
  // Died after the folder was in place, before its database existed.
  fs::create_directories(root.sub("p1-early"));
  std::ofstream(root.sub("p1-early/agentburn.lock")).put('\n');
  // Died while the folder was still being made.
  fs::create_directories(root.sub(".new-p2-early"));
  std::ofstream(root.sub(".new-p2-early/agentburn.lock")).put('\n');
  // A minute old: a live creator is never that slow between mkdir and rename.
  fs::last_write_time(root.sub(".new-p2-early"),
                      fs::file_time_type::clock::now() - std::chrono::minutes(2));
  // Died while removing an adopted folder.
  fs::create_directories(root.sub(".del-p3-gone"));
  // The library makes every folder 0700, and touches no other.
  for (const char* name : {"p1-early", ".new-p2-early", ".del-p3-gone"}) {
    fs::permissions(root.sub(name), fs::perms::owner_all);
  }
  auto b = open_buffer(opts(root.path()));
  CHECK(b->adopted() == 0);
  CHECK_FALSE(fs::exists(root.sub("p1-early")));
  CHECK_FALSE(fs::exists(root.sub(".new-p2-early")));
  CHECK_FALSE(fs::exists(root.sub(".del-p3-gone")));
  CHECK(testing::count_folders(root.path()) == 1);
}

TEST_CASE("two buffers on one root keep their own events, and a later one gets both") {
  testing::TempDir root;
  {
    auto a = open_buffer(opts(root.path()));
    auto b = open_buffer(opts(root.path()));
    CHECK(a->folder() != b->folder());
    std::thread ta([&] {
      for (int i = 0; i < 500; ++i) REQUIRE(a->append(ev(i)).ok());
    });
    std::thread tb([&] {
      for (int i = 500; i < 1000; ++i) REQUIRE(b->append(ev(i)).ok());
    });
    ta.join();
    tb.join();
    CHECK(a->pending() == 500);
    CHECK(b->pending() == 500);
  }
  auto c = open_buffer(opts(root.path()));
  CHECK(c->adopted() == 1000);
  auto all = drain(*c);
  std::set<std::string> uniq(all.begin(), all.end());
  CHECK(uniq.size() == 1000);
}

TEST_CASE("disk cap, reject policy: a clear error, nothing stored is touched") {
  testing::TempDir root;
  auto o = opts(root.path());
  o.disk_cap_bytes = 100 * (ev(0).size() + 8);
  auto b = open_buffer(o);
  int accepted = 0;
  Status last;
  for (int i = 0; i < 200; ++i) {
    last = b->append(ev(0));
    if (!last.ok()) break;
    ++accepted;
  }
  CHECK(accepted == 100);
  CHECK(last.code() == Status::Code::kFull);
  CHECK(last.message().find("disk_cap_bytes") != std::string::npos);
  CHECK(b->pending() == 100);
  // Delivering some makes room again.
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(10, 1 << 20, &batch).ok());
  REQUIRE(b->remove(batch, true).ok());
  CHECK(b->append(ev(0)).ok());
}

TEST_CASE("disk cap, drop_oldest policy: the oldest unread events make room") {
  testing::TempDir root;
  auto o = opts(root.path());
  o.full_policy = FullPolicy::kDropOldest;
  o.disk_cap_bytes = 50 * (ev(100).size() + 8);
  auto b = open_buffer(o);
  for (int i = 100; i < 300; ++i) REQUIRE(b->append(ev(i)).ok());
  CHECK(b->pending() == 50);
  CHECK(b->dropped() == 150);
  auto all = drain(*b);
  REQUIRE(all.size() == 50);
  CHECK(all.front() == ev(250));
  CHECK(all.back() == ev(299));
}

TEST_CASE("drop_oldest never drops events the sender has claimed") {
  testing::TempDir root;
  auto o = opts(root.path());
  o.full_policy = FullPolicy::kDropOldest;
  o.disk_cap_bytes = 10 * (ev(100).size() + 8);
  auto b = open_buffer(o);
  for (int i = 100; i < 110; ++i) REQUIRE(b->append(ev(i)).ok());
  std::vector<StoredEvent> claimed;
  REQUIRE(b->read_next(10, 1 << 20, &claimed).ok());
  REQUIRE(claimed.size() == 10);
  Status s = b->append(ev(110));
  CHECK(s.code() == Status::Code::kFull);
  REQUIRE(b->remove(claimed, true).ok());
  CHECK(b->append(ev(110)).ok());
}

TEST_CASE("dead letters: kept with a reason, listed, requeued in order, purged") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  for (int i = 0; i < 5; ++i) REQUIRE(b->append(ev(i)).ok());
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
  REQUIRE(batch.size() == 5);
  REQUIRE(b->bury(batch[1], "agentId: unknown agent").ok());
  REQUIRE(b->bury(batch[3], "costUsd: bad").ok());
  std::vector<StoredEvent> rest = {batch[0], batch[2], batch[4]};
  // The range delete of the rest must not disturb the dead letters.
  REQUIRE(b->remove(std::vector<StoredEvent>{batch[0]}, true).ok());
  REQUIRE(b->remove(std::vector<StoredEvent>{batch[2], batch[4]}, true).ok());
  CHECK(b->pending() == 0);
  CHECK(b->dead_count() == 2);
  auto dead = b->dead_letters(10);
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].event_json == ev(1));
  CHECK(dead[0].reason == "agentId: unknown agent");
  CHECK(dead[1].event_json == ev(3));
  CHECK(b->dead_letters(1).size() == 1);
  REQUIRE(b->requeue_dead_letters().ok());
  CHECK(b->dead_count() == 0);
  CHECK(b->pending() == 2);
  auto again = drain(*b);
  REQUIRE(again.size() == 2);
  CHECK(again[0] == ev(1));
  CHECK(again[1] == ev(3));
  std::vector<StoredEvent> one;
  REQUIRE(b->append(ev(9)).ok());
  REQUIRE(b->read_next(1, 1 << 20, &one).ok());
  REQUIRE(b->bury(one[0], "x").ok());
  REQUIRE(b->purge_dead_letters().ok());
  CHECK(b->dead_count() == 0);
  CHECK(b->dead_letters(10).empty());
}

TEST_CASE("dead letters survive a restart") {
  testing::TempDir root;
  {
    auto b = open_buffer(opts(root.path()));
    REQUIRE(b->append(ev(7)).ok());
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(1, 1 << 20, &batch).ok());
    REQUIRE(b->bury(batch[0], "refused").ok());
  }
  auto b = open_buffer(opts(root.path()));
  CHECK(b->dead_count() == 1);
  CHECK(b->pending() == 0);
  auto dead = b->dead_letters(10);
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].reason == "refused");
}

TEST_CASE("reads respect batch limits and concurrent writers never leave a gap behind") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  std::atomic<bool> done{false};
  const int kThreads = 6, kEach = 3000;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) REQUIRE(b->append(ev(t * kEach + i)).ok());
    });
  }
  std::vector<std::string> seen;
  std::thread reader([&] {
    std::vector<StoredEvent> batch;
    std::uint64_t last = 0;
    while (true) {
      bool finished = done.load();
      REQUIRE(b->read_next(100, 1 << 20, &batch).ok());
      for (auto& e : batch) {
        CHECK(e.seq > last);
        last = e.seq;
        seen.push_back(e.json);
      }
      if (!batch.empty()) REQUIRE(b->remove(batch, true).ok());
      if (batch.empty() && finished) break;
    }
  });
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  std::set<std::string> uniq(seen.begin(), seen.end());
  CHECK(seen.size() == kThreads * kEach);
  CHECK(uniq.size() == kThreads * kEach);
  CHECK(b->pending() == 0);
}

TEST_CASE("byte caps split batches, and one oversized event still goes alone") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  std::string big = "{\"pad\":\"" + std::string(5000, 'x') + "\"}";
  REQUIRE(b->append(big).ok());
  for (int i = 0; i < 10; ++i) REQUIRE(b->append(ev(i)).ok());
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(1000, 100, &batch).ok());
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].json == big);
  REQUIRE(b->read_next(1000, 21, &batch).ok());
  CHECK(batch.size() == 3);  // 7 bytes each, a 21-byte cap
}

TEST_CASE("a buffer folder kept from this format version is read by this library") {
  testing::TempDir root;
  fs::copy(AGENTBURN_TEST_FIXTURES "/buffer-v1", root.sub("p1-fixture"),
           fs::copy_options::recursive);
  // A folder is adopted only when it is private to its user, as every folder the library
  // makes is.
  fs::permissions(root.sub("p1-fixture"), fs::perms::owner_all);
  auto b = open_buffer(opts(root.path()));
  CHECK(b->adopted() == 3);
  auto all = drain(*b);
  REQUIRE(all.size() == 3);
  CHECK(all[0].find("fixture-1") != std::string::npos);
  CHECK(all[2].find("fixture-3") != std::string::npos);
  CHECK(b->dead_count() == 1);
  CHECK(b->dead_letters(1)[0].reason == "fixture reason");
}

TEST_CASE("an unknown newer format is a clear error, and the folder is left alone") {
  testing::TempDir root;
  std::string folder;
  {
    auto b = open_buffer(opts(root.path()));
    REQUIRE(b->append(ev(1)).ok());
    folder = b->folder();
  }
  {
    // Stamp the folder with a future version, as a newer library would.
    rocksdb::Options o;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, o}, {"dead", o}, {"meta", o}, {"ledger", o}, {"settle", o}};
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(o, folder, cfs, &h, &db).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[2], "format_version", "99").ok());
    for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
    delete db;
  }
  std::unique_ptr<Buffer> b;
  Status s = Buffer::open(opts(root.path()), &b);
  CHECK(s.code() == Status::Code::kStorage);
  CHECK(s.message().find("format version 99") != std::string::npos);
  CHECK(fs::exists(folder));
}

TEST_CASE("a corrupt buffer folder: a clear error, or set aside when asked") {
  testing::TempDir root;
  std::string folder;
  {
    auto b = open_buffer(opts(root.path()));
    REQUIRE(b->append(ev(1)).ok());
    folder = b->folder();
  }
  for (const auto& f : fs::directory_iterator(folder)) {
    auto name = f.path().filename().string();
    if (name.rfind("MANIFEST", 0) == 0 || name == "CURRENT") {
      std::ofstream(f.path(), std::ios::trunc) << "garbage";
    }
  }
  std::unique_ptr<Buffer> b;
  Status s = Buffer::open(opts(root.path()), &b);
  CHECK(s.code() == Status::Code::kStorage);
  CHECK(s.message().find("set_aside_corrupt_buffer") != std::string::npos);
  auto o = opts(root.path());
  o.set_aside_corrupt = true;
  std::string logged;
  o.log = [&](agentburn::LogLevel, const std::string& m) { logged += m; };
  b = open_buffer(o);
  CHECK(logged.find("could not be opened") != std::string::npos);
  CHECK_FALSE(fs::exists(folder));
  bool set_aside = false;
  for (const auto& f : fs::directory_iterator(root.path())) {
    set_aside |= f.path().filename().string().rfind("corrupt-", 0) == 0;
  }
  CHECK(set_aside);
  CHECK(b->append(ev(2)).ok());
}

// Writes the fixture folder used above: AGENTBURN_WRITE_FIXTURE=DIR unit_tests -tc="*fixture writer*"
TEST_CASE("fixture writer" * doctest::skip(std::getenv("AGENTBURN_WRITE_FIXTURE") == nullptr)) {
  std::string out = std::getenv("AGENTBURN_WRITE_FIXTURE");
  testing::TempDir root;
  std::string folder;
  {
    auto b = open_buffer(opts(root.path()));
    for (int i = 0; i < 4; ++i) {
      REQUIRE(b->append("{\"agentId\":\"fixture-" + std::to_string(i) +
                        "\",\"provider\":\"p\",\"operation\":\"compute\",\"costUsd\":1}")
                  .ok());
    }
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(1, 1 << 20, &batch).ok());
    REQUIRE(b->bury(batch[0], "fixture reason").ok());
    folder = b->folder();
  }
  fs::copy(folder, out, fs::copy_options::recursive);
}

TEST_CASE("an event set aside twice is moved and counted once") {
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  for (int i = 0; i < 3; ++i) REQUIRE(b->append(ev(i)).ok());
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
  REQUIRE(b->bury(batch[1], "refused").ok());
  REQUIRE(b->bury(batch[1], "refused again").ok());
  CHECK(b->pending() == 2);
  CHECK(b->dead_count() == 1);
  REQUIRE(b->dead_letters(10).size() == 1);
  CHECK(b->dead_letters(10)[0].reason == "refused");
}

TEST_CASE("an ack of part of a read deletes those events and no other") {
  // The event in the middle stays queued (its dead letter could not be written, say): the
  // ack of the others must not delete it with a range.
  testing::TempDir root;
  auto b = open_buffer(opts(root.path()));
  for (int i = 0; i < 5; ++i) REQUIRE(b->append(ev(i)).ok());
  std::vector<StoredEvent> batch;
  REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
  REQUIRE(b->remove({batch[0], batch[1], batch[3], batch[4]}, false).ok());
  CHECK(b->pending() == 1);
  CHECK(b->first_pending_seq() == batch[2].seq);
  REQUIRE(b->bury(batch[2], "refused").ok());
  CHECK(b->pending() == 0);
  CHECK(b->dead_count() == 1);
  b.reset();
  auto again = open_buffer(opts(root.path()));
  CHECK(again->pending() == 0);
  CHECK(again->dead_count() == 1);
}

TEST_CASE("a close removes the folder only when reading it finds nothing, whatever the counters") {
  testing::TempDir root;
  {
    auto b = open_buffer(opts(root.path()));
    REQUIRE(b->append(ev(1)).ok());
    std::vector<StoredEvent> batch;
    REQUIRE(b->read_next(1000, 1 << 20, &batch).ok());
    // A drifted counter: an ack the buffer believes removed more than it did.
    REQUIRE(b->remove({StoredEvent{batch[0].seq + 100, "{}"}}, true).ok());
    CHECK(b->pending() == 0);
    CHECK(b->close().ok());
  }
  CHECK(testing::count_folders(root.path()) == 1);
  auto b = open_buffer(opts(root.path()));
  CHECK(drain(*b) == std::vector<std::string>{ev(1)});
}

TEST_CASE("dead letters adopted while a requeue is under way are all counted (a forked child leaves the folder)") {
  // Forces the interleaving: adoption of a dead folder's letters starts while a requeue has
  // moved its first chunk and not yet finished.
  testing::TempDir root;
  int die[2], ready[2];
  REQUIRE(pipe(die) == 0);
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();  // before this process opens any buffer
  REQUIRE(child >= 0);
  if (child == 0) {
    close(die[1]);
    close(ready[0]);
    std::unique_ptr<Buffer> b;
    if (!Buffer::open(opts(root.path()), &b).ok()) _exit(2);
    for (int i = 0; i < 3; ++i) {
      if (!b->append(ev(100 + i)).ok()) _exit(3);
    }
    std::vector<StoredEvent> batch;
    if (!b->read_next(1000, 1 << 20, &batch).ok() || batch.size() != 3) _exit(4);
    for (auto& e : batch) {
      if (!b->bury(e, "refused").ok()) _exit(5);
    }
    if (write(ready[1], "r", 1) != 1) _exit(6);
    char x;
    (void)read(die[0], &x, 1);
    _exit(0);  // dies holding three dead letters
  }
  close(die[0]);
  close(ready[1]);
  char x;
  REQUIRE(read(ready[0], &x, 1) == 1);
  close(ready[0]);

  std::mutex mu;
  std::condition_variable cv;
  bool requeue_mid = false, adoption_done = false;
  BufferOptions o = opts(root.path());
  o.test_point = [&](const char* point) {
    if (std::string(point) != "requeue:chunk_moved") return;
    std::unique_lock<std::mutex> g(mu);
    requeue_mid = true;
    cv.notify_all();
    // Lets the adoption run now if it can (it must not: it waits for the requeue).
    cv.wait_for(g, 300ms, [&] { return adoption_done; });
  };
  auto a = open_buffer(o);  // the child lives: its folder is not adopted now
  for (int i = 0; i < 5; ++i) REQUIRE(a->append(ev(i)).ok());
  std::vector<StoredEvent> batch;
  REQUIRE(a->read_next(1000, 1 << 20, &batch).ok());
  for (auto& e : batch) REQUIRE(a->bury(e, "refused").ok());
  REQUIRE(a->dead_count() == 5);
  close(die[1]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);

  std::thread adopter([&] {
    {
      std::unique_lock<std::mutex> g(mu);
      cv.wait(g, [&] { return requeue_mid; });
    }
    Status s = a->adopt_dead_folders();
    CHECK_MESSAGE(s.ok(), s.to_string());
    std::lock_guard<std::mutex> g(mu);
    adoption_done = true;
    cv.notify_all();
  });
  REQUIRE(a->requeue_dead_letters().ok());
  adopter.join();
  auto dead = a->dead_letters(100);
  CHECK(dead.size() == 3);
  CHECK(a->dead_count() == dead.size());
  CHECK(a->pending() == 5);
  REQUIRE(a->close().ok());
  CHECK(testing::count_folders(root.path()) == 1);  // the dead letters keep the folder
  auto b = open_buffer(opts(root.path()));
  CHECK(b->dead_count() == 3);
  CHECK(b->pending() == 5);
}

TEST_CASE("an adoption killed between its copy and its delete leaves each dead letter once (forked children)") {
  testing::TempDir root;
  int b_ready[2], a_ready[2], b_die[2];
  REQUIRE(pipe(b_ready) == 0);
  REQUIRE(pipe(a_ready) == 0);
  REQUIRE(pipe(b_die) == 0);
  char x;
  pid_t b = fork();  // folder B: three dead letters, then dies
  REQUIRE(b >= 0);
  if (b == 0) {
    close(b_die[1]);
    std::unique_ptr<Buffer> buf;
    if (!Buffer::open(opts(root.path()), &buf).ok()) _exit(2);
    for (int i = 0; i < 3; ++i) {
      if (!buf->append(ev(i)).ok()) _exit(3);
    }
    std::vector<StoredEvent> batch;
    if (!buf->read_next(1000, 1 << 20, &batch).ok()) _exit(4);
    for (auto& e : batch) {
      if (!buf->bury(e, "refused").ok()) _exit(5);
    }
    if (write(b_ready[1], "r", 1) != 1) _exit(6);
    (void)read(b_die[0], &x, 1);
    _exit(0);
  }
  REQUIRE(read(b_ready[0], &x, 1) == 1);
  pid_t a = fork();  // folder A: adopts B and is killed after the copy, before the delete
  REQUIRE(a >= 0);
  if (a == 0) {
    close(b_die[1]);  // B dies when the test closes its end
    BufferOptions o = opts(root.path());
    o.test_point = [](const char* point) {
      if (std::string(point) == "adopt:chunk_copied") _exit(0);
    };
    std::unique_ptr<Buffer> buf;
    if (!Buffer::open(o, &buf).ok()) _exit(2);  // B lives: not adopted now
    if (write(a_ready[1], "r", 1) != 1) _exit(3);
    while (testing::count_folders(root.path()) == 2) {
      (void)buf->adopt_dead_folders();  // B's lock is free once it died
      std::this_thread::sleep_for(1ms);
    }
    _exit(4);
  }
  REQUIRE(read(a_ready[0], &x, 1) == 1);
  close(b_die[1]);
  int status = 0;
  REQUIRE(waitpid(b, &status, 0) == b);
  REQUIRE(waitpid(a, &status, 0) == a);
  REQUIRE(WEXITSTATUS(status) == 0);  // killed at the point
  REQUIRE(testing::count_folders(root.path()) == 2);  // both hold the three letters
  auto c = open_buffer(opts(root.path()));
  CHECK(c->dead_count() == 3);
  auto dead = c->dead_letters(100);
  CHECK(dead.size() == 3);
  std::set<std::string> events;
  for (auto& d : dead) events.insert(d.event_json);
  CHECK(events.size() == 3);
}
