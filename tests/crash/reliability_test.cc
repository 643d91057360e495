// Reliability through the C++ API: fork() against the server, a full disk, corrupt and
// half-made buffer folders, processes killed around flush() and adoption, and stress (many
// threads while one closes, open/close loops). Outcomes are counted on disk or on the server.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agentburn/agentburn.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "server/harness.hpp"
#include "store/buffer.hpp"
#include "store/fork_safety.hpp"
#include "support/clients.hpp"
#include "support/tmpfs.hpp"

using namespace agentburn;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

Options offline(const std::string& root, Durability d = Durability::kProcess) {
  Options o;
  o.buffer_root = root;
  o.durability = d;
  o.close_timeout_ms = 0;
  return o;
}

using testing::keys_on_disk;
using testing::online;
using testing::open_client;

Event event(const std::string& agent, int i, std::size_t pad = 0) {
  Event e;
  e.agent_id = agent;
  e.provider = i % 2 ? "openai" : "anthropic";
  e.operation = i % 3 ? "llm_call" : "tool_call";
  e.cost_usd = 0.001 * (i + 1);
  e.model = "model-" + std::to_string(i % 5);
  e.input_tokens = i;
  e.task_id = "task-" + std::to_string(i % 11);
  e.metadata_json = "{\"i\":" + std::to_string(i) +
                    (pad ? ",\"pad\":\"" + std::string(pad, 'p') + "\"" : std::string()) + "}";
  return e;
}

std::string register_agent(Client& c, const std::string& name) {
  Agent a;
  a.name = name;
  a.project_id = "reliability";
  auto id = c.register_agent(a);
  REQUIRE_MESSAGE(id.ok(), id.status().to_string());
  return id.value();
}

// Every event stored on the server, by idempotency_key, counting repeats.
std::multiset<std::string> server_keys(testing::TestServer& s) {
  auto res = s.get("/api/events?limit=10000");
  REQUIRE(res.status == 200);
  auto events = res.json();
  REQUIRE_MESSAGE(events.size() < 10000, "more events than one answer holds");
  std::multiset<std::string> keys;
  for (const auto& e : events) keys.insert(e.value("idempotency_key", ""));
  return keys;
}

// Buffer folders under `root` (not set aside, not dot-names).
std::vector<std::string> buffer_folders(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name[0] != '.' && name.rfind("corrupt-", 0) != 0 && name != "ledger") {
      out.push_back(e.path().string());
    }
  }
  return out;
}

int count_prefixed(const std::string& root, const std::string& prefix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  }
  return n;
}

// Tracks `n` events offline and closes, leaving them in one folder under `root`; returns the
// folder and the keys.
std::string folder_with_events(const std::string& root, int n, std::vector<std::string>* keys) {
  {
    Client c = open_client(offline(root));
    for (int i = 0; i < n; ++i) {
      std::string k;
      REQUIRE(c.track(event("agent-1", i), &k).ok());
      keys->push_back(k);
    }
    CHECK(c.close(0ms).code() == Status::Code::kTimeout);
  }
  auto folders = buffer_folders(root);
  REQUIRE(folders.size() == 1);
  return folders[0];
}

// --- Child processes -------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of the child's pipe
};

