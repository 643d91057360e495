// agentburn_micro: Google Benchmark timings (means) of the pieces of track() and of the
// sender's read, each beside the raw RocksDB operation it sits on, so that a regression in
// one stage shows by itself. The percentiles and the targets are agentburn_bench's.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "agentburn/agentburn.h"
#include "agentburn/agentburn.hpp"
#include "common.hpp"
#include "event/codec.hpp"
#include "pricing/catalog.hpp"
#include "pricing/usage.hpp"
#include "store/buffer.hpp"
#include "store/buffer_internal.hpp"

namespace {

using namespace bench;
namespace detail = agentburn::detail;

std::string& tmp_base() {
  static std::string base = make_temp_dir(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                          "agentburn-micro-");
  return base;
}

const agentburn::Event& event() {
  static agentburn::Event e = sample_event("agt_bench_0001");
  return e;
}

const std::string& event_json() {
  static std::string j = sample_event_json("agt_bench_0001");
  return j;
}

const std::string& stored() {
  static std::string s = stored_form(event());
  return s;
}

// What the benchmarks keep open between runs, closed before the temporary folder goes.
struct Open {
  std::map<agentburn::Durability, std::unique_ptr<agentburn::Client>> clients;
  std::unique_ptr<RawDb> raw;
  std::unique_ptr<detail::Buffer> buffer;
  ab_client* cabi = nullptr;
  void close() {
    clients.clear();
    raw.reset();
    if (buffer) buffer->close().ok();
    buffer.reset();
    if (cabi) ab_client_close(cabi, 0);
    cabi = nullptr;
  }
};
Open g_open;

agentburn::Client& client(agentburn::Durability d) {
  auto& c = g_open.clients[d];
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "client-");
    o.durability = d;
    o.close_timeout_ms = 0;
    o.ledger = false;  // the baseline: BM_TrackProcessLedger keeps it (the default)
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  return *c;
}

void BM_RawPut(benchmark::State& state) {
  if (!g_open.raw) g_open.raw = std::make_unique<RawDb>(make_temp_dir(tmp_base(), "raw-"));
  for (auto _ : state) g_open.raw->put(stored());
}
BENCHMARK(BM_RawPut);

void BM_NlohmannDump(benchmark::State& state) {
  nlohmann::json doc = nlohmann::json::parse(stored());
  for (auto _ : state) {
    std::string s = doc.dump();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_NlohmannDump);

void BM_NlohmannParse(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::json doc = nlohmann::json::parse(event_json());
    benchmark::DoNotOptimize(doc);
  }
}
BENCHMARK(BM_NlohmannParse);

