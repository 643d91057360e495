#include "sender/sender.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"

namespace agentburn::detail {

using json = nlohmann::json;

namespace {

constexpr auto kIdleWait = std::chrono::seconds(1);
constexpr auto kPollSlice = std::chrono::milliseconds(200);
constexpr auto kAdoptEvery = std::chrono::seconds(10);

std::string excerpt(const std::string& body) {
  std::string s = body.substr(0, 200);
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return s;
}

// The server's reason for an answer: its {"error": "..."} text, else the start of the body.
std::string reason_of(const HttpResult& r) {
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
    return excerpt(doc["error"].get<std::string>());
  }
  return excerpt(r.body);
}

std::string describe(const HttpResult& r) {
  if (r.status == 0) return r.error;
  std::string why = reason_of(r);
  return "HTTP " + std::to_string(r.status) + (why.empty() ? "" : ": " + why);
}

}  // namespace

Status register_with_server(const TransportConfig& transport, const Agent& agent,
                            const std::atomic<bool>* abort, std::string* id) {
  HttpResult r = Transport::post_once(transport, "/api/agents", encode_agent(agent), abort);
  if (r.status >= 200 && r.status < 300) {
    json doc = json::parse(r.body, nullptr, false);
    // Hosted AgentBurn answers the agent object; some servers wrap it.
    for (const char* wrapper : {"", "agent", "data"}) {
      const json* obj = &doc;
      if (*wrapper) {
        if (!doc.is_object() || !doc.contains(wrapper)) continue;
        obj = &doc[wrapper];
      }
      if (obj->is_object() && obj->contains("id")) {
        const json& v = (*obj)["id"];
        if (v.is_string() && !v.get<std::string>().empty()) *id = v.get<std::string>();
        if (v.is_number_integer()) *id = std::to_string(v.get<std::int64_t>());
        if (!id->empty()) return Status();
      }
    }
    return Status::http("POST /api/agents answered " + std::to_string(r.status) +
                        " without an agent id");
  }
  std::string what = "POST /api/agents: " + describe(r);
  if (r.status == 0 || r.status == 408 || r.status == 429 || r.status >= 500) {
    return Status::network(what);
  }
  if (r.status == 401 || r.status == 403) return Status::auth(what);
  if (r.status == 400 || r.status == 422) return Status::invalid(what);
  return Status::http(what);
}

Sender::Sender(Buffer* buffer, AgentRegistry* agents, const TransportConfig& transport,
               const SenderConfig& config)
    : buffer_(buffer), agents_(agents), transport_config_(transport), config_(config) {
  transport_ = std::make_unique<Transport>(transport);
}

Sender::~Sender() { stop(); }

void Sender::start() { thread_ = new std::thread([this] { run(); }); }

void Sender::stop() {
  stop_ = true;
  buffer_->wake();
  transport_->interrupt();
  if (thread_) {
    thread_->join();
    delete thread_;
    thread_ = nullptr;
  }
}

void Sender::flush_upto(std::uint64_t seq) {
  std::uint64_t cur = flush_upto_.load();
  while (cur < seq && !flush_upto_.compare_exchange_weak(cur, seq)) {
  }
  buffer_->wake();
  transport_->interrupt();
}

void Sender::wait_progress(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> g(progress_mu_);
  std::uint64_t seen = progress_count_;
  progress_cv_.wait_until(g, deadline, [&] { return progress_count_ != seen; });
}

SenderStats Sender::stats() const {
  std::lock_guard<std::mutex> g(stats_mu_);
  return stats_;
}

void Sender::progress() {
  {
    std::lock_guard<std::mutex> g(progress_mu_);
    ++progress_count_;
  }
  progress_cv_.notify_all();
}

void Sender::fail(LogLevel level, const std::string& message) {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.last_error = message;
  }
  if (config_.log) config_.log(level, message);
}