// Forks; the child runs `body(write_fd)` and exits with its result without returning into
// the test (no doctest macros in there). It dies with the test, if the test dies first.
Child fork_child(const std::function<int(int)>& body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    int code = body(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  return Child{pid, fds[0]};
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads the child's pipe to EOF and reaps it, both within `timeout`; a child still running
// then is killed and the test fails. Returns the exit code (128 + signal when killed).
int finish_child(Child& c, std::string* out, std::chrono::milliseconds timeout = 60s) {
  auto deadline = Clock::now() + timeout;
  while (c.fd >= 0) {
    pollfd p = {c.fd, POLLIN, 0};
    int n = poll(&p, 1, testing::process_detail::ms_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[65536];
    ssize_t got = read(c.fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      close(c.fd);
      c.fd = -1;
    } else if (out) {
      out->append(buf, static_cast<std::size_t>(got));
    }
  }
  int code = -1;
  bool ended = testing::process_detail::wait_exit(c.pid, deadline, &code);
  if (!ended) {
    kill(c.pid, SIGKILL);
    testing::process_detail::wait_exit(c.pid, Clock::time_point::max(), &code);
  }
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  CHECK_MESSAGE(ended, "child " << c.pid << " did not finish within the deadline; killed");
  return code;
}

// Reads the child's pipe until `out` ends with `marker`, within `timeout`.
bool read_until(Child& c, const std::string& marker, std::string* out,
                std::chrono::milliseconds timeout = 60s) {
  auto deadline = Clock::now() + timeout;
  while (out->size() < marker.size() ||
         out->compare(out->size() - marker.size(), marker.size(), marker) != 0) {
    pollfd p = {c.fd, POLLIN, 0};
    int n = poll(&p, 1, testing::process_detail::ms_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    char buf[65536];
    ssize_t got = read(c.fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out->append(buf, static_cast<std::size_t>(got));
  }
  return true;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0, nl;
  while ((nl = text.find('\n', pos)) != std::string::npos) {
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

}  // namespace

// =========================================================================================
TEST_SUITE_BEGIN("reliability.fork");

TEST_CASE("fork with a server: parent and child both deliver, every key once, nothing sent twice") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  std::multiset<std::string> want;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "fork");
  // Enough that the parent's sender is busy with batches when the fork happens: the child
  // must not send any of them again.
  for (int i = 0; i < 3000; ++i) {
    std::string k;
    REQUIRE(c.track(event(agent, i), &k).ok());
    want.insert(k);
  }
  Child child = fork_child([&](int fd) {
    std::string keys;
    for (int i = 0; i < 1000; ++i) {
      std::string k;
      if (!c.track(event(agent, 10000 + i), &k).ok()) return 3;
      keys += k + "\n";
    }
    Status f = c.flush(30s);
    if (!f.ok()) return 4;
    if (c.stats().pending != 0) return 5;
    if (!c.close(1s).ok()) return 6;
    return write_all(fd, keys) ? 0 : 7;
  });
  for (int i = 0; i < 1000; ++i) {
    std::string k;
    REQUIRE(c.track(event(agent, 20000 + i), &k).ok());
    want.insert(k);
  }
  std::string out;
  CHECK(finish_child(child, &out) == 0);
  auto child_keys = lines_of(out);
  CHECK(child_keys.size() == 1000);
  want.insert(child_keys.begin(), child_keys.end());
  Status f = c.flush(30s);
  REQUIRE_MESSAGE(f.ok(), f.to_string() << " / " << c.stats().last_error);
  CHECK(server_keys(s) == want);
  auto st = s.stats();
  CHECK(st["duplicates"] == 0);
  CHECK(st["events_received"] == st["events_stored"]);
  CHECK(c.close(1s).ok());
  CHECK(testing::count_folders(root.path()) == 0);
}

TEST_CASE("1,000 forks while the parent sends, stages, compacts, adopts and reads: every child reopens in time") {
  // A lock another thread holds at fork() is never released in the child. The parent here
  // keeps every thread that takes RocksDB's process-wide locks busy: a tracker (buffered
  // durability: the stage writer; memtable flushes; 200k acks a compaction), the sender,
  // the adoption of the children's folders, and short-lived threads that read and exit.
  const int kForks = std::getenv("AGENTBURN_FORKS") ? std::atoi(std::getenv("AGENTBURN_FORKS")) : 1000;
  if (kForks <= 0) {
    MESSAGE("skipped: AGENTBURN_FORKS=" << kForks);
    return;
  }
  CHECK_MESSAGE(agentburn::detail::rocksdb_fork_guard_complete(),
                "RocksDB's thread-local mutex was not found: fork() cannot hold it");
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  Options o = online(root.path(), s.process.url());
  o.durability = Durability::kBuffered;
  Client c = open_client(o);
  std::string agent = register_agent(c, "fork-loop");
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> want;
  std::thread tracker([&] {
    for (int i = 0; !stop; ++i) {
      std::string k;
      if (c.track(event(agent, i, i % 4 ? 100 : 2000), &k).ok()) {
        std::lock_guard<std::mutex> g(mu);
        want.insert(k);
      }
      // Paced (about 5 MB/s: a memtable flush every few seconds, compactions after them),
      // so that the forks, not the load, take the test's time.
      std::this_thread::sleep_for(100us);
    }
  });
  std::thread reader([&] {
    while (!stop) {
      std::thread t([&] {
        (void)c.dead_letters(10);
        (void)c.flush(0ms);
      });
      t.join();
    }
  });
  int hung = -1, failed = -1, code = 0;
  for (int i = 0; i < kForks && hung < 0 && failed < 0; ++i) {
    Child child = fork_child([&](int fd) {
      std::string k;
      if (!c.track(event(agent, 1000000 + i), &k).ok()) return 3;
      (void)c.flush(0ms);  // writes the stage: the event is on disk when the child ends
      return write_all(fd, k + "\n") ? 0 : 4;
    });
    std::string out;
    if (!read_until(child, "\n", &out, 30s)) {
      // Hung (or died): say where it waits, then let finish_child kill it.
      if (kill(child.pid, 0) == 0 && access("/usr/bin/gdb", X_OK) == 0) {
        std::string cmd = "gdb -p " + std::to_string(child.pid) +
                          " -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^#' | head -40";
        if (FILE* p = popen(cmd.c_str(), "r")) {
          char line[4096];
          std::string stacks;
          while (fgets(line, sizeof line, p)) stacks += line;
          pclose(p);
          MESSAGE("the child of fork " << i << " waits here:\n" << stacks);
        }
      }
      code = finish_child(child, nullptr, 1s);
      hung = i;
      break;
    }
    code = finish_child(child, nullptr, 30s);
    if (code != 0) {
      failed = i;
    } else {
      std::lock_guard<std::mutex> g(mu);
      for (auto& k : lines_of(out)) want.insert(k);
    }
  }
  stop = true;
  tracker.join();
  reader.join();
  REQUIRE_MESSAGE(hung < 0, "the child of fork " << hung << " of " << kForks
                                 << " hung: its reopen waited on a lock its parent held");
  REQUIRE_MESSAGE(failed < 0, "the child of fork " << failed << " exited " << code);
  // The children's folders are adopted by the parent, and everything arrives once.
  CHECK(testing::wait_until([&] { return testing::count_folders(root.path()) == 1; }, 60s));
  Status f = c.flush(120s);
  REQUIRE_MESSAGE(f.ok(), f.to_string() << " / " << c.stats().last_error);
  // Every key once: the server stores each idempotency_key once, so as many stored as
  // tracked, and none of them missing (looked up by key for a sample of the children's).
  auto st = s.stats();
  CHECK(st["events_stored"].get<std::size_t>() == want.size());
  auto cs = c.stats();
  MESSAGE(kForks << " forks; " << want.size() << " events delivered; resent " << cs.resent
                 << ", retries " << cs.retries << ", adopted " << cs.adopted << "; server: " << st.dump());
}

TEST_SUITE_END();

// =========================================================================================
TEST_SUITE_BEGIN("reliability.disk");

namespace {

using testing::Tmpfs;

bool write_filler(const std::string& path, std::size_t bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string chunk(1 << 20, 'f');
  bool ok = true;
  for (std::size_t done = 0; ok && done < bytes; done += chunk.size()) ok = write_all(fd, chunk);
  return close(fd) == 0 && ok;
}

// The keys of the events in a buffer folder, read with RocksDB in read-only mode (writes
// nothing, so it works on a full disk and beside the client that owns the folder). Events
// that do not parse are counted in `bad`.
std::multiset<std::string> keys_read_only(const std::string& folder, int* bad, std::string* error) {
  std::multiset<std::string> keys;
  rocksdb::Options o;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, o}, {"dead", o}, {"meta", o}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* db = nullptr;
  auto st = rocksdb::DB::OpenForReadOnly(o, folder, cfs, &h, &db);
  if (!st.ok()) {
    *error = st.ToString();
    return keys;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h[0]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    json j = json::parse(it->value().ToString(), nullptr, false);
    if (!j.is_object() || !j.contains("idempotency_key")) {
      ++*bad;
      continue;
    }
    keys.insert(j["idempotency_key"].get<std::string>());
  }
  if (!it->status().ok()) *error = it->status().ToString();
  it.reset();
  for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
  delete db;
  return keys;
}

}  // namespace

TEST_CASE("a full disk: a clear error, nothing accepted lost, tracking again once space is back") {
  if (geteuid() != 0) {
    MESSAGE("skipped: mounting a small tmpfs needs root");
    return;
  }
  testing::TempDir dir;
  std::string mnt = dir.sub("mnt");
  Tmpfs tmpfs(mnt, "24m");
  if (!tmpfs.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs here: " << tmpfs.error());
    return;
  }
  // A filler takes most of the space, so that the buffer fills the rest, and deleting it
  // gives space back without touching the buffer.
  const std::string filler = mnt + "/filler";
  REQUIRE(write_filler(filler, 14u << 20));
  const std::string root = mnt + "/root";

  std::vector<std::string> acked;
  Options o = offline(root);
  o.disk_cap_bytes = 0;  // the disk is the limit
  Client c = open_client(o);
  Status first_error;
  for (int i = 0; i < 200000 && first_error.ok(); ++i) {
    std::string k;
    Status s = c.track(event("agent-1", i, 1000), &k);
    if (s.ok()) {
      acked.push_back(k);
    } else {
      first_error = s;
    }
  }
  REQUIRE_MESSAGE(!first_error.ok(), "the disk never filled");
  MESSAGE("full disk after " << acked.size() << " events: track() returned " << first_error.to_string());
  CHECK((first_error.code() == Status::Code::kStorage || first_error.code() == Status::Code::kFull));
  CHECK_MESSAGE(first_error.message().find("space") != std::string::npos,
                "the message does not say the disk is full: " << first_error.message());
  // Still refused, never a crash; stats and flush answer.
  for (int i = 0; i < 5; ++i) CHECK_FALSE(c.track(event("agent-1", i, 1000)).ok());
  CHECK(c.stats().pending == acked.size());
  CHECK(c.flush(0ms).code() != Status::Code::kOk);

  // Nothing accepted is lost or damaged: the folder read as it is, while still full.
  auto folders = buffer_folders(root);
  REQUIRE(folders.size() == 1);
  {
    int bad = 0;
    std::string error;
    auto on_disk = keys_read_only(folders[0], &bad, &error);
    CHECK_MESSAGE(error.empty(), error);
    CHECK(bad == 0);
    std::size_t missing = 0;
    for (const auto& k : acked) missing += on_disk.count(k) != 1;
    CHECK_MESSAGE(missing == 0, missing << " accepted events are not on disk (exactly once)");
    CHECK_MESSAGE(on_disk.size() == acked.size(),
                  on_disk.size() << " events on disk for " << acked.size() << " accepted");
  }

  // Space comes back: tracking works again, with this client.
  REQUIRE(fs::remove(filler));
  std::string k;
  Status again;
  bool recovered = testing::wait_until(
      [&] {
        again = c.track(event("agent-1", 1), &k);
        return again.ok();
      },
      10s);
  CHECK_MESSAGE(recovered, "with space freed, track() still returns " << again.to_string());
  if (recovered) acked.push_back(k);
  for (int i = 0; recovered && i < 100; ++i) {
    Status s = c.track(event("agent-1", i, 1000), &k);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    acked.push_back(k);
  }
  Status closed = c.close(0ms);
  MESSAGE("close after the full disk: ", closed.to_string());
  CHECK((closed.ok() || closed.code() == Status::Code::kTimeout));

  // A new client adopts all of it and tracks.
  {
    Client d = open_client(offline(root));
    CHECK(d.stats().pending == acked.size());
    Status s = d.track(event("agent-1", 7), &k);
    CHECK_MESSAGE(s.ok(), s.to_string());
    if (s.ok()) acked.push_back(k);
    CHECK(d.close(0ms).code() == Status::Code::kTimeout);
  }
  auto all = keys_on_disk(root);
  CHECK(all == std::multiset<std::string>(acked.begin(), acked.end()));
}

TEST_CASE("a refused event whose dead letter cannot be written stays queued, and the ack of the rest leaves it") {
  if (geteuid() != 0) {
    MESSAGE("skipped: mounting a small tmpfs needs root");
    return;
  }
  testing::TempDir dir;
  std::string mnt = dir.sub("mnt");
  Tmpfs tmpfs(mnt, "48m");
  if (!tmpfs.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs here: " << tmpfs.error());
    return;
  }
  testing::TestServer s({"--enable-fault-injection"});
  // The batch's 400 names "kbad" at once; the rest's answer is held 4 s (after it is stored).
  auto plan = json::array({{{"reject_keys", {"kbad"}}},
                           {{"delay_ms", 0}, {"count", 1}},
                           {{"delay_ms", 4000}, {"count", 1}}});
  REQUIRE(s.post("/api/_faults", plan.dump()).status == 200);
  std::atomic<bool> bury_failed{false};
  Options o = online(mnt + "/root", s.process.url());
  o.flush_interval_ms = 600000;  // one batch, sent when flush() asks
  o.log = [&](LogLevel, const std::string& m) {
    if (m.find("cannot store a dead letter") != std::string::npos) bury_failed = true;
  };
  Client c = open_client(o);
  std::string agent = register_agent(c, "full-disk");
  std::vector<std::string> good;
  for (int i = 0; i < 10; ++i) {
    Event e = event(agent, i, i == 4 ? 12000 : 10);
    e.idempotency_key = i == 4 ? "kbad" : "k" + std::to_string(i);
    REQUIRE(c.track(e).ok());
    if (i != 4) good.push_back(*e.idempotency_key);
  }
  const std::string filler = mnt + "/filler";
  write_filler(filler, 1u << 30);  // until the disk is full
  CHECK(c.flush(0ms).code() == Status::Code::kTimeout);  // sends the batch now
  bool failed = testing::wait_until(
      [&] { return bury_failed.load() || c.stats().dead_letters == 1; }, 20s);
  REQUIRE_MESSAGE(failed, "the batch was never refused: " << c.stats().last_error);
  if (!bury_failed.load()) {
    // RocksDB wrote the dead letter into log space it had set aside before the disk filled:
    // the failure this test is about did not happen, so there is nothing to check.
    MESSAGE("skipped: the dead letter found room in RocksDB's preallocated log");
    REQUIRE(fs::remove(filler));
    CHECK(c.flush(30s).ok());
    CHECK(c.stats().dead_letters == 1);
    return;
  }
  REQUIRE(fs::remove(filler));  // space is back before the rest is acked
  Status flushed = c.flush(30s);
  CHECK_MESSAGE(flushed.ok(), flushed.to_string() << " / " << c.stats().last_error);
  CHECK(server_keys(s) == std::multiset<std::string>(good.begin(), good.end()));
  auto dead = c.dead_letters(10);
  REQUIRE(dead.size() == 1);
  CHECK(json::parse(dead[0].event_json)["idempotency_key"] == "kbad");
  auto st = c.stats();
  CHECK(st.pending == 0);
  CHECK(st.dead_letters == 1);
  CHECK(c.close(5s).ok());
  Client again = open_client(offline(mnt + "/root"));
  CHECK(again.stats().pending == 0);
  CHECK(again.stats().dead_letters == 1);
}

TEST_CASE("buffered durability on a full disk: track refuses once a small stage waits, nothing acknowledged lost") {
  if (geteuid() != 0) {
    MESSAGE("skipped: mounting a small tmpfs needs root");
    return;
  }
  testing::TempDir dir;
  std::string mnt = dir.sub("mnt");
  Tmpfs tmpfs(mnt, "16m");
  if (!tmpfs.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs here: " << tmpfs.error());
    return;
  }
  const std::string root = mnt + "/root";
  std::atomic<int> stage_errors{0};
  Options o = offline(root, Durability::kBuffered);
  o.disk_cap_bytes = 0;
  o.log = [&](LogLevel, const std::string& m) {
    if (m.find("staged events") != std::string::npos && m.find("again") == std::string::npos) {
      ++stage_errors;
    }
  };
  Client c = open_client(o);
  const std::string filler = mnt + "/filler";
  write_filler(filler, 1u << 30);  // until the disk is full
  std::vector<std::string> acked;
  Status refused;
  for (int i = 0; i < 20000 && refused.ok(); ++i) {
    std::string k;
    Status st = c.track(event("agent-1", i, 200), &k);
    if (st.ok()) {
      acked.push_back(k);
    } else {
      refused = st;
    }
  }
  REQUIRE_MESSAGE(!refused.ok(), "track() acknowledged 20,000 events into memory on a full disk");
  MESSAGE("refused after " << acked.size() << " events: " << refused.to_string());
  CHECK(refused.code() == Status::Code::kStorage);
  // The stage of 1,000 and what was staged while the first write was failing: how many that
  // is depends on how long that write took (seconds on a loaded machine), so only its order
  // is checked; once the failure is known, the refusal is immediate (below).
  CHECK(acked.size() < 20000);
  CHECK_MESSAGE(refused.message().find("space") != std::string::npos, refused.message());
  for (int i = 0; i < 200; ++i) CHECK_FALSE(c.track(event("agent-1", i, 200)).ok());
  CHECK_MESSAGE(stage_errors.load() == 1, stage_errors.load() << " log lines for one failing state");
  // Space comes back: what waited is written, and tracking goes on.
  REQUIRE(fs::remove(filler));
  std::string k;
  Status again;
  REQUIRE_MESSAGE(testing::wait_until([&] { return (again = c.track(event("agent-1", 1), &k)).ok(); }, 20s),
                  again.to_string());
  acked.push_back(k);
  for (int i = 0; i < 10; ++i) {
    std::string k;
    REQUIRE(c.track(event("agent-1", i), &k).ok());
    acked.push_back(k);
  }
  Status closed = c.close(0ms);
  CHECK_MESSAGE(closed.code() == Status::Code::kTimeout, closed.to_string());
  auto all = keys_on_disk(root);
  CHECK(all == std::multiset<std::string>(acked.begin(), acked.end()));
}

TEST_SUITE_END();

// =========================================================================================
TEST_SUITE_BEGIN("reliability.corrupt");

namespace {

std::vector<fs::path> files_named(const std::string& folder, const std::string& prefix,
                                  const std::string& suffix = "") {
  std::vector<fs::path> out;
  for (const auto& f : fs::directory_iterator(folder)) {
    std::string name = f.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(f.path());
    }
  }
  return out;
}

fs::path largest(const std::vector<fs::path>& files) {
  fs::path best;
  std::uintmax_t size = 0;
  for (const auto& f : files) {
    if (best.empty() || fs::file_size(f) > size) {
      best = f;
      size = fs::file_size(f);
    }
  }
  return best;
}

// A folder RocksDB cannot open: a clear kStorage error that names the folder and the way
// out, the folder untouched; with set_aside_corrupt_buffer it is moved aside, the client
// starts fresh and tracks.
void expect_refused_then_set_aside(const std::string& root, const std::string& folder) {
  auto c = Client::open(offline(root));
  REQUIRE_FALSE(c.ok());
  MESSAGE("open: ", c.status().to_string());
  CHECK(c.status().code() == Status::Code::kStorage);
  CHECK(c.status().message().find(folder) != std::string::npos);
  CHECK(c.status().message().find("set_aside_corrupt_buffer") != std::string::npos);
  CHECK(fs::exists(folder));
  CHECK(buffer_folders(root).size() == 1);  // the failed open left nothing of its own

  Options o = offline(root);
  o.set_aside_corrupt_buffer = true;
  std::string logged;
  o.log = [&](LogLevel, const std::string& m) { logged += m + "\n"; };
  Client d = open_client(o);
  CHECK_FALSE(fs::exists(folder));
  CHECK(count_prefixed(root, "corrupt-") == 1);
  CHECK(logged.find("moved to") != std::string::npos);
  CHECK(d.stats().pending == 0);
  CHECK(d.track(event("agent-1", 1)).ok());
  CHECK(d.close(0ms).code() == Status::Code::kTimeout);
  // The set-aside folder stays as it is; later opens leave it alone.
  Client e = open_client(offline(root));
  CHECK(e.stats().pending == 1);
  CHECK(count_prefixed(root, "corrupt-") == 1);
}

}  // namespace

TEST_CASE("garbage CURRENT: a clear error, or set aside and a fresh start") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 20, &keys);
  std::ofstream(folder + "/CURRENT", std::ios::trunc) << "\x01\x02garbage\xff";
  expect_refused_then_set_aside(root.path(), folder);
}

