// Fuzz target: the C ABI's entry points that take the caller's bytes, on one offline client
// per process (a fresh buffer root under $TMPDIR, a small disk cap that drops the oldest
// events, reopened on a fresh root every few thousand inputs so that the disk stays small).
//
// The first byte picks the call; any other first byte sends the whole input as one event:
//   'j' + bytes   ab_client_track_json
//   'k' + bytes   ab_client_track_json_key
//   'a' + bytes   ab_client_register_agent_json (twice: the same agent gets the same id)
//   'e' + fields  ab_event_new and the ab_event_set_* setters, then ab_client_track. The
//                 fields are NUL-separated, in this order: agentId, provider, operation,
//                 costUsd (strtod text: "nan", "-inf", "1e400" ...), model, taskId,
//                 workflowId, timestamp, idempotency_key, the four token counts (strtoll
//                 text), and the rest is the metadata (its exact length, NULs included).
//                 A field past the end of the input stays NULL (unset).
//
// Properties: every call answers AB_OK or AB_EINVALID (never a crash, AB_EINTERNAL or a
// storage error), as the library's own rules decide (codec.hpp is the oracle), with
// ab_last_error() the same UTF-8 text naming the field; an accepted event's key is the one
// given or a fresh UUID; and the client's counters show that nothing accepted was lost:
// pending + dropped == accepted, rejected == refused.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agentburn/agentburn.h"
#include "event/codec.hpp"
#include "fuzz_support.hpp"
#include "pricing/catalog.hpp"
#include "pricing/cost.hpp"

using agentburn::Agent;
using agentburn::Event;
using agentburn::kMaxEventBytes;
using agentburn::detail::FieldError;
using agentburn::detail::Normalized;
namespace codec = agentburn::detail;
using agentburn_fuzz::show;

namespace {

constexpr int kInputsPerClient = 4000;
constexpr int kAgentsPerClient = 200;  // agents.json is rewritten per new agent

struct State {
  std::string root;  // this process's folder; each client gets root/<generation>
  int generation = 0;
  ab_client* client = nullptr;
  int inputs = 0;
  int agents = 0;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;

  std::string dir() const { return root + "/" + std::to_string(generation); }

  void open() {
    ab_options* opts = nullptr;
    FUZZ_CHECK(ab_options_new(&opts) == AB_OK, ab_last_error());
    std::filesystem::create_directories(dir());
    FUZZ_CHECK(ab_options_set_buffer_root(opts, dir().c_str()) == AB_OK, ab_last_error());
    FUZZ_CHECK(ab_options_set_disk_cap(opts, 1u << 20) == AB_OK, ab_last_error());
    FUZZ_CHECK(ab_options_set_full_policy(opts, AB_FULL_DROP_OLDEST) == AB_OK, ab_last_error());
    int rc = ab_client_open(&client, opts);
    ab_options_free(opts);
    FUZZ_CHECK(rc == AB_OK, std::string("open: ") + ab_last_error());
    inputs = agents = 0;
    accepted = refused = 0;
  }

  void close() {
    if (!client) return;
    int rc = ab_client_close(client, 0);
    client = nullptr;
    FUZZ_CHECK(rc == AB_OK || rc == AB_ETIMEOUT, std::string("close: ") + ab_last_error());
    std::error_code ec;
    std::filesystem::remove_all(dir(), ec);
    ++generation;
  }

