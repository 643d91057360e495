#include "routes.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "alerts.hpp"
#include "batch.hpp"
#include "dashboard.hpp"
#include "event/codec.hpp"
#include "readback.hpp"

namespace agentburn::server {

using httplib::ContentReader;
using httplib::Request;
using httplib::Response;
using json = nlohmann::ordered_json;

namespace {

std::string dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

void reply(Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply_error(Response& res, int status, const std::string& message) {
  reply(res, status, dump(json{{"error", message}}));
}

const char* reason(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 415:
      return "unsupported media type";
    case 431:
      return "request header fields too large";
    case 416:
      return "range not satisfiable";
    case 503:
      return "service unavailable";
    default:
      return status >= 500 ? "internal server error" : "request failed";
  }
}

// --- Keys -------------------------------------------------------------------------------

// Time depends on the length of what was presented, never on how much of it is right.
bool same_key(std::string_view presented, std::string_view expected) {
  unsigned char diff = presented.size() != expected.size();
  for (std::size_t i = 0; i < presented.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return diff == 0;
}

enum class KeyState { kAbsent, kRight, kWrong };

KeyState presented_key(const Request& req, const std::string& expected) {
  std::string key = req.get_header_value("x-api-key");
  if (key.empty()) {
    std::string auth = req.get_header_value("Authorization");
    if (auth.size() > 7 && strncasecmp(auth.c_str(), "Bearer ", 7) == 0) key = auth.substr(7);
  }
  if (key.empty()) return KeyState::kAbsent;
  return same_key(key, expected) ? KeyState::kRight : KeyState::kWrong;
}

// `key_optional`: a request without a key passes (one with a wrong key never does).
bool authorized(const ServerContext& ctx, const Request& req, Response& res, bool key_optional) {
  if (ctx.flags.no_auth) return true;
  KeyState state = presented_key(req, ctx.flags.api_key);
  if (state == KeyState::kRight || (state == KeyState::kAbsent && key_optional)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  reply_error(res, 401,
              state == KeyState::kAbsent
                  ? "an API key is required: send it in x-api-key or Authorization: Bearer"
                  : "the API key is not valid");
  return false;
}

// --- Bodies -----------------------------------------------------------------------------

// Body memory this thread's request took from ServerContext::body_memory.
thread_local std::size_t t_body_memory = 0;

bool take_body_memory(ServerContext& ctx, std::size_t bytes) {
  if (!ctx.body_memory.take(bytes)) return false;
  t_body_memory += bytes;
  return true;
}

void refuse_busy(Response& res) {
  res.set_header("Retry-After", "1");
  res.set_header("Connection", "close");
  reply_error(res, 503,
              "the server holds too many request bodies at once (--max-body-memory); retry "
              "later");
}

// Reads the body, decompressed by cpp-httplib, up to kMaxBodyBytes. On failure answers and
// returns false.
bool read_body(ServerContext& ctx, const Request& req, Response& res, const ContentReader& reader,
               std::string* body) {
  if (req.is_multipart_form_data()) {
    // httplib reads such bodies part by part, through another reader; the API takes JSON.
    reply_error(res, 415, "multipart/form-data bodies are not supported: send application/json");
    res.set_header("Connection", "close");
    return false;
  }
  std::string encoding = req.get_header_value("Content-Encoding");
  if (!encoding.empty() && encoding != "identity" && encoding != "gzip" && encoding != "deflate" &&
      encoding != "br") {
    reply_error(res, 415,
                "Content-Encoding \"" + encoding.substr(0, 32) +
                    "\" is not supported: send gzip, deflate, br or none");
    res.set_header("Connection", "close");
    return false;
  }
  bool too_large = false;
  bool busy = false;
  bool ok = reader([&](const char* data, std::size_t size) {
    if (body->size() + size > kMaxBodyBytes) {
      too_large = true;
      return false;
    }
    // What the string holds after the append (its capacity grows by doubling).
    std::size_t need = std::max(body->capacity(), body->size() + size);
    if (need > body->capacity() &&
        !take_body_memory(ctx, std::max(need, std::min(2 * body->capacity(), kMaxBodyBytes)) -
                                   body->capacity())) {
      busy = true;
      return false;
    }
    body->append(data, size);
    return true;
  });
  if (ok) return true;
  if (busy) {
    refuse_busy(res);
    return false;
  }
  // httplib leaves 413 when the declared length is over its limit, 400 for a body it could
  // not read or decompress.
  too_large = too_large || res.status == 413;
  reply_error(res, too_large ? 413 : 400,
              too_large ? "the request body is over " + std::to_string(kMaxBodyBytes) +
                              " bytes (after decompression)"
                        : "the request body could not be read or decompressed");
  res.set_header("Connection", "close");
  return false;
}

bool parse_size(const std::string& text, std::size_t min, std::size_t max, std::size_t* out) {
  std::size_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

std::optional<std::string> param(const Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

// --- Agents -----------------------------------------------------------------------------

void post_agent(ServerContext& ctx, const Request& req, Response& res, const ContentReader& rd) {
  std::string body;
  if (!read_body(ctx, req, res, rd, &body)) return;
  if (!authorized(ctx, req, res, /*key_optional=*/!ctx.flags.strict_auth)) return;
  Agent agent;
  detail::FieldError err;
  if (!detail::parse_agent_json(body, &agent, &err)) {
    reply(res, 400, dump(json{{"error", err.message}, {"field", err.field}}));
    return;
  }
  if (ctx.flags.fault_injection) {
    AgentFault fault = ctx.faults.next_agent(agent.name);
    if (fault.status) {
      ++ctx.stats.faults_injected;
      if (!fault.retry_after.empty()) res.set_header("Retry-After", fault.retry_after);
      json answer = {{"error", "injected fault: agent \"" + agent.name + "\" answered HTTP " +
                                   std::to_string(fault.status)}};
      if (fault.status < 500) answer["field"] = "name";
      return reply(res, fault.status, dump(answer));
    }
  }
  auto optional = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  json record = {{"id", "agt_" + detail::new_uuid_v7()},
                 {"name", agent.name},
                 {"description", optional(agent.description)},
                 {"projectId", optional(agent.project_id)},
                 {"tags", agent.tags},
                 {"createdAt", detail::format_timestamp_ms(detail::now_unix_ms())}};
  std::string text = dump(record);
  Status s = ctx.store.put_agent(record["id"].get<std::string>(), text);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 201, text);
}

// The totals come from the aggregates: a server run with --no-aggregates answers 503.
bool aggregates_on(const ServerContext& ctx, Response& res) {
  if (ctx.store.has_aggregates()) return true;
  reply_error(res, 503,
              "this server runs with --no-aggregates: totals are off until it is restarted "
              "without it (the aggregates are then rebuilt from the stored events)");
  return false;
}

void get_agents(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false) || !aggregates_on(ctx, res)) return;
  std::string out;
  Status s = list_agents_with_totals(ctx.store, &out);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 200, out);
}

// --- Ingest -----------------------------------------------------------------------------

json error_list(const std::vector<EventError>& errors) {
  json list = json::array();
  for (const auto& e : errors) {
    list.push_back({{"index", e.index}, {"field", e.field}, {"message", e.message}});
  }
  return list;
}

void answer_ingest(ServerContext& ctx, const ParsedBody& parsed, const std::string* parse_error,
                   const IngestFaults& faults, Response& res) {
  if (faults.status) {
    ++ctx.stats.faults_injected;
    if (!faults.retry_after.empty()) res.set_header("Retry-After", faults.retry_after);
    return reply_error(res, faults.status, "injected fault: HTTP " + std::to_string(faults.status));
  }
  if (parse_error) return reply_error(res, 400, *parse_error);
  if (parsed.size() == 0) {
    return reply_error(res, 400, "the batch is empty: send 1 to 1000 events");
  }

  std::unordered_map<std::string, bool> known_agents;
  auto agent_exists = [&](const std::string& id) {
    auto it = known_agents.find(id);
    if (it == known_agents.end()) it = known_agents.emplace(id, ctx.store.has_agent(id)).first;
    return it->second;
  };
  std::vector<IncomingEvent> valid;
  std::vector<std::size_t> valid_indexes;
  std::vector<EventError> errors;
  validate_items(parsed, agent_exists, &valid, &valid_indexes, &errors);
  if (faults.reject_keys) {
    for (std::size_t j = 0; j < valid.size(); ++j) {
      if (!faults.reject_keys->count(valid[j].idempotency_key)) continue;
      ++ctx.stats.faults_injected;
      errors.push_back(
          {valid_indexes[j], "idempotency_key",
           "idempotency_key: \"" + valid[j].idempotency_key + "\" is rejected by the fault plan"});
    }
  }
  if (faults.open_core && std::any_of(errors.begin(), errors.end(),
                                      [](const EventError& e) { return e.unknown_agent; })) {
    // What the open-core server does when an event names an unknown agent.
    return reply_error(res, 500, "Internal server error");
  }
  if (!errors.empty()) {
    std::sort(errors.begin(), errors.end(),
              [](const EventError& a, const EventError& b) { return a.index < b.index; });
    json answer = {{"error", std::to_string(errors.size()) + " of " +
                                 std::to_string(parsed.size()) +
                                 " events invalid, nothing stored; first: event " +
                                 std::to_string(errors[0].index) + ": " + errors[0].message}};
    if (faults.error_detail) answer["errors"] = error_list(errors);
    return reply(res, 400, dump(answer));
  }

  IngestOutcome outcome;
  Status s = ctx.store.ingest(valid, /*deduplicate=*/!faults.open_core, &outcome);
  if (!s.ok()) return reply_error(res, 500, s.message());
  ctx.stats.events_stored += outcome.stored;
  ctx.stats.duplicates += outcome.duplicates;
  reply(
      res, 200,
      dump(json{
          {"ingested", outcome.stored}, {"duplicates", outcome.duplicates}, {"ids", outcome.ids}}));
}

void post_ingest(ServerContext& ctx, const Request& req, Response& res, const ContentReader& rd) {
  std::string body;
  if (!read_body(ctx, req, res, rd, &body)) return;
  if (!authorized(ctx, req, res, false)) return;
  ++ctx.stats.ingest_requests;
  IngestFaults faults;
  {
    BigBodyGate::Pass pass(&ctx.big_bodies, body.size());
    ParsedBody parsed;
    std::string parse_error;
    bool parsed_ok = parse_body(body, &parsed, &parse_error);
    if (parsed_ok) ctx.stats.events_received += parsed.size();
    if (ctx.flags.fault_injection)
      faults = ctx.faults.next_ingest(parsed_ok ? parsed.size() : 0);
    answer_ingest(ctx, parsed, parsed_ok ? nullptr : &parse_error, faults, res);
  }
  if (faults.delay_ms > 0) ctx.faults.hold(faults.delay_ms);
}

// --- Read-back --------------------------------------------------------------------------

void get_events(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false)) return;
  EventQuery q;
  q.agent_id = param(req, "agentId");
  q.task_id = param(req, "taskId");
  q.workflow_id = param(req, "workflowId");
  q.idempotency_key = param(req, "idempotency_key");
  if (auto limit = param(req, "limit");
      limit && !parse_size(*limit, 1, kMaxEventsLimit, &q.limit)) {
    return reply_error(res, 400, "limit must be an integer in 1..10000");
  }
  auto cursor = param(req, "cursor");
  if (cursor && !cursor->empty()) {
    std::uint64_t seq = 0;
    if (!decode_cursor(*cursor, &seq)) {
      return reply_error(res, 400,
                         "cursor \"" + cursor->substr(0, 64) +
                             "\" is not one this server answered: pass a nextCursor as it was "
                             "given, or an empty cursor for the first page");
    }
    q.cursor = seq;
  }
  std::string out;
  std::optional<std::uint64_t> next;
  Status s = list_events(ctx.store, q, &out, &next);
  if (!s.ok()) return reply_error(res, 500, s.message());
  if (next) res.set_header("X-Next-Cursor", encode_cursor(*next));
  if (!cursor) return reply(res, 200, out);
  // With a cursor (an empty one for the first page), the page and where the next starts.
  std::string page = "{\"events\":" + out + ",\"nextCursor\":";
  page += next ? "\"" + encode_cursor(*next) + "\"}" : "null}";
  reply(res, 200, page);
}