TEST_CASE("missing MANIFEST: a clear error, or set aside and a fresh start") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 20, &keys);
  auto manifests = files_named(folder, "MANIFEST-");
  REQUIRE(!manifests.empty());
  for (const auto& m : manifests) fs::remove(m);
  expect_refused_then_set_aside(root.path(), folder);
}

TEST_CASE("truncated MANIFEST: a clear error, or set aside and a fresh start") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 20, &keys);
  auto manifest = largest(files_named(folder, "MANIFEST-"));
  REQUIRE(!manifest.empty());
  fs::resize_file(manifest, fs::file_size(manifest) / 3);
  {
    // Where the cut falls decides whether RocksDB can still read the MANIFEST (a cut at the
    // end of a record leaves a shorter, valid one). Readable: nothing may be lost.
    auto c = Client::open(offline(root.path()));
    if (c.ok()) {
      MESSAGE("the cut MANIFEST was still readable; pending: ", c->stats().pending);
      CHECK(c->stats().pending == keys.size());
      return;
    }
  }
  expect_refused_then_set_aside(root.path(), folder);
}

TEST_CASE("a truncated write-ahead log: never a crash; what survives is a prefix, intact") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 200, &keys);
  auto wal = largest(files_named(folder, "", ".log"));
  REQUIRE(!wal.empty());
  REQUIRE(fs::file_size(wal) > 1000);
  fs::resize_file(wal, fs::file_size(wal) / 2);
  Options o = offline(root.path());
  std::string logged;
  o.log = [&](LogLevel, const std::string& m) { logged += m + "\n"; };
  auto c = Client::open(o);
  if (!c.ok()) {
    MESSAGE("open: ", c.status().to_string());
    CHECK(c.status().code() == Status::Code::kStorage);
    return;
  }
  std::uint64_t adopted = c->stats().adopted;
  MESSAGE("a write-ahead log cut in half: open succeeded and adopted " << adopted
          << " of 200 events; logged: " << (logged.empty() ? "nothing" : logged));
  CHECK(adopted < 200);
  CHECK(c->close(0ms).code() != Status::Code::kOk);
  auto on_disk = keys_on_disk(root.path());
  CHECK(on_disk.size() == adopted);
  // The events that survive are the oldest ones, each intact (keys_on_disk parses them).
  for (std::size_t i = 0; i < adopted && i < keys.size(); ++i) CHECK(on_disk.count(keys[i]) == 1);
}

