// What another local user can do through a buffer root, and what a careless option can do:
// the root and its folders must be the user's own, files in the root are never opened through
// a link, and an API key that would break the request's headers is refused.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <agentburn/agentburn.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "support.hpp"

using namespace agentburn;
namespace fs = std::filesystem;

namespace {

// A user id that is not this process's: changing a file's owner to it needs root.
constexpr uid_t kOtherUser = 65534;

Options offline(const std::string& root) {
  Options o;
  o.buffer_root = root;
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

Agent agent(const std::string& name) {
  Agent a;
  a.name = name;
  return a;
}

Event sample(const std::string& agent_id) {
  Event e;
  e.agent_id = agent_id;
  e.provider = "openai";
  e.operation = "llm_call";
  e.cost_usd = 0.5;
  return e;
}

// The log lines a client wrote, for the checks.
struct LogLines {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(LogLevel, const std::string&)> callback() {
    return [this](LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> g(mu);
      lines.push_back(m);
    };
  }
  bool has(const std::string& part) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& l : lines) {
      if (l.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

// A buffer folder with one event in it, made by a client on another root, moved into `root`
// under `name`: what another user could plant.
void plant_folder(const std::string& root, const std::string& name) {
  testing::TempDir elsewhere;
  std::string folder;
  {
    auto c = Client::open(offline(elsewhere.path()));
    REQUIRE(c.ok());
    auto tracked = c->track(sample("forged-agent"));
    REQUIRE_MESSAGE(tracked.ok(), tracked.message());
    c->close(std::chrono::milliseconds(0)).ok();
  }
  for (const auto& e : fs::directory_iterator(elsewhere.path())) {
    if (e.is_directory()) folder = e.path().string();
  }
  REQUIRE(!folder.empty());
  fs::rename(folder, root + "/" + name);
}

}  // namespace

TEST_SUITE_BEGIN("security");

TEST_CASE("a buffer root writable by other users is refused, naming the path and its mode") {
  testing::TempDir dir;
  std::string root = dir.sub("shared");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  REQUIRE(chmod(root.c_str(), 01777) == 0);  // as /tmp is
  auto c = Client::open(offline(root));
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == Status::Code::kStorage);
  CHECK_MESSAGE(c.status().message().find(root) != std::string::npos, c.status().message());
  CHECK_MESSAGE(c.status().message().find("writable by other users (mode 1777)") != std::string::npos,
                c.status().message());
  CHECK(fs::is_empty(root));  // nothing was written there

  REQUIRE(chmod(root.c_str(), 0770) == 0);  // group-writable: refused as well
  CHECK_FALSE(Client::open(offline(root)).ok());
  REQUIRE(chmod(root.c_str(), 0755) == 0);  // readable by others, writable by its owner only
  CHECK(Client::open(offline(root)).ok());
}

TEST_CASE("a buffer root made by the library is 0700") {
  testing::TempDir dir;
  std::string root = dir.sub("a/b/root");
  auto c = Client::open(offline(root));
  REQUIRE(c.ok());
  struct stat st;
  REQUIRE(stat(root.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
}

TEST_CASE("a buffer root owned by another user is refused, naming the owner") {
  testing::TempDir dir;
  std::string root = dir.sub("theirs");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  if (geteuid() == 0) {
    REQUIRE(chown(root.c_str(), kOtherUser, kOtherUser) == 0);
  } else {
    root = "/";  // root's, and not this user's
  }
  auto c = Client::open(offline(root));
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == Status::Code::kStorage);
  CHECK_MESSAGE(c.status().message().find("is owned by uid " + std::to_string(geteuid() == 0 ? kOtherUser : 0)) != std::string::npos,
                c.status().message());
  CHECK_MESSAGE(c.status().message().find(root) != std::string::npos, c.status().message());
}

TEST_CASE("a link planted as agents.json.tmp is never written through") {
  testing::TempDir dir;
  std::string root = dir.sub("root");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  std::string victim = dir.sub("victim.txt");
  write_file(victim, "precious");
  fs::create_symlink(victim, root + "/agents.json.tmp");
  auto c = Client::open(offline(root));
  REQUIRE(c.ok());
  auto id = c->register_agent(agent("planner"));
  REQUIRE_MESSAGE(id.ok(), id.status().message());
  CHECK(read_file(victim) == "precious");
  CHECK(read_file(root + "/agents.json").find(id.value()) != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(root + "/agents.json.tmp")));
}

TEST_CASE("links planted as agents.json or its lock are refused, and their targets untouched") {
  testing::TempDir dir;
  std::string root = dir.sub("root");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  std::string victim = dir.sub("victim.txt");
  for (const char* name : {"agents.json", "agents.json.lock"}) {
    CAPTURE(name);
    write_file(victim, "precious");
    fs::remove(root + "/agents.json");
    fs::remove(root + "/agents.json.lock");
    fs::create_symlink(victim, root + "/" + name);
    auto c = Client::open(offline(root));
    REQUIRE(c.ok());
    auto id = c->register_agent(agent("planner"));
    REQUIRE_FALSE(id.ok());
    CHECK(id.status().code() == Status::Code::kStorage);
    CHECK_MESSAGE(id.status().message().find("symbolic link") != std::string::npos,
                  id.status().message());
    CHECK(read_file(victim) == "precious");
  }
}

TEST_CASE("a folder open to other users is not adopted: its events are never sent") {
  testing::TempDir dir;
  std::string root = dir.sub("root");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  plant_folder(root, "p1-planted");
  // What another user's folder looks like after `chmod -R a+rwX`.
  for (const auto& e : fs::recursive_directory_iterator(root + "/p1-planted")) {
    fs::permissions(e.path(), fs::perms::all, fs::perm_options::add);
  }
  fs::permissions(root + "/p1-planted", fs::perms::all, fs::perm_options::add);
  LogLines log;
  Options o = offline(root);
  o.log = log.callback();
  auto c = Client::open(o);
  REQUIRE(c.ok());
  auto st = c->stats();
  CHECK(st.pending == 0);
  CHECK(fs::exists(root + "/p1-planted"));  // left where it is
  CHECK(log.has("left alone: " + root + "/p1-planted is open to other users (mode 0777)"));
}

TEST_CASE("a folder of another user is not adopted, nor a link to a folder") {
  testing::TempDir dir;
  std::string root = dir.sub("root");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  testing::TempDir outside;
  plant_folder(outside.path(), "p2-linked");
  fs::create_directory_symlink(outside.sub("p2-linked"), root + "/p2-linked");
  bool as_root = geteuid() == 0;
  if (as_root) {
    plant_folder(root, "p3-theirs");
    for (const auto& e : fs::recursive_directory_iterator(root + "/p3-theirs")) {
      REQUIRE(lchown(e.path().c_str(), kOtherUser, kOtherUser) == 0);
    }
    REQUIRE(chown((root + "/p3-theirs").c_str(), kOtherUser, kOtherUser) == 0);
  }
  LogLines log;
  Options o = offline(root);
  o.log = log.callback();
  auto c = Client::open(o);
  REQUIRE(c.ok());
  CHECK(c->stats().pending == 0);
  CHECK(log.has(root + "/p2-linked is a symbolic link"));
  CHECK(fs::exists(outside.sub("p2-linked") + "/CURRENT"));  // the target is untouched
  if (as_root) CHECK(log.has(root + "/p3-theirs is owned by uid 65534"));
}

TEST_CASE("a folder of the user's own with mode 0700 is still adopted") {
  testing::TempDir dir;
  std::string root = dir.sub("root");
  REQUIRE(mkdir(root.c_str(), 0700) == 0);
  plant_folder(root, "p4-mine");
  auto c = Client::open(offline(root));
  REQUIRE(c.ok());
  CHECK(c->stats().pending == 1);
}

TEST_CASE("an API key with control characters is refused without being shown") {
  testing::TempDir root;
  for (const std::string& key :
       std::vector<std::string>{"sk-secret\r\nX-Injected: 1", std::string("sk-secret\0x", 11),
                                "sk-secret\x7f", "sk-secret\n"}) {
    Options o = offline(root.path());
    o.endpoint = "https://api.example.com";
    o.api_key = key;
    auto c = Client::open(o);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK_MESSAGE(c.status().message().find("api_key: contains a control character") == 0,
                  c.status().message());
    CHECK(c.status().message().find("secret") == std::string::npos);
  }
}

TEST_CASE("plain http through a proxy elsewhere is refused; https, or a proxy on this machine, is not") {
  testing::TempDir root;
  auto open_with = [&](const std::string& endpoint, const std::string& proxy, bool insecure) {
    Options o = offline(root.path());
    o.endpoint = endpoint;
    o.api_key = testing::kTestKey;
    o.proxy = proxy;
    o.allow_insecure_http = insecure;
    return Client::open(o);
  };
  for (const char* proxy : {"http://proxy.example.com:3128", "proxy.example.com:3128",
                            "http://user:pw@10.0.0.1:3128", "socks5h://[2001:db8::1]:1080"}) {
    CAPTURE(proxy);
    auto c = open_with("http://localhost:3000", proxy, false);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK_MESSAGE(c.status().message().find("would send the API key in clear text to the proxy") !=
                      std::string::npos,
                  c.status().message());
    CHECK(c.status().message().find("pw") == std::string::npos);
  }
  CHECK(open_with("http://localhost:3000", "http://127.0.0.1:3128", false).ok());
  CHECK(open_with("http://localhost:3000", "http://[::1]:3128", false).ok());
  CHECK(open_with("https://api.example.com", "http://proxy.example.com:3128", false).ok());
  CHECK(open_with("http://localhost:3000", "http://proxy.example.com:3128", true).ok());
}

TEST_SUITE_END();