// `name` of the query, if present, one of `allowed`; else 400 naming them.
bool one_of(const Request& req, Response& res, const char* name,
            std::initializer_list<const char*> allowed, std::string* out) {
  auto value = param(req, name);
  if (!value) return true;
  std::string list;
  for (const char* a : allowed) {
    if (*value == a) {
      *out = a;
      return true;
    }
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  reply_error(
      res, 400,
      std::string(name) + " must be one of " + list + ", not \"" + value->substr(0, 64) + "\"");
  return false;
}

void get_costs(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false) || !aggregates_on(ctx, res)) return;
  CostQuery q;
  q.agent_id = param(req, "agentId");
  q.provider = param(req, "provider");
  q.operation = param(req, "operation");
  std::size_t days = kDefaultCostDays;
  if (auto text = param(req, "days"); text && !parse_size(*text, 1, 36500, &days)) {
    return reply_error(res, 400, "days must be an integer in 1..36500");
  }
  q.since_unix_ms = detail::now_unix_ms() - static_cast<std::int64_t>(days) * kDayMs;
  std::string group = "day";
  if (!one_of(req, res, "groupBy", {"day", "hour"}, &group)) return;
  q.by_hour = group == "hour";
  std::string out;
  Status s = compute_costs(ctx.store, q, &out);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 200, out);
}