TEST_CASE("garbage in the middle of the write-ahead log: never a crash; the rest is reported") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 200, &keys);
  auto wal = largest(files_named(folder, "", ".log"));
  REQUIRE(!wal.empty());
  auto size = fs::file_size(wal);
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    std::string junk(64, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  Options o = offline(root.path());
  std::string logged;
  o.log = [&](LogLevel, const std::string& m) { logged += m + "\n"; };
  auto c = Client::open(o);
  if (!c.ok()) {
    MESSAGE("open: ", c.status().to_string());
    CHECK(c.status().code() == Status::Code::kStorage);
    return;
  }
  std::uint64_t adopted = c->stats().adopted;
  MESSAGE("64 garbage bytes in the middle of the write-ahead log: open succeeded and adopted "
          << adopted << " of 200 events; logged: " << (logged.empty() ? "nothing" : logged));
  CHECK(adopted <= 200);
  CHECK(c->close(0ms).code() != Status::Code::kOk);
  auto on_disk = keys_on_disk(root.path());
  for (const auto& k : on_disk) CHECK(std::find(keys.begin(), keys.end(), k) != keys.end());
}

TEST_CASE("garbage files beside a good buffer, and a folder of junk: ignored, nothing lost") {
  testing::TempDir root;
  std::vector<std::string> keys;
  std::string folder = folder_with_events(root.path(), 50, &keys);
  std::ofstream(folder + "/000999.sst") << std::string(4096, '\x42');
  std::ofstream(folder + "/junk.bin") << "not a rocksdb file";
  fs::create_directories(root.sub("junk-folder"));
  std::ofstream(root.sub("junk-folder") + "/CURRENT") << "MANIFEST-000001\n";
  std::ofstream(root.sub("junk-folder") + "/agentburn.lockx") << "x";
  std::ofstream(root.sub("stray-file")) << "a file, not a folder";
  {
    auto c = Client::open(offline(root.path()));
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    CHECK(c->stats().adopted == 50);
    CHECK(c->track(event("agent-1", 1)).ok());
  }
  CHECK(fs::exists(root.sub("junk-folder")));  // not ours: left alone
  fs::remove_all(root.sub("junk-folder"));
  auto on_disk = keys_on_disk(root.path());
  CHECK(on_disk.size() == 51);
  for (const auto& k : keys) CHECK(on_disk.count(k) == 1);
}