void Sender::run() {
  std::vector<std::pair<std::uint64_t, HttpResult>> done;
  while (!stop_) {
    auto now = Clock::now();
    if (now >= next_adoption_) {
      next_adoption_ = now + kAdoptEvery;
      Status s = buffer_->adopt_dead_folders();
      if (!s.ok()) fail(LogLevel::kError, s.message());
    }
    while (transport_->has_free_slot() && now >= next_attempt_ && !stop_) {
      Batch b;
      if (!next_batch(&b)) break;
      std::string body;
      Status built = build_body(&b, &body);
      if (!built.ok()) {
        {
          std::lock_guard<std::mutex> g(stats_mu_);
          ++stats_.retries;
        }
        ready_.push_front(std::move(b));
        back_off(std::nullopt);
        break;
      }
      if (b.events.empty()) {
        progress();
        continue;
      }
      if (b.maybe_delivered) {
        std::lock_guard<std::mutex> g(stats_mu_);
        stats_.resent += b.events.size();
        b.maybe_delivered = false;
      }
      std::uint64_t tag = next_tag_++;
      transport_->start("/api/ingest", std::move(body), tag);
      in_flight_.emplace(tag, std::move(b));
    }
    if (stop_) break;
    if (transport_->in_flight() > 0) {
      done.clear();
      transport_->poll(kPollSlice, &done);
      for (auto& [tag, result] : done) {
        auto it = in_flight_.find(tag);
        Batch b = std::move(it->second);
        in_flight_.erase(it);
        settle(std::move(b), result);
      }
    } else {
      idle_wait(now);
    }
  }
  transport_->cancel_all();  // unacked events stay on disk and go at the next start
  in_flight_.clear();
}

bool Sender::next_batch(Batch* out) {
  if (!ready_.empty()) {
    *out = std::move(ready_.front());
    ready_.pop_front();
    return true;
  }
  if (!read_now(Clock::now())) return false;
  Status s = buffer_->read_next(static_cast<std::size_t>(config_.batch_max_events),
                                config_.batch_max_bytes, &out->events);
  if (!s.ok()) {
    fail(LogLevel::kError, s.message());
    return false;
  }
  partial_seen_ = false;
  return !out->events.empty();
}

// A batch goes when it is full, when its first event has waited flush_interval_ms, or when
// flush() asked for it.
bool Sender::read_now(Clock::time_point now) {
  std::uint64_t upto = buffer_->readable_upto();
  std::uint64_t cursor = buffer_->cursor();
  if (upto < cursor) return false;
  if (upto - cursor + 1 >= static_cast<std::uint64_t>(config_.batch_max_events)) return true;
  if (flush_upto_.load() >= cursor || config_.flush_interval_ms == 0) return true;
  if (!partial_seen_) {
    partial_seen_ = true;
    partial_since_ = now;
  }
  return now - partial_since_ >= std::chrono::milliseconds(config_.flush_interval_ms);
}

void Sender::idle_wait(Clock::time_point now) {
  if (now < next_attempt_ && !ready_.empty()) {
    buffer_->wait_for_events(~std::uint64_t{0}, next_attempt_);
  } else if (partial_seen_) {
    buffer_->wait_for_events(buffer_->cursor() + config_.batch_max_events - 1,
                             partial_since_ + std::chrono::milliseconds(config_.flush_interval_ms));
  } else {
    buffer_->wait_for_events(buffer_->cursor(), now + kIdleWait);
  }
}

Status Sender::resolve_agent(const std::string& provisional, std::string* server_id) {
  auto cached = resolved_.find(provisional);
  if (cached != resolved_.end()) {
    *server_id = cached->second;
    return Status();
  }
  if (auto known = agents_->resolve(provisional)) {
    *server_id = *known;
  } else {
    auto agent = agents_->agent_of(provisional);
    if (!agent) {
      // No record of it: the events keep the id they have; the server decides.
      *server_id = provisional;
      return Status();
    }
    Status s = register_with_server(transport_config_, *agent, &stop_, server_id);
    if (!s.ok()) {
      std::string what = "cannot register agent \"" + agent->name + "\": " + s.message();
      fail(s.code() == Status::Code::kNetwork ? LogLevel::kWarning : LogLevel::kError, what);
      if (s.code() != Status::Code::kInvalid) return Status::network(what);
      return Status(s.code(), what);
    }
    Status saved = agents_->set_server_id(provisional, *server_id);
    if (!saved.ok()) fail(LogLevel::kWarning, saved.message());
  }
  resolved_[provisional] = *server_id;
  return Status();
}

