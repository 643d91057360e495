// A real HTTP server on 127.0.0.1 whose answers a test writes (cpp-httplib), for behaviour the
// reference server has no fault for: agent registrations refused for one name and failing
// for another, say.
//
//   testing::ScriptServer s;
//   s.on_post("/api/agents", [](const httplib::Request& req, httplib::Response& res) { ... });
//   REQUIRE(s.start());
//   ... s.url() ...
//
// Handlers run on the server's threads: guard what they share with the test.
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace testing {

class ScriptServer {
 public:
  using Handler = httplib::Server::Handler;
  ScriptServer() = default;
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;
  ~ScriptServer() { stop(); }

  void on_post(const std::string& path, Handler h) { server_.Post(path, std::move(h)); }
  void on_get(const std::string& path, Handler h) { server_.Get(path, std::move(h)); }

  bool start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return server_.is_running();
  }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace testing
