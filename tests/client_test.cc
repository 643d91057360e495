// The C++ Client offline: tracking, stats, close, reopening, options, and a process killed
// with SIGKILL right after track() returned.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agentburn/agentburn.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "store/buffer.hpp"
#include "support.hpp"
#include "support/clients.hpp"

using namespace agentburn;
using namespace std::chrono_literals;

namespace {

Options offline(const std::string& root, Durability d = Durability::kProcess) {
  Options o;
  o.buffer_root = root;
  o.durability = d;
  return o;
}

Event sample(int i) {
  Event e;
  e.agent_id = "agent-1";
  e.provider = "anthropic";
  e.operation = "llm_call";
  e.cost_usd = 0.001 * i;
  e.model = "claude-3.5-sonnet";
  e.input_tokens = i;
  e.task_id = "task-" + std::to_string(i % 7);
  return e;
}

}  // namespace

TEST_CASE("offline: events accumulate on disk, stats show them, close keeps them") {
  testing::TempDir root;
  std::vector<std::string> keys;
  {
    auto c = Client::open(offline(root.path()));
    REQUIRE_MESSAGE(c.ok(), c.status().to_string());
    for (int i = 0; i < 10; ++i) {
      std::string key;
      REQUIRE(c->track(sample(i), &key).ok());
      CHECK(key.size() == 36);
      keys.push_back(key);
    }
    std::string key;
    Status s = c->track_json(
        R"({"agentId":"agent-1","provider":"e2b","operation":"compute","costUsd":0.02,"idempotency_key":"mine-1"})",
        &key);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    CHECK(key == "mine-1");
    keys.push_back(key);
    auto st = c->stats();
    CHECK(st.pending == 11);
    CHECK(st.pending_bytes > 11 * 100);
    CHECK(st.rejected == 0);
    CHECK(c->flush(0ms).code() == Status::Code::kTimeout);
    Status closed = c->close(100ms);
    CHECK(closed.code() == Status::Code::kTimeout);
    CHECK(closed.message().find("11 events stay on disk") != std::string::npos);
    CHECK(c->track(sample(1)).code() == Status::Code::kClosed);
    CHECK(c->close(0ms).code() == Status::Code::kClosed);
    CHECK(c->stats().pending == 0);
  }
  auto on_disk = testing::keys_on_disk(root.path());
  CHECK(on_disk == std::multiset<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("invalid events are refused with the field named, and counted") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Event e = sample(1);
  e.operation = "llm";
  Status s = c->track(e);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().rfind("operation:", 0) == 0);
  s = c->track_json(R"({"agentId":"a","provider":"p","operation":"compute","costUsd":1,"inputToken":3})");
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find("did you mean \"inputTokens\"") != std::string::npos);
  // The largest legal event: every limit at once is still accepted.
  e = sample(1);
  e.metadata_json = "{\"big\":\"" + std::string(16000, 'x') + "\"}";
  e.task_id = std::string(256, 't');
  e.workflow_id = std::string(256, 'w');
  s = c->track(e);
  CHECK_MESSAGE(s.ok(), s.to_string());
  e.metadata_json = "{\"big\":\"" + std::string(16400, 'x') + "\"}";
  CHECK(c->track(e).message().rfind("metadata:", 0) == 0);
  auto st = c->stats();
  CHECK(st.rejected == 3);
  CHECK(st.pending == 1);
}

TEST_CASE("options are checked and each bad one is named") {
  testing::TempDir root;
  auto o = offline(root.path());
  o.batch_max_events = 1001;
  auto c = Client::open(o);
  CHECK(c.status().code() == Status::Code::kInvalid);
  CHECK(c.status().message().rfind("batch_max_events:", 0) == 0);
  o = offline("relative/path");
  c = Client::open(o);
  CHECK(c.status().message().rfind("buffer_root:", 0) == 0);
  o = offline(root.path() + "/file");
  { FILE* f = std::fopen((root.path() + "/file").c_str(), "w"); std::fclose(f); }
  c = Client::open(o);
  CHECK(c.status().code() == Status::Code::kStorage);
}