Status Sender::build_body(Batch* b, std::string* body) {
  static const std::string kProvisional = std::string("{\"agentId\":\"") + kProvisionalPrefix;
  std::size_t total = 2;
  for (const auto& e : b->events) total += e.json.size() + 1;
  body->clear();
  body->reserve(total + 64);
  body->push_back('[');
  std::vector<bool> buried;  // empty unless an event was set aside
  for (std::size_t i = 0; i < b->events.size(); ++i) {
    const std::string& ev = b->events[i].json;
    bool provisional = ev.compare(0, kProvisional.size(), kProvisional) == 0;
    Event e;
    FieldError err;
    if ((!provisional && !config_.seed_fields_only) || !parse_event_json(ev, &e, &err)) {
      // As stored. One that does not parse is refused by the server: a dead letter then.
      if (body->size() > 1) body->push_back(',');
      body->append(ev);
      continue;
    }
    if (provisional) {
      std::string server_id;
      Status s = resolve_agent(e.agent_id, &server_id);
      if (s.code() == Status::Code::kInvalid) {
        // The server refused the agent itself: its events can never go out as they are.
        Status kept = buffer_->bury(b->events[i], s.message());
        if (!kept.ok()) return kept;
        buried.resize(b->events.size());
        buried[i] = true;
        continue;
      }
      if (!s.ok()) return s;  // not registered yet (no answer, 5xx, a refused key): later
      e.agent_id = server_id;
    }
    if (body->size() > 1) body->push_back(',');
    encode_event(e, Normalized(), config_.seed_fields_only, body);
  }
  body->push_back(']');
  if (!buried.empty()) {
    std::vector<StoredEvent> rest;
    for (std::size_t i = 0; i < b->events.size(); ++i) {
      if (!buried[i]) rest.push_back(std::move(b->events[i]));
    }
    b->events = std::move(rest);
  }
  return Status();
}

void Sender::settle(Batch b, const HttpResult& r) {
  if (r.status >= 200 && r.status < 300) {
    // Any 2xx is an ack, whatever its body says.
    Status s = buffer_->remove(b.events);
    if (!s.ok()) fail(LogLevel::kError, s.message());
    {
      std::lock_guard<std::mutex> g(stats_mu_);
      stats_.delivered += b.events.size();
      stats_.last_delivery_at_ms = now_unix_ms();
      stats_.last_error.clear();
    }
    backoff_exponent_ = 0;
    last_success_ = Clock::now();
  } else if (r.status == 401 || r.status == 403 || r.status == 404 || r.status == 405 ||
             r.status == 410 || (r.status >= 300 && r.status < 400)) {
    // The key or the endpoint is wrong: nothing is dropped; delivery pauses and retries.
    fail(LogLevel::kError, "delivery paused: " + describe(r) +
                               (r.status == 401 || r.status == 403
                                    ? " (the server refused the API key)"
                                    : " (check the endpoint)"));
    ready_.push_front(std::move(b));
    back_off(r.retry_after_ms);
  } else if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429) {
    settle_refused(std::move(b), r);
  } else {
    settle_failed(std::move(b), r);
  }
  progress();
}

