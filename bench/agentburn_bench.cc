// agentburn_bench: every performance figure of agentburn as a ratio against a baseline
// measured in the same run, on the same machine, moments apart, because the machines it runs
// on are shared and noisy. Prints one table (figure | measured | baseline | ratio | target |
// met?) and the per-event cost of each stage of delivery.
//
//   agentburn_bench [--only track,cabi,buffered,system,delivery,python,backlog,idle,stages]
//                   [--quick] [--json FILE] [--tmp DIR] [--server PATH] [--python PATH]
//
// Latencies are steady_clock around each call, after a warm-up, with the subject and its
// baseline interleaved in rounds (ABBA) so that a noisy moment hits both. Each figure's
// method is written beside its code below and in BENCHMARKS.md.
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "agentburn/agentburn.h"
#include "agentburn/agentburn.hpp"
#include "common.hpp"
#include "event/codec.hpp"
#include "stages.hpp"

namespace bench {
namespace {

using nlohmann::json;
using agentburn::Client;
using agentburn::Durability;
using agentburn::Options;

const char* kApiKey = "bench-key";

struct Args {
  std::string tmp_base;
  std::string server = AGENTBURN_SERVER_PATH;
  std::string python = "python3";
  std::string python_bench = AGENTBURN_PYTHON_BENCH;
  std::string json_out;
  std::set<std::string> only;
  double scale = 1.0;  // --quick: a smoke run with small counts; its ratios mean little
};

struct Row {
  std::string figure, measured, baseline, ratio, target, met, note;
};

struct Run {
  Args args;
  std::string tmp;  // this run's folder, removed at the end
  std::vector<Row> rows;
  json results;
  double delivery_rate = 0;  // events/s of the 200k backlog, for the 1M backlog's drain

  bool wants(const std::string& group) const { return args.only.empty() || args.only.count(group); }
  std::size_t count(std::size_t full) const {
    return std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(full * args.scale)));
  }
  std::string dir(const std::string& name) { return make_temp_dir(tmp, name + "-"); }
  void add(Row r) {
    std::printf("  -> %s: %s (baseline %s), ratio %s, target %s: %s\n", r.figure.c_str(),
                r.measured.c_str(), r.baseline.c_str(), r.ratio.c_str(), r.target.c_str(),
                r.met.c_str());
    std::fflush(stdout);
    rows.push_back(std::move(r));
  }
};

// --- Formatting --------------------------------------------------------------------------

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string us(double v) { return fmt(v < 10 ? "%.2f us" : "%.1f us", v); }
std::string ratio(double v) { return fmt(v < 10 ? "%.2fx" : "%.0fx", v); }
std::string rate(double v) {
  std::string digits = std::to_string(static_cast<long long>(std::llround(v)));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out + " ev/s";
}
std::string mb(double kb) { return fmt("%.1f MB", kb / 1024.0); }
std::string yes(bool ok) { return ok ? "yes" : "NO"; }

json pct_json(const Percentiles& p) {
  return {{"n", p.n},         {"mean_us", p.mean_us}, {"p50_us", p.p50_us}, {"p90_us", p.p90_us},
          {"p99_us", p.p99_us}, {"p999_us", p.p999_us}, {"max_us", p.max_us}};
}

void say(const std::string& what) {
  std::printf("[%s]\n", what.c_str());
  std::fflush(stdout);
}

// --- Timing ----------------------------------------------------------------------------

using Call = std::function<void()>;

void time_calls(const Call& f, std::size_t n, std::vector<std::int64_t>* out) {
  out->reserve(out->size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    f();
    auto t1 = Clock::now();
    out->push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
}

// `warm` calls of each, then `total` timed calls of each in 4 rounds ordered A B B A A B B A.
void interleave(std::size_t total, std::size_t warm, const Call& a, std::vector<std::int64_t>* as,
                const Call& b, std::vector<std::int64_t>* bs) {
  for (std::size_t i = 0; i < warm; ++i) {
    a();
    b();
  }
  const int rounds = 4;
  std::size_t per = std::max<std::size_t>(1, total / rounds);
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      time_calls(a, per, as);
      time_calls(b, per, bs);
    } else {
      time_calls(b, per, bs);
      time_calls(a, per, as);
    }
  }
}

