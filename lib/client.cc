// agentburn::Client: validation, then the buffer, then (with an endpoint) the sender.
#include "agentburn/client.hpp"

#include <shared_mutex>
#include <thread>

#include "event/codec.hpp"
#include "options_check.hpp"
#include "sender/sender.hpp"
#include "store/agents.hpp"
#include "store/buffer.hpp"
#include "transport/http.hpp"

namespace agentburn {

using Clock = std::chrono::steady_clock;

class Client::Impl {
 public:
  Options options;
  std::unique_ptr<detail::Buffer> buffer;
  std::unique_ptr<detail::AgentRegistry> agents;
  detail::TransportConfig transport;  // endpoint empty: offline
  std::unique_ptr<detail::Sender> sender;
  std::atomic<bool> closing{false};
  std::atomic<std::uint64_t> rejected{0};
  // Shared by calls that use the buffer, exclusive for close(): no call sees a closed buffer.
  mutable std::shared_mutex life;
  bool closed = false;

  Status store(const Event& e, const detail::Normalized& norm, std::string* key_out) {
    std::string encoded;
    encoded.reserve(256);
    detail::encode_event(e, norm, false, &encoded);
    if (encoded.size() > kMaxEventBytes) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return Status::invalid("the event is " + std::to_string(encoded.size()) +
                             " bytes encoded; the limit is " + std::to_string(kMaxEventBytes));
    }
    Status s;
    {
      std::shared_lock<std::shared_mutex> g(life);
      if (closed) return Status::closed("the client is closed");
      s = buffer->append(encoded);
    }
    if (!s.ok()) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return s;
    }
    if (key_out) *key_out = norm.idempotency_key.empty() ? *e.idempotency_key : norm.idempotency_key;
    return s;
  }

  Status reject(const detail::FieldError& err) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return detail::to_status(err);
  }
};

