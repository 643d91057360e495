// The C ABI over the C++ core. No logic of its own: argument checks, conversions, and the
// guarantee that no C++ exception crosses into C.
#include "agentburn/agentburn.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "agentburn/client.hpp"
#include "budget/json.hpp"
#include "ledger/spend_json.hpp"
#include "event/codec.hpp"
#include "options_check.hpp"

using agentburn::Client;
using agentburn::Event;
using agentburn::Options;
using agentburn::Status;

struct ab_options {
  Options options;
};

struct ab_client {
  Client client;
  int close_timeout_ms;
  // Set by ab_client_shutdown: from then on every call returns AB_ECLOSED, until
  // ab_client_close frees the client.
  std::atomic<bool> shut_down{false};
};

struct ab_event {
  Event event;
};

namespace {

// A plain array, not a std::string: it has no destructor, so a call that fails from an
// atexit handler, after this thread's thread_local objects are gone, still has it.
constexpr std::size_t kLastErrorSize = 2048;
thread_local char t_last_error[kLastErrorSize];

void set_last_error(const std::string& message) {
  std::size_t n = std::min(message.size(), kLastErrorSize - 1);
  // Cut on a UTF-8 character boundary.
  while (n > 0 && n < message.size() && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
  std::memcpy(t_last_error, message.data(), n);
  t_last_error[n] = '\0';
}

int fail(int code, const std::string& message) {
  set_last_error(message);
  return code;
}

int from_status(const Status& s) {
  if (s.ok()) return AB_OK;
  set_last_error(s.message());
  return static_cast<int>(s.code());
}

// Runs `f`, turning any exception into a code: nothing may unwind into C.
template <typename F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail(AB_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(AB_EINTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(AB_EINTERNAL, "internal error");
  }
}

int null_arg(const char* fn, const char* arg) {
  return fail(AB_EINVALID, std::string(fn) + ": " + arg + " is NULL");
}

// Applies `set` to a copy of the options, keeps it only if every option stays valid.
template <typename F>
int set_option(ab_options* o, const char* fn, F&& set) {
  return guarded([&] {
    if (!o) return null_arg(fn, "opts");
    Options copy = o->options;
    set(copy);
    Status s = agentburn::detail::check_options(copy, false);
    if (!s.ok()) return from_status(s);
    o->options = std::move(copy);
    return AB_OK;
  });
}

std::string str_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// True (with AB_ECLOSED's message set) once ab_client_shutdown began on `c`.
bool is_shut_down(const ab_client* c, const char* fn) {
  if (!c->shut_down.load(std::memory_order_acquire)) return false;
  set_last_error(std::string(fn) + ": the client is closed (ab_client_shutdown)");
  return true;
}

int write_key(char* out_key, const std::string& key) {
  if (out_key) {
    std::size_t n = std::min(key.size(), static_cast<std::size_t>(AB_KEY_SIZE - 1));
    std::memcpy(out_key, key.data(), n);
    out_key[n] = '\0';
  }
  return AB_OK;
}

}  // namespace

extern "C" {

const char* ab_version(void) { return AB_VERSION_STRING; }

int ab_abi_version(void) { return AB_ABI_VERSION; }

const char* ab_strerror(int code) {
  switch (code) {
    case AB_OK: return "ok";
    case AB_EINVALID: return "invalid argument";
    case AB_ENOMEM: return "out of memory";
    case AB_ESTORAGE: return "storage error";
    case AB_EFULL: return "buffer full";
    case AB_ELOCKED: return "buffer locked by another process";
    case AB_ENETWORK: return "network error";
    case AB_EHTTP: return "unexpected HTTP status";
    case AB_EAUTH: return "API key refused";
    case AB_ETIMEOUT: return "timed out";
    case AB_ECLOSED: return "client closed";
    case AB_EINTERNAL: return "internal error";
    case AB_EBUDGET: return "budget exceeded";
    default: return "unknown result code";
  }
}

const char* ab_last_error(void) { return t_last_error; }

void ab_free(void* ptr) { std::free(ptr); }

int ab_options_new(ab_options** out) {
  return guarded([&] {
    if (!out) return null_arg("ab_options_new", "out");
    *out = new ab_options();
    return AB_OK;
  });
}

void ab_options_free(ab_options* opts) { delete opts; }

#define AB_STRING_SETTER(name, field)                                                  \
  int ab_options_set_##name(ab_options* o, const char* v) {                            \
    return set_option(o, "ab_options_set_" #name, [&](Options& c) { c.field = str_or_empty(v); }); \
  }
#define AB_INT_SETTER(name, field, type)                                               \
  int ab_options_set_##name(ab_options* o, type v) {                                   \
    return set_option(o, "ab_options_set_" #name, [&](Options& c) { c.field = v; });   \
  }
#define AB_BOOL_SETTER(name, field)                                                    \
  int ab_options_set_##name(ab_options* o, int v) {                                    \
    return set_option(o, "ab_options_set_" #name, [&](Options& c) { c.field = v != 0; }); \
  }

AB_STRING_SETTER(endpoint, endpoint)
AB_STRING_SETTER(api_key, api_key)
AB_STRING_SETTER(buffer_root, buffer_root)
AB_STRING_SETTER(proxy, proxy)
AB_STRING_SETTER(ca_bundle, ca_bundle)
AB_INT_SETTER(buffered_flush_ms, buffered_flush_ms, int)
AB_INT_SETTER(disk_cap, disk_cap_bytes, uint64_t)
AB_INT_SETTER(batch_max_events, batch_max_events, int)
AB_INT_SETTER(batch_max_bytes, batch_max_bytes, size_t)
AB_INT_SETTER(flush_interval_ms, flush_interval_ms, int)
AB_INT_SETTER(max_batches_in_flight, max_batches_in_flight, int)
AB_INT_SETTER(connect_timeout_ms, connect_timeout_ms, int)
AB_INT_SETTER(request_timeout_ms, request_timeout_ms, int)
AB_INT_SETTER(register_timeout_ms, register_timeout_ms, int)
AB_INT_SETTER(retry_initial_ms, retry_initial_ms, int)
AB_INT_SETTER(retry_max_ms, retry_max_ms, int)
AB_INT_SETTER(split_after_failures, split_after_failures, int)
AB_INT_SETTER(close_timeout_ms, close_timeout_ms, int)
AB_BOOL_SETTER(set_aside_corrupt, set_aside_corrupt_buffer)
AB_BOOL_SETTER(gzip, gzip)
AB_BOOL_SETTER(allow_insecure_http, allow_insecure_http)
AB_BOOL_SETTER(seed_fields_only, seed_fields_only)
AB_STRING_SETTER(price_catalog_path, price_catalog_path)
AB_STRING_SETTER(price_overrides_json, price_overrides_json)
AB_BOOL_SETTER(require_price, require_price)
AB_INT_SETTER(reservation_ttl_ms, reservation_ttl_ms, int)
AB_BOOL_SETTER(ledger, ledger)
AB_INT_SETTER(ledger_retention_days, ledger_retention_days, int)
AB_BOOL_SETTER(sync_server_budgets, sync_server_budgets)
AB_INT_SETTER(budget_sync_interval_ms, budget_sync_interval_ms, int)
AB_BOOL_SETTER(enforce_server_budgets, enforce_server_budgets)
AB_STRING_SETTER(budget_store_password, budget_store_password)
AB_INT_SETTER(budget_store_timeout_ms, budget_store_timeout_ms, int)

int ab_options_set_budget_store(ab_options* o, const char* url) {
  return set_option(o, "ab_options_set_budget_store", [&](Options& c) {
    c.budget_store = url && *url ? url : "local";
  });
}

int ab_options_set_budget_store_unavailable(ab_options* o, int policy) {
  return guarded([&] {
    if (policy < AB_BUDGET_STORE_LOCAL || policy > AB_BUDGET_STORE_OPEN) {
      return fail(AB_EINVALID, "budget_store_unavailable: must be AB_BUDGET_STORE_LOCAL, _CLOSED "
                               "or _OPEN, got " + std::to_string(policy));
    }
    return set_option(o, "ab_options_set_budget_store_unavailable", [&](Options& c) {
      c.budget_store_unavailable = static_cast<agentburn::BudgetStoreUnavailable>(policy);
    });
  });
}

int ab_options_set_budgets_json(ab_options* o, const char* json) {
  return guarded([&] {
    std::vector<agentburn::Budget> budgets;
    if (json && *json) {
      Status s = agentburn::budget::parse_budgets_json(json, &budgets);
      if (!s.ok()) return from_status(s);
    }
    return set_option(o, "ab_options_set_budgets_json",
                      [&](Options& c) { c.budgets = std::move(budgets); });
  });
}

int ab_options_set_budget_alert(ab_options* o, ab_budget_alert_fn fn, void* user_data) {
  return guarded([&] {
    return set_option(o, "ab_options_set_budget_alert", [&](Options& c) {
      if (!fn) {
        c.on_budget_alert = nullptr;
        return;
      }
      c.on_budget_alert = [fn, user_data](const agentburn::BudgetAlert& a) {
        fn(agentburn::budget::alert_json(a).c_str(), user_data);
      };
    });
  });
}

int ab_options_set_durability(ab_options* o, int durability) {
  return guarded([&] {
    if (durability < AB_DURABILITY_BUFFERED || durability > AB_DURABILITY_SYSTEM) {
      return fail(AB_EINVALID, "durability: must be AB_DURABILITY_BUFFERED, _PROCESS or _SYSTEM, got " +
                                   std::to_string(durability));
    }
    return set_option(o, "ab_options_set_durability", [&](Options& c) {
      c.durability = static_cast<agentburn::Durability>(durability);
    });
  });
}

int ab_options_set_full_policy(ab_options* o, int policy) {
  return guarded([&] {
    if (policy != AB_FULL_REJECT && policy != AB_FULL_DROP_OLDEST) {
      return fail(AB_EINVALID, "full_policy: must be AB_FULL_REJECT or AB_FULL_DROP_OLDEST, got " +
                                   std::to_string(policy));
    }
    return set_option(o, "ab_options_set_full_policy", [&](Options& c) {
      c.full_policy = static_cast<agentburn::FullPolicy>(policy);
    });
  });
}

int ab_options_set_log(ab_options* o, ab_log_fn fn, int min_level, void* user_data) {
  return guarded([&] {
  if (fn && (min_level < AB_LOG_DEBUG || min_level > AB_LOG_ERROR)) {
    return fail(AB_EINVALID, "log: min_level must be AB_LOG_DEBUG..AB_LOG_ERROR, got " +
                                 std::to_string(min_level));
  }
  return set_option(o, "ab_options_set_log", [&](Options& c) {
    if (!fn) {
      c.log = nullptr;
      return;
    }
    c.log = [fn, min_level, user_data](agentburn::LogLevel level, const std::string& m) {
      if (static_cast<int>(level) >= min_level) fn(static_cast<int>(level), m.c_str(), user_data);
    };
  });
  });
}

int ab_client_open(ab_client** out, const ab_options* opts) {
  return guarded([&] {
    if (!out) return null_arg("ab_client_open", "out");
    *out = nullptr;
    Options o = opts ? opts->options : Options();
    auto c = Client::open(o);
    if (!c.ok()) return from_status(c.status());
    *out = new ab_client{std::move(c.value()), o.close_timeout_ms};
    return AB_OK;
  });
}

int ab_client_close(ab_client* c, int timeout_ms) {
  if (!c) return AB_OK;
  if (c->shut_down.load(std::memory_order_acquire)) {
    delete c;  // closed already by ab_client_shutdown: only the memory is left
    return AB_OK;
  }
  int rc = guarded([&] {
    int t = timeout_ms < 0 ? c->close_timeout_ms : timeout_ms;
    return from_status(c->client.close(std::chrono::milliseconds(t)));
  });
  delete c;
  return rc;
}

namespace {

int track_json(const char* fn, char* out_key, ab_client* c, const char* json, size_t len) {
  return guarded([&] {
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    if (!json && len) return null_arg(fn, "json");
    std::string key;
    Status s = c->client.track_json(std::string_view(json ? json : "", len), out_key ? &key : nullptr);
    if (!s.ok()) return from_status(s);
    return write_key(out_key, key);
  });
}

}  // namespace

int ab_client_track_json(ab_client* c, const char* json, size_t len) {
  return track_json("ab_client_track_json", nullptr, c, json, len);
}

int ab_client_track_json_key(char out_key[AB_KEY_SIZE], ab_client* c, const char* json,
                             size_t len) {
  return track_json("ab_client_track_json_key", out_key, c, json, len);
}

int ab_event_new(ab_event** out, const char* agent_id, const char* provider,
                 const char* operation, double cost_usd) {
  return guarded([&] {
    if (!out) return null_arg("ab_event_new", "out");
    *out = new ab_event();
    Event& e = (*out)->event;
    e.agent_id = str_or_empty(agent_id);
    e.provider = str_or_empty(provider);
    e.operation = str_or_empty(operation);
    e.cost_usd = cost_usd;
    return AB_OK;
  });
}

void ab_event_free(ab_event* e) { delete e; }

#define AB_EVENT_STRING(name, field)                                           \
  int ab_event_set_##name(ab_event* e, const char* v) {                        \
    return guarded([&] {                                                        \
      if (!e) return null_arg("ab_event_set_" #name, "event");                  \
      if (v) e->event.field = std::string(v); else e->event.field.reset();      \
      return AB_OK;                                                             \
    });                                                                         \
  }
#define AB_EVENT_COUNT(name, field)                                            \
  int ab_event_set_##name(ab_event* e, int64_t v) {                            \
    return guarded([&] {                                                        \
      if (!e) return null_arg("ab_event_set_" #name, "event");                  \
      if (v >= 0) e->event.field = v; else e->event.field.reset();              \
      return AB_OK;                                                             \
    });                                                                         \
  }

AB_EVENT_STRING(model, model)
AB_EVENT_STRING(task_id, task_id)
AB_EVENT_STRING(workflow_id, workflow_id)
AB_EVENT_STRING(timestamp, timestamp)
AB_EVENT_STRING(idempotency_key, idempotency_key)
AB_EVENT_COUNT(input_tokens, input_tokens)
AB_EVENT_COUNT(output_tokens, output_tokens)
AB_EVENT_COUNT(cached_input_tokens, cached_input_tokens)
AB_EVENT_COUNT(cache_write_input_tokens, cache_write_input_tokens)

int ab_event_clear_cost_usd(ab_event* e) {
  return guarded([&] {
    if (!e) return null_arg("ab_event_clear_cost_usd", "e");
    e->event.cost_usd.reset();
    return AB_OK;
  });
}
AB_EVENT_COUNT(reasoning_tokens, reasoning_tokens)

int ab_event_set_metadata_json(ab_event* e, const char* json, size_t len) {
  return guarded([&] {
    if (!e) return null_arg("ab_event_set_metadata_json", "event");
    if (json) e->event.metadata_json = std::string(json, len);
    else e->event.metadata_json.reset();
    return AB_OK;
  });
}

int ab_client_track(char out_key[AB_KEY_SIZE], ab_client* c, const ab_event* e) {
  return guarded([&] {
    if (!c) return null_arg("ab_client_track", "client");
    if (is_shut_down(c, "ab_client_track")) return AB_ECLOSED;
    if (!e) return null_arg("ab_client_track", "event");
    std::string key;
    Status s = c->client.track(e->event, out_key ? &key : nullptr);
    if (!s.ok()) return from_status(s);
    return write_key(out_key, key);
  });
}

namespace {

int track_response(const char* fn, char* out_key, ab_client* c, const char* reservation_id,
                   const char* provider, const char* body, size_t len, const char* fields_json,
                   size_t fields_len);

}  // namespace

int ab_client_track_response(char out_key[AB_KEY_SIZE], ab_client* c, const char* provider,
                              const char* body, size_t len, const char* fields_json,
                              size_t fields_len) {
  return track_response("ab_client_track_response", out_key, c, nullptr, provider, body, len,
                        fields_json, fields_len);
}

int ab_client_track_response_reserved(char out_key[AB_KEY_SIZE], ab_client* c,
                                      const char* reservation_id, const char* provider,
                                      const char* body, size_t len, const char* fields_json,
                                      size_t fields_len) {
  return track_response("ab_client_track_response_reserved", out_key, c, reservation_id,
                        provider, body, len, fields_json, fields_len);
}

namespace {

// The window of the last AB_EBUDGET on this thread, as JSON (a plain array, as t_last_error).
constexpr std::size_t kRefusalSize = 2048;
thread_local char t_last_refusal[kRefusalSize];

int reserved_id(const char* fn, const char* id, agentburn::Reservation* r) {
  if (!id) return null_arg(fn, "reservation_id");
  std::size_t n = strnlen(id, AB_RESERVATION_SIZE);
  if (n == 0 || n >= AB_RESERVATION_SIZE) {
    return fail(AB_EINVALID, std::string(fn) + ": reservation_id must be 1 to " +
                                 std::to_string(AB_RESERVATION_SIZE - 1) + " characters");
  }
  r->id.assign(id, n);
  return AB_OK;
}

int track_response(const char* fn, char* out_key, ab_client* c, const char* reservation_id,
                   const char* provider, const char* body, size_t len, const char* fields_json,
                   size_t fields_len) {
  return guarded([&] {
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    if (!body && len) return null_arg(fn, "body");
    if (!fields_json && fields_len) return null_arg(fn, "fields_json");
    Event fields;
    if (fields_len) {
      // The caller's fields: any event field, with costUsd left out (the response prices it).
      auto doc = nlohmann::json::parse(std::string_view(fields_json, fields_len), nullptr, false);
      if (!doc.is_object()) {
        return fail(AB_EINVALID, std::string(fn) + ": fields_json must be a JSON object");
      }
      agentburn::detail::FieldError err;
      if (!agentburn::detail::parse_event_value(&doc, &fields, &err)) {
        return from_status(agentburn::detail::to_status(err));
      }
    }
    std::string key;
    std::string_view text(body ? body : "", len);
    Status s;
    if (reservation_id) {
      agentburn::Reservation r;
      int rc = reserved_id(fn, reservation_id, &r);
      if (rc != AB_OK) return rc;
      s = c->client.track_response(fields, r, provider ? provider : "", text,
                                   out_key ? &key : nullptr);
    } else {
      s = c->client.track_response(fields, provider ? provider : "", text,
                                   out_key ? &key : nullptr);
    }
    if (!s.ok()) return from_status(s);
    return write_key(out_key, key);
  });
}

}  // namespace

const char* ab_last_refusal(void) { return t_last_refusal; }

extern "C++" {
namespace {

// A call that answers JSON through `out`: the checks every such call starts with, then
// `f(&text)`, whose text becomes `*out` when it returns AB_OK.
template <typename F>
int answer_json(const char* fn, char** out, ab_client* c, F&& f) {
  return guarded([&] {
    if (!out) return null_arg(fn, "out");
    *out = nullptr;
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    std::string text;
    int rc = f(&text);
    if (rc != AB_OK) return rc;
    *out = dup_string(text);
    return AB_OK;
  });
}

}  // namespace
}  // extern "C++"

int ab_client_reserve_json(char out_id[AB_RESERVATION_SIZE], ab_client* c, const char* json,
                           size_t len) {
  const char* fn = "ab_client_reserve_json";
  return guarded([&] {
    if (!out_id) return null_arg(fn, "out_id");
    out_id[0] = '\0';
    t_last_refusal[0] = '\0';
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    if (!json && len) return null_arg(fn, "json");
    agentburn::ReserveRequest req;
    Status s = agentburn::budget::parse_reserve_json(std::string_view(json ? json : "", len), &req);
    if (!s.ok()) return from_status(s);
    agentburn::BudgetState refused;
    auto r = c->client.reserve(req, &refused);
    if (!r.ok()) {
      if (r.status().code() == Status::Code::kBudgetExceeded) {
        auto doc = nlohmann::json::parse(agentburn::budget::state_json(refused));
        if (req.estimate_usd) doc["estimateUsd"] = *req.estimate_usd;
        std::string text = doc.dump();
        std::size_t n = std::min(text.size(), kRefusalSize - 1);
        std::memcpy(t_last_refusal, text.data(), n);
        t_last_refusal[n] = '\0';
      }
      return from_status(r.status());
    }
    std::size_t n = std::min<std::size_t>(r->id.size(), AB_RESERVATION_SIZE - 1);
    std::memcpy(out_id, r->id.data(), n);
    out_id[n] = '\0';
    return AB_OK;
  });
}

int ab_client_track_json_reserved(char out_key[AB_KEY_SIZE], ab_client* c,
                                  const char* reservation_id, const char* json, size_t len) {
  const char* fn = "ab_client_track_json_reserved";
  return guarded([&] {
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    if (!json && len) return null_arg(fn, "json");
    agentburn::Reservation r;
    int rc = reserved_id(fn, reservation_id, &r);
    if (rc != AB_OK) return rc;
    std::string key;
    Status s = c->client.track_json(std::string_view(json ? json : "", len), r,
                                    out_key ? &key : nullptr);
    if (!s.ok()) return from_status(s);
    return write_key(out_key, key);
  });
}

int ab_client_release(ab_client* c, const char* reservation_id) {
  const char* fn = "ab_client_release";
  return guarded([&] {
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    agentburn::Reservation r;
    int rc = reserved_id(fn, reservation_id, &r);
    if (rc != AB_OK) return rc;
    return from_status(c->client.release(r));
  });
}

int ab_client_check_json(char** out, ab_client* c, const char* json, size_t len) {
  return answer_json("ab_client_check_json", out, c, [&](std::string* text) {
    if (!json && len) return null_arg("ab_client_check_json", "json");
    agentburn::ReserveRequest req;
    Status s = agentburn::budget::parse_reserve_json(std::string_view(json ? json : "", len), &req);
    if (!s.ok()) return from_status(s);
    *text = agentburn::budget::states_json(c->client.check(req));
    return AB_OK;
  });
}

int ab_client_spend_json(char** out, ab_client* c, const char* json, size_t len) {
  return answer_json("ab_client_spend_json", out, c, [&](std::string* text) {
    if (!json && len) return null_arg("ab_client_spend_json", "json");
    agentburn::SpendQuery q;
    Status s = agentburn::ledger::parse_spend_query_json(std::string_view(json ? json : "", len), &q);
    if (!s.ok()) return from_status(s);
    auto r = c->client.spend(q);
    if (!r.ok()) return from_status(r.status());
    *text = agentburn::ledger::spend_report_json(q, r.value());
    return AB_OK;
  });
}

int ab_client_budgets_json(char** out, ab_client* c) {
  return answer_json("ab_client_budgets_json", out, c, [&](std::string* text) {
    *text = agentburn::budget::states_json(c->client.budgets());
    return AB_OK;
  });
}

int ab_price_event_json(char** out, ab_client* c, const char* json, size_t len) {
  const char* fn = "ab_price_event_json";
  return answer_json(fn, out, c, [&](std::string* text) {
    if (!json && len) return null_arg(fn, "json");
    Event e;
    agentburn::detail::FieldError err;
    if (!agentburn::detail::parse_event_json(std::string_view(json ? json : "", len), &e, &err)) {
      return from_status(agentburn::detail::to_status(err));
    }
    auto p = c->client.price_event(e);
    if (!p.ok()) return from_status(p.status());
    nlohmann::json j = {{"costUsd", p->cost_usd},
                        {"costSource", p->cost_source},
                        {"pricesVersion", p->prices_version}};
    if (p->cost_source == "computed") {
      j["priceKey"] = p->price_key;
      j["match"] = p->match;
      j["breakdown"] = {{"input", p->input_usd},
                        {"cached", p->cached_usd},
                        {"cacheWrite", p->cache_write_usd},
                        {"output", p->output_usd},
                        {"reasoning", p->reasoning_usd}};
    }
    if (!p->nearest.empty()) j["nearest"] = p->nearest;
    *text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return AB_OK;
  });
}

int ab_price_lookup_json(char** out, ab_client* c, const char* provider, const char* model) {
  const char* fn = "ab_price_lookup_json";
  return guarded([&] {
    if (!out) return null_arg(fn, "out");
    *out = nullptr;
    if (!c) return null_arg(fn, "client");
    if (is_shut_down(c, fn)) return AB_ECLOSED;
    if (!model) return null_arg(fn, "model");
    auto q = c->client.lookup_price(provider ? provider : "", model);
    if (!q.ok()) return from_status(q.status());
    nlohmann::json j = {{"priceKey", q->key},
                        {"provider", q->provider},
                        {"match", q->match},
                        {"pricesVersion", q->prices_version},
                        {"usdPerMillion",
                         {{"input", q->input},
                          {"output", q->output},
                          {"cacheRead", q->cache_read},
                          {"cacheWrite", q->cache_write},
                          {"reasoning", q->reasoning}}}};
    *out = dup_string(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return AB_OK;
  });
}

int ab_client_register_agent_json(char** out_id, ab_client* c, const char* json, size_t len) {
  return guarded([&] {
    if (!out_id) return null_arg("ab_client_register_agent_json", "out_id");
    *out_id = nullptr;
    if (!c) return null_arg("ab_client_register_agent_json", "client");
    if (is_shut_down(c, "ab_client_register_agent_json")) return AB_ECLOSED;
    if (!json && len) return null_arg("ab_client_register_agent_json", "json");
    auto id = c->client.register_agent_json(std::string_view(json ? json : "", len));
    if (!id.ok()) return from_status(id.status());
    *out_id = dup_string(id.value());
    return AB_OK;
  });
}

int ab_client_flush(ab_client* c, int timeout_ms) {
  return guarded([&] {
    if (!c) return null_arg("ab_client_flush", "client");
    if (is_shut_down(c, "ab_client_flush")) return AB_ECLOSED;
    if (timeout_ms < 0) return fail(AB_EINVALID, "ab_client_flush: timeout_ms must be >= 0");
    return from_status(c->client.flush(std::chrono::milliseconds(timeout_ms)));
  });
}

int ab_client_stats_json(char** out, ab_client* c) {
  return guarded([&] {
    if (!out) return null_arg("ab_client_stats_json", "out");
    *out = nullptr;
    if (!c) return null_arg("ab_client_stats_json", "client");
    if (is_shut_down(c, "ab_client_stats_json")) return AB_ECLOSED;
    agentburn::Stats s = c->client.stats();
    nlohmann::json j = {{"pending", s.pending},
                        {"pending_bytes", s.pending_bytes},
                        {"delivered", s.delivered},
                        {"resent", s.resent},
                        {"retries", s.retries},
                        {"dead_letters", s.dead_letters},
                        {"dropped", s.dropped},
                        {"rejected", s.rejected},
                        {"adopted", s.adopted},
                        {"unpriced", s.unpriced},
                        {"last_error", s.last_error}};
    j["last_delivery_at"] = s.last_delivery_at_ms
                                ? nlohmann::json(agentburn::detail::format_timestamp_ms(s.last_delivery_at_ms))
                                : nlohmann::json(nullptr);
    *out = dup_string(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return AB_OK;
  });
}

int ab_client_dead_letters_json(char** out, ab_client* c, size_t limit) {
  return guarded([&] {
    if (!out) return null_arg("ab_client_dead_letters_json", "out");
    *out = nullptr;
    if (!c) return null_arg("ab_client_dead_letters_json", "client");
    if (is_shut_down(c, "ab_client_dead_letters_json")) return AB_ECLOSED;
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : c->client.dead_letters(limit)) {
      nlohmann::json event = nlohmann::json::parse(d.event_json, nullptr, false);
      if (event.is_discarded()) event = d.event_json;
      list.push_back({{"event", event}, {"reason", d.reason}});
    }
    *out = dup_string(list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return AB_OK;
  });
}

int ab_client_requeue_dead_letters(ab_client* c) {
  return guarded([&] {
    if (!c) return null_arg("ab_client_requeue_dead_letters", "client");
    if (is_shut_down(c, "ab_client_requeue_dead_letters")) return AB_ECLOSED;
    return from_status(c->client.requeue_dead_letters());
  });
}

int ab_client_purge_dead_letters(ab_client* c) {
  return guarded([&] {
    if (!c) return null_arg("ab_client_purge_dead_letters", "client");
    if (is_shut_down(c, "ab_client_purge_dead_letters")) return AB_ECLOSED;
    return from_status(c->client.purge_dead_letters());
  });
}

int ab_client_shutdown(ab_client* c, int timeout_ms) {
  return guarded([&] {
    if (!c) return null_arg("ab_client_shutdown", "client");
    if (c->shut_down.exchange(true, std::memory_order_acq_rel)) {
      return fail(AB_ECLOSED, "ab_client_shutdown: the client is already shut down");
    }
    int t = timeout_ms < 0 ? c->close_timeout_ms : timeout_ms;
    return from_status(c->client.close(std::chrono::milliseconds(t)));
  });
}

}  // extern "C"