Client open_client(const Options& o) {
  auto c = Client::open(o);
  if (!c.ok()) die("Client::open: " + c.status().to_string());
  return std::move(c.value());
}

Options offline(const std::string& root, Durability d) {
  Options o;
  o.buffer_root = root;
  o.durability = d;
  o.close_timeout_ms = 0;
  return o;
}

Options online(const std::string& root, const std::string& url) {
  Options o = offline(root, Durability::kProcess);
  o.endpoint = url;
  o.api_key = kApiKey;
  return o;
}

// Closes a client that may leave events on disk (kTimeout is expected then).
void close_client(Client& c) {
  agentburn::Status s = c.close(std::chrono::milliseconds(0));
  if (!s.ok() && s.code() != agentburn::Status::Code::kTimeout) die("close: " + s.to_string());
}

// --- Rows ------------------------------------------------------------------------------

// C++ track(const Event&), process durability, one thread, against a raw RocksDB Put of
// the same event already encoded (WAL on, no sync) into a database with the buffer's
// write settings. Also the buffered-durability row, against the same raw put.
void row_track(Run& run, Durability d) {
  const bool process = d == Durability::kProcess;
  say(process ? "track(Event), process durability, vs raw RocksDB put"
              : "track(Event), buffered durability, vs raw RocksDB put");
  std::string root = run.dir(process ? "track-process" : "track-buffered");
  std::string raw_dir = run.dir("raw-put");
  Percentiles pt, pr;
  {
    Client client = open_client(offline(root, d));
    RawDb raw(raw_dir);
    agentburn::Event e = sample_event("agt_bench_0001");
    const std::string stored = stored_form(e);
    std::vector<std::int64_t> ts, rs;
    interleave(
        run.count(200000), run.count(20000),
        [&] { raw.put(stored); }, &rs,
        [&] {
          agentburn::Status s = client.track(e);
          if (!s.ok()) die("track: " + s.to_string());
        },
        &ts);
    pt = percentiles(ts);
    pr = percentiles(rs);
    close_client(client);
    run.results[process ? "track_process" : "track_buffered"] = {
        {"track", pct_json(pt)}, {"raw_put", pct_json(pr)}, {"event_bytes", stored.size()}};
  }
  remove_tree(root);
  remove_tree(raw_dir);
  if (process) {
    run.add({"C++ track(Event) p50, process", us(pt.p50_us), "raw put p50 " + us(pr.p50_us),
             ratio(pt.p50_us / pr.p50_us), "<= 1.5x", yes(pt.p50_us <= 1.5 * pr.p50_us),
             "p90 " + us(pt.p90_us) + ", p99.9 " + us(pt.p999_us) + "; raw put p99 " + us(pr.p99_us)});
    run.add({"C++ track(Event) p99, process", us(pt.p99_us), "own p50 " + us(pt.p50_us),
             ratio(pt.p99_us / pt.p50_us), "<= 5x", yes(pt.p99_us <= 5 * pt.p50_us),
             "raw put's own p99/p50: " + ratio(pr.p99_us / pr.p50_us)});
  } else {
    run.add({"C++ track(Event) p50, buffered", us(pt.p50_us), "raw put p50 " + us(pr.p50_us),
             ratio(pt.p50_us / pr.p50_us), "<= 0.3x", yes(pt.p50_us <= 0.3 * pr.p50_us),
             "p99 " + us(pt.p99_us)});
  }
}