  void reopen_if_due() {
    if (inputs < kInputsPerClient && agents < kAgentsPerClient) return;
    close();
    open();
  }
};

State* g_state = nullptr;

// At exit. The close runs on a thread of its own: this thread's thread_locals are already
// destroyed, and a failing ab_ call writes ab_last_error()'s (README.md, known issues).
void cleanup() {
  if (!g_state) return;
  std::thread([] { g_state->close(); }).join();
  std::error_code ec;
  std::filesystem::remove_all(g_state->root, ec);
}

State& state() {
  if (!g_state) {
    g_state = new State();
    std::string tmpl = (std::filesystem::temp_directory_path() / "agentburn-fuzz-XXXXXX").string();
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp under " + tmpl);
    g_state->root = tmpl;
    agentburn_fuzz::before_abort = [] {
      std::error_code ec;
      std::filesystem::remove_all(g_state->root, ec);
    };
    g_state->open();
    std::atexit(cleanup);
  }
  return *g_state;
}

std::uint64_t stat_of(const nlohmann::json& stats, const char* name) {
  return stats.at(name).get<std::uint64_t>();
}

// pending + dropped == accepted and rejected == refused, from ab_client_stats_json.
void check_counters(State& s, const std::string& ctx) {
  char* text = nullptr;
  FUZZ_CHECK(ab_client_stats_json(&text, s.client) == AB_OK, ab_last_error());
  auto stats = nlohmann::json::parse(text, nullptr, false);
  ab_free(text);
  FUZZ_CHECK(stats.is_object(), ctx);
  std::string counts = ctx + "\nstats: " + stats.dump() + "\naccepted " +
                       std::to_string(s.accepted) + ", refused " + std::to_string(s.refused);
  FUZZ_CHECK(stat_of(stats, "pending") + stat_of(stats, "dropped") == s.accepted, counts);
  FUZZ_CHECK(stat_of(stats, "rejected") == s.refused, counts);
}

// What the client adds to an event without costUsd before it encodes it (README.md,
// "Pricing"; the fuzzed client keeps require_price off): the compiled-in catalog's price of
// its tokens, or costUsd 0 marked "unpriced". "" (accepted so far), or the message of a
// refusal: a computed cost past kMaxCostUsd.
std::string price_as_client(const Event& e, Normalized* norm) {
  const agentburn::pricing::Catalog& catalog = agentburn::pricing::Catalog::builtin();
  if (e.cost_usd) {
    norm->cost_source = "reported";
    return "";
  }
  norm->prices_version = catalog.version();
  norm->cost_usd = 0.0;
  norm->cost_source = "unpriced";
  if (!e.model || !(e.input_tokens || e.output_tokens)) return "";
  agentburn::pricing::Match m = catalog.lookup(e.provider, *e.model);
  if (!m) return "";
  agentburn::pricing::Tokens t;
  t.input = static_cast<std::uint64_t>(e.input_tokens.value_or(0));
  t.cached = static_cast<std::uint64_t>(e.cached_input_tokens.value_or(0));
  t.cache_write = static_cast<std::uint64_t>(e.cache_write_input_tokens.value_or(0));
  t.output = static_cast<std::uint64_t>(e.output_tokens.value_or(0));
  t.reasoning = static_cast<std::uint64_t>(e.reasoning_tokens.value_or(0));
  auto cost = agentburn::pricing::price(*m.entry, t);
  if (!cost.ok()) return "";
  if (cost->total_usd > agentburn::kMaxCostUsd) {
    char usd[64];
    std::snprintf(usd, sizeof usd, "%.2f", cost->total_usd);
    return "costUsd: the catalog's price of this event's tokens (\"" + m.entry->key + "\") is $" +
           usd + ", past the limit of $1e9; check its token counts";
  }
  norm->cost_usd = cost->total_usd;
  norm->cost_source = "computed";
  norm->price_key = m.entry->key;
  return "";
}

// The library's verdict on a JSON event: "" or the message ab_last_error() must give.
std::string json_verdict(std::string_view text, std::optional<std::string>* given_key) {
  Event e;
  FieldError err;
  Normalized norm;
  if (!codec::parse_event_json(text, &e, &err) ||
      !codec::validate_event(e, true, true, &norm, &err, true)) {
    return err.message;
  }
  if (std::string refused = price_as_client(e, &norm); !refused.empty()) return refused;
  *given_key = e.idempotency_key;
  std::string wire;
  codec::encode_event(e, norm, false, &wire);
  return wire.size() > kMaxEventBytes ? std::string("too large encoded") : std::string();
}

std::string typed_verdict(const Event& e) {
  FieldError err;
  Normalized norm;
  if (!codec::validate_event(e, true, false, &norm, &err, true)) return err.message;
  if (std::string refused = price_as_client(e, &norm); !refused.empty()) return refused;
  std::string wire;
  codec::encode_event(e, norm, false, &wire);
  return wire.size() > kMaxEventBytes ? std::string("too large encoded") : std::string();
}

bool is_uuid(const char* k) {
  if (std::strlen(k) != 36) return false;
  for (int i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (k[i] == '-')) return false;
    if (!dash && !std::strchr("0123456789abcdef", k[i])) return false;
  }
  return true;
}

