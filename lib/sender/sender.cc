#include "sender/sender.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"
#include "store/fork_safety.hpp"

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

std::string tls_message(const std::string& endpoint, const HttpResult& r) {
  return "the TLS handshake with " + endpoint + " failed (" + r.error +
         "): is the server speaking plain http (then use http://), or is its certificate "
         "signed by a CA the system does not trust (then set ca_bundle)?";
}

}  // namespace

Status register_with_server(const TransportConfig& transport, const Agent& agent,
                            const std::atomic<bool>* abort, std::string* id,
                            bool* configuration) {
  if (configuration) *configuration = false;
  HttpResult r = Transport::post_once(transport, "/api/agents", encode_agent(agent), abort);
  if (r.tls_failed) {
    if (configuration) *configuration = true;
    return Status::network(tls_message(transport.endpoint, r));
  }
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

void Sender::start() {
  add_fork_waker(this, [](const void* self) {
    static_cast<const Sender*>(self)->transport_->interrupt();
  });
  thread_ = new std::thread([this] { run(); });
}

void Sender::stop() {
  remove_fork_waker(this);
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

void Sender::pause(const std::string& kind, const std::string& message, Status why,
                   bool count_retry) {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    if (count_retry) ++stats_.retries;
    stats_.last_error = message;
    if (!why.ok()) blocked_ = std::move(why);
  }
  buffer_->note_error(message);  // written when it changes
  if (kind == pause_kind_) return;
  pause_kind_ = kind;
  if (config_.log) config_.log(LogLevel::kError, message + "; retrying with backoff");
}

Status Sender::blocked() const {
  std::lock_guard<std::mutex> g(stats_mu_);
  return blocked_;
}

void Sender::fail(LogLevel level, const std::string& message) {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.last_error = message;
  }
  buffer_->note_error(message);
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
    retry_settling(now);
    while (transport_->has_free_slot() && now >= next_attempt_ && !stop_) {
      Batch b;
      if (!next_batch(&b)) break;
      Status prepared = prepare(&b);
      if (!prepared.ok()) {
        {
          std::lock_guard<std::mutex> g(stats_mu_);
          ++stats_.retries;
        }
        if (!b.events.empty()) ready_.push_front(std::move(b));
        back_off(std::nullopt);
        break;
      }
      if (b.events.empty()) {
        progress();
        continue;
      }
      std::string body;
      encode(b, &body);
      if (b.maybe_delivered) {
        std::lock_guard<std::mutex> g(stats_mu_);
        stats_.resent += b.events.size();
        b.maybe_delivered = false;
      }
      std::uint64_t tag = next_tag_++;
      ForkSection section;
      transport_->start("/api/ingest", std::move(body), tag);
      in_flight_.emplace(tag, std::move(b));
    }
    if (stop_) break;
    if (transport_->in_flight() > 0) {
      done.clear();
      {
        // libcurl and its TLS library at work: fork() waits (and wakes the poll).
        ForkSection section;
        transport_->poll(kPollSlice, &done);
      }
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
  // While one batch is held, one batch of new events may go: its getting through is what
  // tells a refused event from a refused request. Not more: while every request is refused,
  // the backlog stays on disk, not in held batches in memory.
  if (held_.size() < 2 && read_now(Clock::now())) {
    Status s = buffer_->read_next(static_cast<std::size_t>(config_.batch_max_events),
                                  config_.batch_max_bytes, &out->events);
    if (!s.ok()) {
      fail(LogLevel::kError, s.message());
      return false;
    }
    partial_seen_ = false;
    if (!out->events.empty()) return true;
  }
  if (held_.empty()) return false;
  *out = std::move(held_.front());  // after the backoff the refusal set
  held_.pop_front();
  return true;
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
  if (now < next_attempt_ && (!ready_.empty() || !held_.empty())) {
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
  std::optional<Agent> agent;
  std::optional<std::string> known;
  Status looked = agents_->resolve(provisional, transport_config_.endpoint, &agent, &known);
  if (!looked.ok()) return Status::network(looked.message());  // retried later
  if (known) {
    *server_id = *known;
  } else {
    if (!agent) {
      // No record of it: the events keep the id they have; the server decides.
      *server_id = provisional;
      return Status();
    }
    bool configuration = false;
    Status s = register_with_server(transport_config_, *agent, &stop_, server_id, &configuration);
    if (!s.ok()) {
      std::string what = "cannot register agent \"" + agent->name + "\": " + s.message();
      if (configuration) {
        // prepare()'s caller counts the retry.
        pause("TLS", "delivery paused: " + what, Status::network(what), false);
      } else if (s.code() == Status::Code::kAuth) {
        pause("HTTP auth", "delivery paused: " + what, Status::auth(what), false);
      } else {
        fail(s.code() == Status::Code::kNetwork ? LogLevel::kWarning : LogLevel::kError, what);
      }
      if (s.code() != Status::Code::kInvalid) return Status::network(what);
      return Status(s.code(), what);
    }
    std::string kept;  // another process may have registered it first: theirs stands
    Status saved = agents_->set_server_id(provisional, transport_config_.endpoint, *server_id, &kept);
    if (!saved.ok()) {
      fail(LogLevel::kWarning, saved.message());
    } else {
      *server_id = kept;
    }
  }
  resolved_[provisional] = *server_id;
  return Status();
}

Status Sender::prepare(Batch* b) {
  static const std::string kProvisional = std::string("{\"agentId\":\"") + kProvisionalPrefix;
  if (b->prepared) return Status();
  b->agent_ids.assign(b->events.size(), std::string());
  std::vector<bool> gone(b->events.size(), false);
  bool any_gone = false;
  Status result;
  std::map<std::string, Status> refused;  // one registration attempt per agent and batch
  for (std::size_t i = 0; i < b->events.size(); ++i) {
    const std::string& ev = b->events[i].json;
    if (ev.compare(0, kProvisional.size(), kProvisional) != 0) continue;
    Event e;
    FieldError err;
    if (!parse_event_json(ev, &e, &err)) continue;  // goes as stored; the server refuses it
    Status s;
    std::string server_id;
    if (auto r = refused.find(e.agent_id); r != refused.end()) {
      s = r->second;
    } else {
      s = resolve_agent(e.agent_id, &server_id);
    }
    if (s.code() == Status::Code::kInvalid) {
      // The server refused the agent itself: its events can never go out as they are.
      refused.emplace(e.agent_id, s);
      if (!set_aside(b->events[i], s.message())) b->whole = false;
      gone[i] = any_gone = true;
      continue;
    }
    if (!s.ok()) {
      result = s;  // not registered yet (no answer, 5xx, a refused key): later
      break;
    }
    b->agent_ids[i] = std::move(server_id);
  }
  if (any_gone) {
    // Whatever happens next, the events set aside have left the batch: a retry must not set
    // them aside (and uncount them) again.
    std::vector<StoredEvent> events;
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < b->events.size(); ++i) {
      if (gone[i]) continue;
      events.push_back(std::move(b->events[i]));
      ids.push_back(std::move(b->agent_ids[i]));
    }
    b->events = std::move(events);
    b->agent_ids = std::move(ids);
  }
  b->prepared = result.ok();
  return result;
}

void Sender::encode(const Batch& b, std::string* body) {
  std::size_t total = 2;
  for (const auto& e : b.events) total += e.json.size() + 1;
  body->clear();
  body->reserve(total + 64);
  body->push_back('[');
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    const std::string& ev = b.events[i].json;
    if (body->size() > 1) body->push_back(',');
    const std::string& id = b.agent_ids[i];
    Event e;
    FieldError err;
    if ((id.empty() && !config_.seed_fields_only) || !parse_event_json(ev, &e, &err)) {
      // As stored. One that does not parse is refused by the server: a dead letter then.
      body->append(ev);
      continue;
    }
    if (!id.empty()) e.agent_id = id;
    encode_event(e, Normalized(), config_.seed_fields_only, body);
  }
  body->push_back(']');
}

