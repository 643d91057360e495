// agentburn-server's read and ingest costs, each as a ratio against a baseline measured in
// the same run:
// - GET /api/dashboard's latency with 1M events stored, against 100k (the same server, the
//   same kinds of events): the answer comes from aggregates, so the ratio stays near 1.
// - Ingest throughput with the aggregates kept, against the same server run with
//   --no-aggregates (target: at least 0.85x).
//
//   agentburn_server_bench [--quick] [--events N]
//
// Events: 10 agents, each with its provider and model, 2 operations, 50 tasks, timestamps
// spread over the last 30 days; batches of 1,000 over one keep-alive connection.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using bench::Clock;
using bench::seconds_since;

const char* const kKey = "bench-key-0123456789";

// One keep-alive connection.
class Http {
 public:
  Http() : curl_(curl_easy_init()) {}
  ~Http() { curl_easy_cleanup(curl_); }
  long send(const std::string& url, const std::string* body, std::string* answer) {
    answer->clear();
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, (std::string("x-api-key: ") + kKey).c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Http::collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    if (body) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
    } else {
      curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    }
    long status = 0;
    if (curl_easy_perform(curl_) == CURLE_OK) {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(headers);
    return status;
  }

 private:
  static std::size_t collect(char* p, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(p, size * n);
    return size * n;
  }
  CURL* curl_;
};

std::string iso_ms(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

// Batch `b` of 1,000 events (event numbers b*1000 ...).
// Live: timestamps in arrival order, 50 ms apart, ending now (a batch spans under a
// minute). Backfill: each event anywhere in the last 30 days (a batch touches a thousand
// hours).
enum class Shape { kLive, kBackfill };

std::string batch_body(const std::vector<std::string>& agents, std::uint64_t b, std::int64_t now_ms,
                       Shape shape, std::uint64_t total) {
  static const char* providers[] = {"anthropic", "openai", "e2b"};
  static const char* models[] = {"claude-3.5-sonnet", "gpt-4o", "sandbox"};
  std::string body = "[";
  for (std::uint64_t i = b * 1000; i < b * 1000 + 1000; ++i) {
    std::size_t agent = i % agents.size();
    std::int64_t at =
        shape == Shape::kBackfill
            ? now_ms - static_cast<std::int64_t>((i * 2654435761ull) % (30ull * 86400000))
            : now_ms - static_cast<std::int64_t>(50 * (total - i));
    char event[640];
    std::snprintf(
        event, sizeof event,
        "%s{\"agentId\":\"%s\",\"provider\":\"%s\",\"model\":\"%s\",\"operation\":\"%s\","
        "\"inputTokens\":%llu,\"outputTokens\":%llu,\"costUsd\":%.6f,\"taskId\":\"task-%llu\","
        "\"timestamp\":\"%s\",\"idempotency_key\":\"bench-%llu\"}",
        i == b * 1000 ? "" : ",", agents[agent].c_str(), providers[agent % 3], models[agent % 3],
        (i / 10) % 2 ? "tool_call" : "llm_call", static_cast<unsigned long long>(1000 + i % 500),
        static_cast<unsigned long long>(100 + i % 50), 0.0001 * static_cast<double>(i % 100 + 1),
        static_cast<unsigned long long>(i % 50), iso_ms(at).c_str(),
        static_cast<unsigned long long>(i));
    body += event;
  }
  body += "]";
  return body;
}

struct Fill {
  double seconds = 0;
  std::uint64_t events = 0;
};

// Sends batches [from, to) and returns how long it took.
Fill ingest(Http& http, const std::string& url, const std::vector<std::string>& agents,
            std::uint64_t from, std::uint64_t to, std::int64_t now_ms,
            Shape shape = Shape::kBackfill) {
  std::vector<std::string> bodies;
  for (std::uint64_t b = from; b < to; ++b)
    bodies.push_back(batch_body(agents, b, now_ms, shape, to * 1000));
  std::string answer;
  auto t0 = Clock::now();
  for (const auto& body : bodies) {
    long status = http.send(url + "/api/ingest", &body, &answer);
    if (status != 200)
      bench::die("POST /api/ingest answered " + std::to_string(status) + ": " + answer);
  }
  return {seconds_since(t0), (to - from) * 1000};
}

std::vector<std::string> make_agents(const std::string& url) {
  std::vector<std::string> agents;
  for (int i = 0; i < 10; ++i)
    agents.push_back(bench::register_agent(url, "agent-" + std::to_string(i)));
  return agents;
}

// CPU time (utime + stime, clock ticks) of process `pid`.
long cpu_ticks(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  long utime = 0, stime = 0;
  if (!p || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
                        &stime) != 2) {
    return -1;
  }
  return utime + stime;
}

