#include "options_check.hpp"

#include <string>

#include "budget/engine.hpp"
#include "budget/redis_store.hpp"
#include "transport/http.hpp"

namespace agentburn::detail {

Status check_options(const Options& o, bool combined) {
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
  if (!(s = range("register_timeout_ms", o.register_timeout_ms, 1, 600000)).ok()) return s;
  if (!(s = range("retry_initial_ms", o.retry_initial_ms, 1, 3600000)).ok()) return s;
  if (!(s = range("retry_max_ms", o.retry_max_ms, combined ? o.retry_initial_ms : 1, 86400000)).ok()) {
    return s;
  }
  if (!(s = range("split_after_failures", o.split_after_failures, 1, 1000)).ok()) return s;
  if (!(s = range("close_timeout_ms", o.close_timeout_ms, 0, 3600000)).ok()) return s;
  if (!(s = range("ledger_retention_days", o.ledger_retention_days, 1, 36500)).ok()) return s;
  if (!(s = range("reservation_ttl_ms", o.reservation_ttl_ms, 1, 7 * 86400000LL)).ok()) return s;
  if (!(s = budget::check_budgets(o.budgets)).ok()) return s;
  if (!(s = range("budget_sync_interval_ms", o.budget_sync_interval_ms, 100, 86400000)).ok()) {
    return s;
  }
  if (!(s = range("budget_store_timeout_ms", o.budget_store_timeout_ms, 1, 60000)).ok()) return s;
  if (!(s = budget::check_store_url(o.budget_store)).ok()) return s;
  if (!(s = range("budget_store_unavailable", static_cast<int>(o.budget_store_unavailable), 0, 2))
           .ok()) {
    return s;
  }
  if (combined && o.sync_server_budgets && o.endpoint.empty()) {
    return Status::invalid("sync_server_budgets: needs an endpoint to read the budgets from");
  }
  if (!o.buffer_root.empty() && o.buffer_root[0] != '/') {
    return Status::invalid("buffer_root: must be an absolute path, got \"" + o.buffer_root + "\"");
  }
  if (!(s = check_api_key(o.api_key)).ok()) return s;
  if (!o.endpoint.empty()) {
    std::string normalized;
    bool allow_http = o.allow_insecure_http || !combined;
    if (!(s = check_endpoint(o.endpoint, allow_http, &normalized)).ok()) return s;
    if (combined && !(s = check_route(o.endpoint, o.proxy, o.allow_insecure_http)).ok()) {
      return s;
    }
  }
  return Status();
}

}  // namespace agentburn::detail
