// agentburn::Client: validation, then the buffer, then (with an endpoint) the sender.
#include "agentburn/client.hpp"

#include <shared_mutex>
#include <thread>

#include "event/codec.hpp"
#include "store/buffer.hpp"

namespace agentburn {

using Clock = std::chrono::steady_clock;

class Client::Impl {
 public:
  Options options;
  std::unique_ptr<detail::Buffer> buffer;
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

namespace {

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
  return Status();
}

}  // namespace

Result<Client> Client::open(const Options& options) {
  Status s = check_options(options);
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
  s = detail::Buffer::open(bo, &impl->buffer);
  if (!s.ok()) return s;
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
  std::shared_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is closed");
  Status s = impl_->buffer->flush_stage();
  if (!s.ok()) return s;
  (void)timeout;
  if (impl_->buffer->pending() == 0) return Status();
  return Status::timeout(std::to_string(impl_->buffer->pending()) +
                         " events are pending and no endpoint is configured; they stay on disk");
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
  std::unique_lock<std::shared_mutex> g(impl_->life);
  if (impl_->closed) return Status::closed("the client is already closed");
  impl_->closed = true;
  std::uint64_t left = impl_->buffer->pending();
  Status s = impl_->buffer->close();
  if (!s.ok()) return s;
  if (left) {
    return Status::timeout(std::to_string(left) + " events stay on disk for the next start");
  }
  return Status();
}

}  // namespace agentburn