TEST_CASE("the default buffer root follows XDG_DATA_HOME") {
  testing::TempDir home;
  const char* old = std::getenv("XDG_DATA_HOME");
  std::string saved = old ? old : "";
  setenv("XDG_DATA_HOME", home.path().c_str(), 1);
  {
    auto c = Client::open(Options());
    REQUIRE(c.ok());
    REQUIRE(c->track(sample(1)).ok());
    CHECK(testing::count_folders(home.path() + "/agentburn/buffer") == 1);
    CHECK(c->close(0ms).code() == Status::Code::kTimeout);
  }
  if (old) setenv("XDG_DATA_HOME", saved.c_str(), 1); else unsetenv("XDG_DATA_HOME");
}

TEST_CASE("a default buffer root that cannot be made says it is the default and how to choose another") {
  testing::TempDir home;
  std::string blocked = home.sub("not-a-folder");
  std::ofstream(blocked) << "a file where a folder would go";
  const char* old = std::getenv("XDG_DATA_HOME");
  std::string saved = old ? old : "";
  setenv("XDG_DATA_HOME", blocked.c_str(), 1);
  auto c = Client::open(Options());
  if (old) setenv("XDG_DATA_HOME", saved.c_str(), 1); else unsetenv("XDG_DATA_HOME");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == Status::Code::kStorage);
  CHECK_MESSAGE(c.status().message().find(blocked + "/agentburn/buffer is the default buffer root") !=
                    std::string::npos,
                c.status().message());
  CHECK(c.status().message().find("set buffer_root") != std::string::npos);
}

TEST_CASE("many threads track at once, in every durability mode") {
  for (auto d : {Durability::kBuffered, Durability::kProcess, Durability::kSystem}) {
    testing::TempDir root;
    const int kThreads = 8, kEach = d == Durability::kSystem ? 100 : 1000;
    std::vector<std::string> keys[kThreads];
    {
      auto c = Client::open(offline(root.path(), d));
      REQUIRE(c.ok());
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreads; ++t) {
        ts.emplace_back([&, t] {
          for (int i = 0; i < kEach; ++i) {
            std::string k;
            REQUIRE(c->track(sample(i), &k).ok());
            keys[t].push_back(k);
          }
        });
      }
      for (auto& t : ts) t.join();
      CHECK(c->stats().pending == kThreads * kEach);
    }
    std::multiset<std::string> want;
    for (auto& v : keys) want.insert(v.begin(), v.end());
    CHECK(testing::keys_on_disk(root.path()) == want);
  }
}

