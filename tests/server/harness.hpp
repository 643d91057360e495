// A running agentburn-server in a fresh folder, with helpers to call its API.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "http.hpp"
#include "support.hpp"
#include "support/server_process.hpp"

namespace testing {

inline ServerConfig server_config(const TempDir& dir, std::vector<std::string> extra_args = {},
                                  std::string api_key = kTestKey) {
  ServerConfig config;
  config.binary = AGENTBURN_SERVER_PATH;
  config.data_dir = dir.sub("data");
  config.api_key = std::move(api_key);
  config.extra_args = std::move(extra_args);
  return config;
}

class TestServer {
 public:
  explicit TestServer(std::vector<std::string> extra_args = {}, std::string api_key = kTestKey)
      : key(api_key), process(server_config(dir, std::move(extra_args), api_key)) {
    bool started = process.start();
    INFO(process.error());
    REQUIRE(started);
  }

  TempDir dir;
  std::string key;
  ServerProcess process;
  HttpClient client;

  std::string url(const std::string& path) const { return process.url() + path; }

  HttpResponse post(const std::string& path, const std::string& body, bool with_key = true,
                    std::vector<std::string> headers = {}) {
    HttpRequest req;
    req.method = "POST";
    req.url = url(path);
    req.body = body;
    req.headers = std::move(headers);
    req.headers.push_back("Content-Type: application/json");
    if (with_key) req.headers.push_back("x-api-key: " + key);
    return client.send(req);
  }

  HttpResponse get(const std::string& path, bool with_key = true) {
    HttpRequest req;
    req.url = url(path);
    if (with_key) req.headers.push_back("x-api-key: " + key);
    return client.send(req);
  }

  HttpResponse del(const std::string& path) {
    HttpRequest req;
    req.method = "DELETE";
    req.url = url(path);
    req.headers.push_back("x-api-key: " + key);
    return client.send(req);
  }

  std::string register_agent(const std::string& name, const std::string& project = "tests") {
    nlohmann::json agent = {{"name", name}, {"projectId", project}, {"tags", {"test"}}};
    HttpResponse res = post("/api/agents", agent.dump());
    REQUIRE(res.status == 201);
    return res.json()["id"].get<std::string>();
  }

  nlohmann::json ingest_ok(const nlohmann::json& body) {
    HttpResponse res = post("/api/ingest", body.dump());
    INFO(res.body);
    REQUIRE(res.status == 200);
    return res.json();
  }

  nlohmann::json stats() {
    HttpResponse res = get("/api/_stats");
    REQUIRE(res.status == 200);
    return res.json();
  }
};

// Now, in ms since 1970.
inline std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The timestamp as the server stores it: UTC with milliseconds, "2026-01-02T03:04:05.678Z".
inline std::string iso_ms(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char seconds[32];
  std::strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", seconds, static_cast<int>(unix_ms % 1000));
  return out;
}

inline nlohmann::json make_event(const std::string& agent_id, double cost, const std::string& key,
                                 nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json e = {{"agentId", agent_id},
                      {"provider", "anthropic"},
                      {"operation", "llm_call"},
                      {"costUsd", cost},
                      {"idempotency_key", key}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return e;
}

}  // namespace testing