// ab_last_error() is the oracle's message. False when it shows a known issue (tolerated
// unless strict).
bool check_message(const std::string& expected, const std::string& detail) {
  const char* msg = ab_last_error();
  // A message quoting a NUL the caller sent (a field name or value given as \u0000) is cut
  // there by the C string (README.md, known issues).
  if (FUZZ_KNOWN_ISSUE(expected != msg && expected.find('\0') != std::string::npos &&
                           expected.compare(0, expected.find('\0'), msg) == 0,
                       "error-text-nul", detail + "\nexpected in full: " + show(expected)))
    return false;
  FUZZ_CHECK(expected == msg, detail + "\ngot: " + show(msg) + "\nexpected: " + show(expected));
  return true;
}

// Checks one track call's answer against the oracle's verdict and counts it. False when the
// answer shows a known issue (tolerated unless strict).
bool check_track(State& s, int rc, const std::string& verdict, const char* key,
                 const std::optional<std::string>& given_key, const std::string& ctx) {
  std::string detail = ctx + "\nrc " + std::to_string(rc) + ": " + show(ab_last_error()) +
                       "\nexpected: " + (verdict.empty() ? "accepted" : show(verdict));
  if (verdict.empty()) {
    FUZZ_CHECK(rc == AB_OK, detail);
    ++s.accepted;
    if (key) {
      FUZZ_CHECK(given_key ? *given_key == key : is_uuid(key), detail + "\nkey: " + show(key));
    }
  } else {
    FUZZ_CHECK(rc == AB_EINVALID, detail);
    const char* msg = ab_last_error();
    FUZZ_CHECK(codec::is_valid_utf8(msg), detail);
    ++s.refused;
    if (verdict == "too large encoded") return true;
    return check_message(verdict, detail);
  }
  return true;
}

void track_json(State& s, std::string_view text, bool with_key) {
  std::optional<std::string> given_key;
  std::string verdict = json_verdict(text, &given_key);
  // A raw NUL is never JSON, but the parser takes it for the end of the input and ignores what
  // follows (README.md, known issues).
  (void)FUZZ_KNOWN_ISSUE(verdict.empty() && text.find('\0') != std::string_view::npos,
                         "nul-ends-input", "accepted: " + show(text));
  char key[AB_KEY_SIZE];
  std::memset(key, 'x', sizeof key);
  int rc = with_key ? ab_client_track_json_key(key, s.client, text.data(), text.size())
                    : ab_client_track_json(s.client, text.data(), text.size());
  check_track(s, rc, verdict, with_key && rc == AB_OK ? key : nullptr, given_key,
              "event: " + show(text));
}

void register_agent(State& s, std::string_view text) {
  Agent agent;
  FieldError err;
  bool valid = codec::parse_agent_json(text, &agent, &err);
  std::string ctx = "agent: " + show(text);
  char* id = nullptr;
  int rc = ab_client_register_agent_json(&id, s.client, text.data(), text.size());
  if (!valid) {
    FUZZ_CHECK(rc == AB_EINVALID && id == nullptr, ctx + "\nrc " + std::to_string(rc));
    check_message(err.message, ctx);
    return;
  }
  FUZZ_CHECK(rc == AB_OK && id != nullptr,
             ctx + "\nrc " + std::to_string(rc) + ": " + ab_last_error());
  ++s.agents;
  std::string first = id;
  ab_free(id);
  FUZZ_CHECK(first.rfind("ab-local-", 0) == 0, ctx + "\nid: " + show(first));
  id = nullptr;
  rc = ab_client_register_agent_json(&id, s.client, text.data(), text.size());
  FUZZ_CHECK(rc == AB_OK && id != nullptr && first == id, ctx + "\nagain: " + show(id ? id : ""));
  ab_free(id);
}