// C ABI ab_client_track_json, process durability, against nlohmann::json::parse of the same
// JSON text plus the raw put of the event as the library stores it.
void row_cabi(Run& run) {
  say("C ABI ab_client_track_json, process durability, vs nlohmann parse + raw put");
  std::string root = run.dir("cabi");
  std::string raw_dir = run.dir("raw-put");
  Percentiles pt, pb;
  {
    ab_options* opts = nullptr;
    ab_client* c = nullptr;
    if (ab_options_new(&opts) != AB_OK || ab_options_set_buffer_root(opts, root.c_str()) != AB_OK ||
        ab_options_set_durability(opts, AB_DURABILITY_PROCESS) != AB_OK ||
        ab_client_open(&c, opts) != AB_OK) {
      die(std::string("ab_client_open: ") + ab_last_error());
    }
    ab_options_free(opts);
    RawDb raw(raw_dir);
    const std::string text = sample_event_json("agt_bench_0001");
    agentburn::Event parsed;
    agentburn::detail::FieldError err;
    if (!agentburn::detail::parse_event_json(text, &parsed, &err)) die(err.message);
    const std::string stored = stored_form(parsed);
    std::size_t sink = 0;
    std::vector<std::int64_t> ts, bs;
    interleave(
        run.count(200000), run.count(20000),
        [&] {
          nlohmann::json doc = nlohmann::json::parse(text);
          sink += doc.size();
          raw.put(stored);
        },
        &bs,
        [&] {
          if (ab_client_track_json(c, text.data(), text.size()) != AB_OK) {
            die(std::string("ab_client_track_json: ") + ab_last_error());
          }
        },
        &ts);
    if (sink == 0) die("parse produced nothing");
    pt = percentiles(ts);
    pb = percentiles(bs);
    int rc = ab_client_close(c, 0);
    if (rc != AB_OK && rc != AB_ETIMEOUT) die(std::string("ab_client_close: ") + ab_last_error());
    run.results["cabi_track_json"] = {{"track_json", pct_json(pt)}, {"parse_plus_put", pct_json(pb)},
                                      {"json_bytes", text.size()}};
  }
  remove_tree(root);
  remove_tree(raw_dir);
  run.add({"C ABI ab_client_track_json p50, process", us(pt.p50_us),
           "parse + raw put p50 " + us(pb.p50_us), ratio(pt.p50_us / pb.p50_us), "<= 1.3x",
           yes(pt.p50_us <= 1.3 * pb.p50_us), "p99 " + us(pt.p99_us)});
}

// System durability: 8 threads tracking at once, events/s, against one thread doing fsync'd
// raw puts (sync=true) one event at a time. How long an fsync takes on a shared virtual disk
// changes by an order of magnitude from one second to the next, so the two (and two more
// for reference: track from 1 thread, raw fsync'd puts from 8 threads) run in short windows
// taking turns, 4 rounds in rotating order, and each figure is its events over its time.
void row_system(Run& run) {
  say("system durability, 8 threads, vs one fsync'd put per event on one thread");
  const double window = run.args.scale < 1 ? 0.2 : 0.6;
  const int rounds = 4;
  agentburn::Event e = sample_event("agt_bench_0001");
  const std::string stored = stored_form(e);
  // `threads` threads calling `call` for `window` seconds; adds to the subject's totals.
  struct Subject {
    const char* name;
    int threads;
    std::function<void()> call;
    std::uint64_t events = 0;
    double seconds = 0;
    std::vector<double> rates;  // per window
  };
  auto hammer = [&](Subject& s) {
    std::atomic<bool> go{false};
    std::atomic<std::uint64_t> total{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < s.threads; ++i) {
      ts.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        auto t0 = Clock::now();
        std::uint64_t n = 0;
        while (seconds_since(t0) < window) {
          s.call();
          ++n;
        }
        total += n;
      });
    }
    auto t0 = Clock::now();
    go = true;
    for (auto& t : ts) t.join();
    double secs = seconds_since(t0);
    s.events += total.load();
    s.seconds += secs;
    s.rates.push_back(static_cast<double>(total.load()) / secs);
  };
  std::string raw1_dir = run.dir("raw-sync-1"), raw8_dir = run.dir("raw-sync-8");
  std::string root = run.dir("system");
  std::vector<Subject> subjects;
  {
    RawDb raw1(raw1_dir), raw8(raw8_dir);
    Client client = open_client(offline(root, Durability::kSystem));
    auto track = [&] {
      agentburn::Status st = client.track(e);
      if (!st.ok()) die("track: " + st.to_string());
    };
    subjects.push_back({"raw fsync'd put, 1 thread", 1, [&] { raw1.put(stored, true); }});
    subjects.push_back({"track, system, 8 threads", 8, track});
    subjects.push_back({"track, system, 1 thread", 1, track});
    subjects.push_back({"raw fsync'd put, 8 threads", 8, [&] { raw8.put(stored, true); }});
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t i = 0; i < subjects.size(); ++i) hammer(subjects[(i + r) % subjects.size()]);
    }
    close_client(client);
  }
  remove_tree(raw1_dir);
  remove_tree(raw8_dir);
  remove_tree(root);
  auto rate_of = [](const Subject& s) { return static_cast<double>(s.events) / s.seconds; };
  double base = rate_of(subjects[0]), eight = rate_of(subjects[1]), one = rate_of(subjects[2]),
         raw8r = rate_of(subjects[3]);
  json j = json::object();
  for (const auto& s : subjects) j[s.name] = {{"rate", rate_of(s)}, {"per_window", s.rates}};
  j["window_s"] = window;
  j["rounds"] = rounds;
  run.results["system"] = j;
  auto lo_hi = [&](const Subject& s) {
    auto [lo, hi] = std::minmax_element(s.rates.begin(), s.rates.end());
    return rate(*lo) + " to " + rate(*hi);
  };
  run.add({"system durability, 8 threads", rate(eight), "fsync'd put, 1 thread " + rate(base),
           ratio(eight / base), ">= 6x", yes(eight >= 6 * base),
           "per window: fsync'd put " + lo_hi(subjects[0]) + ", track 8 threads " +
               lo_hi(subjects[1]) + "; track, 1 thread: " + rate(one) +
               "; raw fsync'd puts from 8 threads (RocksDB's own group commit): " + rate(raw8r) +
               ", so track reaches " + ratio(eight / raw8r) + " of it"});
}