bool Sender::set_aside(const StoredEvent& e, const std::string& reason) {
  Status s = buffer_->bury(e, reason);
  if (s.ok()) return true;
  fail(LogLevel::kError, s.message() + "; the event stays queued until it can be written");
  unburied_.emplace_back(e, reason);
  return false;
}

void Sender::retry_settling(Clock::time_point now) {
  if ((unburied_.empty() && unremoved_.empty()) || now < next_settle_retry_) return;
  std::vector<std::pair<StoredEvent, std::string>> unburied;
  unburied.swap(unburied_);
  for (auto& [e, reason] : unburied) {
    Status s = buffer_->bury(e, reason);
    if (!s.ok()) unburied_.emplace_back(std::move(e), std::move(reason));
  }
  std::vector<Batch> unremoved;
  unremoved.swap(unremoved_);
  for (auto& b : unremoved) {
    Status s = buffer_->remove(b.events, b.whole);
    if (!s.ok()) unremoved_.push_back(std::move(b));
  }
  if (unburied_.size() < unburied.size() || unremoved_.size() < unremoved.size()) progress();
  next_settle_retry_ = now + std::chrono::milliseconds(
                                 std::min(1000, std::max(config_.retry_initial_ms, 10)));
}

void Sender::settle(Batch b, const HttpResult& r) {
  if (r.status >= 200 && r.status < 300) {
    // Any 2xx is an ack, whatever its body says.
    Status s = buffer_->remove(b.events, b.whole);
    {
      std::lock_guard<std::mutex> g(stats_mu_);
      stats_.delivered += b.events.size();
      stats_.last_delivery_at_ms = now_unix_ms();
      stats_.last_error.clear();
      blocked_ = Status();
    }
    if (!pause_kind_.empty() && config_.log) {
      config_.log(LogLevel::kInfo, "delivery resumed");
    }
    pause_kind_.clear();
    if (!s.ok()) {
      // Delivered, but still queued: the delete is retried; a restart before it succeeds
      // resends them, and the server's deduplication absorbs that.
      fail(LogLevel::kError, s.message() + "; retrying");
      unremoved_.push_back(std::move(b));
    }
    backoff_exponent_ = 0;
    last_success_ = Clock::now();
    if (refusing_ || !held_.empty()) {
      // A batch got through: the held ones are bisected or set aside as usual now.
      refusing_ = false;
      while (!held_.empty()) {
        ready_.push_front(std::move(held_.back()));
        held_.pop_back();
      }
    }
  } else if (r.status == 401 || r.status == 403 || r.status == 404 || r.status == 405 ||
             r.status == 410 || (r.status >= 300 && r.status < 400)) {
    // The key or the endpoint is wrong: nothing is dropped; delivery pauses and retries.
    bool key = r.status == 401 || r.status == 403;
    std::string message = "delivery paused: " + describe(r) +
                          (key ? " (the server refused the API key)" : " (check the endpoint)");
    pause("HTTP " + std::to_string(r.status), message, key ? Status::auth(message) : Status());
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
    // No detail: split until the refused event stands alone, then set it aside; but only
    // while other requests get through. When none does (a proxy or a header refusing every
    // request, say), the request is at fault, not the events: hold the batch and back off.
    if (b.first_refusal == Clock::time_point{}) b.first_refusal = Clock::now();
    bool others_accepted = last_success_ > b.first_refusal;
    if (b.events.size() > 1 && (!refusing_ || others_accepted)) {
      split(std::move(b));
    } else if (b.events.size() == 1 && others_accepted) {
      bury_all(b, describe(r) + " (refused alone while the server accepted other batches)");
    } else {
      refusing_ = true;
      {
        std::lock_guard<std::mutex> g(stats_mu_);
        ++stats_.retries;
      }
      fail(LogLevel::kError,
           "delivery paused: " + describe(r) +
               " (every request is refused, not one event: nothing is set aside until a "
               "batch gets through; check the endpoint, a proxy in front of it, the server)");
      held_.push_back(std::move(b));
      back_off(r.retry_after_ms);
    }
    return;
  }
  Batch rest;
  rest.whole = b.whole;
  rest.prepared = b.prepared;
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    if (!bad[i]) {
      rest.events.push_back(std::move(b.events[i]));
      if (b.prepared) rest.agent_ids.push_back(std::move(b.agent_ids[i]));
      continue;
    }
    if (!set_aside(b.events[i], why[i])) rest.whole = false;
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
  if (r.tls_failed) {
    std::string message = "delivery paused: " + tls_message(transport_config_.endpoint, r);
    pause("TLS", message, Status::network(message));
    ready_.push_front(std::move(b));
    back_off(r.retry_after_ms);
    return;
  }
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
  if (b.prepared) {
    first.agent_ids.assign(std::make_move_iterator(b.agent_ids.begin()),
                           std::make_move_iterator(b.agent_ids.begin() + static_cast<std::ptrdiff_t>(half)));
    second.agent_ids.assign(std::make_move_iterator(b.agent_ids.begin() + static_cast<std::ptrdiff_t>(half)),
                            std::make_move_iterator(b.agent_ids.end()));
  }
  for (Batch* h : {&first, &second}) {
    h->prepared = b.prepared;
    h->whole = b.whole;
    h->first_failure = b.first_failure;
    h->first_refusal = b.first_refusal;
    h->maybe_delivered = b.maybe_delivered;
  }
  ready_.push_front(std::move(second));
  ready_.push_front(std::move(first));
}

void Sender::bury_all(const Batch& b, const std::string& reason) {
  for (const auto& e : b.events) set_aside(e, reason);
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
