// Running the binary: flags, refusals at start-up, signals, restarts, hostile input.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <future>
#include <random>
#include <string>

#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::run_process;
using testing::TestServer;

namespace {

std::vector<std::string> server_args(std::vector<std::string> args) {
  args.insert(args.begin(), AGENTBURN_SERVER_PATH);
  return args;
}

std::size_t stored_count(TestServer& s) {
  return s.get("/api/events?limit=10000").json().size();
}

// Sends raw bytes on a new connection and reads until the server closes or answers.
std::string raw_exchange(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return answer;
}

}  // namespace

TEST_SUITE_BEGIN("server.lifecycle");

TEST_CASE("--help documents every flag") {
  auto r = run_process(server_args({"--help"}));
  CHECK(r.exit_code == 0);
  for (const char* flag : {"--listen", "--data", "--api-key", "AGENTBURN_API_KEY", "--no-auth",
                           "--strict-auth", "--tls-cert", "--tls-key", "--enable-fault-injection",
                           "--threads", "--keep-alive", "--verbose", "--quiet", "--help",
                           "--api-key-file", "--header-timeout", "--max-connections",
                           "--max-connections-per-client", "--max-body-memory"}) {
    CHECK_MESSAGE(r.out.find(flag) != std::string::npos, flag);
  }
}