// Writes `n` events into an offline client under `root` and closes it: the backlog a
// process leaves when the network was down. Returns the seconds it took.
double write_backlog(const std::string& root, const std::string& agent, std::size_t n) {
  auto t0 = Clock::now();
  Client client = open_client(offline(root, Durability::kProcess));
  agentburn::Event e = sample_event(agent);
  for (std::size_t i = 0; i < n; ++i) {
    // Counts, cost and task vary as an agent's do; the rest is the sample event.
    e.input_tokens = 500 + static_cast<std::int64_t>((i * 7919) % 60000);
    e.output_tokens = 50 + static_cast<std::int64_t>((i * 104729) % 8000);
    e.cost_usd = static_cast<double>(*e.input_tokens) * 3e-6 + static_cast<double>(*e.output_tokens) * 15e-6;
    e.task_id = "ticket-" + std::to_string(1000 + i / 25);
    agentburn::Status s = client.track(e);
    if (!s.ok()) die("track: " + s.to_string());
  }
  if (client.stats().pending != n) die("the backlog does not hold every event");
  close_client(client);
  return seconds_since(t0);
}

json python_bench(Run& run, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {run.args.python, run.args.python_bench};
  args.insert(args.end(), extra.begin(), extra.end());
  return json::parse(run_capture(args, 600));
}