void get_dashboard(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false) || !aggregates_on(ctx, res)) return;
  std::string out;
  Status s = compute_dashboard(ctx.store, detail::now_unix_ms(), &out);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 200, out);
}

void get_page(ServerContext&, const Request&, Response& res) {
  // Everything the page needs is in it; it talks to this server only.
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'");
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  std::string_view page = dashboard_page();
  res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
}

// --- Alerts -----------------------------------------------------------------------------

void get_alerts(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false) || !aggregates_on(ctx, res)) return;
  json alerts;
  Status s = alerts_with_spend(ctx.store, detail::now_unix_ms(), &alerts);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 200, dump(alerts));
}

void post_alert(ServerContext& ctx, const Request& req, Response& res, const ContentReader& rd) {
  std::string body;
  if (!read_body(ctx, req, res, rd, &body) || !authorized(ctx, req, res, false)) return;
  json record;
  AlertError err;
  auto agent_exists = [&](const std::string& id) { return ctx.store.has_agent(id); };
  if (!parse_alert(body, agent_exists, &record, &err)) {
    json answer = {{"error", err.message}};
    if (!err.field.empty()) answer["field"] = err.field;
    return reply(res, 400, dump(answer));
  }
  std::string text = dump(record);
  Status s = ctx.store.put_alert(record["id"].get<std::string>(), text);
  if (!s.ok()) return reply_error(res, 500, s.message());
  reply(res, 201, text);
}