// What a process killed inside Client::open leaves behind (the crash harness finds these):
// its folder is renamed into place, locked, before RocksDB has created the database in it.
// Such a folder holds no events; it must not stop the next process from opening the root.
TEST_CASE("a folder left by a process killed before its database existed does not block the root") {
  testing::TempDir root;
  std::string folder = root.sub("p999999-000000000001");
  fs::create_directories(folder);
  std::ofstream(folder + "/agentburn.lock");
  std::ofstream(folder + "/LOCK");
  auto c = Client::open(offline(root.path()));
  CHECK_MESSAGE(c.ok(), "a half-made folder (lock file only) blocks every open: " << c.status().to_string());
  if (c.ok()) {
    CHECK(c->track(event("agent-1", 1)).ok());
    CHECK(count_prefixed(root.path(), "corrupt-") == 0);
  }
}

TEST_CASE("a folder left by a process killed while RocksDB created its column families does not block the root") {
  testing::TempDir root;
  std::string folder = root.sub("p999999-000000000002");
  fs::create_directories(folder);
  std::ofstream(folder + "/agentburn.lock");
  {
    // The state DB::Open leaves when killed after CURRENT exists and before the library's
    // column families ("dead", "meta") are created.
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(o, folder, &db).ok());
    delete db;
  }
  auto c = Client::open(offline(root.path()));
  CHECK_MESSAGE(c.ok(), "a half-made folder (no column families) blocks every open: " << c.status().to_string());
  if (c.ok()) {
    CHECK(c->track(event("agent-1", 1)).ok());
    CHECK(count_prefixed(root.path(), "corrupt-") == 0);
  }
  // Each refused open must not leave more behind: count what the folder holds now.
  if (fs::exists(folder)) {
    MESSAGE("files in the half-made folder after the open: ",
            std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
  }
}