// Delivery: a backlog of 200k events written offline, then a client opened with the server
// as endpoint; events/s from open's return to flush's, against the seed's Python SDK (one
// requests.post per event) timed on a sample against the same server, before and after.
// The default (two batches in flight) runs in rounds with one and four in flight, in turns,
// and each figure is the median of its rounds: a neighbour's burst then moves one sample,
// not the ratio.
void row_delivery(Run& run) {
  say("delivery of a 200k backlog to agentburn-server, vs the seed's Python SDK");
  const std::size_t n = run.count(200000);
  const int rounds = run.args.scale < 1 ? 1 : 3;
  Server server(run.args.server, run.dir("server"), kApiKey);
  std::string agent = register_agent(server.url(), "bench-agent");
  auto seed_sample = [&] {
    return python_bench(run, {"seed", "--url", server.url(), "--key", kApiKey, "--agent", agent,
                              "--count", std::to_string(run.count(3000))});
  };
  json seed_before = seed_sample();

  const int slots = agentburn::Options().max_batches_in_flight;  // the default
  std::map<int, std::vector<double>> rates;
  double write_s = 0, open_s = 0;
  for (int round = 0; round < rounds; ++round) {
    std::vector<int> order = {slots, 1, 4};
    if (round % 2) std::reverse(order.begin(), order.end());
    for (int k : order) {
      std::string root = run.dir("backlog-200k-" + std::to_string(k));
      write_s = write_backlog(root, agent, n);
      std::uint64_t before = server_events_stored(server.url(), kApiKey);
      Drain d = drain(root, server.url(), kApiKey, k);
      // The server's count is the truth: stats().delivered, read right after flush() returns,
      // can still lack the last batch (the sender counts it after deleting it from the buffer).
      std::uint64_t arrived = server_events_stored(server.url(), kApiKey) - before;
      if (arrived != n) {
        die("the server stored " + std::to_string(arrived) + " events of " + std::to_string(n));
      }
      remove_tree(root);
      rates[k].push_back(static_cast<double>(n) / d.drain_s);
      if (k == slots) open_s = std::max(open_s, d.open_s);
    }
  }
  json seed_after = seed_sample();
  server.stop();
  const double seed_rate =
      (seed_before.at("rate").get<double>() + seed_after.at("rate").get<double>()) / 2;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  auto list = [&](const std::vector<double>& v) {
    std::string out;
    for (double x : v) out += (out.empty() ? "" : ", ") + rate(x);
    return out;
  };
  const double r = median(rates[slots]);
  run.delivery_rate = r;
  run.results["delivery"] = {{"events", n},
                             {"seed_before", seed_before},
                             {"seed_after", seed_after},
                             {"seed_rate", seed_rate},
                             {"write_backlog_s", write_s},
                             {"max_open_s", open_s},
                             {"max_batches_in_flight", slots},
                             {"rate", r},
                             {"rates_default", rates[slots]},
                             {"rates_1_in_flight", rates[1]},
                             {"rates_4_in_flight", rates[4]}};
  run.add({"delivery, 200k backlog, events/s", rate(r),
           "seed SDK " + rate(seed_rate), ratio(r / seed_rate), ">= 100x",
           yes(r >= 100 * seed_rate),
           "median of " + std::to_string(rounds) + " rounds (" + list(rates[slots]) +
               ") with max_batches_in_flight " + std::to_string(slots) +
               ", the default; with 1: " + list(rates[1]) + "; with 4: " + list(rates[4]) +
               "; the seed SDK before and after: " + rate(seed_before.at("rate").get<double>()) +
               ", " + rate(seed_after.at("rate").get<double>()) +
               "; the open that takes the backlog over (at most " + fmt("%.2f s", open_s) +
               ") is not counted"});
}

// Python: the package's AgentBurn.track against the seed SDK's track, same server.
void row_python(Run& run) {
  say("Python track per event: agentburn package vs the seed's SDK");
  Server server(run.args.server, run.dir("server"), kApiKey);
  std::string agent = register_agent(server.url(), "bench-agent");
  std::string buffer = run.dir("python-buffer");
  json r = python_bench(run, {"compare", "--url", server.url(), "--key", kApiKey, "--agent", agent,
                              "--seed-count", std::to_string(run.count(3000)), "--ours-count",
                              std::to_string(run.count(50000)), "--buffer-dir", buffer});
  server.stop();
  remove_tree(buffer);
  run.results["python"] = r;
  double seed_us = r.at("seed").at("per_event_us").get<double>();
  double ours_us = r.at("ours").at("per_event_us").get<double>();
  run.add({"Python track per event", us(ours_us), "seed SDK " + us(seed_us), ratio(seed_us / ours_us),
           ">= 100x faster", yes(seed_us >= 100 * ours_us),
           "mean per call while the sender delivers to the server on the same machine; ours p50 " +
               us(r.at("ours").at("p50_us").get<double>()) + ", p99 " +
               us(r.at("ours").at("p99_us").get<double>()) + "; ours with no endpoint: mean " +
               us(r.at("ours_offline").at("per_event_us").get<double>()) + ", p50 " +
               us(r.at("ours_offline").at("p50_us").get<double>()) + "; seed p50 " +
               us(r.at("seed").at("p50_us").get<double>())});
}

