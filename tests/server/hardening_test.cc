// What clients without the key can do to the server, and what local users can see of it:
// slow and idle connections, header floods, bodies sent without the key, request
// smuggling, log injection, the data folder's modes and the key on the command line.
//
// The attacking connections come from 127.0.0.2 (and other 127.x addresses), the clients
// with the key from 127.0.0.1, so that the per-address cap applies to the attackers alone.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "support/certs.hpp"
#include "support/raw_http.hpp"

using nlohmann::json;
using testing::answer_header;
using testing::answer_status;
using testing::HttpRequest;
using testing::HttpResponse;
using testing::RawConnection;
using testing::TestServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string request_head(const std::string& method, const std::string& path,
                         const std::vector<std::string>& headers = {}) {
  std::string out = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) out += h + "\r\n";
  return out;
}

// Opens `n` connections from `source`; every one must connect.
std::vector<std::unique_ptr<RawConnection>> open_many(int port, int n, const std::string& source) {
  std::vector<std::unique_ptr<RawConnection>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<RawConnection>(port, source));
    REQUIRE(out.back()->connected());
  }
  return out;
}

// A keyed GET from 127.0.0.1, on a new connection: its status and how long it took.
std::pair<long, double> timed_get(TestServer& s, const std::string& path, long timeout_ms) {
  HttpRequest req;
  req.url = s.url(path);
  req.headers = {"x-api-key: " + s.key};
  req.timeout_ms = timeout_ms;
  auto start = Clock::now();
  HttpResponse res = testing::http_send(req);
  return {res.status, std::chrono::duration<double>(Clock::now() - start).count()};
}

std::string mode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "missing";
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return text;
}

}  // namespace

TEST_SUITE_BEGIN("server.hardening");

TEST_CASE("100 connections sending headers a line every second: keyed clients still answered") {
  TestServer s;
  const int port = s.process.port();
  auto slow = open_many(port, 100, "127.0.0.2");
  for (auto& c : slow) REQUIRE(c->send_all(request_head("GET", "/api/costs")));

  // The attack: one more header line on every connection each second, for 12 s (the
  // header deadline is 10 s). The pacing is the attack's, not a wait for a condition.
  std::atomic<bool> stop{false};
  std::thread attacker([&] {
    auto next = Clock::now();
    for (int round = 0; round < 12 && !stop; ++round) {
      for (std::size_t i = 0; i < slow.size(); ++i) {
        slow[i]->send_all("X-Slow-" + std::to_string(round) + ": " + std::to_string(i) + "\r\n");
      }
      next += 1s;
      std::this_thread::sleep_until(next);
    }
  });

  // Meanwhile, for 8 s: the keyed client, one new connection per request, 10 a second.
  double worst = 0;
  int answered = 0, asked = 0;
  auto until = Clock::now() + 8s;
  for (auto next = Clock::now(); next < until; next += 100ms) {
    auto [status, seconds] = timed_get(s, "/api/costs", 10000);
    ++asked;
    answered += status == 200;
    worst = std::max(worst, seconds);
    std::this_thread::sleep_until(next);
  }
  stop = true;
  attacker.join();
  MESSAGE("keyed requests during the attack: ", answered, "/", asked, ", slowest ", worst, " s");
  CHECK(answered == asked);
  CHECK(worst < 3.0);

  // Every slow connection ends with a 408 once its header deadline passed.
  int timed_out = 0;
  for (auto& c : slow) {
    std::string answer = c->read_answer(10s);
    timed_out += answer_status(answer) == 408 && c->closed_within(5s);
  }
  CHECK(timed_out == 100);
  CHECK(s.process.stop() == 0);
}

TEST_CASE("80 idle keep-alive connections hold no thread") {
  TestServer s({"--keep-alive", "60"});
  const int port = s.process.port();
  auto idle = open_many(port, 80, "127.0.0.2");
  for (auto& c : idle) {
    REQUIRE(c->send_all(request_head("GET", "/api/nothing") + "\r\n"));
    std::string answer = c->read_answer();
    REQUIRE(answer_status(answer) == 404);
  }
  for (int i = 0; i < 10; ++i) {
    auto [status, seconds] = timed_get(s, "/api/costs", 10000);
    CHECK(status == 200);
    CHECK(seconds < 3.0);
  }
  // They are still open, and still served.
  REQUIRE(idle[0]->send_all(request_head("GET", "/api/nothing") + "\r\n"));
  CHECK(answer_status(idle[0]->read_answer()) == 404);
  CHECK(s.process.stop() == 0);
}