void BM_EncodeEvent(benchmark::State& state) {
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::validate_event(event(), true, false, &norm, &err)) die(err.message);
  for (auto _ : state) {
    std::string out;
    out.reserve(256);
    detail::encode_event(event(), norm, false, &out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_EncodeEvent);

void BM_ValidateEvent(benchmark::State& state) {
  for (auto _ : state) {
    detail::Normalized norm;
    detail::FieldError err;
    bool ok = detail::validate_event(event(), true, false, &norm, &err);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_ValidateEvent);

void BM_NewUuidV7(benchmark::State& state) {
  for (auto _ : state) {
    std::string u = detail::new_uuid_v7();
    benchmark::DoNotOptimize(u);
  }
}
BENCHMARK(BM_NewUuidV7);

void BM_FormatTimestampNow(benchmark::State& state) {
  for (auto _ : state) {
    std::string t = detail::format_timestamp_ms(detail::now_unix_ms());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_FormatTimestampNow);

// The sample event with a small metadata object, as agents often send.
const std::string& event_json_metadata() {
  static std::string j = event_json().substr(0, event_json().size() - 1) +
                         R"(,"metadata":{"ticket":"CTMS-5109","attempt":2,"tags":["triage","p1"]}})";
  return j;
}

void parse_event(benchmark::State& state, const std::string& json) {
  for (auto _ : state) {
    agentburn::Event e;
    detail::FieldError err;
    bool ok = detail::parse_event_json(json, &e, &err);
    if (!ok) die(err.message);
    benchmark::DoNotOptimize(e);
  }
}

// parse_event_json takes the sample event by its fast path; the checked parse (a DOM with
// every check, which refusals go through) is beside it for comparison.
void BM_ParseEventJson(benchmark::State& state) { parse_event(state, event_json()); }
BENCHMARK(BM_ParseEventJson);

void BM_ParseEventJsonMetadata(benchmark::State& state) {
  parse_event(state, event_json_metadata());
}
BENCHMARK(BM_ParseEventJsonMetadata);

void BM_ParseEventJsonChecked(benchmark::State& state) {
  for (auto _ : state) {
    agentburn::Event e;
    detail::FieldError err;
    bool ok = detail::parse_event_json_checked(event_json(), &e, &err);
    if (!ok) die(err.message);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_ParseEventJsonChecked);

void BM_BufferAppendProcess(benchmark::State& state) {
  if (!g_open.buffer) {
    detail::BufferOptions bo;
    bo.root = make_temp_dir(tmp_base(), "buffer-");
    bo.durability = agentburn::Durability::kProcess;
    agentburn::Status s = detail::Buffer::open(bo, &g_open.buffer);
    if (!s.ok()) die(s.to_string());
  }
  for (auto _ : state) {
    agentburn::Status s = g_open.buffer->append(stored());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_BufferAppendProcess);

void BM_TrackProcess(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcess);

// The same event with its costUsd left out: priced from its model and tokens by the catalog.
// Against BM_TrackProcess: the cost of pricing in track().
void BM_TrackProcessComputedCost(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  agentburn::Event e = event();
  e.cost_usd.reset();
  e.model = "claude-sonnet-4-5";  // a catalog name (the sample's model is written otherwise)
  for (auto _ : state) {
    agentburn::Status s = c.track(e);
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessComputedCost);

// A client with 10 budgets defined: five that match the sample event (its agent, its
// provider, every event, each task, each workflow) and five that do not, with periods of
// every kind; so each track writes its ledger row and counts its cost in five windows.
agentburn::Client& budget_client() {
  static std::unique_ptr<agentburn::Client> c;
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "budgets-");
    o.close_timeout_ms = 0;
    const agentburn::BudgetPeriod periods[] = {
        agentburn::BudgetPeriod::kDaily, agentburn::BudgetPeriod::kWeekly,
        agentburn::BudgetPeriod::kMonthly, agentburn::BudgetPeriod::kTotal};
    agentburn::Event e = event();
    for (int i = 0; i < 10; ++i) {
      agentburn::Budget b;
      b.name = "budget-" + std::to_string(i);
      b.limit_usd = 1e9;
      b.period = periods[i % 4];
      bool match = i < 5;
      switch (i % 5) {
        case 0: b.agent_id = match ? e.agent_id : "someone-else"; break;
        case 1: b.provider = match ? e.provider : "nobody"; break;
        case 2: if (!match) b.model = "no-such-model"; break;
        case 3: b.task_id = match ? "*" : "no-task"; break;
        case 4: b.workflow_id = match ? "*" : "no-workflow"; break;
      }
      o.budgets.push_back(b);
    }
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  return *c;
}

// track() with 10 budgets defined. Against BM_TrackProcess: the ledger row written in the
// event's batch and the windows counted.
void BM_TrackProcessBudgets10(benchmark::State& state) {
  auto& c = budget_client();
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessBudgets10);

// track() with the ledger on (the default) and no budget. The row is written when the event
// leaves the folder, by the sender: BM_LedgerFoldEvent is that cost, per event.
void BM_TrackProcessLedger(benchmark::State& state) {
  static std::unique_ptr<agentburn::Client> c;
  if (!c) {
    agentburn::Options o;
    o.buffer_root = make_temp_dir(tmp_base(), "ledger-");
    o.close_timeout_ms = 0;
    o.ledger = true;
    auto r = agentburn::Client::open(o);
    if (!r.ok()) die(r.status().to_string());
    c = std::make_unique<agentburn::Client>(std::move(r.value()));
  }
  for (auto _ : state) {
    agentburn::Status s = c->track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackProcessLedger);

// What the sender adds per delivered event with the ledger on: the event's row computed from
// its stored text and summed into the batch's rows (encoded and written once per row).
void BM_LedgerFoldEvent(benchmark::State& state) {
  for (auto _ : state) {
    detail::LedgerFold fold;
    fold.add(stored());
    benchmark::DoNotOptimize(fold);
  }
}
BENCHMARK(BM_LedgerFoldEvent);

// reserve() then track(event, reservation) with the same 10 budgets. Against
// BM_TrackProcessBudgets10: what the reservation adds to the track it settles.
void BM_ReserveSettleBudgets10(benchmark::State& state) {
  auto& c = budget_client();
  agentburn::ReserveRequest req;
  agentburn::Event e = event();
  req.agent_id = e.agent_id;
  req.provider = e.provider;
  req.task_id = e.task_id;
  req.workflow_id = e.workflow_id;
  req.model = e.model;
  req.estimate_usd = 0.01;
  for (auto _ : state) {
    auto r = c.reserve(req);
    if (!r.ok()) die(r.status().to_string());
    agentburn::Status s = c.track(e, r.value());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_ReserveSettleBudgets10);

// One catalog lookup, cycling through an exact name, a provider-prefixed one, a dated
// snapshot's fallback and a miss.
void BM_PriceLookup(benchmark::State& state) {
  const auto& catalog = agentburn::pricing::Catalog::builtin();
  const char* models[] = {"gpt-4o", "claude-sonnet-4-5", "gpt-4o-2099-01-01", "no-such-model"};
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += static_cast<bool>(catalog.lookup("openai", models[i++ & 3]));
  }
  benchmark::DoNotOptimize(hits);
}
BENCHMARK(BM_PriceLookup);

// usage_from_response on a 2 KB OpenAI Chat Completions body.
void BM_UsageFromResponse2KB(benchmark::State& state) {
  std::string body =
      R"({"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"gpt-4o-2024-08-06",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":")" +
      std::string(1700, 'x') +
      R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,)"
      R"("prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},)"
      R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},)"
      R"("system_fingerprint":"fp_1"})";
  for (auto _ : state) {
    auto u = agentburn::pricing::usage_from_response("openai", body);
    if (!u.ok()) die(u.status().to_string());
    benchmark::DoNotOptimize(u->tokens.input);
  }
  state.counters["bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_UsageFromResponse2KB);

void BM_TrackBuffered(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kBuffered);
  for (auto _ : state) {
    agentburn::Status s = c.track(event());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackBuffered);

void BM_TrackJsonProcess(benchmark::State& state) {
  auto& c = client(agentburn::Durability::kProcess);
  for (auto _ : state) {
    agentburn::Status s = c.track_json(event_json());
    if (!s.ok()) die(s.to_string());
  }
}
BENCHMARK(BM_TrackJsonProcess);

void BM_CAbiTrackJsonProcess(benchmark::State& state) {
  if (!g_open.cabi) {
    ab_options* o = nullptr;
    std::string root = make_temp_dir(tmp_base(), "cabi-");
    if (ab_options_new(&o) != AB_OK || ab_options_set_buffer_root(o, root.c_str()) != AB_OK ||
        ab_client_open(&g_open.cabi, o) != AB_OK) {
      die(ab_last_error());
    }
    ab_options_free(o);
  }
  ab_client* c = g_open.cabi;
  const std::string& j = event_json();
  for (auto _ : state) {
    if (ab_client_track_json(c, j.data(), j.size()) != AB_OK) die(ab_last_error());
  }
}
BENCHMARK(BM_CAbiTrackJsonProcess);

// The sender's read: 1,000 events per read_next from a buffer of 200k (the cursor wraps by
// reopening when it reaches the end).
void BM_ReadNext1000(benchmark::State& state) {
  detail::BufferOptions bo;
  bo.root = make_temp_dir(tmp_base(), "read-");
  bo.durability = agentburn::Durability::kProcess;
  std::unique_ptr<detail::Buffer> b;
  agentburn::Status s = detail::Buffer::open(bo, &b);
  if (!s.ok()) die(s.to_string());
  for (int i = 0; i < 200000; ++i) {
    s = b->append(stored());
    if (!s.ok()) die(s.to_string());
  }
  std::vector<detail::StoredEvent> out;
  std::size_t events = 0;
  for (auto _ : state) {
    s = b->read_next(1000, 1 << 20, &out);
    if (!s.ok()) die(s.to_string());
    if (out.empty()) {
      state.PauseTiming();
      b->close().ok();
      b.reset();
      bo.root = make_temp_dir(tmp_base(), "read-");
      s = detail::Buffer::open(bo, &b);
      for (int i = 0; i < 200000 && s.ok(); ++i) s = b->append(stored());
      if (!s.ok()) die(s.to_string());
      state.ResumeTiming();
    }
    events += out.size();
  }
  state.counters["us_per_event"] = benchmark::Counter(
      static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  b->close().ok();
}
BENCHMARK(BM_ReadNext1000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_open.close();
  remove_tree(tmp_base());
  return 0;
}