TEST_SUITE_END();

// =========================================================================================
TEST_SUITE_BEGIN("reliability.crash");

// flush() writes the stage before it waits; the stage writer thread may be writing another
// part of the stage at that moment. A SIGKILL right after flush() returns must find every
// event tracked before the call on disk.
TEST_CASE("buffered: a SIGKILL right after flush() returns keeps every event tracked before it") {
  const int kRounds = 25;
  int rounds_with_loss = 0;
  std::size_t total_lost = 0, total_before = 0;
  for (int round = 0; round < kRounds; ++round) {
    testing::TempDir root;
    Child child = fork_child([&](int fd) {
      Options o = offline(root.path(), Durability::kBuffered);
      o.buffered_flush_ms = 1;
      auto c = Client::open(o);
      if (!c.ok()) return 2;
      std::atomic<int> tracked{0};
      std::atomic<bool> stop{false};
      std::vector<std::thread> ts;
      for (int t = 0; t < 3; ++t) {
        ts.emplace_back([&, t] {
          for (int i = 0; !stop; ++i) {
            std::string k;
            if (!c->track(event("agent-1", t * 1000000 + i), &k).ok()) _exit(3);
            if (!write_all(fd, "K " + k + "\n")) _exit(4);
            tracked.fetch_add(1);
          }
        });
      }
      // Not a wait for the writer: a point in the stream at which to flush, varied per round.
      while (tracked.load() < 2000 + 300 * round) std::this_thread::yield();
      if (!write_all(fd, "F\n")) _exit(4);
      (void)c->flush(0ms);
      kill(getpid(), SIGKILL);
      return 0;
    });
    std::string out;
    int code = finish_child(child, &out);
    REQUIRE(code == 128 + SIGKILL);
    std::vector<std::string> before;
    for (const auto& line : lines_of(out)) {
      if (line == "F") break;
      if (line.rfind("K ", 0) == 0) before.push_back(line.substr(2));
    }
    REQUIRE(before.size() >= 2000);
    auto on_disk = keys_on_disk(root.path());
    std::size_t lost = 0, first_lost = before.size(), last_lost = 0;
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (on_disk.count(before[i])) continue;
      ++lost;
      first_lost = std::min(first_lost, i);
      last_lost = i;
    }
    if (lost) {
      MESSAGE("round " << round << ": " << lost << " of the " << before.size()
                       << " events tracked before flush() are not on disk (reported as #"
                       << first_lost + 1 << " to #" << last_lost + 1 << "); " << on_disk.size()
                       << " events on disk in all");
    }
    total_before += before.size();
    total_lost += lost;
    rounds_with_loss += lost > 0;
  }
  MESSAGE(kRounds, " rounds, ", total_before, " events tracked before flush(), ", total_lost,
          " of them lost in ", rounds_with_loss, " rounds");
  CHECK(total_lost == 0);
}