TEST_CASE("bodies sent slowly from one address hold at most half the workers") {
  // POST /api/agents takes requests without a key, so their bodies are read.
  TestServer s({"--threads", "4"});
  const int port = s.process.port();
  auto slow = open_many(port, 6, "127.0.0.2");
  for (auto& c : slow) {
    REQUIRE(c->send_all(request_head("POST", "/api/agents",
                                     {"Content-Type: application/json", "Content-Length: 100"}) +
                        "\r\n{\"name\":"));
  }
  for (int i = 0; i < 5; ++i) {
    auto [status, seconds] = timed_get(s, "/api/costs", 10000);
    CHECK(status == 200);
    CHECK(seconds < 3.0);
  }
  CHECK(s.process.stop() == 0);
}

TEST_CASE("TLS: idle keep-alive connections hold no thread, and are served again") {
  testing::TempDir certs;
  REQUIRE(testing::make_certificates(certs.path()));
  TestServer s({"--tls-cert", certs.sub("server.pem"), "--tls-key", certs.sub("server.key"),
                "--threads", "2", "--keep-alive", "60", "--header-timeout", "2"});
  HttpRequest req;
  req.url = s.url("/api/costs");
  req.ca_file = certs.sub("ca.pem");
  req.headers = {"x-api-key: " + s.key};
  req.timeout_ms = 10000;
  // Six clients, each keeping its connection open: three times the worker threads.
  std::vector<std::unique_ptr<testing::HttpClient>> kept;
  for (int i = 0; i < 6; ++i) {
    kept.push_back(std::make_unique<testing::HttpClient>());
    CHECK(kept.back()->send(req).status == 200);
  }
  // A TLS connection that never says anything holds a worker until the header deadline.
  RawConnection silent(s.process.port(), "127.0.0.2");
  auto start = Clock::now();
  HttpResponse fresh = testing::http_send(req);
  CHECK(fresh.status == 200);
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 3.0);
  for (auto& client : kept) CHECK(client->send(req).status == 200);
  CHECK(silent.closed_within(10s));
  CHECK(s.process.stop() == 0);
}

TEST_CASE("connections are capped per address and in all: 503 past a cap, idle ones go first") {
  TestServer s({"--max-connections", "20", "--max-connections-per-client", "8"});
  const int port = s.process.port();
  // A request begun and not finished: the connection is not idle.
  auto partial = [](std::vector<std::unique_ptr<RawConnection>>& conns) {
    for (auto& c : conns) REQUIRE(c->send_all(request_head("GET", "/api/costs")));
  };
  auto from2 = open_many(port, 8, "127.0.0.2");
  partial(from2);
  {
    RawConnection ninth(port, "127.0.0.2");
    std::string answer = ninth.read_answer(5s);
    CHECK(answer_status(answer) == 503);
    CHECK(answer_header(answer, "Connection") == "close");
    CHECK(ninth.closed_within(5s));
  }
  auto from3 = open_many(port, 8, "127.0.0.3");
  partial(from3);
  auto from4 = open_many(port, 4, "127.0.0.4");
  partial(from4);
  {
    // 20 open, none idle: even the keyed client is refused, at once.
    RawConnection more(port, "127.0.0.5");
    CHECK(answer_status(more.read_answer(5s)) == 503);
    auto [status, seconds] = timed_get(s, "/api/costs", 10000);
    CHECK(status == 503);
    CHECK(seconds < 3.0);
  }
  // Finished requests leave the connections idle (kept alive): room can be made.
  for (auto* group : {&from2, &from3, &from4}) {
    for (auto& c : *group) {
      REQUIRE(c->send_all("x-api-key: " + s.key + "\r\n\r\n"));
      REQUIRE(answer_status(c->read_answer()) == 200);
    }
  }
  auto [status, seconds] = timed_get(s, "/api/costs", 10000);
  CHECK(status == 200);
  CHECK(seconds < 3.0);
  // The oldest idle connection was closed to make room.
  CHECK(from2[0]->closed_within(5s));
  CHECK(s.process.stop() == 0);
}