// Splits at NULs; fields past the end of the input are absent.
struct Fields {
  std::string_view rest;
  std::optional<std::string> next() {
    if (rest.data() == nullptr) return std::nullopt;
    auto nul = rest.find('\0');
    std::string v(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    return v;
  }
};

const char* c_str(const std::optional<std::string>& v) {
  return v ? v->c_str() : nullptr;
}

void track_typed(State& s, std::string_view input) {
  Fields f{input};
  auto agent_id = f.next(), provider = f.next(), operation = f.next(), cost_text = f.next();
  auto model = f.next(), task = f.next(), workflow = f.next(), timestamp = f.next(),
       key_field = f.next();
  std::optional<std::string> counts[4];
  for (auto& c : counts) c = f.next();
  std::optional<std::string> metadata;
  if (f.rest.data()) metadata = std::string(f.rest);

  double cost = cost_text ? std::strtod(cost_text->c_str(), nullptr) : 0.0;
  ab_event* ev = nullptr;
  FUZZ_CHECK(ab_event_new(&ev, c_str(agent_id), c_str(provider), c_str(operation), cost) == AB_OK,
             ab_last_error());
  // The same event as the C++ oracle sees it.
  Event e;
  e.agent_id = agent_id.value_or("");
  e.provider = provider.value_or("");
  e.operation = operation.value_or("");
  e.cost_usd = cost;
  auto set = [&](int (*setter)(ab_event*, const char*), const std::optional<std::string>& v,
                 std::optional<std::string>* field) {
    if (!v) return;
    FUZZ_CHECK(setter(ev, v->c_str()) == AB_OK, ab_last_error());
    *field = *v;
  };
  set(ab_event_set_model, model, &e.model);
  set(ab_event_set_task_id, task, &e.task_id);
  set(ab_event_set_workflow_id, workflow, &e.workflow_id);
  set(ab_event_set_timestamp, timestamp, &e.timestamp);
  set(ab_event_set_idempotency_key, key_field, &e.idempotency_key);
  int (*count_setters[4])(ab_event*, std::int64_t) = {
      ab_event_set_input_tokens, ab_event_set_output_tokens, ab_event_set_cached_input_tokens,
      ab_event_set_reasoning_tokens};
  std::optional<std::int64_t>* count_fields[4] = {&e.input_tokens, &e.output_tokens,
                                                  &e.cached_input_tokens, &e.reasoning_tokens};
  for (int i = 0; i < 4; ++i) {
    if (!counts[i]) continue;
    std::int64_t v = std::strtoll(counts[i]->c_str(), nullptr, 10);
    FUZZ_CHECK(count_setters[i](ev, v) == AB_OK, ab_last_error());
    if (v >= 0) *count_fields[i] = v;  // a negative count clears the field
  }
  if (metadata) {
    FUZZ_CHECK(ab_event_set_metadata_json(ev, metadata->data(), metadata->size()) == AB_OK,
               ab_last_error());
    e.metadata_json = *metadata;
  }

  std::string verdict = typed_verdict(e);
  (void)FUZZ_KNOWN_ISSUE(verdict.empty() && metadata && metadata->find('\0') != std::string::npos,
                         "nul-ends-input", "accepted metadata: " + show(*metadata));
  char key[AB_KEY_SIZE];
  int rc = ab_client_track(key, s.client, ev);
  ab_event_free(ev);
  check_track(s, rc, verdict, rc == AB_OK ? key : nullptr, e.idempotency_key,
              "typed event fields: " + show(input));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  State& s = state();
  s.reopen_if_due();
  ++s.inputs;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  char mode = size ? input[0] : '\0';
  std::string_view rest = size ? input.substr(1) : input;
  switch (mode) {
    case 'j':
      track_json(s, rest, false);
      break;
    case 'k':
      track_json(s, rest, true);
      break;
    case 'a':
      register_agent(s, rest);
      return 0;
    case 'e':
      track_typed(s, rest);
      break;
    default:
      track_json(s, input, true);
  }
  check_counters(s, "input: " + show(input));
  return 0;
}