TEST_CASE("bad flags exit non-zero with a message naming the problem") {
  testing::TempDir dir;
  struct Case {
    std::vector<std::string> args;
    const char* mentions;
  } cases[] = {
      {{"--data", dir.path(), "--api-key", "k", "--bogus"}, "--bogus"},
      {{"--data", dir.path(), "--api-key", "k", "--listen", "nowhere"}, "--listen"},
      {{"--data", dir.path(), "--api-key", "k", "--listen", "127.0.0.1:70000"}, "--listen"},
      {{"--api-key", "k"}, "--data"},
      {{"--data", dir.path(), "--api-key"}, "--api-key"},
      {{"--data", dir.path(), "--api-key", "k", "--threads", "0"}, "--threads"},
      {{"--data", dir.path(), "--api-key", "k", "--tls-cert", "c.pem"}, "--tls-key"},
      {{"--data", dir.path(), "--api-key", "k", "--no-auth"}, "--no-auth"},
      {{"--data", dir.path(), "--verbose=yes", "--api-key", "k"}, "--verbose"},
      {{"--data", dir.path(), "--api-key", "k", "--header-timeout", "0"}, "--header-timeout"},
      {{"--data", dir.path(), "--api-key", "k", "--max-connections", "x"}, "--max-connections"},
      {{"--data", dir.path(), "--api-key", "k", "--max-connections-per-client", "0"},
       "--max-connections-per-client"},
      {{"--data", dir.path(), "--api-key", "k", "--max-body-memory", "-1"}, "--max-body-memory"},
      {{"--data", dir.path(), "--api-key", "k", "--api-key-file", dir.sub("key")},
       "--api-key-file"},
      {{"--data", dir.path(), "--api-key-file", dir.sub("missing")}, "--api-key-file"},
  };
  for (const auto& c : cases) {
    auto r = run_process(server_args(c.args), std::chrono::seconds(20), {"AGENTBURN_API_KEY="});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("with no key the server refuses to start; the key can come from the environment") {
  testing::TempDir dir;
  auto r = run_process(server_args({"--data", dir.path(), "--listen", "127.0.0.1:0"}),
                       std::chrono::seconds(20), {"AGENTBURN_API_KEY="});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("--no-auth") != std::string::npos);

  auto config = testing::server_config(dir, {}, "");
  config.env = {"AGENTBURN_API_KEY=from-env"};
  testing::ServerProcess p(config);
  REQUIRE(p.start());
  testing::HttpRequest req;
  req.url = p.url() + "/api/costs";
  CHECK(testing::http_send(req).status == 401);
  req.headers = {"x-api-key: from-env"};
  CHECK(testing::http_send(req).status == 200);
  CHECK(p.stop() == 0);
}

TEST_CASE("an unusable data folder is refused with a clear message") {
  testing::TempDir dir;
  std::ofstream(dir.sub("file")) << "not a folder";
  auto r = run_process(server_args({"--data", dir.sub("file"), "--api-key", "k"}));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--data") != std::string::npos);

  // A folder another server holds.
  TestServer s;
  auto twice = run_process(server_args(
      {"--data", s.process.config().data_dir, "--api-key", "k", "--listen", "127.0.0.1:0"}));
  CHECK(twice.exit_code == 1);
  CHECK(twice.err.find("--data") != std::string::npos);
  CHECK_MESSAGE(twice.err.find("another agentburn-server is using " + s.process.config().data_dir) !=
                    std::string::npos,
                twice.err);
}

TEST_CASE("a busy port is refused with a clear message") {
  TestServer s;
  testing::TempDir other;
  auto r = run_process(server_args({"--data", other.path(), "--api-key", "k", "--listen",
                                    "127.0.0.1:" + std::to_string(s.process.port())}));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot listen") != std::string::npos);
}

TEST_CASE("SIGTERM finishes the request in flight and exits 0") {
  TestServer s({"--enable-fault-injection"});
  std::string agent = s.register_agent("a");
  REQUIRE(s.post("/api/_faults", R"({"delay_ms": 3600000})").status == 200);
  auto in_flight = std::async(std::launch::async, [&] {
    testing::HttpRequest req;
    req.method = "POST";
    req.url = s.url("/api/ingest");
    req.body = make_event(agent, 1, "in-flight").dump();
    req.headers = {"x-api-key: " + s.key};
    req.timeout_ms = 60000;
    return testing::http_send(req);
  });
  REQUIRE(testing::wait_until([&] { return s.stats()["ingest_requests"] == 1; }));
  CHECK(s.process.stop() == 0);
  CHECK_FALSE(s.process.killed_after_timeout());
  auto answer = in_flight.get();
  CHECK(answer.status == 200);
  CHECK(answer.json()["ingested"] == 1);

  REQUIRE(s.process.start());
  CHECK(stored_count(s) == 1);
}

TEST_CASE("what was stored survives SIGTERM and SIGKILL, and deduplication spans restarts") {
  TestServer s;
  std::string agent = s.register_agent("a");
  json first = s.ingest_ok(json::array({make_event(agent, 1, "r1"), make_event(agent, 2, "r2")}));
  int port = s.process.port();

  CHECK(s.process.stop() == 0);
  REQUIRE(s.process.start());
  CHECK(s.process.port() == port);
  CHECK(stored_count(s) == 2);
  json again = s.ingest_ok(json::array({make_event(agent, 1, "r1"), make_event(agent, 3, "r3")}));
  CHECK(again["duplicates"] == 1);
  CHECK(again["ids"][0] == first["ids"][0]);

  s.process.kill9();
  REQUIRE(s.process.start());
  CHECK(s.process.port() == port);
  CHECK(stored_count(s) == 3);
  json third = s.ingest_ok(json::array({make_event(agent, 3, "r3"), make_event(agent, 4, "r4")}));
  CHECK(third["duplicates"] == 1);
  CHECK(third["ingested"] == 1);
  CHECK(s.get("/api/agents").json().size() == 1);
  CHECK(s.get("/api/costs").json()["totalCost"].get<double>() == doctest::Approx(10));
}

TEST_CASE("nothing the server is sent crashes it") {
  TestServer s;
  std::string agent = s.register_agent("a");
  std::string valid = json::array({make_event(agent, 1, "f1", {{"metadata", {{"a", {1, 2}}}}}),
                                   make_event(agent, 2, "f2", {{"model", "m"}})})
                          .dump();
  std::vector<std::string> bodies = {std::string(200000, '['),
                                     std::string(200000, '{'),
                                     "\"\\ud800\"",
                                     "[\"\xff\xfe\"]",
                                     "1e400",
                                     "[NaN]",
                                     "null",
                                     "[null, true, 1, \"x\", []]",
                                     std::string(1000, ',')};
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string b = valid;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          b.erase(pos, 1 + rng() % 16);
          break;
        default:
          b.insert(pos, std::string(1 + rng() % 4, "{}[]\",:0\\"[rng() % 9]));
      }
      if (b.empty()) b = "x";
    }
    bodies.push_back(b);
  }
  for (const auto& body : bodies) {
    auto res = s.post("/api/ingest", body);
    REQUIRE(res.status != 0);
    CHECK(res.status < 500);
    CHECK(res.json().is_object());
  }
  for (const char* raw :
       {"GARBAGE\r\n\r\n", "POST /api/ingest HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "POST /api/ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /api/events?limit=%zz HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00"}) {
    raw_exchange(s.process.port(), raw);
  }
  CHECK(s.get("/api/costs").status == 200);
  CHECK(s.process.stop() == 0);
}

TEST_SUITE_END();