// Several processes die with events on disk; then three start at once on the same root, two
// of them while a fourth keeps tracking: each dead folder is adopted by exactly one, and no
// event is sent twice.
TEST_CASE("dead folders adopted by processes starting at once: nothing lost, nothing sent twice") {
  testing::TempDir root;
  testing::TestServer s({"--enable-fault-injection"});
  std::string agent;
  {
    Client c = open_client(online(root.path(), s.process.url()));
    agent = register_agent(c, "adoption");
  }
  std::multiset<std::string> want;
  // Four processes track offline at the same time (none can adopt another's folder), then
  // all four are killed with SIGKILL, their events on disk.
  std::vector<Child> dead;
  // Children still running when a REQUIRE ends the test are killed here.
  struct KillLeft {
    std::vector<Child>* children;
    ~KillLeft() {
      for (auto& c : *children) {
        if (c.fd < 0) continue;
        kill(c.pid, SIGKILL);
        int status = 0;
        waitpid(c.pid, &status, 0);
        close(c.fd);
      }
    }
  } kill_left{&dead};
  for (int p = 0; p < 4; ++p) {
    dead.push_back(fork_child([&](int fd) {
      auto c = Client::open(offline(root.path()));
      if (!c.ok()) {
        (void)write_all(fd, "E " + c.status().to_string() + "\n");
        return 2;
      }
      std::string keys;
      for (int i = 0; i < 1500; ++i) {
        std::string k;
        if (!c->track(event(agent, p * 10000 + i), &k).ok()) return 3;
        keys += k + "\n";
      }
      if (!write_all(fd, keys + "R\n")) return 4;
      pause();  // until killed
      return 0;
    }));
  }
  // All four have opened and tracked before any dies.
  std::vector<std::string> outs(dead.size());
  for (std::size_t i = 0; i < dead.size(); ++i) {
    bool ready = read_until(dead[i], "R\n", &outs[i]);
    REQUIRE_MESSAGE(ready, "process " << i << " did not get ready: " << outs[i].substr(0, 500));
  }
  for (std::size_t i = 0; i < dead.size(); ++i) {
    kill(dead[i].pid, SIGKILL);
    CHECK(finish_child(dead[i], nullptr) == 128 + SIGKILL);
    auto keys = lines_of(outs[i]);
    keys.pop_back();  // "R"
    CHECK(keys.size() == 1500);
    want.insert(keys.begin(), keys.end());
  }
  REQUIRE(buffer_folders(root.path()).size() == 4);
  // Three start at once; each tracks its own events too and delivers.
  std::vector<Child> live;
  KillLeft kill_live{&live};
  for (int p = 0; p < 3; ++p) {
    live.push_back(fork_child([&](int fd) {
      auto c = Client::open(online(root.path(), s.process.url()));
      if (!c.ok()) {
        (void)write_all(fd, "E " + c.status().to_string() + "\n");
        return 2;
      }
      std::string keys;
      for (int i = 0; i < 300; ++i) {
        std::string k;
        if (!c->track(event(agent, 100000 + p * 1000 + i), &k).ok()) return 3;
        keys += k + "\n";
      }
      if (!c->flush(60s).ok()) return 4;
      if (!c->close(5s).ok()) return 5;
      return write_all(fd, keys) ? 0 : 6;
    }));
  }
  bool all_delivered = true;
  for (auto& child : live) {
    std::string out;
    int code = finish_child(child, &out);
    CHECK_MESSAGE(code == 0, out.substr(0, 500));
    all_delivered = all_delivered && code == 0;
    auto keys = lines_of(out);
    if (code == 0) CHECK(keys.size() == 300);
    if (code == 0) want.insert(keys.begin(), keys.end());
  }
  REQUIRE(all_delivered);
  // Whatever a process did not adopt (it opened before another died) goes with a last one.
  {
    Client c = open_client(online(root.path(), s.process.url()));
    Status f = c.flush(60s);
    CHECK_MESSAGE(f.ok(), f.to_string());
  }
  CHECK(server_keys(s) == want);
  auto st = s.stats();
  CHECK(st["duplicates"] == 0);
  CHECK(st["events_received"] == st["events_stored"]);
  CHECK(testing::count_folders(root.path()) == 0);
}

TEST_SUITE_END();

// =========================================================================================
TEST_SUITE_BEGIN("reliability.stress");

TEST_CASE("threads track while others flush, read stats and dead letters, and one closes") {
  testing::TestServer s;
  testing::TempDir root;
  Client c = open_client(online(root.path(), s.process.url()));
  std::string agent = register_agent(c, "stress");
  const int kTrackers = 6, kEach = 1500;  // the server answers at most 10,000 events
  std::atomic<int> tracked{0};
  std::atomic<bool> stop{false};         // ends every thread (after close, or to unblock)
  std::atomic<int> bad_status{0}, ok_after_closed{0};
  std::mutex keys_mu;
  std::vector<std::string> keys;
  std::string bad_example;
  std::vector<std::thread> ts;
  for (int t = 0; t < kTrackers; ++t) {
    ts.emplace_back([&, t] {
      bool seen_closed = false;
      std::vector<std::string> mine;
      for (int i = 0; !stop; ++i) {
        std::string k;
        // Past kEach events a thread keeps calling in, with flush(0ms) instead, so that the
        // buffer stays small enough to deliver afterwards.
        Status st = i < kEach ? c.track(event(agent, t * 1000000 + i), &k) : c.flush(0ms);
        if (i >= kEach) {
          if (st.code() == Status::Code::kTimeout || st.ok()) continue;
          if (st.code() != Status::Code::kClosed) bad_status.fetch_add(1);
          break;
        }
        if (st.ok()) {
          if (seen_closed) ok_after_closed.fetch_add(1);
          mine.push_back(k);
          tracked.fetch_add(1);
        } else if (st.code() == Status::Code::kClosed) {
          if (seen_closed) break;  // a second kClosed in a row: done
          seen_closed = true;
        } else {
          bad_status.fetch_add(1);
          std::lock_guard<std::mutex> g(keys_mu);
          bad_example = st.to_string();
        }
      }
      std::lock_guard<std::mutex> g(keys_mu);
      keys.insert(keys.end(), mine.begin(), mine.end());
    });
  }
  std::atomic<int> other_calls{0};
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop) {
        Status f = c.flush(std::chrono::milliseconds(rng() % 20));
        if (f.code() == Status::Code::kClosed) break;
        if (!f.ok() && f.code() != Status::Code::kTimeout) bad_status.fetch_add(1);
        other_calls.fetch_add(1);
      }
    });
  }
  ts.emplace_back([&] {
    while (!stop) {
      (void)c.stats();
      (void)c.dead_letters(10);
      other_calls.fetch_add(1);
    }
  });
  // Close once enough is tracked, from a thread of its own.
  REQUIRE(testing::wait_until([&] { return tracked.load() >= 3000; }, 60s));
  std::atomic<bool> close_returned{false};
  Status closed;
  std::thread closer([&] {
    closed = c.close(2s);
    close_returned = true;
  });
  // close(2s) must return; 30 s is a hang, not a slow machine.
  bool in_time = testing::wait_until([&] { return close_returned.load(); }, 30s);
  CHECK_MESSAGE(in_time, "close(2s) did not return within 30 s while threads kept calling in");
  stop = true;  // unblocks a close() that starved, and ends the helpers
  closer.join();
  for (auto& t : ts) t.join();
  MESSAGE("tracked ", tracked.load(), " events and made ", other_calls.load(),
          " other calls; close: ", closed.to_string());
  CHECK((closed.ok() || closed.code() == Status::Code::kTimeout));
  CHECK_MESSAGE(bad_status == 0, bad_example);
  CHECK(ok_after_closed == 0);
  CHECK(c.track(event(agent, 1)).code() == Status::Code::kClosed);
  CHECK(c.flush(1s).code() == Status::Code::kClosed);
  CHECK(c.close(1s).code() == Status::Code::kClosed);
  CHECK(c.dead_letters(10).empty());
  CHECK(c.stats().pending == 0);
  // Everything accepted is delivered, once, by the next client.
  {
    Client d = open_client(online(root.path(), s.process.url()));
    Status f = d.flush(60s);
    REQUIRE_MESSAGE(f.ok(), f.to_string());
  }
  auto stored = server_keys(s);
  std::size_t missing = 0, twice = 0;
  for (const auto& k : keys) {
    auto n = stored.count(k);
    missing += n == 0;
    twice += n > 1;
  }
  CHECK(missing == 0);
  CHECK(twice == 0);
  CHECK(stored.size() == keys.size());
}

