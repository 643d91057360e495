// agentburn_bench_child: the figures that need a process of their own, so that what they
// measure of the process (peak RSS, RSS, CPU time, threads) is the client's and nothing
// else's. Run by agentburn_bench; each prints one JSON object.
//
//   agentburn_bench_child drain --root DIR --url URL --key KEY
//     opens the buffer root with the server as endpoint, flushes until nothing is pending;
//     VmHWM, and VmRSS sampled every 25 ms.
//   agentburn_bench_child idle --root DIR --url URL --key KEY --seconds S
//     opens a client with an endpoint and nothing to send, lets it settle, then measures
//     RSS (with the largest mappings from /proc/self/smaps) and the CPU time and context
//     switches of the process over S seconds.
//   agentburn_bench_child track --root DIR --durability process|buffered|system --count N
//                               [--json 1] [--agent ID] [--threads T]
//     tracks N sample events (track_json with --json 1) offline, from T threads, and nothing else: the
//     program that bench/profile.sh runs under perf and callgrind; what it leaves in DIR is
//     a backlog.
//   agentburn_bench_child open --root DIR [--crash 1]
//     opens the buffer root offline (taking over what is there) and closes it; prints the time.
//     With --crash 1 it ends without closing, as a killed process would.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agentburn/agentburn.hpp"
#include "common.hpp"

namespace bench {
namespace {

using nlohmann::json;

std::map<std::string, std::string> flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 2; i + 1 < argc; i += 2) f[argv[i]] = argv[i + 1];
  return f;
}

// Rss by mapping (file name, [heap], [stack], or [anon]), largest first.
json rss_by_mapping() {
  std::ifstream in("/proc/self/smaps");
  std::string line, current = "[anon]";
  std::map<std::string, long> kb;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 17 &&
        line.find(':') > line.find(' ')) {
      std::istringstream ss(line);
      std::string range, perms, offset, dev, inode, path;
      ss >> range >> perms >> offset >> dev >> inode;
      std::getline(ss, path);
      path.erase(0, path.find_first_not_of(' '));
      current = path.empty() ? "[anon]" : path.substr(path.rfind('/') + 1);
      continue;
    }
    if (line.rfind("Rss:", 0) == 0) kb[current] += std::atol(line.c_str() + 4);
  }
  std::vector<std::pair<long, std::string>> v;
  for (const auto& [name, k] : kb) v.emplace_back(k, name);
  std::sort(v.rbegin(), v.rend());
  json out = json::array();
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) out.push_back({{"mapping", v[i].second}, {"kb", v[i].first}});
  return out;
}