// A child tracks events and reports each key on a pipe as soon as track() returned OK; the
// parent kills it with SIGKILL mid-stream. Every reported key must be on disk.
static void kill_after_track(Durability d) {
  testing::TempDir root;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    auto c = Client::open(offline(root.path(), d));
    if (!c.ok()) _exit(2);
    for (int i = 0;; ++i) {
      std::string key;
      if (!c->track(sample(i), &key).ok()) _exit(3);
      key.push_back('\n');
      if (write(fds[1], key.data(), key.size()) != static_cast<ssize_t>(key.size())) _exit(4);
    }
  }
  close(fds[1]);
  std::set<std::string> acked;
  std::string partial;
  char buf[4096];
  bool killed = false;
  while (true) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      acked.insert(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
    if (!killed && acked.size() >= 300) {
      kill(child, SIGKILL);
      killed = true;
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  close(fds[0]);
  auto on_disk = testing::keys_on_disk(root.path());
  std::size_t missing = 0;
  for (const auto& k : acked) missing += on_disk.count(k) == 0;
  CHECK(missing == 0);
  CHECK(on_disk.size() >= acked.size());
  MESSAGE("acked ", acked.size(), ", on disk ", on_disk.size());
}

TEST_CASE("process durability: a SIGKILL right after track() loses nothing acknowledged") {
  kill_after_track(Durability::kProcess);
}

TEST_CASE("system durability: a SIGKILL right after track() loses nothing acknowledged") {
  kill_after_track(Durability::kSystem);
}

TEST_CASE("buffered durability: what flush() returned for survives a SIGKILL") {
  testing::TempDir root;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    auto c = Client::open(offline(root.path(), Durability::kBuffered));
    if (!c.ok()) _exit(2);
    for (int i = 0; i < 500; ++i) {
      if (!c->track(sample(i)).ok()) _exit(3);
    }
    (void)c->flush(0ms);  // writes the stage; kTimeout only says nothing was delivered
    if (write(fds[1], "x", 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  close(fds[1]);
  char x;
  REQUIRE(read(fds[0], &x, 1) == 1);
  kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  close(fds[0]);
  CHECK(testing::keys_on_disk(root.path()).size() == 500);
}

TEST_CASE("a moved-from client answers kClosed and a moved-to one works") {
  testing::TempDir root;
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Client a = std::move(c.value());
  Client b = std::move(a);
  CHECK(a.track(sample(1)).code() == Status::Code::kClosed);
  CHECK(b.track(sample(1)).ok());
}

TEST_CASE("fork: parent and child both keep working, each with its own buffer folder") {
  const int kChildEvents = 40000;
  testing::TempDir root;
  std::multiset<std::string> want;
  {
    auto c = Client::open(offline(root.path()));
    REQUIRE(c.ok());
    for (int i = 0; i < 10; ++i) {
      std::string k;
      REQUIRE(c->track(sample(i), &k).ok());
      want.insert(k);
    }
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      close(fds[0]);
      // Enough to fill several memtables: the child's database needs background threads of
      // its own to flush them (the parent's do not exist here).
      std::string keys;
      Event big = sample(100);
      big.metadata_json = "{\"pad\":\"" + std::string(400, 'p') + "\"}";
      for (int i = 0; i < kChildEvents; ++i) {
        std::string k;
        if (!c->track(big, &k).ok()) _exit(3);
        keys += k + "\n";
      }
      if (c->stats().pending != kChildEvents) _exit(4);  // its own folder: none of the parent's
      (void)c->close(0ms);
      if (write(fds[1], keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) _exit(5);
      _exit(0);
    }
    close(fds[1]);
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    for (std::size_t pos = 0, nl; (nl = got.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      want.insert(got.substr(pos, nl - pos));
    }
    for (int i = 0; i < 10; ++i) {
      std::string k;
      REQUIRE(c->track(sample(200 + i), &k).ok());
      want.insert(k);
    }
    CHECK(c->stats().pending == 20);
  }
  CHECK(want.size() == 20 + kChildEvents);
  CHECK(testing::keys_on_disk(root.path()) == want);
}

TEST_CASE("fork: a child does not keep its dead parent's folder locked") {
  testing::TempDir root;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t parent = fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    auto c = Client::open(offline(root.path()));
    if (!c.ok()) _exit(2);
    for (int i = 0; i < 5; ++i) {
      if (!c->track(sample(i)).ok()) _exit(3);
    }
    pid_t grandchild = fork();
    if (grandchild == 0) {
      close(fds[1]);
      char x;
      (void)read(fds[0], &x, 1);  // lives until the test closes the pipe
      _exit(0);
    }
    _exit(0);  // dies without closing its client
  }
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(parent, &status, 0) == parent);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(testing::keys_on_disk(root.path()).size() == 5);  // adopted while the grandchild lives
  close(fds[1]);
}

TEST_CASE("processes forked to register the same agents offline at once all get the same ids") {
  // Each child opens its own client on the root and registers the same names in the same
  // order, starting together; every name must end with one provisional id.
  const int kChildren = 4, kNames = 60;
  testing::TempDir root;
  int go[2];
  REQUIRE(pipe(go) == 0);
  std::vector<std::pair<pid_t, int>> children;
  for (int c = 0; c < kChildren; ++c) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(go[1]);
      close(out[0]);
      auto client = Client::open(offline(root.path()));
      if (!client.ok()) _exit(2);
      char x;
      if (read(go[0], &x, 1) != 0) _exit(3);  // all start when the pipe closes
      std::string ids;
      for (int i = 0; i < kNames; ++i) {
        Agent a;
        a.name = "agent-" + std::to_string(i);
        a.project_id = "race";
        auto id = client->register_agent(a);
        if (!id.ok()) _exit(4);
        ids += id.value() + "\n";
      }
      if (write(out[1], ids.data(), ids.size()) != static_cast<ssize_t>(ids.size())) _exit(5);
      _exit(0);
    }
    close(out[1]);
    children.emplace_back(pid, out[0]);
  }
  close(go[0]);
  close(go[1]);
  std::vector<std::vector<std::string>> got;
  for (auto [pid, fd] : children) {
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    close(fd);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    std::vector<std::string> ids;
    for (std::size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      ids.push_back(text.substr(pos, nl - pos));
    }
    REQUIRE(ids.size() == static_cast<std::size_t>(kNames));
    got.push_back(ids);
  }
  int split = 0;
  for (int i = 0; i < kNames; ++i) {
    std::set<std::string> ids;
    for (const auto& g : got) ids.insert(g[static_cast<std::size_t>(i)]);
    split += ids.size() > 1;
  }
  CHECK_MESSAGE(split == 0, split << " of " << kNames << " names got more than one id");
  // And the registry holds each name once, with the id every process got.
  std::ifstream f(root.sub("agents.json"));
  auto doc = nlohmann::json::parse(f);
  CHECK(doc["agents"].size() == static_cast<std::size_t>(kNames));
  for (const auto& e : doc["agents"]) {
    int i = std::stoi(e["name"].get<std::string>().substr(6));
    CHECK(e["provisional"] == got[0][static_cast<std::size_t>(i)]);
  }
}