void delete_alert(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false)) return;
  auto id = param(req, "id");
  if (!id || id->empty()) {
    return reply_error(res, 400, "id is required: DELETE /api/alerts?id=ALERT_ID");
  }
  bool found = false;
  Status s = ctx.store.delete_alert(*id, &found);
  if (!s.ok()) return reply_error(res, 500, s.message());
  if (!found) return reply_error(res, 404, "no alert \"" + id->substr(0, 64) + "\"");
  reply(res, 200, dump(json{{"success", true}, {"id", *id}}));
}

// --- Fault injection --------------------------------------------------------------------

void refuse_faults(ServerContext&, const Request&, Response& res) {
  reply_error(res, 404, "fault injection is off: start the server with --enable-fault-injection");
}

void post_faults(ServerContext& ctx, const Request& req, Response& res, const ContentReader& rd) {
  std::string body, error;
  if (!read_body(ctx, req, res, rd, &body) || !authorized(ctx, req, res, false)) return;
  if (!ctx.faults.set_plan(body, &error)) return reply_error(res, 400, error);
  reply(res, 200, ctx.faults.plan_json());
}

void get_faults(ServerContext& ctx, const Request& req, Response& res) {
  if (authorized(ctx, req, res, false)) reply(res, 200, ctx.faults.plan_json());
}

