// Budgets shared by every process and machine that names one Redis (Options::budget_store):
// each window's spend and open holds live there, keyed by budget name and scope, and every
// change is one atomic script of redis_store.cc that checks all the budgets it touches and
// changes all or none.
//
// Keys (<b> is the budget's name as "<length>:<name>", then its period, <s> its "*" fields'
// values):
//   ab:b:<b>:<s>:s  hash, UTC hour -> nano-dollars spent; expires a window (and an hour or
//                   two) after its last spend; a "total" budget's never does
//   ab:b:<b>:<s>:h  hash, reservation id -> nano-dollars, and "=" -> their sum; with
//   ab:b:<b>:<s>:x  sorted set, reservation id by expiry (ms, the store's clock): a hold
//                   stops counting at its expiry, and both keys expire with their last hold,
//                   so a machine that dies holding frees its holds
//   ab:seen:<key>   an event's idempotency key, once its spend is counted; kept for the
//                   longest window, so that a settle applied twice counts once
//
// Spend reaches Redis from the settle queue of the buffer (store/buffer.hpp): the record
// settle_record() makes is written in its event's own write, and apply() sends it later.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agentburn/budget.hpp"
#include "agentburn/status.hpp"
#include "budget/engine.hpp"
#include "budget/redis_store.hpp"

namespace agentburn::budget {

class Fleet {
 public:
  // `store` serves reserve, release and reads; `settle_store` (a connection of its own, so
  // that a slow settle never delays a reserve) serves apply().
  Fleet(const std::vector<Budget>& budgets, std::unique_ptr<RedisStore> store,
        std::unique_ptr<RedisStore> settle_store);

  // Holds `estimate_nanos` on every block budget of `scope`, or on none: kBudgetExceeded
  // with `refusal`, or the store's failure (kNetwork, kTimeout, kInternal) with nothing held.
  Status reserve(const Scope& scope, std::int64_t estimate_nanos, std::int64_t ttl_ms,
                 std::int64_t now_ms, Reservation* out, Refusal* refusal);
  // Whether `id` is a reservation of this store (not yet settled or released here).
  bool owns(const std::string& id);
  // Drops the holds of a reservation of this store. A store that cannot be reached lets the
  // holds expire by their TTL (the failure is returned).
  Status release(const std::string& id);

  // The settle record of an event: its spend for every budget of its scope, and the holds of
  // its reservation (when one of this store's). Empty when there is nothing to settle.
  std::string settle_record(const Scope& scope, std::int64_t hour, std::int64_t nanos,
                            std::string_view idempotency_key, const std::string* reservation);
  // After the record's event is stored: its reservation is settled (no release then).
  void settled(const std::string& reservation);
  // Applies records, each once (a record applied before is ignored), in one round trip.
  // `done`: how many of the first records are applied (or unreadable: their messages go to
  // `unreadable`, and they are to be dropped). Alerts crossed are appended: each threshold
  // alerts once, in the one process whose settle crossed it.
  Status apply(const std::vector<std::string_view>& records, std::int64_t now_ms,
               std::vector<BudgetAlert>* alerts, std::size_t* done,
               std::vector<std::string>* unreadable);

  // The shared state of every budget of `scope`, or of each (name, scope value) window.
  Status check(const Scope& scope, std::int64_t now_ms, std::vector<BudgetState>* out);
  Status read(const std::vector<std::pair<std::string, std::string>>& windows,
              std::int64_t now_ms, std::vector<BudgetState>* out);

  // Drops the alerts of the budgets this store keeps (they alert from its settles).
  void drop_shared(std::vector<BudgetAlert>* alerts) const;
  // Whether the last call of each connection reached the store.
  bool contacted() const { return store_->reachable() && settle_store_->reachable(); }
  RedisStore& store() { return *store_; }
  void lock_for_fork();
  void unlock_after_fork_parent();
  void after_fork_child();

 private:
  struct Held {
    std::vector<std::string> holds_keys;
    std::int64_t expires_ms = 0;
  };
  struct Prepared;
  Status prepare(std::string_view record, std::int64_t now_ms, Prepared* p) const;
  void finish(const Prepared& p, const std::vector<long long>& reply, std::int64_t now_ms,
              std::vector<BudgetAlert>* alerts) const;
  const Budget* find(std::string_view name) const;
  std::string new_id();

  std::vector<Budget> budgets_;
  std::unique_ptr<RedisStore> store_;
  std::unique_ptr<RedisStore> settle_store_;
  std::int64_t seen_ttl_ms_ = 0;
  std::mutex mu_;  // open_, prefix_, next_id_
  std::unordered_map<std::string, Held> open_;
  std::string prefix_;
  std::uint64_t next_id_ = 0;
};

// The Redis keys of a window (see above).
std::string spend_key(std::string_view budget, BudgetPeriod period, std::string_view scope);
std::string holds_key(std::string_view budget, BudgetPeriod period, std::string_view scope);
// The expiries key beside a holds key.
std::string expiry_key(std::string_view holds);

}  // namespace agentburn::budget