TEST_CASE("an agents.json that cannot be read is an error, never replaced") {
  testing::TempDir root;
  {
    std::ofstream f(root.sub("agents.json"));
    f << "{\"agents\": [ truncated";
  }
  auto c = Client::open(offline(root.path()));
  REQUIRE(c.ok());
  Agent a;
  a.name = "x";
  auto id = c->register_agent(a);
  REQUIRE_FALSE(id.ok());
  CHECK(id.status().code() == Status::Code::kStorage);
  CHECK_MESSAGE(id.status().message().find("agents.json") != std::string::npos, id.status().message());
  std::ifstream f(root.sub("agents.json"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(text == "{\"agents\": [ truncated");
}

TEST_CASE("fork: a child whose parent died keeps tracking, and leaves the parent's folder to others") {
  // The child inherits RocksDB's table of locked files, in which the parent's folder stays
  // locked for good: once the parent is dead, the child must not try to take that folder
  // over or adopt it (RocksDB refuses, "lock hold by current process").
  testing::TempDir root;
  int parent_done[2], result[2];
  REQUIRE(pipe(parent_done) == 0);
  REQUIRE(pipe(result) == 0);
  pid_t parent = fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    close(result[0]);
    auto c = Client::open(offline(root.path()));
    if (!c.ok()) _exit(2);
    for (int i = 0; i < 5; ++i) {
      if (!c->track(sample(i)).ok()) _exit(3);
    }
    pid_t child = fork();
    if (child == 0) {
      close(parent_done[1]);
      char x;
      (void)read(parent_done[0], &x, 1);  // until the parent is dead
      Status s = c->track(sample(100));
      std::string line = s.ok() ? "ok\n" : s.to_string() + "\n";
      if (s.ok()) (void)c->close(0ms);
      (void)!write(result[1], line.data(), line.size());
      _exit(0);
    }
    _exit(child > 0 ? 0 : 4);  // dies without closing its client
  }
  close(parent_done[0]);
  close(result[1]);
  int status = 0;
  REQUIRE(waitpid(parent, &status, 0) == parent);
  REQUIRE(WEXITSTATUS(status) == 0);
  close(parent_done[1]);  // the parent is dead: the child goes on
  std::string got;
  char buf[1024];
  for (ssize_t n; (n = read(result[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  close(result[0]);
  CHECK(got == "ok\n");
  CHECK(testing::keys_on_disk(root.path()).size() == 6);
}