// "No call blocks past its timeout": close(100ms) must not wait for another thread's flush()
// to give up. Decided by what the flush() answers, not by time: close() ends it (kClosed)
// long before its own 20 s, with a server that is not there, could pass (kTimeout).
TEST_CASE("close() returns within its own timeout while another thread waits in flush()") {
  testing::TempDir root;
  Options o = online(root.path(), "http://127.0.0.1:1");  // nothing listens there
  Client c = open_client(o);
  REQUIRE(c.track(event("agent-1", 1)).ok());
  std::atomic<bool> flushing{false};
  Status flushed;
  std::thread f([&] {
    flushing = true;
    flushed = c.flush(20s);
  });
  REQUIRE(testing::wait_until([&] { return flushing.load(); }, 10s));
  Status closed = c.close(100ms);
  f.join();
  CHECK(closed.code() == Status::Code::kTimeout);
  CHECK_MESSAGE(flushed.code() == Status::Code::kClosed,
                "the other thread's flush(20s) was not ended by close(): " << flushed.to_string());
}

TEST_CASE("200 open, track, close cycles on one root: folders stay bounded, nothing lost") {
  testing::TempDir root;
  std::vector<std::string> keys;
  const Durability modes[] = {Durability::kProcess, Durability::kBuffered, Durability::kSystem};
  int max_folders = 0;
  for (int cycle = 0; cycle < 200; ++cycle) {
    Client c = open_client(offline(root.path(), modes[cycle % 3]));
    for (int i = 0; i < 5; ++i) {
      std::string k;
      REQUIRE(c.track(event("agent-1", cycle * 10 + i), &k).ok());
      keys.push_back(k);
    }
    REQUIRE(c.stats().pending == keys.size());
    REQUIRE(c.close(0ms).code() == Status::Code::kTimeout);
    max_folders = std::max(max_folders, testing::count_folders(root.path()));
  }
  CHECK(max_folders == 1);
  CHECK(count_prefixed(root.path(), ".") == 0);
  CHECK(count_prefixed(root.path(), "corrupt-") == 0);
  CHECK(keys_on_disk(root.path()) == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("clients of many threads open and close on one root at once: every event kept once") {
  testing::TempDir root;
  const int kThreads = 6, kCycles = 25;
  std::mutex mu;
  std::vector<std::string> keys;
  std::vector<std::string> errors;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int cycle = 0; cycle < kCycles; ++cycle) {
        auto c = Client::open(offline(root.path()));
        if (!c.ok()) {
          std::lock_guard<std::mutex> g(mu);
          errors.push_back(c.status().to_string());
          continue;
        }
        std::vector<std::string> mine;
        for (int i = 0; i < 20; ++i) {
          std::string k;
          Status s = c->track(event("agent-1", (t * kCycles + cycle) * 100 + i), &k);
          if (!s.ok()) {
            std::lock_guard<std::mutex> g(mu);
            errors.push_back(s.to_string());
            continue;
          }
          mine.push_back(k);
        }
        Status s = c->close(0ms);
        std::lock_guard<std::mutex> g(mu);
        if (!s.ok() && s.code() != Status::Code::kTimeout) errors.push_back(s.to_string());
        keys.insert(keys.end(), mine.begin(), mine.end());
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK_MESSAGE(errors.empty(), errors.size() << " errors, e.g. " << (errors.empty() ? "" : errors[0]));
  CHECK(testing::count_folders(root.path()) <= kThreads);
  CHECK(keys_on_disk(root.path()) == std::multiset<std::string>(keys.begin(), keys.end()));
  CHECK(testing::count_folders(root.path()) == 1);  // the reader's, holding them all
}

TEST_CASE("open and close with a server, 100 times: every event delivered once") {
  testing::TestServer s({"--enable-fault-injection"});
  testing::TempDir root;
  std::multiset<std::string> want;
  std::string agent;
  for (int cycle = 0; cycle < 100; ++cycle) {
    Client c = open_client(online(root.path(), s.process.url()));
    if (agent.empty()) agent = register_agent(c, "cycles");
    for (int i = 0; i < 10; ++i) {
      std::string k;
      REQUIRE(c.track(event(agent, cycle * 100 + i), &k).ok());
      want.insert(k);
    }
    // Closing at once: whatever is in flight is aborted and stays for the next client.
    Status closed = c.close(0ms);
    REQUIRE((closed.ok() || closed.code() == Status::Code::kTimeout));
    REQUIRE(testing::count_folders(root.path()) <= 1);
  }
  {
    Client c = open_client(online(root.path(), s.process.url()));
    Status f = c.flush(60s);
    REQUIRE_MESSAGE(f.ok(), f.to_string());
  }
  CHECK(server_keys(s) == want);
  CHECK(testing::count_folders(root.path()) == 0);
  MESSAGE("events sent again after an aborted transfer (absorbed by the server): ",
          s.stats()["duplicates"].get<int>());
}

TEST_SUITE_END();