void delete_faults(ServerContext& ctx, const Request& req, Response& res) {
  if (!authorized(ctx, req, res, false)) return;
  ctx.faults.clear();
  reply(res, 200, "[]");
}

void get_stats(ServerContext& ctx, const Request& req, Response& res) {
  if (authorized(ctx, req, res, false)) reply(res, 200, ctx.stats.to_json());
}

// Runs a handler between life.enter() and life.leave().
class Guard {
 public:
  Guard(Lifecycle& life, Response& res) : life_(life), entered_(life.enter()) {
    if (entered_) return;
    res.set_header("Connection", "close");
    reply_error(res, 503, "the server is shutting down");
  }
  ~Guard() {
    if (entered_) life_.leave();
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  bool entered() const { return entered_; }

 private:
  Lifecycle& life_;
  bool entered_;
};

using Handler = void (*)(ServerContext&, const Request&, Response&);
using ReaderHandler = void (*)(ServerContext&, const Request&, Response&, const ContentReader&);

httplib::Server::Handler guarded(ServerContext& ctx, Handler handler) {
  return [&ctx, handler](const Request& req, Response& res) {
    Guard guard(ctx.life, res);
    if (guard.entered()) handler(ctx, req, res);
  };
}

httplib::Server::HandlerWithContentReader guarded(ServerContext& ctx, ReaderHandler handler) {
  return [&ctx, handler](const Request& req, Response& res, const ContentReader& rd) {
    Guard guard(ctx.life, res);
    if (guard.entered()) handler(ctx, req, res, rd);
  };
}

// The routes that read their body through a ContentReader (read_body, which takes body
// memory as it reads); cpp-httplib reads the body of any other request itself, up to
// kMaxBodyBytes, before its handler runs.
bool reads_own_body(const ServerContext& ctx, const Request& req) {
  return req.method == "POST" &&
         (req.path == "/api/agents" || req.path == "/api/ingest" || req.path == "/api/alerts" ||
          (req.path == "/api/_faults" && ctx.flags.fault_injection));
}

// The pre-routing check, between the headers and the body (see install_routes).
httplib::Server::HandlerResponse before_body(ServerContext& ctx, const Request& req,
                                             Response& res) {
  using httplib::Server;
  bool chunked = req.has_header("Transfer-Encoding");
  std::size_t lengths = req.get_header_value_count("Content-Length");
  if ((chunked && lengths > 0) || lengths > 1) {
    // Which of the two framings a proxy in front used is unknown: what follows on this
    // connection may be the rest of this body or a smuggled request.
    reply_error(res, 400,
                chunked && lengths > 0
                    ? "a request may not carry both Content-Length and Transfer-Encoding"
                    : "a request may carry one Content-Length");
    res.set_header("Connection", "close");
    return Server::HandlerResponse::Handled;
  }
  std::size_t declared = 0;
  bool has_body = chunked;
  if (lengths == 1) {
    std::string text = req.get_header_value("Content-Length");
    auto r = std::from_chars(text.data(), text.data() + text.size(), declared);
    // An unreadable length is cpp-httplib's to refuse (400); count it as a body meanwhile.
    has_body = has_body || r.ec != std::errc() || declared > 0;
    if (r.ec != std::errc()) declared = kMaxBodyBytes;
  }
  if (!has_body) return Server::HandlerResponse::Unhandled;
  if (!ctx.flags.no_auth) {
    bool key_optional =
        req.method == "POST" && req.path == "/api/agents" && !ctx.flags.strict_auth;
    if (!authorized(ctx, req, res, key_optional)) {
      res.set_header("Connection", "close");
      return Server::HandlerResponse::Handled;
    }
  }
  if (!reads_own_body(ctx, req)) {
    // cpp-httplib will hold up to the declared length (decompressed: up to the cap).
    std::string encoding = req.get_header_value("Content-Encoding");
    bool plain = encoding.empty() || encoding == "identity";
    std::size_t hold = plain && !chunked ? std::min(declared, kMaxBodyBytes) : kMaxBodyBytes;
    if (!take_body_memory(ctx, hold)) {
      refuse_busy(res);
      return Server::HandlerResponse::Handled;
    }
  }
  return Server::HandlerResponse::Unhandled;
}

}  // namespace