// A 1M-event offline backlog: bytes per event on disk, reopen time, then a child process
// that only drains it (its VmHWM is the peak RSS), at what rate.
void row_backlog(Run& run) {
  say("a 1M-event offline backlog: disk, reopen, drain rate and peak RSS");
  const std::size_t n = run.count(1000000);
  Server server(run.args.server, run.dir("server"), kApiKey);
  std::string agent = register_agent(server.url(), "bench-agent");
  std::string root = run.dir("backlog-1m");
  double wrote_s = write_backlog(root, agent, n);

  // Disk: the buffer root as the closed client left it (SST files, the WAL, agents.json).
  std::uint64_t left_bytes = tree_bytes(root);
  // And a copy of it flushed and fully compacted, for what compaction could reach.
  std::string compacted = run.dir("backlog-compacted");
  std::string folder;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.is_directory()) folder = entry.path().filename();
  }
  copy_tree(root + "/" + folder, compacted + "/" + folder);
  flush_and_compact_buffer_folder(compacted + "/" + folder);
  std::uint64_t compacted_bytes = tree_bytes(compacted);
  remove_tree(compacted);

  // Reopen, offline: the new client takes over the folder the backlog left.
  double reopen_s;
  {
    auto t0 = Clock::now();
    Client client = open_client(offline(root, Durability::kProcess));
    reopen_s = seconds_since(t0);
    if (client.stats().pending != n) die("the reopened backlog does not hold every event");
    close_client(client);
  }
  std::uint64_t after_reopen_bytes = tree_bytes(root);
  // After a crash: a process takes the folder over and dies without closing, so the next open
  // finds no saved counters and counts the events.
  run_capture({AGENTBURN_BENCH_CHILD, "open", "--root", root, "--crash", "1"}, 300);
  json recount = json::parse(run_capture({AGENTBURN_BENCH_CHILD, "open", "--root", root}, 300));
  if (recount.at("pending").get<std::uint64_t>() != n) die("the recounted backlog is not whole");
  double recount_s = recount.at("open_s").get<double>();

  // Drain, in a child process that does nothing else.
  json child = json::parse(run_capture({AGENTBURN_BENCH_CHILD, "drain", "--root", root, "--url",
                                        server.url(), "--key", kApiKey},
                                       900));
  std::uint64_t stored = server_events_stored(server.url(), kApiKey);
  server.stop();
  remove_tree(root);
  if (stored != n) die("the server stored " + std::to_string(stored) + " of " + std::to_string(n));
  double drain_rate = static_cast<double>(n) / child.at("drain_s").get<double>();
  double per_event = static_cast<double>(left_bytes) / static_cast<double>(n);
  run.results["backlog"] = {{"events", n},
                            {"write_s", wrote_s},
                            {"disk_bytes_as_left", left_bytes},
                            {"disk_bytes_compacted", compacted_bytes},
                            {"disk_bytes_after_reopen", after_reopen_bytes},
                            {"reopen_s", reopen_s},
                            {"reopen_after_crash_s", recount_s},
                            {"child", child},
                            {"drain_rate", drain_rate}};
  run.add({"1M backlog: reopen", fmt("%.2f s", reopen_s), "none", "-", "< 1 s", yes(reopen_s < 1.0),
           "after a crash (no saved counters: the events are counted): " +
               fmt("%.2f s", recount_s) + "; the drain's own open: " +
               fmt("%.2f s", child.at("open_s").get<double>())});
  if (run.delivery_rate > 0) {
    run.add({"1M backlog: drain rate", rate(drain_rate), "200k backlog " + rate(run.delivery_rate),
             ratio(drain_rate / run.delivery_rate), ">= 0.9x (the delivery rate, within noise)",
             yes(drain_rate >= 0.9 * run.delivery_rate), ""});
  } else {
    run.add({"1M backlog: drain rate", rate(drain_rate), "(delivery row not run)", "-",
             "the delivery rate", "-", ""});
  }
  double hwm = child.at("hwm_kb").get<double>();
  run.add({"1M backlog: peak RSS while it drains", mb(hwm), "none", "-", "< 128 MB",
           yes(hwm < 128 * 1024),
           "VmHWM of a child that only opens and drains; RSS sampled every 25 ms peaked at " +
               mb(child.at("max_rss_kb").get<double>()) + ", " +
               mb(child.at("rss_before_kb").get<double>()) + " before open"});
  run.add({"1M backlog: bytes per event on disk", fmt("%.0f B", per_event), "none", "-", "< 250 B",
           yes(per_event < 250),
           "buffer root as closed (no manual flush or compaction); flushed and fully compacted: " +
               fmt("%.0f B", static_cast<double>(compacted_bytes) / static_cast<double>(n)) +
               "; after the reopens: " +
               fmt("%.0f B", static_cast<double>(after_reopen_bytes) / static_cast<double>(n))});
}