int run_drain(int argc, char** argv) {
  auto f = flags(argc, argv);
  std::atomic<bool> stop{false};
  std::atomic<long> max_rss{0};
  // /proc/self/statm is one short line: cheap enough to read every 25 ms without the
  // sampler showing in the drain's profile. VmHWM at the end is the exact peak.
  const long page_kb = sysconf(_SC_PAGESIZE) / 1024;
  std::thread sampler([&] {
    while (!stop) {
      std::ifstream in("/proc/self/statm");
      long size = 0, resident = 0;
      in >> size >> resident;
      if (resident * page_kb > max_rss) max_rss = resident * page_kb;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  });
  long before = status_kb("VmRSS");
  Drain d = drain(f.at("--root"), f.at("--url"), f.at("--key"), 1);
  stop = true;
  sampler.join();
  // flush() returned OK: nothing is pending. The caller checks the server's count.
  json out = {{"open_s", d.open_s},          {"drain_s", d.drain_s},
              {"delivered", d.delivered},    {"hwm_kb", status_kb("VmHWM")},
              {"max_rss_kb", max_rss.load()}, {"rss_before_kb", before}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_idle(int argc, char** argv) {
  auto f = flags(argc, argv);
  double window = std::stod(f.at("--seconds"));
  long before = status_kb("VmRSS");
  long anon_before = status_kb("RssAnon");
  json mappings_before = rss_by_mapping();
  agentburn::Options o;
  o.buffer_root = f.at("--root");
  o.endpoint = f.at("--url");
  o.api_key = f.at("--key");
  auto client = agentburn::Client::open(o);
  if (!client.ok()) die("Client::open: " + client.status().to_string());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // settle after open
  double cpu0 = cpu_seconds();
  std::uint64_t cs0 = context_switches();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(window));
  double elapsed = seconds_since(t0);
  double cpu = cpu_seconds() - cpu0;
  std::uint64_t cs = context_switches() - cs0;
  json out = {{"rss_before_kb", before},
              {"rss_kb", status_kb("VmRSS")},
              {"rss_anon_kb", status_kb("RssAnon")},
              {"rss_file_kb", status_kb("RssFile")},
              {"rss_anon_before_kb", anon_before},
              {"hwm_kb", status_kb("VmHWM")},
              {"cpu_s", cpu},
              {"window_s", elapsed},
              {"wakeups_per_s", static_cast<double>(cs) / elapsed},
              {"threads", thread_count()},
              {"thread_names", thread_names()},
              {"rss_by_mapping", rss_by_mapping()},
              {"rss_by_mapping_before_open", mappings_before}};
  agentburn::Status s = client->close(std::chrono::seconds(5));
  if (!s.ok()) die("close: " + s.to_string());
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_track(int argc, char** argv) {
  auto f = flags(argc, argv);
  agentburn::Options o;
  o.buffer_root = f.at("--root");
  o.close_timeout_ms = 0;
  const std::string d = f.count("--durability") ? f.at("--durability") : "process";
  o.durability = d == "buffered" ? agentburn::Durability::kBuffered
                 : d == "system" ? agentburn::Durability::kSystem
                                 : agentburn::Durability::kProcess;
  const bool as_json = f.count("--json") && f.at("--json") == "1";
  const std::size_t n = std::stoull(f.at("--count"));
  auto client = agentburn::Client::open(o);
  if (!client.ok()) die("Client::open: " + client.status().to_string());
  const std::string agent = f.count("--agent") ? f.at("--agent") : "agt_bench_0001";
  agentburn::Event e = sample_event(agent);
  const std::string text = sample_event_json(agent);
  const int threads = f.count("--threads") ? std::stoi(f.at("--threads")) : 1;
  auto work = [&](std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      agentburn::Status s = as_json ? client->track_json(text) : client->track(e);
      if (!s.ok()) die("track: " + s.to_string());
    }
  };
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 1; t < threads; ++t) ts.emplace_back(work, n / threads);
  work(n - (threads - 1) * (n / threads));
  for (auto& t : ts) t.join();
  double secs = seconds_since(t0);
  client->close(std::chrono::milliseconds(0)).ok();
  std::printf("%s\n", json({{"events", n}, {"seconds", secs}, {"us_per_event", secs * 1e6 / n}}).dump().c_str());
  return 0;
}

int run_open(int argc, char** argv) {
  auto f = flags(argc, argv);
  agentburn::Options o;
  o.buffer_root = f.at("--root");
  o.close_timeout_ms = 0;
  auto t0 = Clock::now();
  auto client = agentburn::Client::open(o);
  if (!client.ok()) die("Client::open: " + client.status().to_string());
  double secs = seconds_since(t0);
  std::uint64_t pending = client->stats().pending;
  if (f.count("--crash")) {
    std::printf("%s\n", json({{"open_s", secs}, {"pending", pending}}).dump().c_str());
    std::fflush(stdout);
    _exit(0);  // as a killed process: no close, so no saved counters
  }
  client->close(std::chrono::milliseconds(0)).ok();
  std::printf("%s\n", json({{"open_s", secs}, {"pending", pending}}).dump().c_str());
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "drain") return bench::run_drain(argc, argv);
  if (mode == "idle") return bench::run_idle(argc, argv);
  if (mode == "track") return bench::run_track(argc, argv);
  if (mode == "open") return bench::run_open(argc, argv);
  std::fprintf(stderr, "usage: agentburn_bench_child drain|idle|track|open --root DIR ...\n");
  return 2;
}