// 400/413/422 and the other 4xx: the server looked at the batch and refused it.
void Sender::settle_refused(Batch b, const HttpResult& r) {
  json doc = json::parse(r.body, nullptr, false);
  std::vector<bool> bad(b.events.size(), false);
  std::vector<std::string> why(b.events.size());
  bool named = false;
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array()) {
    for (const auto& e : doc["errors"]) {
      if (!e.is_object() || !e.contains("index") || !e["index"].is_number_unsigned()) continue;
      auto i = e["index"].get<std::size_t>();
      if (i >= b.events.size()) continue;
      bad[i] = named = true;
      std::string field = e.value("field", ""), message = e.value("message", "");
      why[i] = "HTTP " + std::to_string(r.status) + ": " + (message.empty() ? field : message);
    }
  }
  if (!named) {
    // No detail: split until the refused event stands alone, then set it aside.
    if (b.events.size() > 1) {
      split(std::move(b));
    } else {
      bury_all(b, describe(r));
    }
    return;
  }
  Batch rest;
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    if (!bad[i]) {
      rest.events.push_back(std::move(b.events[i]));
      continue;
    }
    Status s = buffer_->bury(b.events[i], why[i]);
    if (!s.ok()) fail(LogLevel::kError, s.message());
  }
  if (config_.log) {
    config_.log(LogLevel::kWarning, std::to_string(b.events.size() - rest.events.size()) +
                                        " events refused by the server set aside as dead letters");
  }
  if (!rest.events.empty()) ready_.push_front(std::move(rest));
}

// No answer, 408, 429 or 5xx: back off and try again; a batch that keeps failing with 5xx
// while the server accepts others holds a poisoned event, found by splitting.
void Sender::settle_failed(Batch b, const HttpResult& r) {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    ++stats_.retries;
  }
  fail(LogLevel::kWarning, "delivery failed, will retry: " + describe(r));
  if (r.status == 0 && r.maybe_delivered) b.maybe_delivered = true;
  if (r.status >= 500) {
    // A half keeps the time its whole first failed: a success since then, of any batch, means
    // the server takes others while this one keeps failing.
    ++b.failures;
    if (b.first_failure == Clock::time_point{}) b.first_failure = Clock::now();
    if (b.failures >= config_.split_after_failures) {
      if (b.events.size() > 1) {
        split(std::move(b));
        back_off(r.retry_after_ms);
        return;
      }
      if (last_success_ > b.first_failure) {
        bury_all(b, describe(r) + " (failed " + std::to_string(b.failures) +
                        " times while the server accepted other batches)");
        return;
      }
    }
  }
  ready_.push_front(std::move(b));
  back_off(r.retry_after_ms);
}

void Sender::split(Batch b) {
  std::size_t half = b.events.size() / 2;
  Batch first, second;
  first.events.assign(std::make_move_iterator(b.events.begin()),
                      std::make_move_iterator(b.events.begin() + static_cast<std::ptrdiff_t>(half)));
  second.events.assign(std::make_move_iterator(b.events.begin() + static_cast<std::ptrdiff_t>(half)),
                       std::make_move_iterator(b.events.end()));
  for (Batch* h : {&first, &second}) {
    h->first_failure = b.first_failure;
    h->maybe_delivered = b.maybe_delivered;
  }
  ready_.push_front(std::move(second));
  ready_.push_front(std::move(first));
}

void Sender::bury_all(const Batch& b, const std::string& reason) {
  for (const auto& e : b.events) {
    Status s = buffer_->bury(e, reason);
    if (!s.ok()) fail(LogLevel::kError, s.message());
  }
  if (config_.log) {
    config_.log(LogLevel::kWarning, "set aside " + std::to_string(b.events.size()) +
                                        " event(s) as dead letters: " + reason);
  }
}

// Exponential backoff with full jitter, at least what Retry-After asks (both capped).
void Sender::back_off(std::optional<std::int64_t> retry_after_ms) {
  std::int64_t ceiling = std::min<std::int64_t>(
      config_.retry_max_ms,
      static_cast<std::int64_t>(config_.retry_initial_ms) << std::min(backoff_exponent_, 20));
  ++backoff_exponent_;
  std::int64_t delay = std::uniform_int_distribution<std::int64_t>(0, ceiling)(rng_);
  if (retry_after_ms) delay = std::max(delay, std::min<std::int64_t>(*retry_after_ms, config_.retry_max_ms));
  next_attempt_ = Clock::now() + std::chrono::milliseconds(delay);
}

}  // namespace agentburn::detail