TEST_CASE("a request's headers must arrive within --header-timeout: 408 and closed") {
  TestServer s({"--header-timeout", "2"});
  const int port = s.process.port();
  RawConnection started(port, "127.0.0.2");
  REQUIRE(started.send_all(request_head("GET", "/api/costs", {"x-api-key: " + s.key})));
  RawConnection silent(port, "127.0.0.2");
  auto begin = Clock::now();
  CHECK(answer_status(started.read_answer(10s)) == 408);
  CHECK(started.closed_within(5s));
  CHECK(answer_status(silent.read_answer(10s)) == 408);
  CHECK(silent.closed_within(5s));
  double waited = std::chrono::duration<double>(Clock::now() - begin).count();
  CHECK(waited >= 1.5);
  CHECK(waited < 8.0);
  CHECK(s.get("/api/costs").status == 200);
}

TEST_CASE("bytes that cannot begin a request (a TLS handshake) get 400 at once, not at the header deadline") {
  TestServer s({"--header-timeout", "30"});
  RawConnection tls(s.process.port());
  // The first bytes of a TLS ClientHello: a handshake record, TLS 1.0 framing.
  REQUIRE(tls.send_all(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  std::string answer = tls.read_answer(10s);
  CHECK(answer_status(answer) == 400);
  CHECK_MESSAGE(answer.find("use http://") != std::string::npos, answer);
  CHECK(tls.closed_within(5s));
  RawConnection lower(s.process.port());
  REQUIRE(lower.send_all("get /api/costs HTTP/1.1\r\n"));
  CHECK(answer_status(lower.read_answer(10s)) == 400);
  CHECK(s.get("/api/costs").status == 200);
}

TEST_CASE("header lines are capped at 100 lines and 64 KiB: 431, and a flood is cut short") {
  TestServer s;
  const int port = s.process.port();
  auto with_lines = [&](int lines, std::size_t each) {
    std::vector<std::string> headers = {"x-api-key: " + s.key};
    for (int i = 1; i < lines; ++i) {
      headers.push_back("X-Line-" + std::to_string(i) + ": " + std::string(each, 'v'));
    }
    RawConnection c(port, "127.0.0.2");
    REQUIRE(c.send_all(request_head("GET", "/api/costs", headers) + "\r\n"));
    return c.read_answer();
  };
  // "Host" is one of the lines request_head writes.
  CHECK(answer_status(with_lines(99, 10)) == 200);
  std::string too_many = with_lines(100, 10);
  CHECK(answer_status(too_many) == 431);
  CHECK(answer_header(too_many, "Connection") == "close");
  CHECK(json::parse(too_many.substr(too_many.find("\r\n\r\n") + 4))["error"].is_string());
  CHECK(answer_status(with_lines(20, 4000)) == 431);  // 80 KB in 20 lines

  // 64 MiB of header lines: the server answers 431 and closes long before (what is sent
  // meanwhile fills the socket buffers, and up to 4 MiB is read and dropped after the
  // answer, so that a client still sending can read it).
  long before = testing::proc_status_kib(s.process.pid(), "VmHWM");
  RawConnection flood(port, "127.0.0.2");
  REQUIRE(flood.send_all(request_head("GET", "/api/costs")));
  std::size_t sent = 0;
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "X-Flood-" + std::to_string(i) + ": " + std::string(40, 'f') + "\r\n";
  while (sent < (64u << 20) && flood.send_all(lines)) sent += lines.size();
  MESSAGE("header bytes sent before the server closed: ", sent);
  CHECK(sent < (16u << 20));
  long after = testing::proc_status_kib(s.process.pid(), "VmHWM");
  CHECK(after - before < 16 * 1024);
  CHECK(s.get("/api/costs").status == 200);
}

TEST_CASE("a body sent without the key is refused with 401 before it is read or inflated") {
  TestServer s;
  const int port = s.process.port();
  std::string agent = s.register_agent("a");
  // Warm up: the server's own allocations for requests, before the baseline.
  for (int i = 0; i < 5; ++i) s.ingest_ok(json::array({testing::make_event(agent, 1, "w" + std::to_string(i))}));

  // A body that is never sent: the 401 comes on the headers alone.
  {
    RawConnection c(port, "127.0.0.2");
    REQUIRE(c.send_all(request_head("POST", "/api/ingest",
                                    {"Content-Type: application/json", "Content-Length: 10000000"}) +
                       "\r\n"));
    std::string answer = c.read_answer(5s);
    CHECK(answer_status(answer) == 401);
    CHECK(answer_header(answer, "Connection") == "close");
    CHECK(c.closed_within(5s));
  }

  // 40 connections at once, each 16 KB of gzip inflating to 16 MiB - 1 KiB, no key or a
  // wrong one; and the same to /api/agents with a wrong key.
  std::string bomb = testing::gzip_compress(std::string((16u << 20) - 1024, ' '));
  REQUIRE(bomb.size() < 32 * 1024);
  long rss_before = testing::proc_status_kib(s.process.pid(), "VmRSS");
  long hwm_before = testing::proc_status_kib(s.process.pid(), "VmHWM");
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 40; ++i) {
    conns.push_back(std::make_unique<RawConnection>(port, "127.0.0.2"));
    std::vector<std::string> headers = {"Content-Type: application/json", "Content-Encoding: gzip",
                                        "Content-Length: " + std::to_string(bomb.size())};
    if (i % 2) headers.push_back("x-api-key: wrong");
    std::string path = i % 4 == 3 ? "/api/agents" : "/api/ingest";
    REQUIRE(conns.back()->send_all(request_head("POST", path, headers) + "\r\n" + bomb));
  }
  int refused = 0;
  for (auto& c : conns) refused += answer_status(c->read_answer()) == 401;
  long rss_after = testing::proc_status_kib(s.process.pid(), "VmRSS");
  long hwm_after = testing::proc_status_kib(s.process.pid(), "VmHWM");
  MESSAGE("server VmRSS ", rss_before, " -> ", rss_after, " KiB, VmHWM ", hwm_before, " -> ",
          hwm_after, " KiB");
  CHECK(refused == 40);
  CHECK(hwm_after - hwm_before < 12 * 1024);
  CHECK(s.get("/api/costs").json()["eventCount"] == 5);
}

TEST_CASE("request bodies held at once are bounded: 503 past --max-body-memory") {
  TestServer s({"--max-body-memory", "1"});
  std::string agent = s.register_agent("a");
  std::string big = "[" + testing::make_event(agent, 1, "big").dump() + "]" + std::string(2u << 20, ' ');
  HttpResponse busy = s.post("/api/ingest", big);
  CHECK(busy.status == 503);
  CHECK(busy.headers["retry-after"] == "1");
  CHECK(busy.json()["error"].is_string());
  // A route whose body cpp-httplib reads: its declared length is held up front.
  CHECK(s.post("/api/costs", big).status == 503);
  // Bodies within the bound are read as usual, and the memory was given back.
  s.ingest_ok(json::array({testing::make_event(agent, 1, "small")}));
  CHECK(s.post("/api/costs", "{}").status == 405);
}

TEST_CASE("Content-Length with Transfer-Encoding: 400 and the connection closed") {
  TestServer s({"--keep-alive", "60"});
  const int port = s.process.port();
  std::string smuggled = request_head("GET", "/api/agents", {"x-api-key: " + s.key}) + "\r\n";
  for (const auto& framing : {std::vector<std::string>{"Content-Length: 5", "Transfer-Encoding: chunked"},
                              std::vector<std::string>{"Transfer-Encoding: chunked", "Content-Length: 5"},
                              std::vector<std::string>{"Content-Length: 5", "Content-Length: 5"}}) {
    INFO(framing[0], " + ", framing[1]);
    RawConnection c(port, "127.0.0.2");
    std::vector<std::string> headers = {"x-api-key: " + s.key, "Content-Type: application/json"};
    headers.insert(headers.end(), framing.begin(), framing.end());
    REQUIRE(c.send_all(request_head("POST", "/api/ingest", headers) + "\r\n0\r\n\r\n" + smuggled));
    std::string answer = c.read_answer(5s);
    CHECK(answer_status(answer) == 400);
    CHECK(answer_header(answer, "Connection") == "close");
    CHECK(c.closed_within(5s));
    CHECK(c.read_answer(100ms).empty());  // the smuggled request was not answered
  }
  CHECK(s.get("/api/costs").status == 200);
}

TEST_CASE("the data folder is 0700 and its files 0600, and a folder open to others is tightened") {
  testing::TempDir dir;
  mode_t old_mask = umask(022);
  std::string fresh = dir.sub("fresh");
  std::string opened = dir.sub("opened");
  std::filesystem::create_directories(opened);
  chmod(opened.c_str(), 0755);
  for (const std::string& data : {fresh, opened}) {
    INFO("folder: ", data);
    testing::ServerConfig config = testing::server_config(dir);
    config.data_dir = data;
    testing::ServerProcess server(config);
    REQUIRE(server.start());
    HttpRequest req;
    req.method = "POST";
    req.url = server.url() + "/api/agents";
    req.body = R"({"name":"a"})";
    req.headers = {"Content-Type: application/json"};
    CHECK(testing::http_send(req).status == 201);
    CHECK(server.stop() == 0);
    CHECK(mode_of(data) == "0700");
    int files = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data)) {
      INFO(entry.path().string());
      CHECK((mode_of(entry.path().string()) == "0600" || mode_of(entry.path().string()) == "0700"));
      ++files;
    }
    CHECK(files > 3);
  }
  umask(old_mask);
}