// Idle: a child process that opens a client with an endpoint (the sender thread exists),
// lets it settle, then measures RSS and the CPU time it used over a window.
void row_idle(Run& run) {
  say("idle client with an endpoint: RSS and CPU");
  Server server(run.args.server, run.dir("server"), kApiKey);
  std::string root = run.dir("idle");
  const double window = run.args.scale < 1 ? 1.0 : 5.0;
  json child = json::parse(run_capture({AGENTBURN_BENCH_CHILD, "idle", "--root", root, "--url",
                                        server.url(), "--key", kApiKey, "--seconds", fmt("%.1f", window)},
                                       120));
  server.stop();
  remove_tree(root);
  run.results["idle"] = child;
  double rss = child.at("rss_kb").get<double>();
  double cpu_pct = 100.0 * child.at("cpu_s").get<double>() / child.at("window_s").get<double>();
  std::string top;
  for (const auto& m : child.at("rss_by_mapping")) {
    if (top.size() > 200) break;
    top += (top.empty() ? "" : ", ") + m.at("mapping").get<std::string>() + " " +
           mb(m.at("kb").get<double>());
  }
  run.add({"idle client: RSS", mb(rss), "none", "-", "< 20 MB", yes(rss < 20 * 1024),
           "of which file-backed (shared library pages) " + mb(child.at("rss_file_kb").get<double>()) +
               ", anonymous " + mb(child.at("rss_anon_kb").get<double>()) + "; the same process before open: " +
               mb(child.at("rss_before_kb").get<double>()) + " (anonymous " +
               mb(child.at("rss_anon_before_kb").get<double>()) + "); largest mappings: " + top + "; " +
               std::to_string(child.at("threads").get<int>()) + " threads"});
  run.add({"idle client: CPU", fmt("%.2f%% of a core", cpu_pct), "none", "-", "< 1% of a core",
           yes(cpu_pct < 1.0),
           fmt("%.0f ms", 1000 * child.at("cpu_s").get<double>()) + " over " +
               fmt("%.0f s", child.at("window_s").get<double>()) + "; " +
               fmt("%.1f", child.at("wakeups_per_s").get<double>()) + " context switches/s"});
}

void row_stages(Run& run) {
  say("delivery, stage by stage");
  StageConfig c;
  c.tmp = run.tmp;
  c.server_binary = run.args.server;
  c.events = run.count(50000);
  if (c.events < c.batch) c.batch = c.events;
  run.results["stages"] = stage_costs(c);
}

// --- Output ----------------------------------------------------------------------------

std::string read_first_line(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "?";
}

std::string machine() {
  utsname u{};
  uname(&u);
  return std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " +
         read_first_line("/proc/cpuinfo", "model name") + ", Linux " + u.release + ", " +
         fmt("%.0f GiB", static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                             static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30)) +
         " RAM";
}

void print_tables(const Run& run) {
  std::printf("\n## Results\n\nmachine: %s\n\n", machine().c_str());
  std::printf("| figure | measured | baseline (same run) | ratio | target | met? |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& r : run.rows) {
    std::printf("| %s | %s | %s | %s | %s | %s |\n", r.figure.c_str(), r.measured.c_str(),
                r.baseline.c_str(), r.ratio.c_str(), r.target.c_str(), r.met.c_str());
  }
  std::printf("\nnotes:\n");
  for (const auto& r : run.rows) {
    if (!r.note.empty()) std::printf("- %s: %s\n", r.figure.c_str(), r.note.c_str());
  }
  if (run.results.contains("stages")) {
    const json& s = run.results["stages"];
    double sum = s["sum_us_per_event"].get<double>();
    std::printf("\n## Delivery, stage by stage (%zu events, batches of %zu, %zu-byte bodies)\n\n",
                s["events"].get<std::size_t>(), s["batch"].get<std::size_t>(),
                s["body_bytes_per_batch"].get<std::size_t>());
    std::printf("| side | stage | us per event | ms per batch | share of the sum |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const auto& st : s["stages"]) {
      double u = st["us_per_event"].get<double>();
      std::printf("| %s | %s | %.3f | %.2f | %.0f%% |\n", st["group"].get<std::string>().c_str(),
                  st["stage"].get<std::string>().c_str(), u, st["ms_per_batch"].get<double>(),
                  100 * u / sum);
    }
    std::printf("| | sum of the stages | %.3f | %.2f | 100%% |\n", sum, sum);
    std::printf("| | real round trip to agentburn-server (the sender's transport) | %.3f | %.2f | |\n",
                s["real_round_trip_us_per_event"].get<double>(),
                s["real_round_trip_ms_per_batch"].get<double>());
    if (run.delivery_rate > 0) {
      double batch = s["batch"].get<double>();
      std::printf("| | end to end, the 200k delivery row (1 / rate) | %.3f | %.2f | |\n",
                  1e6 / run.delivery_rate, 1e3 * batch / run.delivery_rate);
    }
    std::printf("\ntrack side, for reference: validate + encode %.3f us/event, Buffer::append "
                "(process) %.3f us/event\n",
                s["track_validate_encode_us_per_event"].get<double>(),
                s["track_buffer_append_us_per_event"].get<double>());
  }
  int missed = 0;
  for (const auto& r : run.rows) missed += r.met == "NO";
  std::printf("\n%zu figures, %d met, %d not met\n", run.rows.size(),
              static_cast<int>(run.rows.size()) - missed -
                  static_cast<int>(std::count_if(run.rows.begin(), run.rows.end(),
                                                 [](const Row& r) { return r.met == "-"; })),
              missed);
}