bool BodyMemory::take(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes > limit_ - used_) return false;
  used_ += bytes;
  return true;
}

void BodyMemory::give(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  used_ -= std::min(bytes, used_);
}

void end_of_request(ServerContext& ctx) {
  ctx.body_memory.give(t_body_memory);
  t_body_memory = 0;
}

BigBodyGate::Pass::Pass(BigBodyGate* gate, std::size_t bytes)
    : gate_(bytes > kBigBodyBytes ? gate : nullptr) {
  if (!gate_) return;
  std::unique_lock<std::mutex> lock(gate_->mu_);
  gate_->cv_.wait(lock, [&] { return gate_->busy_ < kBigBodySlots; });
  ++gate_->busy_;
}

BigBodyGate::Pass::~Pass() {
  if (!gate_) return;
  {
    std::lock_guard<std::mutex> lock(gate_->mu_);
    --gate_->busy_;
  }
  gate_->cv_.notify_one();
}

void install_routes(httplib::Server& server, ServerContext& ctx) {
  server.Post("/api/agents", guarded(ctx, post_agent));
  server.Get("/api/agents", guarded(ctx, get_agents));
  server.Post("/api/ingest", guarded(ctx, post_ingest));
  server.Get("/api/events", guarded(ctx, get_events));
  server.Get("/api/costs", guarded(ctx, get_costs));
  server.Get("/api/dashboard", guarded(ctx, get_dashboard));
  server.Get("/api/alerts", guarded(ctx, get_alerts));
  server.Post("/api/alerts", guarded(ctx, post_alert));
  server.Delete("/api/alerts", guarded(ctx, delete_alert));
  server.Get("/", guarded(ctx, get_page));
  bool faults = ctx.flags.fault_injection;
  if (faults) {
    server.Post("/api/_faults", guarded(ctx, post_faults));
  } else {
    server.Post("/api/_faults", guarded(ctx, refuse_faults));
  }
  server.Get("/api/_faults", guarded(ctx, faults ? get_faults : refuse_faults));
  server.Delete("/api/_faults", guarded(ctx, faults ? delete_faults : refuse_faults));
  server.Get("/api/_stats", guarded(ctx, faults ? get_stats : refuse_faults));

  // The API's paths answer other methods with 405 and the methods they take.
  const std::pair<const char*, const char*> allowed[] = {{"/api/agents", "GET, POST"},
                                                         {"/api/ingest", "POST"},
                                                         {"/api/events", "GET"},
                                                         {"/api/costs", "GET"},
                                                         {"/api/dashboard", "GET"},
                                                         {"/api/alerts", "GET, POST, DELETE"},
                                                         {"/", "GET"},
                                                         {"/api/_faults", "GET, POST, DELETE"},
                                                         {"/api/_stats", "GET"}};
  for (const auto& [path, allow] : allowed) {
    std::string methods = allow;
    httplib::Server::Handler refuse = [methods](const Request&, Response& res) {
      res.set_header("Allow", methods);
      reply_error(res, 405, "method not allowed; this path takes " + methods);
    };
    if (methods.find("GET") == std::string::npos) server.Get(path, refuse);
    if (methods.find("POST") == std::string::npos) server.Post(path, refuse);
    if (methods.find("DELETE") == std::string::npos) server.Delete(path, refuse);
    server.Put(path, refuse);
    server.Patch(path, refuse);
  }

  server.set_pre_routing_handler(
      [&ctx](const Request& req, Response& res) { return before_body(ctx, req, res); });

  // cpp-httplib calls this for every answer of 400 or more; only fill in those it made itself.
  server.set_error_handler([](const Request& req, Response& res) {
    if (!res.body.empty()) return;
    std::string message = reason(res.status);
    if (res.status == 404) message += ": " + req.method + " " + req.path.substr(0, 256);
    reply_error(res, res.status, message);
  });
  server.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, 500, "internal error: " + what);
  });
}

}  // namespace agentburn::server