TEST_CASE("--verbose escapes control bytes: no forged log lines, no escape sequences") {
  testing::TempDir dir;
  std::string log = dir.sub("stderr.log");
  std::string wrapper = dir.sub("server.sh");
  {
    std::ofstream out(wrapper);
    out << "#!/bin/sh\nexec '" << AGENTBURN_SERVER_PATH << "' \"$@\" 2>'" << log << "'\n";
  }
  chmod(wrapper.c_str(), 0700);
  testing::ServerConfig config = testing::server_config(dir, {"--verbose"});
  config.binary = wrapper;
  testing::ServerProcess server(config);
  REQUIRE(server.start());
  for (const char* path : {"/api/x%0aGET%20/forged%20200%0d", "/api/%1b[2J%1b]0;title%07", "/api/%e2%80%ae%c2%9b"}) {
    RawConnection c(server.port());
    REQUIRE(c.send_all(request_head("GET", path) + "\r\n"));
    CHECK(answer_status(c.read_answer()) == 404);
  }
  // The log line is written after the answer is sent: wait for all three before stopping.
  auto read_log = [&] {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  CHECK(testing::wait_until([&] {
    std::string t = read_log();
    int answered = 0;
    for (auto at = t.find(" 404\n"); at != std::string::npos; at = t.find(" 404\n", at + 1)) ++answered;
    return answered >= 3;
  }));
  CHECK(server.stop() == 0);
  std::string text = read_log();
  INFO("log: ", text);
  CHECK(text.find("GET /api/x\\x0aGET /forged 200\\x0d 404\n") != std::string::npos);
  CHECK(text.find("\nGET /forged") == std::string::npos);
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    CHECK((b == '\n' || (b >= 0x20 && b < 0x7f)));
  }
}