int usage() {
  std::fprintf(stderr,
               "usage: agentburn_bench [--only GROUPS] [--quick] [--json FILE] [--tmp DIR]\n"
               "                       [--server PATH] [--python PATH]\n"
               "GROUPS: comma-separated of track,cabi,buffered,system,delivery,python,backlog,"
               "idle,stages\n");
  return 2;
}

int main_bench(int argc, char** argv) {
  Run run;
  const char* tmpdir = std::getenv("TMPDIR");
  run.args.tmp_base = tmpdir && *tmpdir ? tmpdir : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage());
      return argv[++i];
    };
    if (a == "--only") {
      std::stringstream ss(value());
      std::string g;
      while (std::getline(ss, g, ',')) run.args.only.insert(g);
    } else if (a == "--quick") {
      run.args.scale = 0.05;
    } else if (a == "--json") {
      run.args.json_out = value();
    } else if (a == "--tmp") {
      run.args.tmp_base = value();
    } else if (a == "--server") {
      run.args.server = value();
    } else if (a == "--python") {
      run.args.python = value();
    } else {
      return usage();
    }
  }
  // The Python rows load this build's package and library unless told otherwise.
  const char* pp = std::getenv("PYTHONPATH");
  std::string pythonpath = std::string(AGENTBURN_PYTHON_PATH) + (pp && *pp ? ":" + std::string(pp) : "");
  setenv("PYTHONPATH", pythonpath.c_str(), 1);
  setenv("AGENTBURN_LIBRARY", AGENTBURN_C_LIBRARY, 0);
  signal(SIGPIPE, SIG_IGN);

  run.tmp = make_temp_dir(run.args.tmp_base, "agentburn-bench-");
  std::printf("agentburn_bench: %s\n", machine().c_str());
  auto t0 = Clock::now();
  if (run.wants("track")) row_track(run, Durability::kProcess);
  if (run.wants("cabi")) row_cabi(run);
  if (run.wants("buffered")) row_track(run, Durability::kBuffered);
  if (run.wants("system")) row_system(run);
  if (run.wants("delivery")) row_delivery(run);
  if (run.wants("python")) row_python(run);
  if (run.wants("backlog")) row_backlog(run);
  if (run.wants("idle")) row_idle(run);
  if (run.wants("stages")) row_stages(run);
  remove_tree(run.tmp);
  run.results["machine"] = machine();
  run.results["seconds"] = seconds_since(t0);
  json rows = json::array();
  for (const auto& r : run.rows) {
    rows.push_back({{"figure", r.figure}, {"measured", r.measured}, {"baseline", r.baseline},
                    {"ratio", r.ratio}, {"target", r.target}, {"met", r.met}, {"note", r.note}});
  }
  run.results["rows"] = rows;
  print_tables(run);
  std::printf("\n(%.0f s)\n", seconds_since(t0));
  if (!run.args.json_out.empty()) {
    std::ofstream(run.args.json_out) << run.results.dump(2) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  return bench::main_bench(argc, argv);
}