namespace detail {

Status check_options(const Options& o) {
  auto range = [](const char* name, long long v, long long lo, long long hi) {
    if (v >= lo && v <= hi) return Status();
    return Status::invalid(std::string(name) + ": must be in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(v));
  };
  Status s;
  if (!(s = range("buffered_flush_ms", o.buffered_flush_ms, 1, 1000)).ok()) return s;
  if (!(s = range("batch_max_events", o.batch_max_events, 1, 1000)).ok()) return s;
  if (!(s = range("batch_max_bytes", static_cast<long long>(o.batch_max_bytes), 1024,
                  64 << 20)).ok()) {
    return s;
  }
  if (!(s = range("flush_interval_ms", o.flush_interval_ms, 0, 3600000)).ok()) return s;
  if (!(s = range("max_batches_in_flight", o.max_batches_in_flight, 1, 16)).ok()) return s;
  if (!(s = range("connect_timeout_ms", o.connect_timeout_ms, 1, 600000)).ok()) return s;
  if (!(s = range("request_timeout_ms", o.request_timeout_ms, 1, 3600000)).ok()) return s;
  if (!(s = range("retry_initial_ms", o.retry_initial_ms, 1, 3600000)).ok()) return s;
  if (!(s = range("retry_max_ms", o.retry_max_ms, o.retry_initial_ms, 86400000)).ok()) return s;
  if (!(s = range("split_after_failures", o.split_after_failures, 1, 1000)).ok()) return s;
  if (!(s = range("close_timeout_ms", o.close_timeout_ms, 0, 3600000)).ok()) return s;
  if (!o.buffer_root.empty() && o.buffer_root[0] != '/') {
    return Status::invalid("buffer_root: must be an absolute path, got \"" + o.buffer_root + "\"");
  }
  if (!o.endpoint.empty()) {
    std::string normalized;
    if (!(s = check_endpoint(o.endpoint, o.allow_insecure_http, &normalized)).ok()) return s;
  }
  return Status();
}

}  // namespace detail

Result<Client> Client::open(const Options& options) {
  Status s = detail::check_options(options);
  if (!s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  detail::BufferOptions bo;
  bo.root = options.buffer_root.empty() ? detail::default_buffer_root() : options.buffer_root;
  bo.durability = options.durability;
  bo.buffered_flush_ms = options.buffered_flush_ms;
  bo.disk_cap_bytes = options.disk_cap_bytes;
  bo.full_policy = options.full_policy;
  bo.set_aside_corrupt = options.set_aside_corrupt_buffer;
  bo.log = options.log;
  if (!options.endpoint.empty()) {
    s = detail::check_endpoint(options.endpoint, options.allow_insecure_http,
                               &impl->transport.endpoint);
    if (!s.ok()) return s;
  }
  s = detail::Buffer::open(bo, &impl->buffer);
  if (!s.ok()) return s;
  impl->agents = std::make_unique<detail::AgentRegistry>(bo.root);
  if (!impl->transport.endpoint.empty()) {
    detail::TransportConfig& t = impl->transport;
    t.api_key = options.api_key;
    t.proxy = options.proxy;
    t.ca_bundle = options.ca_bundle;
    t.connect_timeout_ms = options.connect_timeout_ms;
    t.request_timeout_ms = options.request_timeout_ms;
    t.gzip = options.gzip;
    t.slots = options.max_batches_in_flight;
    detail::SenderConfig sc;
    sc.batch_max_events = options.batch_max_events;
    sc.batch_max_bytes = options.batch_max_bytes;
    sc.flush_interval_ms = options.flush_interval_ms;
    sc.retry_initial_ms = options.retry_initial_ms;
    sc.retry_max_ms = options.retry_max_ms;
    sc.split_after_failures = options.split_after_failures;
    sc.seed_fields_only = options.seed_fields_only;
    sc.log = options.log;
    impl->sender = std::make_unique<detail::Sender>(impl->buffer.get(), impl->agents.get(), t, sc);
    impl->sender->start();
  }
  return Client(std::move(impl));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (impl_) close(std::chrono::milliseconds(impl_->options.close_timeout_ms)).ok();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

Client::~Client() {
  if (impl_) close(std::chrono::milliseconds(impl_->options.close_timeout_ms)).ok();
}

Status Client::track(const Event& event, std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::validate_event(event, true, false, &norm, &err)) return impl_->reject(err);
  return impl_->store(event, norm, key_out);
}

Status Client::track_json(std::string_view json, std::string* key_out) {
  if (!impl_) return Status::closed("the client was moved from");
  Event e;
  detail::Normalized norm;
  detail::FieldError err;
  if (!detail::parse_event_json(json, &e, &err) ||
      !detail::validate_event(e, true, true, &norm, &err)) {
    return impl_->reject(err);
  }
  return impl_->store(e, norm, key_out);
}

Status Client::flush(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::closed("the client was moved from");
  auto deadline = Clock::now() + timeout;
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is closed");
  detail::Buffer& b = *impl_->buffer;
  Status s = b.flush_stage();
  if (!s.ok()) return s;
  const std::uint64_t target = b.last_seq();
  if (impl_->sender) impl_->sender->flush_upto(target);
  while (b.first_pending_seq() <= target) {
    if (!impl_->sender) {
      return Status::timeout(std::to_string(b.pending()) +
                             " events are pending and no endpoint is configured; they stay on disk");
    }
    auto now = Clock::now();
    if (now >= deadline) {
      std::string last = impl_->sender->stats().last_error;
      return Status::timeout(std::to_string(b.pending()) + " events are still pending" +
                             (last.empty() ? "" : "; last error: " + last));
    }
    impl_->sender->wait_progress(std::min(deadline, now + std::chrono::milliseconds(50)));
  }
  return Status();
}

Result<std::string> Client::register_agent_json(std::string_view json) {
  if (!impl_) return Status::closed("the client was moved from");
  Agent a;
  detail::FieldError err;
  if (!detail::parse_agent_json(json, &a, &err)) return detail::to_status(err);
  return register_agent(a);
}

Result<std::string> Client::register_agent(const Agent& agent) {
  if (!impl_) return Status::closed("the client was moved from");
  detail::FieldError err;
  if (!detail::validate_agent(agent, &err)) return detail::to_status(err);
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is closed");
  auto known = impl_->agents->lookup(agent);
  if (known && !known->provisional) return known->id;
  if (known && !known->server_id.empty()) return known->server_id;
  if (!impl_->transport.endpoint.empty()) {
    std::string id;
    Status s = detail::register_with_server(impl_->transport, agent, &impl_->closing, &id);
    if (s.ok()) {
      detail::AgentRecord rec;
      rec.id = id;
      Status saved = impl_->agents->remember(agent, rec);
      if (!saved.ok()) return saved;
      return id;
    }
    if (s.code() != Status::Code::kNetwork) return s;
    if (impl_->options.log) {
      impl_->options.log(LogLevel::kWarning, "registering agent \"" + agent.name +
                                                 "\" offline: " + s.message());
    }
  }
  if (known) return known->id;
  detail::AgentRecord rec;
  rec.id = std::string(detail::kProvisionalPrefix) + detail::new_uuid_v7();
  rec.provisional = true;
  Status saved = impl_->agents->remember(agent, rec);
  if (!saved.ok()) return saved;
  return rec.id;
}

Stats Client::stats() const {
  Stats st;
  if (!impl_) return st;
  std::shared_lock<std::shared_mutex> g(impl_->life);
  st.rejected = impl_->rejected.load();
  if (impl_->closed) return st;
  const auto& b = *impl_->buffer;
  st.pending = b.pending();
  st.pending_bytes = b.pending_bytes();
  st.dead_letters = b.dead_count();
  st.dropped = b.dropped();
  st.adopted = b.adopted();
  if (impl_->sender) {
    detail::SenderStats ss = impl_->sender->stats();
    st.delivered = ss.delivered;
    st.resent = ss.resent;
    st.retries = ss.retries;
    st.last_error = ss.last_error;
    st.last_delivery_at_ms = ss.last_delivery_at_ms;
  }
  return st;
}

std::vector<DeadLetter> Client::dead_letters(std::size_t limit) const {
  if (!impl_) return {};
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return {};
  return impl_->buffer->dead_letters(limit);
}

Status Client::requeue_dead_letters() {
  if (!impl_) return Status::closed("the client was moved from");
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is closed");
  return impl_->buffer->requeue_dead_letters();
}

Status Client::purge_dead_letters() {
  if (!impl_) return Status::closed("the client was moved from");
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is closed");
  return impl_->buffer->purge_dead_letters();
}

Status Client::close(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::closed("the client was moved from");
  Status flushed = flush(timeout);
  impl_->closing = true;  // aborts a registration under way
  std::unique_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is already closed");
  impl_->closed = true;
  if (impl_->sender) impl_->sender->stop();
  std::uint64_t left = impl_->buffer->pending();
  Status s = impl_->buffer->close();
  if (!s.ok()) return s;
  if (left) {
    return Status::timeout(std::to_string(left) + " events stay on disk for the next start");
  }
  return Status();
}

}  // namespace agentburn