TEST_CASE("--api-key-file keeps the key off the command line") {
  testing::TempDir dir;
  const std::string key = "file-key-5f1c0d9e";
  std::string key_file = dir.sub("key");
  {
    std::ofstream out(key_file);
    out << key << "\n";
  }
  chmod(key_file.c_str(), 0600);
  testing::ServerConfig config = testing::server_config(dir, {"--api-key-file", key_file}, "");
  testing::ServerProcess server(config);
  REQUIRE(server.start());
  std::ifstream cmdline("/proc/" + std::to_string(server.pid()) + "/cmdline");
  std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  CHECK(args.find("--api-key-file") != std::string::npos);
  CHECK(args.find(key) == std::string::npos);
  HttpRequest req;
  req.url = server.url() + "/api/costs";
  req.headers = {"x-api-key: " + key};
  CHECK(testing::http_send(req).status == 200);
  req.headers = {"x-api-key: wrong"};
  CHECK(testing::http_send(req).status == 401);
  CHECK(server.stop() == 0);

  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), AGENTBURN_SERVER_PATH);
    return testing::run_process(args);
  };
  auto help = run({"--help"});
  CHECK(help.out.find("--api-key-file") != std::string::npos);
  CHECK(help.out.find("/proc/PID/cmdline") != std::string::npos);
  auto missing = run({"--data", dir.sub("d"), "--api-key-file", dir.sub("nothing")});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("--api-key-file") != std::string::npos);
}

TEST_SUITE_END();