// Waits (up to 5 minutes) until the server used no CPU for a second: RocksDB's flushes and
// compactions after a fill are done, so that what is timed next is the request alone.
double wait_idle(pid_t pid) {
  auto t0 = Clock::now();
  long before = cpu_ticks(pid);
  while (seconds_since(t0) < 300) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long now = cpu_ticks(pid);
    if (now - before <= 1) break;
    before = now;
  }
  return seconds_since(t0);
}

// p50 and p99 of GET /api/dashboard, in ms.
std::pair<double, double> dashboard_latency(Http& http, const std::string& url, int samples) {
  std::vector<std::int64_t> ns;
  std::string answer;
  for (int i = 0; i < samples + 5; ++i) {
    auto t0 = Clock::now();
    long status = http.send(url + "/api/dashboard", nullptr, &answer);
    auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    if (status != 200) bench::die("GET /api/dashboard answered " + std::to_string(status));
    if (i >= 5) ns.push_back(took);  // the first few warm the caches
  }
  bench::Percentiles p = bench::percentiles(ns);
  return {p.p50_us / 1000, p.p99_us / 1000};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::uint64_t events = 1000000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      events = 100000;
    } else if (std::strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
      events = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: agentburn_server_bench [--quick] [--events N]\n");
      return 2;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string base = bench::make_temp_dir("/tmp", "agentburn-server-bench-");
  std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();

  // Ingest, aggregates on against off: rounds alternate, the best of each is kept.
  const std::uint64_t ingest_batches = quick ? 20 : 100;
  const int rounds = quick ? 1 : 3;
  for (Shape shape : {Shape::kLive, Shape::kBackfill}) {
    double best_on = 0, best_off = 0;
    for (int round = 0; round < rounds; ++round) {
      for (bool on : {false, true}) {
        std::string dir = base + "/ingest-" + std::to_string(round) + (on ? "-on" : "-off");
        std::vector<std::string> extra;
        if (!on) extra.push_back("--no-aggregates");
        bench::Server server(AGENTBURN_SERVER_PATH, dir, kKey, extra);
        Http http;
        auto agents = make_agents(server.url());
        Fill f = ingest(http, server.url(), agents, 0, ingest_batches, now_ms, shape);
        double rate = static_cast<double>(f.events) / f.seconds;
        double& best = on ? best_on : best_off;
        best = std::max(best, rate);
        server.stop();
        bench::remove_tree(dir);
      }
    }
    bool live = shape == Shape::kLive;
    std::printf("ingest, %s timestamps, %llu events in batches of 1000, best of %d rounds:\n",
                live ? "live" : "backfill (30 days)",
                static_cast<unsigned long long>(ingest_batches * 1000), rounds);
    std::printf("  aggregates off (baseline)  %10.0f events/s\n", best_off);
    std::printf("  aggregates on              %10.0f events/s   %.2fx   (target >= 0.85x)  %s\n",
                best_on, best_on / best_off, best_on / best_off >= 0.85 ? "met" : "NOT MET");
  }

  // Dashboard latency: 100k events stored, then `events`.
  {
    std::string dir = base + "/dashboard";
    bench::Server server(AGENTBURN_SERVER_PATH, dir, kKey);
    Http http;
    auto agents = make_agents(server.url());
    const std::uint64_t small = std::min<std::uint64_t>(100000, events) / 1000;
    ingest(http, server.url(), agents, 0, small, now_ms);
    double idle_small = wait_idle(server.pid());
    auto at_small = dashboard_latency(http, server.url(), 200);
    auto t0 = Clock::now();
    for (std::uint64_t b = small; b < events / 1000; b += 50) {
      ingest(http, server.url(), agents, b, std::min(b + 50, events / 1000), now_ms);
    }
    double fill_s = seconds_since(t0);
    double idle_large = wait_idle(server.pid());
    auto at_large = dashboard_latency(http, server.url(), 200);
    std::printf(
        "GET /api/dashboard, 200 requests after 5 to warm up, once the server is idle "
        "(waited %.1f s and %.1f s); filling %llu more events took %.1f s:\n",
        idle_small, idle_large, static_cast<unsigned long long>(events - small * 1000), fill_s);
    std::printf("  %7llu events stored (baseline)  p50 %7.2f ms  p99 %7.2f ms\n",
                static_cast<unsigned long long>(small * 1000), at_small.first, at_small.second);
    std::printf(
        "  %7llu events stored             p50 %7.2f ms  p99 %7.2f ms   %.2fx  (target: "
        "near 1)\n",
        static_cast<unsigned long long>(events), at_large.first, at_large.second,
        at_large.first / at_small.first);
    server.stop();
  }
  bench::remove_tree(base);
  curl_global_cleanup();
  return 0;
}
